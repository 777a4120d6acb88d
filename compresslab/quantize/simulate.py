"""Simulated quantization: fake-quantize a model's kernels (and activations) into a NEW Keras model.

Owns which weights are quantized (:data:`KERNEL_ATTRIBUTES`, :func:`quantizable_weights`,
:func:`channel_axes`), :func:`quantize_weights`, :func:`simulate`, the
:class:`FakeQuantActivation` layer, and :class:`SimulationEvaluator`, the slider-fast accuracy of
quantized kernels (a thin user of :class:`compresslab.evaluate.LiveEvaluator`).
"""

from __future__ import annotations

import numpy as np

from .._keras import keras, tf
from ..data import Dataset
from ..evaluate import LiveEvaluator
from ..layers import kernel_variables
from ..models import (
    check_model_fits,
    clone,
    compile_for_classification,
)
from ..specs import resolve_layers
from .arrays import QuantizedArray, quantize_array
from .spec import QuantSpec, _as_spec, _check_data, _check_model

# The kernel attributes simulate() quantizes (compresslab.layers names every kernel; embeddings
# are not simulated here). Biases, batch-norm statistics and every other weight stay float32: in
# an int8 TFLite file biases are int32 with scale s_input * s_weight, so keeping them float is the
# faithful simulation of what deploys.
KERNEL_ATTRIBUTES = ("kernel", "depthwise_kernel", "pointwise_kernel")


# ---------------------------------------------------------------------------------------------
# Which weights of a model are quantized


def quantizable_weights(layer) -> list[tuple[str, object]]:
    """``(attribute, variable)`` pairs of ``layer`` that :func:`simulate` quantizes (its kernels)."""
    return [(attribute, variable) for attribute, variable in kernel_variables(layer)
            if attribute in KERNEL_ATTRIBUTES]


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


def quantize_weights(model, spec: QuantSpec) -> dict[tuple[str, str], QuantizedArray]:
    """The quantized kernels of ``model`` under ``spec``, keyed by ``(layer name, attribute)`` (numpy only).

    Example:
        >>> arrays = quantize_weights(model, QuantSpec(bits=4))
        >>> arrays[("conv1", "kernel")].scale
    """
    model = _check_model(model)
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
    model = _check_model(model)
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

    Holds ONE working clone of the model, the test tensors and a compiled ``tf.function`` (a
    :class:`~compresslab.evaluate.LiveEvaluator` over the quantizable kernels); each call
    quantizes the kernels with numpy and assigns them to the clone's variables (no cloning, no
    retracing). Used by :class:`~compresslab.widgets.QuantizationLab`, :func:`layer_sensitivity`
    and :func:`mixed_precision`.

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
        model = _check_model(model)
        self.live = LiveEvaluator(model, x, y, batch_size, kernels=quantizable_weights)
        self.model = self.live.model
        self.layers = self.live.layers
        if not self.layers:
            _chosen_layers(model, None)  # raises the "nothing to quantize" error
        self.variables = self.live.variables
        self.float_values = self.live.originals
        self._axes = {(layer.name, attribute): channel_axes(layer, attribute)
                      for layer in self.layers for attribute, _ in quantizable_weights(layer)}
        self.y = np.asarray(y)
        self.count = self.live.count
        self.float_accuracy = self.accuracy({})

    @property
    def layer_names(self) -> list[str]:
        return self.live.layer_names

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
        # Keys that are not quantizable kernels are ignored, as they always were.
        self.live.assign({key: value.values if isinstance(value, QuantizedArray) else value
                          for key, value in arrays.items() if key in self.variables and value is not None})
        return self.live.accuracy()

    def accuracy_for(self, spec: QuantSpec) -> float:
        """Accuracy of the model with weights simulated under ``spec`` (weights only)."""
        return self.accuracy(self.quantize(spec))
