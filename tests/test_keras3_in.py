"""Keras 3 model objects in: every entry point converts them once (verified) or refuses with one error.

The Keras 3 CNN is built and trained here, in the test process: Keras 3 (the ``keras`` package)
and tf_keras are separate packages and live side by side in one interpreter (compresslab computes
in tf_keras; ``modelio.as_tf_keras`` converts through a Keras 3 ``.keras`` file).
"""

from __future__ import annotations

import numpy as np
import pytest

import compresslab as cl
from compresslab import modelio
from compresslab._keras import keras as tf_keras

SHAPE = r"must be a Keras classifier \(a tf_keras or Keras 3 Model\); got "


@pytest.fixture(scope="module")
def keras3():
    return pytest.importorskip("keras", minversion="3")


@pytest.fixture(scope="module")
def keras3_cnn(keras3, digits):
    """A user's Keras 3 CNN: Conv2D, pooling, Dense softmax, trained one epoch on digits."""
    keras3.utils.set_random_seed(0)
    model = keras3.Sequential([
        keras3.Input((28, 28, 1)),
        keras3.layers.Conv2D(8, 3, activation="relu"),
        keras3.layers.MaxPooling2D(2),
        keras3.layers.Conv2D(8, 3, activation="relu"),
        keras3.layers.MaxPooling2D(2),
        keras3.layers.Flatten(),
        keras3.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(digits.x_train, digits.y_train, epochs=1, batch_size=16, verbose=0)
    return model


@pytest.fixture(scope="module")
def converted(keras3_cnn):
    return modelio.as_tf_keras(keras3_cnn)


def _keras3_outputs(model, x):
    return np.asarray(model(x, training=False))


def test_the_conversion_reproduces_keras3_and_happens_once(keras3_cnn, converted, digits, monkeypatch):
    assert isinstance(converted, tf_keras.Model) and not modelio.is_keras3_model(converted)
    assert modelio.is_keras3_model(keras3_cnn)
    x = digits.x_test[:128]
    diff = np.max(np.abs(converted(x, training=False).numpy() - _keras3_outputs(keras3_cnn, x)))
    assert diff <= 1e-5
    # The same object again is not converted again (the panel and measure() share one conversion).
    calls = []
    monkeypatch.setattr(modelio.convert, "_convert_object", lambda *a: calls.append(a))
    assert modelio.as_tf_keras(keras3_cnn) is converted
    assert calls == []
    assert modelio.as_tf_keras(converted) is converted  # a tf_keras model passes unchanged


def test_weights_changed_after_conversion_are_converted_again(keras3, digits):
    keras3.utils.set_random_seed(1)
    model = keras3.Sequential([keras3.Input((28, 28, 1)), keras3.layers.Flatten(),
                               keras3.layers.Dense(10, activation="softmax")])
    first = modelio.as_tf_keras(model)
    model.layers[-1].bias.assign(np.full(10, 0.5, np.float32))
    second = modelio.as_tf_keras(model)
    assert second is not first
    np.testing.assert_allclose(second.layers[-1].get_weights()[1], np.full(10, 0.5, np.float32))


def test_measure_takes_a_keras3_model(keras3_cnn, converted, digits):
    record = cl.measure(keras3_cnn, digits, name="keras3")
    keras3_accuracy = float(np.mean(_keras3_outputs(keras3_cnn, digits.x_test).argmax(1) == digits.y_test))
    assert record.accuracy == pytest.approx(keras3_accuracy, abs=1e-9)
    assert record.params == keras3_cnn.count_params() == converted.count_params()


def test_post_training_quantization_takes_a_keras3_model(keras3_cnn, converted, small_digits):
    artifact = cl.quantize.post_training(keras3_cnn, small_digits, "dynamic")
    reference = cl.quantize.post_training(converted, small_digits, "dynamic")
    assert artifact.size_bytes == reference.size_bytes
    assert artifact.accuracy(small_digits) == reference.accuracy(small_digits)


def test_pruning_takes_a_keras3_model(keras3_cnn, converted, small_digits):
    pruned = cl.prune.to_sparsity(keras3_cnn, 0.5)
    reference = cl.prune.to_sparsity(converted, 0.5)
    assert cl.prune.global_sparsity(pruned) == pytest.approx(0.5, abs=0.01)
    x = small_digits.x_test[:64]
    np.testing.assert_allclose(pruned(x).numpy(), reference(x).numpy(), atol=1e-6)
    tuned = cl.prune.finetune(keras3_cnn, small_digits, final_sparsity=0.5, epochs=1)
    assert cl.prune.global_sparsity(tuned) == pytest.approx(0.5, abs=0.02)
    assert isinstance(tuned, tf_keras.Model)


def test_clustering_takes_a_keras3_model(keras3_cnn, converted, small_digits):
    spec = cl.ClusterSpec(clusters=8)
    clustered = cl.cluster.cluster_weights(keras3_cnn, spec)
    reference = cl.cluster.cluster_weights(converted, spec)
    x = small_digits.x_test[:64]
    np.testing.assert_allclose(clustered(x).numpy(), reference(x).numpy(), atol=1e-6)
    assert max(cl.cluster.distinct_values_per_kernel(clustered).values()) <= 8


def test_distillation_takes_a_keras3_teacher(keras3_cnn, small_digits):
    student = cl.models.build("student_cnn", small_digits.input_shape, small_digits.num_classes, seed=0, width=0.5)
    distilled, history = cl.distill.distill(keras3_cnn, student, small_digits, cl.DistillSpec(epochs=1))
    assert isinstance(distilled, tf_keras.Model) and len(history.history["loss"]) == 1


def test_a_pipeline_recipe_takes_a_keras3_model(keras3_cnn, converted, small_digits):
    result = cl.run_pipeline(keras3_cnn, small_digits, [{"step": "prune", "sparsity": 0.5}])
    baseline = result.records[0]
    assert baseline.accuracy == cl.measure(converted, small_digits, name="x").accuracy
    assert cl.prune.global_sparsity(result.model) == pytest.approx(0.5, abs=0.01)


def test_a_panel_takes_a_keras3_model(keras3_cnn, converted, small_digits):
    pytest.importorskip("ipywidgets")
    lab = cl.widgets.QuantizationLab(keras3_cnn, small_digits)
    assert lab.model is converted
    keras3_accuracy = float(np.mean(_keras3_outputs(keras3_cnn, small_digits.x_test).argmax(1) == small_digits.y_test))
    assert lab.float_accuracy == pytest.approx(keras3_accuracy, abs=1e-9)


# ---------------------------------------------------------------------------------------------
# What is not a Keras classifier: one error type, one message shape, at every entry point


def _not_models(keras3):
    from sklearn.linear_model import LogisticRegression

    inputs = keras3.Input((28, 28, 1))
    flat = keras3.layers.Flatten()(inputs)
    two_heads = keras3.Model(inputs, [keras3.layers.Dense(10)(flat), keras3.layers.Dense(2)(flat)])
    return [
        ([1, 2], r"list \(builtins\)"),
        ("model.keras", r"str \(builtins\): to use a model file, load it with cl.load_model"),
        (LogisticRegression(), r"LogisticRegression \(sklearn\.linear_model\._logistic\)"),
        (two_heads, r"Functional \(keras\.src\.models\.functional\): it has 2 outputs"),
    ]


def test_what_is_not_a_keras_classifier_gets_one_error_everywhere(keras3, small_digits, tmp_path):
    pytest.importorskip("sklearn")
    student = cl.models.build("student_cnn", small_digits.input_shape, small_digits.num_classes, seed=0, width=0.5)
    entry_points = {
        "model": [
            lambda m: cl.measure(m, small_digits, name="x"),
            lambda m: cl.quantize.post_training(m, small_digits),
            lambda m: cl.quantize.simulate(m, cl.QuantSpec(bits=4)),
            lambda m: cl.prune.to_sparsity(m, 0.5),
            lambda m: cl.prune.finetune(m, small_digits, final_sparsity=0.5, epochs=1),
            lambda m: cl.cluster.cluster_weights(m, cl.ClusterSpec(clusters=8)),
            lambda m: cl.run_pipeline(m, small_digits, [{"step": "prune", "sparsity": 0.5}]),
            lambda m: cl.autocompress(m, small_digits),
            lambda m: cl.sweep(m, small_digits, {"steps": ["prune"], "prune.sparsity": [0.5]}, tmp_path / "sweep.jsonl"),
            lambda m: modelio.as_tf_keras(m),
        ],
        "teacher": [lambda m: cl.distill.distill(m, student, small_digits)],
        "student": [lambda m: cl.distill.train_from_scratch(m, small_digits)],
    }
    for bad, given in _not_models(keras3):
        for role, calls in entry_points.items():
            for call in calls:
                with pytest.raises(TypeError, match=f"{role}( \\(or a TFLiteArtifact\\))? {SHAPE}{given}"):
                    call(bad)


def test_a_panel_refuses_what_is_not_a_keras_classifier(keras3, small_digits):
    pytest.importorskip("ipywidgets")
    for bad, given in _not_models(keras3)[:2]:
        with pytest.raises(TypeError, match=f"model {SHAPE}{given}"):
            cl.widgets.QuantizationLab(bad, small_digits)
        with pytest.raises(TypeError, match=f"model {SHAPE}{given}"):
            cl.widgets.PruningLab(bad, small_digits)
