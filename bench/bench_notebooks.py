"""Benchmark: wall time of each course notebook (notebooks/0*.ipynb) on digits, against issue 13's 60 s.

Issue 13 asks that every notebook, in both languages, still runs in at most 60 s on digits. The
Chinese edition's code is the English code (scripts/translate.py --check), so the English student
notebooks are timed. Each one is executed the way ``make notebooks`` runs it (nbmake): nbclient,
kernel ``python3``, working directory notebooks/, outputs cleared first, one notebook at a time.

``total_seconds`` runs from the kernel's start to the last cell's reply (what nbmake waits for);
``kernel_start_seconds`` is the part before the first cell. Each cell is timed from the moment
nbclient sends it until its reply; the five slowest are listed with the first line of their code.

Two cache states (the trained baselines under the data home, see compresslab/models.py):

* warm (default): the checkout's own ``data/`` folder, as a second ``make notebooks`` sees it.
* ``--fresh``: an empty temporary ``COMPRESSLAB_HOME`` shared by the notebooks of this run, as on a
  fresh clone: the first notebook that needs a baseline trains it, later ones load it.

Prints one JSON object and writes bench/results/notebooks.json (or ``--out``).

    python bench/bench_notebooks.py [--only 05_report] [--fresh] [--executed DIR] [--out PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:  # imported by the unit tests, not run as a script
    sys.path.insert(0, str(BENCH))

from _common import REPO, emit, log, machine  # noqa: E402

NOTEBOOKS = REPO / "notebooks"
TARGET_SECONDS = 60.0
SLOWEST = 5
CELL_TIMEOUT = 900  # seconds, nbmake's --nbmake-timeout in the Makefile
NOTE = ("total_seconds: kernel start to the last cell's reply (nbclient, kernel python3, cwd notebooks/, "
        "outputs cleared, like nbmake). kernel_start_seconds: the part before the first cell is sent. "
        "cells: from sending a cell to its reply. met: total_seconds <= target_seconds for every notebook. "
        "cache 'warm' uses the checkout's data home; 'fresh' an empty COMPRESSLAB_HOME shared by this run's "
        "notebooks, as on a fresh clone.")


def first_line(source: str) -> str:
    """The first non-blank line of a cell's code, cut to 80 characters."""
    for line in source.splitlines():
        if line.strip():
            return line.strip()[:80]
    return ""


def summarize(name: str, total_seconds: float, cells: list[tuple[int, str, float]],
              kernel_start_seconds: float = 0.0, target_seconds: float = TARGET_SECONDS) -> dict:
    """One notebook's result: its total, its slowest cells and whether it meets the target.

    Args:
        name: the notebook's stem, e.g. ``05_report``.
        total_seconds: kernel start to the last reply.
        cells: ``(cell index, source, seconds)`` of every code cell run.
        kernel_start_seconds: the part of the total before the first cell.
        target_seconds: the most a notebook may take.

    Returns:
        A dict with the rounded total, the ``SLOWEST`` slowest cells (slowest first, ties by index),
        the code cells' sum, the target and ``met``.

    Raises:
        ValueError: when a time is negative or the target is not positive.
    """
    if target_seconds <= 0:
        raise ValueError(f"target_seconds must be positive; got {target_seconds!r}")
    if total_seconds < 0 or kernel_start_seconds < 0 or any(seconds < 0 for _, _, seconds in cells):
        raise ValueError(f"{name}: times must be >= 0 seconds")
    slowest = sorted(cells, key=lambda cell: (-cell[2], cell[0]))[:SLOWEST]
    return {
        "notebook": name,
        "total_seconds": round(total_seconds, 1),
        "kernel_start_seconds": round(kernel_start_seconds, 1),
        "code_cells": len(cells),
        "cells_seconds": round(sum(seconds for _, _, seconds in cells), 1),
        "slowest_cells": [{"index": index, "code": first_line(source), "seconds": round(seconds, 2)}
                          for index, source, seconds in slowest],
        "target_seconds": target_seconds,
        "met": total_seconds <= target_seconds,
    }


def run_notebook(path: Path, timeout: int = CELL_TIMEOUT, executed_dir: Path | None = None
                 ) -> tuple[float, float, list[tuple[int, str, float]]]:
    """Execute one notebook like nbmake and time it (and keep the executed copy in ``executed_dir``).

    Returns:
        ``(total seconds, kernel start seconds, [(cell index, source, seconds), ...])``.

    Raises:
        nbclient.exceptions.CellExecutionError: when a cell fails (the notebook is broken, not slow).
    """
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(str(path), as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=True)
    sent: dict[int, float] = {}
    cells: list[tuple[int, str, float]] = []

    def on_execute(cell, cell_index, **_):
        sent[cell_index] = time.perf_counter()

    def on_executed(cell, cell_index, **_):
        cells.append((cell_index, cell.source, time.perf_counter() - sent[cell_index]))

    client.on_cell_execute = on_execute
    client.on_cell_executed = on_executed
    started = time.perf_counter()
    client.execute(cwd=str(path.parent))
    total = time.perf_counter() - started
    if executed_dir is not None:  # to read the outputs the markdown's claims are about
        executed_dir.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, str(executed_dir / path.name))
    kernel_start = (min(sent.values()) - started) if sent else total
    return total, kernel_start, cells


def notebook_paths(only: list[str] | None) -> list[Path]:
    """notebooks/0*.ipynb in order, or the ones ``only`` names (stem with or without ``.ipynb``)."""
    paths = sorted(NOTEBOOKS.glob("0*.ipynb"))
    if not only:
        return paths
    by_stem = {path.stem: path for path in paths}
    chosen = []
    for name in only:
        stem = Path(name).name.removesuffix(".ipynb")
        if stem not in by_stem:
            raise SystemExit(f"--only {name!r}: no such course notebook; choose from {', '.join(by_stem)}")
        chosen.append(by_stem[stem])
    return chosen


def parse_arguments(argv=None) -> argparse.Namespace:
    """The command line: ``--only`` (repeatable), ``--fresh``, ``--target``, ``--executed``, ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", metavar="NOTEBOOK",
                        help="run only this notebook, e.g. 05_report (repeat for more)")
    parser.add_argument("--fresh", action="store_true",
                        help="start from an empty baseline cache (a temporary COMPRESSLAB_HOME), as a fresh clone")
    parser.add_argument("--target", type=float, default=TARGET_SECONDS, help="seconds a notebook may take")
    parser.add_argument("--executed", metavar="DIR", default=None,
                        help="also write each executed notebook (with its outputs) into DIR")
    parser.add_argument("--out", default=None, help="write the JSON here (default bench/results/notebooks.json)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_arguments(argv)
    paths = notebook_paths(args.only)
    load_before, started = os.getloadavg(), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="compresslab-home-") as home:
        if args.fresh:
            os.environ["COMPRESSLAB_HOME"] = home  # the kernels inherit it
        results = []
        for path in paths:
            log(f"running {path.name} ({'fresh' if args.fresh else 'warm'} cache)")
            total, kernel_start, cells = run_notebook(
                path, executed_dir=Path(args.executed) if args.executed else None)
            results.append(summarize(path.stem, total, cells, kernel_start, args.target))
            log(f"{path.name}: {total:.1f} s")
    emit("notebooks", {
        "benchmark": "bench_notebooks",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "what_is_timed": NOTE,
        "cache": "fresh" if args.fresh else "warm",
        "notebooks": {result["notebook"]: result for result in results},
        "seconds_per_notebook": {result["notebook"]: result["total_seconds"] for result in results},
        "target_seconds": args.target,
        "targets_met": all(result["met"] for result in results),
        "machine": {**machine(), "load_before": load_before, "load_after": os.getloadavg()},
        "seconds": round(time.perf_counter() - started, 1),
    }, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
