"""A sweep killed with SIGKILL: finished records kept, no orphaned workers, a rerun resumes exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import compresslab as cl
from compresslab.records import ExperimentLog

SCRIPT = r"""
import sys
import compresslab as cl
from compresslab.models import build

data = cl.load_dataset("digits").subset(train=300, test=100, seed=0)
model = build("student_cnn", data.input_shape, data.num_classes, seed=0)
cl.train(model, data, epochs=1, seed=0)
grid = {"steps": ["prune"], "prune.sparsity": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "prune.schedule": "oneshot"}
cl.sweep(model, data, grid, sys.argv[1], max_workers=1)
"""


def _marked_processes(marker: str) -> list[int]:
    """Pids of live processes whose environment carries ``marker`` (the sweep and every worker it spawned)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().split(") ", 1)[1][0]
        except OSError:
            continue
        if marker.encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found


def _start(log: Path, marker: str) -> subprocess.Popen:
    env = {**os.environ, "COMPRESSLAB_TEST_MARK": marker}
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(log)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_sigkilled_sweep_leaves_no_orphans_and_resumes(tmp_path):
    log = tmp_path / "sweep.jsonl"
    marker = f"sweep-kill-{uuid.uuid4().hex}"
    parent = _start(log, marker)
    deadline = time.monotonic() + 600
    while not (log.exists() and len(ExperimentLog(log)) >= 2):
        assert parent.poll() is None, f"the sweep ended before it was killed: {parent.stderr.read().decode()[-2000:]}"
        assert time.monotonic() < deadline, "the sweep logged nothing in 10 minutes"
        time.sleep(0.2)
    assert len(_marked_processes(marker)) >= 2  # the sweep and its spawned worker
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    kept = ExperimentLog(log).records()
    assert len(kept) >= 2

    deadline = time.monotonic() + 30
    while _marked_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _marked_processes(marker) == [], "workers outlived the SIGKILLed sweep"

    again = _start(log, marker)
    assert again.wait(timeout=900) == 0, again.stderr.read().decode()[-2000:]
    records = ExperimentLog(log).records()
    names = [record.name for record in records]
    assert len(names) == 6 and len(set(names)) == 6  # nothing lost, nothing run twice
    assert [r.key for r in records[:len(kept)]] == [r.key for r in kept]
    assert isinstance(cl.to_frame(records), object)
