"""The ``.cldc`` file: header, payload layout and checksum around the encoded tensors.

A ``.cldc`` file is::

    b"CLDC" | version (1 byte) | header length (uint32) | header (zlib JSON) | payload | CRC32 (uint32)

The header holds the architecture (the model's JSON config) and, per weight tensor, how it
is stored (:mod:`.tensors`) and how many bytes of the payload it takes (in order). Version 2, written
since 0.2.0, compresses the header with a preset zlib dictionary of common Keras config text
(``header_v2.zdict``, pinned by its SHA-256; ``scripts/header_dictionary.py`` shows how it was made),
which takes a small CNN's header from about 1,200 bytes to about 500, and leaves the tensors' offsets
out (they follow from the lengths). Version 1 files are still read. Decoding checks the magic
bytes, the version and the CRC before it trusts anything, then rebuilds a working tf_keras
model whose weights equal the encoded ones exactly (the codebook keeps float32 values).

Example:
    >>> blob = encode(clustered_model)
    >>> len(blob), 4 * clustered_model.count_params() / len(blob)   # bytes and ratio
    >>> model = decode(blob)
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from .._io import atomic_write
from .._keras import keras
from .tensors import _decode_tensor, _encode_tensor

MAGIC = b"CLDC"
VERSION = 2  # the version encode() writes
READABLE_VERSIONS = (1, 2)
_DICTIONARY = Path(__file__).with_name("header_v2.zdict")
_DICTIONARY_SHA256 = "22c2e92d510b6f4aa7f3d481ae18fe72de31cec877eb03b5c8bc4577fae4e90e"


@lru_cache(maxsize=1)
def header_dictionary() -> bytes:
    """The preset zlib dictionary of version-2 headers, checked against its pinned SHA-256."""
    try:
        data = _DICTIONARY.read_bytes()
    except OSError as error:
        raise RuntimeError(f"compresslab is installed without {_DICTIONARY.name} ({error}); reinstall it") from None
    if hashlib.sha256(data).hexdigest() != _DICTIONARY_SHA256:
        raise RuntimeError(f"{_DICTIONARY} is not the dictionary format version 2 was defined with (its SHA-256 "
                           "differs); every version-2 .cldc file needs the original: reinstall compresslab")
    return data


def _pack_header(header: dict) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS, 9, zlib.Z_DEFAULT_STRATEGY, header_dictionary())
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return packer.compress(text) + packer.flush()


def _unpack_header(version: int, packed: bytes) -> bytes:
    if version == 1:
        return zlib.decompress(packed)
    unpacker = zlib.decompressobj(zlib.MAX_WBITS, header_dictionary())
    text = unpacker.decompress(packed) + unpacker.flush()
    if not unpacker.eof:
        raise zlib.error("the header's compressed stream is incomplete")
    return text


def _strip_wrappers(model):
    """Remove tfmot pruning/clustering wrappers (their extra variables are not part of the model)."""
    names = {type(layer).__name__ for layer in model.layers}
    if "PruneLowMagnitude" in names:
        from .._keras import tfmot

        model = tfmot().sparsity.keras.strip_pruning(model)
    if "ClusterWeights" in names or "ClusterWeightsMHA" in names:
        from .._keras import tfmot

        model = tfmot().clustering.keras.strip_clustering(model)
    return model


def encode(model, *, name: str | None = None) -> bytes:
    """Encode a (pruned, clustered) tf_keras model into compresslab's compressed format.

    Every weight tensor is stored the smallest of three ways: raw float32; the positions of its
    non-zero weights (Huffman-coded gaps or a bitmask) + their float32 values; or those positions
    + a codebook of its distinct non-zero values + Huffman-coded codebook indices. The model is
    not modified.

    Args:
        model: a tf_keras model (tfmot pruning or clustering wrappers are stripped first).
        name: label stored in the header (defaults to the model's name).

    Returns:
        The file's bytes; ``len()`` of them is the honest compressed size.

    Raises:
        ModelTypeError: ``model`` is not a Keras classifier (a Keras 3 model is converted once).
        ValueError: its architecture cannot be serialized.

    Example:
        >>> blob = encode(model)
        >>> restored = decode(blob)
    """
    from ..modelio.convert import as_tf_keras  # modelio reads .cldc files through this module

    model = _strip_wrappers(as_tf_keras(model))
    try:
        architecture = json.loads(model.to_json())
    except Exception as error:  # custom layers without get_config, for instance
        raise ValueError(f"cannot store the architecture of model {model.name!r}: {error}") from None
    tensors = []
    payload = []
    for weight in model.weights:
        values = weight.numpy()
        if values.dtype != np.float32:
            raise ValueError(f"weight {weight.name!r} has dtype {values.dtype}; the format stores float32 weights")
        entry, blob = _encode_tensor(values)
        entry.update({"name": weight.name, "shape": list(values.shape), "length": len(blob)})
        tensors.append(entry)
        payload.append(blob)
    header = {"format": "compresslab deep compression", "version": VERSION,
              "name": name or model.name, "architecture": architecture, "tensors": tensors}
    header_bytes = _pack_header(header)
    body = MAGIC + bytes([VERSION]) + struct.pack("<I", len(header_bytes)) + header_bytes + b"".join(payload)
    return body + struct.pack("<I", zlib.crc32(body))


def read_header(blob: bytes) -> dict:
    """The header of an encoded model (architecture, per-tensor storage), after integrity checks.

    Raises:
        ValueError: the bytes are not a compresslab file, are truncated or corrupt.
    """
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise ValueError(f"decode takes bytes, got {type(blob).__name__}")
    blob = bytes(blob)
    if len(blob) < 13 or blob[:4] != MAGIC:
        raise ValueError("not a compresslab compressed model (the file does not start with b'CLDC')")
    if blob[4] not in READABLE_VERSIONS:
        raise ValueError(f"compressed model format version {blob[4]} is not supported (this compresslab reads "
                         f"versions {', '.join(map(str, READABLE_VERSIONS))}); a newer compresslab wrote it")
    (crc,) = struct.unpack("<I", blob[-4:])
    if zlib.crc32(blob[:-4]) != crc:
        raise ValueError("corrupt or truncated compressed model: its checksum does not match")
    (header_length,) = struct.unpack("<I", blob[5:9])
    if 9 + header_length > len(blob) - 4:
        raise ValueError("corrupt compressed model: the header is longer than the file")
    try:
        header = json.loads(_unpack_header(blob[4], blob[9 : 9 + header_length]))
    except (zlib.error, ValueError) as error:
        raise ValueError(f"corrupt compressed model: unreadable header ({error})") from None
    if not isinstance(header, dict) or not isinstance(header.get("tensors"), list):
        raise ValueError("corrupt compressed model: the header is not a table of the architecture and tensors")
    if blob[4] >= 2:  # offsets are not stored: each tensor starts where the one before it ends
        offset = 0
        for number, entry in enumerate(header["tensors"]):
            length = entry.get("length") if isinstance(entry, dict) else None
            if type(length) is not int or length < 0:
                raise ValueError(f"corrupt compressed model: tensor {number} has no byte length (a whole number "
                                 f"of bytes is required, got {length!r})")
            entry["offset"] = offset
            offset += length
    header["_payload_start"] = 9 + header_length
    header["_file_bytes"] = len(blob)
    return header


def decode(blob: bytes, *, trust: bool = False):
    """Rebuild a working tf_keras model from :func:`encode`'s bytes.

    Args:
        blob: the bytes of a ``.cldc`` file.
        trust: allow Lambda and custom layers in the stored architecture. They run code stored in
            or named by the file, so pass ``True`` only for files you made yourself.

    Returns:
        A compiled tf_keras model whose weights equal the encoded ones exactly.

    Raises:
        ValueError: the bytes are not a compresslab compressed model, are truncated or corrupt, or
            hold Lambda or custom layers and ``trust`` is False.

    Example:
        >>> model = decode(Path("model.cldc").read_bytes())
    """
    return _decode(blob, trust, "the compressed model")


def _architecture(header: dict, trust: bool, where) -> keras.Model:
    """The model the header describes, checked like any model file before Keras sees it."""
    from ..modelio.checks import _check_model_config

    architecture = header.get("architecture")
    if not isinstance(architecture, dict):
        raise ValueError("corrupt compressed model: the header holds no architecture")
    _check_model_config(architecture, where, trust)
    from tf_keras.src.saving.serialization_lib import SafeModeScope

    try:
        # tf_keras refuses stored Lambda code unless safe mode is off; trust was checked above
        with SafeModeScope(not trust):
            return keras.models.model_from_json(json.dumps(architecture))
    except Exception as error:
        raise ValueError(f"cannot rebuild the architecture stored in the file: {error}") from None


def _decode(blob: bytes, trust: bool, where):
    header = read_header(blob)
    blob = bytes(blob)
    payload = blob[header["_payload_start"] : -4]
    model = _architecture(header, trust, where)
    try:
        model.set_weights(_tensors(header["tensors"], payload, model))
    except ValueError:
        raise
    except Exception as error:  # a header with a valid checksum but malformed fields (a crafted file)
        raise ValueError(f"corrupt compressed model: malformed tensor table ({type(error).__name__}: "
                         f"{error})") from None
    from ..models import compile_for_classification

    compile_for_classification(model)
    return model


def _tensors(entries, payload: bytes, model) -> list[np.ndarray]:
    if len(entries) != len(model.weights):
        raise ValueError(f"corrupt compressed model: {len(entries)} tensors stored, the architecture has "
                         f"{len(model.weights)}")
    arrays = []
    for entry, weight in zip(entries, model.weights):
        shape = tuple(entry["shape"])
        if shape != tuple(weight.shape):
            raise ValueError(f"corrupt compressed model: tensor {entry['name']!r} has shape {shape}, the "
                             f"architecture expects {tuple(weight.shape)}")
        start, length = int(entry["offset"]), int(entry["length"])
        if start < 0 or length < 0 or start + length > len(payload):
            raise ValueError("corrupt compressed model: a tensor lies outside the file")
        arrays.append(_decode_tensor(entry, payload[start : start + length], shape))
    return arrays


def size_breakdown(blob: bytes) -> dict:
    """Bytes per part of an encoded model: header, and per tensor its encoding and bytes.

    Example:
        >>> size_breakdown(blob)["tensors"][0]
        {'name': 'conv1/kernel:0', 'encoding': 'coded', 'bytes': 212, ...}
    """
    header = read_header(blob)
    tensors = []
    for entry in header["tensors"]:
        row = {"name": entry["name"], "encoding": entry["encoding"], "bytes": int(entry["length"]),
               "params": int(np.prod(entry["shape"], dtype=np.int64))}
        for key in ("nonzero", "codebook", "positions", "gap_bits"):
            if key in entry:
                row[key] = entry[key]
        tensors.append(row)
    return {"file_bytes": header["_file_bytes"], "header_bytes": header["_payload_start"] + 4,
            "tensors": tensors}


def write(model_or_blob, path) -> Path:
    """Encode (if given a model) and write the file atomically; returns the path.

    A crash mid-write never leaves a half-written file at ``path``.
    """
    blob = model_or_blob if isinstance(model_or_blob, (bytes, bytearray)) else encode(model_or_blob)
    return atomic_write(path, bytes(blob))


def read(path, *, trust: bool = False):
    """Read a file written by :func:`write` and decode it into a tf_keras model.

    Args:
        path: the ``.cldc`` file.
        trust: allow Lambda and custom layers (see :func:`decode`).

    Raises:
        ValueError: the file is missing, a folder, not a ``.cldc`` file, damaged, or holds code
            and ``trust`` is False; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path} does not exist or is not a file; expected a compresslab .cldc file")
    try:
        blob = path.read_bytes()
        return _decode(blob, trust, path)
    except OSError as error:
        raise ValueError(f"{path} cannot be read ({error.strerror or error})") from None
    except ValueError as error:
        if str(path) in str(error):
            raise
        raise ValueError(f"{path}: {error}") from None
