"""StudyMonitor without a browser: progress and chart follow the study as trials finish."""

from __future__ import annotations

import time

import pytest

from compresslab import studies
from compresslab.widgets.study import StudyMonitor

GRID = {"steps": ["prune"], "prune.sparsity": [0.4, 0.8], "prune.schedule": "oneshot"}


def test_monitor_follows_a_study_as_its_trials_finish(trained_student, small_digits, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    studies.create_sweep("watched", trained_student, small_digits, GRID, storage=url)
    monitor = StudyMonitor("watched", storage=url)
    assert monitor.progress.value == 0 and monitor.progress.max == 2
    assert "0/2 done" in monitor.status.value
    assert sum(len(trace.x or ()) for trace in monitor.figures["tradeoff"].data) == 0
    before = monitor.figures["tradeoff"].render_count

    studies.run_worker("watched", url, max_trials=1)
    state = monitor.refresh()
    assert state.done == 1 and monitor.progress.value == 1 and "1/2 done" in monitor.status.value
    assert monitor.figures["tradeoff"].render_count > before  # redrawn with the finished trial

    monitor.watch(every=0.2)  # background refresh: picks up the second trial without a click
    studies.run_worker("watched", url)
    deadline = time.monotonic() + 30
    while monitor.progress.value < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    monitor.stop()
    assert monitor.progress.value == 2 and "2/2 done" in monitor.status.value
    points = sum(len(trace.x or ()) for trace in monitor.figures["tradeoff"].data if trace.name != "Pareto front")
    assert points == 2


def test_monitor_refuses_a_bad_interval_and_unknown_studies(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    studies.create_class("board", url)
    monitor = StudyMonitor("board", storage=url)
    with pytest.raises(ValueError, match="every is 0"):
        monitor.watch(every=0)
    with pytest.raises(ValueError, match="no study named 'nope'"):
        StudyMonitor("nope", storage=url)


def test_a_students_board_submits_to_the_class_board_once(tmp_path):
    import compresslab as cl

    url = f"sqlite:///{tmp_path / 'class.db'}"
    studies.create_class("lab-3", url)
    mine = [cl.Record(name=f"variant {i}", technique="prune", accuracy=0.9 - i / 100, gzip_bytes=1000 - i)
            for i in range(3)]
    board = cl.widgets.TradeoffBoard(mine)
    box = board.class_submit
    box.controls["submit"].click()  # no class name yet: a clear error in the box, nothing stored
    assert "type the class board&#x27;s name" in box.error_box.value  # HTML-escaped in the box
    box.controls["study"].value, box.controls["student"].value, box.controls["storage"].value = "lab-3", "Lin", url
    box.controls["submit"].click()
    assert "3 new record(s)" in box.status.value
    box.controls["submit"].click()  # pressed again: nothing added twice
    assert "0 new record(s)" in box.status.value and "3 already there" in box.status.value
    # the lecturer's board reads the class study and reloads as submissions arrive
    lecturer = cl.widgets.TradeoffBoard(studies.load_study("lab-3", url))
    assert len(lecturer.frame) == 3 and not lecturer.controls["reload"].disabled
    studies.submit("lab-3", cl.Record(name="Wang's int8", technique="quantize", accuracy=0.95, tflite_bytes=500),
                   student="Wang", storage=url)
    lecturer.controls["reload"].click()
    assert len(lecturer.frame) == 4 and set(lecturer.frame["extra.student"]) == {"Lin", "Wang"}
