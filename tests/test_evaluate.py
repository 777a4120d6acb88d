"""Tests of compresslab.evaluate.LiveEvaluator: swapping kernels in a working copy and measuring accuracy."""

from __future__ import annotations

import numpy as np
import pytest

import compresslab as cl
from compresslab.evaluate import LiveEvaluator
from compresslab.layers import kernel_variables


def _keras_accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y))


def test_live_accuracy_matches_keras_and_the_input_model_is_untouched(trained_student, small_digits):
    x, y = small_digits.x_test, small_digits.y_test
    before = [w.copy() for w in trained_student.get_weights()]
    live = LiveEvaluator(trained_student, x, y, batch_size=64)
    assert live.accuracy() == pytest.approx(_keras_accuracy(trained_student, x, y))
    key = next(iter(live.variables))
    live.assign({key: np.zeros_like(live.originals[key])})
    zeroed = cl.models.clone(trained_student)
    getattr(zeroed.get_layer(key[0]), key[1]).assign(np.zeros_like(live.originals[key]))
    assert live.accuracy() == pytest.approx(_keras_accuracy(zeroed, x, y))
    assert live.accuracy() < 0.5  # a zeroed first kernel breaks the classifier
    assert all(np.array_equal(a, b) for a, b in zip(before, trained_student.get_weights()))


def test_assign_reverts_unlisted_kernels_update_keeps_them_and_reset_restores(trained_student, small_digits):
    live = LiveEvaluator(trained_student, small_digits.x_test, small_digits.y_test)
    float_accuracy = live.accuracy()
    first, second = list(live.variables)[:2]
    zeros = {key: np.zeros_like(live.originals[key]) for key in (first, second)}
    live.assign({first: zeros[first]})
    live.update({second: zeros[second]})
    assert np.all(live.variables[first].numpy() == 0) and np.all(live.variables[second].numpy() == 0)
    live.assign({second: zeros[second]})  # first is not listed: back to its original values
    assert np.array_equal(live.variables[first].numpy(), live.originals[first])
    live.reset()
    assert np.array_equal(live.variables[second].numpy(), live.originals[second])
    assert live.accuracy() == float_accuracy


def test_kernels_filter_and_bad_inputs(trained_student, small_digits):
    def only_dense(layer):
        return [(a, v) for a, v in kernel_variables(layer) if type(layer).__name__ == "Dense"]

    live = LiveEvaluator(trained_student, small_digits.x_test, small_digits.y_test, kernels=only_dense)
    assert live.layers and all(type(layer).__name__ == "Dense" for layer in live.layers)
    conv = next(layer.name for layer in trained_student.layers if "Conv" in type(layer).__name__)
    with pytest.raises(ValueError, match="not swappable weights"):
        live.assign({(conv, "kernel"): np.zeros(1)})
    with pytest.raises(TypeError, match=r"must be a Keras classifier \(a tf_keras or Keras 3 Model\); got str"):
        LiveEvaluator("model.keras", small_digits.x_test, small_digits.y_test)
    with pytest.raises(ValueError, match="same length"):
        LiveEvaluator(trained_student, small_digits.x_test, small_digits.y_test[:-1])
