"""Result collection: a student's export file, the lecturer's merge, the CLI and the one-click button."""

from __future__ import annotations

import json

import pytest

import compresslab as cl
from compresslab.cli import main
from compresslab.records import export_results, merge_folder


def _record(i=0, **kw):
    return cl.Record(name=f"variant {i}", technique="quantize", spec={"bits": i}, dataset="digits",
                     accuracy=0.9 - 0.01 * i, params=100, nonzero_params=80, dense_float32_bytes=400,
                     tflite_bytes=1000, gzip_bytes=200 + i, **kw)


def test_export_round_trip_keeps_every_field_and_adds_student_and_time(tmp_path):
    records = [_record(1), _record(2, extra={"sparse_bytes": 50})]
    path = export_results(records, tmp_path / "results", student="Lin Wei")
    assert path.parent == tmp_path / "results" and path.name.startswith("results-Lin_Wei-")
    assert path.suffix == ".jsonl"
    again = cl.ExperimentLog(path).records()  # an export is an experiment log
    assert [r.key for r in again] == [r.key for r in records]
    assert again[1].extra["sparse_bytes"] == 50 and again[1].gzip_bytes == 202
    assert {r.extra["student"] for r in again} == {"Lin Wei"}
    assert all(r.extra["exported_at"].endswith("+00:00") for r in again)
    assert [r.to_dict() for r in merge_folder(path.parent)] == [r.to_dict() for r in again]


def test_a_second_export_never_overwrites_the_first(tmp_path):
    first = export_results([_record(1)], tmp_path, student="Ana")
    second = export_results([_record(1), _record(2)], tmp_path, student="Ana")
    assert first != second and first.exists() and second.exists()
    assert len(cl.ExperimentLog(first)) == 1 and len(cl.ExperimentLog(second)) == 2
    assert not [p for p in tmp_path.iterdir() if p.suffix != ".jsonl"]  # no temporary file left behind


def test_export_refuses_a_missing_name_and_nothing_to_export(tmp_path):
    with pytest.raises(ValueError, match="give your name"):
        export_results([_record(1)], tmp_path, student="  ")
    with pytest.raises(ValueError, match="no measured variants"):
        export_results([], tmp_path, student="Ana")
    assert not list(tmp_path.iterdir())


def test_merge_two_students_counts_a_students_repeat_once_and_keeps_both_students(tmp_path):
    export_results([_record(1), _record(2)], tmp_path, student="Ana")
    export_results([_record(2), _record(3)], tmp_path, student="Ana")  # variant 2 again: a duplicate
    export_results([_record(1)], tmp_path, student="Ben")              # same variant, another student
    merged = merge_folder(tmp_path)
    pairs = sorted((r.extra["student"], r.name) for r in merged)
    assert pairs == [("Ana", "variant 1"), ("Ana", "variant 2"), ("Ana", "variant 3"), ("Ben", "variant 1")]


def test_merge_names_a_damaged_file_and_its_line(tmp_path):
    export_results([_record(1)], tmp_path, student="Ana")
    good = export_results([_record(2)], tmp_path, student="Ben")
    damaged = tmp_path / "results-Cy-20250101T000000Z.jsonl"
    damaged.write_text(good.read_text() + '{"name": "x", "accuracy": 93}\n')
    with pytest.raises(ValueError, match=r"results-Cy-20250101T000000Z\.jsonl, line 2 .*accuracy is 93"):
        merge_folder(tmp_path)
    damaged.write_text("")
    with pytest.raises(ValueError, match="results-Cy-20250101T000000Z.jsonl is empty"):
        merge_folder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no .jsonl"):
        merge_folder(tmp_path / "empty")
    with pytest.raises(ValueError, match="is not a folder"):
        merge_folder(tmp_path / "missing")


def test_merge_command_writes_a_report_and_a_log_the_board_reads(tmp_path, capsys):
    folder = tmp_path / "submissions"
    export_results([_record(1), _record(2)], folder, student="Ana")
    export_results([_record(1)], folder, student="Ben")
    report, log = tmp_path / "class.html", tmp_path / "class.jsonl"
    assert main(["merge", str(folder), "--report", str(report), "--log", str(log)]) == 0
    out = capsys.readouterr().out
    assert "3 record(s) from 2 student(s)" in out and "(3 new, 0 already there)" in out
    assert report.is_file() and "variant 2" in report.read_text()
    assert main(["merge", str(folder), "--log", str(log)]) == 0  # a rerun adds nothing
    assert "(0 new, 3 already there)" in capsys.readouterr().out
    assert len(cl.ExperimentLog(log)) == 3
    board = cl.widgets.TradeoffBoard(log)
    assert sorted(board.frame["extra.student"]) == ["Ana", "Ana", "Ben"]


def test_merge_command_errors_without_traceback(tmp_path, capsys):
    assert main(["merge", str(tmp_path)]) == 2
    assert "give --report" in capsys.readouterr().err
    (tmp_path / "bad.jsonl").write_text("not json\n")
    assert main(["merge", str(tmp_path), "--report", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl, line 1 is not a valid record" in err and "Traceback" not in err
    assert not (tmp_path / "r.html").exists()


def test_export_button_writes_into_the_work_folder_and_says_where(tmp_path):
    measured = []
    box = cl.widgets.ExportResultsBox(lambda: measured, tmp_path / "ana")
    assert box.controls["student"].value == "ana"  # one folder per student names the student
    box.controls["export"].click()
    assert "nothing measured yet" in box.error_box.value and box.last_path is None
    measured += [_record(1), _record(2)]
    box.controls["student"].value = "Ana B"
    box.controls["export"].click()
    assert box.error_box.value == ""
    path = box.last_path
    assert path.parent == (tmp_path / "ana" / "results").resolve()
    assert str(path) in box.status.value and "Exported 2 variant(s)" in box.status.value
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["extra"]["student"] for line in lines] == ["Ana B", "Ana B"]
    box.controls["export"].click()  # a second press: a second file, the first one untouched
    assert box.last_path != path and path.exists()
    box.controls["student"].value = ""
    box.controls["export"].click()
    assert "type your name" in box.error_box.value


def test_the_classroom_app_has_the_export_button(tmp_path):
    app = cl.widgets.ClassroomApp(work_dir=tmp_path / "ben")
    assert app.export_box.view in app.view.children
    assert app.export_box.work_dir == (tmp_path / "ben").resolve()
    app.export_box.controls["export"].click()  # before Load: nothing measured, said in the box
    assert "nothing measured yet" in app.export_box.error_box.value
