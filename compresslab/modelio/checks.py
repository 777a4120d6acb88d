"""What every loader shares: the expected formats, the error wording and the safety checks.

A model file's configuration is checked before anything in it runs: it must be a Sequential or
Functional model (compression rewrites a layer graph), and Lambda or custom layers, which run
code stored in or named by the file, are refused unless the caller trusts the file.
"""

from __future__ import annotations

from pathlib import Path

from .._keras import keras

EXPECTED = "a .keras file, an .h5 file or a SavedModel folder"
_H5_SUFFIXES = (".h5", ".hdf5")
# Model classes whose configuration is a graph of layers (what compression can rewrite).
_GRAPH_MODELS = ("Sequential", "Functional", "Model")
# tf_keras layers that look like Lambda but only name a TensorFlow op (no stored code).
_SAFE_OP_LAYERS = ("TFOpLambda", "SlicingOpLambda")


def _unreadable(path: Path, detail: str) -> ValueError:
    return ValueError(f"cannot load a model from {str(path)!r}: {detail}; expected {EXPECTED}")


def _short(error: BaseException, limit: int = 400) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[:limit] + " ..."


def _check_model_config(config: dict, path: Path, trust: bool) -> None:
    try:
        _check_config(config, path, trust)
    except (AttributeError, TypeError, KeyError) as error:  # a layer entry that is not the dict it should be
        raise ValueError(f"cannot load {str(path)!r}: its model configuration is malformed "
                         f"({type(error).__name__}: {_short(error)})") from None


def _check_config(config: dict, path: Path, trust: bool) -> None:
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
    for holder, found in _nested_objects(inner):
        # Anywhere in the configuration (inside TimeDistributed, Bidirectional, any wrapper or
        # argument), a Lambda or a marshalled Python function is code that runs on load.
        if found.get("class_name") == "Lambda" or found.get("function_type") == "lambda":
            raise ValueError(
                f"refusing to load {str(path)!r}: layer {holder!r} holds a Lambda layer (stored Python code that "
                "runs when it loads), nested inside it. Pass trust=True to allow it, only for files you trust.")
        if found.get("class_name") and isinstance(found.get("config"), dict) and "layer" in found["config"]:
            for key in ("layer", "backward_layer"):
                wrapped = found["config"].get(key)
                if isinstance(wrapped, dict) and not _is_standard_layer(wrapped):
                    raise ValueError(
                        f"refusing to load {str(path)!r}: layer {holder!r} wraps a custom layer of class "
                        f"{wrapped.get('class_name')!r}, which runs code outside Keras when it loads. Pass "
                        "trust=True to allow it, only for files you trust.")


def _nested_objects(value, holder: str = "?"):
    """Every serialized object (a dict) anywhere inside ``value``, with the name of the layer holding it."""
    if isinstance(value, dict):
        config = value.get("config")
        name = (config.get("name") if isinstance(config, dict) else None) or value.get("name")
        here = name if isinstance(name, str) and "class_name" in value else holder
        yield holder, value
        for item in value.values():
            yield from _nested_objects(item, here)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _nested_objects(item, holder)


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
