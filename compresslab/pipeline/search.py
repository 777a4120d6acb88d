"""Auto-compression: search sparsities, cluster counts and formats within an accuracy budget.

Owns: :func:`autocompress` and :class:`AutocompressResult`. The budget is in percentage POINTS.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .. import codec
from .._keras import keras
from ..data import Dataset
from ..measure import measure
from ..models import check_model_fits
from ..records import ExperimentLog, Record
from ..sizes import deployable_bytes
from .recipe import OBJECTIVES, _is_int, _is_number
from .runner import _emit, run_pipeline


@dataclass
class AutocompressResult:
    """The outcome of :func:`autocompress`.

    Attributes:
        best: the chosen variant: a Keras model (decoded from its compressed file) or a TFLiteArtifact.
        best_record: its Record.
        blob: its compressed file's bytes (codec candidates), else None.
        baseline: the Record of the input model.
        records: every variant tried, in order (each was also appended to the log).
        met: whether ``best`` is within the accuracy budget (the input model always is).
        interrupted: the search was stopped (KeyboardInterrupt) and the best so far returned.
        seconds: wall time of the search.
        notes: what the search did, in order (for people reading the result).
    """

    best: object
    best_record: Record
    blob: bytes | None
    baseline: Record
    records: list[Record] = field(default_factory=list)
    met: bool = True
    interrupted: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def frame(self):
        from ..records import to_frame

        return to_frame([self.baseline, *self.records])


class _Search:
    """Book-keeping of one autocompress run: budget, trials, best so far."""

    def __init__(self, model, data, *, max_accuracy_drop, objective, log, max_trials, time_budget, seed,
                 progress, on_trial):
        self.model, self.data = model, data
        self.objective, self.seed, self.progress, self.on_trial = objective, seed, progress, on_trial
        self.log = ExperimentLog(log) if isinstance(log, (str, os.PathLike)) else log
        self.max_trials, self.time_budget = max_trials, time_budget
        self.started = time.perf_counter()
        self.baseline = measure(model, data, name="autocompress: input", technique="baseline", tflite=True,
                                latency=objective == "latency", seed=seed,
                                extra={"compressed_bytes": len(codec.encode(model))})
        if self.log is not None:
            self.log.append(self.baseline)
        self.floor = self.baseline.accuracy - max_accuracy_drop / 100.0
        self.records: list[Record] = []
        self.notes: list[str] = []
        self.best = (model, self.baseline, None)
        self.trials = 0

    def score(self, record: Record) -> float:
        return record.latency_ms if self.objective == "latency" else deployable_bytes(record)

    def out_of_budget(self) -> bool:
        if self.max_trials is not None and self.trials >= self.max_trials:
            return True
        return self.time_budget is not None and time.perf_counter() - self.started > self.time_budget

    def note(self, text: str) -> None:
        self.notes.append(text)
        _emit(self.progress, "autocompress: " + text)

    def trial(self, start_model, recipe: list[dict], label: str, prefix: list[dict] | None = None):
        """Run one candidate recipe from ``start_model``; returns (result, meets budget) or None if out of budget.

        ``prefix`` holds the steps that made ``start_model`` from the input model, so the record's
        spec describes the whole chain.
        """
        if self.out_of_budget():
            return None
        self.trials += 1
        result = run_pipeline(start_model, self.data, recipe, name=f"autocompress #{self.trials}: {label}",
                              seed=self.seed, measure_input=False, latency=self.objective == "latency")
        record = result.final
        record.technique = "pipeline"
        record.spec = {"recipe": list(prefix or []) + result.steps, "stage": len(prefix or []) + len(result.steps)}
        record.extra["autocompress_trial"] = self.trials
        record.extra["accuracy_floor"] = self.floor
        record.extra["meets_budget"] = bool(record.accuracy >= self.floor)
        self.records.append(record)
        if self.log is not None:
            self.log.append(record)
        ok = record.accuracy >= self.floor
        self.note(f"trial {self.trials} {label}: {100 * record.accuracy:.2f}% "
                  f"({'within' if ok else 'outside'} budget), "
                  + (f"{record.latency_ms:.3f} ms" if self.objective == "latency" else f"{deployable_bytes(record):,.0f} B"))
        if ok and self.score(record) < self.score(self.best[1]):
            best_variant = result.artifact if result.artifact is not None else result.model
            self.best = (best_variant, record, result.blob)
        if self.on_trial is not None:
            self.on_trial(record)
        return result, ok


def _layer_caps(model, data, levels, max_accuracy_drop, search) -> dict[str, float]:
    """Per-layer sparsity limits from a one-shot sensitivity scan (fine-tuning later recovers more)."""
    from ..prune import sensitivity_scan, suggest_sparsities

    scan = sensitivity_scan(model, data, sorted(set([0.0, *levels])))
    # One-shot pruning loses far more than pruning with fine-tuning, so a layer may lose up to
    # four times the budget (at least 2 points) in the scan and still be worth trying.
    loose = min(0.99, max(4 * max_accuracy_drop, 2.0) / 100.0)
    caps = suggest_sparsities(scan, loose)
    search.note("sensitivity caps (one-shot scan, loose drop "
                f"{100 * loose:.1f} pts): " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in caps.items()))
    return caps


def _search_size(search: _Search, *, levels, cluster_choices, epochs, max_accuracy_drop):
    model, data = search.model, search.data
    caps = _layer_caps(model, data, levels, max_accuracy_drop, search)
    levels = sorted(levels)
    # Binary search for the highest sparsity level that stays within budget after fine-tuning.
    low, high = 0, len(levels) - 1
    best_pruned, best_level, prefix = None, None, []
    tried: dict = {}  # capped sparsities -> outcome: levels the caps make identical are not run twice
    while low <= high:
        middle = (low + high) // 2
        level = levels[middle]
        sparsities = {layer: min(level, cap) for layer, cap in caps.items()}
        if not any(value > 0 for value in sparsities.values()):
            low = middle + 1
            continue
        signature = tuple(sorted(sparsities.items()))
        outcome = tried.get(signature)
        if outcome is None:
            outcome = search.trial(model, [{"step": "prune", "sparsities": sparsities, "epochs": epochs,
                                            "schedule": "oneshot"}], f"prune {100 * level:.0f}% capped per layer")
            if outcome is None:
                return
            tried[signature] = outcome
        else:
            search.note(f"prune {100 * level:.0f}%: the per-layer caps give the same model as a trial already run")
        result, ok = outcome
        if ok:
            best_pruned, best_level, prefix = result.model, level, result.steps
            low = middle + 1
        else:
            high = middle - 1
    start = best_pruned if best_pruned is not None else model
    search.note(f"pruning level kept: {'none' if best_level is None else f'{100 * best_level:.0f}%'}")
    # Fewest clusters (index bits) first: the first count within budget is the smallest file.
    for clusters in sorted(cluster_choices):
        outcome = search.trial(start, [{"step": "cluster", "clusters": clusters, "epochs": epochs},
                                       {"step": "export", "format": "codec"}],
                               f"{'pruned ' if best_pruned is not None else ''}{clusters} clusters "
                               f"({math.log2(clusters):.0f}-bit indices) + codec", prefix)
        if outcome is None:
            return
        if outcome[1]:
            break
    search.trial(start, [{"step": "quantize", "mode": "int8"}],
                 f"{'pruned ' if best_pruned is not None else ''}int8 TFLite", prefix)


def _search_latency(search: _Search, *, epochs, filter_ratios):
    model = search.model
    for mode in ("int8", "dynamic", "float16"):
        if search.trial(model, [{"step": "quantize", "mode": mode}], f"{mode} TFLite") is None:
            return
    for ratio in sorted(filter_ratios):
        outcome = search.trial(model, [{"step": "prune", "sparsity": ratio, "structure": "filters",
                                        "schedule": "oneshot", "epochs": max(1, epochs)},
                                       {"step": "quantize", "mode": "int8"}],
                               f"{100 * ratio:.0f}% filters removed + int8")
        if outcome is None or not outcome[1]:
            return


def autocompress(model, data: Dataset, *, max_accuracy_drop: float = 0.5, objective: str = "size", log=None,
                 max_trials: int | None = 12, time_budget: float | None = None, epochs: int = 1,
                 sparsities: Iterable[float] = (0.5, 0.75, 0.9, 0.95, 0.97),
                 cluster_choices: Iterable[int] = (8, 16, 32), filter_ratios: Iterable[float] = (0.25, 0.5),
                 seed: int = 0, progress: bool = False, on_trial: Callable | None = None) -> AutocompressResult:
    """Search for the smallest (or fastest) variant within an accuracy budget.

    ``objective="size"``: a one-shot sensitivity scan caps each layer's sparsity (sensitive
    layers are pruned less); a binary search over the sparsity ``levels`` finds the highest level
    that stays within budget after ``epochs`` of fine-tuning (mask held); then the pruned model is
    clustered with the fewest centroids (index bits) that stay within budget and stored with
    compresslab's codec, and int8 TFLite is tried as an alternative format. ``objective="latency"``:
    int8 / dynamic / float16 TFLite, then filter pruning + int8, by LiteRT latency (1 thread).

    Every variant tried is measured on the held-out test split and logged. The best so far is
    kept: a ``KeyboardInterrupt`` (Ctrl-C, or raised by ``on_trial``) ends the search early and
    returns it with ``interrupted=True``.

    Args:
        model: a trained tf_keras model (not modified).
        data: the data set.
        max_accuracy_drop: the budget in percentage POINTS of test accuracy (0.5 = half a point).
        objective: ``"size"`` (smallest real file) or ``"latency"``.
        log: an ExperimentLog or path; the input and every variant are appended.
        max_trials: at most this many candidate variants (None: no limit).
        time_budget: stop starting new trials after this many seconds (None: no limit).
        epochs: fine-tuning epochs of each pruning / clustering trial.
        sparsities: sparsity levels searched.
        cluster_choices: centroid counts tried (8, 16, 32 = 3, 4, 5-bit indices).
        filter_ratios: fractions of filters removed (latency objective).
        seed: training seed.
        progress: print a line per trial.
        on_trial: ``callable(record)`` after every trial.

    Returns:
        An :class:`AutocompressResult`.

    Raises:
        ValueError: bad arguments (before any work).

    Example:
        >>> found = autocompress(model, data, max_accuracy_drop=0.5, log="runs/auto.jsonl")
        >>> found.best_record.extra["compressed_bytes"], found.best_record.accuracy
    """
    problems = []
    if not isinstance(model, keras.Model):
        problems.append(f"model is a {type(model).__name__}, not a tf_keras Model")
    if not isinstance(data, Dataset):
        problems.append(f"data is a {type(data).__name__}, not a compresslab Dataset")
    if not _is_number(max_accuracy_drop, 0) or max_accuracy_drop > 100:
        problems.append(f"max_accuracy_drop is {max_accuracy_drop!r}; it is in percentage points, from 0 to 100")
    if objective not in OBJECTIVES:
        problems.append(f"objective is {objective!r}; allowed: {', '.join(OBJECTIVES)}")
    if max_trials is not None and not _is_int(max_trials, 1):
        problems.append(f"max_trials is {max_trials!r}; it must be an integer >= 1 or None")
    if time_budget is not None and not _is_number(time_budget, 0, low_open=True):
        problems.append(f"time_budget is {time_budget!r}; it must be a number of seconds > 0 or None")
    if not _is_int(epochs, 0):
        problems.append(f"epochs is {epochs!r}; it must be an integer >= 0")
    levels = list(sparsities)
    if not levels or not all(_is_number(s, 0) and s < 1 for s in levels):
        problems.append(f"sparsities is {levels!r}; give values in [0, 1)")
    choices = list(cluster_choices)
    if not choices or not all(_is_int(c, 2) for c in choices):
        problems.append(f"cluster_choices is {choices!r}; give integers >= 2")
    ratios = list(filter_ratios)
    if not all(_is_number(r, 0, low_open=True) and r < 1 for r in ratios):
        problems.append(f"filter_ratios is {ratios!r}; give values in (0, 1)")
    if not problems:
        try:
            check_model_fits(model, data)
        except ValueError as error:
            problems.append(str(error))
    if problems:
        raise ValueError("autocompress cannot start:\n" + "\n".join(f"  - {p}" for p in problems))
    search = _Search(model, data, max_accuracy_drop=max_accuracy_drop, objective=objective, log=log,
                     max_trials=max_trials, time_budget=time_budget, seed=seed, progress=progress,
                     on_trial=on_trial)
    interrupted = False
    try:
        if objective == "size":
            _search_size(search, levels=levels, cluster_choices=choices, epochs=epochs,
                         max_accuracy_drop=max_accuracy_drop)
        else:
            _search_latency(search, epochs=epochs, filter_ratios=ratios)
    except KeyboardInterrupt:
        interrupted = True
        search.note(f"interrupted after {search.trials} trial(s); returning the best so far")
    if search.out_of_budget():
        search.note(f"stopped by the budget after {search.trials} trial(s)")
    best, best_record, blob = search.best
    search.note(f"best: {best_record.name} at {100 * best_record.accuracy:.2f}% (input "
                f"{100 * search.baseline.accuracy:.2f}%)")
    return AutocompressResult(best=best, best_record=best_record, blob=blob, baseline=search.baseline,
                              records=search.records, met=best_record.accuracy >= search.floor,
                              interrupted=interrupted, seconds=time.perf_counter() - search.started,
                              notes=search.notes)
