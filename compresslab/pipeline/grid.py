"""Sweeps: every configuration of a grid, run in parallel into an experiment log, resumable.

Owns: :func:`expand_grid` and :func:`sweep`.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ..data import Dataset
from ..modelio.convert import as_tf_keras
from ..records import ExperimentLog, Record
from .recipe import TECHNIQUES, _parse, validate_recipe
from .runner import _emit, run_pipeline


def expand_grid(grid) -> list[tuple[str, list[dict]]]:
    """Every configuration of a grid as ``(name, recipe)``.

    A grid is either a list of recipes, or a dict: ``"steps"`` lists the step names in order and
    ``"<step>.<parameter>"`` keys give a value or a LIST of values to sweep (the cartesian product
    of all lists is taken; wrap a list-valued parameter such as ``layers`` in another list).

    Example:
        >>> expand_grid({"steps": ["prune", "quantize"], "prune.sparsity": [0.5, 0.8],
        ...              "prune.epochs": 1, "quantize.mode": "int8"})[0][0]
        'prune.sparsity=0.5'
    """
    if isinstance(grid, (list, tuple)):
        configurations = []
        for index, recipe in enumerate(grid):
            steps, error = _parse(recipe)
            if error:
                raise ValueError(f"grid entry {index + 1}: {error}")
            configurations.append((" + ".join(str(s.get("step")) if isinstance(s, dict) else "?" for s in steps)
                                   + f" #{index + 1}", steps))
        return configurations
    if not isinstance(grid, dict) or "steps" not in grid:
        raise ValueError("a grid is a list of recipes or a dict with 'steps' (step names in order) and "
                         "'<step>.<parameter>' keys whose list values are swept")
    names = grid["steps"]
    if not isinstance(names, (list, tuple)) or not names:
        raise ValueError("grid['steps'] must be a non-empty list of step names, e.g. ['prune', 'quantize']")
    axes, fixed = {}, {}
    for key, value in grid.items():
        if key == "steps":
            continue
        step_name, _, parameter = str(key).partition(".")
        if not parameter or step_name not in names:
            raise ValueError(f"grid key {key!r} must be '<step>.<parameter>' with a step of {list(names)}")
        if isinstance(value, (list, tuple)):
            if not value:
                raise ValueError(f"grid key {key!r} has an empty list of values")
            axes[key] = list(value)
        else:
            fixed[key] = value
    configurations = []
    for combination in itertools.product(*axes.values()) if axes else [()]:
        chosen = {**fixed, **dict(zip(axes, combination))}
        steps = [{"step": step_name} for step_name in names]
        for key, value in chosen.items():
            step_name, _, parameter = key.partition(".")
            steps[list(names).index(step_name)][parameter] = value
        label = ", ".join(f"{key}={json.dumps(value)}" for key, value in zip(axes, combination)) or "configuration"
        configurations.append((label, steps))
    return configurations


def _identity(name: str, steps: list[dict], dataset: str, seed: int) -> Record:
    """The final record's identity fields (its key is known before the configuration runs)."""
    technique = TECHNIQUES[steps[-1]["step"]]
    return Record(name=name, technique=technique, spec={"recipe": steps, "stage": len(steps)},
                  dataset=dataset, seed=seed)


_WORKER_CACHE: dict = {}


def _worker_inputs(model_path: str, data_path: str):
    if model_path not in _WORKER_CACHE:
        from ..modelio import load_model

        _WORKER_CACHE[model_path] = load_model(model_path, verify=False)
    if data_path not in _WORKER_CACHE:
        from ..studies.study import data_from_bytes

        _WORKER_CACHE[data_path] = data_from_bytes(Path(data_path).read_bytes())
    return _WORKER_CACHE[model_path], _WORKER_CACHE[data_path]


def _die_with_parent(parent_pid: int, interval: float = 0.5) -> None:
    """Worker initializer: end this worker as soon as the sweep's process is gone.

    A SIGKILLed parent cannot shut its pool down, and each orphaned worker holds a TensorFlow
    runtime (~1 GB) and keeps multiprocessing's resource tracker alive. A daemon thread polls the
    parent's pid (reparenting changes ``os.getppid()``) and exits the worker at once.
    """
    import threading

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="compresslab-parent-watch", daemon=True).start()


def _sweep_task(task: dict) -> dict:
    """Run one configuration (in a worker process or thread); returns the final record as a dict."""
    model, data = _worker_inputs(task["model_path"], task["data_path"])
    result = run_pipeline(model, data, task["steps"], name=task["name"], seed=task["seed"],
                          measure_input=False, latency=task["latency"])
    final = result.final
    identity = _identity(task["name"], task["steps"], data.name, task["seed"])
    final.name, final.technique, final.spec = identity.name, identity.technique, identity.spec
    final.extra["stages"] = [{"name": r.name, "accuracy": r.accuracy,
                              "compressed_bytes": r.extra.get("compressed_bytes"), "gzip_bytes": r.gzip_bytes}
                             for r in result.records]
    return final.to_dict()


def sweep(model, data: Dataset, grid, log, *, executor=None, max_workers: int = 2, seed: int = 0,
          latency: bool = False, progress: bool | Callable = False, storage=None,
          study_name: str | None = None) -> list[Record]:
    """Run every configuration of a grid into an experiment log; a rerun skips what the log holds.

    Each configuration is a recipe run from ``model`` by :func:`run_pipeline`; its final stage
    becomes one logged Record named after the swept values. Configurations run in parallel on
    ``executor`` (any ``concurrent.futures.Executor``; by default a process pool of
    ``max_workers`` spawned processes). Workers receive the model and data as files written once
    to a temporary folder (a process cannot share a TensorFlow model) and return records; only
    this process writes the log, as each configuration finishes, so a killed sweep loses nothing
    that finished and a rerun resumes (records are matched by :attr:`Record.key`).

    Args:
        model: a trained tf_keras model (not modified).
        data: the data set.
        grid: see :func:`expand_grid`.
        log: an :class:`ExperimentLog` or path (required: it is what makes reruns resume).
        executor: a ``concurrent.futures`` executor, or None for a process pool.
        max_workers: processes of the default pool.
        seed: training seed of every configuration.
        latency: measure LiteRT latency too.
        progress: True to print a line per finished configuration, or ``callable(done, total, record)``.
        storage: run the sweep as an Optuna grid study in this database instead of a local pool
            (a URL, e.g. PostgreSQL, or a SQLite path; see :mod:`compresslab.studies`): ``max_workers``
            worker processes start here, and workers on other machines may join with
            ``compresslab worker --study NAME --storage URL``. The records land in ``log`` too.
        study_name: the study's name (default ``sweep-<log file stem>``).

    Returns:
        The Records of every configuration of the grid, in grid order (from the log when skipped).

    Raises:
        ValueError: a bad grid or any configuration's recipe problems (all listed), before any work.

    Example:
        >>> sweep(model, data, {"steps": ["prune"], "prune.sparsity": [0.5, 0.8, 0.9]}, "runs/prune.jsonl")
    """
    if log is None:
        raise ValueError("sweep needs a log (an ExperimentLog or a .jsonl path): it is where results land and "
                         "what lets a rerun skip finished configurations")
    log = ExperimentLog(log) if isinstance(log, (str, os.PathLike)) else log
    configurations = expand_grid(grid)
    model = as_tf_keras(model)  # once, not once per configuration; ModelTypeError before any work
    problems, prepared = [], []
    for label, steps in configurations:
        try:
            prepared.append((label, validate_recipe(steps, model, data)))
        except ValueError as error:
            problems.append(f"configuration {label!r}: {error}")
    if problems:
        raise ValueError(f"the grid has {len(problems)} configuration(s) with problems; nothing was run:\n"
                         + "\n".join(problems))
    if storage is not None:
        return _sweep_as_study(model, data, grid, log, prepared, storage=storage, seed=seed, latency=latency,
                               workers=max_workers, name=study_name or f"sweep-{Path(log.path).stem}")
    existing = {record.key: record for record in log.records()}
    keys = [_identity(label, steps, data.name, seed).key for label, steps in prepared]
    todo = [(label, steps, key) for (label, steps), key in zip(prepared, keys) if key not in existing]
    finished: dict[str, Record] = {}
    if todo:
        finished = _run_configurations(model, data, todo, log, executor=executor, max_workers=max_workers,
                                       seed=seed, latency=latency, progress=progress, total=len(prepared),
                                       already=len(prepared) - len(todo))
    return [existing.get(key) or finished[key] for key in keys if key in existing or key in finished]


def _sweep_as_study(model, data, grid, log, prepared, *, storage, seed, latency, workers, name) -> list[Record]:
    """The sweep as an Optuna grid study: workers here (and anywhere else) pull its trials; records mirrored to the log."""
    from ..studies import create_sweep, run_local_workers, run_worker, study_records

    study = create_sweep(name, model, data, grid, storage=storage, seed=seed, latency=latency)
    if workers > 1:
        codes = run_local_workers(name, storage, workers=workers)
        if any(codes):
            raise RuntimeError(f"sweep study {name!r}: worker exit codes {codes}; rerun to resume it")
    else:
        run_worker(name, storage)
    by_key = {record.key: record for record in study_records(study)}
    present = log.keys()
    keys = [_identity(label, steps, data.name, seed).key for label, steps in prepared]
    log.extend(by_key[key] for key in keys if key in by_key and key not in present)
    return [by_key[key] for key in keys if key in by_key]


def _run_configurations(model, data, todo, log, *, executor, max_workers, seed, latency, progress, total, already):
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from ..modelio import save_model

    finished: dict[str, Record] = {}
    with tempfile.TemporaryDirectory(prefix="compresslab-sweep-") as folder:
        model_path = str(Path(folder) / "model.keras")
        data_path = str(Path(folder) / "data.npz")
        save_model(model, model_path)
        from ..studies.study import data_to_bytes

        Path(data_path).write_bytes(data_to_bytes(data))  # every split, validation included
        owned = executor is None
        if owned:
            import multiprocessing

            # "spawn": TensorFlow is not safe to fork once initialised.
            executor = ProcessPoolExecutor(max_workers=max_workers, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_die_with_parent, initargs=(os.getpid(),))
        try:
            futures = {
                executor.submit(_sweep_task, {"model_path": model_path, "data_path": data_path, "steps": steps,
                                              "name": label, "seed": seed, "latency": latency}): key
                for label, steps, key in todo
            }
            done = already
            for future in as_completed(futures):
                record = Record.from_dict(future.result())
                log.append(record)
                finished[futures[future]] = record
                done += 1
                if callable(progress):
                    progress(done, total, record)
                else:
                    _emit(progress, f"sweep [{done}/{total}] {record.name}: {100 * record.accuracy:.2f}%")
        finally:
            if owned:
                executor.shutdown(wait=True, cancel_futures=True)
    return finished
