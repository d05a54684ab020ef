"""A live portal on 127.0.0.1 and a tablet-sized Chromium driven by Playwright.

Debian's Chromium (/usr/bin/chromium) is used where present; otherwise Playwright's own
browser if `playwright install chromium` could fetch it; otherwise the browser tests skip
with that reason (CI installs Debian's Chromium, so they always run there).
"""
from __future__ import annotations

import functools
import os
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic",
                 "--no-first-run"]


@pytest.fixture
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.config["PORTAL_BASE_URL"] = f"http://127.0.0.1:{server.server_port}"
    yield app.config["PORTAL_BASE_URL"]
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def job_worker(app):
    """A job worker for the live server: a thread running the queue's jobs as they arrive, as
    `flask jobs worker` does in its own process (tests/web/test_jobs_live.py runs that one)."""
    import time

    from portal.jobs.queue import run_pending

    stop = threading.Event()

    def loop():
        while not stop.is_set():
            if not run_pending(app):
                time.sleep(0.1)

    thread = threading.Thread(target=loop, name="job-worker", daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=30)


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        if Path(CHROMIUM).exists():
            b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        else:
            try:
                b = pw.chromium.launch(args=CHROMIUM_ARGS)
            except Exception as exc:  # no browser on this machine
                if os.environ.get("CI"):
                    raise
                pytest.skip(f"no Chromium: install Debian's chromium or run `playwright install chromium` ({exc})")
        # Playwright's own helpers (wait_for_function's polling, axe-core injected with
        # add_script_tag) need eval and inline script, which the portal's CSP forbids. Contexts
        # bypass the CSP unless a test asks for it (tests/e2e/test_lock_screen.py runs with the
        # CSP enforced and asserts the portal's own scripts raise no violation).
        b.new_context = functools.partial(b.new_context, bypass_csp=True)
        yield b
        b.close()


@pytest.fixture(params=[1, 2], ids=["dpr1", "dpr2"])
def tablet(browser, request):
    """A touch tablet in portrait (iPad-sized), at devicePixelRatio 1 and 2."""
    context = browser.new_context(viewport={"width": 820, "height": 1180}, has_touch=True,
                                  device_scale_factor=request.param, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
