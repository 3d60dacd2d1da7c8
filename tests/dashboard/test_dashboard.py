"""The admin dashboard in headless Chromium against a locally synced API."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

import pytest

PAGES = [
    ("#/overview", "Overview"),
    ("#/runs", "Runs"),
    ("#/consolidation", "Consolidation"),
    ("#/failures", "Failures"),
    ("#/diamonds", "Diamonds"),
    ("#/suppliers", "Suppliers"),
    ("#/pricing", "Pricing rules"),
    ("#/heatmap", "Heatmap"),
]


def _format_cents(cents: int) -> str:
    return f"${cents // 100:,}.{cents % 100:02d}"


def _first_diamond(runtime) -> tuple[int, str, int, int]:
    with runtime.pool.connection() as conn:
        return conn.execute(
            "select id, supplier_stone_id, priced_price_cents, feed_price_cents"
            " from diamonds where status = 'active' and availability = 'available'"
            " order by priced_price_cents, id limit 1"
        ).fetchone()


@pytest.mark.parametrize(("hash_route", "heading"), PAGES)
def test_page_loads_without_errors(synced, dashboard, hash_route, heading):
    dashboard.open(hash_route, heading)

    dashboard.screenshot(f"desktop-{hash_route.strip('#/')}")
    assert dashboard.page.locator(".error-text:has-text('Could not load')").count() == 0
    assert dashboard.page.locator("#notice p.error").count() == 0
    assert dashboard.errors == []


def test_detail_pages_load_without_errors(synced, dashboard, local_host):
    diamond_id, stone_id, price_cents, _ = _first_diamond(local_host.runtime)

    dashboard.open(f"#/runs/{synced['run_id']}", f"Run {synced['run_id']}")
    dashboard.screenshot("desktop-run-detail")
    done = dashboard.page.locator("#partition-grid rect[data-status='done']").count()
    dashboard.open(f"#/diamonds/{diamond_id}", f"Diamond {diamond_id}")
    dashboard.screenshot("desktop-diamond-detail")
    text = dashboard.page.locator("main").inner_text()

    assert done == synced["partitions"]
    assert stone_id in text
    assert _format_cents(price_cents) in text
    assert "Certificate" in text
    assert dashboard.errors == []


def test_overview_shows_exact_totals(synced, dashboard, local_host):
    with local_host.runtime.pool.connection() as conn:
        count, value = conn.execute(
            "select count(*), sum(priced_price_cents)::bigint from diamonds"
            " where status = 'active'"
        ).fetchone()

    dashboard.open("#/overview", "Overview")
    text = dashboard.page.locator("main").inner_text()

    assert f"{count:,}" in text
    assert _format_cents(value) in text
    assert synced["run_id"] in text


def test_run_from_dashboard_completes(dashboard, local_host, simulator):
    # Slow supplier pages keep the run open long enough to watch it progress.
    simulator.service.faults.configure(
        {
            "slow": {
                "rate": 1.0,
                "delay_seconds": 0.2,
                "operations": ["diamonds_by_query"],
            }
        }
    )
    detail_requests = []
    dashboard.page.on(
        "request",
        lambda request: (
            detail_requests.append(request.url)
            if "/api/v2/analytics/runs/" in request.url
            else None
        ),
    )
    dashboard.open("#/runs", "Runs")

    dashboard.page.get_by_role("button", name="Start full run").click()
    started = dashboard.notice("Started")
    run_id = re.search(r"run (\S+)\.$", started).group(1)
    dashboard.page.get_by_role("heading", name=f"Run {run_id}").wait_for()
    dashboard.page.locator(".cards .badge.running").wait_for()
    dashboard.screenshot("desktop-run-progress")
    dashboard.page.locator(".cards .badge.completed").wait_for(timeout=180_000)
    dashboard.screenshot("desktop-run-completed")
    grid = dashboard.page.locator("#partition-grid rect")
    statuses = {grid.nth(i).get_attribute("data-status") for i in range(grid.count())}
    text = dashboard.page.locator("main").inner_text()

    assert started.startswith("Started full run")
    assert statuses == {"done"}
    assert "2,000 / 2,000" in text
    assert len(detail_requests) >= 2
    assert dashboard.errors == []


def test_failed_partition_retried(synced, dashboard, local_host):
    run_id = synced["run_id"]
    with local_host.runtime.pool.connection() as conn:
        conn.execute(
            "update partition_progress set status = 'failed',"
            " last_error = 'supplier returned HTTP 500 five times'"
            " where run_id = %s and partition_id = 0",
            (run_id,),
        )
        conn.execute(
            "update run_metadata set status = 'partial' where run_id = %s", (run_id,)
        )
    dashboard.open("#/failures", "Failures")
    dashboard.screenshot("desktop-failures-before-retry")
    before = dashboard.page.locator("main").inner_text()

    dashboard.page.get_by_role(
        "button", name=f"Retry failed partitions of {run_id}"
    ).click()
    notice = dashboard.notice("Retrying")
    dashboard.page.get_by_text("No failed partitions.").wait_for()
    dashboard.open(f"#/runs/{run_id}", f"Run {run_id}")
    dashboard.page.locator(".cards .badge.completed").wait_for(timeout=120_000)
    with local_host.runtime.pool.connection() as conn:
        status = conn.execute(
            "select status from partition_progress where run_id = %s"
            " and partition_id = 0",
            (run_id,),
        ).fetchone()[0]

    assert "supplier returned HTTP 500 five times" in before
    assert notice == f"Retrying 1 failed partitions of run {run_id}."
    assert status == "done"
    assert dashboard.errors == []


def test_pricing_edit_previews_then_reprices(synced, dashboard, local_host):
    runtime = local_host.runtime
    diamond_id, _, _, feed_cents = _first_diamond(runtime)
    expected = int(
        (Decimal(feed_cents) * Decimal("1.5")).quantize(Decimal(1), ROUND_HALF_UP)
    )
    dashboard.open("#/pricing", "Pricing rules")

    dashboard.page.locator("button.edit-rule").first.click()
    dashboard.page.get_by_label("Markup ratio").fill("1.5")
    save = dashboard.page.get_by_role("button", name="Save rule")
    disabled_before_preview = save.is_disabled()
    dashboard.page.get_by_role("button", name="Preview change").click()
    dashboard.page.locator("#rule-preview .preview").wait_for()
    preview = dashboard.page.locator("#rule-preview").inner_text()
    dashboard.screenshot("desktop-pricing-preview")
    save.click()
    saved = dashboard.notice("Saved")
    with runtime.pool.connection() as conn:
        stored = conn.execute(
            "select priced_price_cents from diamonds where id = %s", (diamond_id,)
        ).fetchone()[0]
    dashboard.open(f"#/diamonds/{diamond_id}", f"Diamond {diamond_id}")
    served = dashboard.page.locator("main").inner_text()

    assert disabled_before_preview
    assert "Preview" in preview
    assert saved.startswith("Saved pricing rule")
    assert stored == expected
    assert _format_cents(expected) in served
    assert dashboard.errors == []


def test_narrow_viewport_renders(synced, make_dashboard):
    dashboard = make_dashboard(width=400, height=800)

    for hash_route, heading in PAGES:
        dashboard.open(hash_route, heading)
        dashboard.screenshot(f"narrow-{hash_route.strip('#/')}")
        overflow = dashboard.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{heading} is wider than 400 px by {overflow} px"
    assert dashboard.page.locator("#nav").is_visible()
    assert dashboard.errors == []


def test_sign_in_rejects_wrong_key(browser, dashboard_url):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{dashboard_url}/dashboard")

    page.get_by_label("Admin API key").fill("do_not_a_key")
    page.get_by_role("button", name="Sign in").click()
    message = page.locator("#notice p.error").inner_text()
    nav_hidden = page.locator("#nav").is_hidden()
    context.close()

    assert "invalid API key" in message
    assert nav_hidden


def test_keyboard_reaches_navigation(synced, dashboard):
    page = dashboard.page
    page.reload()
    page.get_by_role("heading", name="Overview").wait_for()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")

    focused = page.evaluate("document.activeElement.getAttribute('href')")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Overview").wait_for()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")

    assert focused == "#/overview"
    assert outline != "none"
