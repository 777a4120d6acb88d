import numpy as np
import pytest

import compresslab as cl
from compresslab.measure import entropy_bytes
from compresslab.tflite import convert


def test_measure_keras_model_names_every_figure(trained_student, digits):
    record = cl.measure(trained_student, digits, name="student", seed=0)
    params = trained_student.count_params()
    assert record.params == params and record.dense_float32_bytes == 4 * params
    assert record.nonzero_params <= params
    assert record.accuracy == pytest.approx(cl.models.accuracy(trained_student, digits))
    assert record.accuracy_backend == "keras" and record.dataset == "digits"
    assert record.tflite_bytes > record.dense_float32_bytes  # flatbuffer = weights + graph
    assert 0 < record.gzip_bytes < record.tflite_bytes
    assert record.latency_ms > 0 and record.latency_threads == 1
    assert 0 < record.entropy_bytes <= record.dense_float32_bytes


def test_measure_artifact_runs_litert(trained_student, digits):
    artifact = convert(trained_student, "int8", representative=digits.x_train[:64])
    record = cl.measure(artifact, digits, name="int8", technique="quantize", spec={"mode": "int8"})
    assert record.accuracy_backend == "litert"
    assert record.accuracy == pytest.approx(artifact.accuracy(digits))
    assert record.tflite_bytes == artifact.size_bytes
    assert record.extra["tflite_mode"] == "int8" and record.spec == {"mode": "int8"}


def test_measure_counts_zeros(trained_student, digits):
    model = cl.models.clone(trained_student)
    weights = model.get_weights()
    zeroed = weights[0].size
    weights[0] = np.zeros_like(weights[0])
    model.set_weights(weights)
    record = cl.measure(model, digits, name="zeroed", tflite=False, latency=False)
    assert record.params - record.nonzero_params >= zeroed
    assert record.tflite_bytes is None and record.latency_ms is None


def test_entropy_bound():
    assert entropy_bytes([np.array([0.0, 0.0, 1.0, 1.0])]) == 0.5
    assert entropy_bytes([np.zeros(100)]) == 0.0
    assert entropy_bytes([np.arange(256.0)]) == 256.0


def test_measure_rejects_bad_input(trained_student, digits):
    with pytest.raises(TypeError, match=r"model \(or a TFLiteArtifact\) must be a Keras classifier"):
        cl.measure("model.keras", digits, name="x")
    with pytest.raises(ValueError, match="compresslab Dataset"):
        cl.measure(trained_student, (digits.x_test, digits.y_test), name="x")
    rgb = cl.Dataset.from_arrays(np.zeros((4, 32, 32, 3)), np.arange(4), np.zeros((2, 32, 32, 3)), np.arange(2),
                                 class_names=[str(i) for i in range(10)])
    with pytest.raises(ValueError, match="expects inputs of shape"):
        cl.measure(trained_student, rgb, name="x")


def test_measure_names_what_it_was_given_and_what_it_accepts(small_digits):
    with pytest.raises(TypeError, match=r"must be a Keras classifier \(a tf_keras or Keras 3 Model\); got str "
                                        r"\(builtins\): to use a model file, load it with cl.load_model"):
        cl.measure("model.keras", small_digits, name="x")
    with pytest.raises(ValueError, match="compresslab Dataset, got tuple; load one with cl.load_dataset"):
        cl.measure("model.keras", (1, 2), name="x")


def test_entropy_bytes_lives_in_sizes_and_is_reexported():
    from compresslab import sizes
    from compresslab.measure import entropy_bytes as old_place

    assert old_place is sizes.entropy_bytes
