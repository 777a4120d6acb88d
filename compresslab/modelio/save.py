"""Saving tf_keras models atomically, in ``.keras`` and ``.h5`` files that plain Keras 3 opens too.

Owns :func:`save_model` and the moves that put a finished file or SavedModel folder in place. A
crash never leaves a half-written model behind. tf_keras writes the file; its configuration is
then rewritten into the subset both Kerases read (class paths, a few arguments Keras 3 refuses, no
optimizer state), so the user who brought a Keras 3 model can open the result with
``keras.saving.load_model`` and no compresslab; a model that cannot be written so is written as
tf_keras writes it, with a warning saying why.
"""

from __future__ import annotations

import copy
import io
import json
import os
import shutil
import uuid
import warnings
import zipfile
from pathlib import Path

import h5py

from .._keras import keras
from .checks import _H5_SUFFIXES


def save_model(model, path) -> Path:
    """Save a tf_keras model atomically, in a file plain Keras 3 opens as well as compresslab.

    The format follows the suffix: ``.keras`` (the native zip, recommended), ``.h5`` or
    ``.hdf5`` (legacy HDF5), anything else a TensorFlow SavedModel folder (tf_keras only).
    A ``.keras`` or ``.h5`` file holds the architecture and the weights, written so that both
    ``keras.saving.load_model`` (Keras 3, no compresslab needed) and :func:`load_model` rebuild
    the same model; the optimizer state and compile settings are left out (both loaders return
    the model to compile). A model Keras 3 cannot rebuild (a tfmot wrapper, a Lambda or custom
    layer, a setting Keras 3 lacks) is written as tf_keras writes it, with a warning naming the
    layer and why. The model is first
    written next to the destination under a temporary name, then moved into place with
    :func:`os.replace`, so readers see either the old file or the new one. A SavedModel folder
    cannot be replaced in one step: an existing folder is moved aside, the new one moved in,
    then the old one deleted. Missing parent folders are created.

    Args:
        model: a tf_keras model (``compresslab._keras.keras.Model``).
        path: destination file or folder.

    Returns:
        The destination as a :class:`~pathlib.Path`.

    Raises:
        TypeError: if ``model`` is not a tf_keras model (for example a Keras 3 model).

    Warns:
        UserWarning: the file opens in tf_keras and compresslab but not in plain Keras 3 (why is named).

    Example:
        >>> save_model(model, "cnn.keras")
        PosixPath('cnn.keras')
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"save_model needs a tf_keras model (compresslab's Keras 2); got {type(model).__module__}."
            f"{type(model).__name__}. Build models with `from compresslab._keras import keras`, or "
            "save a Keras 3 model with Keras 3 and load it with compresslab.load_model, which converts it.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    # The temporary name keeps the suffix because tf_keras picks the format from it.
    tmp = path.with_name(f".{path.stem}.tmp-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        if suffix == ".keras":
            model.save(tmp)
            _make_portable(make_zip_portable, tmp, path)
        elif suffix in _H5_SUFFIXES:
            with warnings.catch_warnings():  # the caller chose HDF5; tf_keras's "legacy" nag is noise
                warnings.filterwarnings("ignore", message=".*HDF5 file via `model.save", category=UserWarning)
                model.save(tmp, save_format="h5")
            _make_portable(make_h5_portable, tmp, path)
        else:
            model.save(tmp, save_format="tf")
        _move_into_place(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    return path


def _make_portable(rewrite, tmp: Path, path: Path) -> None:
    try:
        rewrite(tmp)
    except NotPortable as reason:
        warnings.warn(f"{str(path)!r} opens in compresslab.load_model and tf_keras but NOT in plain Keras 3: "
                      f"{reason}", UserWarning, stacklevel=3)


def _move_into_place(tmp: Path, path: Path) -> None:
    if not tmp.is_dir():
        os.replace(tmp, path)
        return
    if path.is_dir():
        old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        if path.exists():
            path.unlink()
        os.replace(tmp, path)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


# --- files both Kerases read

# Layer classes whose tf_keras configuration Keras 3 rebuilds (after the fixes below) with the same
# variables in the same order. Anything else (tfmot wrappers, Lambda, TFOpLambda, custom layers) is
# not written for Keras 3. tests/test_keras3_out.py opens files of these layers in plain Keras 3.
_PORTABLE_LAYERS = frozenset({
    "InputLayer", "Dense", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose",
    "Conv3DTranspose", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D",
    "BatchNormalization", "LayerNormalization", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
    "AveragePooling1D", "AveragePooling2D", "AveragePooling3D", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalAveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
    "GlobalMaxPooling3D", "Flatten", "Reshape", "Permute", "RepeatVector", "Dropout", "SpatialDropout1D",
    "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
    "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "Add", "Subtract", "Multiply", "Average",
    "Maximum", "Minimum", "Concatenate", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D",
    "Cropping2D", "Cropping3D", "UpSampling1D", "UpSampling2D", "UpSampling3D", "Rescaling", "Embedding",
    "Identity",
})
_ANY = object()  # the key is dropped whatever it holds: tf_keras itself ignores it for that class
_SEPARABLE = {"groups": 1, "kernel_initializer": _ANY, "kernel_regularizer": _ANY, "kernel_constraint": _ANY}
_SPATIAL_DROPOUT = {"trainable": _ANY, "noise_shape": None}  # no weights, so "trainable" means nothing
# Keys tf_keras writes that Keras 3's constructors refuse, each dropped when it holds the value
# that makes it a no-op in tf_keras; any other value cannot be written for Keras 3.
_KERAS3_REFUSES = {
    "DepthwiseConv1D": {"groups": 1}, "DepthwiseConv2D": {"groups": 1},
    "SeparableConv1D": _SEPARABLE, "SeparableConv2D": _SEPARABLE,
    "Conv1DTranspose": {"groups": 1}, "Conv2DTranspose": {"groups": 1}, "Conv3DTranspose": {"groups": 1},
    "SpatialDropout1D": _SPATIAL_DROPOUT, "SpatialDropout2D": _SPATIAL_DROPOUT, "SpatialDropout3D": _SPATIAL_DROPOUT,
    "Embedding": {"input_length": _ANY},
}
_TFMOT_WRAPPERS = ("PruneLowMagnitude", "ClusterWeights", "ClusterWeightsMHA", "QuantizeWrapper",
                   "QuantizeWrapperV2", "QuantizeLayer", "QuantizeAnnotate")
_GRAPHS = ("Functional", "Model", "Sequential")


class NotPortable(Exception):
    """A model whose tf_keras file plain Keras 3 cannot rebuild (the message says which layer and why)."""


def portable_config(config: dict, *, zip_format: bool = True) -> dict:
    """A tf_keras model configuration rewritten into what both tf_keras and Keras 3 rebuild.

    Functional models are named by the public ``keras.Model`` (tf_keras writes its private module
    path, which Keras 3 cannot locate), compile settings are dropped, and the few layer arguments
    Keras 3 refuses are removed where they are no-ops. Used for ``.keras`` configurations and, with
    ``zip_format=False``, for the legacy ``.h5`` one (whose class names Keras 3 already maps).

    Args:
        config: the model configuration (``{"class_name", "config", ...}``) as tf_keras wrote it.
        zip_format: rewrite class paths too (the ``.keras`` format names modules).

    Returns:
        A new configuration; ``config`` is not modified.

    Raises:
        NotPortable: a layer Keras 3 does not have or a setting it cannot represent (named).
    """
    config = copy.deepcopy(config)
    _port_model(config, zip_format)
    return config


def _port_model(model: dict, zip_format: bool) -> None:
    model.pop("compile_config", None)
    if zip_format and model.get("class_name") in ("Functional", "Model"):
        model.update(module="keras", class_name="Model", registered_name=None)
    elif zip_format and model.get("class_name") == "Sequential":
        model.update(module="keras", registered_name=None)
    for layer in (model.get("config") or {}).get("layers", []):
        inner_layers = (layer.get("config") or {}).get("layers") if layer.get("class_name") in _GRAPHS else None
        if inner_layers is None:
            _port_layer(layer)
            continue
        if layer["class_name"] != "Sequential" or (inner_layers and inner_layers[0].get("class_name") == "InputLayer"):
            # tf_keras gives such a nested model a hidden call of its own (node 0), so the outer graph
            # refers to its first real call as node 1, which Keras 3 numbers 0: no one file serves both.
            raise NotPortable(f"layer {layer.get('name', (layer.get('config') or {}).get('name'))!r} is a nested "
                              f"{layer['class_name']} model, whose calls tf_keras and Keras 3 number differently")
        _port_model(layer, zip_format)


def _port_layer(layer: dict) -> None:
    class_name = layer.get("class_name")
    config = layer.get("config") or {}
    name = config.get("name", layer.get("name"))
    if class_name in _TFMOT_WRAPPERS:
        raise NotPortable(f"layer {name!r} is a tfmot {class_name} wrapper, which Keras 3 does not have; save the "
                          "stripped model (tfmot's strip_pruning / strip_clustering, or the model a compresslab "
                          "technique returns)")
    if class_name not in _PORTABLE_LAYERS or layer.get("registered_name") not in (None, class_name):
        raise NotPortable(f"layer {name!r} is a {class_name}, which plain Keras 3 cannot rebuild from this file "
                          "(only standard layers are written for Keras 3)")
    for key, no_op in _KERAS3_REFUSES.get(class_name, {}).items():
        if key not in config:
            continue
        value = config.pop(key)
        if no_op is not _ANY and value != no_op:
            raise NotPortable(f"layer {name!r} ({class_name}) sets {key}={value!r}, which Keras 3 does not support")
    axis = config.get("axis")
    if class_name == "BatchNormalization" and isinstance(axis, list):
        if len(axis) != 1:
            raise NotPortable(f"layer {name!r} normalizes over axes {axis}; Keras 3's BatchNormalization takes one")
        config["axis"] = axis[0]  # tf_keras writes the built axis as a list; Keras 3 wants an int
    dtype = config.get("dtype")
    if isinstance(dtype, dict):
        policy = (dtype.get("config") or {}).get("name")
        if policy != "float32":
            raise NotPortable(f"layer {name!r} has the dtype policy {policy!r}; only float32 models are written "
                              "for Keras 3")
        config["dtype"] = "float32"
    activation = config.get("activation")
    if activation is not None and not isinstance(activation, str):
        raise NotPortable(f"layer {name!r} has a custom activation {activation!r}")


def make_zip_portable(path: Path) -> None:
    """Rewrite the tf_keras ``.keras`` zip at ``path`` in place: portable config, no optimizer state.

    Raises:
        NotPortable: the file is left as tf_keras wrote it.
    """
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        members = {info.filename: archive.read(info.filename) for info in infos}
    members["config.json"] = json.dumps(portable_config(json.loads(members["config.json"]))).encode()
    if "model.weights.h5" in members:
        members["model.weights.h5"] = _without_optimizer(members["model.weights.h5"])
    with zipfile.ZipFile(path, "w") as archive:
        for info in infos:
            archive.writestr(info, members[info.filename], compress_type=info.compress_type)


def _without_optimizer(weights: bytes) -> bytes:
    # Keras 3 tries to load a stored optimizer's variables into a model it did not compile.
    buffer = io.BytesIO()
    with h5py.File(io.BytesIO(weights), "r") as source, h5py.File(buffer, "w") as target:
        for key, value in source.attrs.items():
            target.attrs[key] = value
        for key in source:
            if key != "optimizer":
                source.copy(source[key], target, name=key)
    return buffer.getvalue()


def make_h5_portable(path: Path) -> None:
    """Rewrite the tf_keras ``.h5`` file at ``path``: portable config, no optimizer state.

    The file is copied into a new one rather than edited in place: HDF5 never reclaims the
    space of a deleted attribute, and dead bytes would hide damage from the readers' checks.

    Raises:
        NotPortable: the file is left as tf_keras wrote it.
    """
    buffer = io.BytesIO()
    with h5py.File(path, "r") as source:
        raw = source.attrs["model_config"]
        config = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
        config = portable_config(config, zip_format=False)
        with h5py.File(buffer, "w") as target:
            for key, value in source.attrs.items():
                # Keras 3 compiles from a stored training configuration whose tf_keras optimizer it
                # cannot restore; the optimizer's variables go with it.
                if key != "training_config":
                    target.attrs[key] = value
            target.attrs["model_config"] = json.dumps(config).encode("utf-8")
            for key in source:
                if key != "optimizer_weights":
                    source.copy(source[key], target, name=key)
    path.write_bytes(buffer.getvalue())
