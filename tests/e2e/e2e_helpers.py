"""What the browser tests do to JupyterLab and Voila pages: open, run, read charts, press keys.

Selectors and pitfalls are the ones checked on this machine (see the shared browser-testing
notes): wait for "| Idle" in the status bar before running cells, sliders are noUiSlider handles
that take ArrowLeft / ArrowRight, and a plotly chart is a ``.js-plotly-plot`` element whose
``data`` the page can read.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
ERROR_OUTPUT = '.jp-RenderedText[data-mime-type="application/vnd.jupyter.error"]'
PLOT = ".js-plotly-plot"
HANDLE = ".noUi-handle"

# Console errors that say nothing about compresslab: resources this offline machine cannot
# fetch (the tests abort every request that leaves 127.0.0.1), and the jupytext extension of
# some environments failing to load in Voila.
HARMLESS_CONSOLE = [
    re.compile(r"font-?awesome", re.I),
    re.compile(r"RUNTIME-012.*@jupyterlab/docmanager", re.S),
    re.compile(r"jupytext", re.I),
]


class ConsoleLog:
    """Collects a page's console errors and uncaught exceptions."""

    def __init__(self, page):
        self.errors: list[str] = []
        self.ignored: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def _on_console(self, message):
        if message.type != "error":
            return
        location = (message.location or {}).get("url", "")
        text = f"{message.text} ({location})" if location else message.text
        offline_fetch = "net::ERR_FAILED" in message.text and not location.startswith("http://127.0.0.1")
        if offline_fetch or any(pattern.search(text) for pattern in HARMLESS_CONSOLE):
            self.ignored.append(text)
        else:
            self.errors.append(text)


def serialize_plots_js() -> str:
    """JavaScript that returns every plotly chart's traces as JSON (typed arrays as lists)."""
    return """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(plot => JSON.stringify(
        (plot.data || []).map(trace => ({type: trace.type, name: trace.name, x: trace.x, y: trace.y,
                                         z: trace.z, text: trace.text, values: trace.values})),
        (key, value) => ArrayBuffer.isView(value) ? Array.from(value) : value))"""


def plot_data(page, scope=None) -> list[str]:
    """Serialized traces of every chart on the page (or under the ``scope`` locator)."""
    if scope is None:
        return page.evaluate(serialize_plots_js())
    return scope.evaluate(serialize_plots_js().replace("document.", "el.").replace("() =>", "el =>"))


def chart_summary(page) -> list[dict]:
    """For each chart: number of traces and points, and the SVG it drew (a real chart has both)."""
    return page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(plot => ({
        traces: (plot.data || []).length,
        points: (plot.data || []).reduce((n, t) => n + ((t.y || t.values || t.z || []).length || 0), 0),
        svg: plot.querySelectorAll('.main-svg').length,
        width: plot.getBoundingClientRect().width,
        height: plot.getBoundingClientRect().height,
        title: (plot.layout && plot.layout.title && plot.layout.title.text) || '',
    }))""")


def text_figure_reprs(page) -> list[str]:
    """Outputs that show a figure as text (``FigureWidget({...`` or ``Figure({...``): a failed render."""
    return page.evaluate("""() => Array.from(document.querySelectorAll(
            '.jp-OutputArea-output pre, .jp-RenderedText pre, .widget-output pre'))
        .map(el => el.innerText).filter(t => /^\\s*(FigureWidget|Figure)\\(\\{/.test(t)
                                             || /^\\s*(VBox|HBox|Tab)\\(children=/.test(t))
        .map(t => t.slice(0, 200))""")


def error_outputs(page) -> list[str]:
    """Text of error outputs (tracebacks) and of panel error boxes shown on the page."""
    return page.evaluate(f"""() => [
        ...Array.from(document.querySelectorAll('{ERROR_OUTPUT}')).map(el => el.innerText.slice(0, 3000)),
        ...Array.from(document.querySelectorAll('.compresslab-error')).map(el => 'panel: ' + el.innerText),
    ]""")


# -- checks on a page ------------------------------------------------------------------------------


def check_clean_page(page, where: str) -> None:
    """No traceback or panel error, no JavaScript error, no figure shown as text."""
    errors = error_outputs(page)
    assert not errors, f"{where}: error outputs:\n" + "\n---\n".join(errors)
    text_reprs = text_figure_reprs(page)
    assert not text_reprs, f"{where}: widgets or figures shown as text (not rendered): {text_reprs}"
    console = page.console_log.errors
    assert not console, f"{where}: JavaScript console errors:\n" + "\n".join(console)


def check_real_charts(page, where: str, minimum: int = 1) -> list[dict]:
    charts = chart_summary(page)
    drawn = [c for c in charts if c["svg"] > 0 and c["traces"] > 0 and c["width"] > 100 and c["height"] > 100]
    assert len(drawn) >= minimum, f"{where}: expected {minimum}+ drawn plotly charts, found {charts}"
    return charts


def move_slider_and_check(page, slider_label: str, key: str, *, times: int = 1, timeout: float = 60) -> dict:
    """Press ``key`` on the slider labelled ``slider_label``; assert its value and a chart changed."""
    slider = slider_by_label(page, slider_label)
    value_before = readout(slider)
    charts_before = plot_data(page)
    started = time.monotonic()
    press_slider(page, slider, key, times=times)
    page.wait_for_function(
        "([el, before]) => el.innerText.trim() !== before",
        arg=[slider.locator(".widget-readout").first.element_handle(), value_before],
        timeout=10_000,
    )
    try:
        seconds = wait_for_chart_change(page, charts_before, timeout=timeout)
    except Exception as error:  # noqa: BLE001 - re-raised with what the page said
        raise AssertionError(
            f"slider {slider_label!r} moved {value_before} -> {readout(slider)} but no chart changed within "
            f"{timeout:.0f} s; console errors: {page.console_log.errors}; panel errors: {error_outputs(page)}"
        ) from error
    value_after = readout(slider)
    charts_after = plot_data(page)
    changed = [i for i, (a, b) in enumerate(zip(charts_before, charts_after)) if a != b]
    assert changed or len(charts_before) != len(charts_after)
    return {"label": slider_label, "from": value_before, "to": value_after,
            "seconds_to_redraw": round(time.monotonic() - started, 2), "wait": round(seconds, 2),
            "charts_changed": changed}


def wait_for_pruning_summary(page, sparsity: str, timeout: float = 60) -> str:
    """Wait until the pruning summary and accuracy chart show the sparsity the slider shows (the kernel
    and the browser caught up with every key press); returns the summary. Its rule is bold: "zero the smallest 10% ..." / "将最小的 10% ..."."""
    page.wait_for_function(
        """value => [...document.querySelectorAll('.widget-html b')].some(b => b.offsetParent !== null
               && b.innerText.includes(value) && /smallest|最小/.test(b.innerText))""",
        arg=sparsity, timeout=timeout * 1000)
    # ... and the accuracy chart's "now" marker stands at that sparsity (the last chart a move redraws)
    page.wait_for_function(
        """value => [...document.querySelectorAll('.js-plotly-plot')].some(plot => plot.offsetParent !== null
               && (plot.data || []).some(trace => trace.meta === 'now' && trace.x
                                          && Math.abs(trace.x[0] - parseFloat(value)) < 0.6))""",
        arg=sparsity, timeout=timeout * 1000)
    return page.locator(".widget-html", has=page.locator("b", has_text=re.compile("smallest|最小"))).first.inner_text()


# -- JupyterLab --------------------------------------------------------------------------------


def delete_sessions(server) -> None:
    """Shut down every kernel session, so a notebook opened next starts a fresh kernel."""
    response = server.api("GET", "/api/sessions")
    response.raise_for_status()
    for session in response.json():
        server.api("DELETE", f"/api/sessions/{session['id']}")


def open_notebook(page, server, relative_path: str, *, kernel_timeout: float = 120) -> None:
    """Open ``relative_path`` (from the repo root) in a reset workspace and wait for an idle kernel."""
    delete_sessions(server)
    page.goto(server.url(f"/lab/tree/{relative_path}?reset"), wait_until="domcontentloaded")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    wait_for_idle_kernel(page, timeout=kernel_timeout)


def status_bar_text(page) -> str:
    return page.evaluate("() => (document.querySelector('#jp-main-statusbar') || {}).innerText || ''")


def wait_for_idle_kernel(page, timeout: float) -> None:
    """The execution indicator reads idle before the kernel connects: wait for '| Idle' itself."""
    page.wait_for_function(
        "() => /\\|\\s*Idle/.test((document.querySelector('#jp-main-statusbar') || {}).innerText || '')",
        timeout=timeout * 1000,
    )


def run_all_cells(page) -> None:
    """Run > Run All Cells, through the menu as a person would."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()


def prompts(page) -> list[str]:
    """The input prompts of the code cells ('[3]:', '[*]:', '[ ]:')."""
    return page.evaluate("""() => Array.from(document.querySelectorAll(
        '.jp-Notebook .jp-CodeCell .jp-InputPrompt')).map(el => el.innerText.trim())""")


def wait_for_all_cells(page, timeout: float) -> float:
    """Wait until every code cell has run (no '[*]' left, each prompt numbered); return the seconds.

    Stops early when an error output appears (JupyterLab then skips the remaining cells).
    """
    start = time.monotonic()
    deadline = start + timeout
    # Right after "Run All" the prompts may not show '[*]' yet: wait for the first to change.
    while time.monotonic() < deadline:
        current = prompts(page)
        if current and not any("*" in p for p in current) and all(re.search(r"\d", p) for p in current):
            if wait_still_idle(page):
                return time.monotonic() - start
        if page.locator(ERROR_OUTPUT).count():
            return time.monotonic() - start
        time.sleep(0.5)
    raise AssertionError(f"cells still running after {timeout:.0f} s; prompts {prompts(page)}")


def wait_still_idle(page, settle: float = 1.0) -> bool:
    """True when the kernel reads Idle now and still does ``settle`` seconds later (widget comms)."""
    if not re.search(r"\|\s*Idle", status_bar_text(page)):
        return False
    time.sleep(settle)
    return bool(re.search(r"\|\s*Idle", status_bar_text(page)))


# -- sliders -----------------------------------------------------------------------------------


def slider_by_label(page, pattern: str, scope=None):
    """The ``.widget-slider`` whose description label matches ``pattern`` (case-insensitive)."""
    root = scope if scope is not None else page
    sliders = root.locator(".widget-slider")
    regex = re.compile(pattern, re.I)
    labels = []
    for index in range(sliders.count()):
        slider = sliders.nth(index)
        label = slider.locator(".widget-label").first.inner_text() if slider.locator(".widget-label").count() else ""
        labels.append(label)
        if regex.search(label):
            return slider
    raise AssertionError(f"no slider labelled /{pattern}/ on the page; sliders: {labels}")


def readout(slider) -> str:
    return slider.locator(".widget-readout").first.inner_text().strip()


def press_slider(page, slider, key: str, times: int = 1) -> None:
    """Focus the slider's noUi handle and press ``key`` (ArrowLeft / ArrowRight) ``times`` times."""
    handle = slider.locator(HANDLE).first
    handle.scroll_into_view_if_needed()
    handle.focus()
    for _ in range(times):
        page.keyboard.press(key)


def wait_for_chart_change(page, before: list[str], timeout: float) -> float:
    """Wait until the serialized chart data differ from ``before``; return the seconds it took."""
    start = time.monotonic()
    page.wait_for_function(
        f"""before => {{ const now = ({serialize_plots_js()})();
                         return now.length !== before.length || now.some((d, i) => d !== before[i]); }}""",
        arg=before,
        timeout=timeout * 1000,
    )
    return time.monotonic() - start


def save_screenshot(page, path: Path, *, clip_to=None, height: int | None = None) -> Path:
    """Save a PNG of the viewport, of the element ``clip_to``, or of the page's top ``height`` pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if clip_to is not None:
        clip_to.screenshot(path=str(path))
    elif height is not None:
        width = page.viewport_size["width"]
        page.screenshot(path=str(path), full_page=True, clip={"x": 0, "y": 0, "width": width, "height": height})
    else:
        page.screenshot(path=str(path))
    return path


CLIPPED_CHARTS_JS = """() => {
    const limit = document.documentElement.clientWidth;
    const found = [];
    let checked = 0;
    for (const plot of document.querySelectorAll('.js-plotly-plot')) {
        if (plot.offsetParent === null) continue;                  // on a hidden tab
        // plotly's image export draws a copy in a div of its own at left:-5000px for a moment (toImage):
        // not part of the page. Every chart a user sees lives inside a widget view or an output area.
        if (!plot.closest('.jupyter-widgets, .jp-OutputArea-output, .jp-Cell')) continue;
        const box = plot.getBoundingClientRect();
        if (box.width < 50) continue;
        checked += 1;
        let right = limit, left = 0, node = plot.parentElement;
        while (node && node !== document.body) {
            const style = getComputedStyle(node);
            if (style.overflowX !== 'visible') {                    // this ancestor clips (or scrolls)
                const r = node.getBoundingClientRect();
                right = Math.min(right, r.right); left = Math.max(left, r.left);
            }
            node = node.parentElement;
        }
        if (box.right > right + 2 || box.left < left - 2) {
            const title = plot.querySelector('.gtitle');
            found.push({title: title ? title.textContent : '(untitled)', left: Math.round(box.left),
                        right: Math.round(box.right), visible_from: Math.round(left), visible_to: Math.round(right)});
        }
    }
    return {checked, found};
}"""


def clipped_charts(page) -> tuple[int, list[dict]]:
    """How many visible plotly charts were checked, and those whose box reaches outside the page width
    or a clipping/scrolling ancestor."""
    result = page.evaluate(CLIPPED_CHARTS_JS)
    return result["checked"], result["found"]


def check_nothing_clipped(page, where: str) -> None:
    checked, clipped = clipped_charts(page)
    assert checked >= 1, f"{where}: no visible chart on the page to check for clipping"
    assert not clipped, f"{where}: charts cut off at {page.viewport_size}: {clipped}"
