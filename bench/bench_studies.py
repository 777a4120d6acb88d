"""Studies benchmark: a 16-configuration grid on digits, 1 worker vs 2 workers, SQLite and PostgreSQL.

Prints one JSON object. Targets (issue 14): 2 workers finish in at most 0.65x the wall time of 1
worker (same grid, same storage, same run); the storage's per-trial overhead is under 5% of a
trial. The PostgreSQL server is installed and started by scripts/postgres.sh.

Per-trial overhead = (a worker's wall time from its first trial's start to its last trial's end,
minus the time spent inside trials) / trials: what the storage and the worker loop cost between
and around trials. A trial's time is Optuna's datetime_complete - datetime_start.

    python bench/bench_studies.py [--quick]
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _common import REPO, emit, log, machine, parse_args, target


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_postgres(folder: str) -> str:
    script = str(REPO / "scripts" / "postgres.sh")
    subprocess.run(["bash", script, "install"], check=True, capture_output=True)
    out = subprocess.run(["bash", script, "start", folder, str(free_port())], check=True, capture_output=True,
                         text=True)
    return out.stdout.strip().splitlines()[-1]


def run(url: str, name: str, model, data, grid, workers: int) -> dict:
    from compresslab import studies

    study = studies.create_sweep(name, model, data, grid, storage=url)
    started = time.perf_counter()
    codes = studies.run_local_workers(name, url, workers=workers, timeout=3600)
    wall = time.perf_counter() - started
    trials = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    durations = [(t.datetime_complete - t.datetime_start).total_seconds() for t in trials]
    by_worker: dict[str, list] = {}
    for t in trials:
        by_worker.setdefault(t.user_attrs["worker"], []).append(t)
    overheads = []
    for own in by_worker.values():
        span = (max(t.datetime_complete for t in own) - min(t.datetime_start for t in own)).total_seconds()
        inside = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in own)
        overheads.append((span - inside) / len(own))
    return {"workers": workers, "exit_codes": codes, "wall_seconds": round(wall, 2), "trials": len(trials),
            "trials_per_worker": sorted(len(v) for v in by_worker.values()),
            "median_trial_seconds": round(statistics.median(durations), 3),
            "overhead_seconds_per_trial": round(statistics.mean(overheads), 4)}


def main() -> None:
    args = parse_args(__doc__)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per worker: the comparison is about workers
    import compresslab as cl

    data = cl.load_dataset("digits")
    model = cl.baseline("seed_cnn", data, epochs=4, seed=0, progress=False)
    sparsities = [0.2, 0.4, 0.6, 0.8] if args.quick else [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    grid = {"steps": ["prune"], "prune.sparsity": sparsities, "prune.schedule": "oneshot", "prune.epochs": 1,
            "prune.scope": ["layer", "global"] if not args.quick else "layer"}
    configurations = len(cl.pipeline.expand_grid(grid))
    load_before = os.getloadavg()
    folder = tempfile.mkdtemp(prefix="compresslab-bench-")
    pg_folder = tempfile.mkdtemp(prefix="compresslab-bench-pg-")  # its own: the postgres user must own it
    results = {}
    try:
        backends = {"sqlite": f"sqlite:///{Path(folder) / 'studies.db'}", "postgresql": start_postgres(pg_folder)}
        for backend, url in backends.items():
            for workers in (1, 2):
                log(f"{backend}: {configurations} configurations with {workers} worker(s)")
                results[f"{backend}_{workers}"] = run(url, f"bench-{workers}", model, data, grid, workers)
    finally:
        subprocess.run(["bash", str(REPO / "scripts" / "postgres.sh"), "stop", pg_folder], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(pg_folder, ignore_errors=True)
    summary = {}
    for backend in ("sqlite", "postgresql"):
        one, two = results[f"{backend}_1"], results[f"{backend}_2"]
        ratio = two["wall_seconds"] / one["wall_seconds"]
        share = one["overhead_seconds_per_trial"] / one["median_trial_seconds"]
        summary[backend] = {"two_vs_one_wall": target(round(ratio, 3), "<= 0.65", ratio <= 0.65),
                            "overhead_share_of_trial": target(round(share, 4), "< 0.05", share < 0.05)}
    emit("studies", {"machine": machine(), "load_average_before": load_before, "load_average_after": os.getloadavg(),
                     "grid_configurations": configurations, "data": data.describe(), "runs": results,
                     "targets": summary})


if __name__ == "__main__":
    main()
