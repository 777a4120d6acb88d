"""Reports: one self-contained HTML file with CSV and JSON beside it, escaped names, clear errors."""

from __future__ import annotations

import csv
import json
import re

import pytest

import compresslab as cl
from compresslab.records import ExperimentLog, Record

EVIL = "<script>alert(1)</script>"


def _records():
    return [
        Record(name=EVIL, technique="baseline", spec={"note": "<b>bold</b>"}, dataset="digits", accuracy=0.95,
               params=1000, nonzero_params=1000, dense_float32_bytes=4000, tflite_bytes=5200, gzip_bytes=3700),
        Record(name="int8 PTQ", technique="quantize", spec={"bits": 8, "mode": "int8"}, dataset="digits",
               accuracy=0.945, params=1000, nonzero_params=1000, dense_float32_bytes=4000, tflite_bytes=1900,
               gzip_bytes=1500, latency_ms=0.05, latency_threads=1),
        Record(name="deep compression", technique="pipeline", spec={"recipe": "deep_compression"},
               dataset="digits", accuracy=0.93, params=1000, nonzero_params=100, dense_float32_bytes=4000,
               extra={"compressed_bytes": 250}),
        Record(name="bad prune", technique="prune", spec={"target_sparsity": 0.99}, dataset="digits",
               accuracy=0.5, params=1000, nonzero_params=10, dense_float32_bytes=4000, tflite_bytes=5200,
               gzip_bytes=900),
    ]


def test_pareto_front_and_sizes():
    from compresslab.plots.tradeoff import pareto_front, size_column

    assert pareto_front([10, 20, 30, 40], [0.9, 0.8, 0.95, 0.95]) == [0, 2]
    frame = cl.to_frame(_records())
    sizes, sources = size_column(frame, "smallest")
    assert sizes == [3700, 1500, 250, 900]
    assert sources == ["gzip_bytes", "gzip_bytes", "extra.compressed_bytes", "gzip_bytes"]
    assert size_column(frame, "tflite_bytes")[0][2] is None
    with pytest.raises(ValueError, match="choose one of"):
        size_column(frame, "bogus")


def test_fig_tradeoff_has_log_axis_front_and_escaped_hover():
    figure = cl.plots.fig_tradeoff(cl.to_frame(_records()))
    assert figure.layout.xaxis.type == "log"
    by_name = {trace.name: trace for trace in figure.data}
    assert set(by_name) == {"baseline", "quantize", "pipeline", "prune", "Pareto front"}
    # The front: smallest (deep compression 93%), then int8 (94.5%), then the baseline (95%).
    assert list(by_name["Pareto front"].x) == [250, 1500, 3700]
    assert by_name["pipeline"].marker.color == cl.plots.TECHNIQUE_COLORS["pipeline"]
    hover = by_name["baseline"].hovertext[0]
    assert EVIL not in hover and "&lt;script&gt;" in hover and "note" in hover


def test_write_report_html_csv_json(tmp_path, digits):
    log = ExperimentLog(tmp_path / "log.jsonl")
    log.extend(_records())
    paths = cl.write_report(str(log.path), tmp_path / "out" / "report", title="My <i>report</i>", data=digits)
    assert paths["html"].name == "report.html" and paths["csv"].exists() and paths["json"].exists()
    text = paths["html"].read_text()
    assert EVIL not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<i>report</i>" not in text and "My &lt;i&gt;report&lt;/i&gt;" in text
    # plotly.js is embedded (opens offline): no script is fetched from a CDN.
    assert "plotly.js v" in text or "Plotly" in text
    assert not re.search(r"<script[^>]*\bsrc=", text)
    assert len(text) > 1_000_000
    for expected in ("int8 PTQ", "deep compression", "tensorflow", "cpu_count", "1,347 train", "Pareto",
                     "&quot;target_sparsity&quot;: 0.99"):
        assert expected in text, expected
    rows = list(csv.DictReader(paths["csv"].open()))
    assert [row["name"] for row in rows] == [r.name for r in _records()]
    assert rows[2]["size_bytes"] in ("250", "250.0") and float(rows[2]["ratio"]) == pytest.approx(16.0)
    payload = json.loads(paths["json"].read_text())
    assert payload["title"] == "My <i>report</i>" and len(payload["records"]) == 4
    assert payload["environment"]["versions"]["tensorflow"]
    assert not list(paths["html"].parent.glob("*.part"))


def test_report_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        cl.write_report(tmp_path / "missing.jsonl", tmp_path / "r.html")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="holds no records"):
        cl.write_report(empty, tmp_path / "r.html")
    corrupt = tmp_path / "corrupt.jsonl"
    corrupt.write_text('{"name": "a"}\nnot json at all\n{"name": "b"}\n')
    with pytest.raises(ValueError, match="corrupt"):
        cl.write_report(corrupt, tmp_path / "r.html")
    with pytest.raises(ValueError, match="holds no records"):
        cl.write_report([], tmp_path / "r.html")
    with pytest.raises(ValueError, match="Record"):
        cl.write_report([{"name": "x"}], tmp_path / "r.html")
    (tmp_path / "folder.html").mkdir()
    with pytest.raises(ValueError, match="folder"):
        cl.write_report(_records(), tmp_path / "folder.html")
    assert not (tmp_path / "r.html").exists()


def test_the_three_files_of_a_report_carry_one_run_id(tmp_path):
    import csv
    import json

    records = [cl.Record(name="float", accuracy=0.98, tflite_bytes=1000, params=250, dense_float32_bytes=1000)]
    first = cl.write_report(records, tmp_path / "r.html")
    run = json.loads(first["json"].read_text())["run_id"]
    assert f'content="{run}"' in first["html"].read_text()
    assert {row["run_id"] for row in csv.DictReader(first["csv"].open())} == {run}
    second = cl.write_report(records, tmp_path / "r.html")
    assert json.loads(second["json"].read_text())["run_id"] != run  # a new write, a new id in all three
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files or journal left


def test_a_distilled_students_ratio_is_against_its_teacher(trained_seed_cnn, trained_student, small_digits,
                                                           tmp_path):
    teacher = cl.measure(trained_seed_cnn, small_digits, name="teacher", latency=False)
    student = cl.measure(trained_student, small_digits, name="distilled student", technique="distill",
                         latency=False, reference=teacher)
    assert (student.reference, student.reference_bytes) == ("teacher", teacher.dense_float32_bytes)
    assert student.tflite_bytes < teacher.tflite_bytes  # the student's file is the smaller one
    frame = cl.report.report_frame([teacher, student])
    row = frame.set_index("name").loc["distilled student"]
    assert row["ratio"] == pytest.approx(teacher.dense_float32_bytes / row["size_bytes"])
    # Not the student's own dense size over its file, the 1x-ish figure reports used to show.
    assert row["ratio"] > 10 * student.dense_float32_bytes / row["size_bytes"]
    assert frame.set_index("name").loc["teacher", "ratio"] == pytest.approx(
        teacher.dense_float32_bytes / frame.set_index("name").loc["teacher", "size_bytes"])
    paths = cl.write_report([teacher, student], tmp_path / "report.html")
    text = paths["html"].read_text()
    assert f"<td>{row['ratio']:.1f}</td>" in text and "<th>against</th>" in text


def test_the_board_shows_the_same_ratio_as_the_report():
    pytest.importorskip("ipywidgets")
    teacher = Record(name="teacher", dataset="digits", accuracy=0.95, params=1000, nonzero_params=1000,
                     dense_float32_bytes=4000, tflite_bytes=4400, gzip_bytes=4000)
    student = cl.records.with_reference(
        Record(name="student", technique="distill", dataset="digits", accuracy=0.93, params=100,
               nonzero_params=100, dense_float32_bytes=400, tflite_bytes=500, gzip_bytes=400), teacher)
    board = cl.widgets.TradeoffBoard([teacher, student])
    ratios = dict(zip(board.sized_frame()["name"], board.sized_frame()["ratio"], strict=True))
    report = cl.report.report_frame([teacher, student]).set_index("name")["ratio"]
    assert ratios["student"] == pytest.approx(report["student"]) == pytest.approx(4000 / 400)
    assert ratios["teacher"] == pytest.approx(report["teacher"]) == pytest.approx(1.0)
