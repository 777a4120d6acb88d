"""Real low-bit TFLite files through ai-edge-quantizer, read back layer by layer (compresslab.lowbit)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import compresslab as cl
from compresslab import lowbit
from compresslab._keras import keras
from compresslab.lowbit import LowBitSpec


@pytest.fixture(scope="module")
def files(trained_seed_cnn, digits):
    """A few files of the trained seed_cnn, written once for the module."""
    made = {}
    for key, spec in {
        "int8": LowBitSpec("int8_weight_only"),
        "int4": LowBitSpec("int4_weight_only"),
        "int4_block": LowBitSpec("int4_dynamic", granularity="blockwise", block_size=32),
        "int2_dense": LowBitSpec("int2_dynamic", keep_int8=("conv1", "conv2", "logits")),
    }.items():
        made[key] = lowbit.post_training_lowbit(trained_seed_cnn, digits, spec)
    return made


def test_files_run_in_litert_and_shrink_with_bits(files, trained_seed_cnn, digits):
    float_file = cl.tflite.convert(trained_seed_cnn)
    float_accuracy = float_file.accuracy(digits)
    sizes = {key: artifact.size_bytes for key, artifact in files.items()}
    assert sizes["int4"] < sizes["int8"] < float_file.size_bytes
    # int4 weights are half a byte: the file is well under a third of the float one
    assert sizes["int4"] < 0.16 * float_file.size_bytes
    for key in ("int8", "int4", "int4_block", "int2_dense"):
        record = cl.measure(files[key], digits, name=key, technique="quantize", latency=False)
        assert record.accuracy_backend == "litert"
        assert record.tflite_bytes == files[key].size_bytes
        assert files[key].info["float32_tflite_bytes"] == float_file.size_bytes
    assert files["int8"].accuracy(digits) >= float_accuracy - 0.01
    assert files["int4"].accuracy(digits) >= float_accuracy - 0.03


def test_layer_storage_is_read_back_from_the_file(files):
    assert set(files["int4"].info["layer_storage"].values()) == {"int4 per_channel"}
    block = files["int4_block"].info["layer_storage"]
    assert block["dense1"] == "int4 blockwise 32"
    # blockwise is Dense-only in ai-edge-quantizer: convolutions are per channel, and the file says so
    assert block["conv1"] == "int4 per_channel"
    selective = files["int2_dense"].info["layer_storage"]
    assert selective["dense1"] == "int2 per_channel"
    assert selective["conv1"] == selective["logits"] == "int8 per_channel"
    assert files["int4"].info["left_float_layers"] == []


def test_keep_float_layer_stays_float_in_the_file(trained_seed_cnn, digits):
    artifact = lowbit.post_training_lowbit(trained_seed_cnn, digits, LowBitSpec("int4_weight_only",
                                                                              keep_float=("conv1",)))
    stored = {w.layer: w for w in lowbit.file_weights(artifact.content, ["conv1", "conv2", "dense1", "logits"])}
    assert stored["conv1"].storage == "float32"
    assert stored["conv2"].storage == "int4"
    assert artifact.info["left_float_layers"] == []  # kept on purpose, not left by the quantizer


def test_file_weights_dequantize_close_to_the_float_kernels(files, trained_seed_cnn):
    names = [layer.name for layer in trained_seed_cnn.layers]
    for key, tolerance in (("int8", 0.01), ("int4", 0.2)):
        for weight in lowbit.file_weights(files[key].content, names):
            kernel = trained_seed_cnn.get_layer(weight.layer).kernel.numpy()
            values = lowbit.fileweights.to_keras_layout(weight, kernel.shape)
            assert values is not None, weight.layer
            scale = np.max(np.abs(kernel))
            assert np.max(np.abs(values - kernel)) <= tolerance * scale, (key, weight.layer)


def test_layer_errors_grow_as_bits_fall(files, trained_seed_cnn, digits):
    eight = lowbit.layer_errors(trained_seed_cnn, files["int8"], digits, images=64)
    two = lowbit.layer_errors(trained_seed_cnn, files["int2_dense"], digits, images=64)
    assert list(eight.columns) == ["layer", "storage", "weights", "weight_mse", "weight_snr_db",
                                   "output_rel_error", "output_snr_db"]
    assert list(eight["layer"]) == ["conv1", "conv2", "dense1", "logits"]
    assert eight.attrs["images_split"] in ("validation", "train")
    e8 = eight.set_index("layer")
    e2 = two.set_index("layer")
    assert e2.loc["dense1", "weight_mse"] > 10 * e8.loc["dense1", "weight_mse"]
    assert e2.loc["dense1", "weight_snr_db"] < e8.loc["dense1", "weight_snr_db"] - 10
    assert e2.loc["dense1", "output_rel_error"] > e8.loc["dense1", "output_rel_error"]
    # conv1 is int8 in both files: the same error
    assert e2.loc["conv1", "weight_mse"] == pytest.approx(e8.loc["conv1", "weight_mse"], rel=1e-6)


def test_layer_errors_of_a_simulated_model_match_the_weight_only_file(files, trained_seed_cnn, digits):
    simulated = cl.quantize.simulate(trained_seed_cnn, cl.QuantSpec(bits=4, granularity="per_channel"))
    sim = lowbit.layer_errors(trained_seed_cnn, simulated, digits, images=32).set_index("layer")
    real = lowbit.layer_errors(trained_seed_cnn, files["int4"], digits, images=32).set_index("layer")
    assert set(sim["storage"]) == {"simulated"}
    # the same symmetric per-channel 4-bit formula: the simulation and the file agree on the weights
    np.testing.assert_allclose(sim["weight_mse"], real["weight_mse"], rtol=1e-3)


def test_plan_to_lowbit_rounds_the_plan_up(trained_seed_cnn, digits):
    plan = cl.quantize.mixed_precision(trained_seed_cnn, digits, max_accuracy_drop=1.0, candidate_bits=(2, 4, 8),
                                       search_images=300)
    spec = lowbit.plan_to_lowbit(plan)
    for layer, bits in plan.bits.items():
        if bits is None:
            assert layer in spec.keep_float
        elif bits > 4:
            assert layer in spec.keep_int8
        else:
            assert layer not in spec.keep_int8 + spec.keep_float
    artifact = lowbit.post_training_lowbit(trained_seed_cnn, digits, spec)
    storage = artifact.info["layer_storage"]
    for layer, bits in plan.bits.items():
        expected = "float32" if bits is None else ("int8 per_channel" if bits > 4 else "int4 per_channel")
        assert storage[layer] == expected
    with pytest.raises(TypeError, match="MixedPrecisionPlan"):
        lowbit.plan_to_lowbit({"conv1": 4})


@pytest.mark.parametrize("kwargs, field", [
    ({"mode": "int3_weight_only"}, "mode"),
    ({"mode": "int4_weight_only", "granularity": "blockwise", "block_size": 32}, "granularity"),
    ({"mode": "int2_dynamic", "granularity": "blockwise", "block_size": 32}, "granularity"),
    ({"mode": "int4_dynamic", "granularity": "blockwise", "block_size": 48}, "block_size"),
    ({"mode": "int4_dynamic", "granularity": "blockwise"}, "block_size"),
    ({"mode": "int4_dynamic", "block_size": 32}, "block_size"),
    ({"keep_int8": "conv1"}, "keep_int8"),
    ({"keep_int8": ("conv1",), "keep_float": ("conv1",)}, "keep_float"),
    ({"granularity": "per_tensor"}, "granularity"),
])
def test_bad_specs_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=rf"LowBitSpec\.{field} is"):
        LowBitSpec(**kwargs)


def _count_conversions(monkeypatch):
    from compresslab.lowbit import files as files_module

    calls = []
    original = files_module.convert
    monkeypatch.setattr(files_module, "convert", lambda *a, **k: calls.append(1) or original(*a, **k))
    return calls


def test_block_size_that_does_not_divide_a_dense_input_fails_before_any_conversion(digits, monkeypatch):
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(100, activation="relu", name="hidden")(x)  # 784 inputs: 784 % 32 = 16
    outputs = keras.layers.Dense(10, name="out")(x)
    model = keras.Model(inputs, outputs, name="mlp")
    calls = _count_conversions(monkeypatch)
    with pytest.raises(ValueError, match=r"block_size is 32.*input size 784 of Dense layer 'hidden'.*\[\]|"
                                         r"block_size is 32.*input size 784 of Dense layer 'hidden'"):
        lowbit.post_training_lowbit(model, digits, LowBitSpec("int4_dynamic", granularity="blockwise", block_size=32))
    with pytest.raises(ValueError, match=r"keep_int8 names \['nope'\].*layers with weights are \['hidden', 'out'\]"):
        lowbit.post_training_lowbit(model, digits, LowBitSpec("int4_weight_only", keep_int8=("nope",)))
    assert calls == []


def test_a_mode_whose_file_computes_nan_is_refused_naming_the_layer(trained_seed_cnn, digits):
    # LiteRT 2.3.0 runs int2 convolutions to NaN (measured); the error names the layer and the way out.
    # The file runs in a child process: once, in CI, the same file crashed the test process outright.
    with pytest.raises(ValueError, match=r"layer 'conv1' \(stored as int2\) computes NaN.*keep_int8|"
                                         r"'int2_dynamic'.*LiteRT crashed \(SIG.*int2.*keep_int8"):
        lowbit.post_training_lowbit(trained_seed_cnn, digits, LowBitSpec("int2_dynamic"))


def test_a_file_that_crashes_litert_is_refused_and_the_caller_lives_on(trained_seed_cnn, digits, monkeypatch):
    from compresslab.lowbit import litert_child

    # stand in for a LiteRT kernel that dies of a segmentation fault in the child process
    crash = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    monkeypatch.setattr(litert_child, "_command", lambda folder: [litert_child.sys.executable, "-c", crash])
    with pytest.raises(ValueError, match=r"mode 'int4_weight_only' \(per_channel\), but LiteRT crashed \(SIGSEGV\) "
                                         r"while running the file \(layers stored as \{'conv1': 'int4'.*keep_int8"):
        lowbit.post_training_lowbit(trained_seed_cnn, digits, LowBitSpec("int4_weight_only"))
    with pytest.raises(litert_child.LiteRTCrashed, match="SIGSEGV"):
        lowbit.layer_errors(trained_seed_cnn, cl.tflite.convert(trained_seed_cnn), digits, images=4)


def test_the_child_process_returns_what_litert_computes_in_process(files, digits):
    from compresslab.lowbit import litert_child
    from compresslab.lowbit.errors import _output_names

    content = files["int4"].content
    names = list(_output_names(content, ["conv1", "conv2", "dense1", "logits"]).values())
    images = digits.x_train[:5].astype(np.float32)
    child = litert_child.activations(content, images, names + ["no such tensor"])
    here = litert_child.run_in_process(content, images, names)
    assert list(child) == names and len(names) == 4
    for name in names:
        np.testing.assert_array_equal(child[name], here[name])
    # what LiteRT raises in the child comes back with its type and message
    with pytest.raises(ValueError, match="not a valid Flatbuffer"):
        litert_child.activations(b"not a flatbuffer at all" * 4, images, names)


def test_bad_arguments(trained_seed_cnn, digits):
    with pytest.raises(TypeError, match="spec must be a LowBitSpec"):
        lowbit.post_training_lowbit(trained_seed_cnn, digits, cl.QuantSpec(bits=4))
    with pytest.raises(ValueError, match="representative_images is 0"):
        lowbit.post_training_lowbit(trained_seed_cnn, digits, LowBitSpec("int8_static"), representative_images=0)
    with pytest.raises(ValueError, match="images is -1"):
        lowbit.layer_errors(trained_seed_cnn, trained_seed_cnn, digits, images=-1)
    with pytest.raises(ValueError, match=r"modes \['int3'\] are not Keras 3 quantization modes"):
        lowbit.keras3_quantize_rows(trained_seed_cnn, digits, modes=("int3",))
    with pytest.raises(ValueError, match="not a readable TFLite file"):
        lowbit.file_weights(b"not a flatbuffer at all" * 4)


def test_static_int8_file_calibrates_on_training_images(trained_seed_cnn, digits):
    artifact = lowbit.post_training_lowbit(trained_seed_cnn, digits, LowBitSpec("int8_static"),
                                           representative_images=64)
    assert artifact.info["representative_split"] == "train"
    assert artifact.info["representative_images"] == 64
    assert artifact.accuracy(digits) >= cl.tflite.convert(trained_seed_cnn).accuracy(digits) - 0.02


def test_keras3_rows_measure_coverage(trained_seed_cnn, digits):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = lowbit.keras3_quantize_rows(trained_seed_cnn, digits, modes=("int8",), latency=False)
    reference, int8 = rows
    assert reference.extra["keras3_mode"] == "float32"
    # Keras 3 runs the same weights: its float accuracy is the tf_keras model's
    assert reference.extra["keras3_accuracy"] == pytest.approx(cl.models.accuracy(trained_seed_cnn, digits), abs=1e-9)
    assert int8.extra["quantized_layers"] == ["dense1", "logits"]
    assert int8.extra["left_float_layers"] == ["conv1", "conv2"]
    kernels = {layer.name: layer.kernel.numpy().size for layer in trained_seed_cnn.layers if hasattr(layer, "kernel")}
    assert int8.extra["left_float_share"] == pytest.approx((kernels["conv1"] + kernels["conv2"]) / sum(kernels.values()))
    assert int8.extra["keras_bytes"] < reference.extra["keras_bytes"]
    assert int8.accuracy is not None and int8.accuracy > 0.8


def test_post_training_routes_low_bit_modes_to_ai_edge_quantizer(trained_seed_cnn, digits, files):
    artifact = cl.quantize.post_training(trained_seed_cnn, digits, "int4_weight_only")
    assert artifact.content == files["int4"].content  # the same file as lowbit.post_training_lowbit writes
    assert artifact.mode == "int4_weight_only"
    assert artifact.info["quantizer"] == "ai-edge-quantizer"
    blocks = cl.quantize.post_training(trained_seed_cnn, digits, "int4_dynamic", granularity="blockwise",
                                       block_size=32)
    assert blocks.info["layer_storage"]["dense1"] == "int4 blockwise 32"
    with pytest.raises(ValueError, match=r"mode is 'int3'.*int4_weight_only"):
        cl.quantize.post_training(trained_seed_cnn, digits, "int3")
    with pytest.raises(TypeError, match=r"\['block_size'\], which only the low-bit modes"):
        cl.quantize.post_training(trained_seed_cnn, digits, "int8", block_size=32)
