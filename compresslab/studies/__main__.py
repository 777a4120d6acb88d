"""``python -m compresslab.studies worker --study NAME [--storage URL]``: the worker entry point.

The ``compresslab worker`` command of :mod:`compresslab.cli` runs the same function.
"""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compresslab.studies",
                                     description="Join a compresslab study and run its trials until it is done.")
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="run trials of a study")
    worker.add_argument("--study", required=True, help="the study's name")
    worker.add_argument("--storage", default=None, help="database URL (default: the SQLite file in data/)")
    worker.add_argument("--max-trials", type=int, default=None, help="stop after this many trials here")
    worker.add_argument("--quiet", action="store_true", help="no progress lines")
    worker.add_argument("--heartbeat-seconds", type=int, default=None, help="heartbeat interval (default 5)")
    worker.add_argument("--grace-seconds", type=int, default=None,
                        help="silence after which a running trial counts as dead (default 20)")
    args = parser.parse_args(argv)
    from .study import run_worker

    try:
        ran = run_worker(args.study, args.storage, max_trials=args.max_trials, echo=not args.quiet,
                         heartbeat_seconds=args.heartbeat_seconds, grace_seconds=args.grace_seconds)
    except (ValueError, KeyError) as error:
        print(f"compresslab worker: {error}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(f"worker finished: {ran} trial(s) run here")
    return 0


if __name__ == "__main__":
    sys.exit(main())
