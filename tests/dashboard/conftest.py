"""Fixtures of the browser tests: the API on uvicorn, demo data, headless Chromium."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cli.commands import run_sync
from shared.api import create_app
from shared.api.auth import create_api_key
from shared.orchestration import durable_client

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def dashboard_url(local_host, serve_asgi):
    """The local host's API, served by uvicorn on loopback from a thread.

    Requests see the host's in-process Durable client, as `diamond-opus serve`
    sets it, so the trigger routes can start and resume gates.
    """
    api = create_app(local_host.runtime)

    async def app_with_client(scope, receive, send):
        durable_client.set(local_host.client)
        await api(scope, receive, send)

    return serve_asgi(app_with_client)


@pytest.fixture
def admin_key(runtime) -> str:
    with runtime.pool.connection() as conn:
        _, key = create_api_key(conn, "dashboard-test", ["admin"])
    return key


@pytest.fixture
def synced(local_host):
    """Demo data: one completed full sync of the simulator's catalogue."""
    # The local host drives gates with asyncio.run, which cannot start on this
    # thread while Playwright's sync API keeps an event loop running on it.
    with ThreadPoolExecutor(max_workers=1) as pool:
        summary = pool.submit(run_sync, local_host, "full").result()
    assert summary["status"] == "completed"
    return summary


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(
            "Chromium is not installed at /usr/bin/chromium: "
            "run `apt-get install -y chromium`"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


class DashboardPage:
    """A browser page on the dashboard that records console errors."""

    def __init__(self, page, base_url: str, key: str) -> None:
        self.page = page
        self.base_url = base_url
        self.key = key
        self.errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))

    def _on_console(self, message) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def sign_in(self) -> None:
        self.page.goto(f"{self.base_url}/dashboard")
        self.page.get_by_label("Admin API key").fill(self.key)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.get_by_role("heading", name="Overview").wait_for()
        self.page.locator("main[aria-busy='false']").wait_for()

    def open(self, hash_route: str, heading: str) -> None:
        self.page.evaluate("route => { location.hash = route; }", hash_route)
        self.page.get_by_role("heading", name=heading, exact=True).wait_for()
        # The dashboard clears aria-busy once the page's first data is drawn.
        self.page.locator("main[aria-busy='false']").wait_for()

    def notice(self, starting: str = "") -> str:
        """Wait for a notice that starts with `starting` and return its text."""
        pattern = re.compile("^" + re.escape(starting))
        notice = self.page.locator("#notice p").filter(has_text=pattern)
        notice.wait_for()
        return notice.inner_text()

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def make_dashboard(browser, dashboard_url, admin_key):
    """Open signed-in dashboard pages at a given viewport width."""
    contexts = []

    def make(width: int = 1280, height: int = 900) -> DashboardPage:
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        context.set_default_timeout(30_000)
        dashboard = DashboardPage(context.new_page(), dashboard_url, admin_key)
        dashboard.sign_in()
        return dashboard

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def dashboard(make_dashboard) -> DashboardPage:
    return make_dashboard()
