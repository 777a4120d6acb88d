"""Fault drills for the records and file-writing layers: concurrent appends, and writes killed with SIGKILL.

Three drills, each run in child processes that import only ``compresslab.records`` and
``compresslab._io`` (not TensorFlow, so a child starts in a fraction of a second):

- ``concurrent_appends``: W processes append N tiny records each to one ExperimentLog at the
  same moment; counts records lost or duplicated.
- ``write_kills``: a child rewrites one file with :func:`atomic_write` in a loop (self-checking
  payloads of 0.2-2 MB) and is SIGKILLed at a random moment, K times; counts targets that are
  corrupt, temporary files left right after the kill, and those left after the next write.
- ``sweep_kill``: a sweep with 2 spawned workers is SIGKILLed after its second record; counts the
  records kept, the worker processes still alive 10 s later (orphans), and whether a rerun resumes
  to exactly one record per configuration (this drill imports TensorFlow).
- ``set_kills``: the same with :func:`atomic_write_many` writing three files carrying one run id;
  counts sets that mix two runs after the next write (which replays an interrupted set).

``tests/test_faults.py`` runs small versions of these drills; ``python bench/bench_faults.py``
prints the full ones as JSON (with the machine's load average, since the timings depend on it).

Example:
    $ .venv/bin/python bench/bench_faults.py            # 4 x 1,000 appends, 60 + 60 kills
    $ .venv/bin/python bench/bench_faults.py --quick
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Children import compresslab's records/_io modules without running the package's __init__
# (which imports TensorFlow: 8 s per child instead of 0.3 s).
_PRELUDE = textwrap.dedent(f"""
    import sys, types
    package = types.ModuleType("compresslab")
    package.__path__ = [{str(REPO / "compresslab")!r}]
    sys.modules["compresslab"] = package
""")


def _child(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _PRELUDE + textwrap.dedent(code), *args])


def _wait_for(path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"child never created {path}")
        time.sleep(0.005)


# ---------------------------------------------------------------------------------------------
# Concurrent appends

_APPENDER = """
    import os, sys, time
    from compresslab.records import ExperimentLog, Record
    log_path, worker, count, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    log = ExperimentLog(log_path)
    open(go + f".ready{worker}", "w").close()
    while not os.path.exists(go):
        time.sleep(0.001)
    for i in range(count):
        log.append(Record(name=f"w{worker} r{i}", spec={"worker": worker, "i": i, "pad": "x" * 300}))
"""


def concurrent_appends(folder: str | os.PathLike, workers: int = 4, appends: int = 1000) -> dict:
    """``workers`` processes append ``appends`` records each to one log, all starting together.

    Returns:
        ``{"workers", "appends_each", "expected", "read", "lost", "duplicated", "seconds"}``.
    """
    import warnings

    from compresslab.records import ExperimentLog

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    log_path, go = folder / "concurrent.jsonl", folder / "go"
    children = [_child(_APPENDER, str(log_path), str(w), str(appends), str(go)) for w in range(workers)]
    for w in range(workers):
        _wait_for(folder / f"go.ready{w}")
    begin = time.perf_counter()
    go.touch()
    codes = [child.wait() for child in children]
    seconds = time.perf_counter() - begin
    if any(codes):
        raise RuntimeError(f"an appending child failed (exit codes {codes})")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = ExperimentLog(log_path).records()
    names = [record.name for record in records]
    expected = {f"w{w} r{i}" for w in range(workers) for i in range(appends)}
    return {
        "workers": workers, "appends_each": appends, "expected": len(expected), "read": len(records),
        "lost": len(expected - set(names)), "duplicated": len(names) - len(set(names)),
        "warnings": len(caught), "seconds": round(seconds, 2),
    }


# ---------------------------------------------------------------------------------------------
# Writes killed mid-way

def payload(run: int, size: int) -> bytes:
    """A self-checking file body: a header line with its length and SHA-256, then the bytes."""
    body = (f"run {run} ".encode() * (size // 8 + 1))[:size]
    return f"{len(body)} {hashlib.sha256(body).hexdigest()}\n".encode() + body


def intact(path: Path) -> bool:
    """Whether ``path`` holds one whole :func:`payload` (absent counts as intact: never written)."""
    if not path.exists():
        return True
    raw = path.read_bytes()
    header, _, body = raw.partition(b"\n")
    try:
        length, digest = header.split()
    except ValueError:
        return False
    return int(length) == len(body) and hashlib.sha256(body).hexdigest() == digest.decode()


_WRITER = """
    import random, sys
    sys.path.insert(0, sys.argv[3])
    from bench_faults import payload
    from compresslab._io import atomic_write
    target, ready = sys.argv[1] + "/target.bin", sys.argv[2]
    rng = random.Random()
    run = 0
    while True:
        atomic_write(target, payload(run, rng.randint(200_000, 2_000_000)))
        if run == 0:
            open(ready, "w").close()
        run += 1
"""

_SET_WRITER = """
    import random, sys
    from compresslab._io import atomic_write_many, new_run_id
    folder, ready = sys.argv[1], sys.argv[2]
    rng = random.Random()
    first = True
    while True:
        run_id = new_run_id()
        files = {f"{folder}/report.{ext}": f"{run_id}\\n" + "x" * rng.randint(50_000, 500_000)
                 for ext in ("html", "csv", "json")}
        atomic_write_many(files, run_id=run_id)
        if first:
            open(ready, "w").close()
            first = False
"""


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith((".part", ".json")))


def _kill_loop(folder: Path, code: str, kills: int, seed: int, check) -> list[dict]:
    """Start ``code`` ``kills`` times, SIGKILL it at a random moment, and ``check`` the folder each time."""
    rng = random.Random(seed)
    outcomes = []
    for attempt in range(kills):
        ready = folder.parent / f"{folder.name}.ready{attempt}"
        child = _child(code, str(folder), str(ready), str(Path(__file__).parent))
        _wait_for(ready)
        time.sleep(rng.uniform(0.0, 0.25))
        child.send_signal(signal.SIGKILL)
        child.wait()  # reaped: its pid is gone, as after a real crash
        outcomes.append(check(folder))
    return outcomes


def write_kills(folder: str | os.PathLike, kills: int = 60, seed: int = 0) -> dict:
    """Kill a child mid-:func:`atomic_write` ``kills`` times; count corrupt targets and leftovers.

    Returns:
        ``{"kills", "corrupt", "leftovers_after_kill", "leftovers_after_next_write", "mode_ok"}``:
        leftovers right after a kill are expected (SIGKILL cannot be caught); the next write to
        the folder sweeps them.
    """
    from compresslab._io import atomic_write

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    after_kill = after_write = corrupt = 0

    def check(where: Path) -> dict:
        nonlocal after_kill, after_write, corrupt
        corrupt += not intact(where / "target.bin")
        after_kill += len(_leftovers(where))
        atomic_write(where / "other.txt", "the next write to the folder")
        after_write += len(_leftovers(where))
        return {}

    _kill_loop(folder, _WRITER, kills, seed, check)
    umask = os.umask(0)
    os.umask(umask)
    mode = stat.S_IMODE((folder / "target.bin").stat().st_mode)
    return {"kills": kills, "corrupt": corrupt, "leftovers_after_kill": after_kill,
            "leftovers_after_next_write": after_write,
            "final_mode": oct(mode), "mode_ok": mode == 0o666 & ~umask}


def set_kills(folder: str | os.PathLike, kills: int = 60, seed: int = 1) -> dict:
    """Kill a child mid-:func:`atomic_write_many` ``kills`` times; count sets mixing two runs.

    Returns:
        ``{"kills", "mixed_after_kill", "mixed_after_next_write", "leftovers_after_next_write"}``.
    """
    from compresslab._io import sweep

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    mixed_kill = mixed_write = leftovers = 0

    def run_ids(where: Path) -> set[str]:
        return {(where / f"report.{ext}").read_text().split("\n", 1)[0]
                for ext in ("html", "csv", "json") if (where / f"report.{ext}").exists()}

    def check(where: Path) -> dict:
        nonlocal mixed_kill, mixed_write, leftovers
        mixed_kill += len(run_ids(where)) > 1
        sweep(where)  # what the next write to the folder does first
        mixed_write += len(run_ids(where)) > 1
        leftovers += len(_leftovers(where))
        return {}

    _kill_loop(folder, _SET_WRITER, kills, seed, check)
    return {"kills": kills, "mixed_after_kill": mixed_kill, "mixed_after_next_write": mixed_write,
            "leftovers_after_next_write": leftovers}


SWEEP_SCRIPT = """
import sys
import compresslab as cl
from compresslab.models import build

data = cl.load_dataset("digits").subset(train=300, test=100, seed=0)
model = build("student_cnn", data.input_shape, data.num_classes, seed=0)
cl.train(model, data, epochs=1, seed=0)
grid = {"steps": ["prune"], "prune.sparsity": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "prune.schedule": "oneshot"}
cl.sweep(model, data, grid, sys.argv[1], max_workers=2)
"""


def _marked(marker: str) -> list[int]:
    alive = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes() and \
                        (entry / "stat").read_text().split(") ", 1)[1][0] != "Z":
                    alive.append(int(entry.name))
            except OSError:
                continue
    return alive


def sweep_kill(folder: str | os.PathLike) -> dict:
    """SIGKILL a running sweep (2 spawned workers) after its 2nd record; count orphans; rerun and check the resume."""
    sys.path.insert(0, str(REPO))
    from compresslab.records import ExperimentLog

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "sweep.jsonl"
    marker = f"bench-sweep-kill-{os.getpid()}-{time.time_ns()}"
    env = {**os.environ, "COMPRESSLAB_FAULT_MARK": marker}
    parent = subprocess.Popen([sys.executable, "-c", SWEEP_SCRIPT, str(log)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 900
    while not (log.exists() and len(ExperimentLog(log)) >= 2) and time.monotonic() < deadline and parent.poll() is None:
        time.sleep(0.2)
    processes_before = len(_marked(marker))
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    kept = [r.key for r in ExperimentLog(log).records()]
    time.sleep(10)  # the workers notice within 0.5 s; give a loaded machine ample time
    orphans = _marked(marker)
    for pid in orphans:  # do not leave them behind even if the drill failed
        os.kill(pid, signal.SIGKILL)
    rerun = subprocess.run([sys.executable, "-c", SWEEP_SCRIPT, str(log)], env=env, capture_output=True, timeout=1800)
    records = ExperimentLog(log).records()
    names = [r.name for r in records]
    return {"processes_before_kill": processes_before, "records_kept": len(kept), "orphans": len(orphans),
            "rerun_exit_code": rerun.returncode, "records_after_resume": len(records),
            "duplicates_after_resume": len(names) - len(set(names)),
            "kept_records_unchanged": [r.key for r in records[:len(kept)]] == kept}


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 x 200 appends, 10 + 10 kills")
    parser.add_argument("--dir", default=None, help="work folder (default: a new temporary folder)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(dir=args.dir) as work:
        work = Path(work)
        appends = concurrent_appends(work / "appends", 4, 200 if args.quick else 1000)
        kills = write_kills(work / "kills", 10 if args.quick else 60)
        sets = set_kills(work / "sets", 10 if args.quick else 60)
        sweep = sweep_kill(work / "sweep")
    print(json.dumps({
        "bench": "faults", "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "cpus": os.cpu_count(), "concurrent_appends": appends, "write_kills": kills, "set_kills": sets,
        "sweep_kill": sweep,
        "targets": {"lost": 0, "corrupt": 0, "leftovers_after_next_write": 0, "mixed_after_next_write": 0},
        "met": (appends["lost"] == 0 and appends["duplicated"] == 0 and kills["corrupt"] == 0
                and kills["leftovers_after_next_write"] == 0 and kills["mode_ok"]
                and sets["mixed_after_next_write"] == 0 and sets["leftovers_after_next_write"] == 0
                and sweep["orphans"] == 0 and sweep["records_after_resume"] == 6
                and sweep["duplicates_after_resume"] == 0 and sweep["kept_records_unchanged"]),
    }, indent=2))


if __name__ == "__main__":
    main()
