"""Browser fixtures: the app served on a real port, and Debian's Chromium driven by Playwright."""

import threading
from pathlib import Path

import pytest
from flask import got_request_exception
from playwright.sync_api import Browser, Page, sync_playwright
from werkzeug.serving import make_server

from .helpers import WAIT, log_in_through_form

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox (containers run as root), and nothing that phones home or updates mid-run.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output"


def _closing_on_drop(app):
    """The app, with every response closed even when the browser drops the connection midway
    (an image it no longer needs): werkzeug's development server then skips the response's
    close(), leaving a sent file open until the garbage collector warns about it. A generator
    is closed when dropped, and closes the response in turn."""

    def wsgi(environ, start_response):
        response = app(environ, start_response)
        try:
            # Not `yield from`: it closes the response itself on the way out, then finally again.
            for chunk in response:  # noqa: UP028
                yield chunk
        finally:
            if hasattr(response, "close"):
                response.close()

    return wsgi


@pytest.fixture
def live_server(app):
    """The test app on 127.0.0.1 and a free port, sharing the test's database."""
    errors: list[BaseException] = []

    def record(sender, exception, **extra):
        errors.append(exception)

    server = make_server("127.0.0.1", 0, _closing_on_drop(app), threaded=True)
    # server_close() then waits for the requests still being answered (a poll, say), so that
    # none is left holding a database connection when the app closes its engine.
    server.daemon_threads = False
    # A short poll interval keeps shutdown() from idling half a second per test.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="live-server"
    )
    # The browser only shows a 500; record the exception so the test says what broke.
    with got_request_exception.connected_to(record, app):
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
    if errors:
        pytest.fail(f"the live server raised: {errors[0]!r}", pytrace=False)


@pytest.fixture(scope="package")
def browser():
    """One Chromium for all of tests/browser.

    Package rather than session scope: between calls, Playwright's sync API leaves its event
    loop marked as running in the main thread, so any later test calling asyncio.run() would
    fail. Stopping Playwright after the last browser test hands the thread back clean.
    """
    if not CHROMIUM.exists():
        pytest.skip(f"chromium not found at {CHROMIUM}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser: Browser, live_server):
    """A page in a fresh context (own cookies) on the live server; closed before it stops."""
    contexts = []

    def make(**context_options) -> Page:
        context = browser.new_context(base_url=live_server, **context_options)
        context.set_default_timeout(WAIT)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def log_in(new_page):
    """A page logged in through the real login form; returns it on the user's home page."""

    def log_in(user, **context_options) -> Page:
        page = new_page(**context_options)
        log_in_through_form(page, user)
        return page

    return log_in


@pytest.fixture
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def quick_polls(app):
    """Pages ask again every fifth of a second: a test waits for what it expects to arrive, not
    for a poll interval to pass."""
    app.config.update(FEED_POLL_SECONDS=0.2, DELIVERY_POLL_SECONDS=0.2, UNREAD_POLL_SECONDS=0.2)


@pytest.fixture
def undo_window_over(app):
    """Messages written in the test are past their undo window at once: Delete, not Unsend."""
    app.config["NOTIFICATION_DELAY_SECONDS"] = 0
