"""Soft targets: the logits of any classifier, softening with a temperature, entropy, and the teacher's soft targets."""

from __future__ import annotations

import math

import numpy as np

from .._keras import keras, tf
from ..models import (
    outputs_logits,
    predict_logits,
)

# ---------------------------------------------------------------------------------------------
# Logits of any classifier


class _DenseLogits(keras.layers.Layer):
    """``x @ kernel + bias`` of an existing Dense layer: its output before the activation.

    It holds the Dense layer itself, so the variables are shared (not copied): gradients reach
    the original kernel and bias.
    """

    def __init__(self, dense: keras.layers.Dense, **kwargs):
        super().__init__(name=f"{dense.name}_logits", **kwargs)
        self.dense = dense

    def call(self, inputs):
        outputs = tf.tensordot(inputs, self.dense.kernel, axes=1)
        if self.dense.use_bias:
            outputs = outputs + self.dense.bias
        return outputs


def logits_model(model: keras.Model) -> keras.Model:
    """A view of ``model`` that outputs logits, sharing its weights (nothing is copied).

    A model that already outputs logits (every zoo model) is returned as it is. When the last
    layer applies a softmax, the view stops beneath it: a separate ``Softmax`` or
    ``Activation("softmax")`` layer is skipped (its input is the logits), and a
    ``Dense(activation="softmax")`` layer is replaced by its kernel and bias applied to its
    input.

    Args:
        model: a single-input tf_keras classifier.

    Returns:
        A tf_keras model with the same input whose output is ``model``'s pre-softmax logits.

    Raises:
        ValueError: the softmax sits in a layer whose logits cannot be recovered.

    Example:
        >>> logits = logits_model(loaded_classifier)(images)
    """
    if outputs_logits(model):
        return model
    last = model.layers[-1]
    try:
        inputs = model.inputs
        last_input = last.input
    except (AttributeError, ValueError) as error:
        raise ValueError(
            f"model {model.name!r} ends in a softmax, but its last layer {last.name!r} is not called "
            "once in a graph, so the logits beneath it cannot be found; give a model that outputs logits"
        ) from error
    if isinstance(last, keras.layers.Softmax) or isinstance(last, keras.layers.Activation):
        return keras.Model(inputs, last_input, name=f"{model.name}_logits")
    if isinstance(last, keras.layers.Dense):
        return keras.Model(inputs, _DenseLogits(last)(last_input), name=f"{model.name}_logits")
    raise ValueError(
        f"model {model.name!r} ends in a {type(last).__name__} layer with a softmax activation; "
        "compresslab can recover logits beneath Dense, Softmax and Activation layers only"
    )


def _finite_real(value) -> bool:
    return (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
            and math.isfinite(value))


def _check_temperature(value, what: str = "temperature") -> float:
    """``value`` as a float if it is a finite number > 0 (an infinite T silently trains a NaN student)."""
    if not (_finite_real(value) and value > 0):
        raise ValueError(f"{what} is {value!r}; it must be a finite number > 0")
    return float(value)


def _check_alpha(value) -> float:
    if not (_finite_real(value) and 0 <= value <= 1):
        raise ValueError(f"alpha is {value!r}; it must be a finite number in [0, 1]")
    return float(value)


def soften(logits, temperature: float) -> np.ndarray:
    """``softmax(logits / temperature)`` over the last axis, in NumPy (fast, for sliders).

    Example:
        >>> soften([2.0, 1.0, 0.0], temperature=10).round(3)
        array([0.367, 0.332, 0.301])
    """
    temperature = _check_temperature(temperature)
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled = scaled - scaled.max(axis=-1, keepdims=True)  # avoids overflow; softmax is shift-invariant
    exponentials = np.exp(scaled)
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def entropy_bits(probabilities) -> np.ndarray:
    """Shannon entropy in bits over the last axis: 0 for a one-hot distribution, log2(K) for uniform.

    Example:
        >>> float(entropy_bits([0.5, 0.5]))
        1.0
    """
    p = np.asarray(probabilities, dtype=np.float64)
    return -(p * np.log2(np.where(p > 0, p, 1.0))).sum(axis=-1)


def soft_targets(teacher: keras.Model, images, temperatures) -> np.ndarray:
    """The teacher's distribution ``softmax(logits / T)`` at each temperature.

    At ``T = 1`` a confident teacher puts nearly all the mass on one class; as ``T`` grows the
    small probabilities of the other classes (which digits this one resembles: the "dark
    knowledge") become visible.

    Args:
        teacher: a tf_keras classifier (logits or softmax output: see :func:`logits_model`).
        images: one image ``(H, W, C)`` or a batch ``(N, H, W, C)``.
        temperatures: one temperature or a sequence of them, each > 0.

    Returns:
        ``(len(temperatures), N, num_classes)`` probabilities, or ``(len(temperatures),
        num_classes)`` for a single image. A scalar temperature drops the first axis.

    Raises:
        ValueError: a temperature <= 0, or images whose shape does not fit the teacher.

    Example:
        >>> soft_targets(teacher, data.x_test[0], [1, 5, 20]).shape
        (3, 10)
    """
    scalar = np.ndim(temperatures) == 0
    values = [temperatures] if scalar else list(temperatures)
    if not values:
        raise ValueError("temperatures is empty; give at least one temperature > 0")
    for value in values:
        _check_temperature(value, "every temperature")
    images = np.asarray(images, dtype=np.float32)
    expected = tuple(teacher.input_shape[1:])
    single = images.ndim == len(expected)
    batch = images[None] if single else images
    if batch.ndim != len(expected) + 1 or any(d is not None and d != e for d, e in zip(expected, batch.shape[1:])):
        raise ValueError(f"images have shape {images.shape}; the teacher expects {expected} or (N, *{expected})")
    logits = predict_logits(logits_model(teacher), batch)
    result = np.stack([soften(logits, value) for value in values])
    if single:
        result = result[:, 0]
    return result[0] if scalar else result
