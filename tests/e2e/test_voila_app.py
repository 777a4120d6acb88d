"""The classroom app (notebooks/app.ipynb) served by Voila, driven in headless Chromium.

One walk through the app as a student would do it: the page loads with no code shown, the
Quantize tab's bit-width slider redraws a chart, then the Prune, Distill and Compare tabs build
their panels when opened, and their sliders (or the comparison chart) work. No traceback, panel
error or JavaScript error may appear on the way.
"""

from __future__ import annotations

import re
import time

import requests
from e2e_helpers import (
    ARTIFACTS,
    chart_summary,
    check_clean_page,
    check_nothing_clipped,
    check_real_charts,
    clipped_charts,
    move_slider_and_check,
    save_screenshot,
    wait_for_pruning_summary,
)
from e2e_servers import make_command, start_server

APP_TIMEOUT = 300  # seconds for the page to execute the app (loads TensorFlow and the baseline)


def open_tab(page, title: str, heading: str, timeout: float = 180) -> float:
    """Click a tab of the app and wait until its panel is built (its ``heading`` is visible)."""
    started = time.monotonic()
    page.locator(".lm-TabBar-tab", has_text=re.compile(rf"^\s*{title}\s*$")).click()
    page.get_by_role("heading", name=heading).wait_for(state="visible", timeout=timeout * 1000)
    return time.monotonic() - started


def visible_charts(page) -> list[dict]:
    return [c for c in chart_summary(page) if c["width"] > 100 and c["height"] > 100 and c["svg"] > 0]


LAPTOP, WIDE = {"width": 1366, "height": 768}, {"width": 1920, "height": 1080}


def test_voila_app_tabs_sliders_and_compare(page, voila_server):
    timings = {}
    page.set_viewport_size(LAPTOP)  # a classroom laptop; every tab is checked for clipped charts
    started = time.monotonic()
    page.goto(voila_server.url("/"), wait_until="domcontentloaded", timeout=APP_TIMEOUT * 1000)
    page.locator(".widget-tab .noUi-handle").first.wait_for(state="visible", timeout=APP_TIMEOUT * 1000)
    page.locator(".js-plotly-plot .main-svg").first.wait_for(state="visible", timeout=60_000)
    timings["page_ready"] = round(time.monotonic() - started, 1)
    body = page.inner_text("body")
    assert "There was an error when executing cell" not in body, body[:3000]
    check_clean_page(page, "Voila app on load")
    # Code-free: Voila strips the sources, so no editor or input area may be on the page.
    assert page.locator(".jp-CodeCell .jp-InputArea, .CodeMirror, .cm-editor").count() == 0, \
        "the app shows code"
    chosen = page.locator(".widget-dropdown select").first.evaluate("el => el.options[el.selectedIndex].text")
    assert chosen.startswith("digits"), chosen
    save_screenshot(page, ARTIFACTS / "voila_app.png", height=1500)
    check_real_charts(page, "Quantize tab", minimum=2)
    check_nothing_clipped(page, "Quantize tab")

    quantize = move_slider_and_check(page, r"^bits$", "ArrowLeft", times=4)
    assert quantize["from"] == "8" and quantize["to"] == "4", quantize
    timings["quantize_slider"] = quantize["seconds_to_redraw"]

    timings["prune_tab"] = round(open_tab(page, "Prune", "Pruning lab"), 1)
    prune = move_slider_and_check(page, r"^sparsity$", "ArrowRight", times=10)
    assert prune["from"] != prune["to"], prune
    timings["prune_slider"] = prune["seconds_to_redraw"]
    summary = wait_for_pruning_summary(page, prune["to"])  # the summary follows the slider once caught up
    assert "test accuracy" in summary, summary
    save_screenshot(page, ARTIFACTS / "voila_prune.png")
    check_nothing_clipped(page, "Prune tab")
    # A double click on "Add this pruned model" (two presses 0.1 s apart) adds the variant once.
    page.get_by_role("button", name=re.compile("Add this pruned model")).dblclick(delay=100)
    page.get_by_text(re.compile("already measured|Added ")).first.wait_for(state="visible", timeout=120_000)

    timings["distill_tab"] = round(open_tab(page, "Distill", "Distillation lab"), 1)
    distill = move_slider_and_check(page, r"^temperature", "ArrowRight", times=4)
    timings["distill_slider"] = distill["seconds_to_redraw"]

    timings["compare_tab"] = round(open_tab(page, "Compare", "Tradeoff board"), 1)
    page.wait_for_function(
        """() => Array.from(document.querySelectorAll('.js-plotly-plot')).some(plot =>
               plot.getBoundingClientRect().width > 100 && plot.offsetParent !== null
               && (plot.data || []).some(trace => (trace.x || []).length > 0))""",
        timeout=60_000,
    )
    assert visible_charts(page), chart_summary(page)
    save_screenshot(page, ARTIFACTS / "voila_compare.png")
    check_nothing_clipped(page, "Compare tab")
    table = page.locator(".widget-html", has_text="pruned").last.inner_text()
    assert table.count(" pruned ") == 1, f"the double click added the pruned model more than once: {table}"
    page.set_viewport_size(WIDE)
    page.wait_for_timeout(1000)  # plotly's responsive resize
    check_nothing_clipped(page, "Compare tab, 1920x1080")
    save_screenshot(page, ARTIFACTS / "voila_compare_1920.png")
    # The clip check can fail: a chart forced wider than the page is reported (then put back).
    # (A panel chart keeps to its container with max-width: 100%, so the forced one loses that too.)
    widen = """([width, maxWidth]) => { const plot = [...document.querySelectorAll('.js-plotly-plot')]
                                 .find(p => p.offsetParent !== null);
                           const before = [plot.style.width, plot.style.maxWidth];
                           plot.style.width = width; plot.style.maxWidth = maxWidth; return before; }"""
    before = page.evaluate(widen, ["4000px", "none"])
    checked, clipped = clipped_charts(page)
    assert clipped, f"a 4000-px chart was not reported as clipped ({checked} charts checked)"
    page.evaluate(widen, before)
    check_clean_page(page, "Voila app after every tab")
    print(f"Voila app timings (s): {timings}; blocked requests: "
          f"{len(page.context.blocked_requests)}; ignored console errors: {page.console_log.ignored}")


def test_make_app_serves_the_app(tmp_path):
    """`make app` itself starts Voila on the app (as root too: Voila has no --allow-root flag)."""
    server = start_server("Voila (make app)", make_command("app"), tmp_path, token="",
                          ready_path="/voila/static/server-check", timeout=120, accept=range(200, 500),
                          log_name="make-app-server.log")
    try:
        response = requests.get(server.url("/voila/static/server-check"), timeout=30)
        assert response.status_code < 500
    finally:
        server.stop()
