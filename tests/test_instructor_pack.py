"""The instructor pack (scripts/instructor_pack.py, `make instructor`): handouts and lesson plans as static HTML."""

from __future__ import annotations

import base64
import html
import json
import re
import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pack():
    """scripts/instructor_pack.py's functions (it is a script, not a package module)."""
    return SimpleNamespace(**runpy.run_path(str(ROOT / "scripts" / "instructor_pack.py")))


def _notebook(path: Path, *sources: str) -> None:
    cells = [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None, "outputs": [],
              "source": source} for i, source in enumerate(sources)]
    path.write_text(json.dumps({"cells": cells, "metadata": {"kernelspec": {"name": "python3", "language": "python",
                                                                            "display_name": "Python 3"}},
                                "nbformat": 4, "nbformat_minor": 5}))


def _offline(page: str) -> None:
    """Nothing a handout needs comes from the network: no widget manager, no require.js, plotly.js inline.

    MathJax alone is fetched (formulas typeset online; offline they stay readable TeX)."""
    assert "application/vnd.jupyter.widget-view+json" not in page and "unpkg.com" not in page
    assert "require.min.js" not in page
    assert [src for src in re.findall(r'<script[^>]+src="(https?://[^"]+)"', page) if "mathjax" not in src] == []


def test_pack_for_notebook_00(tmp_path):
    pack = _pack()
    lessons = tmp_path / "lessons"
    lessons.mkdir()
    (lessons / "00_start_here.md").write_text("# Lesson 00\n\n| minutes | part |\n| --- | --- |\n| 10 | setup |\n")
    out = pack.build(tmp_path / "instructor", ["00_start_here.ipynb"], lessons=lessons, echo=lambda line: None)
    page = (out / "handouts" / "00_start_here.html").read_text()
    _offline(page)
    # the solution edition, executed: the answer is filled in and its check passed
    text = html.unescape(re.sub(r"<[^>]+>", "", page))  # code cells are highlighted: one span per token
    assert "my_answer = model.count_params() / small.count_params()" in text and "Exercise: correct!" in text
    # plotly.js is embedded once and every figure is drawn from it (two charts in notebook 00)
    assert page.count("plotly.js v") == 1
    assert page.count("Plotly.newPlot(") == page.count('class="plotly-graph-div"') == 2
    lesson = (out / "lessons" / "00_start_here.html").read_text()
    assert "<h1>Lesson 00</h1>" in lesson and "<td>setup</td>" in lesson
    index = (out / "index.html").read_text()
    assert 'href="handouts/00_start_here.html"' in index and 'href="lessons/00_start_here.html"' in index
    assert sorted(p.name for p in tmp_path.iterdir()) == ["instructor", "lessons"]  # no staging folder left


def test_a_panel_becomes_its_static_state(tmp_path):
    pack = _pack()
    source = tmp_path / "notebooks"
    source.mkdir()
    _notebook(source / "00_panel.ipynb",
              "import ipywidgets as w\nimport plotly.graph_objects as go\nfrom IPython.display import display\n"
              "out = w.Output()\nwith out:\n    display(go.Figure(go.Bar(x=[1, 2], y=[3, 4]), layout={'title': 'inside'}))\n"
              "import numpy as np\nfrom compresslab.widgets._base import figure_widget\n"
              "live = figure_widget(go.Figure(go.Scatter(x=[1, 2, 3], y=[1.0, 2.0, 3.0]), layout={'title': 'live'}))\n"
              "live.data[0].y = np.array([7.0, 8.0, 9.0])  # a panel chart updated after it was made\n"
              "w.VBox([w.HTML('<b>panel status 42</b>'), w.IntSlider(value=6, description='bits'),\n"
              "        w.Dropdown(options=['per_tensor', 'per_channel'], value='per_channel', description='scales'),\n"
              "        out, live])")
    out = pack.build(tmp_path / "pack", source=source, lessons=tmp_path, echo=lambda line: None)
    page = (out / "handouts" / "00_panel.html").read_text()
    _offline(page)
    assert pack.PANEL_NOTE in page and "<b>panel status 42</b>" in page
    assert "<b>bits</b>: 6" in page and "<b>scales</b>: per_channel" in page
    # the Output's figure and the panel chart (a LiveFigure, drawn as it stood last), plotly.js once
    assert page.count("plotly.js v") == 1 and page.count("Plotly.newPlot(") == 2 and "inside" in page
    assert '"text":"live"' in page.replace(" ", "")
    updated = base64.b64encode(np.array([7.0, 8.0, 9.0]).tobytes()).decode()
    assert updated in page  # the last state (plotly.js's typed-array form), not the first


def test_a_failing_notebook_leaves_the_previous_pack(tmp_path):
    pack = _pack()
    source = tmp_path / "notebooks"
    source.mkdir()
    _notebook(source / "00_ok.ipynb", "print('fine')")
    out = pack.build(tmp_path / "pack", source=source, lessons=tmp_path, echo=lambda line: None)
    before = (out / "handouts" / "00_ok.html").read_text()
    _notebook(source / "01_broken.ipynb", "raise RuntimeError('broken on purpose')")
    with pytest.raises(RuntimeError, match="01_broken.ipynb failed while executing"):
        pack.build(out, source=source, lessons=tmp_path, echo=lambda line: None)
    assert (out / "handouts" / "00_ok.html").read_text() == before
    assert not (out / "handouts" / "01_broken.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notebooks", "pack"]
    with pytest.raises(ValueError, match="no such notebook"):
        pack.build(out, ["07_missing.ipynb"], source=source, lessons=tmp_path)
