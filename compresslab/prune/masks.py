"""Which weights are prunable, keep-masks over them, and how sparse a model is.

Owns: the prunable layer types and their kernel, the numpy keep-mask maths shared by the one-shot
functions and the workbench (exact-count magnitude masks, 2:4 masks), sparsity figures and the
m:n pattern check.
"""

from __future__ import annotations

import warnings

import numpy as np

from .._keras import keras
from ..layers import kernel_variables
from ..specs import resolve_layers


def _kernel_attribute(layer) -> str | None:
    """Which kernel of ``layer`` pruning acts on: the types pruning supports (None for the rest)."""
    # DepthwiseConv2D subclasses Conv2D in tf_keras: test it first.
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return "depthwise_kernel"
    # SeparableConv: its 1x1 pointwise kernel, as tfmot's pruning registry does (the depthwise one holds
    # few weights and every one of them is a whole channel's filter).
    if isinstance(layer, (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)):
        return "pointwise_kernel"
    if isinstance(layer, (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)):
        return "kernel"
    return None


def _kernel_of(layer):
    """The weight variable pruning acts on (None for layers without one)."""
    attribute = _kernel_attribute(layer)
    return dict(kernel_variables(layer)).get(attribute) if attribute else None


def zero_masks(model) -> list:
    """Keep-masks of every kernel holding at least one zero: what a fine-tune must hold at zero.

    Wider than the prunable set on purpose: a kernel zeroed by any technique (pruning, sparse VD,
    a user's own code) must stay zero while it trains, whatever its layer type.

    Returns:
        A list of ``(layer name, attribute, variable, keep)``, ``keep`` being 1 where the weight
        is non-zero (in the variable's dtype, so ``variable * keep`` re-applies it).
    """
    found = []
    for layer in model.layers:
        for attribute, variable in kernel_variables(layer):
            values = variable.numpy()
            if (values == 0).any():
                found.append((layer.name, attribute, variable, (values != 0).astype(values.dtype)))
    return found


def is_prunable(layer) -> bool:
    """True for Conv / Dense / DepthwiseConv2D / SeparableConv layers (the layers with a kernel to prune)."""
    return _kernel_of(layer) is not None


def prunable_layers(model, layers=None) -> list:
    """The model's prunable layers (all, or those named in ``layers``).

    Raises:
        TypeError: ``model`` is not a tf_keras model.
        ValueError: a name that is not a prunable layer, or a model with no prunable layer at all
            (naming the layers that hold its weights).
    """
    model = _check_model(model)
    chosen = resolve_layers(model, layers, eligible=is_prunable, what="prunable layer")
    if not chosen:
        raise ValueError(nothing_to_do_message(model, "prune", "a Conv, Dense or DepthwiseConv2D kernel, or a SeparableConv pointwise kernel"))
    return chosen


def positive_zeros(model) -> int:
    """Turn every -0.0 in the model's kernels into +0.0, in place; returns how many there were.

    A mask applied by multiplication leaves -0.0 where a negative weight was zeroed (tfmot does so).
    It is zero all the same, but its sign bit differs from +0.0, so gzip and entropy coders see two
    symbols for "zero" and the file of a fine-tuned pruned model grew by about a third on digits.
    """
    flipped = 0
    for layer in model.layers:
        for _, variable in kernel_variables(layer):
            values = variable.numpy()
            negative = (values == 0) & np.signbit(values)
            if negative.any():
                flipped += int(negative.sum())
                variable.assign(np.where(negative, np.zeros_like(values), values))
    return flipped


def _has_prunable(model) -> bool:
    return any(is_prunable(layer) for layer in model.layers)


# ---------------------------------------------------------------------------------------------
# What a technique did not touch (shared with compresslab.cluster)


def _matrix_weights(layer) -> int:
    """Weights of ``layer`` held in matrices or larger tensors: the kernels a technique could act on.

    Biases and normalisation statistics (1-D) are left out: no technique here acts on them, and
    counting them would flag every BatchNormalization layer as skipped.
    """
    return sum(int(np.prod(w.shape)) for w in layer.weights if len(w.shape) >= 2)


def skipped_layers(model, handled) -> dict[str, float]:
    """Layers holding kernel-like weights that ``handled(layer)`` says a technique cannot act on.

    Args:
        model: a tf_keras model.
        handled: ``callable(layer) -> bool``: True when the technique supports the layer.

    Returns:
        ``{layer name: share of ALL the model's weights that layer holds}`` (e.g. an LSTM left dense).

    Example:
        >>> skipped_layers(model, is_prunable)      # {'lstm': 0.96}
    """
    total = max(1, int(model.count_params()))
    return {layer.name: _matrix_weights(layer) / total for layer in model.layers
            if _matrix_weights(layer) and not handled(layer)}


def warn_skipped(technique: str, skipped: dict[str, float]) -> None:
    """A ``UserWarning`` naming the layers a technique left untouched and their share of the weights."""
    if skipped:
        listed = ", ".join(f"{name!r} ({share:.1%} of the weights)" for name, share in skipped.items())
        warnings.warn(f"{technique} left {len(skipped)} layer(s) untouched because it does not support them: "
                      f"{listed}; sparsity figures over the prunable kernels do not cover them",
                      UserWarning, stacklevel=3)


def nothing_to_do_message(model, verb: str, needs: str) -> str:
    """The error for a model where a technique finds nothing to act on, naming where its weights are."""
    holders = {layer.name: type(layer).__name__ for layer in model.layers if layer.weights}
    return (f"model {model.name!r} has nothing to {verb}: no layer holds {needs}; the layers holding its "
            f"weights are {holders or 'none'}")


def _check_model(model):
    """The built tf_keras model to prune (a Keras 3 model converted, see modelio.as_tf_keras)."""
    from ..modelio.convert import as_tf_keras

    model = as_tf_keras(model)
    if not model.built:
        raise ValueError("the model is not built yet: call it on an input or give it an Input layer first")
    return model


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


def global_sparsity(model, layers=None, *, over: str = "prunable") -> float:
    """Fraction of zero weights, over the prunable kernels (default) or over ALL the model's weights.

    Args:
        model: a tf_keras model.
        layers: names of prunable layers to cover (only with ``over="prunable"``).
        over: ``"prunable"``: the Conv / Dense / DepthwiseConv2D kernels pruning acts on (a layer
            pruning cannot touch, e.g. an LSTM, is NOT in this figure); ``"all"``: every weight of
            the model (biases, normalisation and unsupported layers included).

    Raises:
        ValueError: an unknown ``over``, or no prunable layer with ``over="prunable"``.

    Example:
        >>> global_sparsity(pruned), global_sparsity(pruned, over="all")
    """
    if over == "all":
        model = _check_model(model)
        if layers is not None:
            raise ValueError("layers applies to over='prunable' only; over='all' covers every weight")
        values = [w.numpy() for w in model.weights]
        total = sum(v.size for v in values)
        return sum(int(np.sum(v == 0)) for v in values) / total if total else 0.0
    if over != "prunable":
        raise ValueError(f"over is {over!r}; allowed: 'prunable', 'all'")
    chosen = prunable_layers(model, layers)
    zeros = sum(int(np.sum(_kernel_of(layer).numpy() == 0)) for layer in chosen)
    total = sum(int(_kernel_of(layer).numpy().size) for layer in chosen)
    return zeros / total if total else 0.0


def pruning_report(model, pruned_layers, not_pruned=()) -> dict:
    """What a pruning call did, for ``result.pruning``: layers pruned, layers skipped, both sparsities.

    ``not_pruned`` names prunable layers the pruning still left dense (tfmot wraps DepthwiseConv2D
    but does not mask its kernel); they count as skipped. Warns (``UserWarning``) when layers it
    could not prune hold weights.
    """
    missed = set(not_pruned)
    skipped = skipped_layers(model, lambda layer: is_prunable(layer) and layer.name not in missed)
    warn_skipped("pruning", skipped)
    names = [getattr(layer, "name", layer) for layer in pruned_layers]
    return {
        "layers": names,
        "skipped": skipped,
        "sparsity_of_prunable_kernels": global_sparsity(model),
        "sparsity_of_all_weights": global_sparsity(model, over="all"),
    }



def _exact_keep_mask(magnitudes: np.ndarray, order: np.ndarray, sparsity: float) -> np.ndarray:
    """Keep-mask zeroing exactly ``round(sparsity * n)`` entries: the smallest by ``order``."""
    n_zero = int(round(sparsity * magnitudes.size))
    keep = np.ones(magnitudes.size, dtype=bool)
    keep[order[:n_zero]] = False
    return keep


def _global_keep_masks(arrays, sparsity: float, magnitudes=None, order=None) -> list:
    """Keep-masks ranking every array of ``arrays`` together by magnitude (global scope).

    ``magnitudes`` (the flat ``|w|`` of all arrays, concatenated) and its stable ``order`` may be
    passed when cached, as the workbench does; they are computed otherwise.
    """
    if magnitudes is None:
        magnitudes = np.concatenate([np.abs(array).ravel() for array in arrays])
        order = np.argsort(magnitudes, kind="stable")
    keep = _exact_keep_mask(magnitudes, order, sparsity)
    bounds = np.cumsum([0] + [array.size for array in arrays])
    return [keep[bounds[i] : bounds[i + 1]].reshape(array.shape) for i, array in enumerate(arrays)]


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
