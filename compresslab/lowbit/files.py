"""Real low-bit TFLite files: a float model converted, then quantized by ai-edge-quantizer.

:func:`post_training_lowbit` converts a tf_keras model to a float32 flatbuffer (the same
conversion as every other compresslab file), builds an ai-edge-quantizer recipe from a
:class:`~compresslab.lowbit.spec.LowBitSpec` (one rule for every op, then one rule per op for the
layers kept at 8 bits or float, matched on the op's exact scope), quantizes, and returns a
:class:`~compresslab.tflite.TFLiteArtifact` whose accuracy and latency are measured in LiteRT like
every other file. The file is then read back (:mod:`.fileweights`) so the artifact says which
layer got which storage, and a layer the quantizer left float is reported, never skipped silently.

:func:`plan_to_lowbit` turns a :func:`compresslab.quantize.mixed_precision` plan into a selective
spec, so the plan's simulated promise can be set against a real file.
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from ..data import Dataset
from ..layers import kernel_variables
from ..models import check_model_fits
from ..tflite import TFLiteArtifact, convert
from .fileweights import file_weights
from .spec import BLOCK_SIZES, LowBitSpec

_ALL_OPS = "*"
_BLOCKWISE_OPS = ("FULLY_CONNECTED",)


def _op_config(kind: str, bits: int, activation_bits: int | None, granularity: str = "CHANNELWISE") -> dict:
    """One op_config of an ai-edge-quantizer recipe (the JSON form its recipes are saved in)."""
    config = {
        "weight_tensor_config": {"num_bits": int(bits), "symmetric": True, "granularity": granularity,
                                 "dtype": "INT"},
        "compute_precision": "FLOAT" if kind == "weight_only" else "INTEGER",
        "explicit_dequantize": kind == "weight_only",
        "skip_checks": False,
        "min_weight_elements": 0,
    }
    if kind == "static":
        config["activation_tensor_config"] = {"num_bits": int(activation_bits), "symmetric": True,
                                              "granularity": "TENSORWISE", "dtype": "INT"}
    return config


def _rule(regex: str, operation: str, op_config: dict | None) -> dict:
    if op_config is None:
        return {"regex": regex, "operation": operation, "algorithm_key": "no_quantize"}
    return {"regex": regex, "operation": operation, "algorithm_key": "min_max_uniform_quantize",
            "op_config": op_config}


def build_recipe(spec: LowBitSpec, scopes: dict[str, list[str]]) -> list[dict]:
    """The ai-edge-quantizer recipe for ``spec``.

    Args:
        spec: the low-bit spec.
        scopes: Keras layer name -> the scopes of its ops in the float file (for the per-layer rules).

    Returns:
        A recipe (list of rules). Later rules win where several match, so the per-layer rules come last.
    """
    base = _op_config(spec.kind, spec.bits, spec.activation_bits)
    recipe = [_rule(".*", _ALL_OPS, base)]
    if spec.granularity == "blockwise":
        blockwise = _op_config(spec.kind, spec.bits, None, granularity=f"BLOCKWISE_{spec.block_size}")
        recipe += [_rule(".*", op, blockwise) for op in _BLOCKWISE_OPS]
    int8 = _op_config(spec.kind, 8, spec.activation_bits)
    for names, config in ((spec.keep_int8, int8), (spec.keep_float, None)):
        for layer in names:
            for scope in scopes[layer]:
                recipe.append(_rule("^" + re.escape(scope) + "$", _ALL_OPS, config))
    return recipe


def _scopes(model, spec: LowBitSpec, weights) -> dict[str, list[str]]:
    """Layer -> the scopes of its ops in the float file; a kept layer with no op there is an error."""
    scopes: dict[str, list[str]] = {}
    for weight in weights:
        if weight.layer is not None:
            scopes.setdefault(weight.layer, []).append(weight.scope)
    missing = [name for name in spec.keep_int8 + spec.keep_float if name not in scopes]
    if missing:
        raise ValueError(f"layers {missing} of model {model.name!r} have no weight op in its TFLite file, so "
                         f"they cannot be kept at 8 bits or float; layers found there: {sorted(scopes)}")
    return scopes


def _check_before_work(model, spec: LowBitSpec) -> None:
    """Kept layers must exist and have weights; a blockwise block must divide every Dense input."""
    from .._keras import keras

    kernel_layers = [layer.name for layer in model.layers if kernel_variables(layer)]
    for field in ("keep_int8", "keep_float"):
        unknown = [name for name in getattr(spec, field) if name not in kernel_layers]
        if unknown:
            raise ValueError(f"LowBitSpec.{field} names {unknown}, which are not layers with weights in model "
                             f"{model.name!r}; its layers with weights are {kernel_layers}")
    if spec.granularity != "blockwise":
        return
    for layer in model.layers:
        if not isinstance(layer, keras.layers.Dense) or layer.name in spec.keep_int8 + spec.keep_float:
            continue
        inputs = int(layer.kernel.shape[0])
        if inputs % spec.block_size:
            raise ValueError(
                f"LowBitSpec.block_size is {spec.block_size}, which does not divide the input size {inputs} of "
                f"Dense layer {layer.name!r}; choose a block size from "
                f"{[b for b in BLOCK_SIZES if inputs % b == 0] or 'none (none divides it)'} or keep that "
                "layer at 8 bits (keep_int8) or float (keep_float)")


def _quantize(content: bytes, recipe: list[dict], calibration: np.ndarray | None) -> bytes:
    from ai_edge_quantizer import quantizer

    engine = quantizer.Quantizer(bytearray(content), recipe)
    result = None
    if engine.need_calibration:
        from ai_edge_litert.interpreter import Interpreter

        signatures = Interpreter(model_content=content).get_signature_list()
        key = next(iter(signatures))
        input_name = signatures[key]["inputs"][0]
        samples = [{input_name: calibration[i : i + 1]} for i in range(len(calibration))]
        with warnings.catch_warnings():
            # the calibrator keeps every tensor on purpose; LiteRT warns that this is for debugging
            warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
            result = engine.calibrate({key: samples}, num_threads=1)
    return bytes(engine.quantize(result, enable_progress_report=False).quantized_model)


def _failing_op(content: bytes, recipe: list[dict], weights, calibration) -> str:
    """Which op (and layer) makes the quantizer fail: each op's rule is tried alone."""
    for weight in weights:
        single = [_rule("^" + re.escape(weight.scope) + "$", _ALL_OPS, recipe[0].get("op_config"))]
        try:
            _quantize(content, single, calibration)
        except Exception as error:  # the quantizer's own error, reported with the op and layer
            return f"op {weight.op} of layer {weight.layer!r} ({type(error).__name__}: {error})"
    return "no single op fails alone"


def post_training_lowbit(model, data: Dataset, spec: LowBitSpec | None = None, *,
                         representative_images: int = 300, seed: int = 0, name: str | None = None) -> TFLiteArtifact:
    """A low-bit TFLite file written by ai-edge-quantizer from ``model``'s float32 conversion.

    Args:
        model: a tf_keras classifier (not modified).
        data: its data set (static modes calibrate on ``representative_images`` TRAINING images;
            the test split stays held out).
        spec: a :class:`LowBitSpec` (default: int4 weight-only, per channel).
        representative_images: calibration images for the static modes.
        seed: picks the calibration images.
        name: the artifact's label (default ``"<model> <mode>"``).

    Returns:
        A :class:`~compresslab.tflite.TFLiteArtifact`; ``artifact.info`` holds the spec, the
        float32 file's bytes (``float32_tflite_bytes``: the reference for the file's ratio),
        ``layer_storage`` (layer -> e.g. ``"int4 per_channel"``) and ``left_float_layers`` /
        ``left_float_share`` (layers the quantizer left float32 and their share of all weights).
        Measure it with ``cl.measure(artifact, data, ...)``: accuracy from LiteRT.

    Raises:
        ValueError: a kept layer that does not exist or has no weights, a block size that does not
            divide a Dense layer's input (both before any conversion), or an op the quantizer cannot
            handle (naming the op and the layer).

    Example:
        >>> artifact = post_training_lowbit(model, data, LowBitSpec("int4_weight_only"))
        >>> cl.measure(artifact, data, name="int4", technique="quantize").accuracy
    """
    from ..quantize.ptq import _representative
    from ..quantize.spec import _check_data, _check_model

    spec = LowBitSpec() if spec is None else spec
    if not isinstance(spec, LowBitSpec):
        raise TypeError(f"spec must be a LowBitSpec, got {type(spec).__name__}")
    model = _check_model(model)
    _check_data(data)
    check_model_fits(model, data)
    if isinstance(representative_images, bool) or not isinstance(representative_images, (int, np.integer)) \
            or representative_images < 1:
        raise ValueError(f"representative_images is {representative_images!r}; it must be an integer >= 1")
    layer_names = [layer.name for layer in model.layers]
    _check_before_work(model, spec)  # a bad block size or layer name fails before any conversion
    float_file = convert(model, "float32")
    weights = file_weights(float_file.content, layer_names)
    scopes = _scopes(model, spec, weights)
    recipe = build_recipe(spec, scopes)
    calibration = _representative(data, representative_images, seed).astype(np.float32) if spec.kind == "static" else None
    try:
        content = _quantize(float_file.content, recipe, calibration)
    except Exception as error:  # ai-edge-quantizer raises many types; name the op and layer
        raise ValueError(f"ai-edge-quantizer could not write mode {spec.mode!r} for model {model.name!r}: "
                         f"{_failing_op(float_file.content, recipe, weights, calibration)}; first error: "
                         f"{type(error).__name__}: {error}") from None
    stored = file_weights(content, layer_names)
    _check_runs(content, spec, stored, data.x_train[:8].astype(np.float32), layer_names)
    total = sum(w.count for w in stored) or 1
    storage = {}
    for weight in stored:
        label = weight.storage + ("" if weight.granularity == "none" else f" {weight.granularity}")
        if weight.block_size:
            label += f" {weight.block_size}"
        storage[weight.layer or weight.tensor] = label
    unintended = [w for w in stored if w.storage in ("float32", "float16") and w.layer not in spec.keep_float]
    left = sorted({w.layer or w.tensor for w in unintended})
    share = sum(w.count for w in unintended) / total
    if left:
        warnings.warn(f"ai-edge-quantizer left layers {left} ({', '.join(sorted({w.op for w in unintended}))} ops, "
                      f"{100 * share:.1f}% of the weights) float in mode {spec.mode!r}: it does not support "
                      "those ops in this mode", UserWarning, stacklevel=2)
    info = {"technique": "post_training_lowbit", "quantizer": "ai-edge-quantizer", "lowbit": spec.to_dict(),
            "bits": spec.bits, "float32_tflite_bytes": float_file.size_bytes, "layer_storage": storage,
            "left_float_layers": left, "left_float_share": share,
            "kept_float_layers": list(spec.keep_float), "kept_int8_layers": list(spec.keep_int8)}
    if calibration is not None:
        info.update(representative_images=len(calibration), representative_split="train")
    return TFLiteArtifact(content, mode=spec.mode, name=name or f"{model.name} {spec.mode}",
                          params=float_file.params, nonzero_params=float_file.nonzero_params, info=info)


def _check_runs(content: bytes, spec: LowBitSpec, stored, images: np.ndarray, layer_names) -> None:
    """A file LiteRT refuses, or whose layers compute NaN or inf, is not a deployable file: say where."""
    from .errors import _output_names
    from .litert_child import LiteRTCrashed, activations

    layers = {w.layer or w.tensor: w.storage for w in stored if not w.storage.startswith("float")}
    try:
        outputs = _output_names(content, layer_names)
        values = activations(content, images, list(outputs.values()))
    except LiteRTCrashed as error:
        raise ValueError(f"ai-edge-quantizer wrote mode {spec.mode!r} ({spec.granularity}), but {error} "
                         f"(layers stored as {layers}), so the file is unusable; keep the low-bit layers at "
                         "8 bits (keep_int8) or choose another mode") from None
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"ai-edge-quantizer wrote mode {spec.mode!r} ({spec.granularity}), but LiteRT cannot run "
                         f"the file (layers stored as {layers}): {str(error).splitlines()[0][:300]}") from None
    for layer, tensor in outputs.items():
        if tensor in values and not np.all(np.isfinite(values[tensor])):
            raise ValueError(f"ai-edge-quantizer wrote mode {spec.mode!r}, but in LiteRT layer {layer!r} (stored as "
                             f"{layers.get(layer, 'float')}) computes NaN or inf on training images, so the file "
                             "is unusable; keep that layer at 8 bits (keep_int8) or choose another mode")


def plan_to_lowbit(plan, *, mode: str = "int4_weight_only") -> LowBitSpec:
    """A selective low-bit spec from a :class:`~compresslab.quantize.MixedPrecisionPlan`.

    The file can store 8 or 4 bits per weight (2 bits only in the dynamic mode), so the plan is
    rounded UP to what the file can hold: a layer the plan gives more than 4 bits is kept at 8,
    a layer it leaves float stays float, and every other layer (2 to 4 bits in the plan) is
    written at 4 bits. The file can therefore only be as good as or better than the plan's
    bits promise; measure both and compare.

    Args:
        plan: the result of ``cl.quantize.mixed_precision``.
        mode: the 4-bit mode for the other layers (``"int4_weight_only"`` or ``"int4_dynamic"``).

    Returns:
        A :class:`LowBitSpec` with ``keep_int8`` and ``keep_float`` from the plan.
    """
    if not hasattr(plan, "bits") or not isinstance(plan.bits, dict):
        raise TypeError(f"plan must be a MixedPrecisionPlan from cl.quantize.mixed_precision, got {type(plan).__name__}")
    if mode not in ("int4_weight_only", "int4_dynamic"):
        raise ValueError(f"mode is {mode!r}; a plan is written with 'int4_weight_only' or 'int4_dynamic'")
    keep_int8 = tuple(name for name, bits in plan.bits.items() if bits is not None and bits > 4)
    keep_float = tuple(name for name, bits in plan.bits.items() if bits is None)
    return LowBitSpec(mode, keep_int8=keep_int8, keep_float=keep_float)


__all__ = ["post_training_lowbit", "plan_to_lowbit", "build_recipe"]
