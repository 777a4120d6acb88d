"""Saving and loading Keras models, including models saved by Keras 3.

compresslab works in tf_keras (Keras 2) because tensorflow-model-optimization needs it, but
since TensorFlow 2.16 the default ``tf.keras`` is Keras 3, and tf_keras refuses the files
Keras 3 writes (``Unrecognized keyword arguments: ['batch_shape']`` and friends). So
:func:`load_model` reads a file's configuration itself (the ``.keras`` zip and the HDF5 file
are parsed with :mod:`zipfile`, :mod:`json` and :mod:`h5py`, never with Keras 3), and:

* a tf_keras file is handed to tf_keras after a safety check of its layers;
* a Keras 3 file has its configuration translated to tf_keras, the model is rebuilt in
  tf_keras, the weights are copied variable by variable, and (by default) the outputs are
  checked against Keras 3 itself, run in a separate Python process so the two Kerases never
  share one interpreter.

Lambda layers and custom layers run code stored in (or referenced by) the file, so they are
refused unless the caller passes ``trust=True``.

Example:
    >>> save_model(model, "cnn.keras")
    >>> model = load_model("cnn.keras")
"""

from __future__ import annotations

import inspect
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
import warnings
import zipfile
from pathlib import Path

import h5py
import numpy as np

from ._keras import keras, tf

__all__ = ["load_model", "save_model"]

EXPECTED = "a .keras file, an .h5 file or a SavedModel folder"
_H5_SUFFIXES = (".h5", ".hdf5")
# Outputs of the converted model may differ from Keras 3's by float rounding only.
VERIFY_TOLERANCE = 1e-5
_VERIFY_TIMEOUT_SECONDS = 600

# Model classes whose configuration is a graph of layers (what compression can rewrite).
_GRAPH_MODELS = ("Sequential", "Functional", "Model")
# tf_keras layers that look like Lambda but only name a TensorFlow op (no stored code).
_FUNCTIONAL_MODULE = "tf_keras.src.engine.functional"  # where tf_keras's own .keras files say it lives
_SAFE_OP_LAYERS = ("TFOpLambda", "SlicingOpLambda")
# Keyword arguments every tf_keras layer accepts through ``Layer.__init__(**kwargs)``.
_BASE_LAYER_KWARGS = {"trainable", "name", "dtype", "dynamic", "input_dim", "input_shape",
                      "batch_input_shape", "batch_size", "weights", "activity_regularizer",
                      "autocast", "implementation"}


# ---------------------------------------------------------------------------------------------
# Saving


def save_model(model, path) -> Path:
    """Save a tf_keras model atomically: a crash never leaves a half-written file.

    The format follows the suffix: ``.keras`` (the native zip, recommended), ``.h5`` or
    ``.hdf5`` (legacy HDF5), anything else a TensorFlow SavedModel folder. The model is first
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
        elif suffix in _H5_SUFFIXES:
            with warnings.catch_warnings():  # the caller chose HDF5; tf_keras's "legacy" nag is noise
                warnings.filterwarnings("ignore", message=".*HDF5 file via `model.save", category=UserWarning)
                model.save(tmp, save_format="h5")
        else:
            model.save(tmp, save_format="tf")
        _move_into_place(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    return path


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


# ---------------------------------------------------------------------------------------------
# Loading


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


def _unreadable(path: Path, detail: str) -> ValueError:
    return ValueError(f"cannot load a model from {str(path)!r}: {detail}; expected {EXPECTED}")


def _is_keras3(version) -> bool:
    if isinstance(version, bytes):
        version = version.decode("utf-8", "replace")
    return str(version or "").startswith("3.")


# --- .keras zips


def _load_keras_zip(path: Path, trust: bool, verify: bool):
    try:
        with zipfile.ZipFile(path) as archive:
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


def _short(error: BaseException, limit: int = 400) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[:limit] + " ..."


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


# --- SavedModel folders


def _load_saved_model(path: Path, trust: bool):
    if not (path / "saved_model.pb").exists():
        raise _unreadable(path, "the folder holds no saved_model.pb, so it is not a SavedModel")
    metadata_file = path / "keras_metadata.pb"
    if not metadata_file.exists():
        raise _unreadable(path, "the SavedModel has no keras_metadata.pb: it was not written by "
                                "tf_keras (Keras 3's model.export() makes inference-only artifacts)")
    try:
        root = _saved_model_root_metadata(metadata_file.read_bytes())
    except (ValueError, IndexError, UnicodeDecodeError):
        raise _unreadable(path, "keras_metadata.pb is corrupt") from None
    if root is None or "class_name" not in root:
        raise _unreadable(path, "keras_metadata.pb describes no Keras model")
    _check_model_config({"class_name": root["class_name"], "config": root.get("config")}, path, trust)
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:
        raise _unreadable(path, f"tf_keras could not load the SavedModel ({type(error).__name__}: "
                                f"{_short(error)})") from None


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


def _protobuf_fields(data: bytes):
    """Yield ``(field number, value)`` of a protobuf message (bytes for length-delimited)."""
    position = 0
    while position < len(data):
        key, position = _read_varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _read_varint(data, position)
        elif wire_type == 2:
            length, position = _read_varint(data, position)
            value = data[position:position + length]
            if len(value) != length:
                raise ValueError("truncated protobuf")
            position += length
        elif wire_type == 1:
            value, position = data[position:position + 8], position + 8
        elif wire_type == 5:
            value, position = data[position:position + 4], position + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")
        yield number, value


def _saved_model_root_metadata(data: bytes) -> dict | None:
    # keras_metadata.pb is SavedMetadata{repeated SavedObject nodes = 1}, and SavedObject has
    # node_path = 3 and metadata = 5 (JSON). Parsing it by hand avoids tf_keras internals.
    for number, node in _protobuf_fields(data):
        if number != 1:
            continue
        fields = dict(_protobuf_fields(node))
        if fields.get(3, b"").decode() == "root":
            return json.loads(fields.get(5, b"{}").decode())
    return None


# ---------------------------------------------------------------------------------------------
# Safety and shape checks on a configuration (shared by every format)


def _check_model_config(config: dict, path: Path, trust: bool) -> None:
    class_name = config.get("class_name")
    inner = config.get("config")
    if class_name not in _GRAPH_MODELS or not isinstance(inner, dict) or "layers" not in inner:
        raise ValueError(
            f"cannot load {str(path)!r}: it holds a subclassed model (class {class_name!r}) with no "
            "layer graph in its configuration, and compression needs a Sequential or Functional "
            "model. Rebuild it with keras.Sequential([...]) or keras.Model(inputs, outputs).")
    if trust:
        return
    for layer in _walk_layers(config):
        layer_class = layer.get("class_name")
        layer_name = (layer.get("config") or {}).get("name", layer.get("name"))
        if layer_class == "Lambda":
            raise ValueError(
                f"refusing to load {str(path)!r}: layer {layer_name!r} is a Lambda layer, whose "
                "stored Python code runs when it loads. Pass trust=True to allow it, only for files "
                "you trust.")
        if not _is_standard_layer(layer):
            raise ValueError(
                f"refusing to load {str(path)!r}: layer {layer_name!r} of class {layer_class!r} is "
                "a custom (non-standard) layer, which runs code outside Keras when it loads. Pass "
                "trust=True to allow it, only for files you trust (and register the class with "
                "tf_keras).")


def _walk_layers(model_config: dict):
    """Every layer configuration of a model, nested models' layers included."""
    for layer in (model_config.get("config") or {}).get("layers", []):
        if not isinstance(layer, dict):
            continue
        if layer.get("class_name") in _GRAPH_MODELS and "layers" in (layer.get("config") or {}):
            yield from _walk_layers(layer)
        else:
            yield layer


def _is_standard_layer(layer: dict) -> bool:
    class_name = layer.get("class_name")
    module = layer.get("module")
    registered = layer.get("registered_name")
    if not isinstance(class_name, str) or not hasattr(keras.layers, class_name):
        return class_name in _SAFE_OP_LAYERS
    if module is not None and not (module in ("keras", "tf_keras") or module.startswith(("keras.", "tf_keras."))):
        return False
    return registered in (None, class_name)


# ---------------------------------------------------------------------------------------------
# Keras 3 -> tf_keras conversion


def _convert_keras3(path: Path, config: dict, weights, trust: bool, verify: bool):
    try:
        tf_config = _convert_model_config(config)
    except _ConversionError as error:
        raise ValueError(f"cannot convert the Keras 3 model in {str(path)!r} to tf_keras: {error}") from None
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
    except (OSError, KeyError) as error:
        raise _unreadable(path, f"its weights are unreadable ({_short(error)})") from None
    if verify:
        _verify_against_keras3(model, path, trust)
    return model


class _ConversionError(Exception):
    """A Keras 3 configuration or weight file that this converter cannot translate."""


def _convert_model_config(config: dict) -> dict:
    class_name = config["class_name"]
    inner = config["config"]
    layers = [_convert_layer(layer, functional=class_name != "Sequential") for layer in inner["layers"]]
    if class_name == "Sequential":
        result = {"name": inner.get("name", "sequential"), "layers": layers}
        if inner.get("build_input_shape") is not None:
            result["build_input_shape"] = inner["build_input_shape"]
        return {"module": "keras", "class_name": "Sequential", "config": result, "registered_name": None}
    result = {
        "name": inner.get("name", "model"),
        "layers": layers,
        "input_layers": _endpoints(inner.get("input_layers")),
        "output_layers": _endpoints(inner.get("output_layers")),
    }
    _renumber_nested_model_nodes(result)
    _check_graph(result)
    return {"module": _FUNCTIONAL_MODULE, "class_name": "Functional", "registered_name": "Functional",
            "config": result}


def _renumber_nested_model_nodes(config: dict) -> None:
    # tf_keras gives a nested model that starts with an InputLayer a hidden node 0 (its own
    # input-to-output node), so its first call is node 1; Keras 3 numbers that call 0.
    shifted = set()
    for layer in config["layers"]:
        inner_layers = layer["config"].get("layers") if layer["class_name"] in _GRAPH_MODELS else None
        if inner_layers and (layer["class_name"] != "Sequential" or inner_layers[0]["class_name"] == "InputLayer"):
            shifted.add(layer["name"])
    if not shifted:
        return
    references = [entry for layer in config["layers"] for node in layer["inbound_nodes"] for entry in node]
    references += config["input_layers"] + config["output_layers"]
    for entry in references:
        if entry[0] in shifted:
            entry[1] += 1


def _check_graph(config: dict) -> None:
    """Refuse dangling or circular references, on which tf_keras's from_config loops forever."""
    produced, needs = set(), {}
    for layer in config["layers"]:
        name = layer["name"]
        if layer["class_name"] == "InputLayer":
            produced.add((name, 0))
            continue
        inner_layers = layer["config"].get("layers") if layer["class_name"] in _GRAPH_MODELS else None
        offset = 1 if inner_layers and (layer["class_name"] != "Sequential"
                                        or inner_layers[0]["class_name"] == "InputLayer") else 0
        for index, node in enumerate(layer["inbound_nodes"]):
            needs[(name, index + offset)] = {(entry[0], entry[1]) for entry in node}
    known = produced | set(needs)
    for key, sources in needs.items():
        for source in sources:
            if source not in known:
                raise _ConversionError(f"layer {key[0]!r} takes its input from {source[0]!r} (call "
                                       f"{source[1]}), which the model does not define")
    while needs:
        ready = [key for key, sources in needs.items() if sources <= produced]
        if not ready:
            raise _ConversionError(f"the layer graph has a cycle through {sorted(needs)[0][0]!r}")
        for key in ready:
            produced.add(key)
            del needs[key]
    for entry in config["input_layers"] + config["output_layers"]:
        if (entry[0], entry[1]) not in produced:
            raise _ConversionError(f"the model's inputs or outputs name {entry[0]!r} (call {entry[1]}), "
                                   "which the model does not define")


def _endpoints(value) -> list:
    """Keras 3 writes a single input/output as ``[name, node, index]``; tf_keras wants a list."""
    if isinstance(value, dict):
        raise _ConversionError("models with dict inputs or outputs are not supported")
    if not isinstance(value, list) or not value:
        raise _ConversionError(f"unexpected model inputs/outputs {value!r}")
    if isinstance(value[0], str):
        return [list(value)]
    if all(isinstance(item, list) and len(item) == 3 and isinstance(item[0], str) for item in value):
        return [list(item) for item in value]
    raise _ConversionError("models with nested input or output structures are not supported")


def _convert_layer(layer: dict, functional: bool) -> dict:
    class_name = layer.get("class_name")
    config = layer.get("config") or {}
    name = config.get("name", layer.get("name"))
    if class_name in _GRAPH_MODELS and "layers" in config:
        converted = _convert_model_config({"class_name": class_name, "config": config})
        # tf_keras deserializes a nested Functional model under the class name "Functional".
        result = {"class_name": converted["class_name"], "config": converted["config"]}
        result["module"], result["registered_name"] = converted["module"], converted["registered_name"]
    else:
        cls = getattr(keras.layers, class_name, None) if isinstance(class_name, str) else None
        if cls is None or not isinstance(cls, type):
            raise _ConversionError(
                f"layer {name!r} has class {class_name!r}, which tf_keras does not have; only standard "
                "layers convert (rebuild the model in tf_keras, or save the weights and load them into it)")
        if class_name == "Lambda":
            config = _convert_lambda(config, name)
        result = {"module": "keras.layers", "class_name": class_name,
                  "config": _convert_layer_config(cls, config), "registered_name": None}
    if functional:
        result["name"] = name
        result["inbound_nodes"] = [_convert_node(node, name) for node in layer.get("inbound_nodes", [])]
    return result


def _convert_layer_config(cls: type, config: dict) -> dict:
    config = dict(config)
    if cls is keras.layers.InputLayer:
        if "batch_shape" in config:
            config["batch_input_shape"] = config.pop("batch_shape")
        if "shape" in config and "batch_input_shape" not in config:
            config["batch_input_shape"] = [None, *config.pop("shape")]
        allowed = _init_parameters(cls) | {"batch_input_shape"}
    else:
        allowed = _init_parameters(cls) | _BASE_LAYER_KWARGS
        if cls is keras.layers.Lambda:  # read by Lambda.from_config, not by the constructor
            allowed |= {"function_type", "module", "output_shape_type", "output_shape_module"}
    converted = {}
    for key, value in config.items():
        if key not in allowed:
            continue  # a Keras 3 argument tf_keras does not know (lora_rank, quantization_config, ...)
        if key == "dtype":
            value = _convert_dtype(value)
        elif key.endswith(("_initializer", "_regularizer", "_constraint")) or key == "activity_regularizer":
            value = _convert_object(value, key)
        elif key == "activation" and isinstance(value, dict):
            value = _convert_activation(value)
        converted[key] = value
    return converted


_INIT_CACHE: dict[type, frozenset] = {}


def _init_parameters(cls: type) -> frozenset:
    """Names the constructor of ``cls`` accepts, following ``**kwargs`` up the class tree."""
    if cls not in _INIT_CACHE:
        names: set[str] = set()
        for klass in cls.__mro__:
            if "__init__" not in vars(klass):
                continue
            try:
                parameters = list(inspect.signature(klass.__init__).parameters.values())[1:]
            except (TypeError, ValueError):
                break
            names |= {p.name for p in parameters
                      if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)}
            if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
                break
        _INIT_CACHE[cls] = frozenset(names)
    return _INIT_CACHE[cls]


def _convert_dtype(value):
    if isinstance(value, dict):
        # Keras 3 writes a DTypePolicy; tf_keras takes the policy's name ("float32", "mixed_float16").
        inner = value.get("config") or {}
        return inner.get("name", "float32")
    return value


_OBJECT_MODULES = {"_initializer": "initializers", "_regularizer": "regularizers", "_constraint": "constraints"}


def _convert_object(value, key: str):
    if value is None or isinstance(value, str | int | float):
        return value
    if not isinstance(value, dict) or "class_name" not in value:
        raise _ConversionError(f"cannot convert {key}={value!r}")
    kind = next((module for suffix, module in _OBJECT_MODULES.items() if key.endswith(suffix)), "regularizers")
    namespace = getattr(keras, kind)
    cls = getattr(namespace, value["class_name"], None)
    if not isinstance(cls, type):
        raise _ConversionError(f"{key} uses {value['class_name']!r}, which tf_keras's keras.{kind} does not have")
    params = _init_parameters(cls)
    config = {k: v for k, v in (value.get("config") or {}).items() if k in params}
    return {"module": f"keras.{kind}", "class_name": value["class_name"], "config": config,
            "registered_name": None}


def _convert_activation(value: dict):
    name = value.get("config", value.get("class_name"))
    if isinstance(name, str) and hasattr(keras.activations, name):
        return name
    raise _ConversionError(f"cannot convert the custom activation {value!r}")


def _convert_lambda(config: dict, name: str) -> dict:
    config = dict(config)
    function = config.get("function")
    if isinstance(function, dict) and function.get("class_name") == "__lambda__":
        inner = function.get("config") or {}
        config["function"] = [inner.get("code"), inner.get("defaults"), inner.get("closure")]
        config["function_type"] = "lambda"
    else:
        raise _ConversionError(f"Lambda layer {name!r} wraps a named function ({function!r}); only inline "
                               "Python lambdas convert")
    output_shape = config.get("output_shape")
    if isinstance(output_shape, dict):
        raise _ConversionError(f"Lambda layer {name!r} has a function as output_shape, which does not convert")
    config.setdefault("output_shape", None)
    config.update(output_shape_type="raw", output_shape_module=None, module=None)
    return config


def _keras_tensor_history(value):
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        return list((value.get("config") or {}).get("keras_history"))
    return None


def _convert_node(node, layer_name: str) -> list:
    """Keras 3 ``{"args": [...], "kwargs": {...}}`` -> tf_keras ``[[layer, node, index, kwargs], ...]``."""
    if isinstance(node, list):  # already the tf_keras format
        return node
    args = node.get("args", [])
    kwargs = node.get("kwargs") or {}
    if any(_contains_tensor(value) for value in kwargs.values()):
        raise _ConversionError(f"layer {layer_name!r} is called with a tensor keyword argument, "
                               "which does not convert")
    kwargs = {key: value for key, value in kwargs.items() if value is not None}
    if len(args) != 1:
        raise _ConversionError(f"layer {layer_name!r} is called with {len(args)} positional arguments; "
                               "only layers called on one tensor or one list of tensors convert")
    tensors = args[0] if isinstance(args[0], list) else [args[0]]
    entries = []
    for tensor in tensors:
        history = _keras_tensor_history(tensor)
        if history is None:
            raise _ConversionError(f"layer {layer_name!r} is called on a constant {tensor!r}, which does "
                                   "not convert")
        entries.append([*history, kwargs])
    return entries


def _contains_tensor(value) -> bool:
    if _keras_tensor_history(value) is not None:
        return True
    if isinstance(value, list | tuple):
        return any(_contains_tensor(item) for item in value)
    if isinstance(value, dict):
        return any(_contains_tensor(item) for item in value.values())
    return False


# --- weights


def _snake_case(name: str) -> str:
    # The same rule as Keras 3's naming.to_snake_case, which names the groups of model.weights.h5.
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


class _KerasZipWeights:
    """The ``model.weights.h5`` of a Keras 3 ``.keras`` zip: ``layers/<key>/vars/<0..n>``."""

    def __init__(self, data: bytes, path: Path):
        self.data, self.path, self.handle = data, path, None

    def __enter__(self):
        self.handle = h5py.File(io.BytesIO(self.data), "r")
        return self

    def __exit__(self, *exc):
        self.handle.close()

    def root(self):
        return _ZipNode(self.handle)


class _ZipNode:
    def __init__(self, group):
        self.group = group

    def children(self, layer_configs: list, sequential: bool) -> dict:
        """Map layer name -> node for the layers of this model."""
        layers = self.group.get("layers")
        if layers is None:
            return {}
        result = {}
        for key in layers:
            child = layers[key]
            vars_group = child.get("vars")
            name = vars_group.attrs.get("name") if vars_group is not None else None
            if isinstance(name, bytes):
                name = name.decode()
            if name is not None:
                result[name] = _ZipNode(child)
        if result:
            return result
        # Older files carry no name attribute: rebuild Keras 3's keys from the layer order.
        counts: dict[str, int] = {}
        for layer in layer_configs:
            if sequential and layer.get("class_name") == "InputLayer":
                continue
            base = _snake_case(layer["class_name"])
            key = base if base not in counts else f"{base}_{counts[base]}"
            counts[base] = counts.get(base, 0) + 1
            if key in layers:
                result[(layer.get("config") or {}).get("name")] = _ZipNode(layers[key])
        return result

    def arrays(self) -> list[np.ndarray]:
        vars_group = self.group.get("vars")
        if vars_group is None:
            return []
        return [np.asarray(vars_group[key]) for key in sorted(vars_group, key=int)]


class _H5Weights:
    """The ``model_weights`` group of a Keras 3 ``.h5`` file: one group per top-level layer."""

    def __init__(self, path: Path):
        self.path, self.handle = path, None

    def __enter__(self):
        self.handle = h5py.File(self.path, "r")
        return self

    def __exit__(self, *exc):
        self.handle.close()

    def root(self):
        group = self.handle["model_weights"] if "model_weights" in self.handle else self.handle
        return _H5Node(group)


class _H5Node:
    def __init__(self, group, arrays: list | None = None):
        self.group, self._arrays = group, arrays

    def children(self, layer_configs: list, sequential: bool) -> dict:
        result = {}
        for layer in layer_configs:
            name = (layer.get("config") or {}).get("name")
            if self._arrays is not None or name not in self.group:
                continue
            layer_group = self.group[name]
            names = [n.decode() if isinstance(n, bytes) else str(n)
                     for n in layer_group.attrs.get("weight_names", [])]
            result[name] = _H5Node(layer_group, [np.asarray(layer_group[n]) for n in names])
        return result

    def arrays(self) -> list[np.ndarray]:
        return list(self._arrays or [])


def _copy_weights(model, config: dict, node) -> None:
    inner = config["config"]
    layer_configs = inner["layers"]
    sequential = config["class_name"] == "Sequential"
    children = node.children(layer_configs, sequential)
    for layer_config in layer_configs:
        name = (layer_config.get("config") or {}).get("name", layer_config.get("name"))
        if sequential and layer_config.get("class_name") == "InputLayer":
            continue
        layer = model.get_layer(name)
        child = children.get(name)
        if isinstance(layer, keras.Model) and isinstance(child, _ZipNode):
            _copy_weights(layer, layer_config, child)
            continue
        targets = layer.weights
        if not targets:
            continue
        if child is None:
            raise _ConversionError(f"no weights stored for layer {name!r}")
        arrays = child.arrays()
        # A nested model's weights sit flat in its .h5 group; tf_keras orders them per sub-layer.
        if isinstance(layer, keras.Model):
            arrays = _order_nested_h5(layer, child)
        shapes = [tuple(w.shape) for w in targets]
        if [tuple(a.shape) for a in arrays] != shapes:
            raise _ConversionError(
                f"layer {name!r} ({type(layer).__name__}) has variables of shapes {shapes} in tf_keras "
                f"but {[tuple(a.shape) for a in arrays]} in the file")
        layer.set_weights(arrays)


def _order_nested_h5(model, node: _H5Node) -> list:
    group = node.group
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("weight_names", [])]
    by_path = {n: np.asarray(group[n]) for n in names}
    arrays = []
    for weight in model.weights:
        # tf_keras names a variable "<layer>/<variable>:0"; Keras 3 stores ".../<layer>/<variable>".
        suffix = weight.name.split(":")[0]
        matches = [n for n in names if n == suffix or n.endswith("/" + suffix)]
        if len(matches) != 1:
            raise _ConversionError(f"cannot find the stored value of {weight.name!r} in nested model "
                                   f"{model.name!r}")
        arrays.append(by_path[matches[0]])
    return arrays


# --- verification against Keras 3, in a subprocess

_REFERENCE_SCRIPT = r"""
import sys
import numpy as np
import keras

path, out, safe_mode = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
model = keras.saving.load_model(path, compile=False, safe_mode=safe_mode)
rng = np.random.default_rng(0)
inputs = []
for tensor in model.inputs:
    shape = [2] + [8 if d is None else int(d) for d in tensor.shape[1:]]
    if "int" in str(tensor.dtype):
        inputs.append(rng.integers(0, 2, size=shape).astype(str(tensor.dtype)))
    else:
        inputs.append(rng.standard_normal(shape).astype("float32"))
outputs = model(inputs if len(inputs) > 1 else inputs[0], training=False)
outputs = [keras.ops.convert_to_numpy(o) for o in keras.tree.flatten(outputs)]
arrays = {f"input{i}": x for i, x in enumerate(inputs)}
arrays.update({f"output{i}": y for i, y in enumerate(outputs)})
np.savez(out, **arrays)
"""


def _keras3_environment() -> dict:
    env = dict(os.environ)
    env.pop("TF_USE_LEGACY_KERAS", None)
    env["KERAS_BACKEND"] = "tensorflow"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    return env


def keras3_reference_outputs(path, *, trust: bool = False) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Inputs and outputs of a Keras 3 model file, computed by Keras 3 in a subprocess.

    Args:
        path: a ``.keras`` or ``.h5`` file written by Keras 3.
        trust: let Keras 3 deserialize Lambda layers (``safe_mode=False``).

    Returns:
        ``(inputs, outputs)``: lists of arrays; inputs come from ``np.random.default_rng(0)``.

    Raises:
        ValueError: if Keras 3 cannot load or run the file.
    """
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="compresslab-verify-") as folder:
        out = Path(folder) / "reference.npz"
        command = [sys.executable, "-c", _REFERENCE_SCRIPT, str(path.resolve()), str(out),
                   "0" if trust else "1"]
        try:
            result = subprocess.run(command, env=_keras3_environment(), capture_output=True, text=True,
                                    timeout=_VERIFY_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            raise ValueError(f"verifying {str(path)!r}: Keras 3 did not finish within "
                             f"{_VERIFY_TIMEOUT_SECONDS} s (pass verify=False to skip the check)") from None
        if result.returncode != 0 or not out.exists():
            tail = "\n".join(result.stderr.strip().splitlines()[-5:])
            raise ValueError(f"verifying {str(path)!r}: Keras 3 could not run the file in a subprocess "
                             f"(exit code {result.returncode}):\n{tail}\n(pass verify=False to skip the check)")
        with np.load(out) as data:
            inputs = [data[f"input{i}"] for i in range(sum(k.startswith("input") for k in data.files))]
            outputs = [data[f"output{i}"] for i in range(sum(k.startswith("output") for k in data.files))]
    return inputs, outputs


def _verify_against_keras3(model, path: Path, trust: bool) -> None:
    inputs, expected = keras3_reference_outputs(path, trust=trust)
    feed = [tf.constant(x) for x in inputs]
    outputs = model(feed if len(feed) > 1 else feed[0], training=False)
    actual = [np.asarray(o) for o in tf.nest.flatten(outputs)]
    if len(actual) != len(expected):
        raise ValueError(f"the conversion of the Keras 3 model in {str(path)!r} did not reproduce its outputs: "
                         f"{len(actual)} outputs in tf_keras, {len(expected)} in Keras 3")
    for index, (mine, theirs) in enumerate(zip(actual, expected, strict=True)):
        if mine.shape != theirs.shape:
            raise ValueError(f"the conversion of the Keras 3 model in {str(path)!r} did not reproduce its "
                             f"outputs: output {index} has shape {mine.shape} in tf_keras, {theirs.shape} "
                             "in Keras 3")
        diff = float(np.max(np.abs(mine.astype(np.float64) - theirs.astype(np.float64)))) if mine.size else 0.0
        if not diff < VERIFY_TOLERANCE:
            raise ValueError(f"the conversion of the Keras 3 model in {str(path)!r} did not reproduce its "
                             f"outputs: max abs difference {diff:.3g} on output {index} (allowed "
                             f"< {VERIFY_TOLERANCE:g})")
