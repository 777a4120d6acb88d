"""Per-layer error of a quantized variant against its float original: the data of "which layer broke".

:func:`layer_errors` works for a simulated Keras model (``cl.quantize.simulate``, same layer names
as the original) and for any TFLite file (tfmot/TFLite-converter PTQ, QAT, ai-edge-quantizer):
weights are read back from the file and set against the float32 file's, and activations are
taken from LiteRT (in a child process) with every intermediate tensor kept, on images that are NOT
the test split.
"""

from __future__ import annotations

import numpy as np

from ..data import Dataset
from ..layers import kernel_variables
from ..tflite import TFLiteArtifact, convert
from . import litert_child
from .fileweights import file_weights


def _snr_db(reference: np.ndarray, error: np.ndarray) -> float:
    signal = float(np.sum(np.square(reference, dtype=np.float64)))
    noise = float(np.sum(np.square(error, dtype=np.float64)))
    if noise == 0.0:
        return float("inf")
    return 10.0 * np.log10(signal / noise) if signal > 0 else float("-inf")


def _relative_l2(reference: np.ndarray, other: np.ndarray) -> float:
    norm = float(np.linalg.norm(reference.astype(np.float64)))
    return float(np.linalg.norm(other.astype(np.float64) - reference)) / norm if norm > 0 else float("nan")


def _images(data: Dataset, count: int, seed: int) -> tuple[np.ndarray, str]:
    """Validation images when the data set has them, else a training sample: never the test split."""
    if getattr(data, "x_val", None) is not None and len(data.x_val):
        pool, split = data.x_val, "validation"
    else:
        pool, split = data.x_train, "train"
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(len(pool), size=min(int(count), len(pool)), replace=False))
    return pool[index].astype(np.float32), split


def _output_names(content: bytes, layer_names) -> dict[str, str]:
    """Layer -> the name of the tensor its weight op writes (after any fused activation)."""
    from .fileweights import read_model

    model = read_model(content)
    subgraph = model.subgraphs[0]
    names = {}
    for weight in file_weights(content, layer_names):
        op = subgraph.operators[weight.op_index]
        tensor = subgraph.tensors[int(op.outputs[0])]
        names.setdefault(weight.layer, tensor.name.decode("utf-8", "replace"))
    return names


def _tflite_rows(float_model, artifact: TFLiteArtifact, images: np.ndarray) -> list[dict]:
    layer_names = [layer.name for layer in float_model.layers]
    reference = convert(float_model, "float32").content
    float_weights = {w.layer: w for w in file_weights(reference, layer_names) if w.layer}
    variant_weights = {w.layer: w for w in file_weights(artifact.content, layer_names) if w.layer}
    float_outputs = _output_names(reference, layer_names)
    variant_outputs = _output_names(artifact.content, layer_names)
    float_values = litert_child.activations(reference, images, list(float_outputs.values()))
    variant_values = litert_child.activations(artifact.content, images, list(variant_outputs.values()))
    rows = []
    for layer in layer_names:
        if layer not in float_weights or layer not in variant_weights:
            continue
        ref, var = float_weights[layer], variant_weights[layer]
        if ref.values.shape != var.values.shape:
            raise ValueError(f"layer {layer!r} has weights of shape {ref.values.shape} in the float file but "
                             f"{var.values.shape} in the variant; layer_errors compares files of one model")
        a = float_values.get(float_outputs.get(layer))
        b = variant_values.get(variant_outputs.get(layer))
        label = var.storage + ("" if var.granularity == "none" else f" {var.granularity}")
        rows.append(_row(layer, label, ref.values, var.values, a, b))
    return rows


def _row(layer, storage, reference, variant, output_reference, output_variant) -> dict:
    error = variant - reference
    has_outputs = output_reference is not None and output_variant is not None \
        and output_reference.shape == output_variant.shape
    return {
        "layer": layer, "storage": storage, "weights": int(reference.size),
        "weight_mse": float(np.mean(np.square(error, dtype=np.float64))),
        "weight_snr_db": _snr_db(reference, error),
        "output_rel_error": _relative_l2(output_reference, output_variant) if has_outputs else float("nan"),
        "output_snr_db": _snr_db(output_reference, output_variant - output_reference) if has_outputs else float("nan"),
    }


def _keras_rows(float_model, variant, images: np.ndarray) -> list[dict]:
    from .._keras import keras

    pairs = []
    for layer in float_model.layers:
        kernels = kernel_variables(layer)
        try:
            other = variant.get_layer(layer.name)
        except ValueError:
            continue
        theirs = dict(kernel_variables(other))
        if kernels and all(attribute in theirs for attribute, _ in kernels):
            pairs.append((layer, other, kernels, theirs))
    if not pairs:
        raise ValueError(f"the variant {variant.name!r} shares no layer with weights with {float_model.name!r} "
                         "(by name); layer_errors compares a simulated copy or a TFLite file with its original")
    probe_a = keras.Model(float_model.inputs, [layer.output for layer, *_ in pairs])
    probe_b = keras.Model(variant.inputs, [other.output for _, other, *_ in pairs])
    outputs_a = probe_a.predict(images, verbose=0, batch_size=256)
    outputs_b = probe_b.predict(images, verbose=0, batch_size=256)
    outputs_a = outputs_a if isinstance(outputs_a, list) else [outputs_a]
    outputs_b = outputs_b if isinstance(outputs_b, list) else [outputs_b]
    rows = []
    for (layer, _, kernels, theirs), a, b in zip(pairs, outputs_a, outputs_b):
        reference = np.concatenate([v.numpy().ravel() for _, v in kernels])
        values = np.concatenate([theirs[attribute].numpy().ravel() for attribute, _ in kernels])
        rows.append(_row(layer.name, "simulated", reference, values, a, b))
    return rows


def layer_errors(float_model, variant, data: Dataset, *, images: int = 256, seed: int = 0):
    """Per-layer error of a quantized variant against the float model it came from.

    Args:
        float_model: the float tf_keras model.
        variant: a tf_keras model with the same layer names (e.g. ``cl.quantize.simulate``'s output)
            or a :class:`~compresslab.tflite.TFLiteArtifact` converted from ``float_model`` by any route.
        data: the data set; the output error uses ``images`` VALIDATION images (a training sample
            when the data set has no validation split), never the test split.
        images: how many images the output error averages over.
        seed: picks the images.

    Returns:
        A pandas DataFrame, one row per layer with weights, in model order:

        * ``storage``: how the variant keeps the layer's weights (``"int4 per_channel"``,
          ``"float32"``, ``"simulated"`` for a Keras model);
        * ``weights``: the number of weight values compared (the kernel; biases are not counted);
        * ``weight_mse`` and ``weight_snr_db``: mean squared error of the variant's weights (as
          the file dequantizes them) against the float weights, and 10*log10(signal/noise) of the
          same (inf when equal). For a TFLite variant the reference is the float32 TFLite file of
          ``float_model``, so batch-norm folding is the same on both sides;
        * ``output_rel_error`` and ``output_snr_db``: ||a_variant - a_float|| / ||a_float|| and
          the SNR of the layer's output activations over the images (after the layer's activation
          function when TFLite fuses it). This error ACCUMULATES: it includes what earlier layers
          changed, which is what "where did it break" needs.

        ``df.attrs["images_split"]`` says which split the images came from.

    Raises:
        ValueError: a variant that shares no layer with the original.

    Example:
        >>> df = layer_errors(model, cl.lowbit.post_training_lowbit(model, data), data)
        >>> df[["layer", "storage", "weight_snr_db", "output_rel_error"]]
    """
    import pandas as pd

    from ..quantize.spec import _check_data, _check_model

    float_model = _check_model(float_model)
    _check_data(data)
    if isinstance(images, bool) or not isinstance(images, (int, np.integer)) or images < 1:
        raise ValueError(f"images is {images!r}; it must be an integer >= 1")
    sample, split = _images(data, images, seed)
    if isinstance(variant, TFLiteArtifact):
        rows = _tflite_rows(float_model, variant, sample)
    else:
        variant = _check_model(variant)
        rows = _keras_rows(float_model, variant, sample)
    frame = pd.DataFrame(rows, columns=["layer", "storage", "weights", "weight_mse", "weight_snr_db",
                                        "output_rel_error", "output_snr_db"])
    frame.attrs["images_split"] = split
    frame.attrs["images"] = len(sample)
    return frame


__all__ = ["layer_errors"]
