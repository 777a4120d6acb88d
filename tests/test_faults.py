"""Small, fast versions of bench/bench_faults.py's drills: concurrent appends and SIGKILLed writes."""

import importlib.util
import os
import stat
from pathlib import Path

import pytest

from compresslab import _io

_SPEC = importlib.util.spec_from_file_location(
    "bench_faults", Path(__file__).resolve().parents[1] / "bench" / "bench_faults.py")
faults = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(faults)


def test_four_processes_appending_1000_records_each_lose_nothing(tmp_path):
    # before the log took an OS lock, a writer took another's half-written line for a crash
    # leftover and truncated it: 2 to 26 of 4,000 records lost per run
    result = faults.concurrent_appends(tmp_path, workers=4, appends=1000)
    assert (result["lost"], result["duplicated"], result["read"]) == (0, 0, 4000)
    assert result["warnings"] == 0


def test_killed_atomic_writes_never_corrupt_and_leave_nothing_after_the_next_write(tmp_path):
    result = faults.write_kills(tmp_path / "kills", kills=8)
    assert result["corrupt"] == 0
    assert result["leftovers_after_next_write"] == 0
    assert result["mode_ok"], result["final_mode"]


def test_killed_set_writes_are_finished_by_the_next_write(tmp_path):
    result = faults.set_kills(tmp_path / "sets", kills=8)
    assert result["mixed_after_next_write"] == 0 and result["leftovers_after_next_write"] == 0


def test_final_file_keeps_the_umask_not_the_temp_files_0600(tmp_path):
    old = os.umask(0o022)
    try:
        _io.atomic_write(tmp_path / "report.html", "<p>hi</p>")
        _io.atomic_write_many({tmp_path / "a.csv": "1", tmp_path / "a.json": "{}"})
    finally:
        os.umask(old)
    for name in ("report.html", "a.csv", "a.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


def test_stale_part_of_a_dead_writer_is_swept_by_the_next_write(tmp_path):
    dead = tmp_path / ".report.html.cl-999999999-abc.part"  # no such pid
    old = tmp_path / ".x.cl-1-def.part"  # pid 1 is alive, but the file is two minutes old
    fresh = tmp_path / f".y.cl-{os.getpid()}-0a1.part"  # a live writer's file in progress
    for path in (dead, old, fresh):
        path.write_bytes(b"half")
    os.utime(old, (os.path.getmtime(old) - 120,) * 2)
    unrelated = tmp_path / ".download.part"  # not ours: left alone
    unrelated.write_bytes(b"x")
    _io.atomic_write(tmp_path / "report.html", "new")
    assert not dead.exists() and not old.exists() and fresh.exists() and unrelated.exists()


def test_interrupted_set_is_replayed_from_its_journal(tmp_path):
    for name in ("r.html", "r.csv"):
        (tmp_path / name).write_text("old run")
    for name in ("r.html", "r.csv"):
        (tmp_path / f".{name}.cl-999999999-1.part").write_text("new run")
    journal = {"run_id": "new", "pid": 999999999, "host": None,
               "pairs": [[".r.html.cl-999999999-1.part", "r.html"], [".r.csv.cl-999999999-1.part", "r.csv"]]}
    (tmp_path / ".new-1.cl-set.json").write_text(__import__("json").dumps(journal))
    os.replace(tmp_path / ".r.html.cl-999999999-1.part", tmp_path / "r.html")  # killed after one rename
    assert _io.sweep(tmp_path) == {"sets_finished": 1, "parts_removed": 0}
    assert (tmp_path / "r.csv").read_text() == "new run" and (tmp_path / "r.html").read_text() == "new run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "r.html"]


def test_atomic_write_many_rejects_bad_sets(tmp_path):
    with pytest.raises(ValueError, match="at least one file"):
        _io.atomic_write_many({})
    with pytest.raises(ValueError, match="one folder at a time"):
        _io.atomic_write_many({tmp_path / "a": "1", tmp_path / "sub" / "b": "2"})
    with pytest.raises(TypeError, match="bytes or str, got int"):
        _io.atomic_write(tmp_path / "a", 5)
    run_id, paths = _io.atomic_write_many({tmp_path / "a": "1", tmp_path / "b": b"2"}, run_id="r1")
    assert run_id == "r1" and [p.name for p in paths] == ["a", "b"]
