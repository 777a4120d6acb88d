"""Translating a Keras 3 model configuration into one tf_keras can rebuild.

Keras 3 writes ``batch_shape`` where tf_keras wants ``batch_input_shape``, DTypePolicy objects
where tf_keras wants a dtype name, ``{"args", "kwargs"}`` call records where tf_keras wants
``[layer, node, index, kwargs]`` lists, and numbers a nested model's calls differently. This
module rewrites the configuration (nothing here touches weights or runs Keras 3) and refuses,
with :class:`_ConversionError`, what it cannot translate faithfully.
"""

from __future__ import annotations

import inspect

from .._keras import keras
from .checks import _GRAPH_MODELS

_FUNCTIONAL_MODULE = "tf_keras.src.engine.functional"  # where tf_keras's own .keras files say it lives
# Keyword arguments every tf_keras layer accepts through ``Layer.__init__(**kwargs)``.
_BASE_LAYER_KWARGS = {"trainable", "name", "dtype", "dynamic", "input_dim", "input_shape",
                      "batch_input_shape", "batch_size", "weights", "activity_regularizer",
                      "autocast", "implementation"}


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
