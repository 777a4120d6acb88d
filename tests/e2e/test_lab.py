"""JupyterLab in headless Chromium: `make lab` answers, notebooks run, sliders move charts.

Each notebook test opens the notebook in a reset workspace, waits for the kernel, runs every
cell through the Run menu, and then checks what a student would see: no traceback, no panel
error, no JavaScript error, charts drawn as charts (not a text repr), and for the panels, that a
keyboard move of a slider redraws a chart with different data.
"""

from __future__ import annotations

import json

import nbformat
import pytest
import requests
from e2e_helpers import (
    ARTIFACTS,
    REPO,
    check_clean_page,
    check_nothing_clipped,
    check_real_charts,
    move_slider_and_check,
    open_notebook,
    plot_data,
    prompts,
    run_all_cells,
    save_screenshot,
    wait_for_all_cells,
)

SCRATCH = ARTIFACTS / "e2e-notebooks"


def test_make_lab_answers_with_token(lab_server):
    """`make lab` serves /lab with the token, and refuses the API without it."""
    response = requests.get(lab_server.url("/lab"), timeout=30)
    assert response.status_code == 200
    assert "JupyterLab" in response.text
    anonymous = requests.get(f"{lab_server.base_url}/api/contents", timeout=30, allow_redirects=False)
    assert anonymous.status_code in (302, 403), anonymous.status_code


def run_notebook(page, lab_server, relative_path: str, *, timeout: float) -> float:
    """Open a notebook, run all cells, wait; return the run's seconds. Checks every cell ran.

    Also checks that the file on disk was not rewritten (autosave is off in the test settings:
    committed notebooks stay without outputs).
    """
    file = REPO / relative_path
    stamp = (file.stat().st_mtime_ns, file.read_bytes())
    open_notebook(page, lab_server, relative_path)
    run_all_cells(page)
    seconds = wait_for_all_cells(page, timeout=timeout)
    check_clean_page(page, relative_path)
    current = prompts(page)
    assert current and all(any(ch.isdigit() for ch in p) for p in current), \
        f"{relative_path}: not every code cell ran: {current}"
    assert (file.stat().st_mtime_ns, file.read_bytes()) == stamp, f"{relative_path} was rewritten on disk"
    return seconds


# -- the harness itself, on a tiny notebook ---------------------------------------------------------


def write_canary(figures: int) -> str:
    """A one-cell notebook: an IntSlider that rescales the line of ``figures`` compresslab panel figures."""
    SCRATCH.mkdir(parents=True, exist_ok=True)
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "import ipywidgets as widgets\nimport plotly.graph_objects as go\n"
            "from compresslab.widgets._base import figure_widget\n"
            "slider = widgets.IntSlider(value=3, min=1, max=8, description='bits')\n"
            "figures = [figure_widget(go.Figure(data=[go.Scatter(x=list(range(8)), y=[3 * i for i in range(8)])],\n"
            f"                           layout=go.Layout(title='canary', height=250))) for _ in range({figures})]\n"
            "def redraw(change):\n"
            "    for figure in figures:\n"
            "        figure.data[0].y = [change['new'] * i for i in range(8)]\n"
            "slider.observe(redraw, names='value')\n"
            "widgets.VBox([slider, *figures])"),
    ]
    path = SCRATCH / f"canary_{figures}.ipynb"
    nbformat.write(notebook, path)
    return path.relative_to(REPO).as_posix()


@pytest.mark.parametrize("figures", [1, 3])
def test_harness_canary_slider_moves_chart(page, lab_server, figures):
    """The harness tells a live slider from a dead one: y = bits * x must follow the slider.

    Three figures in one output, as in every compresslab panel. (With plotly FigureWidgets this broke
    on a busy machine: anywidget gives each model 2 s to import plotly's 5 MB widget bundle; the panels'
    LiveFigure has a small module of its own and gets plotly.js once, from a shared library widget.)
    """
    run_notebook(page, lab_server, write_canary(figures), timeout=180)
    check_real_charts(page, "canary", minimum=figures)
    before = [json.loads(chart)[0]["y"] for chart in plot_data(page)]
    assert before == [[3 * i for i in range(8)]] * figures
    move = move_slider_and_check(page, "bits", "ArrowRight", times=2)
    assert move["to"] == "5"
    page.wait_for_function(f"() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
                           f".filter(p => p.data[0].y[1] === 5).length === {figures}", timeout=30_000)
    check_clean_page(page, "canary after slider")


# -- the course notebooks --------------------------------------------------------------------------


def test_start_here_runs_and_draws_charts(page, lab_server):
    path = "notebooks/00_start_here.ipynb"
    if not (REPO / path).exists():
        pytest.fail(f"{path} is missing")
    seconds = run_notebook(page, lab_server, path, timeout=600)
    charts = check_real_charts(page, path, minimum=2)
    check_clean_page(page, path)
    save_screenshot(page, ARTIFACTS / "lab_00_start_here.png")
    print(f"{path}: ran in {seconds:.1f} s; charts {charts}")


# (notebook, slider label, key, presses, screenshot). Running all cells of these notebooks trains
# and fine-tunes small models on digits: minutes, not seconds, on a 2-core machine.
PANEL_NOTEBOOKS = [
    ("notebooks/01_quantization.ipynb", r"^bits$", "ArrowLeft", 4, "lab_quantization.png"),
    ("notebooks/02_pruning.ipynb", r"^sparsity$", "ArrowRight", 10, "lab_pruning.png"),
]


@pytest.mark.parametrize("path, label, key, presses, picture", PANEL_NOTEBOOKS,
                         ids=[p[0].split("/")[-1].split(".")[0] for p in PANEL_NOTEBOOKS])
def test_panel_notebook_runs_and_slider_moves_chart(page, lab_server, path, label, key, presses, picture):
    if not (REPO / path).exists():
        pytest.fail(f"{path} is missing")
    seconds = run_notebook(page, lab_server, path, timeout=900)
    # The picture for the README: the panel (its whole output area), the file browser folded away.
    page.keyboard.press("Escape")
    page.keyboard.press("Control+b")
    page.mouse.move(5, 5)
    panel = page.locator(".jp-OutputArea-output", has=page.locator(".widget-slider")).first
    panel.scroll_into_view_if_needed()
    save_screenshot(page, ARTIFACTS / picture, clip_to=panel)
    charts = check_real_charts(page, path, minimum=3)
    empty = panel.evaluate("""el => Array.from(el.querySelectorAll('.js-plotly-plot'))
        .filter(plot => !(plot.data || []).length).length""")
    assert not empty, (f"{path}: {empty} of the panel's charts drew no trace (its figures did "
                       "not render in the browser)")
    move = move_slider_and_check(page, label, key, times=presses)
    assert move["from"] != move["to"], move
    check_clean_page(page, f"{path} after moving {label}")
    # A lecturer's laptop, the file browser open as JupyterLab starts: no chart may be cut off.
    page.keyboard.press("Control+b")
    page.set_viewport_size({"width": 1366, "height": 768})
    page.wait_for_timeout(1000)  # plotly's responsive resize
    check_nothing_clipped(page, f"{path} in JupyterLab, file browser open")
    save_screenshot(page, ARTIFACTS / picture.replace(".png", "_1366.png"))
    page.set_viewport_size({"width": 1920, "height": 1080})  # a projector
    page.wait_for_timeout(1000)
    check_nothing_clipped(page, f"{path} in JupyterLab at 1920x1080")
    save_screenshot(page, ARTIFACTS / picture.replace(".png", "_after_slider.png"))
    print(f"{path}: all cells ran in {seconds:.0f} s; {len(charts)} charts; slider {move}")
