"""Shared plumbing of the benchmark scripts: arguments, the MNIST folder, JSON output."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MNIST = REPO.parent / "shared" / "data" / "mnist"


def parse_args(description: str, extra=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data-dir", default=os.environ.get("COMPRESSLAB_DATA_DIR", str(DEFAULT_MNIST)),
                        help="folder with the official MNIST IDX files (default: ../shared/data/mnist)")
    parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke run")
    parser.add_argument("--out", default=None, help="also write the JSON here (default bench/results/<name>.json)")
    if extra:
        extra(parser)
    return parser.parse_args()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict:
    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()}


def target(value, goal: str, met: bool) -> dict:
    return {"value": value, "target": goal, "met": bool(met)}


def emit(name: str, payload: dict, out: str | None = None) -> None:
    """Print the JSON to stdout and save it to bench/results/<name>.json (or ``out``)."""
    text = json.dumps(payload, indent=2, default=float)
    print(text)
    path = Path(out) if out else REPO / "bench" / "results" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
