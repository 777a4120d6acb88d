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


@pytest.fixture(scope="module")
def canary_notebook():
    """A two-cell notebook: an IntSlider that rescales a FigureWidget line (no compresslab)."""
    SCRATCH.mkdir(parents=True, exist_ok=True)
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "import ipywidgets as widgets\nimport plotly.graph_objects as go\n"
            "slider = widgets.IntSlider(value=3, min=1, max=8, description='bits')\n"
            "fig = go.FigureWidget(data=[go.Scatter(x=list(range(8)), y=[3 * i for i in range(8)])],\n"
            "                      layout=go.Layout(title='canary', height=300))\n"
            "slider.observe(lambda change: setattr(fig.data[0], 'y', [change['new'] * i for i in range(8)]),"
            " names='value')\n"
            "widgets.VBox([slider, fig])"),
    ]
    path = SCRATCH / "canary.ipynb"
    nbformat.write(notebook, path)
    return path.relative_to(REPO).as_posix()


def test_harness_canary_slider_moves_chart(page, lab_server, canary_notebook):
    """The harness can tell a live slider from a dead one: y = bits * x must follow the slider."""
    run_notebook(page, lab_server, canary_notebook, timeout=120)
    check_real_charts(page, "canary")
    before = json.loads(plot_data(page)[0])[0]["y"]
    assert before == [3 * i for i in range(8)]
    move = move_slider_and_check(page, "bits", "ArrowRight", times=2)
    after = json.loads(plot_data(page)[0])[0]["y"]
    assert move["to"] == "5"
    assert after == [5 * i for i in range(8)], after
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
