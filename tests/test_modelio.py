"""Tests for compresslab.modelio: saving, loading, and converting Keras 3 files to tf_keras.

Keras 3 files are made by Keras 3 itself in one subprocess (plain ``import keras`` without
TF_USE_LEGACY_KERAS), which also records the outputs the models give on fixed inputs; the
converted tf_keras models must reproduce them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import compresslab as cl
from compresslab import modelio
from compresslab._keras import keras

KERAS3_SCRIPT = r"""
import json, sys
from pathlib import Path
import numpy as np
import keras
from keras import layers

folder = Path(sys.argv[1])
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)


def randomize_batchnorm(model):
    # Non-trivial moving statistics, so forgetting to copy them changes the outputs.
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in layer.weights])


sequential = keras.Sequential([
    keras.Input((8, 8, 1)),
    layers.Conv2D(4, 3, activation="relu", name="conv"),
    layers.BatchNormalization(name="bn"),
    layers.MaxPooling2D(name="pool"),
    layers.Dropout(0.25, name="drop"),
    layers.Flatten(name="flat"),
    layers.Dense(3, activation="softmax", name="dense"),
], name="seq_cnn")

inputs = keras.Input((8, 8, 3), name="image")
x = layers.Conv2D(4, 3, padding="same", name="conv_a")(inputs)
x = layers.BatchNormalization(name="bn_a")(x)
x = layers.ReLU(name="relu_a")(x)
x = layers.Conv2D(4, 3, padding="same", name="conv_b")(x)
skip = layers.Conv2D(4, 1, name="skip")(inputs)
added = layers.Add(name="add")([x, skip])
merged = layers.Concatenate(name="concat")([added, skip])
pooled = layers.GlobalAveragePooling2D(name="gap")(merged)
outputs = layers.Dense(3, name="logits")(pooled)
functional = keras.Model(inputs, outputs, name="res_cnn")

lambda_model = keras.Sequential([keras.Input((4,)), layers.Lambda(lambda t: t * 2.0, name="double"),
                                 layers.Dense(2, name="dense")], name="with_lambda")


class Subclassed(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(2)

    def call(self, x):
        return self.dense(x)


subclassed = Subclassed()
subclassed(np.zeros((1, 4), "float32"))
subclassed.save(folder / "subclassed.keras")

reference = {}
for name, model in [("sequential", sequential), ("functional", functional), ("lambda", lambda_model)]:
    randomize_batchnorm(model)
    x = rng.standard_normal((5, *model.input_shape[1:])).astype("float32")
    np.save(folder / f"{name}_input.npy", x)
    np.save(folder / f"{name}_output.npy", keras.ops.convert_to_numpy(model(x, training=False)))
    model.save(folder / f"{name}.keras")
    if name != "lambda":
        model.save(folder / f"{name}.h5")
    reference[name] = [type(layer).__name__ for layer in model.layers]
(folder / "layers.json").write_text(json.dumps(reference))
"""


@pytest.fixture(scope="module")
def keras3_files(tmp_path_factory):
    """Keras 3 model files, their inputs and Keras 3's outputs, made in one subprocess."""
    folder = tmp_path_factory.mktemp("keras3")
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env.update(KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1")
    result = subprocess.run([sys.executable, "-c", KERAS3_SCRIPT, str(folder)], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


def tiny_cnn():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(3, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2)(x)
    model = keras.Model(inputs, outputs)
    bn = model.get_layer("bn")
    bn.set_weights([np.random.default_rng(1).uniform(0.5, 1.5, w.shape) for w in bn.weights])
    return model


def lambda_model():
    return keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t * 2.0, name="double"),
                             keras.layers.Dense(2)])


# ---------------------------------------------------------------------------------------------
# tf_keras round trips


@pytest.mark.parametrize("name", ["model.keras", "model.h5", "saved_model"])
def test_round_trip_keeps_outputs_and_weights(tmp_path, name):
    model = tiny_cnn()
    path = cl.save_model(model, tmp_path / name)
    assert path == tmp_path / name and path.exists()
    loaded = cl.load_model(path)
    x = np.random.default_rng(0).standard_normal((4, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(loaded(x, training=False).numpy(), model(x, training=False).numpy(), atol=1e-6)
    for mine, theirs in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("name", ["model.keras", "model.h5", "saved_model"])
def test_save_leaves_no_temporary_files_and_overwrites(tmp_path, name):
    cl.save_model(tiny_cnn(), tmp_path / name)
    cl.save_model(tiny_cnn(), tmp_path / name)  # overwriting an existing file or folder
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_save_cleans_up_after_a_failure(tmp_path, monkeypatch):
    model = tiny_cnn()

    def crash(*args, **kwargs):
        (tmp_path / args[0].name).write_bytes(b"half")  # a half-written temporary file
        raise RuntimeError("disk full")

    monkeypatch.setattr(model, "save", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        cl.save_model(model, tmp_path / "model.keras")
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_what_is_not_a_tf_keras_model(tmp_path):
    with pytest.raises(TypeError, match="tf_keras model"):
        cl.save_model("not a model", tmp_path / "model.keras")


# ---------------------------------------------------------------------------------------------
# Keras 3 conversion


@pytest.mark.parametrize("name", ["sequential", "functional"])
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras3_models_convert_with_their_weights(keras3_files, name, suffix):
    # verify=False: the comparison below is the same check, without a subprocess per file.
    model = cl.load_model(keras3_files / f"{name}{suffix}", verify=False)
    assert isinstance(model, keras.Model)
    x = np.load(keras3_files / f"{name}_input.npy")
    expected = np.load(keras3_files / f"{name}_output.npy")
    diff = np.max(np.abs(model(x, training=False).numpy() - expected))
    assert diff < 1e-5
    keras3_layers = json.loads((keras3_files / "layers.json").read_text())[name]
    assert [type(layer).__name__ for layer in model.layers] == keras3_layers
    if name == "functional":
        assert len(model.layers) == 10
        assert {"Add", "Concatenate", "GlobalAveragePooling2D", "InputLayer"} <= set(keras3_layers)
        bn = model.get_layer("bn_a")
    else:
        assert keras3_layers == ["Conv2D", "BatchNormalization", "MaxPooling2D", "Dropout", "Flatten", "Dense"]
        bn = model.get_layer("bn")
    # The moving statistics were copied, not left at their initial 0 and 1.
    assert not np.allclose(bn.moving_mean.numpy(), 0.0)
    assert not np.allclose(bn.moving_variance.numpy(), 1.0)


def test_keras3_conversion_is_verified_in_a_subprocess(keras3_files):
    model = cl.load_model(keras3_files / "functional.keras")  # verify=True by default
    assert model.name == "res_cnn"


def test_keras3_conversion_that_differs_is_refused(keras3_files, monkeypatch):
    def shifted_reference(path, *, trust=False):
        x = np.load(keras3_files / "functional_input.npy")
        return [x], [np.load(keras3_files / "functional_output.npy") + 0.5]

    monkeypatch.setattr(modelio, "keras3_reference_outputs", shifted_reference)
    with pytest.raises(ValueError, match=r"did not reproduce its outputs: max abs difference 0\.5"):
        cl.load_model(keras3_files / "functional.h5")


def test_keras3_lambda_needs_trust(keras3_files):
    path = keras3_files / "lambda.keras"
    with pytest.raises(ValueError, match=r"'double' is a Lambda layer.*trust=True"):
        cl.load_model(path)
    model = cl.load_model(path, trust=True, verify=False)
    x = np.load(keras3_files / "lambda_input.npy")
    np.testing.assert_allclose(model(x).numpy(), np.load(keras3_files / "lambda_output.npy"), atol=1e-5)


def test_keras3_subclassed_model_is_refused(keras3_files):
    with pytest.raises(ValueError, match="subclassed model.*'Subclassed'.*Sequential or Functional"):
        cl.load_model(keras3_files / "subclassed.keras")


def test_keras3_custom_layer_is_refused_by_name_and_class(keras3_files, tmp_path):
    with zipfile.ZipFile(keras3_files / "sequential.keras") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    layer = config["config"]["layers"][1]
    layer.update(class_name="FancyConv", module="my_package.layers", registered_name="my_package>FancyConv")
    members["config.json"] = json.dumps(config).encode()
    path = tmp_path / "custom.keras"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ValueError, match=r"'conv' of class 'FancyConv' is a custom.*trust=True"):
        cl.load_model(path)
    with pytest.raises(ValueError, match="'FancyConv', which tf_keras does not have"):
        cl.load_model(path, trust=True)


# ---------------------------------------------------------------------------------------------
# Lambda and subclassed tf_keras models


@pytest.mark.parametrize("name", ["lambda.keras", "lambda.h5", "lambda_saved_model"])
def test_tf_keras_lambda_needs_trust(tmp_path, name):
    model = lambda_model()
    path = cl.save_model(model, tmp_path / name)
    with pytest.raises(ValueError, match=r"layer 'double' is a Lambda layer.*trust=True.*files you trust"):
        cl.load_model(path)
    loaded = cl.load_model(path, trust=True)
    x = np.ones((2, 4), "float32")
    np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), atol=1e-6)


def test_tf_keras_subclassed_model_is_refused(tmp_path):
    class Subclassed(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    model = Subclassed()
    model(np.zeros((1, 4), "float32"))
    path = tmp_path / "sub.keras"
    model.save(path)
    with pytest.raises(ValueError, match="subclassed model.*Sequential or Functional"):
        cl.load_model(path)


# ---------------------------------------------------------------------------------------------
# Files that are not models


def test_missing_path(tmp_path):
    with pytest.raises(ValueError, match=r"nowhere\.keras.*no such file.*\.keras file, an \.h5 file or a SavedModel"):
        cl.load_model(tmp_path / "nowhere.keras")


@pytest.mark.parametrize("name, content, message", [
    ("empty.keras", b"", "is empty"),
    ("noise.h5", np.random.default_rng(0).bytes(2048), "not a valid HDF5 file"),
    ("noise.keras", np.random.default_rng(1).bytes(2048), "not a valid .keras zip"),
    ("notes.txt", b"just some text\n", "neither a .keras zip nor an HDF5 file"),
])
def test_non_model_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"{name}.*{message}.*SavedModel folder"):
        cl.load_model(path)


def test_truncated_files(tmp_path):
    good = cl.save_model(tiny_cnn(), tmp_path / "good.keras")
    data = good.read_bytes()
    (tmp_path / "truncated.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"truncated\.keras.*\.keras"):
        cl.load_model(tmp_path / "truncated.keras")
    good_h5 = cl.save_model(tiny_cnn(), tmp_path / "good.h5")
    data = good_h5.read_bytes()
    (tmp_path / "truncated.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"truncated\.h5.*(corrupt|truncated)"):
        cl.load_model(tmp_path / "truncated.h5")


def test_zip_that_is_not_a_model(tmp_path):
    path = tmp_path / "archive.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="no config.json"):
        cl.load_model(path)


def test_weights_only_h5_and_plain_folder(tmp_path):
    model = tiny_cnn()
    model.save_weights(tmp_path / "only.weights.h5")
    with pytest.raises(ValueError, match="no model configuration"):
        cl.load_model(tmp_path / "only.weights.h5")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match=r"folder.*not a SavedModel"):
        cl.load_model(tmp_path / "folder")


# ---------------------------------------------------------------------------------------------
# SavedModel metadata, read with tf_keras's own SavedMetadata message


def test_saved_model_metadata_names_the_root_model(tmp_path):
    path = cl.save_model(tiny_cnn(), tmp_path / "saved_model")
    root = modelio.read_saved_model_metadata(path / "keras_metadata.pb")
    assert root["class_name"] == "Functional"
    assert [layer["class_name"] for layer in root["config"]["layers"]][:2] == ["InputLayer", "Conv2D"]


@pytest.mark.parametrize("content", [b"\x0a\xff\x01truncated", b"\xff\xff\xff\xff"])
def test_corrupt_saved_model_metadata_is_a_clear_error(tmp_path, content):
    path = cl.save_model(tiny_cnn(), tmp_path / "saved_model")
    (path / "keras_metadata.pb").write_bytes(content)
    with pytest.raises(ValueError, match=r"keras_metadata\.pb.*not a valid Keras SavedModel metadata file"):
        modelio.read_saved_model_metadata(path / "keras_metadata.pb")
    with pytest.raises(ValueError, match=r"saved_model.*keras_metadata\.pb is corrupt.*expected"):
        cl.load_model(path)
