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
