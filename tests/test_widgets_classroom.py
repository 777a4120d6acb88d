"""ClassroomApp (the Voila dashboard) driven without a browser: data sets, load, tabs, Compare."""

from __future__ import annotations

import pytest

import compresslab as cl
from compresslab.widgets.classroom import TABS


@pytest.fixture(scope="module")
def app(trained_student, cache_dir):
    """The app on digits with the tiny student_cnn (the cached conftest model: no training here)."""
    app = cl.widgets.ClassroomApp(baseline_options=dict(epochs=6, seed=0, cache_dir=cache_dir, progress=False))
    app.controls["arch"].value = "student_cnn"
    app.controls["load"].click()
    return app


def test_data_sets_follow_the_variable_when_the_app_is_built(monkeypatch, tmp_path):
    monkeypatch.delenv("COMPRESSLAB_DATA_DIR", raising=False)
    plain = cl.widgets.ClassroomApp()
    assert [name for _, name in plain.controls["dataset"].options] == ["digits"]
    assert "COMPRESSLAB_DATA_DIR" in plain.view.children[1].value
    assert plain.model is None and plain.panels == {}

    monkeypatch.setenv("COMPRESSLAB_DATA_DIR", str(tmp_path))  # set after import: read when built
    with_mnist = cl.widgets.ClassroomApp()
    assert [name for _, name in with_mnist.controls["dataset"].options] == ["digits", "mnist"]
    assert str(tmp_path) in with_mnist.controls["dataset"].options[1][0]
    assert with_mnist.view.children[1].value == "<small></small>"


def test_load_builds_the_first_tab(app, trained_student):
    assert app.last_error is None, app.last_error
    assert app.model.count_params() == trained_student.count_params()
    assert app.data.name == "digits"
    assert "student_cnn on digits" in app.status.value
    assert list(app.tabs.titles) == list(TABS)
    assert set(app.panels) == {"Quantize"}
    assert isinstance(app.panels["Quantize"], cl.widgets.QuantizationLab)
    assert app.pages[0].children == (app.panels["Quantize"].view,)
    assert not app.controls["load"].disabled


def test_each_tab_builds_its_panel_once(app):
    app.tabs.selected_index = TABS.index("Prune")
    assert app.last_error is None, app.last_error
    prune = app.panels["Prune"]
    assert isinstance(prune, cl.widgets.PruningLab)
    assert app.pages[1].children == (app.controls["add_pruned"], prune.view)

    app.tabs.selected_index = TABS.index("Distill")
    assert app.last_error is None, app.last_error
    assert isinstance(app.panels["Distill"], cl.widgets.DistillationLab)
    assert app.pages[2].children == (app.panels["Distill"].view,)

    app.tabs.selected_index = TABS.index("Prune")
    assert app.panels["Prune"] is prune  # built once, kept with its slider positions


def test_compare_gathers_the_baseline_and_an_added_pruned_model(app):
    app.tabs.selected_index = TABS.index("Compare")
    assert app.last_error is None, app.last_error
    board = app.panels["Compare"]
    assert isinstance(board, cl.widgets.TradeoffBoard)
    assert app.pages[3].children[1:] == (app.controls["gather"], board.view)
    assert list(board.frame["technique"]) == ["baseline"]
    assert any(t.name == "baseline" for t in board.figures["tradeoff"].data)

    app.tabs.selected_index = TABS.index("Prune")
    app.panels["Prune"].controls["sparsity"].value = 0.5
    app.controls["add_pruned"].click()
    assert app.last_error is None, app.last_error
    assert "pruned 50.0% (layer scope)" in app.status.value
    app.controls["add_pruned"].click()  # pressed twice: the variant is recognised, not added again
    assert app.last_error is None and len(app.extra_records) == 1
    assert "already measured" in app.status.value
    app.controls["gather"].click()
    board = app.panels["Compare"]
    assert list(board.frame["technique"]) == ["baseline", "prune"]
    assert any(t.name == "prune" and len(t.x) == 1 for t in board.figures["tradeoff"].data)
    assert "pruned 50.0%" in board.table.value


def test_load_keeps_what_was_measured(app):
    before = {record.name for record in app.records()}
    assert any("pruned" in name for name in before)
    app.controls["load"].click()  # Load again (or another model): the results measured so far stay
    assert app.last_error is None, app.last_error
    assert app.extra_records == [] and "stay in Compare" in app.status.value
    after = [record.name for record in app.records()]
    assert before <= set(after) and len(after) == len(set(after))  # nothing lost, nothing twice


def test_errors_land_in_the_error_box():
    fresh = cl.widgets.ClassroomApp()
    fresh.controls["add_pruned"].click()  # nothing loaded, no Prune tab yet
    assert isinstance(fresh.last_error, RuntimeError)
    assert "Prune tab" in fresh.error_box.value
    fresh.tabs.selected_index = TABS.index("Compare")  # before Load: nothing to build, no error
    assert fresh.panels == {}
