"""Auto-compression: search sparsities, cluster counts and formats within an accuracy budget.

Owns: :func:`autocompress` and :class:`AutocompressResult`. The budget is in percentage POINTS.

Every candidate is a trial of an Optuna study (objectives: the smallest stored file or the latency,
and accuracy on the VALIDATION split; the budget is a constraint), kept in memory or, with
``storage=``, in a shared database (see :mod:`compresslab.studies`). Choices are made on the
validation split carved from the training data; the chosen variant is measured once on the test
split, to report.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from .. import codec
from .._keras import keras
from ..data import Dataset
from ..measure import measure
from ..modelio.convert import ModelTypeError, is_keras3_model, model_type_error
from ..models import check_model_fits, predict_logits
from ..prune.masks import global_sparsity
from ..records import ExperimentLog, Record
from ..sizes import deployable_bytes
from ..tflite import TFLiteArtifact
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
        met: whether ``best`` is within the accuracy budget on validation, by the same rule as every
            trial (its drop plus ``margin_se`` standard errors; the input model always is).
        interrupted: the search was stopped (KeyboardInterrupt) and the best so far returned.
        seconds: wall time of the search.
        notes: what the search did, in order (for people reading the result).
        test_record: the chosen variant measured ONCE on the held-out test split (what to report);
            ``best_record`` and ``records`` hold validation accuracies (what the choices used).
        met_on_test: whether the test accuracy is within the budget of the input's test accuracy.
        baseline_test: the input model measured on the test split.
        study: the Optuna study holding every trial (``study.trials_dataframe()``).
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
    test_record: Record | None = None
    met_on_test: bool | None = None
    baseline_test: Record | None = None
    study: object = None

    def frame(self):
        from ..records import to_frame

        return to_frame([self.baseline, *self.records])


VALIDATION_FRACTION = 0.1  # carved from the training split when the data set has no validation split


def with_validation(data: Dataset, fraction: float = VALIDATION_FRACTION, seed: int = 0) -> Dataset:
    """``data`` itself when it has a validation split, else a copy with one carved from training."""
    if len(getattr(data, "y_val", None) if getattr(data, "y_val", None) is not None else ()) > 0:
        return data
    return data.with_validation(fraction, seed=seed)


def validation_view(data: Dataset) -> Dataset:
    """The data set whose held-out split is the VALIDATION split (so choices never read the test split)."""
    return Dataset(data.x_train, data.y_train, data.x_val, data.y_val, list(data.class_names),
                   name=f"{data.name} (validation)", source=data.source)


class _Search:
    """Book-keeping of one autocompress run: the study, the budget, trials, best so far."""

    def __init__(self, model, data, *, max_accuracy_drop, objective, log, max_trials, time_budget, seed,
                 progress, on_trial, space, storage=None, study_name=None, sampler=None, margin_se=1.0,
                 batchnorm_images=2000):
        from ..studies.study import _optuna

        optuna = _optuna()
        self.model, self.data, self.choose = model, data, validation_view(data)
        self.objective, self.seed, self.progress, self.on_trial = objective, seed, progress, on_trial
        self.log = ExperimentLog(log) if isinstance(log, (str, os.PathLike)) else log
        self.max_trials, self.time_budget = max_trials, time_budget
        self.started = time.perf_counter()
        self.baseline = measure(model, self.choose, name="autocompress: input", technique="baseline", tflite=True,
                                latency=objective == "latency", seed=seed,
                                extra={"compressed_bytes": len(codec.encode(model)), "split": "validation"})
        if self.log is not None:
            self.log.append(self.baseline)
        self.floor = self.baseline.accuracy - max_accuracy_drop / 100.0
        self.margin_se = float(margin_se)
        self.batchnorm_images = int(batchnorm_images)
        self.baseline_correct = _correct(model, self.choose)
        self.space = space
        directions = ["minimize", "maximize"]
        if storage is None:
            self.study = optuna.create_study(directions=directions, sampler=sampler, study_name=study_name)
        else:
            from ..studies.storage import open_storage
            from ..studies.study import FORMAT_VERSION, _create

            info = {"kind": "autocompress", "version": FORMAT_VERSION, "objective": objective,
                    "max_accuracy_drop": max_accuracy_drop, "margin_se": margin_se,
                    "batchnorm_images": batchnorm_images, "dataset": data.name,
                    "seed": seed, "started": time.time()}  # a new search each run: never mixed with an old one
            # One process asks and tells every trial here: no heartbeats (they are for workers).
            self.study = _create(study_name or f"autocompress-{int(time.time())}",
                                 open_storage(storage, heartbeat_seconds=None), info, directions)
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

    def ask(self, params: dict | None = None):
        """A new study trial; ``params`` fixes its knobs (a guided choice), else the sampler picks them."""
        if params:
            self.study.enqueue_trial(params)
        return self.study.ask(self.space)

    def trial(self, start_model, recipe: list[dict], label: str, prefix: list[dict] | None = None,
              params: dict | None = None, study_trial=None):
        """Run one candidate recipe from ``start_model``; returns (result, meets budget) or None if out of budget.

        ``prefix`` holds the steps that made ``start_model`` from the input model, so the record's
        spec describes the whole chain. The candidate is a trial of the study, with ``params`` as its
        knobs; its accuracy is measured on the validation split.
        """
        from ..studies.study import RECORD_KEY, _optuna

        if self.out_of_budget():
            return None
        optuna = _optuna()
        self.trials += 1
        study_trial = study_trial or self.ask(params)
        try:
            result = run_pipeline(start_model, self.choose, recipe, name=f"autocompress #{self.trials}: {label}",
                                  seed=self.seed, measure_input=False, latency=self.objective == "latency")
        except BaseException:
            self.study.tell(study_trial, state=optuna.trial.TrialState.FAIL)
            raise
        record = result.final
        record.technique = "pipeline"
        record.spec = {"recipe": list(prefix or []) + result.steps, "stage": len(prefix or []) + len(result.steps)}
        variant = result.artifact if result.artifact is not None else result.model
        error = drop_standard_error(self.baseline_correct, _correct(variant, self.choose))
        # The drop is an estimate from the validation images: a trial counts as within budget only when
        # the drop plus ``margin_se`` standard errors of it is, so a pick at the budget's edge by luck of
        # the draw is not taken (an upper bound on the drop at about 84% one-sided confidence).
        lower = record.accuracy - self.margin_se * error
        ok = lower >= self.floor
        record.extra.update(autocompress_trial=self.trials, accuracy_floor=self.floor, meets_budget=bool(ok),
                            accuracy_drop_se=error, margin_se=self.margin_se,
                            split="validation", trial=study_trial.number)
        study_trial.set_user_attr(RECORD_KEY, record.to_dict())
        study_trial.set_user_attr("label", label)
        study_trial.set_constraint("accuracy_floor", self.floor - lower)  # <= 0: within budget
        self.study.tell(study_trial, [self.score(record), record.accuracy])
        self.records.append(record)
        if self.log is not None:
            self.log.append(record)
        drop = 100 * (self.baseline.accuracy - record.accuracy)
        self.note(f"trial {self.trials} {label}: {100 * record.accuracy:.2f}% on validation "
                  f"(drop {drop:.2f} \u00b1 {100 * error:.2f} pts: {'within' if ok else 'outside'} budget), "
                  + (f"{record.latency_ms:.3f} ms" if self.objective == "latency" else f"{deployable_bytes(record):,.0f} B"))
        if ok and self.score(record) < self.score(self.best[1]):
            self.best = (variant, record, result.blob)
        if self.on_trial is not None:
            self.on_trial(record)
        return result, ok


def _correct(variant, data: Dataset):
    """Per-image correctness (bool array) of a Keras model or TFLite file on ``data``'s test arrays."""
    if isinstance(variant, TFLiteArtifact):
        outputs = variant.predict(data.x_test)
    else:
        outputs = predict_logits(variant, data.x_test)
    return np.asarray(outputs).argmax(axis=1) == data.y_test


def drop_standard_error(reference_correct, candidate_correct) -> float:
    """Standard error of an accuracy drop measured on the same images (a paired estimate), as a fraction.

    Each image contributes candidate-correct minus reference-correct (-1, 0 or 1); the error is the
    standard deviation of those differences over the square root of the image count. Images both
    models get right (or both wrong) add nothing, so it is much smaller than two separate errors.
    """
    reference = np.asarray(reference_correct, dtype=np.float64)
    candidate = np.asarray(candidate_correct, dtype=np.float64)
    if reference.shape != candidate.shape:
        raise ValueError(f"correctness arrays differ in shape: {reference.shape} and {candidate.shape}")
    if reference.size < 2:
        return 0.0
    return float(np.std(candidate - reference, ddof=1) / math.sqrt(reference.size))


# The capped search widens the per-layer caps by these factors of the scan's drop, one at a time.
CAPS_LOOSENESS = (1, 2, 4, 8, 16, 32)


def _loose_drop(max_accuracy_drop: float, factor: float = 1) -> float:
    """The one-shot drop (points) a layer may lose in the scan and still be pruned that far.

    One-shot pruning loses far more than pruning with fine-tuning, so a layer may lose up to four
    times the budget (at least 2 points) in the scan and still be worth trying; ``factor`` widens it.
    """
    return min(99.0, max(4 * max_accuracy_drop, 2.0) * factor)


def _sensitivity(model, data, levels, max_accuracy_drop, search):
    """The one-shot sensitivity scan on VALIDATION images, and the per-layer caps it gives.

    ``data`` has a validation split: the scan decides, so it never reads the test split. Returns
    ``(scan, caps)``; :func:`_caps` gives looser caps from the same scan.
    """
    from ..prune import sensitivity_scan

    scan = sensitivity_scan(model, data, sorted(set([0.0, *levels])), batchnorm_images=search.batchnorm_images)
    loose = _loose_drop(max_accuracy_drop)
    caps = _caps(scan, max_accuracy_drop)
    recalibrated = scan.attrs.get("batchnorm_images", 0)
    how = f", BatchNormalization statistics re-estimated on {recalibrated:,} training images" if recalibrated else ""
    search.note(f"sensitivity caps (one-shot scan on validation{how}, loose drop {loose:.1f} pts): "
                + ", ".join(f"{k} {100 * v:.0f}%" for k, v in caps.items()))
    return scan, caps


def _caps(scan, max_accuracy_drop: float, factor: float = 1) -> dict[str, float]:
    """Each layer's highest scanned sparsity whose one-shot drop is within the (widened) loose drop."""
    from ..prune import suggest_sparsities

    return suggest_sparsities(scan, _loose_drop(max_accuracy_drop, factor))  # percentage points


def _prune_label(level: float, sparsities: dict[str, float], loose: float | None = None) -> str:
    """What a pruning trial really does: the per-layer sparsities, and the level (and caps) they came from."""
    done = sorted(set(round(100 * v) for v in sparsities.values()))
    if len(done) == 1:
        return f"prune every layer {done[0]}% (level {100 * level:.0f}%" + (
            ")" if loose is None else f", caps from loose drop {loose:.1f} pts)")
    how = "capped by sensitivity" if loose is None else f"capped by sensitivity, loose drop {loose:.1f} pts"
    return ("prune per layer " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in sparsities.items())
            + f" (level {100 * level:.0f}%, {how})")


def _depthwise(model, clusters: int) -> dict:
    """The cluster step's ``depthwise_clusters`` for a model with depthwise kernels (tfmot leaves them float)."""
    from ..cluster import depthwise_attribute

    has = any(depthwise_attribute(layer) is not None for layer in model.layers)
    return {"depthwise_clusters": clusters} if has else {}


def _prune_step(level: float, caps: dict[str, float], scope: str, epochs: int,
                loose: float | None = None) -> tuple[dict, str]:
    """One pruning trial's step and label: per-layer sparsities capped by the scan, or global ranking.

    ``loose``: the widened scan drop the caps came from, named in the label (None: the first caps).
    """
    if scope == "global":
        # Deep Compression's way: one magnitude ranking across every prunable layer, no caps, pruned
        # gradually while fine-tuning (one-shot when there is no fine-tuning).
        step = {"step": "prune", "sparsity": level, "scope": "global", "epochs": epochs,
                "schedule": "polynomial" if epochs else "oneshot"}
        return step, f"prune {100 * level:.0f}% global (one ranking across layers, no caps)"
    sparsities = {layer: min(level, cap) for layer, cap in caps.items()}
    return ({"step": "prune", "sparsities": sparsities, "epochs": epochs, "schedule": "oneshot"},
            _prune_label(level, sparsities, loose))


def _highest_level(search: _Search, levels, caps, scope: str, epochs: int):
    """Binary search for the highest sparsity level within budget after fine-tuning.

    Returns ``(result, level, label)`` of the best trial within budget (``(None, None, "")`` when none
    is), or None when the search ran out of trials or time.
    """
    low, high = 0, len(levels) - 1
    best = (None, None, "")
    tried: dict = {}  # capped sparsities -> outcome: levels the caps make identical are not run twice
    while low <= high:
        middle = (low + high) // 2
        level = levels[middle]
        step, label = _prune_step(level, caps, scope, epochs)
        if scope == "capped" and not any(value > 0 for value in step["sparsities"].values()):
            low = middle + 1
            continue
        signature = (scope, level) if scope == "global" else tuple(sorted(step["sparsities"].items()))
        outcome = tried.get(signature)
        if outcome is None:
            outcome = search.trial(search.model, [step], label,
                                   params={"sparsity_level": level, "scope": scope, "caps_looseness": 1,
                                           "clusters": 0, "format": "keras"})
            if outcome is None:
                return None
            tried[signature] = outcome
        else:
            search.note(f"prune {100 * level:.0f}%: the per-layer caps give the same model as a trial already run")
        result, ok = outcome
        if ok:
            best = (result, level, label)
            low = middle + 1
        else:
            high = middle - 1
    return best


def _search_size(search: _Search, *, levels, cluster_choices, epochs, max_accuracy_drop):
    model = search.model
    scan, caps = _sensitivity(model, search.data, levels, max_accuracy_drop, search)
    levels = sorted(levels)
    found = _highest_level(search, levels, caps, "capped", epochs)
    if found is None:
        return
    best_pruned, best_level, best_label = found
    scope, looseness = "capped", 1
    # The one-shot scan's caps are cautious: a layer fine-tuned after pruning often keeps accuracy at a
    # sparsity the scan ruled out. First the caps are widened step by step at the level found (each
    # step prunes every layer at least as much as the last), while the trial stays within budget.
    if best_level is not None and any(cap < best_level for cap in caps.values()):
        loosened = _loosen_caps(search, scan, caps, best_level, epochs, max_accuracy_drop)
        if loosened is None:
            return
        if loosened[0] is not None:
            best_pruned, best_label, caps, looseness = loosened
    # Where the caps still held layers below the level, the levels above the share of weights the
    # capped pick removed are also tried with one global ranking and no caps: each removes more
    # weights than the capped pick did (a global level L removes exactly L of the prunable weights).
    applied = global_sparsity(best_pruned.model) if best_pruned is not None else 0.0
    above = [level for level in levels if level > applied]
    if above and (best_level is None or any(cap < best_level for cap in caps.values())):
        search.note(f"the capped pick removed {100 * applied:.0f}% of the prunable weights: trying "
                    + ", ".join(f"{100 * level:.0f}%" for level in above) + " with one global ranking, no caps")
        found = _highest_level(search, above, caps, "global", epochs)
        if found is None:
            return
        if found[0] is not None:
            (best_pruned, best_level, best_label), scope, looseness = found, "global", 1
    start = best_pruned.model if best_pruned is not None else model
    prefix = best_pruned.steps if best_pruned is not None else []
    best_label = best_label + " + " if best_label else ""
    kept = 0.0 if best_level is None else best_level
    search.note(f"pruning level kept: {'none' if best_level is None else f'{100 * best_level:.0f}% ({scope})'}")
    # Fewest clusters (index bits) first: the first count within budget is the smallest file.
    for clusters in sorted(cluster_choices):
        outcome = search.trial(start, [{"step": "cluster", "clusters": clusters, **_depthwise(model, clusters),
                                        "epochs": epochs},
                                       {"step": "export", "format": "codec"}],
                               f"{best_label}{clusters} clusters ({math.log2(clusters):.0f}-bit indices) + codec",
                               prefix,
                               params={"sparsity_level": kept, "scope": scope, "caps_looseness": looseness,
                                       "clusters": clusters, "format": "codec"})
        if outcome is None:
            return
        if outcome[1]:
            break
    search.trial(start, [{"step": "quantize", "mode": "int8"}],
                 f"{best_label}int8 TFLite", prefix,
                 params={"sparsity_level": kept, "scope": scope, "caps_looseness": looseness, "clusters": 0,
                         "format": "int8"})


def _loosen_caps(search: _Search, scan, caps, level: float, epochs: int, max_accuracy_drop: float):
    """Widen the scan's caps (:data:`CAPS_LOOSENESS`) at ``level`` while the fine-tuned trial stays in budget.

    Each wider loose drop caps every layer at least as high as the last, so each accepted trial has
    at least as many zeros in every layer. Returns ``(result, label, caps, factor)`` of the last trial
    within budget (``(None, None, caps, 1)`` when none was), or None when the search ran out of
    trials or time.
    """
    current = {layer: min(level, cap) for layer, cap in caps.items()}
    factors = CAPS_LOOSENESS[1:]
    search.note(f"the caps held some layers below {100 * level:.0f}%: widening them at {100 * level:.0f}% "
                f"(loose drops " + ", ".join(f"{_loose_drop(max_accuracy_drop, f):.1f}" for f in factors)
                + " pts) while within budget")
    best = (None, None, caps, 1)
    for factor in factors:
        wider = _caps(scan, max_accuracy_drop, factor)
        sparsities = {layer: min(level, cap) for layer, cap in wider.items()}
        if sparsities == current:
            continue
        step, label = _prune_step(level, wider, "capped", epochs, _loose_drop(max_accuracy_drop, factor))
        outcome = search.trial(search.model, [step], label,
                               params={"sparsity_level": level, "scope": "capped", "caps_looseness": factor,
                                       "clusters": 0, "format": "keras"})
        if outcome is None:
            return None
        result, ok = outcome
        if not ok:
            break
        best, current = (result, label, wider, factor), sparsities
        if all(value >= level for value in sparsities.values()):
            break  # every layer at the level: nothing left to widen
    return best


def _search_sampled(search: _Search, *, levels, epochs, max_accuracy_drop):
    """Let the study's sampler (e.g. NSGA-II with the budget as a constraint) choose every knob."""
    model = search.model
    scan, _ = _sensitivity(model, search.data, levels, max_accuracy_drop, search)
    while not search.out_of_budget():
        trial = search.ask()
        level, clusters, form = trial.params["sparsity_level"], trial.params["clusters"], trial.params["format"]
        factor = trial.params["caps_looseness"]
        steps, label = [], []
        if level > 0:
            loose = _loose_drop(max_accuracy_drop, factor) if factor != 1 else None
            step, text = _prune_step(level, _caps(scan, max_accuracy_drop, factor), trial.params["scope"], epochs,
                                     loose)
            steps.append(step)
            label.append(text)
        if form == "int8":
            steps.append({"step": "quantize", "mode": "int8"})
            label.append("int8 TFLite")
        else:
            if clusters:
                steps.append({"step": "cluster", "clusters": clusters, **_depthwise(model, clusters), "epochs": epochs})
                label.append(f"{clusters} clusters")
            steps.append({"step": "export", "format": "codec"})
            label.append("codec")
        if search.trial(model, steps, " + ".join(label), study_trial=trial) is None:
            return


def _search_latency(search: _Search, *, epochs, filter_ratios):
    model = search.model
    for mode in ("int8", "dynamic", "float16"):
        if search.trial(model, [{"step": "quantize", "mode": mode}], f"{mode} TFLite",
                        params={"mode": mode, "filter_ratio": 0.0}) is None:
            return
    for ratio in sorted(filter_ratios):
        outcome = search.trial(model, [{"step": "prune", "sparsity": ratio, "structure": "filters",
                                        "schedule": "oneshot", "epochs": max(1, epochs)},
                                       {"step": "quantize", "mode": "int8"}],
                               f"{100 * ratio:.0f}% filters removed + int8",
                               params={"mode": "int8", "filter_ratio": ratio})
        if outcome is None or not outcome[1]:
            return


def _space(objective: str, levels, choices, ratios) -> dict:
    from ..studies.study import _optuna

    distributions = _optuna().distributions
    if objective == "size":
        return {"sparsity_level": distributions.CategoricalDistribution([0.0, *sorted(levels)]),
                "scope": distributions.CategoricalDistribution(["capped", "global"]),
                "caps_looseness": distributions.CategoricalDistribution(list(CAPS_LOOSENESS)),
                "clusters": distributions.CategoricalDistribution([0, *sorted(choices)]),
                "format": distributions.CategoricalDistribution(["keras", "codec", "int8"])}
    return {"mode": distributions.CategoricalDistribution(["int8", "dynamic", "float16"]),
            "filter_ratio": distributions.CategoricalDistribution([0.0, *sorted(ratios)])}


SEARCHES = ("guided", "nsga2")


def autocompress(model, data: Dataset, *, max_accuracy_drop: float = 0.5, objective: str = "size", log=None,
                 max_trials: int | None = 12, time_budget: float | None = None, epochs: int = 2,
                 sparsities: Iterable[float] = (0.5, 0.75, 0.9, 0.92, 0.95, 0.97),
                 cluster_choices: Iterable[int] = (8, 16, 32), filter_ratios: Iterable[float] = (0.25, 0.5),
                 seed: int = 0, progress: bool = False, on_trial: Callable | None = None, search: str = "guided",
                 validation: float = VALIDATION_FRACTION, storage=None, study_name: str | None = None,
                 margin_se: float = 1.0, batchnorm_images: int = 2000) -> AutocompressResult:
    """Search for the smallest (or fastest) variant within an accuracy budget.

    ``objective="size"``: a one-shot sensitivity scan caps each layer's sparsity (sensitive
    layers are pruned less); a binary search over the sparsity ``levels`` finds the highest level
    that stays within budget after ``epochs`` of fine-tuning (mask held). Where the caps held some
    layers below that level, they are widened at it, step by step (the scan's loose drop times
    :data:`CAPS_LOOSENESS`: each step prunes every layer at least as much as the last), while the
    fine-tuned trial stays within budget. Where the caps still held some layers below that level, the
    levels above the share of prunable weights the capped pick removed are searched again with one
    global magnitude ranking and no caps (Deep Compression's way, pruned gradually while fine-tuning);
    a global pick within budget removes more weights, and replaces it. Then the pruned model is
    clustered with the fewest centroids (index bits) that stay within budget (depthwise kernels too) and stored with
    compresslab's codec, and int8 TFLite is tried as an alternative format. ``objective="latency"``:
    int8 / dynamic / float16 TFLite, then filter pruning + int8, by LiteRT latency (1 thread).

    Every choice is made on a VALIDATION split (the data set's own, or ``validation`` of the training
    images carved off, stratified and seeded; fine-tuning then uses the rest): the sensitivity scan,
    the budget check of every trial and the final pick. The pick is then measured ONCE on the test
    split (``test_record``), which is what a report should quote. Every trial is a trial of an Optuna
    study (``result.study``) and is logged. The best so far is kept: a ``KeyboardInterrupt`` (Ctrl-C,
    or raised by ``on_trial``) ends the search early and returns it with ``interrupted=True``.

    ``search="guided"`` (default) runs the steps above, each step's choice fixed by the previous
    results; ``search="nsga2"`` lets Optuna's NSGA-II sampler choose sparsity level, scope, how far
    the caps are widened (``caps_looseness``), clusters and format for every trial, with the budget as a constraint (for ``max_trials`` of a few dozen).

    Args:
        model: a trained tf_keras model (not modified).
        data: the data set.
        max_accuracy_drop: the budget in percentage POINTS of accuracy (0.5 = half a point), checked on
            the validation split while searching and reported on the test split.
        objective: ``"size"`` (smallest real file) or ``"latency"``.
        log: an ExperimentLog or path; the input and every variant are appended.
        max_trials: at most this many candidate variants (None: no limit).
        time_budget: stop starting new trials after this many seconds (None: no limit).
        epochs: fine-tuning epochs of each pruning / clustering trial (2: half the Deep Compression
            recipe's 4 pruning epochs, so that a search of a dozen trials stays short).
        sparsities: sparsity levels searched (denser steps near the top, where each step of
            sparsity changes the file most; 92% is Deep Compression's default).
        cluster_choices: centroid counts tried (8, 16, 32 = 3, 4, 5-bit indices).
        filter_ratios: fractions of filters removed (latency objective).
        seed: training seed.
        progress: print a line per trial.
        on_trial: ``callable(record)`` after every trial.
        search: ``"guided"`` or ``"nsga2"`` (size objective only).
        validation: fraction of the training images carved off for choosing, when ``data`` has no
            validation split of its own.
        storage: None (the study lives in memory) or a study storage (URL or path; see
            :mod:`compresslab.studies`) to keep every trial in a database.
        study_name: the study's name in ``storage``.
        margin_se: how sure "within budget" must be. A trial counts as within budget when its drop on
            validation PLUS this many standard errors of that drop (paired, image by image against the
            input) is at most ``max_accuracy_drop``. 1.0 (default): the drop's upper bound at about 84%
            one-sided confidence must fit, so a variant that meets the budget only by the luck of which
            images are in the validation split is not picked. 0 checks the measured drop alone.
        batchnorm_images: training images from which the sensitivity scan re-estimates the
            BatchNormalization statistics after each one-shot cut (see
            :func:`compresslab.prune.sensitivity_scan`); 0 judges cuts with the model's own statistics,
            which makes layers followed by BatchNormalization look far more sensitive than they are.

    Returns:
        An :class:`AutocompressResult`.

    Raises:
        ValueError: bad arguments (before any work).

    Example:
        >>> found = autocompress(model, data, max_accuracy_drop=0.5, log="runs/auto.jsonl")
        >>> found.best_record.extra["compressed_bytes"], found.best_record.accuracy
    """
    problems = []
    not_a_model = not isinstance(model, keras.Model) and not is_keras3_model(model)
    if not_a_model:
        problems.append(str(model_type_error(model)))
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
    if search not in SEARCHES:
        problems.append(f"search is {search!r}; allowed: {', '.join(SEARCHES)}")
    elif search == "nsga2" and objective != "size":
        problems.append("search 'nsga2' explores sparsity, clusters and format: use it with objective 'size'")
    if not _is_number(margin_se, 0) or margin_se > 10:
        problems.append(f"margin_se is {margin_se!r}; give a number of standard errors from 0 to 10")
    if not _is_int(batchnorm_images, 0):
        problems.append(f"batchnorm_images is {batchnorm_images!r}; it must be an integer >= 0 (0: the model's own "
                        "BatchNormalization statistics)")
    if not _is_number(validation, 0, low_open=True) or validation >= 0.5:
        problems.append(f"validation is {validation!r}; give the fraction of training images to carve off, in (0, 0.5)")
    if not problems:
        try:
            model = check_model_fits(model, data)
        except ValueError as error:
            problems.append(str(error))
            not_a_model = isinstance(error, ModelTypeError)
    if problems:
        raise (ModelTypeError if not_a_model else ValueError)(
            "autocompress cannot start:\n" + "\n".join(f"  - {p}" for p in problems))
    from ..studies.study import _optuna

    data = with_validation(data, validation, seed)
    sampler = (_optuna().samplers.NSGAIISampler(seed=seed, population_size=max(4, min(20, (max_trials or 20) // 2)))
               if search == "nsga2" else None)
    state = _Search(model, data, max_accuracy_drop=max_accuracy_drop, objective=objective, log=log,
                    max_trials=max_trials, time_budget=time_budget, seed=seed, progress=progress,
                    on_trial=on_trial, space=_space(objective, levels, choices, ratios), storage=storage,
                    study_name=study_name, sampler=sampler, margin_se=margin_se, batchnorm_images=batchnorm_images)
    state.note(f"choosing on {len(data.y_val):,} validation images carved from training "
               f"({len(data.y_train):,} left for fine-tuning); the test split is read once, at the end")
    state.note(f"within budget: a drop on validation of at most {max_accuracy_drop:g} pts"
               + (f" after adding {margin_se:g} standard error(s) of it" if margin_se else ""))
    search_state = state
    interrupted = False
    try:
        if objective == "size" and search == "nsga2":
            _search_sampled(search_state, levels=levels, epochs=epochs, max_accuracy_drop=max_accuracy_drop)
        elif objective == "size":
            _search_size(search_state, levels=levels, cluster_choices=choices, epochs=epochs,
                         max_accuracy_drop=max_accuracy_drop)
        else:
            _search_latency(search_state, epochs=epochs, filter_ratios=ratios)
    except KeyboardInterrupt:
        interrupted = True
        state.note(f"interrupted after {state.trials} trial(s); returning the best so far")
    if state.out_of_budget():
        state.note(f"stopped by the budget after {state.trials} trial(s)")
    best, best_record, blob = state.best
    state.note(f"best on validation: {best_record.name} at {100 * best_record.accuracy:.2f}% (input "
               f"{100 * state.baseline.accuracy:.2f}%)")
    baseline_test, test_record = _report_on_test(state, best, best_record)
    met_on_test = test_record.accuracy >= baseline_test.accuracy - max_accuracy_drop / 100.0
    state.note(f"on the test split (read once): {100 * test_record.accuracy:.2f}% against the input's "
               f"{100 * baseline_test.accuracy:.2f}% ({'within' if met_on_test else 'outside'} the budget)")
    return AutocompressResult(best=best, best_record=best_record, blob=blob, baseline=state.baseline,
                              records=state.records, met=bool(best_record.extra.get("meets_budget", True)),
                              interrupted=interrupted, seconds=time.perf_counter() - state.started,
                              notes=state.notes, test_record=test_record, met_on_test=met_on_test,
                              baseline_test=baseline_test, study=state.study)


def _report_on_test(state: _Search, best, best_record: Record) -> tuple[Record, Record]:
    """The input and the chosen variant measured on the test split: the figures to report."""
    latency = state.objective == "latency"
    baseline_test = measure(state.model, state.data, name="autocompress: input", technique="baseline",
                            tflite=True, latency=latency, seed=state.seed,
                            extra={"compressed_bytes": state.baseline.extra["compressed_bytes"], "split": "test"})
    if best is state.model:
        return baseline_test, baseline_test
    keep = {k: v for k, v in best_record.extra.items() if k in ("compressed_bytes", "compressed_ratio", "label")}
    test_record = measure(best, state.data, name=best_record.name, technique=best_record.technique,
                          spec=best_record.spec, tflite=True, latency=latency, seed=state.seed,
                          extra={**keep, "split": "test", "chosen_on": "validation",
                                 "validation_accuracy": best_record.accuracy})
    for record in (baseline_test, test_record):
        if state.log is not None:
            state.log.append(record)
    return baseline_test, test_record
