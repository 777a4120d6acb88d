"""Structured pruning: remove whole Conv2D filters and Dense units and rebuild a smaller model."""

from __future__ import annotations

import numpy as np

from .._keras import keras
from ..data import Dataset
from ..models import check_model_fits, compile_for_classification, train
from .masks import _check_model, skipped_layers, warn_skipped

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
        and ``["kept_indices"]`` layer -> the indices of the surviving filters / units;
        ``model.pruning`` lists the shrunk layers and the weighted layers left whole (-> share of
        the input model's weights; the output layer is always among them).

    Raises:
        ValueError: ratio outside [0, 1), a ratio that would remove every filter of a layer, a
            missing or ineligible layer, or a model with branches (all before any work).

    Example:
        >>> smaller = filter_pruning(model, data, 0.5, finetune_epochs=1)
    """
    model = _check_model(model)
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
    # Filters are removed, not zeroed: "skipped" lists the weighted layers no filter was removed from.
    # The warning names only layer TYPES filter pruning cannot act on (a Conv2D or Dense left out by
    # choice, or the output layer, which loses input rows instead, is not a silent skip).
    warn_skipped("filter pruning",
                 skipped_layers(model, lambda layer: type(layer) in (keras.layers.Conv2D, keras.layers.Dense)))
    result.pruning = {"layers": sorted(info), "skipped": skipped_layers(model, lambda layer: layer.name in targets)}
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
