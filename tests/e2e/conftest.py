"""Fixtures of the browser tests: JupyterLab and Voila servers, and headless Chromium.

The servers are started with the Makefile's own commands (``make lab`` and ``make app``), so
these tests prove what a student runs. Everything a user's machine could leak in (settings,
workspaces, kernels, extensions, the Jupyter token) comes from throwaway folders instead: a
fresh HOME, JUPYTER_CONFIG_DIR, JUPYTER_DATA_DIR and JUPYTER_RUNTIME_DIR per session.

Chromium is Debian's (/usr/bin/chromium), driven by Python Playwright; Playwright never
downloads a browser here. Every request that does not go to 127.0.0.1 is aborted, so a test
never waits on the network.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest
from e2e_helpers import ARTIFACTS, REPO, ConsoleLog
from e2e_servers import VOILA_COMMAND, make_command, start_server

CHROMIUM = Path(os.environ.get("COMPRESSLAB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
VIEWPORT = {"width": 1280, "height": 900}


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory):
    """JupyterLab started by `make lab`, on 127.0.0.1 with a token."""
    server = start_server("JupyterLab (make lab)", make_command("lab"), tmp_path_factory.mktemp("lab"),
                          token=secrets.token_hex(16), ready_path="/api/status", timeout=120,
                          log_name="lab-server.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def voila_server(tmp_path_factory):
    """Voila serving notebooks/app.ipynb on 127.0.0.1 (the notebook runs when the page is loaded)."""
    if not (REPO / "notebooks" / "app.ipynb").exists():
        pytest.fail("notebooks/app.ipynb is missing")
    # Any HTTP answer proves the server is up. Not "/": Voila runs the notebook in a new kernel
    # each time "/" is loaded, and the test loads it in the browser.
    server = start_server("Voila", VOILA_COMMAND, tmp_path_factory.mktemp("voila"), token="",
                          ready_path="/voila/static/server-check", timeout=120, accept=range(200, 500),
                          log_name="voila-server.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory):
    """Headless Debian Chromium with a fresh profile; requests off 127.0.0.1 are aborted."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run tests/e2e/run.sh, which installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    blocked: list[str] = []
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport=VIEWPORT,
            device_scale_factor=1,
        )

        def route(route_, request):
            host = request.url.split("//", 1)[-1].split("/", 1)[0].split(":")[0]
            if request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
                route_.continue_()
            else:
                blocked.append(request.url)
                route_.abort()

        context.route("**/*", route)
        context.blocked_requests = blocked
        yield context
        context.close()


@pytest.fixture
def page(browser_context, request):
    """A new tab that records console errors and page errors; screenshot on failure."""
    tab = browser_context.new_page()
    tab.console_log = ConsoleLog(tab)
    tab.set_default_timeout(30_000)
    yield tab
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        try:
            tab.screenshot(path=str(ARTIFACTS / f"FAILED-{request.node.name}.png"), full_page=False)
        except Exception:  # noqa: BLE001 - a failed screenshot must not hide the real failure
            pass
    tab.close()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
