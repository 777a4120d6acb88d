"""Compression studies on shared storage (SQLite here; PostgreSQL in test_studies_postgres.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import compresslab as cl
from compresslab import studies

GRID = {"steps": ["prune"], "prune.sparsity": [0.3, 0.5, 0.7, 0.9], "prune.schedule": "oneshot"}


@pytest.fixture()
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'studies.db'}"


def _optuna_states(study):
    return [(t.number, t.state.name, t.params.get("configuration")) for t in study.get_trials(deepcopy=False)]


def test_a_sweep_study_runs_every_configuration_once_and_reads_back_as_records(trained_student, small_digits, url):
    study = studies.create_sweep("grid", trained_student, small_digits, GRID, storage=url)
    assert studies.progress(study).line().startswith("0/4 done")
    assert studies.run_worker("grid", url) == 4
    records = studies.study_records(study)
    assert sorted(r.name for r in records) == sorted(label for label, _ in cl.pipeline.expand_grid(GRID))
    assert all(r.extra["study"] == "grid" and r.extra["split"] == "test" for r in records)
    by_name = {r.name: r for r in records}
    assert by_name["prune.sparsity=0.9"].sparsity > by_name["prune.sparsity=0.3"].sparsity
    assert studies.progress(study).finished
    frame = cl.to_frame(records)
    assert len(frame) == 4
    # creating it again with the same settings resumes it: nothing is left to run
    again = studies.create_sweep("grid", trained_student, small_digits, GRID, storage=url)
    assert studies.run_worker("grid", url) == 0 and len(studies.study_records(again)) == 4
    # the same name with another grid is refused rather than mixed
    with pytest.raises(ValueError, match="already exists with other settings"):
        studies.create_sweep("grid", trained_student, small_digits, {**GRID, "prune.sparsity": [0.1]}, storage=url)


def test_a_bad_grid_stores_nothing(trained_student, small_digits, url):
    with pytest.raises(ValueError, match="2 configuration"):
        studies.create_sweep("bad", trained_student, small_digits,
                             {"steps": ["prune"], "prune.sparsity": [0.5, 1.5, 2.0]}, storage=url)
    with pytest.raises(ValueError, match="no study named 'bad'"):
        studies.load_study("bad", url)


def test_inputs_travel_inside_the_study_not_as_paths(trained_student, small_digits, url):
    study = studies.create_sweep("inputs", trained_student, small_digits, GRID, storage=url)
    info = studies.study_info(study)
    assert not any(isinstance(v, str) and os.sep in v for v in info.values() if v is not info["configurations"])
    blobs = studies.BlobStore(url)
    model = studies.study.model_from_bytes(blobs.get(info["model"]))
    data = studies.study.data_from_bytes(blobs.get(info["data"]))
    assert model.count_params() == trained_student.count_params()
    assert (data.x_test == small_digits.x_test).all() and data.name == small_digits.name
    carved = small_digits.with_validation(0.2, seed=0)  # the validation split travels too
    again = studies.study.data_from_bytes(studies.study.data_to_bytes(carved))
    assert len(again.y_val) == len(carved.y_val) > 0 and (again.x_val == carved.x_val).all()
    with pytest.raises(KeyError, match="no blob"):
        blobs.get("0" * 64)


def test_storage_errors_name_what_is_accepted(tmp_path):
    with pytest.raises(TypeError, match="database URL"):
        studies.open_storage(5)
    with pytest.raises(ValueError, match="cannot open study storage"):
        studies.open_storage("nosuchdialect://user:secret@host/db")
    with pytest.raises(ValueError, match="student name has"):
        studies.create_class("c", f"sqlite:///{tmp_path / 'c.db'}")
        studies.submit("c", cl.Record(name="x", accuracy=0.5), student="x" * 200, storage=f"sqlite:///{tmp_path / 'c.db'}")


def _worker(url: str, name: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "compresslab.studies", "worker", "--study", name, "--storage", url,
                             "--quiet", "--heartbeat-seconds", "1", "--grace-seconds", "4"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_a_worker_killed_mid_trial_loses_nothing_and_duplicates_nothing(trained_student, digits, url):
    data = digits.subset(train=900, test=200, seed=1)
    grid = {"steps": ["prune"], "prune.sparsity": [0.2, 0.4, 0.6, 0.8], "prune.schedule": "oneshot", "prune.epochs": 2}
    study = studies.create_sweep("kill", trained_student, data, grid, storage=url)
    first, second = _worker(url, "kill"), _worker(url, "kill")
    victim_label = None
    deadline = time.monotonic() + 600
    while victim_label is None:
        assert time.monotonic() < deadline, "no trial of the first worker started in 10 minutes"
        assert first.poll() is None, first.stderr.read().decode()[-2000:]
        for trial in study.get_trials(deepcopy=False):
            if trial.state.name == "RUNNING" and trial.user_attrs.get("worker", "").endswith(f":{first.pid}"):
                victim_label = trial.params["configuration"]
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert second.wait(timeout=900) == 0, second.stderr.read().decode()[-2000:]
    states = _optuna_states(study)
    complete = [label for _, state, label in states if state == "COMPLETE"]
    assert sorted(complete) == sorted(label for label, _ in cl.pipeline.expand_grid(grid)), states
    assert len(complete) == len(set(complete)) == 4  # every configuration once: nothing lost, nothing twice
    failed = [label for _, state, label in states if state == "FAIL"]
    assert failed == [victim_label], states  # the killed trial was detected, failed and run again
    assert studies.progress(study).retried == 1 and studies.progress(study).finished


SUBMITTER = r"""
import sys
from compresslab import studies
from compresslab.records import Record
url, student = sys.argv[1], sys.argv[2]
records = [Record(name=f"{student} variant {i}", technique="prune", accuracy=0.5 + i / 1000, tflite_bytes=1000 + i,
                  params=100, dense_float32_bytes=400) for i in range(250)]
for start in range(0, 250, 10):
    studies.submit("class", records[start:start + 10], student=student, storage=url)
"""


def test_four_processes_submitting_250_records_each_store_1000(url):
    studies.create_class("class", url, title="test class")
    processes = [subprocess.Popen([sys.executable, "-c", SUBMITTER, url, f"student{i}"], stderr=subprocess.PIPE)
                 for i in range(4)]
    for process in processes:
        assert process.wait(timeout=900) == 0, process.stderr.read().decode()[-2000:]
    records = studies.class_records("class", url)
    assert len(records) == 1000
    assert {r.extra["student"] for r in records} == {f"student{i}" for i in range(4)}
    assert len({(r.extra["student"], r.name) for r in records}) == 1000
    # pressing submit again adds nothing
    mine = [r for r in records if r.extra["student"] == "student0"][:5]
    assert studies.submit("class", mine, student="student0", storage=url) == 0


def test_class_board_refuses_what_is_not_a_measured_record(url):
    studies.create_class("c2", url)
    with pytest.raises(TypeError, match="Records"):
        studies.submit("c2", [{"name": "x"}], student="a", storage=url)
    with pytest.raises(ValueError, match="no accuracy"):
        studies.submit("c2", cl.Record(name="unmeasured"), student="a", storage=url)
    with pytest.raises(ValueError, match="no study named 'nope'"):
        studies.submit("nope", cl.Record(name="x", accuracy=0.1), student="a", storage=url)
    assert studies.submit("c2", cl.Record(name="x", accuracy=0.1), storage=url) == 1  # anonymous id
    assert studies.class_records("c2", url)[0].extra["student"].startswith("anon-")


def test_experiment_logs_move_into_and_out_of_studies(tmp_path, url):
    log = cl.ExperimentLog(tmp_path / "mine.jsonl")
    log.extend([cl.Record(name=f"v{i}", technique="prune", accuracy=0.9 - i / 100, gzip_bytes=1000 - i)
                for i in range(3)])
    assert studies.import_log(log, "imported", student="Li", storage=url) == 3
    assert studies.import_log(tmp_path / "mine.jsonl", "imported", student="Li", storage=url) == 0  # idempotent
    back = studies.export_log("imported", tmp_path / "back.jsonl", storage=url)
    assert sorted(r.name for r in back.records()) == ["v0", "v1", "v2"]
    studies.export_log("imported", tmp_path / "back.jsonl", storage=url)
    assert len(back) == 3  # exporting twice appends nothing new


def test_cl_sweep_with_storage_runs_as_a_study_with_two_worker_processes(trained_student, small_digits, tmp_path):
    log = tmp_path / "sweep.jsonl"
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    records = cl.sweep(trained_student, small_digits, GRID, log, storage=url, max_workers=2)
    labels = [label for label, _ in cl.pipeline.expand_grid(GRID)]
    assert [r.name for r in records] == labels  # grid order, each once
    study = studies.load_study("sweep-sweep", url)
    assert len({t.user_attrs["worker"] for t in study.get_trials(deepcopy=False)}) >= 1
    assert [r.key for r in cl.ExperimentLog(log).records()] == [r.key for r in records]  # mirrored to the log
    # the local pool and the study agree on what a configuration is: a rerun without storage skips them all
    again = cl.sweep(trained_student, small_digits, GRID, log, max_workers=1)
    assert [r.key for r in again] == [r.key for r in records] and len(cl.ExperimentLog(log)) == 4


def test_one_report_for_the_whole_class(tmp_path, url):
    studies.create_class("report-class", url, title="Lab 3")
    for student, size in (("Ana", 900), ("Bo", 400)):
        studies.submit("report-class", cl.Record(name=f"{student}'s int8", technique="quantize", accuracy=0.95,
                                                 tflite_bytes=size), student=student, storage=url)
    paths = cl.write_report(studies.load_study("report-class", url), tmp_path / "class.html", title="Lab 3")
    html = paths["html"].read_text()
    assert "Ana&#x27;s int8" in html or "Ana's int8" in html
    assert len(cl.to_frame(studies.load_study("report-class", url))) == 2
