"""Compression studies: Optuna studies whose trials are recipes, run by workers on any machine.

Owns: creating a study with its inputs (the model and data travel inside the study database as
blobs, see :mod:`compresslab.studies.storage`), the grid study that runs a sweep
(:func:`create_sweep`, Optuna's ``GridSampler``, one trial per configuration), the worker loop
(:func:`run_worker`: pull trials until the study is done; a worker killed mid-trial is detected by
its heartbeat and its trial queued again), reading every finished trial back as a
:class:`~compresslab.records.Record` (:func:`study_records`) and progress counts.

A study is a normal Optuna study: ``study.trials_dataframe()`` works, and so does Optuna's dashboard.

Example:
    >>> study = create_sweep("prune-grid", model, data, {"steps": ["prune"], "prune.sparsity": [0.5, 0.8]})
    >>> run_worker("prune-grid")                 # here, or `compresslab worker --study prune-grid` elsewhere
    >>> cl.to_frame(study_records(study))
"""

from __future__ import annotations

import io
import os
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import Dataset
from ..records import Record
from ..sizes import deployable_bytes
from .storage import BlobStore, open_storage

STUDY_KEY = "compresslab"  # the study user attribute holding what the workers need
RECORD_KEY = "record"  # the trial user attribute holding the trial's Record
FORMAT_VERSION = 1
KINDS = ("sweep", "class", "autocompress")


# ---------------------------------------------------------------------------------------------
# Inputs as bytes (no local path crosses a machine)


def model_to_bytes(model) -> bytes:
    """A tf_keras model as the bytes of a ``.keras`` file."""
    from ..modelio import save_model

    with tempfile.TemporaryDirectory(prefix="compresslab-study-") as folder:
        path = save_model(model, Path(folder) / "model.keras")
        return Path(path).read_bytes()


def model_fingerprint(model) -> str:
    """SHA-256 of a model's architecture and weights (the same model always gives the same text)."""
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps(model.get_config(), sort_keys=True, default=str).encode())
    for array in model.get_weights():
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def model_from_bytes(content: bytes):
    """The model stored by :func:`model_to_bytes` (loaded with ``trust=False``: no stored code runs)."""
    from ..modelio import load_model

    with tempfile.TemporaryDirectory(prefix="compresslab-study-") as folder:
        path = Path(folder) / "model.keras"
        path.write_bytes(content)
        return load_model(path, verify=False)


_DATA_ARRAYS = ("x_train", "y_train", "x_test", "y_test", "x_val", "y_val")


def data_to_bytes(data: Dataset) -> bytes:
    """A Dataset as compressed ``.npz`` bytes (plain arrays only: read back without pickle)."""
    arrays = {key: np.asarray(getattr(data, key)) for key in _DATA_ARRAYS if getattr(data, key, None) is not None}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, class_names=np.array([str(c) for c in data.class_names]),
                        name=np.array(data.name), source=np.array(data.source), **arrays)
    return buffer.getvalue()


def data_from_bytes(content: bytes) -> Dataset:
    """The Dataset stored by :func:`data_to_bytes`."""
    with np.load(io.BytesIO(content), allow_pickle=False) as arrays:
        present = {key: arrays[key] for key in _DATA_ARRAYS if key in arrays.files}
        extra = {key: present[key] for key in ("x_val", "y_val") if key in present}
        return Dataset(present["x_train"], present["y_train"], present["x_test"], present["y_test"],
                       [str(c) for c in arrays["class_names"]], name=str(arrays["name"]),
                       source=str(arrays["source"]), **extra)


# ---------------------------------------------------------------------------------------------
# Creating and loading studies


def _optuna():
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Heartbeats and stale-trial retries are marked experimental in Optuna 5; they are what makes
    # a killed worker's trial run again, so compresslab relies on them knowingly (pinned version).
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def _sampler(info: dict):
    optuna = _optuna()
    if info["kind"] == "sweep":
        return optuna.samplers.GridSampler({"configuration": [label for label, _ in info["configurations"]]},
                                           seed=info.get("seed", 0))
    return None


def study_info(study) -> dict:
    """What compresslab stored in a study (kind, configurations, input digests...).

    Raises:
        ValueError: the study was not created by compresslab.
    """
    info = study.user_attrs.get(STUDY_KEY)
    if not isinstance(info, dict) or info.get("kind") not in KINDS:
        raise ValueError(f"study {study.study_name!r} was not created by compresslab (no {STUDY_KEY!r} attribute); "
                         "create it with compresslab.studies.create_sweep or create_class")
    return info


def load_study(name: str, storage=None):
    """An existing compresslab study by name, with the sampler its kind needs.

    Raises:
        ValueError: no study of that name in the storage (names the ones that exist), or not a compresslab study.
    """
    optuna = _optuna()
    storage = open_storage(storage)
    try:
        plain = optuna.load_study(study_name=name, storage=storage)
    except KeyError as error:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise ValueError(f"no study named {name!r} in this storage; studies there: {names or 'none'}") from error
    info = study_info(plain)
    return optuna.load_study(study_name=name, storage=storage, sampler=_sampler(info))


def _create(name: str, storage, info: dict, directions):
    optuna = _optuna()
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"study name is {name!r}; give a non-empty text")
    storage = open_storage(storage)
    existing = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    if name in existing:
        study = load_study(name, storage)
        old = study_info(study)
        # A .keras file of the same model differs byte for byte (zip times): compare fingerprints instead.
        volatile = {"created", "model"}
        same = ({k: v for k, v in old.items() if k not in volatile}
                == {k: v for k, v in info.items() if k not in volatile})
        if not same:
            raise ValueError(f"a study named {name!r} already exists with other settings (kind {old['kind']!r}); "
                             "choose another name, or load it with load_study to continue it")
        return study
    study = optuna.create_study(study_name=name, storage=storage, directions=directions, sampler=_sampler(info))
    study.set_user_attr(STUDY_KEY, {**info, "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return study


def create_sweep(name: str, model, data: Dataset, grid, *, storage=None, seed: int = 0, latency: bool = False):
    """A study that runs every configuration of a grid once (Optuna ``GridSampler``).

    Every configuration is validated first (all problems listed, nothing stored). The model and
    data are stored in the study's database; workers anywhere fetch them from there. Creating a
    study that exists with the same settings returns it (so a rerun resumes).

    Args:
        name: the study's name (unique in the storage).
        model: a trained tf_keras model.
        data: the Dataset.
        grid: see :func:`compresslab.pipeline.expand_grid`.
        storage: None (the default SQLite file), a URL or a storage.
        seed: training seed of every configuration.
        latency: measure LiteRT latency too.

    Returns:
        The Optuna study. Objectives: (smallest stored bytes, test accuracy).

    Raises:
        ValueError: a bad grid or configuration, or a study of that name with other settings.
    """
    from ..pipeline import expand_grid, validate_recipe

    configurations = expand_grid(grid)
    problems, prepared = [], []
    for label, steps in configurations:
        try:
            prepared.append([label, validate_recipe(steps, model, data)])
        except ValueError as error:
            problems.append(f"configuration {label!r}: {error}")
    if problems:
        raise ValueError(f"the grid has {len(problems)} configuration(s) with problems; nothing was stored:\n"
                         + "\n".join(problems))
    labels = [label for label, _ in prepared]
    if len(set(labels)) != len(labels):
        raise ValueError("two configurations of the grid have the same label; give each recipe a distinct place")
    blobs = BlobStore(storage)
    info = {"kind": "sweep", "version": FORMAT_VERSION, "configurations": prepared, "seed": seed,
            "latency": bool(latency), "dataset": data.name,
            "model": blobs.put(model_to_bytes(model)), "model_fingerprint": model_fingerprint(model),
            "data": blobs.put(data_to_bytes(data))}
    return _create(name, storage, info, ["minimize", "maximize"])


# ---------------------------------------------------------------------------------------------
# Reading results


def study_records(study, *, states=("COMPLETE",)) -> list[Record]:
    """The Record of every finished trial, in trial order (each stored with its trial)."""
    optuna = _optuna()
    wanted = tuple(getattr(optuna.trial.TrialState, state) for state in states)
    records = []
    for trial in study.get_trials(deepcopy=False, states=wanted):
        payload = trial.user_attrs.get(RECORD_KEY)
        if payload is not None:
            record = Record.from_dict(payload)
            record.extra.setdefault("trial", trial.number)
            records.append(record)
    return records


@dataclass
class StudyProgress:
    """Counts of a study's trials (a retried trial counts once, as its latest attempt)."""

    total: int | None
    done: int
    running: int
    waiting: int
    failed: int
    retried: int

    @property
    def finished(self) -> bool:
        return self.total is not None and self.running == 0 and self.waiting == 0 and self.done + self.failed >= self.total

    def line(self) -> str:
        total = "?" if self.total is None else self.total
        return (f"{self.done}/{total} done, {self.running} running, {self.waiting} queued, {self.failed} failed"
                + (f", {self.retried} retried after a worker died" if self.retried else ""))


def progress(study) -> StudyProgress:
    """How far a study is: done / running / queued / failed trials."""
    optuna = _optuna()
    state = optuna.trial.TrialState
    info = study_info(study)
    trials = study.get_trials(deepcopy=False)
    total = len(info["configurations"]) if info["kind"] == "sweep" else None
    retried_from = {t.system_attrs.get("failed_trial") for t in trials} - {None}
    counts = {s: 0 for s in ("done", "running", "waiting", "failed")}
    for trial in trials:
        if trial.state == state.COMPLETE:
            counts["done"] += 1
        elif trial.state == state.RUNNING:
            counts["running"] += 1
        elif trial.state == state.WAITING:
            counts["waiting"] += 1
        elif trial.state == state.FAIL and trial.number not in retried_from:
            counts["failed"] += 1
    return StudyProgress(total=total, retried=len(retried_from), **counts)


# ---------------------------------------------------------------------------------------------
# Workers


class _Inputs:
    """The study's model and data, fetched once per worker process."""

    cache: dict = {}

    @classmethod
    def get(cls, storage, info):
        key = (info["model"], info["data"])
        if key not in cls.cache:
            blobs = BlobStore(storage)
            cls.cache[key] = (model_from_bytes(blobs.get(info["model"])), data_from_bytes(blobs.get(info["data"])))
        return cls.cache[key]


def _unstarted(study, info) -> int:
    """Grid configurations no trial has taken yet (in any state)."""
    if info["kind"] != "sweep":
        return 0
    taken = {t.system_attrs.get("grid_id") for t in study.get_trials(deepcopy=False)}
    return len(set(range(len(info["configurations"]))) - taken)


def _sweep_objective(study, storage, info) -> Callable:
    optuna = _optuna()
    from ..pipeline import run_pipeline
    from ..pipeline.grid import _identity

    configurations = dict((label, steps) for label, steps in info["configurations"])
    labels = [label for label, _ in info["configurations"]]

    def objective(trial):
        label = trial.suggest_categorical("configuration", labels)
        running = optuna.trial.TrialState.RUNNING
        complete = optuna.trial.TrialState.COMPLETE
        for other in study.get_trials(deepcopy=False, states=(running, complete)):
            if other.number < trial.number and other.params.get("configuration") == label:
                # Two workers raced for the last configuration: the older trial keeps it.
                raise optuna.TrialPruned(f"configuration {label!r} is already trial {other.number}'s")
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        model, data = _Inputs.get(storage, info)
        result = run_pipeline(model, data, configurations[label], name=label, seed=info["seed"],
                              measure_input=False, latency=info["latency"])
        record = result.final
        identity = _identity(label, configurations[label], data.name, info["seed"])  # same key as cl.sweep's
        record.name, record.technique, record.spec = identity.name, identity.technique, identity.spec
        record.extra.update(study=study.study_name, trial=trial.number, split="test",
                            stages=[{"name": r.name, "accuracy": r.accuracy,
                                     "compressed_bytes": r.extra.get("compressed_bytes"),
                                     "gzip_bytes": r.gzip_bytes} for r in result.records])
        trial.set_user_attr(RECORD_KEY, record.to_dict())
        return deployable_bytes(record), record.accuracy

    return objective


def run_worker(name: str, storage=None, *, max_trials: int | None = None, poll_seconds: float = 1.0,
               progress_callback: Callable | None = None, echo: bool = False, heartbeat_seconds: int | None = None,
               grace_seconds: int | None = None) -> int:
    """Join a study and run its trials until the study is done (or ``max_trials`` ran here).

    Any number of workers, on any machines that reach the storage, may run at once. Before each
    trial the worker fails trials whose worker stopped beating (they are queued again and run by
    whoever is free), so a study killed halfway finishes with every configuration done once.

    Args:
        name: the study's name.
        storage: None (the default SQLite file), a URL or a storage.
        max_trials: stop after this many trials ran in this worker (None: until the study is done).
        poll_seconds: how long to wait while only other workers' trials are running.
        progress_callback: ``callable(StudyProgress)`` after every trial here.
        echo: print a progress line after every trial.
        heartbeat_seconds: how often this worker's running trial says it is alive (default 5).
        grace_seconds: silence after which another worker's trial counts as dead (default 20).

    Returns:
        The number of trials this worker ran.
    """
    from .storage import GRACE_SECONDS, HEARTBEAT_SECONDS

    optuna = _optuna()
    storage = open_storage(storage, heartbeat_seconds=heartbeat_seconds or HEARTBEAT_SECONDS,
                           grace_seconds=grace_seconds or GRACE_SECONDS)
    study = load_study(name, storage)
    info = study_info(study)
    if info["kind"] != "sweep":
        raise ValueError(f"study {name!r} is a {info['kind']} study: it has no trials for workers to run")
    objective = _sweep_objective(study, storage, info)
    ran = 0
    while max_trials is None or ran < max_trials:
        optuna.storages.fail_stale_trials(study)
        waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
        if waiting or _unstarted(study, info):
            study.optimize(objective, n_trials=1, catch=(Exception,))
            ran += 1
            state = progress(study)
            if progress_callback is not None:
                progress_callback(state)
            if echo:
                print(f"[{name}] {state.line()}", flush=True)
            continue
        if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            break
        time.sleep(poll_seconds)  # only others' trials are running: wait in case one of them dies
    return ran


def run_local_workers(name: str, storage=None, workers: int = 2, *, timeout: float | None = None,
                      extra_args: tuple[str, ...] = ()) -> list[int]:
    """Start ``workers`` worker processes on this machine (``python -m compresslab.studies worker``) and wait.

    Returns:
        Each worker's exit code.
    """
    import subprocess
    import sys

    from .storage import storage_url

    url = storage_url(storage)
    command = [sys.executable, "-m", "compresslab.studies", "worker", "--storage", url, "--study", name, "--quiet", *extra_args]
    processes = [subprocess.Popen(command, env={**os.environ}) for _ in range(workers)]
    return [process.wait(timeout=timeout) for process in processes]


__all__ = ["create_sweep", "load_study", "run_worker", "run_local_workers", "study_records", "study_info",
           "progress", "StudyProgress", "model_to_bytes", "model_from_bytes", "data_to_bytes", "data_from_bytes"]
