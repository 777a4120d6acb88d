"""Reading a TFLite file's weights back: which layer each belongs to, how it is stored, its values.

A TFLite flatbuffer keeps every weight as a constant tensor; ai-edge-quantizer stores low-bit ones
as INT8 / INT4 / INT2 tensors (4- and 2-bit values packed two and four to a byte, lowest bits
first) with per-channel scales, or blockwise with a separate float16 scale tensor. This module
parses the file with the quantizer's own flatbuffer reader, finds the weight of every op that has
one (following a DEQUANTIZE op back to its constant in weight-only files), names the Keras layer it
came from (TFLite keeps Keras layer names in tensor names, ``model/conv1/Conv2D``) and dequantizes
the stored integers, so a file can be compared weight by weight with its float original.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

# TFLite TensorType codes (tensorflow/compiler/mlir/lite/schema/schema.fbs) -> storage name.
STORAGE = {0: "float32", 1: "float16", 2: "int32", 7: "int16", 9: "int8", 17: "int4", 19: "int2"}
STORAGE_BITS = {"float32": 32, "float16": 16, "int32": 32, "int16": 16, "int8": 8, "int4": 4, "int2": 2}


@dataclass
class FileWeight:
    """One weight tensor of a TFLite file.

    Attributes:
        layer: the Keras layer it came from (None when no layer name is found in the tensor name).
        op: the TFLite op that consumes it (``"CONV_2D"``, ``"FULLY_CONNECTED"``, ...).
        op_index: the op's position in the main subgraph.
        scope: the op's scope as ai-edge-quantizer matches recipes against it (its output names).
        tensor: the weight tensor's name.
        storage: ``"float32"``, ``"float16"``, ``"int8"``, ``"int4"`` or ``"int2"``.
        granularity: ``"none"`` (float), ``"per_tensor"``, ``"per_channel"`` or ``"blockwise"``.
        block_size: block size of blockwise storage, else None.
        values: the weights dequantized to float32, in the file's layout.
        file_bytes: bytes the weight takes in the file (stored values plus blockwise scales).
    """

    layer: str | None
    op: str
    op_index: int
    scope: str
    tensor: str
    storage: str
    granularity: str
    block_size: int | None
    values: np.ndarray
    file_bytes: int

    @property
    def count(self) -> int:
        """Number of weight values."""
        return int(self.values.size)


def _flatbuffer():
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils

    return tfl_flatbuffer_utils


def read_model(content: bytes):
    """The flatbuffer's object tree (``ModelT``), or a ValueError naming what is wrong."""
    try:
        return _flatbuffer().read_model(bytearray(content))
    except Exception as error:  # the flatbuffer reader raises whatever a bad byte leads to
        raise ValueError(f"this is not a readable TFLite file ({type(error).__name__}: {error})") from None


@functools.cache
def _builtin_names() -> dict[int, str]:
    from ai_edge_litert import schema_py_generated as schema

    return {value: key for key, value in vars(schema.BuiltinOperator).items() if not key.startswith("_")}


def op_name(model, op) -> str:
    """The builtin name of ``op`` (``"CONV_2D"``), from the schema's enum."""
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
    return _builtin_names().get(builtin, f"builtin {builtin}")


def _name(tensor) -> str:
    name = tensor.name
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)


def layer_of(tensor_name: str, layer_names) -> str | None:
    """The Keras layer named in a TFLite tensor name (the last path part that is a layer name)."""
    known = set(layer_names)
    for part in reversed(re.split(r"[/;:]", tensor_name)):
        if part in known:
            return part
    return None


def _constant(model, tensor) -> bool:
    data = model.buffers[tensor.buffer].data if tensor.buffer < len(model.buffers) else None
    return data is not None and len(data) > 0


def _unpack(data: np.ndarray, bits: int, count: int) -> np.ndarray:
    """Signed ``bits``-bit integers packed low bits first into bytes -> int8 array of ``count``."""
    per_byte = 8 // bits
    raw = np.asarray(data, dtype=np.uint8)
    parts = [(raw >> (bits * k)) & ((1 << bits) - 1) for k in range(per_byte)]
    values = np.stack(parts, axis=1).reshape(-1)[:count].astype(np.int8)
    return np.where(values >= (1 << (bits - 1)), values - (1 << bits), values).astype(np.int8)


def dequantize(model, subgraph, tensor) -> tuple[np.ndarray, str, str, int | None, int]:
    """(float values, storage, granularity, block size, bytes in the file) of a constant tensor."""
    storage = STORAGE.get(int(tensor.type))
    if storage is None:
        raise ValueError(f"tensor {_name(tensor)!r} has TFLite type code {tensor.type}, which compresslab "
                         f"cannot read back; it reads {sorted(STORAGE.values())}")
    shape = tuple(int(s) for s in tensor.shape)
    count = int(np.prod(shape)) if shape else 1
    raw = np.asarray(model.buffers[tensor.buffer].data, dtype=np.uint8)
    file_bytes = int(raw.size)
    if storage in ("float32", "float16"):
        values = raw.view(np.float32 if storage == "float32" else np.float16).astype(np.float32)
        return values.reshape(shape), storage, "none", None, file_bytes
    if storage in ("int4", "int2"):
        codes = _unpack(raw, STORAGE_BITS[storage], count).astype(np.float32)
    else:
        codes = raw.view({"int8": np.int8, "int16": np.int16, "int32": np.int32}[storage]).astype(np.float32)
    codes = codes.reshape(shape)
    quantization = tensor.quantization
    from ai_edge_litert import schema_py_generated as schema

    blockwise = schema.QuantizationDetails.BlockwiseQuantization
    if quantization is not None and int(quantization.detailsType or 0) == blockwise:
        details = quantization.details
        scale_tensor = subgraph.tensors[details.scales]
        scales, _, _, _, scale_bytes = dequantize(model, subgraph, scale_tensor)
        block = int(details.blockSize)
        values = codes * np.repeat(scales, block, axis=-1)[..., : codes.shape[-1]]
        return values.astype(np.float32), storage, "blockwise", block, file_bytes + scale_bytes
    if quantization is None or quantization.scale is None or len(quantization.scale) == 0:
        raise ValueError(f"tensor {_name(tensor)!r} is stored as {storage} without scales; compresslab "
                         "cannot say what values it holds")
    scale = np.asarray(quantization.scale, dtype=np.float32)
    zero = np.asarray(quantization.zeroPoint if quantization.zeroPoint is not None else [0], dtype=np.float32)
    if scale.size == 1:
        return ((codes - zero.reshape(-1)[0]) * scale[0]).astype(np.float32), storage, "per_tensor", None, file_bytes
    axis = int(quantization.quantizedDimension or 0)
    view = [1] * codes.ndim
    view[axis] = -1
    zero = np.broadcast_to(zero.reshape(-1), scale.shape) if zero.size in (1, scale.size) else zero
    values = (codes - zero.reshape(view)) * scale.reshape(view)
    return values.astype(np.float32), storage, "per_channel", None, file_bytes


def file_weights(content: bytes, layer_names=()) -> list[FileWeight]:
    """Every op weight of a TFLite file, dequantized, with the Keras layer it came from.

    Args:
        content: the flatbuffer bytes.
        layer_names: the Keras model's layer names, to name each weight's layer.

    Returns:
        One :class:`FileWeight` per (op, weight) in the main subgraph, in op order. A weight is a
        constant input with at least two dimensions (biases and shapes are not weights).
    """
    model = read_model(content)
    subgraph = model.subgraphs[0]
    producer = {}
    for index, op in enumerate(subgraph.operators):
        for output in op.outputs if op.outputs is not None else ():
            producer[int(output)] = index
    scope_of = _flatbuffer().get_op_scope
    found = []
    for index, op in enumerate(subgraph.operators):
        name = op_name(model, op)
        if name == "DEQUANTIZE":
            continue
        for position in op.inputs if op.inputs is not None else ():
            position = int(position)
            if position < 0:
                continue
            tensor = subgraph.tensors[position]
            if not _constant(model, tensor) and position in producer:
                source = subgraph.operators[producer[position]]
                if op_name(model, source) != "DEQUANTIZE":
                    continue
                tensor = subgraph.tensors[int(source.inputs[0])]
            if not _constant(model, tensor) or len(tensor.shape) < 2:
                continue
            values, storage, granularity, block, file_bytes = dequantize(model, subgraph, tensor)
            found.append(FileWeight(
                layer=layer_of(_name(tensor), layer_names), op=name, op_index=index,
                scope=scope_of(op, subgraph.tensors), tensor=_name(tensor), storage=storage,
                granularity=granularity, block_size=block, values=values, file_bytes=file_bytes))
    return found


def to_keras_layout(weight: FileWeight, shape) -> np.ndarray | None:
    """The file's values rearranged to a Keras kernel's ``shape``, or None when they do not match.

    TFLite stores a Dense kernel as [out, in] (Keras: [in, out]), a Conv2D kernel as
    [out, kh, kw, in] (Keras: [kh, kw, in, out]) and a depthwise kernel as [1, kh, kw, in*m]
    (Keras: [kh, kw, in, m]).
    """
    values = weight.values
    shape = tuple(shape)
    candidates = []
    if values.ndim == 2:
        candidates.append(values.T)
    if values.ndim == 4:
        candidates.append(values.transpose(1, 2, 3, 0))
        candidates.append(values.reshape(shape) if values.size == int(np.prod(shape)) else None)
    for candidate in candidates:
        if candidate is not None and candidate.shape == shape:
            return candidate
    return None


__all__ = ["FileWeight", "STORAGE", "STORAGE_BITS", "file_weights", "dequantize", "layer_of", "op_name",
           "read_model", "to_keras_layout"]
