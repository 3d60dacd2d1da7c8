// Diamond Opus admin dashboard: a hash-routed single page over the admin API.
// Plain browser JavaScript with no build step and no third-party code. Every
// element is built with DOM calls, so API data is never parsed as HTML.
"use strict";

const KEY_STORAGE = "diamond-opus-api-key";
const POLL_MS = 1500;
const ACTIVE_RUN_STATUSES = ["running", "consolidating"];

// ---------------------------------------------------------------- helpers

function h(tag, attrs, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  appendChildren(element, children);
  return element;
}

function appendChildren(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const SVG_NS = "http://www.w3.org/2000/svg";

function s(tag, attrs, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) element.setAttribute(name, String(value));
  }
  appendChildren(element, children);
  return element;
}

// Format integer cents as dollars with string operations only, so no cent is
// ever rounded by floating point. Accepts a number or a string of digits.
function formatCents(cents) {
  if (cents === null || cents === undefined || cents === "") return "–";
  const text = String(cents);
  if (!/^-?\d+$/.test(text)) return text;
  const negative = text.startsWith("-");
  const digits = (negative ? text.slice(1) : text).padStart(3, "0");
  const dollars = digits.slice(0, -2).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return (negative ? "-$" : "$") + dollars + "." + digits.slice(-2);
}

// Parse "1,234.5" dollars into integer cents without floating point.
function parseDollars(text) {
  const clean = String(text).trim().replace(/[$,\s]/g, "");
  if (clean === "") return null;
  const match = /^(\d+)(?:\.(\d{0,2}))?$/.exec(clean);
  if (!match) throw new Error(`invalid dollar amount ${JSON.stringify(text)}: use digits and up to two decimals`);
  const cents = match[1] + (match[2] || "").padEnd(2, "0");
  return Number(cents.replace(/^0+(?=\d)/, ""));
}

function centsToDollarInput(cents) {
  if (cents === null || cents === undefined) return "";
  return formatCents(cents).replace(/[$,]/g, "");
}

function formatCount(value) {
  if (value === null || value === undefined) return "–";
  return String(value).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

function formatRate(rate) {
  if (rate === null || rate === undefined) return "–";
  return (rate * 100).toFixed(1) + "%";
}

function formatTime(value) {
  if (!value) return "–";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function formatRange(minCents, maxCents) {
  return `${formatCents(minCents)} – ${maxCents === null || maxCents === undefined ? "no limit" : formatCents(maxCents)}`;
}

function badge(status) {
  return h("span", { class: `badge ${status}` }, String(status).replace("_", " "));
}

function table(columns, rows, options = {}) {
  const head = h("tr", {}, columns.map((column) => h("th", {
    class: column.num ? "num" : null, scope: "col",
  }, column.header || column.label)));
  const body = rows.map((row) => h("tr", {}, columns.map((column) => h("td", {
    class: column.num ? "num" : null,
  }, column.cell(row)))));
  const empty = rows.length === 0
    ? h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, options.empty || "Nothing to show."))
    : null;
  return h("div", { class: "table-wrap" },
    h("table", {}, options.caption ? h("caption", { class: "muted" }, options.caption) : null,
      h("thead", {}, head), h("tbody", {}, body, empty)));
}

function card(label, value, valueClass = "") {
  return h("div", { class: "card" }, h("div", { class: "label" }, label),
    h("div", { class: `value ${valueClass}`.trim() }, value));
}

function field(label, input) {
  return h("label", {}, label, input);
}

function select(name, options, value) {
  return h("select", { name }, options.map(([optionValue, text]) => h("option", {
    value: optionValue, selected: String(optionValue) === String(value ?? "") ? true : null,
  }, text)));
}

// ---------------------------------------------------------------- API access

class ApiFailure extends Error {
  constructor(status, message, envelope) {
    super(message);
    this.status = status;
    this.envelope = envelope;
  }
}

function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

async function api(method, path, body) {
  const headers = { "X-API-Key": apiKey() || "" };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiFailure(0, `the API did not respond (${error.message}); check that the server is running`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const envelope = data && data.error;
    const message = envelope ? envelope.message : `HTTP ${response.status} from ${path}`;
    if (response.status === 401) {
      sessionStorage.removeItem(KEY_STORAGE);
      showNav(false);
    }
    throw new ApiFailure(response.status, message, envelope);
  }
  return data;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (Array.isArray(value)) value.forEach((item) => search.append(name, item));
    else if (value !== null && value !== undefined && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// ---------------------------------------------------------------- notices

function notify(message, kind = "ok") {
  const notice = document.getElementById("notice");
  notice.replaceChildren(h("p", { class: kind }, message));
}

function notifyError(error) {
  const details = error.envelope && Array.isArray(error.envelope.details)
    ? ": " + error.envelope.details.map((d) => `${d.field} ${d.message}`).join("; ")
    : "";
  notify(`Error: ${error.message}${details}`, "error");
}

function clearNotice() {
  document.getElementById("notice").replaceChildren();
}

// Run an action from a button: disable it meanwhile, report success or the
// API's error message.
async function act(button, action, success) {
  button.disabled = true;
  try {
    const result = await action();
    notify(typeof success === "function" ? success(result) : success);
    return result;
  } catch (error) {
    notifyError(error);
    return undefined;
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- routing

let viewToken = 0;
const timers = new Set();

function every(ms, callback, token) {
  const id = setInterval(() => {
    if (token !== viewToken) {
      clearInterval(id);
      timers.delete(id);
      return;
    }
    callback();
  }, ms);
  timers.add(id);
}

function stopTimers() {
  for (const id of timers) clearInterval(id);
  timers.clear();
}

const ROUTES = [
  [/^#\/overview$/, renderOverview],
  [/^#\/runs$/, renderRuns],
  [/^#\/runs\/(.+)$/, renderRunDetail],
  [/^#\/consolidation$/, renderConsolidation],
  [/^#\/failures$/, renderFailures],
  [/^#\/diamonds$/, renderDiamonds],
  [/^#\/diamonds\/(\d+)$/, renderDiamondDetail],
  [/^#\/holds$/, renderHolds],
  [/^#\/orders$/, renderOrders],
  [/^#\/suppliers$/, renderSuppliers],
  [/^#\/pricing$/, renderPricing],
  [/^#\/heatmap$/, renderHeatmap],
];

function showNav(visible) {
  document.getElementById("nav").hidden = !visible;
  document.getElementById("sign-out").hidden = !visible;
}

async function route() {
  viewToken += 1;
  stopTimers();
  const main = document.getElementById("main");
  if (!apiKey()) {
    showNav(false);
    renderLogin(main);
    return;
  }
  showNav(true);
  const hash = location.hash || "#/overview";
  for (const link of document.querySelectorAll("#nav a")) {
    const current = hash === link.getAttribute("href") || hash.startsWith(link.getAttribute("href") + "/");
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  for (const [pattern, render] of ROUTES) {
    const match = pattern.exec(hash);
    if (match) {
      const token = viewToken;
      main.setAttribute("aria-busy", "true");
      main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
      try {
        await render(main, token, ...match.slice(1).map(decodeURIComponent));
      } catch (error) {
        if (token !== viewToken) return;
        main.replaceChildren(h("h2", {}, "Could not load this page"),
          h("p", { class: "error-text" }, error.message));
        if (!apiKey()) renderLogin(main);
      }
      if (token === viewToken) main.setAttribute("aria-busy", "false");
      return;
    }
  }
  location.hash = "#/overview";
}

function page(main, title, ...children) {
  main.replaceChildren(h("h2", {}, title), ...children);
  document.title = `${title} · Diamond Opus dashboard`;
}

// ---------------------------------------------------------------- login

function renderLogin(main) {
  const input = h("input", { type: "password", name: "api-key", id: "api-key", autocomplete: "off", required: true });
  const form = h("form", {
    class: "panel login",
    onsubmit: async (event) => {
      event.preventDefault();
      const key = input.value.trim();
      sessionStorage.setItem(KEY_STORAGE, key);
      try {
        await api("GET", "/api/v2/analytics/watermark");
      } catch (error) {
        sessionStorage.removeItem(KEY_STORAGE);
        notifyError(error);
        input.focus();
        return;
      }
      notify("Signed in.");
      if (!location.hash || location.hash === "#/login") location.hash = "#/overview";
      else route();
    },
  },
  h("h2", {}, "Sign in"),
  h("p", { class: "muted" }, "Use an API key with the admin permission. It stays in this browser tab only."),
  field("Admin API key", input),
  h("div", { class: "actions" }, h("button", { type: "submit" }, "Sign in")));
  main.replaceChildren(form);
  document.title = "Sign in · Diamond Opus dashboard";
  input.focus();
}

// ---------------------------------------------------------------- charts

// A line chart of one or two series over the same x points. Each series has
// its own y scale, labelled on the left and right axes.
function lineChart(points, series, labelOf) {
  const width = 720;
  const height = 240;
  const pad = { left: 70, right: 120, top: 16, bottom: 40 };
  const innerWidth = width - pad.left - pad.right;
  const innerHeight = height - pad.top - pad.bottom;
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": series.map((line) => line.label).join(" and ") + " over time" });
  if (points.length === 0) {
    svg.append(s("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, "No completed runs yet."));
    return h("div", { class: "chart-wrap" }, svg);
  }

  const x = (index) => pad.left + (points.length === 1 ? innerWidth / 2 : (index * innerWidth) / (points.length - 1));
  svg.append(s("line", { class: "axis", x1: pad.left, y1: pad.top + innerHeight, x2: pad.left + innerWidth, y2: pad.top + innerHeight }));
  series.forEach((line, seriesIndex) => {
    const values = points.map((point) => Number(line.value(point)));
    const max = Math.max(1, ...values);
    const y = (value) => pad.top + innerHeight - (value / max) * innerHeight;
    const path = values.map((value, index) => `${index ? "L" : "M"}${x(index).toFixed(1)},${y(value).toFixed(1)}`).join(" ");
    svg.append(s("path", { d: path, fill: "none", stroke: line.color, "stroke-width": 2 }));
    values.forEach((value, index) => svg.append(s("circle", { cx: x(index), cy: y(value), r: 3, fill: line.color },
      s("title", {}, `${labelOf(points[index])}: ${line.format(line.value(points[index]))}`))));
    const axisX = seriesIndex === 0 ? pad.left - 6 : pad.left + innerWidth + 6;
    const anchor = seriesIndex === 0 ? "end" : "start";
    svg.append(s("text", { x: axisX, y: pad.top + 10, "text-anchor": anchor, fill: line.color }, line.format(line.maxLabel ? line.maxLabel(points) : line.value(points[values.indexOf(max)]))));
    svg.append(s("text", { x: axisX, y: pad.top + innerHeight, "text-anchor": anchor }, "0"));
  });

  const first = labelOf(points[0]);
  const last = labelOf(points[points.length - 1]);
  svg.append(s("text", { x: pad.left, y: height - 12, "text-anchor": "start" }, first));
  if (points.length > 1) svg.append(s("text", { x: pad.left + innerWidth, y: height - 12, "text-anchor": "end" }, last));
  return h("div", { class: "chart-wrap" }, svg);
}

// Horizontal bars, one per row: [label, value, formatted, color].
function barChart(rows, label) {
  const width = 720;
  const barHeight = 22;
  const labelWidth = 170;
  const valueWidth = 240;
  const height = rows.length * (barHeight + 6) + 8;
  const max = Math.max(1, ...rows.map((row) => Number(row[1])));
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} ${Math.max(height, 30)}`, role: "img", "aria-label": label });
  rows.forEach(([name, value, formatted, color], index) => {
    const y = 4 + index * (barHeight + 6);
    const barWidth = ((width - labelWidth - valueWidth) * Number(value)) / max;
    svg.append(s("text", { x: labelWidth - 8, y: y + 15, "text-anchor": "end" }, name));
    svg.append(s("rect", { x: labelWidth, y, width: Math.max(barWidth, 1), height: barHeight, fill: color || "#1f5fae", rx: 2 },
      s("title", {}, `${name}: ${formatted}`)));
    svg.append(s("text", { x: labelWidth + barWidth + 6, y: y + 15 }, formatted));
  });
  return h("div", { class: "chart-wrap" }, svg);
}

const STATUS_COLORS = { done: "#1d7a46", running: "#1f5fae", failed: "#b3261e", pending: "#9aa5b1" };

// One square per partition, coloured by status, with its figures in a tooltip.
function partitionGrid(partitions) {
  const size = 18;
  const gap = 3;
  const columns = Math.max(1, Math.min(partitions.length, 36));
  const rows = Math.ceil(partitions.length / columns) || 1;
  const svg = s("svg", { class: "chart grid", viewBox: `0 0 ${columns * (size + gap)} ${rows * (size + gap)}`,
    role: "img", "aria-label": "Partition status grid", id: "partition-grid" });
  partitions.forEach((partition, index) => {
    const x = (index % columns) * (size + gap);
    const y = Math.floor(index / columns) * (size + gap);
    svg.append(s("rect", { x, y, width: size, height: size, rx: 3, fill: STATUS_COLORS[partition.status] || "#9aa5b1",
      "data-status": partition.status },
    s("title", {}, `Partition ${partition.partition_id}: ${partition.status}, ${partition.stones_fetched}/${partition.expected_count} stones, ${partition.pages_fetched} pages`)));
  });
  return svg;
}

function statusLegend() {
  return h("div", { class: "legend" }, ["done", "running", "pending", "failed"].map((status) =>
    h("span", {}, h("span", { class: `swatch ${status}` }), status)));
}

// ---------------------------------------------------------------- overview

async function renderOverview(main, token) {
  const [summary, history] = await Promise.all([
    api("GET", "/api/v2/analytics/summary"),
    api("GET", "/api/v2/analytics/history?interval=run"),
  ]);
  if (token !== viewToken) return;
  const availability = Object.entries(summary.by_availability);
  const watermark = summary.watermark;
  page(main, "Overview",
    h("div", { class: "cards" },
      card("Active stones", formatCount(summary.active_count)),
      card("Total priced value", formatCents(summary.total_value_cents)),
      card("Raw rows pending", formatCount(summary.raw_by_status.pending)),
      card("Raw rows failed", formatCount(summary.raw_by_status.failed)),
      card("Watermark", watermark ? formatTime(watermark.updated_to) : "none yet")),
    h("section", { class: "panel", "aria-labelledby": "availability-title" },
      h("h3", { id: "availability-title" }, "Stones by availability"),
      barChart(availability.map(([name, row]) => [name.replace("_", " "), row.stones,
        `${formatCount(row.stones)} · ${formatCents(row.value_cents)}`,
        { available: "#1d7a46", on_hold: "#a86400", sold: "#b3261e", unavailable: "#9aa5b1" }[name]]),
      "Active stones by availability")),
    h("section", { class: "panel", "aria-labelledby": "history-title" },
      h("h3", { id: "history-title" }, "Stones and value over time"),
      h("div", { class: "legend" }, h("span", {}, h("span", { class: "swatch stones" }), "active stones"),
        h("span", {}, h("span", { class: "swatch value" }), "priced value")),
      lineChart(history.points, [
        { label: "Stones", value: (p) => p.stones, format: formatCount, color: "#1f5fae" },
        { label: "Value", value: (p) => p.value_cents, format: formatCents, color: "#a86400" },
      ], (p) => formatTime(p.finished_at)),
      h("p", { class: "muted" }, "One point per consolidated run: the active stones first stored before it finished, at today's prices.")),
    h("section", { class: "panel", "aria-labelledby": "last-runs-title" },
      h("h3", { id: "last-runs-title" }, "Last runs"),
      runsTable(summary.last_runs)));
}

function runsTable(runs) {
  return table([
    { label: "Run", cell: (r) => h("a", { href: `#/runs/${encodeURIComponent(r.run_id)}` }, r.run_id) },
    { label: "Type", cell: (r) => r.run_type },
    { label: "Status", cell: (r) => badge(r.status) },
    { label: "Started", cell: (r) => formatTime(r.started_at) },
    { label: "Finished", cell: (r) => formatTime(r.finished_at) },
    { label: "Partitions done", num: true, cell: (r) => `${formatCount(r.partitions_done)}/${formatCount(r.partition_count)}` },
    { label: "Failed", num: true, cell: (r) => formatCount(r.partitions_failed) },
    { label: "Stones fetched", num: true, cell: (r) => `${formatCount(r.stones_fetched)}/${formatCount(r.expected_count)}` },
    { label: "Consolidated", num: true, cell: (r) => formatCount(r.consolidated_count) },
  ], runs, { empty: "No runs yet." });
}

// ---------------------------------------------------------------- runs

async function startRun(button, runType) {
  const result = await act(button, () => api("POST", "/api/v2/triggers/run", { run_type: runType }),
    (r) => `Started ${runType} run ${r.run_id}.`);
  if (result && result.run_id) location.hash = `#/runs/${encodeURIComponent(result.run_id)}`;
}

async function renderRuns(main, token) {
  const form = h("form", { class: "form-grid", id: "run-filters" },
    field("Status", select("status", [["", "any"], ...["running", "consolidating", "completed", "partial", "failed", "skipped", "cancelled"].map((v) => [v, v])], "")),
    field("Run type", select("run_type", [["", "any"], ["full", "full"], ["incremental", "incremental"]], "")),
    field("Started since", h("input", { type: "date", name: "since" })),
    field("Limit", h("input", { type: "number", name: "limit", min: 1, max: 500, value: 50 })),
    h("button", { type: "submit" }, "Filter"));
  const results = h("div", {});
  const load = async () => {
    const values = Object.fromEntries(new FormData(form));
    if (values.since) values.since = `${values.since}T00:00:00Z`;
    try {
      const data = await api("GET", "/api/v2/analytics/runs" + query(values));
      if (token === viewToken) results.replaceChildren(runsTable(data.items));
    } catch (error) {
      notifyError(error);
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  const fullButton = h("button", { type: "button", id: "start-full", onclick: () => startRun(fullButton, "full") }, "Start full run");
  const incrementalButton = h("button", { type: "button", id: "start-incremental", class: "secondary",
    onclick: () => startRun(incrementalButton, "incremental") }, "Start incremental run");
  page(main, "Runs",
    h("div", { class: "actions" }, fullButton, incrementalButton),
    h("section", { class: "panel" }, form),
    results);
  await load();
}

async function renderRunDetail(main, token, runId) {
  const path = `/api/v2/analytics/runs/${encodeURIComponent(runId)}`;
  let detail = await api("GET", path);
  if (token !== viewToken) return;
  const summary = h("div", {});
  const grid = h("div", {});
  const partitions = h("div", {});
  const cancelButton = h("button", { type: "button", class: "danger", id: "cancel-run",
    onclick: () => act(cancelButton, () => api("POST", "/api/v2/triggers/cancel", { run_id: runId }),
      `Cancelled run ${runId}.`).then(refresh) }, "Cancel run");
  const retryButton = h("button", { type: "button", id: "retry-run",
    onclick: () => act(retryButton, () => api("POST", "/api/v2/triggers/retry-failed", { run_id: runId }),
      (r) => `Retrying ${((r.details || {}).partition_ids || []).length} failed partitions of run ${runId}.`).then(refresh) },
  "Retry failed partitions");
  const consolidateButton = h("button", { type: "button", class: "secondary", id: "consolidate-run",
    onclick: () => act(consolidateButton, () => api("POST", "/api/v2/triggers/consolidate", { run_id: runId }),
      `Consolidation of run ${runId} started.`).then(refresh) }, "Force consolidation");

  function draw() {
    const run = detail.run;
    const progress = detail.progress;
    cancelButton.hidden = !ACTIVE_RUN_STATUSES.includes(run.status);
    retryButton.hidden = progress.failed === 0;
    summary.replaceChildren(
      h("div", { class: "cards" },
        card("Status", badge(run.status)),
        card("Partitions", `${progress.done} done · ${progress.running} running · ${progress.pending} pending · ${progress.failed} failed`, "detail"),
        card("Stones fetched", `${formatCount(progress.stones_fetched)} / ${formatCount(run.expected_count)}`),
        card("Pages fetched", formatCount(progress.pages_fetched)),
        card("Consolidated", formatCount(run.consolidated_count))),
      h("dl", { class: "fields panel" },
        h("dt", {}, "Run type"), h("dd", {}, run.run_type),
        h("dt", {}, "Window"), h("dd", {}, `${formatTime(run.updated_from)} → ${formatTime(run.updated_to)}`),
        h("dt", {}, "Started"), h("dd", {}, formatTime(run.started_at)),
        h("dt", {}, "Finished"), h("dd", {}, formatTime(run.finished_at)),
        h("dt", {}, "Drifted partitions"), h("dd", {}, formatCount(progress.drifted)),
        h("dt", {}, "Retired stones"), h("dd", {}, formatCount(run.retired_count)),
        h("dt", {}, "Watermark advanced"), h("dd", {}, run.watermark_advanced ? "yes" : "no"),
        run.failure_reason ? [h("dt", {}, "Failure reason"), h("dd", { class: "error-text" }, run.failure_reason)] : null));
    grid.replaceChildren(statusLegend(), partitionGrid(detail.partitions));
    partitions.replaceChildren(table([
      { label: "Partition", num: true, cell: (p) => p.partition_id },
      { label: "Price range", cell: (p) => formatRange(p.price_min_cents, p.price_max_cents) },
      { label: "Status", cell: (p) => badge(p.status) },
      { label: "Pages", num: true, cell: (p) => formatCount(p.pages_fetched) },
      { label: "Stones", num: true, cell: (p) => `${formatCount(p.stones_fetched)}/${formatCount(p.expected_count)}` },
      { label: "Pass", num: true, cell: (p) => p.pass },
      { label: "Drifted", cell: (p) => (p.drifted ? "yes" : "no") },
      { label: "Last error", cell: (p) => (p.last_error ? h("span", { class: "error-text" }, p.last_error) : "") },
    ], detail.partitions, { empty: "This run has no partitions." }));
  }

  async function refresh() {
    try {
      const next = await api("GET", path);
      if (token !== viewToken) return;
      detail = next;
      draw();
    } catch (error) {
      notifyError(error);
    }
  }

  page(main, `Run ${runId}`,
    h("p", {}, h("a", { href: "#/runs" }, "← All runs")),
    h("div", { class: "actions" }, cancelButton, retryButton, consolidateButton),
    summary,
    h("section", { class: "panel", "aria-labelledby": "grid-title" }, h("h3", { id: "grid-title" }, "Partitions"), grid),
    partitions);
  draw();
  // Poll while anything can still change: an active run, or partitions that
  // are not yet finished (a retry reopens them).
  every(POLL_MS, () => {
    const open = ACTIVE_RUN_STATUSES.includes(detail.run.status)
      || detail.progress.pending + detail.progress.running > 0;
    if (open) refresh();
  }, token);
}

// ---------------------------------------------------------------- consolidation

async function renderConsolidation(main, token) {
  const [status, runs] = await Promise.all([
    api("GET", "/api/v2/analytics/consolidation"),
    api("GET", "/api/v2/analytics/runs?limit=20"),
  ]);
  if (token !== viewToken) return;
  const runSelect = h("select", { name: "run_id", id: "consolidation-run" },
    runs.items.map((run) => h("option", { value: run.run_id }, `${run.run_id} (${run.status})`)));
  const consolidateButton = h("button", { type: "button", id: "force-consolidate",
    onclick: () => act(consolidateButton, () => api("POST", "/api/v2/triggers/consolidate", { run_id: runSelect.value }),
      (r) => `Consolidation of run ${r.run_id} started.`) }, "Force consolidation");
  const resumeButton = h("button", { type: "button", class: "secondary", id: "resume-consolidation",
    onclick: () => act(resumeButton, () => api("POST", "/api/v2/triggers/resume", { run_id: runSelect.value }),
      (r) => `Consolidation gate of run ${r.run_id} resumed.`) }, "Resume");
  const raw = status.raw_by_status;
  page(main, "Consolidation",
    h("div", { class: "cards" },
      Object.entries(raw).map(([name, count]) => card(`Raw rows ${name}`, formatCount(count))),
      card(`Stuck claims (over ${status.stuck_claims.older_than_minutes} min)`, formatCount(status.stuck_claims.rows)),
      card("Search indexes set aside", formatCount(status.deferred_indexes.length))),
    h("section", { class: "panel", "aria-labelledby": "raw-title" },
      h("h3", { id: "raw-title" }, "Raw rows by status"),
      barChart(Object.entries(raw).map(([name, count]) => [name, count, formatCount(count),
        { pending: "#a86400", processing: "#1f5fae", done: "#1d7a46", failed: "#b3261e" }[name]]), "Raw rows by status")),
    h("section", { class: "panel", "aria-labelledby": "consolidate-title" },
      h("h3", { id: "consolidate-title" }, "Consolidate a run"),
      runs.items.length
        ? h("div", { class: "actions" }, field("Run", runSelect), consolidateButton, resumeButton)
        : h("p", { class: "muted" }, "No runs yet.")),
    h("section", { class: "panel", "aria-labelledby": "stuck-title" },
      h("h3", { id: "stuck-title" }, "Stuck claims"),
      table([
        { label: "Claimed by", cell: (c) => c.claimed_by || "–" },
        { label: "Rows", num: true, cell: (c) => formatCount(c.rows) },
        { label: "Oldest claim", cell: (c) => formatTime(c.oldest_claimed_at) },
      ], status.stuck_claims.claimants, { empty: "No stuck claims." })),
    h("section", { class: "panel", "aria-labelledby": "deferred-title" },
      h("h3", { id: "deferred-title" }, "Search indexes set aside for a bulk load"),
      table([
        { label: "Index", cell: (d) => d.index_name },
        { label: "Set aside", cell: (d) => formatTime(d.deferred_at) },
      ], status.deferred_indexes, { empty: "None: every search index is in place." })),
    h("section", { class: "panel", "aria-labelledby": "open-title" },
      h("h3", { id: "open-title" }, "Runs paging or consolidating"),
      table([
        { label: "Run", cell: (r) => h("a", { href: `#/runs/${encodeURIComponent(r.run_id)}` }, r.run_id) },
        { label: "Type", cell: (r) => r.run_type },
        { label: "Status", cell: (r) => badge(r.status) },
        { label: "Started", cell: (r) => formatTime(r.started_at) },
      ], status.open_runs, { empty: "No open runs." })));
}

// ---------------------------------------------------------------- failures

async function renderFailures(main, token) {
  const failedBox = h("div", {});
  const logsBox = h("div", {});
  const loadFailed = async () => {
    const data = await api("GET", "/api/v2/analytics/failed-partitions");
    if (token !== viewToken) return;
    const runIds = [...new Set(data.items.map((p) => p.run_id))];
    failedBox.replaceChildren(
      h("div", { class: "actions" }, runIds.map((runId) => {
        const button = h("button", { type: "button", class: "retry-failed", "data-run-id": runId,
          onclick: async () => {
            const result = await act(button, () => api("POST", "/api/v2/triggers/retry-failed", { run_id: runId }),
              (r) => `Retrying ${((r.details || {}).partition_ids || []).length} failed partitions of run ${runId}.`);
            if (result) await loadFailed().catch(notifyError);
          } }, `Retry failed partitions of ${runId}`);
        return button;
      })),
      table([
        { label: "Run", cell: (p) => h("a", { href: `#/runs/${encodeURIComponent(p.run_id)}` }, p.run_id) },
        { label: "Partition", num: true, cell: (p) => p.partition_id },
        { label: "Price range", cell: (p) => formatRange(p.price_min_cents, p.price_max_cents) },
        { label: "Stones", num: true, cell: (p) => `${formatCount(p.stones_fetched)}/${formatCount(p.expected_count)}` },
        { label: "Failed at", cell: (p) => formatTime(p.updated_at) },
        { label: "Last error", cell: (p) => h("span", { class: "error-text" }, p.last_error || "") },
      ], data.items, { empty: "No failed partitions." }));
  };
  const logForm = h("form", { class: "form-grid", id: "error-log-search" },
    field("Search text", h("input", { type: "search", name: "search", maxlength: 200 })),
    field("Run id", h("input", { type: "text", name: "run_id" })),
    field("Limit", h("input", { type: "number", name: "limit", min: 1, max: 1000, value: 100 })),
    h("button", { type: "submit" }, "Search"));
  const loadLogs = async () => {
    const data = await api("GET", "/api/v2/analytics/error-logs" + query(Object.fromEntries(new FormData(logForm))));
    if (token !== viewToken) return;
    logsBox.replaceChildren(table([
      { label: "Time", cell: (e) => formatTime(e.created_at) },
      { label: "Source", cell: (e) => e.source },
      { label: "Run", cell: (e) => e.run_id || "–" },
      { label: "Partition", num: true, cell: (e) => e.partition_id ?? "–" },
      { label: "Stone", cell: (e) => e.supplier_stone_id || "–" },
      { label: "Message", cell: (e) => h("span", { class: "error-text" }, e.message) },
    ], data.items, { empty: "No error logs match." }));
  };
  logForm.addEventListener("submit", (event) => {
    event.preventDefault();
    loadLogs().catch(notifyError);
  });
  page(main, "Failures",
    h("section", { class: "panel", "aria-labelledby": "failed-title" },
      h("h3", { id: "failed-title" }, "Failed partitions"), failedBox),
    h("section", { class: "panel", "aria-labelledby": "logs-title" },
      h("h3", { id: "logs-title" }, "Error logs"), logForm, logsBox));
  await Promise.all([loadFailed(), loadLogs()]);
}

// ---------------------------------------------------------------- diamonds

// The search survives visits to a stone's page. `cursors` contains the cursor of
// each page visited so far, null for the first, so Previous can step back.
const diamondSearch = { sort: "price", limit: 20, cursors: [null] };

async function renderDiamonds(main, token) {
  const values = diamondSearch;
  const form = h("form", { class: "form-grid", id: "diamond-search" },
    field("Shapes (comma-separated)", h("input", { name: "shape", value: values.shape || "" })),
    field("Colours", h("input", { name: "color", value: values.color || "" })),
    field("Clarities", h("input", { name: "clarity", value: values.clarity || "" })),
    field("Carat min", h("input", { name: "carat_min", type: "number", step: "0.01", min: 0, value: values.carat_min || "" })),
    field("Carat max", h("input", { name: "carat_max", type: "number", step: "0.01", min: 0, value: values.carat_max || "" })),
    field("Price min ($)", h("input", { name: "price_min", inputmode: "decimal", value: values.price_min || "" })),
    field("Price max ($)", h("input", { name: "price_max", inputmode: "decimal", value: values.price_max || "" })),
    field("Lab grown", select("lab_grown", [["", "either"], ["true", "lab grown"], ["false", "natural"]], values.lab_grown)),
    field("Availability", select("availability", [["available", "available"], ["on_hold", "on hold"], ["available,on_hold", "available or on hold"], ["sold", "sold"], ["unavailable", "unavailable"]], values.availability || "available")),
    field("Per page", select("limit", [["20", "20"], ["50", "50"], ["100", "100"]], values.limit)),
    h("button", { type: "submit" }, "Search"));
  const results = h("div", { id: "diamond-results" });

  const load = async () => {
    const params = { ...values, include_total: "true", cursor: values.cursors[values.cursors.length - 1] };
    delete params.cursors;
    params.availability = (values.availability || "available").split(",");
    try {
      params.price_min_cents = parseDollars(values.price_min || "");
      params.price_max_cents = parseDollars(values.price_max || "");
    } catch (error) {
      notify(`Error: ${error.message}`, "error");
      return;
    }
    delete params.price_min;
    delete params.price_max;
    const data = await api("GET", "/api/v2/diamonds" + query(params));
    if (token !== viewToken) return;
    const pages = Math.max(1, Math.ceil(data.total / data.limit));
    const pageNumber = values.cursors.length;
    const sortHeader = (label, key) => {
      const active = values.sort.replace("-", "") === key;
      const descending = values.sort.startsWith("-");
      let arrow = "";
      if (active) arrow = descending ? " ↓" : " ↑";
      return h("button", { type: "button", class: "sort", "aria-label": `Sort by ${label}`,
        onclick: () => {
          values.sort = active && !descending ? `-${key}` : key;
          values.cursors = [null];
          load().catch(notifyError);
        } }, label + arrow);
    };
    const previous = h("button", { type: "button", class: "secondary", disabled: pageNumber <= 1 ? true : null,
      onclick: () => { values.cursors.pop(); load().catch(notifyError); } }, "← Previous");
    const next = h("button", { type: "button", class: "secondary", disabled: data.next_cursor ? null : true,
      onclick: () => { values.cursors.push(data.next_cursor); load().catch(notifyError); } }, "Next →");
    results.replaceChildren(
      h("p", { class: "muted", id: "diamond-total" }, `${formatCount(data.total)} stones · page ${pageNumber} of ${pages}`),
      table([
        { label: "Id", cell: (d) => h("a", { href: `#/diamonds/${d.id}` }, String(d.id)) },
        { label: "Shape", cell: (d) => d.shape },
        { header: sortHeader("Carats", "carats"), label: "Carats", num: true, cell: (d) => d.carats },
        { label: "Colour", cell: (d) => d.color || "–" },
        { label: "Clarity", cell: (d) => d.clarity || "–" },
        { label: "Cut", cell: (d) => d.cut || "–" },
        { label: "Lab grown", cell: (d) => (d.lab_grown ? "yes" : "no") },
        { header: sortHeader("Price", "price"), label: "Price", num: true, cell: (d) => formatCents(d.price_cents) },
        { header: sortHeader("Per carat", "price_per_carat"), label: "Per carat", num: true, cell: (d) => formatCents(d.price_per_carat_cents) },
        { label: "Rating", num: true, cell: (d) => d.rating ?? "–" },
        { label: "Availability", cell: (d) => badge(d.availability) },
      ], data.items, { empty: "No stones match these filters." }),
      h("div", { class: "actions" }, previous, next));
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    for (const key of ["shape", "color", "clarity", "carat_min", "carat_max", "price_min", "price_max", "lab_grown", "availability"]) {
      values[key] = data[key] || null;
    }
    values.limit = Number(data.limit);
    values.cursors = [null];
    load().catch(notifyError);
  });
  page(main, "Diamonds", h("section", { class: "panel" }, form), results);
  await load();
}

function link(url, text) {
  if (!url) return "–";
  if (!/^https?:\/\//i.test(url)) return url;
  return h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, text);
}

async function renderDiamondDetail(main, token, id) {
  const d = await api("GET", `/api/v2/diamonds/${id}`);
  if (token !== viewToken) return;
  const certificate = d.certificate || {};
  const rows = [
    ["Supplier stone id", d.supplier_stone_id], ["Offer id", d.offer_id], ["Feed", d.feed],
    ["Shape", d.shape], ["Carats", d.carats], ["Colour", d.color], ["Clarity", d.clarity],
    ["Cut", d.cut], ["Polish", d.polish], ["Symmetry", d.symmetry], ["Fluorescence", d.fluorescence],
    ["Lab grown", d.lab_grown ? "yes" : "no"], ["Treated", d.treated ? "yes" : "no"],
    ["Price", formatCents(d.price_cents)], ["Price per carat", formatCents(d.price_per_carat_cents)],
    ["Feed price", formatCents(d.feed_price_cents)], ["Markup ratio", d.markup_ratio], ["Rating", d.rating],
    ["Availability", badge(d.availability)], ["Hold id", d.hold_id],
    ["Depth %", d.depth_percent], ["Table %", d.table_percent], ["Length/width", d.length_width_ratio],
    ["Supplier", d.supplier_name], ["Status", d.status], ["Updated", formatTime(d.updated_at)],
    ["Image", link(d.image_url, "Open image")], ["Video", link(d.video_url, "Open video")],
    ["360° view", link(d.v360_url, "Open 360° view")],
  ];
  const certificateRows = [
    ["Lab", certificate.lab], ["Number", certificate.number],
    ["PDF", link(certificate.pdf_url, "Open certificate")],
  ];
  const list = (pairs) => h("dl", { class: "fields" }, pairs.map(([name, value]) => [
    h("dt", {}, name), h("dd", {}, value === null || value === undefined || value === "" ? "–" : value)]));
  page(main, `Diamond ${d.id}`,
    h("p", {}, h("a", { href: "#/diamonds" }, "← Back to search")),
    h("section", { class: "panel" }, h("h3", {}, "Stone"), list(rows)),
    h("section", { class: "panel" }, h("h3", {}, "Certificate"), list(certificateRows)),
    h("section", { class: "panel" }, h("h3", {}, "Measurements"),
      list(Object.entries(d.measurements || {}))));
}

// ---------------------------------------------------------------- holds and orders

// Like the diamond search, the filters and page survive visits to a stone's page.
const holdSearch = { status: "", limit: 20, offset: 0 };
const orderSearch = { status: "", limit: 20, offset: 0 };

function diamondLink(id) {
  return id === null || id === undefined ? "–" : h("a", { href: `#/diamonds/${id}` }, String(id));
}

// A status filter and a paged table over an analytics listing that returns
// items, total, limit and offset. `name`, the plural of `one`, prefixes the
// elements' ids.
async function renderPagedList(main, token, { title, name, one, path, statuses, search, columns, note }) {
  const form = h("form", { class: "form-grid", id: `${name}-filters` },
    field("Status", select("status", [["", "any"], ...statuses.map((status) => [status, status])], search.status)),
    field("Per page", select("limit", [["20", "20"], ["50", "50"], ["100", "100"]], search.limit)),
    h("button", { type: "submit" }, "Filter"));
  const results = h("div", { id: `${name}-results` });

  const load = async () => {
    const data = await api("GET", path + query({ status: search.status, limit: search.limit, offset: search.offset }));
    if (token !== viewToken) return;
    // A page kept from an earlier visit may lie past the end by now.
    if (data.items.length === 0 && search.offset > 0) {
      search.offset = Math.max(0, (Math.ceil(data.total / search.limit) - 1) * search.limit);
      await load();
      return;
    }
    const pages = Math.max(1, Math.ceil(data.total / data.limit));
    const pageNumber = Math.floor(data.offset / data.limit) + 1;
    const move = (step) => () => {
      search.offset = Math.max(0, search.offset + step * search.limit);
      load().catch(notifyError);
    };
    const previous = h("button", { type: "button", class: "secondary", disabled: data.offset === 0 ? true : null,
      onclick: move(-1) }, "← Previous");
    const next = h("button", { type: "button", class: "secondary",
      disabled: data.offset + data.items.length >= data.total ? true : null, onclick: move(1) }, "Next →");
    results.replaceChildren(
      h("p", { class: "muted", id: `${name}-total` }, `${formatCount(data.total)} ${data.total === 1 ? one : name} · page ${pageNumber} of ${pages}`),
      table(columns, data.items, { empty: search.status ? `No ${search.status} ${name}.` : `No ${name} yet.` }),
      h("div", { class: "actions" }, previous, next));
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    search.status = data.status;
    search.limit = Number(data.limit);
    search.offset = 0;
    load().catch(notifyError);
  });
  page(main, title, h("p", { class: "muted" }, note), h("section", { class: "panel" }, form), results);
  await load();
}

async function renderHolds(main, token) {
  await renderPagedList(main, token, {
    title: "Holds",
    name: "holds",
    one: "hold",
    path: "/api/v2/analytics/holds",
    statuses: ["pending", "active", "denied", "cancelled", "failed"],
    search: holdSearch,
    note: "Holds that clients asked for, newest first. Price is the stone's price now.",
    columns: [
      { label: "Id", num: true, cell: (r) => r.id },
      { label: "Diamond", cell: (r) => diamondLink(r.diamond_id) },
      { label: "Supplier stone", cell: (r) => r.supplier_stone_id },
      { label: "Supplier", cell: (r) => r.supplier_name || "–" },
      { label: "Status", cell: (r) => badge(r.status) },
      { label: "Client", cell: (r) => r.client_name || "–" },
      { label: "Price", num: true, cell: (r) => formatCents(r.price_cents) },
      { label: "Held until", cell: (r) => formatTime(r.until) },
      { label: "Supplier hold", cell: (r) => r.supplier_hold_id || "–" },
      { label: "Requested", cell: (r) => formatTime(r.created_at) },
      { label: "Updated", cell: (r) => formatTime(r.updated_at) },
      { label: "Error", cell: (r) => (r.error ? h("span", { class: "error-text" }, r.error) : "") },
    ],
  });
}

async function renderOrders(main, token) {
  await renderPagedList(main, token, {
    title: "Orders",
    name: "orders",
    one: "order",
    path: "/api/v2/analytics/orders",
    statuses: ["pending", "completed", "failed"],
    search: orderSearch,
    note: "Purchases that clients placed, newest first. Price is the stone's price when the purchase was placed.",
    columns: [
      { label: "Id", num: true, cell: (r) => r.id },
      { label: "Diamond", cell: (r) => diamondLink(r.diamond_id) },
      { label: "Offer", cell: (r) => r.offer_id || "–" },
      { label: "Status", cell: (r) => badge(r.status) },
      { label: "Client", cell: (r) => r.client_name || "–" },
      { label: "Price", num: true, cell: (r) => formatCents(r.price_cents) },
      { label: "Supplier order", cell: (r) => r.supplier_order_id || "–" },
      { label: "HTTP status", num: true, cell: (r) => r.response_status ?? "–" },
      { label: "Idempotency key", cell: (r) => r.idempotency_key },
      { label: "Placed", cell: (r) => formatTime(r.created_at) },
      { label: "Updated", cell: (r) => formatTime(r.updated_at) },
    ],
  });
}

// ---------------------------------------------------------------- suppliers

async function renderSuppliers(main, token) {
  const data = await api("GET", "/api/v2/analytics/suppliers");
  if (token !== viewToken) return;
  const top = data.items.slice(0, 15);
  page(main, "Suppliers",
    h("section", { class: "panel", "aria-labelledby": "supplier-chart-title" },
      h("h3", { id: "supplier-chart-title" }, `Priced value by supplier (top ${top.length})`),
      barChart(top.map((row) => [row.supplier_name.slice(0, 24), row.value_cents,
        `${formatCents(row.value_cents)} · ${formatCount(row.stones)} stones`, "#1f5fae"]), "Priced value by supplier")),
    table([
      { label: "Supplier", cell: (r) => r.supplier_name },
      { label: "Stones", num: true, cell: (r) => formatCount(r.stones) },
      { label: "Available", num: true, cell: (r) => formatCount(r.available) },
      { label: "Value", num: true, cell: (r) => formatCents(r.value_cents) },
      { label: "Holds", num: true, cell: (r) => formatCount(r.holds) },
      { label: "Hold failure rate", num: true, cell: (r) => formatRate(r.hold_failure_rate) },
      { label: "Orders", num: true, cell: (r) => formatCount(r.orders) },
      { label: "Order failure rate", num: true, cell: (r) => formatRate(r.order_failure_rate) },
    ], data.items, { empty: "No stones yet." }));
}

// ---------------------------------------------------------------- pricing rules

function describeMatch(rule) {
  const parts = [];
  if (rule.shapes && rule.shapes.length) parts.push(`shapes ${rule.shapes.join(", ")}`);
  if (rule.carat_min !== null && rule.carat_min !== undefined) parts.push(`carats ≥ ${rule.carat_min}`);
  if (rule.carat_max !== null && rule.carat_max !== undefined) parts.push(`carats ≤ ${rule.carat_max}`);
  if (rule.lab_grown !== null && rule.lab_grown !== undefined) parts.push(rule.lab_grown ? "lab grown" : "natural");
  if (rule.feed) parts.push(`feed ${rule.feed}`);
  if (rule.feed_price_min_cents !== null && rule.feed_price_min_cents !== undefined) parts.push(`feed price ≥ ${formatCents(rule.feed_price_min_cents)}`);
  if (rule.feed_price_max_cents !== null && rule.feed_price_max_cents !== undefined) parts.push(`feed price ≤ ${formatCents(rule.feed_price_max_cents)}`);
  return parts.length ? parts.join("; ") : "every stone";
}

function ruleForm(rule, onDone) {
  const editing = Boolean(rule && rule.id !== undefined);
  const value = (name) => (rule && rule[name] !== null && rule[name] !== undefined ? rule[name] : "");
  const form = h("form", { class: "form-grid", id: "rule-form" },
    field("Priority (lower wins)", h("input", { name: "priority", type: "number", required: true, min: 0, value: value("priority") })),
    field("Markup ratio", h("input", { name: "markup_ratio", required: true, inputmode: "decimal", value: value("markup_ratio") })),
    field("Rating (1–10)", h("input", { name: "rating", type: "number", min: 1, max: 10, required: true, value: value("rating") })),
    field("Shapes (comma-separated)", h("input", { name: "shapes", value: (rule && rule.shapes ? rule.shapes.join(",") : "") })),
    field("Carat min", h("input", { name: "carat_min", inputmode: "decimal", value: value("carat_min") })),
    field("Carat max", h("input", { name: "carat_max", inputmode: "decimal", value: value("carat_max") })),
    field("Lab grown", select("lab_grown", [["", "either"], ["true", "lab grown"], ["false", "natural"]], value("lab_grown"))),
    field("Feed", h("input", { name: "feed", value: value("feed") })),
    field("Feed price min ($)", h("input", { name: "feed_price_min", inputmode: "decimal", value: centsToDollarInput(rule && rule.feed_price_min_cents) })),
    field("Feed price max ($)", h("input", { name: "feed_price_max", inputmode: "decimal", value: centsToDollarInput(rule && rule.feed_price_max_cents) })),
    field("Description", h("input", { name: "description", value: value("description") })));
  const previewBox = h("div", { id: "rule-preview", "aria-live": "polite" });
  const previewButton = h("button", { type: "button", id: "preview-rule" }, "Preview change");
  const saveButton = h("button", { type: "submit", form: "rule-form", id: "save-rule", disabled: true }, editing ? "Save rule" : "Create rule");
  const cancelButton = h("button", { type: "button", class: "secondary", onclick: () => onDone(false) }, "Cancel");
  let previewed = null;

  const body = () => {
    const data = Object.fromEntries(new FormData(form));
    const numberOrNull = (text) => (text.trim() === "" ? null : text.trim());
    const shapes = data.shapes.split(",").map((shape) => shape.trim().toUpperCase()).filter(Boolean);
    return {
      priority: Number(data.priority),
      markup_ratio: data.markup_ratio.trim(),
      rating: Number(data.rating),
      shapes: shapes.length ? shapes : null,
      carat_min: numberOrNull(data.carat_min),
      carat_max: numberOrNull(data.carat_max),
      lab_grown: data.lab_grown === "" ? null : data.lab_grown === "true",
      feed: data.feed.trim() || null,
      feed_price_min_cents: parseDollars(data.feed_price_min),
      feed_price_max_cents: parseDollars(data.feed_price_max),
      description: data.description.trim() || null,
      active: editing ? rule.active !== false : true,
    };
  };
  form.addEventListener("input", () => {
    previewed = null;
    saveButton.disabled = true;
    previewBox.replaceChildren(h("p", { class: "muted" }, "Preview the change before saving it."));
  });
  previewButton.addEventListener("click", async () => {
    let ruleBody;
    try {
      ruleBody = body();
    } catch (error) {
      notify(`Error: ${error.message}`, "error");
      return;
    }
    const path = "/api/v2/pricing-rules/preview" + (editing ? query({ rule_id: rule.id }) : "");
    const result = await act(previewButton, () => api("POST", path, ruleBody),
      "Preview ready: check it, then save.");
    if (!result) return;
    previewed = ruleBody;
    saveButton.disabled = false;
    previewBox.replaceChildren(renderPreview(result));
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!previewed) return;
    const saved = await act(saveButton,
      () => (editing
        ? api("PUT", `/api/v2/pricing-rules/${rule.id}`, previewed)
        : api("POST", "/api/v2/pricing-rules", previewed)),
      (r) => `${editing ? "Saved" : "Created"} pricing rule ${r.rule.id}; re-priced ${formatCount(r.reprice.changed)} stones.`);
    if (saved) onDone(true);
  });
  previewBox.append(h("p", { class: "muted" }, "Preview the change before saving it."));
  return h("section", { class: "panel", "aria-labelledby": "rule-form-title" },
    h("h3", { id: "rule-form-title" }, editing ? `Edit rule ${rule.id}` : "New rule"),
    form, h("div", { class: "actions" }, previewButton, saveButton, cancelButton), previewBox);
}

// Show what saving a rule would change, from POST /api/v2/pricing-rules/preview.
function renderPreview(result) {
  const rows = [
    ["Stones the rule matches", formatCount(result.matched)],
    ["Stones it would price (first match)", formatCount(result.priced_by_rule)],
    ["Stones whose price changes", formatCount(result.changed)],
    ["Total price change", formatSignedCents(result.total_change_cents)],
    ["Average change per changed stone", formatSignedCents(result.average_change_cents)],
  ];
  return h("div", { class: "preview" }, h("h4", {}, "Preview of this change"),
    h("dl", { class: "fields" }, rows.map(([label, value]) => [h("dt", {}, label), h("dd", {}, value)])));
}

function formatSignedCents(cents) {
  const text = formatCents(cents);
  return /^\d/.test(String(cents)) && String(cents) !== "0" ? `+${text}` : text;
}

async function renderPricing(main, token) {
  const editor = h("div", {});
  const list = h("div", {});
  const load = async () => {
    const rules = await api("GET", "/api/v2/pricing-rules");
    if (token !== viewToken) return;
    list.replaceChildren(table([
      { label: "Id", num: true, cell: (r) => r.id },
      { label: "Priority", num: true, cell: (r) => r.priority },
      { label: "Matches", cell: describeMatch },
      { label: "Markup", num: true, cell: (r) => r.markup_ratio },
      { label: "Rating", num: true, cell: (r) => r.rating },
      { label: "Active", cell: (r) => badge(r.active ? "active" : "inactive") },
      { label: "Description", cell: (r) => r.description || "" },
      { label: "Actions", cell: (r) => ruleActions(r) },
    ], rules, { empty: "No pricing rules." }));
  };
  const done = (changed) => {
    editor.replaceChildren();
    if (changed) load().catch(notifyError);
  };
  const ruleActions = (rule) => {
    const edit = h("button", { type: "button", class: "secondary edit-rule", "data-rule-id": rule.id,
      onclick: () => {
        editor.replaceChildren(ruleForm(rule, done));
        editor.querySelector("input").focus();
      } }, "Edit");
    if (!rule.active) return edit;
    const confirmBox = h("span", { hidden: true });
    const deactivate = h("button", { type: "button", class: "danger deactivate-rule", "data-rule-id": rule.id,
      onclick: () => {
        confirmBox.hidden = false;
        deactivate.hidden = true;
        confirmBox.querySelector("button").focus();
      } }, "Deactivate");
    const yes = h("button", { type: "button", class: "danger confirm-deactivate",
      onclick: async () => {
        const result = await act(yes, () => api("DELETE", `/api/v2/pricing-rules/${rule.id}`),
          (r) => `Deactivated pricing rule ${rule.id}; re-priced ${formatCount(r.reprice.changed)} stones.`);
        if (result !== undefined) load().catch(notifyError);
      } }, `Yes, deactivate rule ${rule.id}`);
    const no = h("button", { type: "button", class: "secondary",
      onclick: () => { confirmBox.hidden = true; deactivate.hidden = false; deactivate.focus(); } }, "Keep it");
    confirmBox.append(yes, " ", no);
    return h("div", { class: "actions" }, edit, deactivate, confirmBox);
  };
  const newButton = h("button", { type: "button", id: "new-rule",
    onclick: () => {
      editor.replaceChildren(ruleForm({ priority: 100, markup_ratio: "1.20", rating: 5 }, done));
      editor.querySelector("input").focus();
    } }, "New rule");
  page(main, "Pricing rules",
    h("p", { class: "muted" }, "The first active rule in priority order that matches a stone sets its price: feed price × markup, rounded half up to the cent."),
    h("div", { class: "actions" }, newButton), editor, list);
  await load();
}

// ---------------------------------------------------------------- heatmap

// Drop empty buckets before the first and after the last stone, so the chart
// spans the prices where stones are.
function trimEmptyBuckets(buckets) {
  const first = buckets.findIndex((bucket) => bucket.count > 0);
  if (first < 0) return buckets.slice(0, 1);
  let last = buckets.length - 1;
  while (buckets[last].count === 0) last -= 1;
  return buckets.slice(first, last + 1);
}

function partitionOf(bucket, partitions) {
  return partitions.findIndex((partition) => partition.price_min_cents <= bucket.price_min_cents
    && (partition.price_max_cents === null || partition.price_max_cents === undefined
      || bucket.price_min_cents <= partition.price_max_cents));
}

// Stone density over price: one equal-width bar per scan bucket in price
// order, its height the bucket's stone count. The scan splits dense price
// ranges into narrower buckets, so dense ranges get more bars. Partitions are
// the alternating bands behind the bars, labelled with their lowest price.
function heatmapChart(scan) {
  const width = 760;
  const height = 300;
  const pad = { left: 56, right: 16, top: 16, bottom: 64 };
  const innerWidth = width - pad.left - pad.right;
  const innerHeight = height - pad.top - pad.bottom;
  const buckets = trimEmptyBuckets(scan.buckets);
  const slot = innerWidth / buckets.length;
  const max = Math.max(1, ...buckets.map((bucket) => bucket.count));
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", id: "heatmap-chart",
    "aria-label": `Stone counts of ${buckets.length} price buckets with ${scan.partitions.length} partitions` });

  const owners = buckets.map((bucket) => partitionOf(bucket, scan.partitions));
  let lastLabelX = -Infinity;
  owners.forEach((owner, index) => {
    if (index > 0 && owners[index - 1] === owner) return;
    let end = index;
    while (end + 1 < owners.length && owners[end + 1] === owner) end += 1;
    const partition = scan.partitions[owner];
    const left = pad.left + index * slot;
    const bandWidth = (end - index + 1) * slot;
    const title = partition
      ? `Partition ${partition.partition_id}: ${formatRange(partition.price_min_cents, partition.price_max_cents)}, ${formatCount(partition.expected_count)} stones`
      : "Outside every partition";
    svg.append(s("rect", { x: left, y: pad.top, width: bandWidth, height: innerHeight,
      fill: owner % 2 ? "#dde7f3" : "#f4f7fb", class: "partition-band" }, s("title", {}, title)));
    svg.append(s("line", { x1: left, x2: left, y1: pad.top, y2: pad.top + innerHeight + 6, stroke: "#7f93ab", "stroke-width": 0.8 }));
    if (partition && left - lastLabelX >= 70) {
      const labelY = pad.top + innerHeight + 16;
      svg.append(s("text", { x: left, y: labelY, "text-anchor": "start",
        transform: `rotate(30 ${left} ${labelY})` }, formatCents(partition.price_min_cents)));
      lastLabelX = left;
    }
  });

  buckets.forEach((bucket, index) => {
    const barHeight = (bucket.count / max) * innerHeight;
    svg.append(s("rect", { x: pad.left + index * slot + slot * 0.1, y: pad.top + innerHeight - barHeight,
      width: Math.max(slot * 0.8, 0.5), height: barHeight, fill: "#1f5fae", class: "bucket" },
    s("title", {}, `${formatRange(bucket.price_min_cents, bucket.price_max_cents)}: ${formatCount(bucket.count)} stones`)));
  });

  svg.append(s("line", { class: "axis", x1: pad.left, x2: pad.left + innerWidth, y1: pad.top + innerHeight, y2: pad.top + innerHeight }));
  svg.append(s("text", { x: pad.left - 6, y: pad.top + 10, "text-anchor": "end" }, formatCount(max)));
  svg.append(s("text", { x: pad.left - 6, y: pad.top + innerHeight, "text-anchor": "end" }, "0"));
  svg.append(s("text", { x: 14, y: pad.top + innerHeight / 2, transform: `rotate(-90 14 ${pad.top + innerHeight / 2})`,
    "text-anchor": "middle" }, "Stones per bucket"));
  return h("div", { class: "chart-wrap" }, svg);
}

async function renderHeatmap(main, token) {
  const chartBox = h("div", {});
  const storeBox = h("input", { type: "checkbox", name: "store", id: "store-scan" });
  const show = (scan, origin) => {
    chartBox.replaceChildren(
      h("p", { class: "muted", id: "heatmap-origin" }, origin),
      h("div", { class: "cards" },
        card("Stones counted", formatCount(scan.buckets.reduce((sum, b) => sum + b.count, 0))),
        card("Buckets", formatCount(scan.buckets.length)),
        card("Partitions", formatCount(scan.partitions.length)),
        card("Count queries", formatCount(scan.count_queries))),
      h("section", { class: "panel" }, heatmapChart(scan),
        h("p", { class: "muted" }, "Bars are the scan's price buckets in price order, drawn equally wide; shaded bands are partitions, labelled with their lowest price.")),
      table([
        { label: "Partition", num: true, cell: (p) => p.partition_id },
        { label: "Price range", cell: (p) => formatRange(p.price_min_cents, p.price_max_cents) },
        { label: "Expected stones", num: true, cell: (p) => formatCount(p.expected_count) },
      ], scan.partitions));
  };
  const preview = (button, runType) => async () => {
    const scan = await act(button, () => api("POST", "/api/v2/heatmap/preview", { run_type: runType, store: storeBox.checked }),
      (r) => `Scanned ${formatCount(r.total)} stones into ${r.partitions.length} partitions with ${r.count_queries} count queries${r.stored ? "; the scan was stored" : ""}.`);
    if (scan && token === viewToken) show(scan, `${runType} preview scanned ${formatTime(scan.created_at)}${scan.stored ? " (stored)" : " (not stored)"}`);
  };
  const fullButton = h("button", { type: "button", id: "preview-full" }, "Preview full scan");
  const incrementalButton = h("button", { type: "button", class: "secondary", id: "preview-incremental" }, "Preview incremental scan");
  fullButton.addEventListener("click", preview(fullButton, "full"));
  incrementalButton.addEventListener("click", preview(incrementalButton, "incremental"));
  page(main, "Heatmap",
    h("div", { class: "actions" }, fullButton, incrementalButton, h("label", { class: "inline", for: "store-scan" }, storeBox, "Store the scan")),
    chartBox);
  try {
    const scan = await api("GET", "/api/v2/heatmap");
    if (token === viewToken) show(scan, `Last stored scan, ${formatTime(scan.created_at)}${scan.run_id ? ` for run ${scan.run_id}` : " (preview)"}`);
  } catch (error) {
    if (error.status !== 404) throw error;
    chartBox.replaceChildren(h("p", { class: "muted" }, `${error.message}.`));
  }
}

// ---------------------------------------------------------------- start

window.addEventListener("hashchange", async () => {
  await route();
  // Move focus to the new page, so keyboard and screen reader users start there.
  document.getElementById("main").focus();
});
document.addEventListener("DOMContentLoaded", () => {
  // A notice belongs to the action that caused it: leaving a page by the
  // navigation clears it, but an action that moves to another page keeps it.
  document.getElementById("nav").addEventListener("click", clearNotice);
  document.getElementById("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    notify("Signed out.");
    route();
  });
  route();
});
