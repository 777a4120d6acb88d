"""The ``compresslab`` command: reports, sweeps, the classroom app, and studies on shared storage.

    compresslab report runs/sweep.jsonl -o report.html [--title "MNIST compression"]
    compresslab sweep sweep.json
    compresslab app [--port 8866]
    compresslab worker --study NAME [--storage URL]        # join a study, run its trials until done
    compresslab class create NAME [--storage URL]          # a class board students submit to
    compresslab study NAME [--storage URL]                 # a study's progress
    compresslab merge FOLDER --report class.html [--log class.jsonl]   # students' exported results

A sweep config is a JSON file, or YAML named ``.yaml``/``.yml`` (relative paths are taken from the config
file's folder)::

    {"model": "seed_cnn",                 # a zoo architecture (trained and cached) or a model file
     "dataset": "digits",                 # or {"name": "mnist", "data_dir": "../shared/data/mnist"}
     "epochs": null,                      # baseline training epochs (zoo models; default per data set)
     "grid": {"steps": ["prune", "export"], "prune.sparsity": [0.5, 0.8, 0.9], "prune.epochs": 1},
     "log": "runs/prune.jsonl",
     "workers": 2,                        # processes (optional)
     "report": "runs/prune.html"}         # optional: write a report when done

Example:
    >>> main(["report", "runs/sweep.jsonl", "-o", "report.html"])
    0
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

CONFIG_KEYS = {"model", "dataset", "epochs", "grid", "log", "workers", "report", "seed", "title"}


class CommandError(Exception):
    """A problem the user can fix; printed without a traceback."""


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="compresslab", description="Compression experiments for Keras CNNs.")
    parser.add_argument("--version", action="version", version=f"compresslab {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    report = commands.add_parser("report", help="write an HTML report (plus CSV and JSON) from an experiment log")
    report.add_argument("log", help="the experiment log (.jsonl)")
    report.add_argument("-o", "--output", default="report.html", help="the HTML file to write (default report.html)")
    report.add_argument("--title", default=None, help="the report's title (default: the log's name)")

    sweep = commands.add_parser("sweep", help="run every configuration of a grid into an experiment log")
    sweep.add_argument("config", help="a JSON sweep config (see `compresslab sweep --help` or the module docs)")
    sweep.add_argument("--workers", type=int, default=None, help="worker processes (overrides the config)")

    app = commands.add_parser("app", help="serve the code-free classroom dashboard (notebooks/app.ipynb) with Voila")
    app.add_argument("--port", type=int, default=None, help="port to serve on (Voila's default otherwise)")
    app.add_argument("--no-browser", action="store_true", help="do not open a browser")
    app.add_argument("--notebook", default=None, help="another notebook to serve")
    app.add_argument("--ip", default="127.0.0.1",
                     help="address to listen on (default 127.0.0.1: this machine only; any other needs --token)")
    app.add_argument("--token", default=None,
                     help="visitors must open http://HOST:PORT/?token=TOKEN (default: the COMPRESSLAB_APP_TOKEN "
                          "variable); kept off the command line Voila is started with")
    app.add_argument("--work-dir", default=None,
                     help="the folder the app writes into (default: COMPRESSLAB_WORK_DIR, else one per OS user)")

    storage_help = "database URL, e.g. postgresql+psycopg2://user@host/db (default: the SQLite file data/studies.db)"
    worker = commands.add_parser("worker", help="join a study and run its trials until it is done")
    worker.add_argument("--study", required=True, help="the study's name")
    worker.add_argument("--storage", default=None, help=storage_help)
    worker.add_argument("--max-trials", type=int, default=None, help="stop after this many trials here")
    worker.add_argument("--quiet", action="store_true", help="no progress lines")

    board = commands.add_parser("class", help="class boards: `compresslab class create NAME`")
    board.add_argument("action", choices=["create"], help="what to do")
    board.add_argument("name", help="the class study's name, e.g. lab-3")
    board.add_argument("--storage", default=None, help=storage_help)
    board.add_argument("--title", default="", help="shown on the board and in reports")

    study = commands.add_parser("study", help="a study's progress: done, running, queued and failed trials")
    study.add_argument("name", help="the study's name")
    study.add_argument("--storage", default=None, help=storage_help)

    merge = commands.add_parser("merge", help="merge a folder of students' exported results into a report and a log")
    merge.add_argument("folder", help="the folder of result files (each student's 'Export my results' .jsonl)")
    merge.add_argument("--report", default=None, help="the class report to write (HTML, with CSV and JSON beside it)")
    merge.add_argument("--log", default=None,
                       help="an experiment log to add the merged records to (the TradeoffBoard reads it); "
                            "records it already holds are not added again")
    merge.add_argument("--title", default=None, help="the report's title (default: the folder's name)")
    return parser


def _report(args) -> int:
    from .report import write_report

    title = args.title or f"compresslab report: {Path(args.log).name}"
    try:
        paths = write_report(args.log, args.output, title=title)
    except ValueError as error:
        raise CommandError(str(error)) from None
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


def _integer_problem(config: dict, key: str, low: int, *, optional: bool) -> list[str]:
    value = config.get(key)
    if value is None and optional:
        return []
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        allowed = f"an integer >= {low}" + (" or null" if optional else "")
        return [f"{key} is {value!r}; it must be {allowed}"]
    return []


def _unwritable(target: Path) -> str | None:
    """Why ``target`` cannot be written (a part of its folder is a file), checked before any work."""
    for parent in [target, *target.parents]:
        if parent.exists():
            if parent != target and not parent.is_dir():
                return f"{parent} is a file, not a folder"
            if parent == target and parent.is_dir():
                return f"{target} is a folder"
            return None
    return None


def _type_problems(config: dict, base: Path) -> list[str]:
    """Wrong types and places in a sweep config, found before anything is trained."""
    problems = []
    problems += _integer_problem({"workers": config.get("workers", 2)}, "workers", 1, optional=False)
    problems += _integer_problem(config, "epochs", 1, optional=True)
    problems += _integer_problem({"seed": config.get("seed", 0)}, "seed", 0, optional=False)
    model = config.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        problems.append(f"model is {model!r}; it must be a zoo architecture name (seed_cnn, lenet5, ...) or the path "
                        "of a model file")
    grid = config.get("grid")
    if grid is not None and not isinstance(grid, (dict, list)):
        problems.append(f"grid is {grid!r}; it must be an object of recipe keys to values, or a list of recipes")
    for key in ("log", "report", "title"):
        value = config.get(key)
        if value is None and key != "log":
            continue
        if not isinstance(value, str) or not value:
            if key in config:
                problems.append(f"{key} is {value!r}; it must be " + ("a title" if key == "title" else "a file path"))
            continue
        if key != "title":
            target = Path(value) if Path(value).is_absolute() else base / value
            why = _unwritable(target)
            if why:
                problems.append(f"{key} {value!r} cannot be written: {why}")
    return problems


def _dataset_problems(dataset) -> list[str]:
    from .data import DATASETS

    allowed = f"a data set name ({', '.join(DATASETS)}) or {{'name': ..., 'data_dir': ...}}"
    if dataset is None:
        return []
    if isinstance(dataset, dict):
        unknown = sorted(set(map(str, dataset)) - {"name", "data_dir"})
        if unknown:
            return [f"dataset has unknown key(s) {unknown}; it takes name and data_dir"]
        name, data_dir = dataset.get("name", "digits"), dataset.get("data_dir")
        if data_dir is not None and (not isinstance(data_dir, str) or not data_dir):
            return [f"dataset.data_dir is {data_dir!r}; it must be a folder path"]
    else:
        name = dataset
    if not isinstance(name, str) or name not in DATASETS:
        key = "dataset.name" if isinstance(dataset, dict) else "dataset"
        return [f"{key} is {name!r}; it must be " + (f"one of {', '.join(DATASETS)}" if key != "dataset" else allowed)]
    return []


def _grid_problems(grid) -> list[str]:
    """Every configuration of the grid checked as a recipe (no model needed), before any training."""
    from .pipeline.grid import expand_grid
    from .pipeline.recipe import validate_recipe

    try:
        configurations = expand_grid(grid)
    except ValueError as error:
        return [f"grid: {error}"]
    problems = []
    for label, steps in configurations:
        try:
            validate_recipe(steps)
        except ValueError as error:  # "the recipe has N problem(s)...:" then one "  - step ..." line each
            lines = [line.strip().removeprefix("- ") for line in str(error).splitlines()[1:]] or [str(error)]
            problems += [f"grid configuration {label}: {line}" for line in lines]
    return problems


def _read_config(path: Path):
    """The config file's contents: JSON, or YAML for .yaml/.yml (read with yaml.safe_load, no code runs)."""
    if path.is_dir():
        raise CommandError(f"{path} is a folder; give a sweep config file (.json, .yaml)")
    if not path.is_file():
        raise CommandError(f"{path} does not exist; give a sweep config file (.json, .yaml)")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise CommandError(f"{path} cannot be read ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise CommandError(f"{path} is not a text file; a sweep config is JSON or YAML") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:  # pragma: no cover - PyYAML comes with optuna, a dependency
            raise CommandError(f"{path} is YAML but PyYAML is not installed; use a .json config") from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise CommandError(f"{path} is not valid YAML ({' '.join(str(error).split())})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise CommandError(f"{path} is not valid JSON ({error})") from None


def load_config(path) -> dict:
    """Read and check a sweep config; relative paths become relative to the config's folder.

    Every value is checked (types, ranges, each grid configuration as a recipe) before anything is
    trained; all problems are listed, one line each, in a :class:`CommandError`.
    """
    path = Path(path)
    config = _read_config(path)
    if not isinstance(config, dict):
        raise CommandError(f"{path} must hold an object (a mapping) with keys {sorted(CONFIG_KEYS)}, "
                           f"not {type(config).__name__}")
    problems = []
    unknown = sorted(set(map(str, config)) - CONFIG_KEYS)
    if unknown:
        problems.append(f"unknown key(s) {unknown}; a sweep config takes {sorted(CONFIG_KEYS)}")
    for key in ("model", "dataset", "grid", "log"):
        if key not in config:
            problems.append(f"missing key {key!r}")
    dataset = config.get("dataset")
    problems += _dataset_problems(dataset)
    problems += _type_problems(config, path.resolve().parent)
    if isinstance(config.get("grid"), (dict, list)):
        problems += _grid_problems(config["grid"])
    if len(problems) == 1:
        raise CommandError(f"{path}: {problems[0]}")
    if problems:
        raise CommandError(f"{path} has {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))
    base = path.resolve().parent

    def resolve(value):
        return str(value if Path(value).is_absolute() else base / value)

    config = dict(config)
    config["log"] = resolve(config["log"])
    if config.get("report"):
        config["report"] = resolve(config["report"])
    if isinstance(dataset, dict) and dataset.get("data_dir"):
        config["dataset"] = {**dataset, "data_dir": resolve(dataset["data_dir"])}
    from .models import ARCHITECTURES

    if config["model"] not in ARCHITECTURES:
        config["model"] = resolve(config["model"])
    return config


def _sweep(args) -> int:
    import compresslab as cl

    from .pipeline import sweep

    config = load_config(args.config)
    dataset = config["dataset"]
    try:
        if isinstance(dataset, dict):
            data = cl.load_dataset(dataset.get("name", "digits"), data_dir=dataset.get("data_dir"))
        else:
            data = cl.load_dataset(dataset)
        from .models import ARCHITECTURES

        if config["model"] in ARCHITECTURES:
            print(f"baseline: {config['model']} on {data.name} (trained once, then cached)", flush=True)
            model = cl.baseline(config["model"], data, epochs=config.get("epochs"), seed=config.get("seed", 0),
                                progress=False)
        else:
            model = cl.load_model(config["model"])
            cl.models.compile_for_classification(model)
        workers = args.workers or config.get("workers", 2)
        records = sweep(model, data, config["grid"], config["log"], max_workers=workers, seed=config.get("seed", 0),
                        progress=True)
    except ValueError as error:
        raise CommandError(str(error)) from None
    print(f"{len(records)} configuration(s) in {config['log']}")
    for record in records:
        size = record.extra.get("compressed_bytes") or record.gzip_bytes
        print(f"  {record.name}: {100 * record.accuracy:.2f}%, {size:,} bytes")
    if config.get("report"):
        from .report import write_report

        paths = write_report(config["log"], config["report"], title=config.get("title") or "compresslab sweep",
                             data=data)
        print(f"report: {paths['html']}")
    return 0


def app_command(notebook=None, port=None, no_browser=False, *, ip: str = "127.0.0.1", token: str | None = None,
                work_dir=None) -> tuple[list[str], dict]:
    """The Voila command and environment that serve the classroom app (see :func:`compresslab.serving.voila_launch`).

    Voila has no ``--allow-root``: it runs as root as is.
    """
    from .serving import voila_launch

    path = Path(notebook) if notebook else Path(__file__).resolve().parents[1] / "notebooks" / "app.ipynb"
    if not path.is_file():
        raise CommandError(f"{path} does not exist; the app notebook ships with a source checkout of compresslab "
                           "(or pass --notebook)")
    voila = shutil.which("voila", path=str(Path(sys.executable).parent)) or shutil.which("voila")
    try:
        return voila_launch([voila] if voila else [sys.executable, "-m", "voila"], path, port=port,
                            no_browser=no_browser, ip=ip, token=token, work_dir=work_dir)
    except ValueError as error:
        raise CommandError(str(error)) from None


def _app(args) -> int:
    import os

    token = args.token or os.environ.get("COMPRESSLAB_APP_TOKEN") or None
    command, environment = app_command(args.notebook, args.port, args.no_browser, ip=args.ip, token=token,
                                       work_dir=args.work_dir)
    print(" ".join(command) + ("   (token required: open the printed URL with ?token=...)" if token else ""),
          flush=True)
    try:
        return subprocess.call(command, env=environment)
    except KeyboardInterrupt:
        return 0


def _studies_call(function, *args, **kwargs):
    """Run a studies function; a bad name, URL or value becomes a CommandError (no traceback)."""
    try:
        return function(*args, **kwargs)
    except (ValueError, TypeError, KeyError) as error:
        raise CommandError(str(error)) from None


def _worker(args) -> int:
    from .studies import run_worker

    if args.max_trials is not None and args.max_trials < 1:
        raise CommandError(f"--max-trials is {args.max_trials}; give a whole number >= 1")
    ran = _studies_call(run_worker, args.study, args.storage, max_trials=args.max_trials, echo=not args.quiet)
    if not args.quiet:
        print(f"worker finished: {ran} trial(s) run here")
    return 0


def _class(args) -> int:
    from .studies import create_class, storage_url

    _studies_call(create_class, args.name, args.storage, title=args.title)
    print(f"class board {args.name!r} ready in {storage_url(args.storage)}; students submit with "
          f"cl.studies.submit({args.name!r}, records, student=..., storage=...)")
    return 0


def _study(args) -> int:
    from .studies import load_study, progress

    study = _studies_call(load_study, args.name, args.storage)
    print(f"{args.name}: {progress(study).line()}")
    return 0


def _merge(args) -> int:
    from .records import STUDENT_KEY, ExperimentLog, merge_folder

    if not args.report and not args.log:
        raise CommandError("give --report class.html, --log class.jsonl, or both: where the merged results go")
    try:
        records = merge_folder(args.folder)
        students = {record.extra[STUDENT_KEY] for record in records}
        print(f"{len(records)} record(s) from {len(students)} student(s) in {args.folder}")
        if args.log:
            log = ExperimentLog(args.log)
            present = {(record.extra.get(STUDENT_KEY), record.key) for record in log.records()}
            new = [record for record in records if (record.extra[STUDENT_KEY], record.key) not in present]
            log.extend(new)
            print(f"log: {log.path} ({len(new)} new, {len(records) - len(new)} already there)")
        if args.report:
            from .report import write_report

            title = args.title or f"class results: {Path(args.folder).resolve().name}"
            for kind, path in write_report(records, args.report, title=title).items():
                print(f"{kind}: {path}")
    except ValueError as error:
        raise CommandError(str(error)) from None
    return 0


def main(argv=None) -> int:
    """Run the ``compresslab`` command; returns the exit code (0 ok, 2 for a usage or input problem)."""
    args = _parser().parse_args(argv)
    handlers = {"report": _report, "sweep": _sweep, "app": _app, "worker": _worker, "class": _class,
                "study": _study, "merge": _merge}
    try:
        return handlers[args.command](args)
    except CommandError as error:
        print(f"compresslab {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a path the command cannot read or write: say which, no traceback
        where = f" ({error.filename})" if getattr(error, "filename", None) else ""
        print(f"compresslab {args.command}: error: {error.strerror or error}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
