"""Benchmark: slider-to-chart time of the classroom panels in a real browser (JupyterLab and the Voila app).

Issue 13 asks for a median slider-to-chart time on digits of at most 200 ms in JupyterLab
(QuantizationLab "bits", PruningLab "sparsity") and at most 300 ms in the app (its Quantize and
Prune tabs), with the slowest move at most twice the median. This script measures it the way the
browser tests drive the pages (tests/e2e: the same servers, the same Chromium, the same helpers):

* JupyterLab (``make lab``) runs scratch copies of notebooks/01_quantization and 02_pruning, then
  presses one arrow key at a time on the slider (ArrowLeft and ArrowRight alternate, so the value
  stays in range) and times each press until a chart's data in the page differ (the signal of
  ``wait_for_chart_change``). Between moves it waits until no chart changed for 0.5 s.
* The Voila app (notebooks/app.ipynb): the Quantize tab's bits, then the Prune tab's sparsity.
* A reference in the same JupyterLab page: one bare LiveFigure redrawn by an IntSlider, the floor
  a panel cannot go below with today's rendering.

Each move also records when the last chart of the panel stopped changing (``settled``, measured
in the page's own clock from the keydown event). Prints one JSON object and writes
bench/results/redraw.json (or ``--out``). Needs Debian's Chromium (tests/e2e/run.sh installs it)
and Python Playwright from the dev extra.

    python bench/bench_redraw.py [--moves 15] [--out PATH]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:  # imported by the unit tests, not run as a script
    sys.path.insert(0, str(BENCH))

from _common import REPO, emit, log, machine  # noqa: E402

E2E = REPO / "tests" / "e2e"
SCRATCH = REPO / "test-artifacts" / "bench-redraw"  # one level under the repo, like notebooks/
MIN_MOVES = 3
SETTLE_SECONDS = 0.5
MOVE_TIMEOUT = 60  # seconds for one move's chart to change
VIEWPORT = {"width": 1366, "height": 768}
LAB_TARGET_MS, APP_TARGET_MS = 200, 300
# (result name, notebook, slider label) measured in JupyterLab
LAB_SLIDERS = [
    ("lab_quantization_bits", "notebooks/01_quantization.ipynb", r"^bits$"),
    ("lab_pruning_sparsity", "notebooks/02_pruning.ipynb", r"^sparsity$"),
]
REFERENCE_CELL = """\
import ipywidgets as widgets
import plotly.graph_objects as go
import compresslab as cl
import compresslab.widgets._base

fig = cl.widgets._base.figure_widget(go.Figure(go.Scatter(y=[1, 2, 3])))
slider = widgets.IntSlider(value=5, min=0, max=10, description="reference")

def redraw(change):
    with fig.batch_update():
        fig.data[0].y = [change["new"], 2, 3]

slider.observe(redraw, names="value")
widgets.VBox([slider, fig])
"""
NOTE = ("Each move is one key press (ArrowLeft/ArrowRight alternating) on the slider's focused handle. "
        "median_ms/max_ms/p90_ms: from the key press (Playwright, Python clock) until any chart's data in "
        "the page differ from before, the signal of tests/e2e wait_for_chart_change (polled every frame). "
        "settled_*: from the keydown event to the last DOM change inside a chart, in the page's clock, "
        "after 0.5 s without one. page_drawn_*: from the keydown event to the first chart that finished "
        "redrawing (Plotly.react resolved), in the page's clock, without Playwright's round trips and "
        "polling. plotly_draw_median_ms: how long one chart's Plotly.react took; charts_drawn_per_move: "
        "how many charts a move redrew. Moves are one at a time; the page settles between them. "
        "met: median <= target and max <= 2 x median. The reference is one bare LiveFigure (3 points) "
        "redrawn by an IntSlider in the same JupyterLab page. Alternating keys revisit two values: "
        "panels that cache per value (QuantizationLab caches accuracy per spec) measure their revisit "
        "path after the first moves; first_visit_ms lists the moves to a value not seen before.")

# Installed once per page: the time of the last keydown and of the last DOM change inside a chart.
RECORDER_JS = """() => {
    if (window.__redrawBench) return;
    const state = window.__redrawBench = {pressed: 0, lastChart: 0, firstDrawn: 0, drawMs: []};
    document.addEventListener('keydown', () => {
        state.pressed = performance.now(); state.firstDrawn = 0; state.drawMs = [];
    }, true);
    // A panel chart (widgets/static/chart.js) stamps data-drawn when Plotly.react has finished,
    // and data-draw-ms with how long that took.
    new MutationObserver(records => {
        for (const record of records) {
            if (!state.firstDrawn) state.firstDrawn = performance.now();
            state.drawMs.push(parseFloat(record.target.dataset.drawMs));
        }
    }).observe(document.body, {subtree: true, attributes: true, attributeFilter: ['data-drawn']});
    const chartish = node => node.nodeType === 1 && (node.matches('.js-plotly-plot')
        || node.closest('.js-plotly-plot') !== null || node.querySelector('.js-plotly-plot') !== null);
    new MutationObserver(records => {
        for (const record of records) {
            const target = record.target.nodeType === 1 ? record.target : record.target.parentElement;
            if ((target && target.closest('.js-plotly-plot')) || [...record.addedNodes].some(chartish)
                    || [...record.removedNodes].some(chartish)) {
                state.lastChart = performance.now();
                return;
            }
        }
    }).observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
}"""
RECORDER_STATE_JS = "() => ({...window.__redrawBench, now: performance.now()})"


# -- pure parts (unit-tested) --------------------------------------------------------------------


def move_count(text: str) -> int:
    """``--moves``: an integer of at least MIN_MOVES (fewer give no meaningful median, p90 or max)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--moves must be a whole number >= {MIN_MOVES}; got {text!r}") from None
    if value < MIN_MOVES:
        raise argparse.ArgumentTypeError(
            f"--moves must be >= {MIN_MOVES} (a median and a max of fewer moves say nothing); got {value}")
    return value


def parse_arguments(argv=None) -> argparse.Namespace:
    """Command-line arguments: ``--moves`` (key presses per slider) and ``--out`` (JSON path)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--moves", type=move_count, default=15,
                        help=f"single key presses measured per slider (>= {MIN_MOVES}, default 15)")
    parser.add_argument("--out", default=None, help="also write the JSON here (default bench/results/redraw.json)")
    return parser.parse_args(argv)


def percentile(values, fraction: float) -> float:
    """Nearest-rank percentile: the smallest value with at least ``fraction`` of the values at or below it."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1]; got {fraction}")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def target_met(median_ms: float, max_ms: float, target_ms: float) -> bool:
    """Issue 13's rule: the median within the target and the slowest move at most twice the median."""
    return median_ms <= target_ms and max_ms <= 2 * median_ms


def summarize(samples_ms, target_ms: float | None = None) -> dict:
    """Median, max and p90 (ms, one decimal) of ``samples_ms``; with a target, also ``target_ms`` and ``met``."""
    if not samples_ms:
        raise ValueError("no samples to summarize")
    median, maximum = statistics.median(samples_ms), max(samples_ms)
    summary = {"median_ms": round(median, 1), "max_ms": round(maximum, 1),
               "p90_ms": round(percentile(samples_ms, 0.9), 1), "moves": len(samples_ms)}
    if target_ms is not None:
        summary.update(target_ms=target_ms, met=target_met(median, maximum, target_ms))
    return summary


def first_key(now: float | None, low: float | None) -> str:
    """The first arrow to press on a slider at ``now`` with minimum ``low``: right from the bottom, else left.

    Keys then alternate, so the value never leaves the range (a slider has at least two values).
    """
    at_bottom = now is not None and low is not None and now <= low
    return "ArrowRight" if at_bottom else "ArrowLeft"


def slider_result(moves: list[dict], target_ms: float | None) -> dict:
    """A slider's entry of the JSON: the summary of its press-to-chart times plus the settled times."""
    result = summarize([move["chart_ms"] for move in moves], target_ms)
    settled = [move["settled_ms"] for move in moves if move["settled_ms"] is not None]
    if settled:
        result.update(settled_median_ms=round(statistics.median(settled), 1), settled_max_ms=round(max(settled), 1))
    drawn = [move["drawn_ms"] for move in moves if move.get("drawn_ms") is not None]
    if drawn:
        result.update(page_drawn_median_ms=round(statistics.median(drawn), 1), page_drawn_max_ms=round(max(drawn), 1))
    draws = [ms for move in moves for ms in move.get("draw_ms", [])]
    if draws:
        result.update(plotly_draw_median_ms=round(statistics.median(draws), 1), charts_drawn_per_move=round(
            len(draws) / len(moves), 1))
    result["samples_ms"] = [move["chart_ms"] for move in moves]
    result["first_visit_ms"] = [move["chart_ms"] for move in moves if move["first_visit"]]
    result["values"] = [moves[0]["from"], *[move["to"] for move in moves]]
    return result


# -- the browser ---------------------------------------------------------------------------------


def import_e2e():
    """The browser suite's helper modules (tests/e2e), imported as its conftest does."""
    if str(E2E) not in sys.path:
        sys.path.insert(0, str(E2E))
    try:
        import e2e_helpers
        import e2e_servers
        import pytest
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        raise SystemExit(f"bench_redraw needs the dev extra (pytest, playwright) in the venv: {error}") from None
    import conftest  # tests/e2e/conftest.py: where the browser suite keeps Chromium's path and flags
    import test_voila_app

    return e2e_helpers, e2e_servers, conftest, test_voila_app, pytest, sync_playwright


def measure_slider(page, h, label: str, moves: int, *, lab: bool) -> list[dict]:
    """``moves`` single presses of the slider labelled ``label``; one dict per move (times in ms)."""
    page.evaluate(RECORDER_JS)
    slider = h.slider_by_label(page, label)
    aria = slider.locator(h.HANDLE).first.evaluate(
        "el => ['aria-valuenow', 'aria-valuemin'].map(a => parseFloat(el.getAttribute(a)))")
    key = first_key(*[None if value is None or math.isnan(value) else value for value in aria])
    seen = {h.readout(slider)}
    results = []
    for index in range(moves):
        value_before = h.readout(slider)
        charts_before = h.plot_data(page)
        h.press_slider(page, slider, key, times=0)  # scroll and focus now, so only the press is timed
        started = time.perf_counter()
        page.keyboard.press(key)
        try:
            h.wait_for_chart_change(page, charts_before, timeout=MOVE_TIMEOUT)
        except Exception as error:  # noqa: BLE001 - re-raised with what the page shows
            raise RuntimeError(f"move {index + 1} of {label!r} ({key} from {value_before}): no chart changed "
                               f"within {MOVE_TIMEOUT} s; errors on the page: {h.error_outputs(page)}") from error
        chart_ms = (time.perf_counter() - started) * 1000
        settled_ms = wait_until_charts_settle(page)
        page_state = page.evaluate(RECORDER_STATE_JS)
        drawn_ms = (round(page_state["firstDrawn"] - page_state["pressed"], 1)
                    if page_state["firstDrawn"] > page_state["pressed"] else None)
        if lab:
            h.wait_for_idle_kernel(page, timeout=MOVE_TIMEOUT)
        value_after = h.readout(slider)
        if value_after == value_before:
            raise RuntimeError(f"{label!r} still reads {value_before} after {key}: the slider did not move")
        results.append({"from": value_before, "to": value_after, "chart_ms": round(chart_ms, 1),
                        "settled_ms": settled_ms, "drawn_ms": drawn_ms,
                        "draw_ms": [round(ms, 1) for ms in page_state["drawMs"]],
                        "first_visit": value_after not in seen})
        seen.add(value_after)
        key = "ArrowRight" if key == "ArrowLeft" else "ArrowLeft"
    log(f"{label}: " + ", ".join(f"{m['chart_ms']:.0f}" for m in results) + " ms")
    return results


def wait_until_charts_settle(page, timeout: float = 30) -> float | None:
    """Wait until no chart changed for SETTLE_SECONDS; return keydown -> last chart change in ms."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = page.evaluate(RECORDER_STATE_JS)
        if state["now"] - state["lastChart"] >= SETTLE_SECONDS * 1000:
            return round(state["lastChart"] - state["pressed"], 1) if state["lastChart"] > state["pressed"] else None
        time.sleep(0.1)
    raise RuntimeError(f"charts still changing {timeout:.0f} s after the key press")


def run_notebook(page, h, server, relative: str) -> float:
    """Open, run every cell and wait; fail on a traceback or panel error. Returns the seconds."""
    h.open_notebook(page, server, relative)
    h.run_all_cells(page)
    seconds = h.wait_for_all_cells(page, timeout=900)
    errors = h.error_outputs(page)
    if errors:
        raise RuntimeError(f"{relative}: error outputs:\n" + "\n---\n".join(errors))
    log(f"{relative}: ran in {seconds:.0f} s")
    return seconds


def write_reference_notebook() -> str:
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(REFERENCE_CELL)]
    path = SCRATCH / "reference_livefigure.ipynb"
    nbformat.write(notebook, path)
    return path.relative_to(REPO).as_posix()


def scratch_copy(relative: str) -> str:
    """A copy of a course notebook next to the repo's (same depth), so the original is never touched."""
    target = SCRATCH / Path(relative).name
    shutil.copyfile(REPO / relative, target)
    return target.relative_to(REPO).as_posix()


def lab_section(context, h, server, moves: int) -> dict:
    """The reference and both panel notebooks in one JupyterLab tab."""
    SCRATCH.mkdir(parents=True, exist_ok=True)
    page = new_tab(context, h)
    measured = {}
    try:
        run_notebook(page, h, server, write_reference_notebook())
        measured["reference_livefigure"] = measure_slider(page, h, r"^reference$", moves, lab=True)
        for name, notebook, label in LAB_SLIDERS:
            run_notebook(page, h, server, scratch_copy(notebook))
            measured[name] = measure_slider(page, h, label, moves, lab=True)
    finally:
        h.delete_sessions(server)  # stop the kernels: they would compete with the app for the CPU
        page.close()
    return measured


def app_section(context, h, server, open_tab, moves: int) -> dict:
    """The Voila app: Quantize tab's bits, then the Prune tab's sparsity."""
    page = new_tab(context, h)
    measured = {}
    try:
        page.goto(server.url("/"), wait_until="domcontentloaded", timeout=300_000)
        page.locator(".widget-tab .noUi-handle").first.wait_for(state="visible", timeout=300_000)
        page.locator(".js-plotly-plot .main-svg").first.wait_for(state="visible", timeout=60_000)
        errors = h.error_outputs(page)
        if errors or "There was an error when executing cell" in page.inner_text("body"):
            raise RuntimeError(f"the app failed to start: {errors or page.inner_text('body')[:2000]}")
        measured["app_quantize_bits"] = measure_slider(page, h, r"^bits$", moves, lab=False)
        open_tab(page, "Prune", "Pruning lab")
        measured["app_prune_sparsity"] = measure_slider(page, h, r"^sparsity$", moves, lab=False)
    finally:
        page.close()
    return measured


def new_tab(context, h):
    page = context.new_page()
    page.console_log = h.ConsoleLog(page)
    page.set_default_timeout(30_000)
    return page


def only_local(route, request) -> None:
    """Abort every request that leaves 127.0.0.1, as the browser suite does (nothing waits on the network)."""
    host = request.url.split("//", 1)[-1].split("/", 1)[0].split(":")[0]
    local = request.url.startswith(("data:", "blob:")) or host == "127.0.0.1"
    if local:
        route.continue_()
    else:
        route.abort()


def run_browser(moves: int) -> tuple[dict, dict]:
    """Start both servers and Chromium, measure every slider; returns (moves per slider, errors)."""
    h, servers_module, conftest, voila_tests, pytest, sync_playwright = import_e2e()
    if not conftest.CHROMIUM.exists():
        raise SystemExit(f"{conftest.CHROMIUM} is missing: run tests/e2e/run.sh (it installs Debian's chromium) "
                         "or set COMPRESSLAB_CHROMIUM")
    measured, errors = {}, {}
    started_servers = []
    with tempfile.TemporaryDirectory(prefix="bench-redraw-") as root:
        try:
            lab = servers_module.start_server(
                "JupyterLab (make lab)", servers_module.make_command("lab"), Path(root) / "lab",
                token=os.urandom(16).hex(), ready_path="/api/status", timeout=120, log_name="bench-lab-server.log")
            started_servers.append(lab)
            voila = servers_module.start_server(
                "Voila", servers_module.VOILA_COMMAND, Path(root) / "voila", token="",
                ready_path="/voila/static/server-check", timeout=120, accept=range(200, 500),
                log_name="bench-voila-server.log")
            started_servers.append(voila)
            with sync_playwright() as playwright:
                context = playwright.chromium.launch_persistent_context(
                    str(Path(root) / "profile"), executable_path=str(conftest.CHROMIUM), headless=True,
                    args=conftest.CHROMIUM_FLAGS, viewport=VIEWPORT, device_scale_factor=1)
                context.route("**/*", only_local)
                try:
                    for section, run in (("lab", lambda: lab_section(context, h, lab, moves)),
                                         ("app", lambda: app_section(context, h, voila, voila_tests.open_tab, moves))):
                        try:
                            measured.update(run())
                        except (Exception, pytest.fail.Exception) as error:  # noqa: BLE001 - reported in the JSON
                            errors[section] = f"{type(error).__name__}: {error}"[:4000]
                            log(f"{section} failed: {errors[section]}")
                finally:
                    context.close()
        except pytest.fail.Exception as error:  # a server did not start: e2e_servers says why
            errors["servers"] = str(error)[:4000]
        finally:
            for server in started_servers:
                server.stop()
    return measured, errors


def versions() -> dict:
    found = {}
    for package in ("jupyterlab", "plotly", "ipywidgets", "voila", "playwright"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    chromium = os.environ.get("COMPRESSLAB_CHROMIUM", "/usr/bin/chromium")
    try:
        output = subprocess.run([chromium, "--version"], capture_output=True, text=True, timeout=60).stdout
        found["chromium"] = output.strip() or None
    except (OSError, subprocess.TimeoutExpired) as error:
        found["chromium"] = f"unavailable: {error}"
    return found


def main(argv=None) -> int:
    args = parse_arguments(argv)
    load_before, started = os.getloadavg(), time.perf_counter()
    log(f"{args.moves} moves per slider; JupyterLab and Voila in headless Chromium at "
        f"{VIEWPORT['width']}x{VIEWPORT['height']}")
    measured, errors = run_browser(args.moves)
    targets = {name: LAB_TARGET_MS for name, _, _ in LAB_SLIDERS}
    targets.update(app_quantize_bits=APP_TARGET_MS, app_prune_sparsity=APP_TARGET_MS)
    sliders = {name: slider_result(measured[name], target) for name, target in targets.items() if name in measured}
    reference = measured.get("reference_livefigure")
    emit("redraw", {
        "benchmark": "bench_redraw",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "what_is_timed": NOTE,
        "sliders": sliders,
        "reference_livefigure": slider_result(reference, None) if reference else None,
        "targets_met": {name: result["met"] for name, result in sliders.items()},
        "errors": errors,
        "machine": {**machine(), "load_before": load_before, "load_after": os.getloadavg(),
                    "viewport": VIEWPORT},
        "versions": versions(),
        "seconds": round(time.perf_counter() - started, 1),
    }, args.out)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
