"""Keras 3 models out: every kind of model compresslab produces, saved with ``cl.save_model``, opens in
PLAIN Keras 3 (``keras.saving.load_model`` in a subprocess without compresslab and without
``TF_USE_LEGACY_KERAS``) and in ``cl.load_model``, with the outputs of the model that was saved.

All files are opened by ONE Keras 3 subprocess (TensorFlow's start-up dominates its time).
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

import compresslab as cl
from compresslab import codec
from compresslab._keras import keras
from compresslab.modelio.verify import _keras3_environment

TOLERANCE = 1e-5
SUFFIXES = (".keras", ".h5")

# Plain Keras 3: no compresslab import, default arguments (compile=True, safe_mode=True).
KERAS3_SCRIPT = r"""
import json, sys, traceback
import numpy as np
import keras

folder = sys.argv[1]
names = json.loads(open(f"{folder}/files.json").read())
x = np.load(f"{folder}/x.npy")
outputs, errors = {}, {}
for name in names:
    try:
        model = keras.saving.load_model(f"{folder}/{name}")
        outputs[name] = keras.ops.convert_to_numpy(model(x, training=False))
    except Exception:
        errors[name] = traceback.format_exc()[-2000:]
np.savez(f"{folder}/keras3.npz", **outputs)
open(f"{folder}/errors.json", "w").write(json.dumps(errors))
assert "compresslab" not in sys.modules
"""


def _qat_stripped_float(model, data):
    """QAT fine-tuning, then its float weights back in the plain architecture (no quantizers)."""
    result = cl.quantize.aware_training(model, data, epochs=1)
    plain = result.float_model()
    assert not any("quant" in weight.name for weight in plain.weights)
    # The float model computes what the QAT model's float path learned: close to the fake-quant outputs.
    x = data.x_test[:64]
    agreement = np.mean(plain.predict(x, verbose=0).argmax(1) == result.model.predict(x, verbose=0).argmax(1))
    assert agreement >= 0.9
    return plain


def _layer_coverage_model():
    """The layers save_model rewrites for Keras 3, and a few more, in one small functional model."""
    inputs = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Rescaling(2.0, offset=-1.0)(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.LeakyReLU(0.1)(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = keras.layers.SeparableConv2D(6, 3, padding="same")(x)
    x = keras.layers.SpatialDropout2D(0.1)(x)
    x = keras.layers.MaxPooling2D(2)(x)
    y = keras.layers.Conv2DTranspose(6, 3, padding="same")(x)
    y = keras.layers.PReLU()(y)
    x = keras.layers.Add()([x, y])
    x = keras.layers.Concatenate()([x, keras.layers.ELU()(keras.layers.Conv2D(6, 1)(x))])
    x = keras.layers.ZeroPadding2D(1)(x)
    x = keras.layers.Cropping2D(1)(x)
    x = keras.layers.AveragePooling2D(2)(x)
    x = keras.layers.GaussianNoise(0.1)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.LayerNormalization()(x)
    x = keras.layers.Dropout(0.2)(x)
    x = keras.layers.Dense(16, activation="relu")(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name="layer_coverage")
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):  # statistics that are not the defaults
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in layer.weights])
    return model


@pytest.fixture(scope="module")
def products(trained_student, trained_seed_cnn, small_digits):
    """One model of every kind compresslab produces, by name."""
    pruned = cl.prune.finetune(trained_student, small_digits, final_sparsity=0.5, epochs=1)
    student = cl.models.build("student_cnn", small_digits.input_shape, small_digits.num_classes, seed=0,
                              width=0.5)
    distilled, _ = cl.distill.distill(trained_seed_cnn, student, small_digits, cl.DistillSpec(epochs=1))
    return {
        "pruned": pruned,
        "clustered": cl.cluster.cluster_weights(trained_student, cl.ClusterSpec(clusters=8)),
        "simulated": cl.quantize.simulate(trained_student, cl.QuantSpec(bits=4)),
        "qat_float": _qat_stripped_float(trained_student, small_digits),
        "distilled": distilled,
        "filter_pruned": cl.prune.filter_pruning(trained_student, None, 0.5),
        "codec_decoded": codec.decode(codec.encode(pruned)),
        "layer_coverage": _layer_coverage_model(),
    }


@pytest.fixture(scope="module")
def saved(products, small_digits, tmp_path_factory):
    """Every product saved in both formats, the outputs expected, and what plain Keras 3 made of them."""
    folder = tmp_path_factory.mktemp("keras3_out")
    x = small_digits.x_test[:32].astype("float32")
    np.save(folder / "x.npy", x)
    expected, names = {}, []
    for kind, model in products.items():
        expected[kind] = model(x, training=False).numpy()
        for suffix in SUFFIXES:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a file written for tf_keras only would warn
                cl.save_model(model, folder / f"{kind}{suffix}")
            names.append(f"{kind}{suffix}")
    (folder / "files.json").write_text(json.dumps(names))
    result = subprocess.run([sys.executable, "-c", KERAS3_SCRIPT, str(folder)], env=_keras3_environment(),
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    errors = json.loads((folder / "errors.json").read_text())
    with np.load(folder / "keras3.npz") as data:
        keras3 = {name: data[name] for name in data.files}
    return {"folder": folder, "x": x, "expected": expected, "keras3": keras3, "errors": errors}


KINDS = ["pruned", "clustered", "simulated", "qat_float", "distilled", "filter_pruned", "codec_decoded",
         "layer_coverage"]


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("kind", KINDS)
def test_plain_keras3_opens_every_product(saved, kind, suffix):
    name = f"{kind}{suffix}"
    assert name not in saved["errors"], saved["errors"].get(name)
    diff = float(np.max(np.abs(saved["keras3"][name] - saved["expected"][kind])))
    assert diff <= TOLERANCE, f"{name}: Keras 3's outputs differ by {diff:.3g}"


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("kind", KINDS)
def test_compresslab_opens_every_product(saved, products, kind, suffix):
    loaded = cl.load_model(saved["folder"] / f"{kind}{suffix}")
    diff = float(np.max(np.abs(loaded(saved["x"], training=False).numpy() - saved["expected"][kind])))
    assert diff <= TOLERANCE
    for mine, theirs in zip(loaded.get_weights(), products[kind].get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_the_products_are_what_their_names_say(products):
    assert cl.prune.global_sparsity(products["pruned"]) == pytest.approx(0.5, abs=0.02)
    assert max(cl.cluster.distinct_values_per_kernel(products["clustered"]).values()) <= 8
    kernel = products["simulated"].get_layer("conv2").kernel.numpy()
    assert len(np.unique(kernel)) <= 16 * kernel.shape[-1]  # 4-bit codes per output channel
    assert products["filter_pruned"].count_params() < products["clustered"].count_params()


def test_a_model_keras3_cannot_rebuild_is_written_for_tf_keras_with_a_warning(trained_student, small_digits,
                                                                            tmp_path):
    # Activation fake-quantization inserts compresslab's own layer, which plain Keras 3 does not have.
    simulated = cl.quantize.simulate(trained_student, cl.QuantSpec(bits=8, activation_bits=8), small_digits)
    for suffix in SUFFIXES:
        with pytest.warns(UserWarning, match=r"NOT in plain Keras 3: layer '.*_activation_q8' is a "
                                             r"(compresslab>)?FakeQuantActivation"):
            path = cl.save_model(simulated, tmp_path / f"simulated{suffix}")
        loaded = cl.load_model(path, trust=True)
        x = small_digits.x_test[:8]
        np.testing.assert_allclose(loaded(x).numpy(), simulated(x).numpy(), atol=TOLERANCE)


def test_a_nested_model_is_written_for_tf_keras_with_a_warning(tmp_path):
    inputs = keras.Input((28, 28, 1))
    block = keras.Sequential([keras.layers.Conv2D(4, 3), keras.layers.ReLU()], name="block")
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(block(inputs))))
    for suffix in SUFFIXES:
        with pytest.warns(UserWarning, match=r"NOT in plain Keras 3: layer 'block' is a nested Sequential model, "
                                             r"whose calls tf_keras and Keras 3 number differently"):
            path = cl.save_model(model, tmp_path / f"nested{suffix}")
        x = np.zeros((2, 28, 28, 1), np.float32)
        np.testing.assert_allclose(cl.load_model(path)(x).numpy(), model(x).numpy(), atol=TOLERANCE)
