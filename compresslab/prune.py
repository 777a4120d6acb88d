"""Pruning: zero the weights that matter least, then measure honestly what that buys.

What you can do here, grouped by goal:

* one-shot pruning into a NEW model: :func:`by_threshold` (zero ``|w| < threshold``),
  :func:`to_sparsity` (exact target sparsity by magnitude, per layer or global, or 2:4),
  :func:`to_layer_sparsities` (a sparsity per layer, e.g. chosen from a sensitivity scan),
  :func:`apply` (any :class:`PruneSpec`);
* pruning while training: :func:`finetune` (tfmot ``prune_low_magnitude`` with a polynomial or
  constant schedule, ``UpdatePruningStep``, then ``strip_pruning``), :func:`schedule_curve`;
* structured pruning: :func:`filter_pruning` removes whole Conv2D filters and Dense units and
  rebuilds a smaller model; 2:4 sparsity is checked by :func:`check_m_by_n`;
* analysis: :func:`layer_sparsity`, :func:`sensitivity_scan`, :func:`suggest_sparsities`;
* honest sizes: :func:`sparse_bytes` (bitmask or CSR encodings with their index bits counted),
  :func:`size_report` (dense TFLite, gzip and sparse-encoding bytes side by side);
* live exploration: :class:`PruningWorkbench` keeps ONE working copy of a model and re-masks
  its kernels in place, which is what the panel's sliders use.

Only kernels are pruned (Conv and Dense ``kernel``, DepthwiseConv2D ``depthwise_kernel``); biases
are a tiny share of the parameters and zeroing them shifts every activation, so they are left
untouched unless ``include_biases=True``.

Example:
    >>> spec = PruneSpec(method="magnitude", sparsity=0.8, scope="global")
    >>> pruned = to_sparsity(model, spec)          # a new model; ``model`` is unchanged
    >>> layer_sparsity(pruned)
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from ._keras import keras, tf, tfmot
from .data import Dataset
from .models import check_model_fits, clone, compile_for_classification, train
from .specs import Spec, check_choice, check_layers, check_number, fail, resolve_layers

METHODS = ("threshold", "magnitude")
SCOPES = ("layer", "global")
STRUCTURES = ("unstructured", "2:4", "filters")
SCHEDULES = ("polynomial", "constant")
ENCODINGS = ("bitmask", "csr")


# ---------------------------------------------------------------------------------------------
# The spec


@dataclass(frozen=True)
class PruneSpec(Spec):
    """What to prune and how much.

    Args:
        method: ``"threshold"`` zeroes every weight with ``|w| < threshold``; ``"magnitude"``
            zeroes the smallest-magnitude weights until exactly ``sparsity`` of them are zero.
        threshold: the magnitude cut, >= 0 (only with ``method="threshold"``).
        sparsity: the fraction of weights to zero, in [0, 1) (only with ``method="magnitude"``).
            For ``structure="2:4"`` it is 0.5 by construction and may be left out; for
            ``structure="filters"`` it is the fraction of filters / units removed per layer.
        scope: ``"layer"`` gives every layer the same sparsity; ``"global"`` ranks all kernels
            together, so layers with many small weights lose more.
        layers: names of the layers to prune (default: every Conv / Dense kernel).
        structure: ``"unstructured"`` (any weight), ``"2:4"`` (2 zeros in every group of 4
            consecutive input weights: the pattern sparse tensor cores accelerate) or
            ``"filters"`` (whole filters and units: see :func:`filter_pruning`).
        include_biases: prune biases too (default False: biases are untouched).

    Raises:
        ValueError: a bad value, naming the field and what is allowed; both or neither of
            ``threshold`` and ``sparsity`` given for the method.

    Example:
        >>> PruneSpec(method="threshold", threshold=0.05)
        >>> PruneSpec(method="magnitude", sparsity=0.8, scope="global")
    """

    method: str = "magnitude"
    threshold: float | None = None
    sparsity: float | None = None
    scope: str = "layer"
    layers: tuple[str, ...] | None = None
    structure: str = "unstructured"
    include_biases: bool = False

    def __post_init__(self):
        check_choice(self, "method", METHODS)
        check_choice(self, "scope", SCOPES)
        check_choice(self, "structure", STRUCTURES)
        check_layers(self, "layers")
        if not isinstance(self.include_biases, bool):
            fail(self, "include_biases", self.include_biases, "it must be True or False")
        if self.method == "threshold":
            if self.threshold is None:
                fail(self, "threshold", None, "method 'threshold' needs a threshold >= 0 (and no sparsity)")
            if self.sparsity is not None:
                fail(self, "sparsity", self.sparsity,
                     "method 'threshold' takes a threshold only; give sparsity with method 'magnitude'")
            check_number(self, "threshold", 0.0, None)
            if not math.isfinite(self.threshold):
                fail(self, "threshold", self.threshold, "it must be a finite number >= 0")
            if self.structure != "unstructured":
                fail(self, "structure", self.structure,
                     "method 'threshold' prunes unstructured weights; use method 'magnitude' for 2:4 or filters")
            return
        # magnitude
        if self.threshold is not None:
            fail(self, "threshold", self.threshold,
                 "method 'magnitude' takes a sparsity only; give threshold with method 'threshold'")
        if self.structure == "2:4":
            if self.sparsity is None:
                object.__setattr__(self, "sparsity", 0.5)
            if self.sparsity != 0.5:
                fail(self, "sparsity", self.sparsity, "2:4 keeps 2 of every 4 weights: its sparsity is 0.5")
            return
        if self.sparsity is None:
            fail(self, "sparsity", None, "method 'magnitude' needs a sparsity in [0, 1) (and no threshold)")
        check_number(self, "sparsity", 0.0, 1.0, high_open=True)


def _as_spec(spec_or_sparsity, **defaults) -> PruneSpec:
    if isinstance(spec_or_sparsity, PruneSpec):
        return spec_or_sparsity
    if isinstance(spec_or_sparsity, dict):
        return PruneSpec.from_dict(spec_or_sparsity)
    if isinstance(spec_or_sparsity, (int, float)) and not isinstance(spec_or_sparsity, bool):
        return PruneSpec(method="magnitude", sparsity=float(spec_or_sparsity), **defaults)
    raise TypeError(f"expected a PruneSpec, a dict or a sparsity number, got {type(spec_or_sparsity).__name__}")


# ---------------------------------------------------------------------------------------------
# Which weights are prunable


def _kernel_of(layer):
    """The weight variable pruning acts on (None for layers without one)."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return getattr(layer, "depthwise_kernel", None)
    if isinstance(layer, (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)):
        return getattr(layer, "kernel", None)
    return None


def is_prunable(layer) -> bool:
    """True for Conv / Dense / DepthwiseConv2D layers (the layers with a kernel to prune)."""
    return _kernel_of(layer) is not None


def prunable_layers(model, layers=None) -> list:
    """The model's prunable layers (all, or those named in ``layers``; a clear error otherwise)."""
    _check_model(model)
    return resolve_layers(model, layers, eligible=is_prunable, what="prunable layer")


def _check_model(model) -> None:
    if not isinstance(model, keras.Model):
        raise TypeError(f"expected a tf_keras Model, got {type(model).__name__}; load files with cl.load_model")
    if not model.built:
        raise ValueError("the model is not built yet: call it on an input or give it an Input layer first")


def _pruned_variables(layer, include_biases: bool) -> list:
    variables = [_kernel_of(layer)]
    if include_biases and getattr(layer, "bias", None) is not None:
        variables.append(layer.bias)
    return variables


def layer_sparsity(model, layers=None) -> dict[str, float]:
    """Fraction of zero weights in each prunable layer's kernel.

    Example:
        >>> layer_sparsity(pruned)      # {'conv1': 0.5, 'conv2': 0.5, ...}
    """
    return {layer.name: float(np.mean(_kernel_of(layer).numpy() == 0)) for layer in prunable_layers(model, layers)}


def global_sparsity(model, layers=None) -> float:
    """Fraction of zero weights over all prunable kernels together."""
    chosen = prunable_layers(model, layers)
    zeros = sum(int(np.sum(_kernel_of(layer).numpy() == 0)) for layer in chosen)
    total = sum(int(_kernel_of(layer).numpy().size) for layer in chosen)
    return zeros / total if total else 0.0


# ---------------------------------------------------------------------------------------------
# Masks (numpy; shared by the one-shot functions and the workbench)


def _exact_keep_mask(magnitudes: np.ndarray, order: np.ndarray, sparsity: float) -> np.ndarray:
    """Keep-mask zeroing exactly ``round(sparsity * n)`` entries: the smallest by ``order``."""
    n_zero = int(round(sparsity * magnitudes.size))
    keep = np.ones(magnitudes.size, dtype=bool)
    keep[order[:n_zero]] = False
    return keep


def _m_by_n_keep_mask(kernel: np.ndarray, m: int = 2, n: int = 4) -> np.ndarray:
    """Keep-mask with at least ``m`` zeros in every group of ``n`` consecutive input weights.

    Groups run along the input-channel axis, as in TFLite's layout (tfmot's ``weights_rearrange``):
    a Dense kernel (in, out) is grouped along ``in`` for each output; a Conv2D kernel
    (h, w, in, out) along ``in`` for each (h, w, out).
    """
    moved = np.moveaxis(kernel, -2, -1)  # (..., out, in): input axis last
    inputs = moved.shape[-1]
    groups = np.abs(moved).reshape(-1, inputs // n, n)
    # Argsort each group of n; zero the m smallest.
    order = np.argsort(groups, axis=-1, kind="stable")
    keep = np.ones_like(groups, dtype=bool)
    np.put_along_axis(keep, order[..., :m], False, axis=-1)
    return np.moveaxis(keep.reshape(moved.shape), -1, -2)


def _input_size(layer) -> int:
    return int(_kernel_of(layer).shape[-2])


def _check_m_by_n_layers(layers, n: int = 4, *, explicit: bool) -> list:
    """Layers whose input size is a multiple of ``n``; a clear error for named layers that are not."""
    bad = [(layer.name, _input_size(layer)) for layer in layers if _input_size(layer) % n]
    if bad and explicit:
        raise ValueError(
            "2:4 sparsity groups weights 4 at a time along the input axis, but layer(s) "
            + ", ".join(f"{name!r} (input size {size})" for name, size in bad)
            + f" have an input size that is not a multiple of {n}; leave them out of `layers`"
        )
    good = [layer for layer in layers if _input_size(layer) % n == 0]
    if not good:
        raise ValueError(
            f"no layer can take 2:4 sparsity: every prunable layer's input size ({[s for _, s in bad]}) "
            f"is not a multiple of {n}"
        )
    return good


def check_m_by_n(model, m_by_n=(2, 4), layers=None) -> dict[str, float]:
    """For each layer, the fraction of input-axis groups of ``n`` that hold at least ``m`` zeros.

    1.0 means the layer satisfies the m:n pattern everywhere. Layers whose input size is not a
    multiple of ``n`` are left out (they cannot hold the pattern).

    Example:
        >>> check_m_by_n(pruned_2_4)      # {'conv2': 1.0, 'dense1': 1.0, 'logits': 1.0}
    """
    m, n = (int(v) for v in m_by_n)
    if not 0 < m < n:
        raise ValueError(f"m_by_n is {m_by_n}; it must be (m, n) with 0 < m < n, e.g. (2, 4)")
    result = {}
    for layer in prunable_layers(model, layers):
        kernel = _kernel_of(layer).numpy()
        if kernel.shape[-2] % n:
            continue
        moved = np.moveaxis(kernel, -2, -1)
        zeros = (moved.reshape(-1, moved.shape[-1] // n, n) == 0).sum(axis=-1)
        result[layer.name] = float(np.mean(zeros >= m))
    return result


def is_m_by_n(model, m_by_n=(2, 4), layers=None) -> bool:
    """True when every checked layer holds the m:n pattern in every group (see :func:`check_m_by_n`)."""
    report = check_m_by_n(model, m_by_n, layers)
    return bool(report) and all(value == 1.0 for value in report.values())


# ---------------------------------------------------------------------------------------------
# One-shot pruning


def _assign_masked(model, layers, masks: dict, include_biases: bool) -> None:
    for layer in layers:
        for variable in _pruned_variables(layer, include_biases):
            keep = masks[variable.name]
            variable.assign(np.where(keep, variable.numpy(), 0).astype(variable.dtype.as_numpy_dtype))


def _same_layers(copy, originals) -> list:
    by_name = {layer.name: layer for layer in copy.layers}
    return [by_name[layer.name] for layer in originals]


def by_threshold(model, threshold: float, *, layers=None, include_biases: bool = False):
    """Zero every kernel weight with ``|w| < threshold``, into a NEW model.

    Biases are untouched unless ``include_biases``. The input model is not modified.

    Args:
        model: a tf_keras model.
        threshold: the magnitude cut (>= 0).
        layers: names of the layers to prune (default: every prunable layer).
        include_biases: prune biases with the same rule.

    Returns:
        A new compiled model.

    Raises:
        ValueError: a negative or non-numeric threshold, or a missing layer name.

    Example:
        >>> pruned = by_threshold(model, 0.05)
    """
    spec = PruneSpec(method="threshold", threshold=threshold, layers=layers, include_biases=include_biases)
    return apply(model, spec)


def by_naive_threshold(model, threshold: float, *, layers=None):
    """The WRONG rule, for teaching: keep ``w`` only if ``w >= threshold`` (no absolute value).

    Every negative weight is below any threshold >= 0, so this wipes out all of them (about half of
    a trained layer) and the model collapses. Compare with :func:`by_threshold`, which keeps
    ``|w| >= threshold``.

    Example:
        >>> broken = by_naive_threshold(model, 0.01)    # every negative kernel weight is now 0
    """
    PruneSpec(method="threshold", threshold=threshold, layers=layers)  # same validation
    chosen = prunable_layers(model, layers)
    copy = clone(model)
    targets = _same_layers(copy, chosen)
    masks = {_kernel_of(layer).name: _kernel_of(layer).numpy() >= threshold for layer in targets}
    _assign_masked(copy, targets, masks, include_biases=False)
    return compile_for_classification(copy)


def to_sparsity(model, spec, *, scope: str | None = None):
    """Magnitude pruning to an exact target sparsity, into a NEW model.

    ``round(sparsity * n)`` kernel weights are zeroed in each layer (``scope="layer"``) or over
    all chosen kernels ranked together (``scope="global"``): the target is hit within one weight
    per layer. ``structure="2:4"`` zeroes the 2 smallest of every 4 consecutive input weights.
    Biases are untouched unless ``spec.include_biases``.

    Args:
        model: a tf_keras model (not modified).
        spec: a :class:`PruneSpec` with ``method="magnitude"``, or a sparsity number.
        scope: overrides ``spec.scope`` when ``spec`` is a number.

    Returns:
        A new compiled model.

    Raises:
        ValueError: a bad spec, a missing layer, 2:4 on a layer whose input size is not a
            multiple of 4, or ``structure="filters"`` (use :func:`filter_pruning`).

    Example:
        >>> pruned = to_sparsity(model, PruneSpec(sparsity=0.8, scope="global"))
    """
    spec = _as_spec(spec, **({"scope": scope} if scope else {}))
    if spec.method != "magnitude":
        raise ValueError("to_sparsity needs method='magnitude'; use by_threshold for a threshold")
    if spec.structure == "filters":
        raise ValueError("structure='filters' removes whole filters: use filter_pruning(model, data, ratio)")
    return apply(model, spec)


def to_layer_sparsities(model, sparsities: dict[str, float], *, include_biases: bool = False):
    """Magnitude pruning with a sparsity of its own for each named layer, into a NEW model.

    Use it with :func:`suggest_sparsities` to prune sensitive layers less.

    Raises:
        ValueError: a missing layer or a sparsity outside [0, 1).

    Example:
        >>> pruned = to_layer_sparsities(model, {"conv1": 0.3, "dense1": 0.9})
    """
    if not isinstance(sparsities, dict) or not sparsities:
        raise ValueError("sparsities must be a non-empty dict {layer name: sparsity in [0, 1)}")
    for name, value in sparsities.items():
        PruneSpec(sparsity=value, layers=(name,), include_biases=include_biases)
    chosen = prunable_layers(model, tuple(sparsities))
    copy = clone(model)
    targets = _same_layers(copy, chosen)
    masks = {}
    for layer in targets:
        for variable in _pruned_variables(layer, include_biases):
            values = np.abs(variable.numpy()).ravel()
            order = np.argsort(values, kind="stable")
            masks[variable.name] = _exact_keep_mask(values, order, sparsities[layer.name]).reshape(variable.shape)
    _assign_masked(copy, targets, masks, include_biases)
    return compile_for_classification(copy)


def _masks_for_spec(layers, spec: PruneSpec) -> dict:
    """name of variable -> boolean keep-mask, from a validated spec (filters excluded)."""
    variables = [v for layer in layers for v in _pruned_variables(layer, spec.include_biases)]
    values = {v.name: v.numpy() for v in variables}
    if spec.method == "threshold":
        return {name: np.abs(array) >= spec.threshold for name, array in values.items()}
    if spec.structure == "2:4":
        kernels = {_kernel_of(layer).name for layer in layers}
        return {name: (_m_by_n_keep_mask(array) if name in kernels else np.ones(array.shape, bool))
                for name, array in values.items()}
    if spec.scope == "layer":
        masks = {}
        for name, array in values.items():
            magnitudes = np.abs(array).ravel()
            order = np.argsort(magnitudes, kind="stable")
            masks[name] = _exact_keep_mask(magnitudes, order, spec.sparsity).reshape(array.shape)
        return masks
    flat = np.concatenate([np.abs(array).ravel() for array in values.values()])
    keep = _exact_keep_mask(flat, np.argsort(flat, kind="stable"), spec.sparsity)
    masks, start = {}, 0
    for name, array in values.items():
        masks[name] = keep[start : start + array.size].reshape(array.shape)
        start += array.size
    return masks


def _resolve_for_spec(model, spec: PruneSpec) -> list:
    layers = prunable_layers(model, spec.layers)
    if spec.structure == "2:4":
        layers = _check_m_by_n_layers(layers, explicit=spec.layers is not None)
    return layers


def apply(model, spec: PruneSpec, data: Dataset | None = None):
    """Apply any :class:`PruneSpec` in one shot, into a NEW model.

    ``threshold`` -> :func:`by_threshold`; ``magnitude`` -> :func:`to_sparsity` (unstructured or
    2:4); ``structure="filters"`` -> :func:`filter_pruning` with ``ratio=spec.sparsity``. With
    2:4 and no ``layers``, layers whose input size is not a multiple of 4 are skipped.

    Example:
        >>> pruned = apply(model, PruneSpec(structure="2:4"))
    """
    spec = _as_spec(spec)
    if spec.structure == "filters":
        return filter_pruning(model, data, spec.sparsity, layers=spec.layers)
    chosen = _resolve_for_spec(model, spec)
    copy = clone(model)
    targets = _same_layers(copy, chosen)
    _assign_masked(copy, targets, _masks_for_spec(targets, spec), spec.include_biases)
    return compile_for_classification(copy)


# ---------------------------------------------------------------------------------------------
# Pruning while training (tfmot)


@dataclass(frozen=True)
class _SchedulePlan:
    total_steps: int
    begin_step: int
    end_step: int
    frequency: int


def _plan_schedule(total_steps: int, schedule: str, begin_step: int, end_step: int | None,
                   frequency: int | None) -> _SchedulePlan:
    if frequency is None:
        frequency = max(1, min(100, total_steps // 20))
    if int(frequency) < 1:
        raise ValueError(f"frequency is {frequency}; it must be at least 1 step")
    frequency = int(frequency)
    if begin_step < 0 or begin_step >= total_steps:
        raise ValueError(f"begin_step is {begin_step}; it must be in [0, {total_steps}) (the training steps)")
    if end_step is None:
        # Reach the final sparsity after ~70% of the steps, leaving the rest to recover accuracy
        # with the final mask. Aligned to the pruning frequency so the last update lands on it.
        span = max(frequency, int(0.7 * (total_steps - begin_step)) // frequency * frequency)
        end_step = begin_step + span
    if schedule == "polynomial" and not begin_step < end_step:
        raise ValueError(f"end_step ({end_step}) must be after begin_step ({begin_step})")
    return _SchedulePlan(int(total_steps), int(begin_step), int(end_step), frequency)


def _make_schedule(schedule: str, initial_sparsity: float, final_sparsity: float, plan: _SchedulePlan):
    sparsity = tfmot().sparsity.keras
    if schedule == "constant":
        return sparsity.ConstantSparsity(final_sparsity, begin_step=plan.begin_step, end_step=-1,
                                         frequency=plan.frequency)
    return sparsity.PolynomialDecay(initial_sparsity=min(initial_sparsity, final_sparsity),
                                    final_sparsity=final_sparsity, begin_step=plan.begin_step,
                                    end_step=plan.end_step, power=3, frequency=plan.frequency)


def schedule_curve(*, final_sparsity: float, total_steps: int, schedule: str = "polynomial",
                   initial_sparsity: float = 0.0, begin_step: int = 0, end_step: int | None = None,
                   frequency: int | None = None):
    """The sparsity a tfmot schedule applies at each training step, as a DataFrame (step, sparsity).

    Evaluated by calling the same tfmot schedule object :func:`finetune` uses, at each pruning
    step; between pruning steps the mask (and its sparsity) is held.

    Example:
        >>> schedule_curve(final_sparsity=0.8, total_steps=1000).tail(1)
    """
    import pandas as pd

    _check_schedule_args(final_sparsity, initial_sparsity, schedule)
    if int(total_steps) < 1:
        raise ValueError(f"total_steps is {total_steps}; it must be at least 1")
    plan = _plan_schedule(int(total_steps), schedule, int(begin_step), end_step, frequency)
    pruning_schedule = _make_schedule(schedule, initial_sparsity, final_sparsity, plan)
    steps, values, current = [], [], 0.0
    for step in range(plan.total_steps + 1):
        on_turn = (step - plan.begin_step) % plan.frequency == 0 and step >= plan.begin_step
        in_range = plan.end_step == -1 or schedule == "constant" or step <= plan.end_step
        if on_turn and in_range:
            should_prune, value = pruning_schedule(tf.constant(step, tf.int64))
            if bool(should_prune):
                current = float(value)
        steps.append(step)
        values.append(current)
    return pd.DataFrame({"step": steps, "sparsity": values, "schedule": schedule})


def _check_schedule_args(final_sparsity, initial_sparsity, schedule) -> None:
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule is {schedule!r}; allowed: 'polynomial', 'constant'")
    for name, value in (("final_sparsity", final_sparsity), ("initial_sparsity", initial_sparsity)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise ValueError(f"{name} is {value!r}; it must be a number in [0, 1)")


def global_layer_targets(model, sparsity: float, layers=None) -> dict[str, float]:
    """Per-layer sparsities that global magnitude pruning at ``sparsity`` gives this model now.

    Used by :func:`finetune` with ``scope="global"``: tfmot prunes layer by layer, so the global
    ranking is done once on the starting weights and each layer then follows its own schedule
    to its share.
    """
    chosen = prunable_layers(model, layers)
    masks = _masks_for_spec(chosen, PruneSpec(sparsity=sparsity, scope="global"))
    return {layer.name: float(1.0 - masks[_kernel_of(layer).name].mean()) for layer in chosen}


def finetune(model, data: Dataset, *, final_sparsity: float, schedule: str = "polynomial", epochs: int = 2,
             initial_sparsity: float = 0.0, scope: str = "layer", layers=None, structure: str = "unstructured",
             begin_step: int = 0, end_step: int | None = None, frequency: int | None = None,
             batch_size: int = 64, learning_rate: float = 1e-4, seed: int = 0, progress=False,
             callbacks: list | None = None):
    """Prune while training with tfmot, then strip the wrappers: a NEW, sparse, plain Keras model.

    Each chosen layer is wrapped with ``prune_low_magnitude``; ``UpdatePruningStep`` advances the
    schedule and re-applies the mask after every step, so weights outside the mask stay zero
    during fine-tuning (the optimizer's update to a masked weight is undone before the next
    forward pass and at each epoch end); ``strip_pruning`` leaves the zeros in plain kernels.

    Args:
        model: a trained tf_keras model (not modified).
        data: its data set (training split used; test split held out).
        final_sparsity: sparsity reached at ``end_step`` (ignored for 2:4, which is 0.5).
        schedule: ``"polynomial"`` (tfmot PolynomialDecay, power 3: prunes fast early, gently
            late) or ``"constant"`` (the final sparsity from ``begin_step`` on).
        epochs: fine-tuning epochs (>= 1).
        initial_sparsity: polynomial schedule's starting sparsity.
        scope: ``"layer"`` (each layer to ``final_sparsity``) or ``"global"`` (per-layer shares
            from a global magnitude ranking of the starting weights; see :func:`global_layer_targets`).
        layers: names of the layers to prune (default: all prunable).
        structure: ``"unstructured"`` or ``"2:4"`` (tfmot ``sparsity_m_by_n=(2, 4)``; the mask is set
            at step 1 and held).
        begin_step, end_step, frequency: schedule steps (defaults: start at 0, reach the final
            sparsity after about 70% of the steps, update the mask about 20 times).
        batch_size, learning_rate, seed: training settings (Adam).
        progress: True for a bar, False for none, or ``callable(epoch, logs)``.
        callbacks: extra Keras callbacks (run after ``UpdatePruningStep``).

    Returns:
        A new compiled model; ``model.compresslab_info`` holds the schedule plan and layer targets.

    Raises:
        ValueError: bad settings, a missing layer, or 2:4 on a layer whose input size is not a
            multiple of 4 (all checked before training).

    Example:
        >>> sparse = finetune(model, data, final_sparsity=0.8, epochs=2)
    """
    _check_schedule_args(final_sparsity, initial_sparsity, schedule)
    if scope not in SCOPES:
        raise ValueError(f"scope is {scope!r}; allowed: 'layer', 'global'")
    if structure not in ("unstructured", "2:4"):
        raise ValueError(f"structure is {structure!r}; finetune supports 'unstructured' and '2:4' "
                         "(use filter_pruning(..., finetune_epochs=) for filters)")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs is {epochs!r}; it must be an integer >= 1")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size is {batch_size}; it must be at least 1")
    check_model_fits(model, data)
    layer_names = None if layers is None else tuple(layers)
    PruneSpec(sparsity=final_sparsity, layers=layer_names)  # validates the layer list form
    chosen = prunable_layers(model, layer_names)
    if structure == "2:4":
        chosen = _check_m_by_n_layers(chosen, explicit=layer_names is not None)
    steps_per_epoch = math.ceil(len(data.x_train) / int(batch_size))
    plan = _plan_schedule(steps_per_epoch * epochs, schedule, int(begin_step), end_step, frequency)
    if scope == "global" and structure == "unstructured":
        targets = global_layer_targets(model, final_sparsity, [layer.name for layer in chosen])
    else:
        targets = {layer.name: (0.5 if structure == "2:4" else float(final_sparsity)) for layer in chosen}

    sparsity_api = tfmot().sparsity.keras
    start = clone(model)

    def wrap(layer):
        target = targets.get(layer.name)
        if target is None or (target == 0.0 and structure == "unstructured"):
            return layer.__class__.from_config(layer.get_config())
        params = {"pruning_schedule": _make_schedule(schedule, initial_sparsity, target, plan)}
        if structure == "2:4":
            params["sparsity_m_by_n"] = (2, 4)
        return sparsity_api.prune_low_magnitude(layer, **params)

    wrapped = keras.models.clone_model(start, clone_function=wrap)
    # clone_model builds fresh variables: copy the trained weights layer by layer.
    for layer in wrapped.layers:
        source = start.get_layer(_unwrapped_name(layer))
        inner = getattr(layer, "layer", layer)
        inner.set_weights(source.get_weights())
    all_callbacks = [sparsity_api.UpdatePruningStep()] + list(callbacks or [])
    train(wrapped, data, epochs=epochs, batch_size=batch_size, seed=seed, learning_rate=learning_rate,
          progress=progress, callbacks=all_callbacks)
    stripped = sparsity_api.strip_pruning(wrapped)
    result = clone(stripped)  # a plain model with its own variables, named like the input
    compile_for_classification(result)
    result.compresslab_info = {
        "schedule": schedule, "final_sparsity": float(final_sparsity), "scope": scope, "structure": structure,
        "total_steps": plan.total_steps, "begin_step": plan.begin_step, "end_step": plan.end_step,
        "frequency": plan.frequency, "layer_targets": targets,
    }
    return result


def _unwrapped_name(layer) -> str:
    inner = getattr(layer, "layer", None)
    return inner.name if inner is not None and isinstance(layer, keras.layers.Wrapper) else layer.name


# ---------------------------------------------------------------------------------------------
# Structured pruning: whole filters and units


_PASS_THROUGH = (
    keras.layers.MaxPooling1D, keras.layers.MaxPooling2D, keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D, keras.layers.AveragePooling2D, keras.layers.AveragePooling3D,
    keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling1D, keras.layers.GlobalMaxPooling2D,
    keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU,
    keras.layers.Dropout, keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D,
    keras.layers.GaussianNoise, keras.layers.GaussianDropout, keras.layers.ZeroPadding2D,
    keras.layers.Cropping2D, keras.layers.UpSampling2D,
)


def _chain(model) -> list:
    """The model's layers as a plain chain (each takes the previous one's output), or a clear error."""
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if isinstance(model, keras.Sequential):
        return layers
    previous = model.inputs[0] if len(model.inputs) == 1 else None
    for layer in layers:
        nodes = [node for node in layer._inbound_nodes if node.keras_inputs]
        inputs = nodes[0].keras_inputs if len(nodes) == 1 else []
        if previous is None or len(nodes) != 1 or len(inputs) != 1 or inputs[0] is not previous:
            raise ValueError(
                f"filter_pruning rebuilds models that are a plain chain of layers (Sequential or a "
                f"Functional model without branches); layer {layer.name!r} breaks the chain"
            )
        previous = layer.output
    if previous is not model.outputs[0] or len(model.outputs) != 1:
        raise ValueError("filter_pruning needs a single-output chain model")
    return layers


def _filter_targets(chain, layers) -> list:
    """Default: every Conv2D and Dense but the last weighted layer (its units are the outputs)."""
    eligible = [layer for layer in chain
                if type(layer) in (keras.layers.Conv2D, keras.layers.Dense)]
    weighted = [layer for layer in chain if layer.weights]
    last = weighted[-1] if weighted else None
    if layers is None:
        return [layer for layer in eligible if layer is not last]
    by_name = {layer.name: layer for layer in chain}
    missing = [name for name in layers if name not in by_name]
    allowed = [layer.name for layer in eligible if layer is not last]
    if missing:
        raise ValueError(f"layers {missing} do not exist in the model; layers whose filters can be removed: {allowed}")
    wrong = [name for name in layers if by_name[name].name not in allowed]
    if wrong:
        raise ValueError(f"layers {wrong} cannot lose filters or units (only Conv2D and Dense layers "
                         f"before the output layer); allowed: {allowed}")
    return [by_name[name] for name in layers]


def _n_out(layer) -> int:
    return int(layer.filters if isinstance(layer, keras.layers.Conv2D) else layer.units)


def filter_pruning(model, data: Dataset | None, ratio: float, *, finetune_epochs: int = 0, layers=None,
                   batch_size: int = 64, learning_rate: float = 5e-4, seed: int = 0, progress=False):
    """Remove whole Conv2D filters and Dense units by L1 norm and REBUILD a smaller model.

    In each chosen layer the ``round(ratio * n)`` filters (units) with the smallest L1 norm of their
    weights are removed (norms from the original kernels, layer by layer as in Li et al. 2017).
    The layers that follow are fixed up: the next Conv2D / Dense loses the matching input
    channels, Flatten -> Dense loses the matching rows, BatchNormalization the matching
    statistics. The result has fewer parameters and fewer multiply-adds, so it is smaller AND
    faster in plain TFLite, without sparse kernels.

    Args:
        model: a trained tf_keras model that is a plain chain of layers (Sequential, or Functional
            without branches); not modified.
        data: its data set (used for fine-tuning; may be None when ``finetune_epochs=0``).
        ratio: fraction of filters / units to remove per layer, in [0, 1).
        finetune_epochs: epochs of training after the surgery (0: none).
        layers: names of the Conv2D / Dense layers to shrink (default: all but the output layer).
        batch_size, learning_rate, seed, progress: fine-tuning settings.

    Returns:
        A new compiled, smaller model; ``model.compresslab_info["kept"]`` maps layer -> (kept, before)
        and ``["kept_indices"]`` layer -> the indices of the surviving filters / units.

    Raises:
        ValueError: ratio outside [0, 1), a ratio that would remove every filter of a layer, a
            missing or ineligible layer, or a model with branches (all before any work).

    Example:
        >>> smaller = filter_pruning(model, data, 0.5, finetune_epochs=1)
    """
    _check_model(model)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 <= ratio < 1.0:
        raise ValueError(f"ratio is {ratio!r}; it must be a number in [0, 1) (the fraction of filters removed)")
    if isinstance(finetune_epochs, bool) or not isinstance(finetune_epochs, int) or finetune_epochs < 0:
        raise ValueError(f"finetune_epochs is {finetune_epochs!r}; it must be an integer >= 0")
    if finetune_epochs > 0:
        if not isinstance(data, Dataset):
            raise ValueError("fine-tuning after filter pruning needs data (a compresslab Dataset)")
        check_model_fits(model, data)
    chain = _chain(model)
    targets = {layer.name for layer in _filter_targets(chain, None if layers is None else tuple(layers))}
    # Plan first: every count and every layer type is checked before any weight is touched.
    keep_counts = {}
    for layer in chain:
        if layer.name in targets:
            total = _n_out(layer)
            kept = total - int(round(ratio * total))
            if kept < 1:
                raise ValueError(
                    f"ratio {ratio} would remove every filter of layer {layer.name!r} ({total} "
                    f"{'filters' if isinstance(layer, keras.layers.Conv2D) else 'units'}); "
                    f"use a ratio below {1 - 0.5 / total:.3f} or leave the layer out"
                )
            keep_counts[layer.name] = kept
    _check_chain_supported(chain, targets)

    inputs = keras.Input(shape=model.input_shape[1:], name=model.inputs[0].name.split(":")[0])
    x = inputs
    kept_channels = None  # indices of the current tensor's last axis that survive (None: all)
    new_weights = []
    info, kept_indices = {}, {}
    for layer in chain:
        config = layer.get_config()
        weights = layer.get_weights()
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            kernel = weights[0]
            if kept_channels is not None:
                kernel = np.take(kernel, kept_channels, axis=-2)
            out_keep = None
            if layer.name in targets:
                norms = np.abs(weights[0]).reshape(-1, weights[0].shape[-1]).sum(axis=0)
                out_keep = np.sort(np.argsort(-norms, kind="stable")[: keep_counts[layer.name]])
                kernel = kernel[..., out_keep]
                config["filters" if isinstance(layer, keras.layers.Conv2D) else "units"] = len(out_keep)
                info[layer.name] = (len(out_keep), _n_out(layer))
                kept_indices[layer.name] = [int(i) for i in out_keep]
            layer_weights = [kernel]
            if layer.use_bias:
                layer_weights.append(weights[1] if out_keep is None else weights[1][out_keep])
            kept_channels = out_keep
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            layer_weights = list(weights)
            if kept_channels is not None:
                layer_weights[0] = np.take(weights[0], kept_channels, axis=2)
                if layer.use_bias:
                    layer_weights[1] = weights[1][kept_channels]
        elif isinstance(layer, keras.layers.BatchNormalization):
            layer_weights = [w if kept_channels is None else w[kept_channels] for w in weights]
        elif isinstance(layer, keras.layers.Flatten):
            layer_weights = []
            if kept_channels is not None:
                spatial = int(np.prod(layer.input_shape[1:-1]))
                channels = int(layer.input_shape[-1])
                kept_channels = (np.arange(spatial)[:, None] * channels + kept_channels[None, :]).ravel()
        else:
            layer_weights = list(weights)
        new_layer = layer.__class__.from_config(config)
        x = new_layer(x)
        new_weights.append((new_layer, layer_weights))
    result = keras.Model(inputs, x, name=f"{model.name}_filters")
    for new_layer, layer_weights in new_weights:
        if layer_weights:
            new_layer.set_weights(layer_weights)
    compile_for_classification(result)
    if finetune_epochs > 0:
        train(result, data, epochs=finetune_epochs, batch_size=batch_size, seed=seed,
              learning_rate=learning_rate, progress=progress)
    result.compresslab_info = {"ratio": float(ratio), "kept": info, "kept_indices": kept_indices,
                               "finetune_epochs": finetune_epochs}
    return result


def _check_chain_supported(chain, targets) -> None:
    """Every layer after a shrunk one must be one whose channels we know how to slice."""
    shrinking = False
    for layer in chain:
        if shrinking:
            if isinstance(layer, keras.layers.Conv2D) and (layer.groups != 1 or layer.data_format != "channels_last"):
                raise ValueError(f"layer {layer.name!r}: filter_pruning supports channels_last Conv2D without groups")
            elif isinstance(layer, keras.layers.DepthwiseConv2D) and layer.depth_multiplier != 1:
                raise ValueError(f"layer {layer.name!r}: DepthwiseConv2D after a pruned layer needs depth_multiplier 1")
            elif isinstance(layer, keras.layers.BatchNormalization):
                axis = layer.axis if isinstance(layer.axis, int) else layer.axis[0]
                if axis not in (-1, len(layer.input_shape) - 1):
                    raise ValueError(f"layer {layer.name!r}: BatchNormalization must normalise the last axis")
            elif not isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense, keras.layers.DepthwiseConv2D,
                                        keras.layers.BatchNormalization, keras.layers.Flatten, *_PASS_THROUGH)):
                raise ValueError(
                    f"layer {layer.name!r} ({type(layer).__name__}) follows a layer that loses filters and "
                    f"filter_pruning does not know how to slice it; leave the layers before it out of `layers`"
                )
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            shrinking = layer.name in targets


# ---------------------------------------------------------------------------------------------
# Honest sizes


def _index_bits(count: int) -> int:
    return max(1, math.ceil(math.log2(max(2, count))))


def sparse_bytes(model, encoding: str = "bitmask", *, value_bytes: int = 4, layers=None) -> int:
    """Bytes of the model's weights in a sparse encoding, with the index overhead counted.

    Prunable kernels are encoded sparsely; every other weight (biases, BatchNorm) is stored dense.

    * ``"bitmask"``: one bit per weight saying zero / non-zero (``ceil(n / 8)`` bytes) plus the
      non-zero values (``value_bytes`` each). Beats dense once more than 1/32 of float32 weights are zero.
    * ``"csr"``: compressed sparse rows of the kernel viewed as (outputs, inputs): a row pointer per
      output plus one, each ``ceil(log2(nnz + 1))`` bits, a column index per non-zero,
      ``ceil(log2(inputs))`` bits, and the values. Cheaper than a bitmask only at high sparsity.

    Args:
        model: a tf_keras model.
        encoding: ``"bitmask"`` or ``"csr"``.
        value_bytes: bytes per stored value (4 for float32, 1 for int8).

    Returns:
        The total number of bytes (an integer, rounded up per tensor).

    Example:
        >>> sparse_bytes(pruned, "bitmask"), 4 * pruned.count_params()
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding is {encoding!r}; allowed: 'bitmask', 'csr'")
    if isinstance(value_bytes, bool) or not isinstance(value_bytes, int) or value_bytes < 1:
        raise ValueError(f"value_bytes is {value_bytes!r}; it must be an integer >= 1")
    kernels = {_kernel_of(layer).name for layer in prunable_layers(model, layers)}
    total = 0
    for weight in model.weights:
        values = weight.numpy()
        if weight.name not in kernels:
            total += values.size * value_bytes
            continue
        total += _sparse_tensor_bytes(values, encoding, value_bytes)
    return int(total)


def _sparse_tensor_bytes(values: np.ndarray, encoding: str, value_bytes: int) -> int:
    nonzero = int(np.count_nonzero(values))
    if encoding == "bitmask":
        return math.ceil(values.size / 8) + nonzero * value_bytes
    matrix = np.moveaxis(values, -1, 0).reshape(values.shape[-1], -1)  # (outputs, inputs)
    rows, columns = matrix.shape
    pointer_bits = (rows + 1) * _index_bits(nonzero + 1)
    column_bits = nonzero * _index_bits(columns)
    return math.ceil((pointer_bits + column_bits) / 8) + nonzero * value_bytes


def weights_gzip_bytes(arrays, level: int = 6) -> int:
    """zlib/gzip size of the raw float32 bytes of ``arrays`` (a quick proxy, NOT a TFLite file).

    Level 6 takes ~0.07 s on 225k weights where level 9 can take 0.7 s on very sparse data, which
    is why the panel uses it while a slider moves.
    """
    payload = b"".join(np.ascontiguousarray(a, dtype=np.float32).tobytes() for a in arrays)
    return len(zlib.compress(payload, level))


def size_report(model, *, name: str | None = None, artifact=None) -> dict:
    """Every honest size of one variant, in bytes.

    ``dense_float32_bytes`` (4 x params), ``tflite_bytes`` (the real float32 flatbuffer; or the
    given ``artifact``'s bytes), ``gzip_bytes`` (gzip -9 of that file), ``bitmask_bytes`` and
    ``csr_bytes`` (:func:`sparse_bytes` with float32 values, or int8 values when the artifact is
    int8), plus params, nonzero params and the kernels' sparsity.

    Example:
        >>> pd.DataFrame([size_report(dense, name="dense"), size_report(pruned, name="pruned")])
    """
    from .tflite import convert, count_params

    params, nonzero = count_params(model)
    if artifact is None:
        artifact = convert(model, "float32")
    value_bytes = 1 if artifact.mode in ("int8", "dynamic") else (2 if artifact.mode == "float16" else 4)
    return {
        "name": name or model.name,
        "tflite_mode": artifact.mode,
        "params": params,
        "nonzero_params": nonzero,
        "kernel_sparsity": round(global_sparsity(model), 4),
        "dense_float32_bytes": 4 * params,
        "tflite_bytes": artifact.size_bytes,
        "gzip_bytes": artifact.gzip_bytes,
        "bitmask_bytes": sparse_bytes(model, "bitmask", value_bytes=value_bytes),
        "csr_bytes": sparse_bytes(model, "csr", value_bytes=value_bytes),
    }


# ---------------------------------------------------------------------------------------------
# Live exploration and sensitivity


class PruningWorkbench:
    """One working copy of a model whose kernels are re-masked in place, for fast repeated pruning.

    Built once: the original kernels, their magnitudes sorted per layer and globally, the test
    images as tensors in fixed batches and a compiled forward pass. Each :meth:`apply` then costs
    one mask per kernel, one ``variable.assign`` per kernel and one pass over the test set: no
    cloning, no recompiling. The input model is never modified.

    Example:
        >>> bench = PruningWorkbench(model, data)
        >>> bench.apply(PruneSpec(sparsity=0.8, scope="global")); bench.accuracy()
    """

    def __init__(self, model, data: Dataset, *, layers=None, batch_size: int = 256):
        check_model_fits(model, data)
        self.data = data
        self.model = clone(model)
        self.layers = prunable_layers(self.model, layers)
        self.names = [layer.name for layer in self.layers]
        self.variables = [_kernel_of(layer) for layer in self.layers]
        self.originals = [v.numpy() for v in self.variables]
        self.magnitudes = [np.abs(k).ravel() for k in self.originals]
        self.orders = [np.argsort(m, kind="stable") for m in self.magnitudes]
        self.sorted_magnitudes = [m[o] for m, o in zip(self.magnitudes, self.orders)]
        self.all_magnitudes = np.concatenate(self.magnitudes)
        self.global_order = np.argsort(self.all_magnitudes, kind="stable")
        self.global_sorted = self.all_magnitudes[self.global_order]
        self.offsets = np.cumsum([0] + [m.size for m in self.magnitudes])
        self.other_weights = [w.numpy() for w in self.model.weights
                              if w.name not in {v.name for v in self.variables}]
        # Moderate batches: on a 2-core CPU, batches of thousands of images ran slower than 256
        # (activations fall out of cache), measured against model.evaluate in bench_prune.py.
        batch = max(1, min(int(batch_size), len(data.x_test)))
        self._batches = [tf.constant(data.x_test[i : i + batch]) for i in range(0, len(data.x_test), batch)]
        self._labels = data.y_test
        model_ref = self.model

        @tf.function(reduce_retracing=True)
        def predict(x):
            return tf.argmax(model_ref(x, training=False), axis=1)

        self._predict = predict
        self.masks = [np.ones(k.shape, bool) for k in self.originals]
        self.float_accuracy = self.accuracy()

    def masks_for(self, spec: PruneSpec) -> list[np.ndarray]:
        """Boolean keep-masks (one per kernel) for an unstructured or 2:4 spec, without assigning."""
        spec = _as_spec(spec)
        if spec.structure == "filters":
            raise ValueError("the workbench masks weights; use filter_pruning for filters")
        if spec.layers is not None:
            missing = [n for n in spec.layers if n not in self.names]
            if missing:
                raise ValueError(f"layers {missing} are not prunable layers of this model; they are {self.names}")
        chosen = set(self.names if spec.layers is None else spec.layers)
        masks = []
        if spec.method == "threshold":
            for name, magnitudes, kernel in zip(self.names, self.magnitudes, self.originals):
                keep = magnitudes >= spec.threshold if name in chosen else np.ones(magnitudes.size, bool)
                masks.append(keep.reshape(kernel.shape))
            return masks
        if spec.structure == "2:4":
            layers = [layer for layer in self.layers if layer.name in chosen]
            good = {layer.name for layer in _check_m_by_n_layers(layers, explicit=spec.layers is not None)}
            return [(_m_by_n_keep_mask(kernel) if name in good else np.ones(kernel.shape, bool))
                    for name, kernel in zip(self.names, self.originals)]
        if spec.scope == "layer" or len(chosen) < len(self.names):
            for name, magnitudes, order, kernel in zip(self.names, self.magnitudes, self.orders, self.originals):
                if name in chosen and spec.scope == "layer":
                    keep = _exact_keep_mask(magnitudes, order, spec.sparsity)
                else:
                    keep = np.ones(magnitudes.size, bool)
                masks.append(keep.reshape(kernel.shape))
            if spec.scope == "global":  # global over a subset: rank the chosen kernels together
                index = [i for i, n in enumerate(self.names) if n in chosen]
                flat = np.concatenate([self.magnitudes[i] for i in index])
                keep = _exact_keep_mask(flat, np.argsort(flat, kind="stable"), spec.sparsity)
                start = 0
                for i in index:
                    size = self.magnitudes[i].size
                    masks[i] = keep[start : start + size].reshape(self.originals[i].shape)
                    start += size
            return masks
        keep = _exact_keep_mask(self.all_magnitudes, self.global_order, spec.sparsity)
        return [keep[self.offsets[i] : self.offsets[i + 1]].reshape(k.shape) for i, k in enumerate(self.originals)]

    def apply(self, spec: PruneSpec) -> list[np.ndarray]:
        """Mask the working model's kernels for ``spec`` (from the ORIGINAL weights); returns the masks."""
        masks = self.masks_for(spec)
        self.assign(masks)
        return masks

    def assign(self, masks) -> None:
        for variable, original, keep, old in zip(self.variables, self.originals, masks, self.masks):
            if old is keep or np.array_equal(old, keep):
                continue  # unchanged layer: skip the copy to the variable
            variable.assign(np.where(keep, original, 0).astype(original.dtype))
        self.masks = list(masks)

    def reset(self) -> None:
        """Back to the original (dense) weights."""
        self.assign([np.ones(k.shape, bool) for k in self.originals])

    def accuracy(self) -> float:
        """Test accuracy of the working model as it is now masked (Keras forward pass)."""
        predictions = np.concatenate([self._predict(batch).numpy() for batch in self._batches])
        return float(np.mean(predictions == self._labels))

    def layer_sparsities(self) -> dict[str, float]:
        return {name: float(1.0 - mask.mean()) for name, mask in zip(self.names, self.masks)}

    def global_sparsity(self) -> float:
        total = sum(mask.size for mask in self.masks)
        return float(sum(mask.size - int(mask.sum()) for mask in self.masks) / total)

    def sparsity_at_threshold(self, threshold: float) -> float:
        """Global fraction of kernel weights with ``|w| < threshold`` (binary search in sorted magnitudes)."""
        return float(np.searchsorted(self.global_sorted, threshold, side="left") / self.global_sorted.size)

    def threshold_at_sparsity(self, sparsity: float, layer: str | None = None) -> float:
        """The magnitude below which ``sparsity`` of the weights lie (globally, or in one layer)."""
        values = self.global_sorted if layer is None else self.sorted_magnitudes[self.names.index(layer)]
        index = int(round(sparsity * values.size))
        return float(values[min(index, values.size - 1)]) if values.size else 0.0

    def pruned_kernels(self) -> list[np.ndarray]:
        return [np.where(keep, original, 0) for keep, original in zip(self.masks, self.originals)]

    def weights_gzip_bytes(self, level: int = 6) -> int:
        """gzip of the float32 bytes of all weights as currently pruned (a proxy, not a TFLite file)."""
        return weights_gzip_bytes(self.pruned_kernels() + self.other_weights, level)

    def sparse_sizes(self) -> dict[str, int]:
        """dense float32, bitmask and CSR bytes of the weights as currently pruned (exact counts)."""
        others = sum(w.size for w in self.other_weights) * 4
        kernels = self.pruned_kernels()
        return {
            "dense_float32_bytes": 4 * (sum(k.size for k in kernels)) + others,
            "bitmask_bytes": others + sum(_sparse_tensor_bytes(k, "bitmask", 4) for k in kernels),
            "csr_bytes": others + sum(_sparse_tensor_bytes(k, "csr", 4) for k in kernels),
        }

    def export(self):
        """A NEW compiled model with the current masks applied (the working copy stays private)."""
        return compile_for_classification(clone(self.model))


def sensitivity_scan(model, data: Dataset, sparsities=(0.0, 0.25, 0.5, 0.75, 0.9, 0.95), *, layers=None):
    """Each layer's test accuracy when it alone is magnitude-pruned to each sparsity.

    The other layers stay dense, so the curve shows how much that layer can lose. Runs on one
    working copy (see :class:`PruningWorkbench`): one test pass per (layer, sparsity).

    Returns:
        A DataFrame with columns layer, sparsity, accuracy, accuracy_drop (vs the dense model),
        weights (the layer's kernel size).

    Raises:
        ValueError: a sparsity outside [0, 1) or a missing layer.

    Example:
        >>> scan = sensitivity_scan(model, data, [0.5, 0.8, 0.95])
    """
    import pandas as pd

    values = list(sparsities)
    if not values:
        raise ValueError("sparsities is empty; give values in [0, 1) such as [0.5, 0.8, 0.95]")
    for value in values:
        PruneSpec(sparsity=value)
    names = None if layers is None else tuple(layers)
    prunable_layers(model, names)
    bench = PruningWorkbench(model, data, layers=names)
    rows = []
    for index, name in enumerate(bench.names):
        for sparsity in values:
            masks = [np.ones(k.shape, bool) for k in bench.originals]
            masks[index] = _exact_keep_mask(bench.magnitudes[index], bench.orders[index], sparsity).reshape(
                bench.originals[index].shape)
            bench.assign(masks)
            accuracy = bench.accuracy()
            rows.append({"layer": name, "sparsity": float(sparsity), "accuracy": accuracy,
                         "accuracy_drop": bench.float_accuracy - accuracy,
                         "weights": int(bench.originals[index].size)})
    return pd.DataFrame(rows)


def suggest_sparsities(scan, max_accuracy_drop: float = 0.01) -> dict[str, float]:
    """From a :func:`sensitivity_scan`, each layer's highest scanned sparsity within the allowed drop.

    Example:
        >>> to_layer_sparsities(model, suggest_sparsities(scan, 0.005))
    """
    if not 0 <= max_accuracy_drop < 1:
        raise ValueError(f"max_accuracy_drop is {max_accuracy_drop}; it must be in [0, 1)")
    result = {}
    for layer, rows in scan.groupby("layer", sort=False):
        ok = rows[rows["accuracy_drop"] <= max_accuracy_drop]
        result[layer] = float(ok["sparsity"].max()) if len(ok) else 0.0
    return result


__all__ = [
    "PruneSpec", "by_threshold", "by_naive_threshold", "to_sparsity", "to_layer_sparsities", "apply",
    "finetune", "schedule_curve", "global_layer_targets", "filter_pruning", "sensitivity_scan",
    "suggest_sparsities", "layer_sparsity", "global_sparsity", "check_m_by_n", "is_m_by_n",
    "sparse_bytes", "size_report", "weights_gzip_bytes", "PruningWorkbench", "prunable_layers", "is_prunable",
]
