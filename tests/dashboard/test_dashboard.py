"""The admin dashboard in headless Chromium against a locally synced API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest

PAGES = [
    ("#/overview", "Overview"),
    ("#/runs", "Runs"),
    ("#/consolidation", "Consolidation"),
    ("#/failures", "Failures"),
    ("#/diamonds", "Diamonds"),
    ("#/holds", "Holds"),
    ("#/orders", "Orders"),
    ("#/suppliers", "Suppliers"),
    ("#/pricing", "Pricing rules"),
    ("#/heatmap", "Heatmap"),
]


def _format_cents(cents: int) -> str:
    return f"${cents // 100:,}.{cents % 100:02d}"


def _format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


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


# ---------------------------------------------------------------- holds and orders

# Seeded rows are a minute apart from here, so the newest-first order is known.
SEEDED_AT = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def _stones(runtime, count: int) -> list[tuple[int, str, int]]:
    with runtime.pool.connection() as conn:
        return conn.execute(
            "select id, supplier_stone_id, priced_price_cents from diamonds"
            " where status = 'active' order by id limit %s",
            (count,),
        ).fetchall()


def _add_hold(conn, diamond_id, status, minute, *, until=None, error=None) -> None:
    created_at = SEEDED_AT + timedelta(minutes=minute)
    conn.execute(
        "insert into hold_history (diamond_id, feed, supplier_stone_id, status,"
        " until, client_name, error, created_at, updated_at)"
        " select id, feed, supplier_stone_id, %s, %s, 'shop', %s, %s, %s"
        " from diamonds where id = %s",
        (status, until, error, created_at, created_at, diamond_id),
    )


def _add_order(conn, diamond_id, status, minute, *, order_id=None) -> None:
    created_at = SEEDED_AT + timedelta(minutes=minute)
    conn.execute(
        "insert into purchase_history (idempotency_key, request_hash, diamond_id,"
        " offer_id, price_cents, status, supplier_order_id, client_name, created_at,"
        " updated_at)"
        " values (%s, 'hash', %s, (select offer_id from diamonds where id = %s),"
        " (select priced_price_cents from diamonds where id = %s), %s, %s, 'shop',"
        " %s, %s)",
        (f"key:1:order-{minute}", diamond_id, diamond_id, diamond_id, status,
         order_id, created_at, created_at),
    )


def _seed(runtime, name: str, count: int) -> None:
    """Add `count` finished holds or orders, one per stone."""
    with runtime.pool.connection() as conn:
        for minute, (diamond_id, _, _) in enumerate(_stones(runtime, count)):
            if name == "holds":
                _add_hold(conn, diamond_id, "cancelled", minute)
            else:
                _add_order(conn, diamond_id, "failed", minute)


def _filter(dashboard, name: str, status: str, total: str) -> None:
    """Filter the list by status and wait for its new total."""
    form = dashboard.page.locator(f"#{name}-filters")
    form.get_by_label("Status").select_option(status)
    form.get_by_role("button", name="Filter").click()
    dashboard.page.locator(f"#{name}-total", has_text=total).wait_for()


def _rows(dashboard, name: str) -> list[str]:
    return dashboard.page.locator(f"#{name}-results tbody tr").all_inner_texts()


def _downgrade_key(runtime, key: str) -> None:
    """Leave the dashboard's key without the admin permission, so requests fail."""
    from shared.api.auth import hash_key

    with runtime.pool.connection() as conn:
        conn.execute(
            "update api_keys set permissions = '{read}' where key_hash = %s",
            (hash_key(key),),
        )


def test_holds_page_lists_and_filters(synced, dashboard, local_host):
    runtime = local_host.runtime
    stones = _stones(runtime, 3)
    until = datetime(2024, 5, 2, 10, 0, tzinfo=UTC)
    with runtime.pool.connection() as conn:
        _add_hold(conn, stones[0][0], "active", 0, until=until)
        _add_hold(conn, stones[1][0], "cancelled", 1)
        _add_hold(conn, stones[2][0], "denied", 2, error="stone is already sold")
    denied_id, denied_stone, denied_cents = stones[2]

    dashboard.open("#/holds", "Holds")
    dashboard.screenshot("desktop-holds-seeded")
    total = dashboard.page.locator("#holds-total").inner_text()
    rows = _rows(dashboard, "holds")
    _filter(dashboard, "holds", "denied", "1 hold ·")
    denied_rows = _rows(dashboard, "holds")
    dashboard.page.locator("#holds-results a").click()
    dashboard.page.get_by_role("heading", name=f"Diamond {denied_id}").wait_for()

    assert total == "3 holds · page 1 of 1"
    assert [row.split("\t")[2] for row in rows] == [s[1] for s in reversed(stones)]
    assert _format_time(until) in rows[2]
    assert len(denied_rows) == 1
    assert denied_stone in denied_rows[0]
    assert _format_cents(denied_cents) in denied_rows[0]
    assert _format_time(SEEDED_AT + timedelta(minutes=2)) in denied_rows[0]
    assert "stone is already sold" in denied_rows[0]
    assert dashboard.errors == []


def test_orders_page_lists_and_filters(synced, dashboard, local_host):
    runtime = local_host.runtime
    stones = _stones(runtime, 2)
    with runtime.pool.connection() as conn:
        _add_order(conn, stones[0][0], "completed", 0, order_id="ORDER-1")
        _add_order(conn, stones[1][0], "failed", 1)
        _add_order(conn, None, "pending", 2)
    sold_id, _, sold_cents = stones[0]

    dashboard.open("#/orders", "Orders")
    dashboard.screenshot("desktop-orders-seeded")
    rows = _rows(dashboard, "orders")
    _filter(dashboard, "orders", "completed", "1 order ·")
    completed_rows = _rows(dashboard, "orders")
    link = dashboard.page.locator("#orders-results a").get_attribute("href")

    assert len(rows) == 3
    assert rows[0].split("\t")[1] == "–"
    assert "pending" in rows[0]
    assert len(completed_rows) == 1
    assert "ORDER-1" in completed_rows[0]
    assert _format_cents(sold_cents) in completed_rows[0]
    assert _format_time(SEEDED_AT) in completed_rows[0]
    assert link == f"#/diamonds/{sold_id}"
    assert dashboard.errors == []


@pytest.mark.parametrize("name", ["holds", "orders"])
def test_list_page_pages_through_rows(synced, dashboard, local_host, name):
    _seed(local_host.runtime, name, 25)
    dashboard.open(f"#/{name}", name.capitalize())

    first = _rows(dashboard, name)
    dashboard.page.get_by_role("button", name="Next →").click()
    dashboard.page.locator(f"#{name}-total", has_text="page 2 of 2").wait_for()
    second = _rows(dashboard, name)
    next_disabled = dashboard.page.get_by_role("button", name="Next →").is_disabled()
    dashboard.page.get_by_role("button", name="← Previous").click()
    dashboard.page.locator(f"#{name}-total", has_text="page 1 of 2").wait_for()

    assert len(first) == 20
    assert len(second) == 5
    assert set(first).isdisjoint(second)
    assert next_disabled
    assert dashboard.errors == []


@pytest.mark.parametrize("name", ["holds", "orders"])
def test_list_page_empty_state(synced, dashboard, local_host, name):
    dashboard.open(f"#/{name}", name.capitalize())

    nothing_yet = _rows(dashboard, name)
    _seed(local_host.runtime, name, 1)
    # Each filter changes the total, so waiting for it waits for the new rows.
    _filter(dashboard, name, "", f"1 {name[:-1]} ·")
    _filter(dashboard, name, "pending", f"0 {name} ·")
    none_pending = _rows(dashboard, name)

    assert nothing_yet == [f"No {name} yet."]
    assert none_pending == [f"No pending {name}."]
    assert dashboard.errors == []


@pytest.mark.parametrize("name", ["holds", "orders"])
def test_list_page_shows_failed_load(dashboard, local_host, admin_key, name):
    _downgrade_key(local_host.runtime, admin_key)

    dashboard.open(f"#/{name}", "Could not load this page")
    message = dashboard.page.locator("main .error-text").inner_text()

    assert "lacks the 'admin' permission" in message
    assert not [error for error in dashboard.errors if error.startswith("pageerror")]


@pytest.mark.parametrize("name", ["holds", "orders"])
def test_list_page_shows_failed_filter(dashboard, local_host, admin_key, name):
    dashboard.open(f"#/{name}", name.capitalize())
    _downgrade_key(local_host.runtime, admin_key)

    form = dashboard.page.locator(f"#{name}-filters")
    form.get_by_role("button", name="Filter").click()
    notice = dashboard.notice("Error")

    assert "lacks the 'admin' permission" in notice
    assert not [error for error in dashboard.errors if error.startswith("pageerror")]
