"""Loading a model file: format detection, tf_keras files, and Keras 3 files converted.

A file's configuration is read here with :mod:`zipfile`, :mod:`json` and :mod:`h5py` (never
with Keras 3) and checked (:mod:`.checks`); a tf_keras file then goes to tf_keras, a Keras 3
file is translated (:mod:`.keras3`), rebuilt, given its weights (:mod:`.weights`) and, by
default, verified against Keras 3 (:mod:`.verify`). SavedModel folders: :mod:`.savedmodel`.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import h5py

from .._keras import keras
from ..datafiles import check_declared_sizes
from .checks import _H5_SUFFIXES, EXPECTED, _check_model_config, _short, _unreadable
from .keras3 import _ConversionError, _convert_model_config
from .savedmodel import _load_saved_model
from .verify import _verify_against_keras3
from .weights import _copy_weights, _H5Weights, _KerasZipWeights


def load_model(path, *, trust: bool = False, verify: bool = True):
    """Load a Sequential or Functional model as a tf_keras model, converting Keras 3 files.

    Reads ``.keras`` zips and HDF5 files written by tf_keras or by Keras 3 (the default
    ``tf.keras`` since TensorFlow 2.16), and SavedModel folders written by tf_keras. A Keras 3
    file is rebuilt in tf_keras from its configuration and its weights are copied; this works
    for models made of standard layers (convolutions, dense, normalization, pooling, dropout,
    reshaping, merging and activation layers, and nested Sequential/Functional models).
    The model is returned uncompiled; compile it before training or evaluating.

    Args:
        path: a ``.keras`` file, an ``.h5`` file or a SavedModel folder.
        trust: allow Lambda and custom layers. They execute code stored in or named by the
            file, so pass ``True`` only for files you trust.
        verify: for Keras 3 files only, run the file in Keras 3 in a separate Python process
            (a few seconds, mostly TensorFlow's start-up) and check the converted model gives
            the same outputs on fixed random inputs (max abs difference < 1e-5).

    Returns:
        An uncompiled tf_keras model.

    Raises:
        ValueError: if the path is missing or not a readable model file, if the model is
            subclassed (compression needs a Sequential or Functional model), if it has Lambda
            or custom layers and ``trust`` is False, or if a Keras 3 model cannot be converted
            or the conversion does not reproduce Keras 3's outputs.

    Example:
        >>> model = load_model("cnn.keras")
        >>> model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"cannot load a model from {str(path)!r}: no such file or folder; expected {EXPECTED}")
    if path.is_dir():
        return _load_saved_model(path, trust)
    if zipfile.is_zipfile(path):
        return _load_keras_zip(path, trust, verify)
    if _is_hdf5(path):
        return _load_h5(path, trust, verify)
    size = path.stat().st_size
    what = "is empty" if size == 0 else f"is neither a .keras zip nor an HDF5 file ({size} bytes)"
    if path.suffix.lower() == ".keras" and size:
        what = "is not a valid .keras zip (corrupt or truncated?)"
    elif path.suffix.lower() in _H5_SUFFIXES and size:
        what = "is not a valid HDF5 file (corrupt or truncated?)"
    raise ValueError(f"cannot load a model from {str(path)!r}: the file {what}; expected {EXPECTED}")


def _is_hdf5(path: Path) -> bool:
    try:
        return bool(h5py.is_hdf5(path))
    except Exception:
        return False


def _is_keras3(version) -> bool:
    if isinstance(version, bytes):
        version = version.decode("utf-8", "replace")
    return str(version or "").startswith("3.")


# --- .keras zips


def _load_keras_zip(path: Path, trust: bool, verify: bool):
    try:
        with zipfile.ZipFile(path) as archive:
            check_declared_sizes(path, archive.infolist())
            names = set(archive.namelist())
            if "config.json" not in names:
                raise _unreadable(path, "the zip has no config.json, so it is not a .keras model file")
            config = json.loads(archive.read("config.json"))
            metadata = json.loads(archive.read("metadata.json")) if "metadata.json" in names else {}
            weights = archive.read("model.weights.h5") if "model.weights.h5" in names else None
    except ValueError as error:
        if str(path) in str(error):
            raise
        raise _unreadable(path, f"the .keras zip is corrupt ({error})") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as error:
        raise _unreadable(path, f"the .keras zip is corrupt or truncated ({error})") from None
    if not isinstance(config, dict):
        raise _unreadable(path, "config.json does not hold a model configuration")
    _check_model_config(config, path, trust)
    if _is_keras3(metadata.get("keras_version")):
        if weights is None:
            raise _unreadable(path, "the Keras 3 .keras zip has no model.weights.h5")
        return _convert_keras3(path, config, _KerasZipWeights(weights, path), trust, verify)
    if path.suffix.lower() != ".keras":
        raise _unreadable(path, "a tf_keras zip must be named *.keras for tf_keras to read it")
    return _tf_keras_load(path, trust)


def _tf_keras_load(path: Path, trust: bool):
    try:
        return keras.models.load_model(path, compile=False, safe_mode=not trust)
    except Exception as error:  # tf_keras raises many types; the caller wants one clear error
        raise _unreadable(path, f"tf_keras could not load it ({type(error).__name__}: "
                                f"{_short(error)})") from None


# --- HDF5


def _load_h5(path: Path, trust: bool, verify: bool):
    try:
        with h5py.File(path, "r") as handle:
            raw = handle.attrs.get("model_config")
            version = handle.attrs.get("keras_version")
            if version is None and "model_weights" in handle:
                version = handle["model_weights"].attrs.get("keras_version")
    except Exception as error:
        raise _unreadable(path, f"the HDF5 file is corrupt or truncated ({_short(error)})") from None
    if raw is None:
        raise _unreadable(path, "the HDF5 file holds no model configuration (a weights-only file? "
                                "load it into a built model with model.load_weights)")
    try:
        config = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (ValueError, UnicodeDecodeError):
        raise _unreadable(path, "the HDF5 model configuration is not valid JSON") from None
    _check_model_config(config, path, trust)
    if _is_keras3(version):
        return _convert_keras3(path, config, _H5Weights(path), trust, verify)
    return _tf_keras_load(path, trust)


# --- Keras 3 files: translate the configuration, rebuild, copy the weights, verify


def _convert_keras3(path: Path, config: dict, weights, trust: bool, verify: bool):
    try:
        tf_config = _convert_model_config(config)
    except _ConversionError as error:
        raise ValueError(f"cannot convert the Keras 3 model in {str(path)!r} to tf_keras: {error}") from None
    except (AttributeError, TypeError, KeyError, IndexError) as error:  # entries that are not what Keras 3 writes
        raise _unreadable(path, f"its Keras 3 model configuration is malformed ({type(error).__name__}: "
                                f"{_short(error)})") from None
    try:
        # safe_mode=False lets a trusted Lambda's stored bytecode load; untrusted ones were refused above.
        model = keras.saving.deserialize_keras_object(tf_config, safe_mode=not trust)
    except Exception as error:
        raise ValueError(f"cannot convert the Keras 3 model in {str(path)!r} to tf_keras: rebuilding it "
                         f"failed ({type(error).__name__}: {_short(error)})") from None
    try:
        with weights:
            _copy_weights(model, config, weights.root())
    except _ConversionError as error:
        raise ValueError(f"cannot copy the weights of the Keras 3 model in {str(path)!r}: {error}") from None
    except Exception as error:  # h5py on a damaged file: OSError, KeyError, RuntimeError, ValueError...
        raise _unreadable(path, f"its weights are unreadable ({type(error).__name__}: {_short(error)})") from None
    if verify:
        _verify_against_keras3(model, path, trust)
    return model
