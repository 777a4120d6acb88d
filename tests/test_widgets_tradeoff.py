"""TradeoffBoard driven without a browser: filter, sort, select, reload."""

from __future__ import annotations

import pytest

import compresslab as cl
from compresslab.records import ExperimentLog, Record


def _records():
    return [
        Record(name="float32", technique="baseline", dataset="digits", accuracy=0.95, params=1000,
               nonzero_params=1000, dense_float32_bytes=4000, tflite_bytes=5200, gzip_bytes=3700),
        Record(name="int8 PTQ", technique="quantize", spec={"bits": 8}, dataset="digits", accuracy=0.945,
               params=1000, nonzero_params=1000, dense_float32_bytes=4000, tflite_bytes=1900, gzip_bytes=1500),
        Record(name="int4 QAT", technique="quantize", spec={"bits": 4}, dataset="digits", accuracy=0.90,
               params=1000, nonzero_params=1000, dense_float32_bytes=4000, tflite_bytes=1900, gzip_bytes=1100),
        Record(name="<b>pruned</b>", technique="prune", spec={"target_sparsity": 0.8}, dataset="digits",
               accuracy=0.94, params=1000, nonzero_params=200, dense_float32_bytes=4000, tflite_bytes=5200,
               gzip_bytes=1300),
    ]


def _markers(board):
    return {t.name: list(t.x) for t in board.figures["tradeoff"].data if t.name not in ("Pareto front",)}


def test_board_filters_sorts_and_compares(tmp_path):
    log = ExperimentLog(tmp_path / "log.jsonl")
    log.extend(_records())
    board = cl.widgets.TradeoffBoard(str(log.path))
    assert set(board.controls) >= {"techniques", "sort", "descending", "size", "selected", "reload"}
    assert board.figures["tradeoff"].layout.xaxis.type == "log"
    assert _markers(board)["quantize"] == [1500, 1100]
    front = next(t for t in board.figures["tradeoff"].data if t.name == "Pareto front")
    assert list(front.x) == [1100, 1300, 1500, 3700]

    board.controls["techniques"].value = ("quantize",)
    assert set(_markers(board)) == {"quantize", "selected"}
    assert list(board.visible_frame()["name"]) == ["int8 PTQ", "int4 QAT"]
    assert "float32" not in board.table.value and "int4 QAT" in board.table.value

    board.controls["techniques"].value = ("baseline", "quantize", "prune")
    board.controls["sort"].value = "size"
    board.controls["descending"].value = False
    assert list(board.visible_frame()["name"]) == ["int4 QAT", "<b>pruned</b>", "int8 PTQ", "float32"]
    assert board.table.value.index("int4 QAT") < board.table.value.index("float32")
    assert "<b>pruned</b>" not in board.table.value and "&lt;b&gt;pruned&lt;/b&gt;" in board.table.value

    board.controls["size"].value = "tflite_bytes"
    assert _markers(board)["quantize"] == [1900, 1900]

    board.controls["selected"].value = (0, 3)
    assert "float32" in board.comparison.value and "&lt;b&gt;pruned&lt;/b&gt;" in board.comparison.value
    assert board.comparison.value.count("<th>") >= 3
    ring = next(t for t in board.figures["tradeoff"].data if t.name == "selected")
    assert list(ring.x) == [5200, 5200]
    assert board.last_error is None


def test_board_selection_and_reload_sees_new_records(tmp_path):
    log = ExperimentLog(tmp_path / "log.jsonl")
    log.extend(_records())
    board = cl.widgets.TradeoffBoard(log)

    # Selection is the 'compare' multi-select (chart points are not clickable: LiveFigure is static HTML).
    board.controls["selected"].value = (2,)
    assert "int4 QAT" in board.comparison.value
    ring = next(t for t in board.figures["tradeoff"].data if t.name == "selected")
    assert list(ring.x) == [1100]
    board.controls["selected"].value = ()
    assert "int4 QAT" not in board.comparison.value

    log.append(Record(name="clustered", technique="cluster", dataset="digits", accuracy=0.93, params=1000,
                      nonzero_params=1000, dense_float32_bytes=4000, tflite_bytes=5200, gzip_bytes=1000))
    board.controls["reload"].click()
    assert board.last_error is None
    assert "cluster" in board.controls["techniques"].value
    assert "cluster" in _markers(board) and "clustered" in board.table.value


def test_board_errors():
    with pytest.raises(ValueError, match="no records"):
        cl.widgets.TradeoffBoard([])
    with pytest.raises(ValueError, match="choose one of"):
        cl.widgets.TradeoffBoard(_records(), size="weird")
    board = cl.widgets.TradeoffBoard(_records())
    assert board.controls["reload"].disabled  # records in memory: nothing to re-read


def test_hover_ratio_is_against_the_reference_the_variant_came_from():
    from compresslab.plots.tradeoff import hover_text

    student = {"name": "student", "technique": "distill", "accuracy": 0.9, "accuracy_backend": "keras",
               "dense_float32_bytes": 40_000, "ratio_reference_bytes": 400_000, "reference": "teacher <b>"}
    text = hover_text(student, 10_000, "gzip_bytes")
    assert "40.0x smaller than teacher &lt;b&gt; (dense float32)" in text
    own = {**student, "ratio_reference_bytes": None, "reference": None}
    assert "4.0x smaller than dense float32" in hover_text(own, 10_000, "gzip_bytes")


@pytest.mark.usefixtures("english_afterwards")
def test_the_chinese_board_labels_its_choices_and_tables_and_keeps_english_values(tmp_path):
    """Under set_language("zh") a student sees Chinese choices and headers; code keeps the English values."""
    cl.set_language("zh")
    board = cl.widgets.TradeoffBoard(_records())
    techniques = board.controls["techniques"]
    assert dict(techniques.options) == {"基线": "baseline", "量化": "quantize", "剪枝": "prune"}
    assert ("准确率", "accuracy") in board.controls["sort"].options
    assert ("TFLite 文件", "tflite_bytes") in board.controls["size"].options
    assert "<th>准确率 %</th>" in board.table.value and "accuracy %" not in board.table.value
    board.controls["techniques"].value = ("quantize",)  # values are the English technique names
    assert {trace.meta for trace in board.figures["tradeoff"].data} == {"quantize", "selected", "Pareto front"}
    assert {trace.name for trace in board.figures["tradeoff"].data} == {"量化", "已选", "帕累托前沿"}
    board.controls["selected"].value = (1,)
    assert "<th>测量方式</th>" in board.comparison.value
