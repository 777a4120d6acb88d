import numpy as np
import pytest

from compresslab import models
from compresslab.tflite import TFLiteArtifact, convert


def test_float32_conversion_matches_keras_in_litert(trained_student, digits):
    artifact = convert(trained_student)
    keras_outputs = models.predict_logits(trained_student, digits.x_test[:64])
    np.testing.assert_allclose(artifact.predict(digits.x_test[:64]), keras_outputs, atol=1e-4)
    assert artifact.params == trained_student.count_params()
    assert artifact.accuracy(digits) == pytest.approx(models.accuracy(trained_student, digits), abs=0.005)


def test_files_keep_the_serving_signature_that_lowbit_reads(trained_student, digits):
    # convert() hands the converter a bare module holding the variables, not the Keras model (faster);
    # if saving it failed, TensorFlow would fall back silently to a file WITHOUT signatures.
    for artifact in (convert(trained_student), convert(trained_student, "int8", representative=digits.x_train[:20])):
        assert artifact.interpreter().get_signature_list() == {
            "serving_default": {"inputs": ["x"], "outputs": ["output_0"]}}


def test_int8_needs_calibration_and_runs_integer_io(trained_student, digits):
    with pytest.raises(ValueError, match="representative images"):
        convert(trained_student, "int8")
    artifact = convert(trained_student, "int8", representative=digits.x_train[:100])
    details = artifact.interpreter().get_input_details()[0]
    assert details["dtype"] == np.int8
    assert artifact.accuracy(digits) > models.accuracy(trained_student, digits) - 0.05
    with pytest.raises(ValueError, match="mode is 'int4'"):
        convert(trained_student, "int4")


def test_sizes_shrink_with_quantization(trained_seed_cnn, digits):
    full = convert(trained_seed_cnn).size_bytes
    assert convert(trained_seed_cnn, "float16").size_bytes < 0.55 * full
    assert convert(trained_seed_cnn, "dynamic").size_bytes < 0.3 * full


def test_save_is_atomic_and_load_checks_the_file(trained_student, tmp_path):
    artifact = convert(trained_student)
    path = artifact.save(tmp_path / "student")
    assert path.name == "student.tflite" and path.read_bytes() == artifact.content
    assert [p.name for p in tmp_path.iterdir()] == ["student.tflite"]
    assert TFLiteArtifact.load(path).size_bytes == artifact.size_bytes
    (tmp_path / "bad.tflite").write_bytes(b"not a flatbuffer")
    with pytest.raises(ValueError, match="not a TFLite model"):
        TFLiteArtifact.load(tmp_path / "bad.tflite")


def test_latency_is_a_positive_median(trained_student, digits):
    assert 0 < convert(trained_student).latency_ms(digits.x_test[:1], runs=5, warmup=2) < 1000


def test_parameter_counts_leave_out_what_tfmot_wrappers_add(trained_student, small_digits):
    from compresslab._keras import tfmot
    from compresslab.quantize import aware_training
    from compresslab.tflite import count_params, parameter_weights

    params, nonzero = count_params(trained_student)
    assert params == trained_student.count_params()  # the tf_keras count: kernels, biases
    qat = aware_training(trained_student, small_digits, epochs=1).model
    assert count_params(qat)[0] == params
    assert len(qat.weights) > len(parameter_weights(qat))  # the quantizer ranges and steps were there
    pruned = tfmot().sparsity.keras.prune_low_magnitude(models.clone(trained_student))
    assert count_params(pruned) == (params, nonzero)
    names = [weight.name for weight in parameter_weights(pruned)]
    assert not any(name.endswith(("mask:0", "threshold:0", "pruning_step:0")) for name in names)
    bn = models.clone(trained_student)
    assert count_params(bn) == (params, nonzero)


def test_batch_norm_statistics_count_as_parameters():
    from compresslab._keras import keras
    from compresslab.tflite import count_params

    inputs = keras.Input((4, 4, 1))
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(keras.layers.BatchNormalization()(inputs)))
    model = keras.Model(inputs, outputs)
    assert count_params(model)[0] == model.count_params() == 4 + 16 * 2 + 2
