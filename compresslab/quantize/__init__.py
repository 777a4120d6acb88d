"""Quantization: how few bits can a weight have, and what does it buy on disk and in speed?

Four ways in, from the textbook formula to a deployable int8 file:

* simulate the bit width: :class:`QuantSpec` + :func:`simulate` fake-quantize the weights
  (quantize, then dequantize) in numpy and return a NEW Keras model, so any bit width from 1 to
  16 can be tried in a second;
* post-training quantization: :func:`post_training` converts to TFLite (``"dynamic"``,
  ``"float16"`` or full-integer ``"int8"``), measured by running LiteRT;
* quantization-aware training: :func:`aware_training` fine-tunes with tfmot's fake-quant
  wrappers, then converts to an int8 TFLite file;
* where the bits matter: :func:`layer_sensitivity` (one layer at a time) and
  :func:`mixed_precision` (bits per layer under an accuracy budget).

The numpy core, :func:`quantize_array`, returns the integer codes, the scale(s) and the zero
point(s) as well as the dequantized values, so a notebook can show every step of the formula.

Example:
    >>> spec = QuantSpec(bits=4, scheme="symmetric", granularity="per_channel")
    >>> quantized = simulate(model, spec)
    >>> cl.models.accuracy(quantized, data)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from ._keras import keras, tf, tfmot
from .data import Dataset
from .models import (
    check_model_fits,
    clone,
    compile_for_classification,
    outputs_logits,
    set_seed,
    train,
)
from .specs import Spec, check_choice, check_int, check_layers, fail, resolve_layers
from .tflite import TFLiteArtifact, convert

SCHEMES = ("symmetric", "asymmetric", "fixed_point")
GRANULARITIES = ("per_tensor", "per_channel")
PTQ_MODES = ("dynamic", "float16", "int8")

# The weight attributes simulate() quantizes. Biases, batch-norm statistics and every other
# weight stay float32: in an int8 TFLite file biases are int32 with scale s_input * s_weight,
# so keeping them float is the faithful simulation of what deploys.
KERNEL_ATTRIBUTES = ("kernel", "depthwise_kernel", "pointwise_kernel")


# ---------------------------------------------------------------------------------------------
# The spec


@dataclass(frozen=True)
class QuantSpec(Spec):
    """How to quantize a model's weights (and optionally its activations) in simulation.

    Attributes:
        bits: bits per weight, 1 to 16.
        scheme: ``"symmetric"`` (scale from max |w|, zero maps to zero, levels
            -(2^(b-1)-1) .. 2^(b-1)-1), ``"asymmetric"`` (scale and zero point from [min, max],
            levels 0 .. 2^b-1) or ``"fixed_point"`` (the textbook Q-format
            x_q = round(x * 2^p) / 2^p with ``fractional_bits`` = p, clipped to the signed
            b-bit range).
        granularity: ``"per_tensor"`` (one scale for the whole tensor) or ``"per_channel"``
            (one scale per output channel). ``fixed_point`` has one format for the whole tensor,
            so it needs ``"per_tensor"``.
        fractional_bits: p for ``fixed_point`` (0 to 31); must be None for the other schemes.
        layers: names of the layers to quantize, or None for every layer with a kernel.
        activation_bits: None (activations stay float) or 2 to 16: the output of every
            quantized layer is then fake-quantized too, with a range calibrated on training images.

    Raises:
        ValueError: a field out of range, naming the field, the value and what is allowed.

    Example:
        >>> QuantSpec(bits=4, scheme="asymmetric", granularity="per_channel")
        >>> QuantSpec(bits=8, scheme="fixed_point", fractional_bits=6)
    """

    bits: int = 8
    scheme: str = "symmetric"
    granularity: str = "per_tensor"
    fractional_bits: int | None = None
    layers: tuple[str, ...] | None = None
    activation_bits: int | None = None

    def __post_init__(self):
        check_int(self, "bits", 1, 16)
        check_choice(self, "scheme", SCHEMES)
        check_choice(self, "granularity", GRANULARITIES)
        if self.scheme == "fixed_point":
            if self.fractional_bits is None:
                fail(self, "fractional_bits", None,
                     "the fixed_point scheme needs fractional_bits (p in x_q = round(x * 2^p) / 2^p), "
                     "an integer from 0 to 31")
            check_int(self, "fractional_bits", 0, 31)
            if self.granularity != "per_tensor":
                fail(self, "granularity", self.granularity,
                     "fixed_point uses one Q-format for the whole tensor: use 'per_tensor' "
                     "(or the symmetric/asymmetric scheme for per-channel scales)")
        elif self.fractional_bits is not None:
            fail(self, "fractional_bits", self.fractional_bits,
                 f"it only applies to scheme='fixed_point' (scheme is {self.scheme!r}); leave it None")
        check_layers(self, "layers")
        check_int(self, "activation_bits", 2, 16, optional=True)

    @property
    def label(self) -> str:
        """A short human label, e.g. ``"4-bit symmetric per-channel"``."""
        text = f"{self.bits}-bit {self.scheme.replace('_', '-')} {self.granularity.replace('_', '-')}"
        if self.scheme == "fixed_point":
            text = f"{self.bits}-bit fixed-point Q{self.bits - self.fractional_bits}.{self.fractional_bits}"
        if self.activation_bits:
            text += f", {self.activation_bits}-bit activations"
        return text


def _as_spec(spec) -> QuantSpec:
    if isinstance(spec, QuantSpec):
        return spec
    if isinstance(spec, dict):
        return QuantSpec.from_dict(spec)
    raise TypeError(f"spec must be a QuantSpec (or its dict), got {type(spec).__name__}")


# ---------------------------------------------------------------------------------------------
# The numpy core


@dataclass
class QuantizedArray:
    """One tensor after quantization.

    Attributes:
        values: the dequantized float32 values (same shape as the input): what the model computes with.
        codes: the integer codes that would be stored (same shape), int32.
        scale: the step between levels, one per group (shape ``(groups,)``).
        zero_point: the code that represents 0.0, one per group (0 for symmetric and fixed point).
        bits: the bit width.
        groups: 1 for per-tensor, the number of channels for per-channel.
        scheme: the scheme that made it.
    """

    values: np.ndarray
    codes: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    bits: int
    groups: int
    scheme: str = "symmetric"

    def grid_codes(self) -> np.ndarray:
        """Every code the scheme allows at this bit width (used or not)."""
        bits = self.bits
        if self.scheme == "symmetric":
            if bits == 1:
                return np.array([-1, 1])
            top = 2 ** (bits - 1) - 1
            return np.arange(-top, top + 1)
        if self.scheme == "asymmetric":
            return np.arange(0, 2 ** bits)
        return np.arange(-(2 ** (bits - 1)), 2 ** (bits - 1))

    def levels(self, group: int = 0) -> np.ndarray:
        """The real values group ``group``'s codes stand for: the quantization grid ``s * (q - z)``."""
        codes = self.grid_codes().astype(np.float64)
        return ((codes - self.zero_point[group]) * self.scale[group]).astype(np.float32)


def quantize_array(values, bits: int, scheme: str = "symmetric", granularity: str = "per_tensor", *,
                   fractional_bits: int | None = None, channel_axes: tuple[int, ...] = (-1,)) -> QuantizedArray:
    """Quantize then dequantize one array with numpy.

    * symmetric, bits >= 2: ``s = max|x| / (2^(b-1) - 1)``, ``q = clip(round(x / s), -(2^(b-1)-1), 2^(b-1)-1)``,
      ``x_hat = s * q``. Zero is exact; ``2^b - 1`` levels (TFLite's "narrow range" for int8 weights).
    * symmetric, bits == 1: the sign with one scale, ``x_hat = s * sign(x)``, ``s = mean|x|``
      (the scale that minimises the squared error, as in XNOR-Net): two levels.
    * asymmetric: the range ``[min(x_min, 0), max(x_max, 0)]`` is cut into ``2^b - 1`` steps,
      ``s = (max - min) / (2^b - 1)``, zero point ``z = round(-min / s)``,
      ``q = clip(round(x / s) + z, 0, 2^b - 1)``, ``x_hat = s * (q - z)``.
    * fixed_point: ``q = clip(round(x * 2^p), -2^(b-1), 2^(b-1) - 1)``, ``x_hat = q / 2^p``.

    Per-channel quantization computes one scale (and zero point) per slice along
    ``channel_axes`` (several axes are taken together as one channel index). Each group then
    has at most ``2^bits`` distinct values, and so does the whole tensor's set of codes.

    Args:
        values: the float array.
        bits: 1 to 16.
        scheme: ``"symmetric"``, ``"asymmetric"`` or ``"fixed_point"``.
        granularity: ``"per_tensor"`` or ``"per_channel"``.
        fractional_bits: p for ``fixed_point``.
        channel_axes: the channel axes for per-channel (default: the last axis).

    Returns:
        A :class:`QuantizedArray`.

    Example:
        >>> quantize_array(np.array([-1.0, 0.1, 0.5]), bits=2).values
        array([-1.,  0.,  1.], dtype=float32)
    """
    array = np.asarray(values, dtype=np.float32)
    spec = QuantSpec(bits=bits, scheme=scheme, granularity=granularity, fractional_bits=fractional_bits)
    if spec.granularity == "per_channel" and array.ndim > 0:
        axes = tuple(sorted(axis % array.ndim for axis in channel_axes))
        others = [axis for axis in range(array.ndim) if axis not in axes]
        moved = np.transpose(array, others + list(axes))
        groups = int(np.prod([array.shape[axis] for axis in axes]))
        flat = moved.reshape(-1, groups)
    else:
        axes, others, moved = (), list(range(array.ndim)), array
        groups = 1
        flat = array.reshape(-1, 1)
    codes, scale, zero_point = _quantize_columns(flat.astype(np.float64), spec)
    codes = codes + 0.0  # round() gives -0.0 for small negatives; show them as 0
    dequantized = ((codes - zero_point) * scale).astype(np.float32)
    # Undo the reshape and transpose: back to the caller's layout.
    if axes:
        order = others + list(axes)
        inverse = np.argsort(order)
        dequantized = np.transpose(dequantized.reshape(moved.shape), inverse)
        codes = np.transpose(codes.reshape(moved.shape), inverse)
    else:
        dequantized = dequantized.reshape(array.shape)
        codes = codes.reshape(array.shape)
    return QuantizedArray(values=dequantized, codes=codes.astype(np.int32), scale=scale.ravel(),
                          zero_point=zero_point.ravel().astype(np.int32), bits=int(bits), groups=groups,
                          scheme=spec.scheme)


def _quantize_columns(flat: np.ndarray, spec: QuantSpec):
    """Quantize each column of ``flat`` (rows = elements, columns = groups)."""
    bits = spec.bits
    columns = flat.shape[1]
    if spec.scheme == "fixed_point":
        scale = np.full((1, columns), 2.0 ** -spec.fractional_bits)
        codes = np.clip(np.round(flat / scale), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        return codes, scale, np.zeros((1, columns))
    if spec.scheme == "symmetric":
        if bits == 1:
            scale = np.abs(flat).mean(axis=0, keepdims=True)
            scale = np.where(scale > 0, scale, 1.0)
            codes = np.where(flat >= 0, 1.0, -1.0)
            return codes, scale, np.zeros((1, columns))
        top = 2 ** (bits - 1) - 1
        scale = np.abs(flat).max(axis=0, keepdims=True) / top
        scale = np.where(scale > 0, scale, 1.0)
        codes = np.clip(np.round(flat / scale), -top, top)
        return codes, scale, np.zeros((1, columns))
    # asymmetric: the range always contains 0 so that zero (padding, pruned weights) stays exact.
    steps = 2 ** bits - 1
    low = np.minimum(flat.min(axis=0, keepdims=True), 0.0)
    high = np.maximum(flat.max(axis=0, keepdims=True), 0.0)
    scale = (high - low) / steps
    scale = np.where(scale > 0, scale, 1.0)
    zero_point = np.clip(np.round(-low / scale), 0, steps)
    codes = np.clip(np.round(flat / scale) + zero_point, 0, steps)
    return codes, scale, zero_point


# ---------------------------------------------------------------------------------------------
# Which weights of a model are quantized


def quantizable_weights(layer) -> list[tuple[str, object]]:
    """``(attribute, variable)`` pairs of ``layer`` that :func:`simulate` quantizes (its kernels)."""
    found = []
    for attribute in KERNEL_ATTRIBUTES:
        variable = getattr(layer, attribute, None)
        if isinstance(variable, tf.Variable):
            found.append((attribute, variable))
    return found


def has_quantizable_weights(layer) -> bool:
    """True when the layer has a kernel (Conv*, Dense, DepthwiseConv2D, SeparableConv*)."""
    return bool(quantizable_weights(layer))


def channel_axes(layer, attribute: str) -> tuple[int, ...]:
    """The output-channel axes of ``layer.<attribute>`` used by per-channel quantization.

    * ``Conv1D/2D/3D`` and ``Dense`` kernels, ``pointwise_kernel``: the last axis (output
      channels or units).
    * ``Conv*Transpose`` kernels ``(..., out, in)``: axis -2.
    * ``depthwise_kernel`` ``(kh, kw, in, multiplier)``: the last two axes together, one scale per
      output channel ``in * multiplier``, as TFLite does.
    """
    if attribute == "depthwise_kernel":
        return (-2, -1)
    if attribute == "kernel" and "Transpose" in type(layer).__name__:
        return (-2,)
    return (-1,)


def _chosen_layers(model, names) -> list:
    nested = [layer.name for layer in model.layers if isinstance(layer, keras.Model)]
    if nested:
        raise ValueError(
            f"layers {nested} of model {model.name!r} are nested models; compresslab quantizes the layers "
            "of one flat model: flatten it into one functional model first (call the inner model's layers "
            "on the outer input)"
        )
    layers = resolve_layers(model, names, eligible=has_quantizable_weights, what="quantizable layer")
    if not layers:
        raise ValueError(
            f"model {model.name!r} has nothing to quantize: none of its layers has a kernel "
            "(Conv1D/2D/3D, DepthwiseConv2D, SeparableConv2D, Conv2DTranspose or Dense); "
            f"its layers are {[layer.name for layer in model.layers]}"
        )
    return layers


def _check_model(model) -> None:
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"expected a tf_keras Model, got {type(model).__name__}; load files with cl.load_model"
        )


def _check_data(data) -> None:
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a compresslab Dataset, got {type(data).__name__}")


def quantize_weights(model, spec: QuantSpec) -> dict[tuple[str, str], QuantizedArray]:
    """The quantized kernels of ``model`` under ``spec``, keyed by ``(layer name, attribute)`` (numpy only).

    Example:
        >>> arrays = quantize_weights(model, QuantSpec(bits=4))
        >>> arrays[("conv1", "kernel")].scale
    """
    _check_model(model)
    spec = _as_spec(spec)
    result = {}
    for layer in _chosen_layers(model, spec.layers):
        for attribute, variable in quantizable_weights(layer):
            result[(layer.name, attribute)] = quantize_array(
                variable.numpy(), spec.bits, spec.scheme, spec.granularity,
                fractional_bits=spec.fractional_bits, channel_axes=channel_axes(layer, attribute))
    return result


# ---------------------------------------------------------------------------------------------
# simulate


@keras.utils.register_keras_serializable(package="compresslab")
class FakeQuantActivation(keras.layers.Layer):
    """Fake-quantizes its input to ``bits`` on a fixed range ``[minimum, maximum]`` (asymmetric).

    ``x_hat = s * (clip(round(x / s) + z, 0, 2^b - 1) - z)`` with ``s = (max - min) / (2^b - 1)``
    and ``z = round(-min / s)``: the same formula as the asymmetric weight scheme.
    """

    def __init__(self, bits: int, minimum: float, maximum: float, **kwargs):
        super().__init__(**kwargs)
        self.bits = int(bits)
        self.minimum = float(min(minimum, 0.0))
        self.maximum = float(max(maximum, 0.0))

    def call(self, inputs):
        steps = float(2 ** self.bits - 1)
        scale = (self.maximum - self.minimum) / steps if self.maximum > self.minimum else 1.0
        zero_point = float(np.clip(np.round(-self.minimum / scale), 0, steps))
        codes = tf.clip_by_value(tf.round(inputs / scale) + zero_point, 0.0, steps)
        return (codes - zero_point) * scale

    def get_config(self):
        return {**super().get_config(), "bits": self.bits, "minimum": self.minimum, "maximum": self.maximum}


def simulate(model, spec: QuantSpec, data: Dataset | None = None, *, calibration_images: int = 512,
             seed: int = 0):
    """Fake-quantize a model's weights (quantize, then dequantize) into a NEW model.

    What is simulated, exactly:

    * the kernels of the chosen layers (``spec.layers``, default every layer with one):
      ``kernel`` of Conv1D/2D/3D, Conv2DTranspose and Dense, ``depthwise_kernel`` of
      DepthwiseConv2D and ``depthwise_kernel`` + ``pointwise_kernel`` of SeparableConv2D are
      replaced by their dequantized values (see :func:`quantize_array` for each scheme's formula);
    * per-channel scales are taken along the output-channel axis: the last axis of Conv2D and
      Dense kernels, axis -2 of transposed convolutions, and the (input channel x multiplier)
      output channels of a DepthwiseConv2D kernel;
    * biases, batch-norm parameters and every other weight stay float32 (in an int8 TFLite
      file biases are int32 at scale s_input * s_weight, close to exact);
    * with ``spec.activation_bits``, the output of every quantized layer (after its activation
      function) is fake-quantized too, asymmetric on a fixed range [min, max] (widened to
      contain 0) measured on ``calibration_images`` training images of ``data``. The model's
      input and the layers between (pooling, flatten) are not quantized.

    The arithmetic itself stays float32: this is a simulation of the rounding error, not of
    integer kernels (for those, use :func:`post_training`).

    Args:
        model: a tf_keras model (not modified).
        spec: a :class:`QuantSpec`.
        data: needed only with ``spec.activation_bits`` (its training split calibrates ranges).
        calibration_images: training images used to calibrate activation ranges.
        seed: picks the calibration images.

    Returns:
        A new compiled tf_keras model; ``model.quantization`` describes what was quantized.

    Raises:
        TypeError: ``model`` is not a tf_keras model or ``spec`` not a QuantSpec.
        ValueError: ``spec.layers`` names a layer that does not exist or has no kernel; the model
            has nothing to quantize; ``activation_bits`` without ``data``.

    Example:
        >>> four_bit = simulate(model, QuantSpec(bits=4, granularity="per_channel"))
    """
    _check_model(model)
    spec = _as_spec(spec)
    _chosen_layers(model, spec.layers)
    if spec.activation_bits is not None:
        if data is None:
            raise ValueError("spec.activation_bits needs data: activation ranges are calibrated on "
                             "training images (pass data=your Dataset)")
        _check_data(data)
        check_model_fits(model, data)
        if int(calibration_images) < 1:
            raise ValueError(f"calibration_images is {calibration_images}; it must be at least 1")
    arrays = quantize_weights(model, spec)
    result = _with_weights(model, arrays)
    if spec.activation_bits is not None:
        result = _quantize_activations(result, sorted({name for name, _ in arrays}), spec.activation_bits,
                                       data, calibration_images, seed)
    compile_for_classification(result)
    result.quantization = {"spec": spec.to_dict(), "layers": sorted({name for name, _ in arrays}),
                           "simulated": "weights" + (" and activations" if spec.activation_bits else "")}
    return result


def _with_weights(model, arrays: dict[tuple[str, str], QuantizedArray]):
    """A clone of ``model`` whose listed kernels hold the given dequantized values."""
    result = clone(model)
    for (layer_name, attribute), quantized in arrays.items():
        getattr(result.get_layer(layer_name), attribute).assign(quantized.values)
    return result


def _quantize_activations(model, layer_names: list[str], bits: int, data: Dataset, count: int, seed: int):
    rng = np.random.default_rng(seed)
    index = rng.choice(len(data.x_train), size=min(int(count), len(data.x_train)), replace=False)
    probe = keras.Model(model.inputs, [model.get_layer(name).output for name in layer_names])
    outputs = probe.predict(data.x_train[np.sort(index)], batch_size=256, verbose=0)
    if len(layer_names) == 1:
        outputs = [outputs]
    ranges = {name: (float(np.min(out)), float(np.max(out))) for name, out in zip(layer_names, outputs)}
    return _insert_after(model, ranges, bits)


def _insert_after(model, ranges: dict[str, tuple[float, float]], bits: int):
    """Rebuild ``model``'s graph with a FakeQuantActivation after each layer named in ``ranges``.

    ``clone_model`` cannot insert layers, so the graph is walked in topological order (Sequential
    and functional models whose layers are each called once).
    """
    tensors = {id(model.inputs[0]): keras.Input(shape=model.input_shape[1:])}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        node = layer._inbound_nodes[0]
        parents = tf.nest.flatten(node.input_tensors)
        args = [tensors[id(parent)] for parent in parents]
        output = layer(args[0] if len(args) == 1 else args)
        if layer.name in ranges:
            low, high = ranges[layer.name]
            output = FakeQuantActivation(bits, low, high, name=f"{layer.name}_activation_q{bits}")(output)
        tensors[id(tf.nest.flatten(node.output_tensors)[0])] = output
    rebuilt = keras.Model(tensors[id(model.inputs[0])], tensors[id(model.outputs[0])], name=model.name)
    # The rebuilt graph reuses the layers (and quantized weights) of ``model``, a private clone;
    # clone once more so that the result owns its variables.
    return _clone_with_custom(rebuilt)


def _clone_with_custom(model):
    with keras.utils.custom_object_scope({"FakeQuantActivation": FakeQuantActivation}):
        return clone(model)


# ---------------------------------------------------------------------------------------------
# A fast evaluator for sliders, sensitivity and mixed precision


class SimulationEvaluator:
    """Accuracy of fake-quantized weights, fast enough for a slider.

    Holds ONE working clone of the model, the test tensors and a compiled ``tf.function``; each
    call quantizes the kernels with numpy and assigns them to the clone's variables (no cloning,
    no retracing). Used by :class:`~compresslab.widgets.QuantizationLab`,
    :func:`layer_sensitivity` and :func:`mixed_precision`.

    Args:
        model: the float model (not modified).
        x, y: images and labels to measure on (e.g. ``data.x_test``, ``data.y_test``).
        batch_size: images per compiled call (256: larger batches were slower on a laptop CPU,
            their activations no longer fit in cache).

    Example:
        >>> evaluator = SimulationEvaluator(model, data.x_test, data.y_test)
        >>> evaluator.accuracy_for(QuantSpec(bits=4))
    """

    def __init__(self, model, x: np.ndarray, y: np.ndarray, batch_size: int = 256):
        _check_model(model)
        self.model = clone(model)
        self.layers = [layer for layer in self.model.layers if has_quantizable_weights(layer)]
        if not self.layers:
            _chosen_layers(model, None)  # raises the "nothing to quantize" error
        self.variables = {(layer.name, attribute): variable
                          for layer in self.layers for attribute, variable in quantizable_weights(layer)}
        self.float_values = {key: variable.numpy() for key, variable in self.variables.items()}
        self._axes = {(layer.name, attribute): channel_axes(layer, attribute)
                      for layer in self.layers for attribute, _ in quantizable_weights(layer)}
        # What each variable holds now (None: the float values), to skip assigning unchanged kernels.
        self._assigned: dict[tuple[str, str], object] = {key: None for key in self.variables}
        x = np.asarray(x, dtype=np.float32)
        self.y = np.asarray(y)
        self.count = len(x)
        self._batches = [tf.constant(x[start : start + batch_size]) for start in range(0, len(x), batch_size)]
        self._labels = [self.y[start : start + batch_size] for start in range(0, len(x), batch_size)]
        network = self.model

        @tf.function(input_signature=[tf.TensorSpec([None, *x.shape[1:]], tf.float32)])
        def predict_classes(images):
            return tf.argmax(network(images, training=False), axis=1)

        self._predict = predict_classes
        self.float_accuracy = self.accuracy({})

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def quantize(self, spec: QuantSpec) -> dict[tuple[str, str], QuantizedArray]:
        """Quantized kernels of the chosen layers (numpy), keyed by ``(layer, attribute)``."""
        spec = _as_spec(spec)
        names = set(spec.layers) if spec.layers is not None else set(self.layer_names)
        unknown = sorted(names - set(self.layer_names))
        if unknown:
            raise ValueError(f"layers {unknown} are not quantizable layers of the model; "
                             f"they are {self.layer_names}")
        return {key: quantize_array(values, spec.bits, spec.scheme, spec.granularity,
                                    fractional_bits=spec.fractional_bits, channel_axes=self._axes[key])
                for key, values in self.float_values.items() if key[0] in names}

    def accuracy(self, arrays: dict[tuple[str, str], QuantizedArray | np.ndarray]) -> float:
        """Accuracy with the given kernels swapped in (every other kernel float)."""
        for key, variable in self.variables.items():
            value = arrays.get(key)
            if value is None:
                if self._assigned[key] is not None:
                    variable.assign(self.float_values[key])
                    self._assigned[key] = None
            else:
                values = value.values if isinstance(value, QuantizedArray) else value
                if self._assigned[key] is not values:
                    variable.assign(values)
                    self._assigned[key] = values
        correct = 0
        for images, labels in zip(self._batches, self._labels):
            correct += int(np.count_nonzero(self._predict(images).numpy() == labels))
        return correct / max(1, self.count)

    def accuracy_for(self, spec: QuantSpec) -> float:
        """Accuracy of the model with weights simulated under ``spec`` (weights only)."""
        return self.accuracy(self.quantize(spec))


def packed_weight_bytes(model, arrays: dict[tuple[str, str], QuantizedArray]) -> float:
    """Ideal packed size in bytes: quantized kernels at ``bits`` each plus one float32 scale
    (and zero point) per group, every other weight float32. A bound, not a file size."""
    total_bits = 0.0
    counted = 0
    for quantized in arrays.values():
        total_bits += quantized.values.size * quantized.bits + quantized.groups * 32 * 2
        counted += quantized.values.size
    all_params = sum(int(np.prod(w.shape)) for w in model.weights)
    return (total_bits + (all_params - counted) * 32) / 8.0


# ---------------------------------------------------------------------------------------------
# Post-training quantization


def _representative(data: Dataset, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    index = rng.choice(len(data.x_train), size=min(int(count), len(data.x_train)), replace=False)
    return data.x_train[np.sort(index)]


def post_training(model, data: Dataset, mode: str = "dynamic", *, representative_images: int = 300,
                  seed: int = 0, name: str | None = None) -> TFLiteArtifact:
    """Post-training quantization with the TFLite converter.

    * ``"dynamic"``: int8 weights, float activations (quantized on the fly at run time);
    * ``"float16"``: float16 weights (about half the float32 file);
    * ``"int8"``: full-integer: int8 weights and activations, int8 input and output; activation
      ranges are calibrated on ``representative_images`` images drawn from the TRAINING split
      (the test split stays held out).

    Args:
        model: a tf_keras model (not modified).
        data: the data set (its training split calibrates int8).
        mode: ``"dynamic"``, ``"float16"`` or ``"int8"``.
        representative_images: calibration images for ``"int8"``.
        seed: picks the calibration images.
        name: label of the artifact (default ``"<model> ptq-<mode>"``).

    Returns:
        A :class:`~compresslab.tflite.TFLiteArtifact`; measure it with ``cl.measure(artifact, data, ...)``
        (accuracy from LiteRT).

    Raises:
        ValueError: unknown mode, a model that does not fit the data or has no weights to quantize.

    Example:
        >>> artifact = post_training(model, data, "int8")
        >>> artifact.accuracy(data), artifact.size_bytes
    """
    _check_model(model)
    _check_data(data)
    if mode not in PTQ_MODES:
        raise ValueError(f"mode is {mode!r}; choose one of {', '.join(PTQ_MODES)}")
    check_model_fits(model, data)
    _chosen_layers(model, None)
    if int(representative_images) < 1:
        raise ValueError(f"representative_images is {representative_images}; it must be at least 1")
    info = {"technique": "post_training", "ptq_mode": mode, "bits": 16 if mode == "float16" else 8}
    representative = None
    if mode == "int8":
        representative = _representative(data, representative_images, seed)
        info.update(representative_images=len(representative), representative_split="train", int8_io=True)
    return convert(model, mode, representative=representative, int8_io=True,
                   name=name or f"{model.name} ptq-{mode}", info=info)


# ---------------------------------------------------------------------------------------------
# Quantization-aware training


@dataclass
class AwareTrainingResult:
    """What :func:`aware_training` produced.

    Attributes:
        model: the QAT-trained Keras model (fake-quant wrappers inside).
        artifact: the int8 TFLite file (bits == 8), or None for other bit widths.
        bits: the weight bit width trained for.
        simulation_only: True when ``bits != 8``: TFLite deploys 8-bit, so the lower bit width
            exists only as the Keras model's fake quantization (tfmot's experimental default_n_bit).
        keras_accuracy: test accuracy of ``model`` (fake-quantized, in Keras).
        history: the Keras training history (``history.history``).
        seconds: training time.
    """

    model: object
    artifact: TFLiteArtifact | None
    bits: int
    simulation_only: bool
    keras_accuracy: float
    history: dict = field(default_factory=dict)
    seconds: float = 0.0


def check_quantization_aware(model, bits: int = 8) -> None:
    """Raise a clear ValueError if tfmot's QAT cannot wrap every layer of ``model``.

    Names the first unsupported layer and says what to do. Called by :func:`aware_training`
    before any work starts.
    """
    _check_model(model)
    if not isinstance(model, keras.Sequential) and not getattr(model, "_is_graph_network", False):
        raise ValueError(
            f"model {model.name!r} is a subclassed Keras model; tfmot quantization-aware training "
            "needs a Sequential or functional model: rebuild it with keras.Input and layer calls"
        )
    q = tfmot().quantization.keras
    if bits == 8:
        registry = q.default_8bit.Default8BitQuantizeRegistry()
    else:
        registry = q.experimental.default_n_bit.DefaultNBitQuantizeRegistry(
            num_bits_weight=bits, num_bits_activation=8)
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            raise ValueError(
                f"layer {layer.name!r} is a nested model; tfmot cannot quantize a model inside a model: "
                "flatten it into one functional model (or use post_training(model, data, 'int8'))"
            )
        if registry.supports(layer):
            continue
        if isinstance(layer, keras.layers.BatchNormalization) and _follows_convolution(layer):
            continue  # tfmot folds Conv + BatchNormalization
        raise ValueError(
            f"layer {layer.name!r} ({type(layer).__name__}) cannot be quantized by tfmot's "
            "quantization-aware training. What to do: replace it with a supported layer (Conv2D, "
            "DepthwiseConv2D, Dense, pooling, ReLU, Add, Concatenate, Reshape, Flatten, Dropout, "
            "BatchNormalization right after a convolution), or annotate it yourself with "
            "tfmot.quantization.keras.quantize_annotate_layer(layer, quantize_config=...) and a custom "
            "QuantizeConfig, or use post-training quantization instead: "
            "cl.quantize.post_training(model, data, 'int8') handles any layer TFLite supports."
        )


def _follows_convolution(layer) -> bool:
    try:
        parent = layer.inbound_nodes[0].inbound_layers
    except (AttributeError, IndexError):
        return False
    return isinstance(parent, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))


def aware_training(model, data: Dataset, *, epochs: int, bits: int = 8, learning_rate: float = 1e-4,
                   batch_size: int = 64, seed: int = 0, progress: bool | Callable = False,
                   representative_images: int = 300, name: str | None = None) -> AwareTrainingResult:
    """Quantization-aware training (QAT) with tfmot, then an int8 TFLite file.

    The model is wrapped by ``tfmot.quantization.keras.quantize_model`` (8-bit: per-channel
    symmetric weights, asymmetric activations, the TFLite int8 scheme), fine-tuned for
    ``epochs`` on the training split so the weights learn to live on the quantization grid,
    then converted to a full-integer int8 TFLite file (int8 input and output) measured in LiteRT.

    Other bit widths (2 to 7) use tfmot's experimental ``default_n_bit`` scheme
    (``num_bits_weight=bits``, 8-bit activations). They are a SIMULATION ONLY: TFLite deploys
    8-bit, so no artifact is produced and the accuracy is the Keras fake-quant model's.

    Args:
        model: a trained tf_keras model (not modified).
        data: the data set (training split for fine-tuning and int8 calibration).
        epochs: fine-tuning epochs (>= 1; 1 is usually enough).
        bits: weight bit width, 2 to 8.
        learning_rate: Adam learning rate of the fine-tuning (small: the model is already trained).
        batch_size: images per step.
        seed: seeds shuffling and the calibration images.
        progress: True for a bar, False for silence, or ``callable(epoch, logs)``.
        representative_images: training images for the int8 conversion.
        name: label of the artifact.

    Returns:
        An :class:`AwareTrainingResult`.

    Raises:
        ValueError: bits out of range, epochs < 1, a model that does not fit the data, or a layer
            tfmot cannot quantize (named, with what to do), all before training starts.

    Example:
        >>> result = aware_training(model, data, epochs=1)
        >>> result.artifact.accuracy(data), result.artifact.size_bytes
    """
    _check_model(model)
    _check_data(data)
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 8:
        raise ValueError(f"bits is {bits!r}; quantization-aware training supports integers from 2 to 8 "
                         "(8 deploys to TFLite; 2-7 use tfmot's experimental n-bit scheme, simulation only)")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs is {epochs!r}; it must be an integer >= 1")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate is {learning_rate!r}; it must be > 0")
    check_model_fits(model, data)
    check_quantization_aware(model, bits)
    _chosen_layers(model, None)
    q = tfmot().quantization.keras
    set_seed(seed)
    try:
        if bits == 8:
            qat_model = q.quantize_model(clone(model))
        else:
            scheme = q.experimental.default_n_bit.DefaultNBitQuantizeScheme(
                num_bits_weight=bits, num_bits_activation=8)
            qat_model = q.quantize_apply(q.quantize_annotate_model(clone(model)), scheme)
    except (RuntimeError, ValueError) as error:  # anything the pre-check did not foresee
        raise ValueError(f"tfmot could not prepare the model for quantization-aware training: {error}. "
                         "Use cl.quantize.post_training(model, data, 'int8') instead, or replace the "
                         "layer it names with a supported one.") from None
    qat_model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=outputs_logits(model)),
        metrics=["accuracy"],
    )
    started = time.perf_counter()
    history = train(qat_model, data, epochs=epochs, batch_size=batch_size, seed=seed, progress=progress,
                    compile=False)
    seconds = time.perf_counter() - started
    from .models import accuracy as keras_accuracy

    artifact = None
    if bits == 8:
        artifact = convert(qat_model, "int8", representative=_representative(data, representative_images, seed),
                           int8_io=True, name=name or f"{model.name} qat-int8",
                           info={"technique": "aware_training", "bits": 8, "qat_epochs": epochs,
                                 "learning_rate": learning_rate, "int8_io": True})
    return AwareTrainingResult(model=qat_model, artifact=artifact, bits=bits, simulation_only=bits != 8,
                               keras_accuracy=keras_accuracy(qat_model, data),
                               history={k: [float(v) for v in vs] for k, vs in history.history.items()},
                               seconds=seconds)


# ---------------------------------------------------------------------------------------------
# Where the bits matter


def _bits_list(bits) -> list[int]:
    values = [bits] if isinstance(bits, (int, np.integer)) and not isinstance(bits, bool) else bits
    try:
        values = list(values)
    except TypeError:
        raise ValueError(f"bits is {bits!r}; give an integer from 1 to 16 or a list of them") from None
    if not values:
        raise ValueError("bits is empty; give an integer from 1 to 16 or a list of them")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= 16:
            raise ValueError(f"bits contains {value!r}; every bit width must be an integer from 1 to 16")
    return [int(v) for v in values]


def layer_sensitivity(model, data: Dataset, bits: int | Iterable[int] = 4, *, scheme: str = "symmetric",
                      granularity: str = "per_channel", fractional_bits: int | None = None):
    """Quantize one layer at a time (every other layer float) and measure each one's accuracy drop.

    Args:
        model: a tf_keras model (not modified).
        data: accuracy is measured on its held-out test split.
        bits: one bit width or a list of them (one row per layer and bit width).
        scheme, granularity, fractional_bits: as in :class:`QuantSpec`.

    Returns:
        A pandas DataFrame, one row per (layer, bits), in model order, with columns ``layer``,
        ``layer_type``, ``weights`` (kernel values quantized), ``bits``, ``scheme``,
        ``granularity``, ``float_accuracy``, ``accuracy`` (fractions in [0, 1]) and
        ``accuracy_drop_points`` (percentage points, positive = worse).

    Raises:
        ValueError: bad bits/scheme/granularity, a model with nothing to quantize or that does
            not fit the data.

    Example:
        >>> frame = layer_sensitivity(model, data, bits=[2, 4])
        >>> frame.sort_values("accuracy_drop_points", ascending=False).head()
    """
    import pandas as pd

    _check_model(model)
    _check_data(data)
    bit_widths = _bits_list(bits)
    for width in bit_widths:  # validates scheme/granularity/fractional_bits for every width up front
        QuantSpec(bits=width, scheme=scheme, granularity=granularity, fractional_bits=fractional_bits)
    check_model_fits(model, data)
    _chosen_layers(model, None)
    evaluator = SimulationEvaluator(model, data.x_test, data.y_test)
    rows = []
    for layer in evaluator.layers:
        weights = sum(v.size for (name, _), v in evaluator.float_values.items() if name == layer.name)
        for width in bit_widths:
            spec = QuantSpec(bits=width, scheme=scheme, granularity=granularity,
                             fractional_bits=fractional_bits, layers=(layer.name,))
            value = evaluator.accuracy_for(spec)
            rows.append({"layer": layer.name, "layer_type": type(layer).__name__, "weights": int(weights),
                         "bits": width, "scheme": scheme, "granularity": granularity,
                         "float_accuracy": evaluator.float_accuracy, "accuracy": value,
                         "accuracy_drop_points": 100.0 * (evaluator.float_accuracy - value)})
    return pd.DataFrame(rows)


@dataclass
class MixedPrecisionPlan:
    """Bits per layer proposed by :func:`mixed_precision`, and what they measured.

    Attributes:
        bits: layer name -> bits (None: the layer stays float32 because no candidate fitted).
        scheme, granularity: the quantizer used for every layer.
        max_accuracy_drop: the budget in percentage points.
        search_split: the images the search measured on (``"train"``: a sample of the training
            split, so the test split stays held out for the final figure).
        search_accuracy_drop_points: the drop on the search images.
        float_accuracy: float model's test accuracy.
        accuracy: the proposal's measured test accuracy.
        accuracy_drop_points: ``100 * (float_accuracy - accuracy)``.
        met: whether the measured test drop is within the budget.
        average_bits: kernel bits averaged over kernel values (float32 layers count 32).
        packed_bytes: ideal packed size of the model under the plan (see :func:`packed_weight_bytes`).
        evaluations: simulated accuracies computed during the search.
        model: the simulated model (a new Keras model).
    """

    bits: dict
    scheme: str
    granularity: str
    max_accuracy_drop: float
    search_split: str
    search_accuracy_drop_points: float
    float_accuracy: float
    accuracy: float
    accuracy_drop_points: float
    met: bool
    average_bits: float
    packed_bytes: float
    evaluations: int
    model: object = None

    def to_frame(self):
        """One row per layer: layer, bits."""
        import pandas as pd

        return pd.DataFrame([{"layer": k, "bits": v if v is not None else 32} for k, v in self.bits.items()])


def mixed_precision(model, data: Dataset, max_accuracy_drop: float = 0.5, *,
                    candidate_bits: Iterable[int] = (2, 3, 4, 5, 6, 8), scheme: str = "symmetric",
                    granularity: str = "per_channel", search_split: str = "train",
                    search_images: int = 2000, seed: int = 0) -> MixedPrecisionPlan:
    """Propose bits per layer so the accuracy drop stays within ``max_accuracy_drop`` points.

    Greedy search: layers are visited from the most to the fewest weights (where bits save the
    most); each takes the lowest candidate bit width for which the whole model, with the choices
    made so far, stays within the budget on the search images. The proposal is then measured
    once on the held-out test split, and ``met`` says whether it is within budget there too.

    Args:
        model: a tf_keras model (not modified).
        data: the data set.
        max_accuracy_drop: the budget in percentage POINTS (0.5 means 0.5 points), 0 to 100.
        candidate_bits: bit widths to try (1 to 16).
        scheme, granularity: the quantizer (as in :class:`QuantSpec`).
        search_split: ``"train"`` (default; a sample of ``search_images`` training images, so
            the test split is not used to choose) or ``"test"``.
        search_images: size of the training sample.
        seed: picks the sample.

    Returns:
        A :class:`MixedPrecisionPlan`.

    Raises:
        ValueError: a budget outside [0, 100], bad candidate bits, scheme or granularity.

    Example:
        >>> plan = mixed_precision(model, data, max_accuracy_drop=0.5)
        >>> plan.bits, plan.accuracy_drop_points, plan.met
    """
    _check_model(model)
    _check_data(data)
    if isinstance(max_accuracy_drop, bool) or not isinstance(max_accuracy_drop, (int, float)) \
            or not 0 <= max_accuracy_drop <= 100:
        raise ValueError(f"max_accuracy_drop is {max_accuracy_drop!r}; it must be a number of percentage "
                         "points from 0 to 100 (0.5 means half a point)")
    candidates = sorted(set(_bits_list(candidate_bits)))
    for width in candidates:
        QuantSpec(bits=width, scheme=scheme, granularity=granularity)
    if search_split not in ("train", "test"):
        raise ValueError(f"search_split is {search_split!r}; choose 'train' or 'test'")
    check_model_fits(model, data)
    _chosen_layers(model, None)
    if search_split == "train":
        rng = np.random.default_rng(seed)
        index = np.sort(rng.choice(len(data.x_train), size=min(int(search_images), len(data.x_train)),
                                   replace=False))
        search = SimulationEvaluator(model, data.x_train[index], data.y_train[index])
    else:
        search = SimulationEvaluator(model, data.x_test, data.y_test)
    cache: dict[tuple[str, int], dict] = {}

    def arrays_for(layer: str, width: int) -> dict:
        if (layer, width) not in cache:
            cache[(layer, width)] = search.quantize(QuantSpec(bits=width, scheme=scheme, granularity=granularity,
                                                              layers=(layer,)))
        return cache[(layer, width)]

    sizes = {layer.name: sum(v.size for (n, _), v in search.float_values.items() if n == layer.name)
             for layer in search.layers}
    order = sorted(sizes, key=lambda name: -sizes[name])
    chosen: dict[str, int | None] = {name: None for name in search.layer_names}
    evaluations = 0
    search_drop = 0.0
    for name in order:
        for width in candidates:
            trial = {**chosen, name: width}
            arrays = {}
            for layer_name, layer_bits in trial.items():
                if layer_bits is not None:
                    arrays.update(arrays_for(layer_name, layer_bits))
            value = search.accuracy(arrays)
            evaluations += 1
            drop = 100.0 * (search.float_accuracy - value)
            if drop <= max_accuracy_drop:
                chosen[name] = width
                search_drop = drop
                break
    final_arrays = {}
    for layer_name, layer_bits in chosen.items():
        if layer_bits is not None:
            final_arrays.update(arrays_for(layer_name, layer_bits))
    result_model = _with_weights(model, final_arrays)
    compile_for_classification(result_model)
    from .models import accuracy as keras_accuracy

    float_accuracy = keras_accuracy(model, data)
    value = keras_accuracy(result_model, data)
    total_values = sum(sizes.values())
    average = sum(sizes[n] * (b if b is not None else 32) for n, b in chosen.items()) / max(1, total_values)
    drop = 100.0 * (float_accuracy - value)
    return MixedPrecisionPlan(
        bits=chosen, scheme=scheme, granularity=granularity, max_accuracy_drop=float(max_accuracy_drop),
        search_split=search_split, search_accuracy_drop_points=search_drop, float_accuracy=float_accuracy,
        accuracy=value, accuracy_drop_points=drop, met=drop <= max_accuracy_drop + 1e-9,
        average_bits=float(average), packed_bytes=packed_weight_bytes(model, final_arrays),
        evaluations=evaluations, model=result_model)


def distinct_values(values) -> int:
    """How many distinct values an array holds (what quantization and clustering bound)."""
    return int(np.unique(np.asarray(values)).size)


def bits_needed(count: int) -> int:
    """Bits needed to index ``count`` distinct values (``ceil(log2(count))``, at least 1)."""
    return max(1, math.ceil(math.log2(max(1, count))))


__all__ = [
    "QuantSpec", "SCHEMES", "GRANULARITIES", "PTQ_MODES", "QuantizedArray", "quantize_array",
    "quantize_weights", "quantizable_weights", "has_quantizable_weights", "channel_axes", "simulate",
    "FakeQuantActivation", "SimulationEvaluator", "packed_weight_bytes", "post_training",
    "AwareTrainingResult", "check_quantization_aware", "aware_training", "layer_sensitivity",
    "MixedPrecisionPlan", "mixed_precision", "distinct_values", "bits_needed",
]
