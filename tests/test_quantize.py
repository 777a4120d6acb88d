"""Tests of compresslab.quantize: spec validation, the numpy formulas, simulate, PTQ, QAT, sensitivity."""

from __future__ import annotations

import numpy as np
import pytest

import compresslab as cl
from compresslab import quantize as q
from compresslab._keras import keras

# ---------------------------------------------------------------------------------------------
# QuantSpec


@pytest.mark.parametrize("changes, field", [
    ({"bits": 0}, "bits"), ({"bits": 17}, "bits"), ({"bits": 3.5}, "bits"), ({"bits": True}, "bits"),
    ({"scheme": "logarithmic"}, "scheme"), ({"granularity": "per_row"}, "granularity"),
    ({"scheme": "fixed_point"}, "fractional_bits"),
    ({"scheme": "fixed_point", "fractional_bits": 40}, "fractional_bits"),
    ({"scheme": "fixed_point", "fractional_bits": 4, "granularity": "per_channel"}, "granularity"),
    ({"fractional_bits": 3}, "fractional_bits"),
    ({"activation_bits": 1}, "activation_bits"), ({"layers": "conv1"}, "layers"), ({"layers": ()}, "layers"),
])
def test_quant_spec_rejects_bad_values_naming_the_field(changes, field):
    with pytest.raises(ValueError, match=rf"QuantSpec\.{field} is"):
        q.QuantSpec(**changes)


def test_quant_spec_round_trips_and_is_hashable():
    spec = q.QuantSpec(bits=4, scheme="asymmetric", granularity="per_channel", layers=["conv1"])
    assert spec.layers == ("conv1",)
    assert q.QuantSpec.from_json(spec.to_json()) == spec
    assert {spec: 1}[q.QuantSpec.from_dict(spec.to_dict())] == 1
    assert cl.QuantSpec is q.QuantSpec
    assert "fixed-point Q3.5" in q.QuantSpec(bits=8, scheme="fixed_point", fractional_bits=5).label


# ---------------------------------------------------------------------------------------------
# The numpy formulas


def _random_kernel(seed=0, shape=(3, 3, 4, 6)):
    rng = np.random.default_rng(seed)
    # channels of very different ranges, as in real kernels
    return (rng.normal(size=shape) * np.geomspace(0.01, 1.0, shape[-1])).astype(np.float32)


@pytest.mark.parametrize("scheme", ["symmetric", "asymmetric", "fixed_point"])
@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8, 12, 16])
def test_a_tensor_never_has_more_than_2_to_the_bits_distinct_values(scheme, bits):
    values = _random_kernel(bits, shape=(50, 40, 30))  # 60,000 values: more than 2^15
    fractional = bits - 1 if scheme == "fixed_point" else None
    result = q.quantize_array(values, bits, scheme, fractional_bits=fractional)
    assert np.unique(result.values).size <= 2 ** bits
    assert np.unique(result.codes).size <= 2 ** bits
    assert result.values.shape == values.shape and result.values.dtype == np.float32
    if scheme != "fixed_point":
        assert np.unique(result.values).size >= min(2 ** bits - 1, 2)  # the grid is actually used


@pytest.mark.parametrize("scheme", ["symmetric", "asymmetric"])
@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_per_channel_has_at_most_2_to_the_bits_values_per_channel(scheme, bits):
    values = _random_kernel(bits)
    result = q.quantize_array(values, bits, scheme, "per_channel")
    assert result.groups == values.shape[-1] and result.scale.shape == (values.shape[-1],)
    for channel in range(values.shape[-1]):
        assert np.unique(result.values[..., channel]).size <= 2 ** bits
    assert np.unique(result.codes).size <= 2 ** bits


def test_symmetric_formula_by_hand():
    values = np.array([-1.0, -0.26, 0.0, 0.1, 0.5], np.float32)
    result = q.quantize_array(values, bits=3)  # levels -3..3, scale 1/3
    np.testing.assert_allclose(result.scale, [1 / 3])
    np.testing.assert_array_equal(result.codes, [-3, -1, 0, 0, 2])
    np.testing.assert_allclose(result.values, np.array([-3, -1, 0, 0, 2]) / 3, rtol=1e-6)
    np.testing.assert_allclose(result.levels(), np.arange(-3, 4) / 3, rtol=1e-6)


def test_one_bit_symmetric_is_the_sign_times_the_mean_magnitude():
    values = np.array([-2.0, -1.0, 1.0, 4.0], np.float32)
    result = q.quantize_array(values, bits=1)
    np.testing.assert_allclose(result.values, [-2.0, -2.0, 2.0, 2.0])


def test_asymmetric_formula_keeps_zero_exact_and_uses_the_zero_point():
    values = np.array([-0.3, 0.0, 0.3, 0.9], np.float32)
    result = q.quantize_array(values, bits=2, scheme="asymmetric")  # range [-0.3, 0.9], 3 steps of 0.4
    np.testing.assert_allclose(result.scale, [0.4], rtol=1e-6)
    assert result.zero_point[0] == 1  # round(0.3 / 0.4) = round(0.75)
    np.testing.assert_array_equal(result.codes, [0, 1, 2, 3])
    assert result.values[1] == 0.0
    np.testing.assert_allclose(result.values, [-0.4, 0.0, 0.4, 0.8], atol=1e-6)
    positive = q.quantize_array(np.array([0.5, 1.0, 2.0], np.float32), bits=4, scheme="asymmetric")
    assert positive.zero_point[0] == 0 and np.isclose(positive.scale[0], 2.0 / 15)


def test_fixed_point_is_the_textbook_formula_with_clipping():
    values = np.array([0.3, -0.7, 0.99, 5.0, -5.0], np.float32)
    result = q.quantize_array(values, bits=4, scheme="fixed_point", fractional_bits=2)
    # round(x * 4) clipped to [-8, 7], divided by 4
    expected = np.clip(np.round(values * 4), -8, 7) / 4
    np.testing.assert_allclose(result.values, expected)
    np.testing.assert_allclose(result.values, [0.25, -0.75, 1.0, 1.75, -2.0])


def test_per_channel_error_is_smaller_than_per_tensor_on_channels_of_different_ranges():
    values = _random_kernel(3)
    per_tensor = q.quantize_array(values, 4, "symmetric", "per_tensor").values
    per_channel = q.quantize_array(values, 4, "symmetric", "per_channel").values
    assert np.mean((per_channel - values) ** 2) < 0.5 * np.mean((per_tensor - values) ** 2)


def test_channel_axes_of_depthwise_and_transposed_kernels():
    depthwise = keras.layers.DepthwiseConv2D(3, depth_multiplier=2)
    depthwise.build((None, 8, 8, 3))
    transposed = keras.layers.Conv2DTranspose(5, 3)
    transposed.build((None, 8, 8, 3))
    assert q.channel_axes(depthwise, "depthwise_kernel") == (-2, -1)
    assert q.channel_axes(transposed, "kernel") == (-2,)
    kernel = depthwise.depthwise_kernel.numpy()
    result = q.quantize_array(kernel, 4, "symmetric", "per_channel", channel_axes=(-2, -1))
    assert result.groups == 6  # 3 input channels x multiplier 2
    for i in range(3):
        for j in range(2):
            top = np.abs(kernel[:, :, i, j]).max()
            assert np.isclose(np.abs(result.values[:, :, i, j]).max(), top, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# simulate


def test_simulate_returns_a_new_model_and_quantizes_only_kernels(trained_student):
    before = [w.copy() for w in trained_student.get_weights()]
    spec = q.QuantSpec(bits=3)
    result = q.simulate(trained_student, spec)
    assert result is not trained_student
    for old, new in zip(before, trained_student.get_weights()):
        np.testing.assert_array_equal(old, new)
    for layer in result.layers:
        original = trained_student.get_layer(layer.name)
        if q.has_quantizable_weights(layer):
            assert np.unique(layer.kernel.numpy()).size <= 2 ** 3
            np.testing.assert_array_equal(layer.bias.numpy(), original.bias.numpy())  # biases stay float
    assert result.quantization["layers"] == ["conv1", "conv2", "dense1", "logits"]


def test_simulate_only_the_named_layers(trained_student):
    result = q.simulate(trained_student, q.QuantSpec(bits=2, layers=("conv1",)))
    assert np.unique(result.get_layer("conv1").kernel.numpy()).size <= 4
    np.testing.assert_array_equal(result.get_layer("dense1").kernel.numpy(),
                                  trained_student.get_layer("dense1").kernel.numpy())


def test_simulated_accuracy_falls_with_bits_and_8_bit_per_channel_matches_float(trained_student, digits):
    float_accuracy = cl.models.accuracy(trained_student, digits)
    eight = cl.models.accuracy(q.simulate(trained_student, q.QuantSpec(bits=8, granularity="per_channel")), digits)
    two = cl.models.accuracy(q.simulate(trained_student, q.QuantSpec(bits=2)), digits)
    assert abs(eight - float_accuracy) <= 0.01
    assert two < eight


def test_evaluator_agrees_with_simulate(trained_student, small_digits):
    evaluator = q.SimulationEvaluator(trained_student, small_digits.x_test, small_digits.y_test, batch_size=64)
    assert evaluator.float_accuracy == pytest.approx(cl.models.accuracy(trained_student, small_digits))
    for spec in [q.QuantSpec(bits=2), q.QuantSpec(bits=3, scheme="asymmetric", granularity="per_channel"),
                 q.QuantSpec(bits=4, scheme="fixed_point", fractional_bits=3, layers=("dense1",))]:
        expected = cl.models.accuracy(q.simulate(trained_student, spec), small_digits)
        assert evaluator.accuracy_for(spec) == pytest.approx(expected)
    # and back to float: no kernel left quantized
    assert evaluator.accuracy({}) == pytest.approx(evaluator.float_accuracy)


def test_simulate_with_activation_bits(trained_student, small_digits):
    with pytest.raises(ValueError, match="activation_bits needs data"):
        q.simulate(trained_student, q.QuantSpec(bits=8, activation_bits=8))
    result = q.simulate(trained_student, q.QuantSpec(bits=8, activation_bits=8), small_digits,
                        calibration_images=128)
    fake = [layer for layer in result.layers if isinstance(layer, q.FakeQuantActivation)]
    assert len(fake) == 4
    outputs = keras.Model(result.inputs, fake[0].output)(small_digits.x_test[:16]).numpy()
    assert np.unique(outputs).size <= 2 ** 8
    float_accuracy = cl.models.accuracy(trained_student, small_digits)
    assert cl.models.accuracy(result, small_digits) >= float_accuracy - 0.03
    two = q.simulate(trained_student, q.QuantSpec(bits=8, activation_bits=2), small_digits, calibration_images=128)
    assert cl.models.accuracy(two, small_digits) < float_accuracy


def test_simulate_bad_inputs_fail_before_work(trained_student):
    with pytest.raises(ValueError, match=r"\['nope'\] do not exist.*conv1"):
        q.simulate(trained_student, q.QuantSpec(bits=4, layers=("nope",)))
    with pytest.raises(ValueError, match="cannot be used here"):
        q.simulate(trained_student, q.QuantSpec(bits=4, layers=("pool1",)))
    inputs = keras.Input((10,))
    no_kernels = keras.Model(inputs, keras.layers.Activation("softmax")(inputs))
    with pytest.raises(ValueError, match="nothing to quantize"):
        q.simulate(no_kernels, q.QuantSpec(bits=4))
    with pytest.raises(TypeError, match="QuantSpec"):
        q.simulate(trained_student, 4)
    with pytest.raises(ValueError, match="no field"):
        q.simulate(trained_student, {"bits": 4, "colour": "red"})
    with pytest.raises(TypeError, match=r"must be a Keras classifier \(a tf_keras or Keras 3 Model\)"):
        q.simulate("model.h5", q.QuantSpec(bits=4))


def test_packed_weight_bytes(trained_student):
    arrays = q.quantize_weights(trained_student, q.QuantSpec(bits=4))
    packed = q.packed_weight_bytes(trained_student, arrays)
    params = trained_student.count_params()
    kernels = sum(a.values.size for a in arrays.values())
    assert packed == pytest.approx((kernels * 4 + len(arrays) * 64 + (params - kernels) * 32) / 8)
    assert packed < 4 * params / 4


# ---------------------------------------------------------------------------------------------
# Post-training quantization (LiteRT)


def test_post_training_modes_measured_in_litert(trained_student, small_digits):
    float_artifact = cl.tflite.convert(trained_student, "float32")
    float_accuracy = cl.models.accuracy(trained_student, small_digits)
    sizes = {}
    for mode in ("dynamic", "float16", "int8"):
        artifact = q.post_training(trained_student, small_digits, mode, representative_images=100)
        assert artifact.mode == mode and artifact.info["ptq_mode"] == mode
        assert abs(artifact.accuracy(small_digits) - float_accuracy) <= 0.03
        sizes[mode] = artifact.size_bytes
    assert sizes["float16"] < 0.7 * float_artifact.size_bytes
    assert sizes["int8"] < 0.5 * float_artifact.size_bytes
    int8 = q.post_training(trained_student, small_digits, "int8", representative_images=50)
    details = int8.interpreter().get_input_details()[0]
    assert details["dtype"] == np.int8
    assert int8.interpreter().get_output_details()[0]["dtype"] == np.int8
    assert int8.info["representative_split"] == "train" and int8.info["representative_images"] == 50


def test_post_training_bad_inputs(trained_student, small_digits, digits):
    with pytest.raises(ValueError, match="mode is 'int4'"):
        q.post_training(trained_student, small_digits, "int4")
    with pytest.raises(TypeError, match="Dataset"):
        q.post_training(trained_student, small_digits.x_train, "int8")
    wrong = cl.Dataset.from_arrays(digits.x_train[:20, :14, :14], digits.y_train[:20],
                                   digits.x_test[:20, :14, :14], digits.y_test[:20],
                                   class_names=digits.class_names)
    with pytest.raises(ValueError, match="expects inputs of shape"):
        q.post_training(trained_student, wrong, "int8")


# ---------------------------------------------------------------------------------------------
# Quantization-aware training


def test_aware_training_int8_artifact(trained_student, small_digits):
    float_accuracy = cl.models.accuracy(trained_student, small_digits)
    before = [w.copy() for w in trained_student.get_weights()]
    result = q.aware_training(trained_student, small_digits, epochs=1, representative_images=50)
    assert not result.simulation_only and result.bits == 8
    assert result.artifact.mode == "int8"
    assert result.artifact.interpreter().get_input_details()[0]["dtype"] == np.int8
    assert abs(result.artifact.accuracy(small_digits) - float_accuracy) <= 0.04
    assert len(result.history["loss"]) == 1
    for old, new in zip(before, trained_student.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_aware_training_n_bit_is_simulation_only(trained_student, small_digits):
    result = q.aware_training(trained_student, small_digits, epochs=1, bits=4)
    assert result.simulation_only and result.artifact is None
    assert 0.3 < result.keras_accuracy <= 1.0


def test_aware_training_names_a_layer_tfmot_cannot_quantize(small_digits):
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.LayerNormalization(name="norm")(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="logits")(x))
    with pytest.raises(ValueError, match=r"layer 'norm' \(LayerNormalization\) cannot be quantized.*What to do"):
        q.aware_training(model, small_digits, epochs=1)


def test_aware_training_rejects_nested_and_subclassed_models(trained_student, small_digits):
    inputs = keras.Input((28, 28, 1))
    nested = keras.Model(inputs, trained_student(inputs), name="outer")
    with pytest.raises(ValueError, match="nested model.*flatten it"):
        q.aware_training(nested, small_digits, epochs=1)
    with pytest.raises(ValueError, match="nested models.*flatten it"):
        q.simulate(nested, q.QuantSpec(bits=4))

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.flatten = keras.layers.Flatten()
            self.dense = keras.layers.Dense(10)

        def call(self, x):
            return self.dense(self.flatten(x))

    model = Subclassed()
    model(small_digits.x_test[:2])
    with pytest.raises(ValueError, match="subclassed"):
        q.check_quantization_aware(model)


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "epochs is 0"), ({"epochs": 1, "bits": 16}, "bits is 16"),
    ({"epochs": 1, "bits": 1}, "bits is 1"), ({"epochs": 1, "learning_rate": 0}, "learning_rate"),
])
def test_aware_training_bad_arguments(trained_student, small_digits, kwargs, message):
    with pytest.raises(ValueError, match=message):
        q.aware_training(trained_student, small_digits, **kwargs)


# ---------------------------------------------------------------------------------------------
# Sensitivity and mixed precision


def test_layer_sensitivity_one_layer_at_a_time(trained_student, small_digits):
    frame = q.layer_sensitivity(trained_student, small_digits, bits=[1, 8])
    assert list(frame.columns) == ["layer", "layer_type", "weights", "bits", "scheme", "granularity",
                                   "float_accuracy", "accuracy", "accuracy_drop_points"]
    assert list(frame["layer"].unique()) == ["conv1", "conv2", "dense1", "logits"]
    assert len(frame) == 8
    one = frame[frame.bits == 1].set_index("layer")["accuracy_drop_points"]
    eight = frame[frame.bits == 8].set_index("layer")["accuracy_drop_points"]
    assert (eight.abs() <= 2.0).all()
    assert one.max() > eight.max()
    # each row really is that single layer quantized
    row = frame[(frame.layer == "conv1") & (frame.bits == 1)].iloc[0]
    alone = q.simulate(trained_student, q.QuantSpec(bits=1, granularity="per_channel", layers=("conv1",)))
    assert row["accuracy"] == pytest.approx(cl.models.accuracy(alone, small_digits))


def test_layer_sensitivity_bad_bits(trained_student, small_digits):
    with pytest.raises(ValueError, match="from 1 to 16"):
        q.layer_sensitivity(trained_student, small_digits, bits=[4, 20])


def test_mixed_precision_respects_the_budget_and_verifies_on_test(trained_student, small_digits):
    plan = q.mixed_precision(trained_student, small_digits, max_accuracy_drop=1.0, candidate_bits=(2, 4, 8),
                             search_images=300)
    assert set(plan.bits) == {"conv1", "conv2", "dense1", "logits"}
    assert all(b in (2, 4, 8, None) for b in plan.bits.values())
    assert plan.search_accuracy_drop_points <= 1.0
    assert plan.accuracy == pytest.approx(cl.models.accuracy(plan.model, small_digits))
    assert plan.met == (plan.accuracy_drop_points <= 1.0)
    assert plan.average_bits < 32
    generous = q.mixed_precision(trained_student, small_digits, max_accuracy_drop=100, candidate_bits=(2, 4))
    assert set(generous.bits.values()) == {2}
    assert generous.evaluations == 4


def test_mixed_precision_chooses_on_the_validation_split_when_there_is_one(trained_student, small_digits, monkeypatch):
    assert q.mixed_precision(trained_student, small_digits, candidate_bits=(8,), search_images=50).search_split == "train"
    with pytest.raises(ValueError, match="has no validation split; carve one with data.with_validation"):
        q.mixed_precision(trained_student, small_digits, search_split="validation")
    with_val = small_digits.with_validation(0.2, seed=0)
    seen = []
    original = q.SimulationEvaluator.__init__

    def spy(self, model, x, y, **kwargs):
        seen.append(len(x))
        original(self, model, x, y, **kwargs)

    monkeypatch.setattr(q.SimulationEvaluator, "__init__", spy)
    plan = q.mixed_precision(trained_student, with_val, candidate_bits=(8,), search_images=10_000)
    assert plan.search_split == "validation"
    assert seen[0] == len(with_val.x_val)  # the search measured on the whole validation split, not train or test


@pytest.mark.parametrize("budget", [-1, 101, "1%", True])
def test_mixed_precision_bad_budget(trained_student, small_digits, budget):
    with pytest.raises(ValueError, match="max_accuracy_drop"):
        q.mixed_precision(trained_student, small_digits, max_accuracy_drop=budget)


# ---------------------------------------------------------------------------------------------
# Real MNIST


@pytest.mark.slow
def test_eight_bit_per_channel_on_mnist_is_within_a_fifth_of_a_point(mnist, cache_dir):
    model = cl.baseline("seed_cnn", mnist, epochs=1, cache_dir=cache_dir, progress=False)
    evaluator = q.SimulationEvaluator(model, mnist.x_test, mnist.y_test)
    eight = evaluator.accuracy_for(q.QuantSpec(bits=8, granularity="per_channel"))
    assert abs(eight - evaluator.float_accuracy) <= 0.002
    assert evaluator.accuracy_for(q.QuantSpec(bits=2)) < eight


# ---------------------------------------------------------------------------------------------
# What a quantize entry point accepts, and where shared pieces live


def test_entry_points_refuse_what_is_not_a_tf_keras_classifier(trained_student, small_digits):
    with pytest.raises(TypeError, match=r"a Keras classifier \(a tf_keras or Keras 3 Model\); got str.*cl.load_model"):
        q.simulate("model.keras", q.QuantSpec(bits=4))
    with pytest.raises(TypeError, match="got dict"):
        q.post_training({"model": 1}, small_digits)
    inputs = keras.Input((28, 28, 1))
    features = keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs), name="features")
    for call in (lambda: q.simulate(features, q.QuantSpec(bits=4)),
                 lambda: q.SimulationEvaluator(features, small_digits.x_test, small_digits.y_test),
                 lambda: q.mixed_precision(features, small_digits)):
        with pytest.raises(ValueError, match=r"'features' is not a classifier: its output shape is \(None, 26, 26, 4\)"):
            call()


def test_mixed_precision_budget_is_in_points_and_small_budgets_are_accepted(trained_student, small_digits):
    with pytest.raises(ValueError, match="POINTS of accuracy from 0 to 100.*0.005 means 0.005 points"):
        q.mixed_precision(trained_student, small_digits, max_accuracy_drop=150)
    plan = q.mixed_precision(trained_student, small_digits, max_accuracy_drop=0.005, candidate_bits=(8,),
                             search_images=200)
    assert plan.max_accuracy_drop == 0.005 and plan.search_accuracy_drop_points <= 0.005


def test_simulation_evaluator_is_a_live_evaluator_over_quantizable_kernels(trained_student, small_digits):
    from compresslab.evaluate import LiveEvaluator
    from compresslab.sizes import entropy_bytes, packed_weight_bytes

    evaluator = q.SimulationEvaluator(trained_student, small_digits.x_test, small_digits.y_test)
    assert isinstance(evaluator.live, LiveEvaluator) and evaluator.model is evaluator.live.model
    assert set(evaluator.variables) == {(layer.name, attribute) for layer in trained_student.layers
                                        for attribute, _ in q.quantizable_weights(layer)}
    arrays = evaluator.quantize(q.QuantSpec(bits=2))
    assert evaluator.accuracy(arrays) == evaluator.live.accuracy()
    assert evaluator.accuracy({}) == evaluator.float_accuracy
    assert q.packed_weight_bytes is packed_weight_bytes
    assert entropy_bytes([np.zeros(3)]) == 0.0
