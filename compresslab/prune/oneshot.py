"""One-shot pruning into a NEW model: by threshold, to a sparsity, to per-layer sparsities, any spec."""

from __future__ import annotations

import numpy as np

from ..data import Dataset
from ..models import clone, compile_for_classification
from .filters import filter_pruning
from .masks import (
    _check_m_by_n_layers,
    _check_model,
    _exact_keep_mask,
    _global_keep_masks,
    _kernel_of,
    _m_by_n_keep_mask,
    _pruned_variables,
    prunable_layers,
    pruning_report,
)
from .spec import PruneSpec, _as_spec


def _assign_masked(model, layers, masks: dict, include_biases: bool) -> None:
    for layer in layers:
        for variable in _pruned_variables(layer, include_biases):
            keep = masks[variable.name]
            variable.assign(np.where(keep, variable.numpy(), 0).astype(variable.dtype.as_numpy_dtype))


def _same_layers(copy, originals) -> list:
    by_name = {layer.name: layer for layer in copy.layers}
    return [by_name[layer.name] for layer in originals]


def _finish(copy, targets):
    """Compile the pruned copy and say on it what was pruned and what was not (``copy.pruning``)."""
    compile_for_classification(copy)
    copy.pruning = pruning_report(copy, targets)
    return copy


def by_threshold(model, threshold: float, *, layers=None, include_biases: bool = False):
    """Zero every kernel weight with ``|w| < threshold``, into a NEW model.

    Biases are untouched unless ``include_biases``. The input model is not modified.

    Args:
        model: a tf_keras model.
        threshold: the magnitude cut (>= 0).
        layers: names of the layers to prune (default: every prunable layer).
        include_biases: prune biases with the same rule.

    Returns:
        A new compiled model; ``model.pruning`` says which layers were pruned, which weighted
        layers were skipped (unsupported, with their share of all weights) and the sparsity over
        the prunable kernels and over all weights.

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
    model = _check_model(model)
    chosen = prunable_layers(model, layers)
    copy = clone(model)
    targets = _same_layers(copy, chosen)
    masks = {_kernel_of(layer).name: _kernel_of(layer).numpy() >= threshold for layer in targets}
    _assign_masked(copy, targets, masks, include_biases=False)
    return _finish(copy, targets)


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
        A new compiled model; ``model.pruning`` says which layers were pruned, which weighted
        layers were skipped (unsupported, with their share of all weights) and the sparsity over
        the prunable kernels and over all weights.

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
    model = _check_model(model)
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
    return _finish(copy, targets)


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
    return dict(zip(values, _global_keep_masks(list(values.values()), spec.sparsity)))


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
    model = _check_model(model)
    chosen = _resolve_for_spec(model, spec)
    copy = clone(model)
    targets = _same_layers(copy, chosen)
    _assign_masked(copy, targets, _masks_for_spec(targets, spec), spec.include_biases)
    return _finish(copy, targets)
