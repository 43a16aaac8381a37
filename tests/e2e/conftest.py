"""Browser tests: the app served on 127.0.0.1 with real CSRF, driven by the system Chromium.

Never a downloaded browser: Playwright launches Debian's /usr/bin/chromium. The machine has
no internet, so every background fetch Chromium would try is switched off.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from casemgr import create_app
from casemgr.accounts import create_user
from casemgr.extensions import db
from casemgr.setup import init_database

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
PASSWORD = "correct-horse-1"
PEOPLE = {
    "spec": ["ar_specialist"],
    "spec2": ["ar_specialist"],
    "mgr": ["credit_manager"],
    "mgr2": ["credit_manager"],
    "ctrl": ["controller"],
    "rep": ["sales_rep"],
    "owner": ["process_owner"],
    "admin": ["admin"],
    "dual": ["ar_specialist", "credit_manager"],
}
EXPECTED_STATUS = re.compile(r"Failed to load resource: .* status of (401|403|409|422) ")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


class LiveServer:
    """The app in a background thread; `url` is its base address."""

    def __init__(self, app, host: str = "127.0.0.1"):
        self.app = app
        self.server = make_server(host, 0, app, threaded=True)  # port 0: the OS picks a free one
        self.url = f"http://{host}:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> Iterator[LiveServer]:
    db_file = tmp_path_factory.mktemp("e2e") / "casemgr-e2e.db"
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_file}",
            "SECRET_KEY": secrets.token_hex(32),
            "WTF_CSRF_ENABLED": True,
        }
    )
    with app.app_context():
        init_database()
        for name, roles in PEOPLE.items():
            create_user(name, roles, PASSWORD, display_name=name.title())
        db.session.commit()
    with LiveServer(app) as server:
        yield server
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="session")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no system Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def screenshot() -> Callable:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


@pytest.fixture
def browser_as(chromium, live_server) -> Iterator[Callable]:
    """browser_as("spec") -> a page in its own browser context, logged in as spec.

    Any server error (5xx) or browser console error seen by these pages fails the test.
    """
    contexts = []
    server_errors: list[str] = []

    def open_as(username: str | None, log_in: bool = True):
        context = chromium.new_context(
            base_url=live_server.url, viewport={"width": 1360, "height": 900}
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("response", lambda r: note_server_error(r, server_errors))
        page.on("console", lambda m: note_console_error(m, server_errors))
        if username and log_in:
            login(page, username)
        return page

    yield open_as
    for context in contexts:
        context.close()
    assert not server_errors, f"errors seen in the browser: {server_errors}"


def note_server_error(response, seen: list[str]) -> None:
    if response.status >= 500:
        seen.append(f"{response.status} {response.url}")


def note_console_error(message, seen: list[str]) -> None:
    """A CSP violation or a missing asset shows up as a console error: fail on it.

    Pages answered on purpose with 401, 403, 409 or 422 (a refused login, a stale task,
    inline form errors) are logged by Chromium as failed loads too; those are expected.
    """
    if message.type == "error" and not EXPECTED_STATUS.search(message.text):
        seen.append(f"console: {message.text}")


def login(page, username: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button:has-text('Log in')")
    page.wait_for_url(lambda url: "/login" not in url)
