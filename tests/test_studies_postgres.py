"""A study shared through a real PostgreSQL server, started by the test itself (scripts/postgres.sh)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

import compresslab as cl
from compresslab import studies

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "postgres.sh"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    installed = subprocess.run(["bash", str(SCRIPT), "install"], capture_output=True, text=True)
    if installed.returncode != 0:
        message = f"PostgreSQL could not be installed: {installed.stderr.strip()[-500:]}"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI runs as root and must have it
        pytest.skip(message)
    folder = tempfile.mkdtemp(prefix="compresslab-pg-")
    started = subprocess.run(["bash", str(SCRIPT), "start", folder, str(_free_port())], capture_output=True,
                             text=True)
    assert started.returncode == 0, started.stderr + Path(folder, "log").read_text(errors="replace")[-2000:] \
        if Path(folder, "log").exists() else started.stderr
    yield started.stdout.strip().splitlines()[-1]
    subprocess.run(["bash", str(SCRIPT), "stop", folder], capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)


def test_two_worker_processes_share_one_postgresql_study(trained_student, small_digits, postgres_url):
    # Six trials with a fine-tuning epoch each: long enough that both workers are up before the queue empties.
    grid = {"steps": ["prune"], "prune.sparsity": [0.2, 0.3, 0.4, 0.5, 0.6, 0.8], "prune.schedule": "oneshot",
            "prune.epochs": 1}
    study = studies.create_sweep("pg-grid", trained_student, small_digits, grid, storage=postgres_url)
    assert studies.run_local_workers("pg-grid", postgres_url, workers=2, timeout=900) == [0, 0]
    records = studies.study_records(study)
    labels = sorted(label for label, _ in cl.pipeline.expand_grid(grid))
    assert sorted(r.name for r in records) == labels  # each configuration exactly once
    workers = {t.user_attrs["worker"] for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"}
    assert len(workers) == 2, workers  # both processes took trials
    assert studies.progress(study).finished


def test_class_board_on_postgresql(postgres_url):
    studies.create_class("pg-class", postgres_url)
    record = cl.Record(name="int8", technique="quantize", accuracy=0.97, tflite_bytes=12_000)
    assert studies.submit("pg-class", [record], student="Wang", storage=postgres_url) == 1
    assert studies.submit("pg-class", [record], student="Wang", storage=postgres_url) == 0
    assert [r.extra["student"] for r in studies.class_records("pg-class", postgres_url)] == ["Wang"]
