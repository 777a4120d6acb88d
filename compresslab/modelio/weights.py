"""Reading the weights of a Keras 3 file and copying them into the rebuilt tf_keras model.

A ``.keras`` zip keeps them in ``model.weights.h5`` (``layers/<key>/vars/<0..n>``), an ``.h5``
file in its ``model_weights`` group; both are read with :mod:`h5py`, never with Keras 3.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import h5py
import numpy as np

from .._keras import keras
from .keras3 import _ConversionError


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
