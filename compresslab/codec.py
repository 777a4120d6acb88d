"""compresslab's own compressed model format: Deep Compression's storage, byte for byte.

Han, Mao and Dally (ICLR 2016) store a pruned, weight-shared network as, per layer:

* the positions of the surviving weights, as *relative indices* (the gap since the previous
  non-zero weight, with a filler entry when a gap is longer than the index width allows);
* a small *codebook* of shared weight values (the k-means centroids) and, per surviving
  weight, the index of its centroid;
* Huffman codes for both the gaps and the centroid indices.

This module writes and reads exactly that. A ``.cldc`` file is::

    b"CLDC" | version (1 byte) | header length (uint32) | header (zlib JSON) | payload | CRC32 (uint32)

The header holds the architecture (the model's JSON config) and, per weight tensor, how it
is stored and where its bytes are. Every tensor is stored whichever way is smaller, with
every bit counted: ``raw`` (float32, for biases and small dense tensors), ``sparse``
(positions + float32 values: pruned but not clustered) or ``coded`` (codebook + positions +
Huffman-coded indices: pruned and clustered). Positions use gap coding or a bitmask, again
whichever is smaller. Decoding rebuilds a working tf_keras model whose weights
equal the encoded ones exactly (the codebook keeps float32 values).

Example:
    >>> blob = encode(clustered_model)
    >>> len(blob), 4 * clustered_model.count_params() / len(blob)   # bytes and ratio
    >>> model = decode(blob)
"""

from __future__ import annotations

import heapq
import json
import struct
import zlib
from pathlib import Path

import numpy as np

from ._io import atomic_write
from ._keras import keras

MAGIC = b"CLDC"
VERSION = 1
# Canonical Huffman code lengths are stored in this many bits each, and codes are limited
# to MAX_CODE_LENGTH bits so a lookup table of 2**MAX_CODE_LENGTH entries decodes them.
LENGTH_FIELD_BITS = 5
MAX_CODE_LENGTH = 16
# A tensor with more distinct non-zero values than this was not clustered: store it raw.
MAX_CODEBOOK = 4096
# Gap index widths tried for the relative-index coding (the paper uses 8 for conv, 5 for fc).
GAP_BITS_CHOICES = (2, 3, 4, 5, 6, 7, 8)


# ---------------------------------------------------------------------------------------------
# Canonical Huffman coding (with a length limit)


def huffman_code_lengths(frequencies, max_length: int = MAX_CODE_LENGTH) -> np.ndarray:
    """Code length of every symbol of a Huffman code for ``frequencies`` (0 for unused symbols).

    Lengths are limited to ``max_length`` by halving the frequencies and rebuilding when the
    tree grows too deep (a small loss against optimal, and only on very skewed counts).

    Example:
        >>> huffman_code_lengths([5, 1, 1, 0]).tolist()
        [1, 2, 2, 0]
    """
    frequencies = np.asarray(frequencies, dtype=np.int64)
    used = np.flatnonzero(frequencies > 0)
    lengths = np.zeros(len(frequencies), dtype=np.int64)
    if len(used) == 0:
        return lengths
    if len(used) == 1:
        lengths[used[0]] = 1
        return lengths
    if len(used) > 2 ** max_length:
        raise ValueError(f"{len(used)} symbols cannot get codes of at most {max_length} bits")
    counts = frequencies[used].copy()
    while True:
        # Heap of (weight, tie-break, symbols under this node); each merge deepens its symbols by one.
        heap = [(int(count), index, [index]) for index, count in enumerate(counts)]
        heapq.heapify(heap)
        depth = np.zeros(len(used), dtype=np.int64)
        tie = len(heap)
        while len(heap) > 1:
            weight_a, _, symbols_a = heapq.heappop(heap)
            weight_b, _, symbols_b = heapq.heappop(heap)
            merged = symbols_a + symbols_b
            depth[merged] += 1
            heapq.heappush(heap, (weight_a + weight_b, tie, merged))
            tie += 1
        if depth.max() <= max_length:
            lengths[used] = depth
            return lengths
        counts = np.maximum(1, counts // 2)


def _canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """Canonical Huffman codes (as integers) from code lengths: shorter codes first, then by symbol."""
    codes = np.zeros(len(lengths), dtype=np.int64)
    order = sorted((int(length), symbol) for symbol, length in enumerate(lengths) if length > 0)
    code = 0
    previous = order[0][0] if order else 0
    for position, (length, symbol) in enumerate(order):
        if position:
            code = (code + 1) << (length - previous)
        previous = length
        codes[symbol] = code
    return codes


def _pack_codes(codes: np.ndarray, lengths: np.ndarray) -> tuple[bytes, int]:
    """Concatenate variable-length codes (most significant bit first) into bytes; returns (bytes, bits)."""
    if len(codes) == 0:
        return b"", 0
    width = int(lengths.max())
    shifts = lengths[:, None] - 1 - np.arange(width)[None, :]
    bits = (codes[:, None] >> np.maximum(shifts, 0)) & 1
    bits = bits[shifts >= 0].astype(np.uint8)
    return np.packbits(bits).tobytes(), int(bits.size)


def huffman_encode(symbols: np.ndarray, alphabet_size: int) -> tuple[bytes, int, np.ndarray]:
    """Huffman-code a sequence of symbols in ``[0, alphabet_size)``.

    Returns:
        ``(bitstream bytes, number of bits, code lengths per symbol)``.
    """
    symbols = np.asarray(symbols, dtype=np.int64)
    lengths = huffman_code_lengths(np.bincount(symbols, minlength=alphabet_size))
    codes = _canonical_codes(lengths)
    stream, bit_count = _pack_codes(codes[symbols], lengths[symbols])
    return stream, bit_count, lengths


def huffman_decode(stream: bytes, count: int, lengths: np.ndarray, bit_count: int) -> np.ndarray:
    """Decode ``count`` symbols from a canonical Huffman bitstream with the given code lengths."""
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.max(initial=0) <= 0 or lengths.max() > MAX_CODE_LENGTH:
        raise ValueError("corrupt Huffman table (code lengths out of range)")
    if sum(2.0 ** -int(length) for length in lengths if length > 0) > 1.0 + 1e-12:
        raise ValueError("corrupt Huffman table (the code lengths do not form a prefix code)")
    codes = _canonical_codes(lengths)
    width = int(lengths.max())
    # Lookup table: every width-bit window starting with a code maps to (symbol, length).
    table_symbol = np.full(2 ** width, -1, dtype=np.int64)
    table_length = np.zeros(2 ** width, dtype=np.int64)
    for symbol in np.flatnonzero(lengths):
        length = int(lengths[symbol])
        start = int(codes[symbol]) << (width - length)
        table_symbol[start : start + (1 << (width - length))] = symbol
        table_length[start : start + (1 << (width - length))] = length
    bits = np.unpackbits(np.frombuffer(stream, dtype=np.uint8))
    if bits.size < bit_count:
        raise ValueError("corrupt file: a Huffman bitstream is shorter than its header says")
    bits = np.concatenate([bits[:bit_count], np.zeros(width, dtype=np.uint8)]).astype(np.int64)
    # windows[p] = the `width` bits starting at bit p, as an integer.
    windows = np.zeros(bit_count, dtype=np.int64)
    for offset in range(width):
        windows = (windows << 1) | bits[offset : offset + bit_count]
    symbol_at = table_symbol[windows].tolist()
    length_at = table_length[windows].tolist()
    output = [0] * count
    position = 0
    for index in range(count):
        if position >= bit_count:
            raise ValueError("corrupt file: a Huffman bitstream ended early")
        symbol = symbol_at[position]
        if symbol < 0:
            raise ValueError("corrupt file: an invalid Huffman code")
        output[index] = symbol
        position += length_at[position]
    if position != bit_count:
        raise ValueError("corrupt file: a Huffman bitstream does not end where its header says")
    return np.asarray(output, dtype=np.int64)


def _pack_lengths(lengths: np.ndarray) -> bytes:
    shifts = np.arange(LENGTH_FIELD_BITS - 1, -1, -1)
    bits = ((np.asarray(lengths, dtype=np.int64)[:, None] >> shifts) & 1).astype(np.uint8).ravel()
    return np.packbits(bits).tobytes()


def _unpack_lengths(data: bytes, count: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[: count * LENGTH_FIELD_BITS]
    if bits.size < count * LENGTH_FIELD_BITS:
        raise ValueError("corrupt file: a Huffman table is truncated")
    weights = 1 << np.arange(LENGTH_FIELD_BITS - 1, -1, -1)
    return (bits.reshape(count, LENGTH_FIELD_BITS).astype(np.int64) * weights).sum(axis=1)


# ---------------------------------------------------------------------------------------------
# Positions of the non-zero weights


def gap_symbols(positions: np.ndarray, gap_bits: int) -> np.ndarray:
    """Relative indices as in Deep Compression: zeros skipped before each non-zero, with fillers.

    Symbol ``g < 2**gap_bits - 1`` means "skip g zeros, then a non-zero weight"; the largest symbol
    is a filler meaning "skip that many zeros, no weight" (the paper's padding zero).
    """
    filler = 2 ** gap_bits - 1
    skips = np.diff(np.concatenate([[-1], np.asarray(positions, dtype=np.int64)])) - 1
    fillers = skips // filler
    remainders = skips - fillers * filler
    total = int(fillers.sum()) + len(skips)
    symbols = np.full(total, filler, dtype=np.int64)
    # Each non-zero's own symbol comes after its fillers.
    ends = np.cumsum(fillers + 1) - 1
    symbols[ends] = remainders
    return symbols


def positions_from_gaps(symbols: np.ndarray, gap_bits: int) -> np.ndarray:
    filler = 2 ** gap_bits - 1
    symbols = np.asarray(symbols, dtype=np.int64)
    steps = symbols + (symbols != filler)  # a weight also occupies its own position
    ends = np.cumsum(steps)
    return ends[symbols != filler] - 1


# ---------------------------------------------------------------------------------------------
# One tensor


def _encode_tensor(values: np.ndarray) -> tuple[dict, bytes]:
    flat = np.ascontiguousarray(values, dtype=np.float32).ravel()
    raw = flat.tobytes()
    raw_entry = {"encoding": "raw"}
    positions = np.flatnonzero(flat)
    nonzero = flat[positions]
    if flat.size < 16:
        return raw_entry, raw
    position_entry, position_blob = _encode_positions(positions, flat.size)
    # A pruned but not clustered tensor: positions + its float32 non-zero values.
    best_entry = {"encoding": "sparse", "nonzero": int(len(positions)), **position_entry}
    best_blob = position_blob + nonzero.astype(np.float32).tobytes()
    codebook, indices = np.unique(nonzero, return_inverse=True)
    if len(codebook) <= MAX_CODEBOOK:
        entry = {"encoding": "coded", "nonzero": int(len(positions)), "codebook": int(len(codebook)),
                 **position_entry}
        sections = [codebook.astype(np.float32).tobytes(), position_blob]
        if len(codebook) > 1:
            stream, bit_count, lengths = huffman_encode(indices, len(codebook))
            sections.append(_pack_lengths(lengths) + stream)
            entry["index_stream_bits"] = bit_count
        coded = b"".join(sections)
        if len(coded) < len(best_blob):
            best_entry, best_blob = entry, coded
    if len(best_blob) >= len(raw):
        return raw_entry, raw
    return best_entry, best_blob


def _encode_positions(positions: np.ndarray, size: int) -> tuple[dict, bytes]:
    """Positions of the non-zero weights: a bitmask or Huffman-coded gaps, whichever is smaller."""
    mask = np.zeros(size, dtype=np.uint8)
    mask[positions] = 1
    best = ("mask", np.packbits(mask).tobytes(), {})
    for gap_bits in GAP_BITS_CHOICES:
        symbols = gap_symbols(positions, gap_bits)
        stream, bit_count, lengths = huffman_encode(symbols, 2 ** gap_bits)
        blob = _pack_lengths(lengths) + stream
        if len(blob) < len(best[1]):
            best = ("gaps", blob, {"gap_bits": gap_bits, "gap_symbols": int(len(symbols)),
                                   "gap_stream_bits": bit_count})
    return {"positions": best[0], **best[2]}, best[1]


def _decode_tensor(entry: dict, data: bytes, shape: tuple) -> np.ndarray:
    size = int(np.prod(shape, dtype=np.int64))
    if entry["encoding"] == "raw":
        if len(data) != 4 * size:
            raise ValueError("corrupt file: a raw tensor has the wrong number of bytes")
        return np.frombuffer(data, dtype=np.float32).reshape(shape).copy()
    if entry["encoding"] not in ("coded", "sparse"):
        raise ValueError(f"corrupt file: unknown tensor encoding {entry['encoding']!r}")
    sparse = entry["encoding"] == "sparse"
    nonzero, codebook_size = int(entry["nonzero"]), 0 if sparse else int(entry["codebook"])
    if not 0 <= nonzero <= size or not 0 <= codebook_size <= MAX_CODEBOOK:
        raise ValueError("corrupt file: tensor counts out of range")
    position = 4 * codebook_size
    codebook = np.frombuffer(data[:position], dtype=np.float32)
    if entry["positions"] == "mask":
        mask_bytes = (size + 7) // 8
        mask = np.unpackbits(np.frombuffer(data[position : position + mask_bytes], dtype=np.uint8))[:size]
        positions = np.flatnonzero(mask)
        position += mask_bytes
    else:
        gap_bits = int(entry["gap_bits"])
        if gap_bits not in GAP_BITS_CHOICES:
            raise ValueError("corrupt file: gap width out of range")
        alphabet = 2 ** gap_bits
        table_bytes = (alphabet * LENGTH_FIELD_BITS + 7) // 8
        lengths = _unpack_lengths(data[position : position + table_bytes], alphabet)
        position += table_bytes
        stream_bytes = (int(entry["gap_stream_bits"]) + 7) // 8
        symbols = huffman_decode(data[position : position + stream_bytes], int(entry["gap_symbols"]),
                                 lengths, int(entry["gap_stream_bits"]))
        position += stream_bytes
        positions = positions_from_gaps(symbols, gap_bits)
    if len(positions) != nonzero or (nonzero and positions[-1] >= size):
        raise ValueError("corrupt file: the positions of a tensor's weights do not match its header")
    if sparse:
        if len(data) - position != 4 * nonzero:
            raise ValueError("corrupt file: a sparse tensor's values do not add up")
        flat = np.zeros(size, dtype=np.float32)
        flat[positions] = np.frombuffer(data[position:], dtype=np.float32)
        return flat.reshape(shape)
    if codebook_size > 1:
        table_bytes = (codebook_size * LENGTH_FIELD_BITS + 7) // 8
        lengths = _unpack_lengths(data[position : position + table_bytes], codebook_size)
        position += table_bytes
        stream_bytes = (int(entry["index_stream_bits"]) + 7) // 8
        indices = huffman_decode(data[position : position + stream_bytes], nonzero, lengths,
                                 int(entry["index_stream_bits"]))
        position += stream_bytes
    else:
        indices = np.zeros(nonzero, dtype=np.int64)
    if position != len(data):
        raise ValueError("corrupt file: a tensor's bytes do not add up")
    flat = np.zeros(size, dtype=np.float32)
    if nonzero:
        if indices.max(initial=0) >= codebook_size:
            raise ValueError("corrupt file: a codebook index is out of range")
        flat[positions] = codebook[indices]
    return flat.reshape(shape)


# ---------------------------------------------------------------------------------------------
# Whole models


def _strip_wrappers(model):
    """Remove tfmot pruning/clustering wrappers (their extra variables are not part of the model)."""
    names = {type(layer).__name__ for layer in model.layers}
    if "PruneLowMagnitude" in names:
        from ._keras import tfmot

        model = tfmot().sparsity.keras.strip_pruning(model)
    if "ClusterWeights" in names or "ClusterWeightsMHA" in names:
        from ._keras import tfmot

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
        ValueError: ``model`` is not a tf_keras model, or its architecture cannot be serialized.

    Example:
        >>> blob = encode(model)
        >>> restored = decode(blob)
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"encode takes a tf_keras Model, got {type(model).__name__}")
    model = _strip_wrappers(model)
    try:
        architecture = json.loads(model.to_json())
    except Exception as error:  # custom layers without get_config, for instance
        raise ValueError(f"cannot store the architecture of model {model.name!r}: {error}") from None
    tensors = []
    payload = []
    offset = 0
    for weight in model.weights:
        values = weight.numpy()
        if values.dtype != np.float32:
            raise ValueError(f"weight {weight.name!r} has dtype {values.dtype}; the format stores float32 weights")
        entry, blob = _encode_tensor(values)
        entry.update({"name": weight.name, "shape": list(values.shape), "offset": offset, "length": len(blob)})
        tensors.append(entry)
        payload.append(blob)
        offset += len(blob)
    header = {"format": "compresslab deep compression", "version": VERSION,
              "name": name or model.name, "architecture": architecture, "tensors": tensors}
    header_bytes = zlib.compress(json.dumps(header, separators=(",", ":")).encode("utf-8"), 9)
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
    if blob[4] != VERSION:
        raise ValueError(f"compressed model format version {blob[4]} is not supported (this is version {VERSION})")
    (crc,) = struct.unpack("<I", blob[-4:])
    if zlib.crc32(blob[:-4]) != crc:
        raise ValueError("corrupt or truncated compressed model: its checksum does not match")
    (header_length,) = struct.unpack("<I", blob[5:9])
    if 9 + header_length > len(blob) - 4:
        raise ValueError("corrupt compressed model: the header is longer than the file")
    try:
        header = json.loads(zlib.decompress(blob[9 : 9 + header_length]))
    except (zlib.error, ValueError) as error:
        raise ValueError(f"corrupt compressed model: unreadable header ({error})") from None
    header["_payload_start"] = 9 + header_length
    header["_file_bytes"] = len(blob)
    return header


def decode(blob: bytes):
    """Rebuild a working tf_keras model from :func:`encode`'s bytes.

    Returns:
        A compiled tf_keras model whose weights equal the encoded ones exactly.

    Raises:
        ValueError: the bytes are not a compresslab compressed model, or are truncated or corrupt.

    Example:
        >>> model = decode(Path("model.cldc").read_bytes())
    """
    header = read_header(blob)
    blob = bytes(blob)
    payload = blob[header["_payload_start"] : -4]
    try:
        model = keras.models.model_from_json(json.dumps(header["architecture"]))
    except Exception as error:
        raise ValueError(f"cannot rebuild the architecture stored in the file: {error}") from None
    entries = header["tensors"]
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
    model.set_weights(arrays)
    from .models import compile_for_classification

    compile_for_classification(model)
    return model


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


def read(path):
    """Read a file written by :func:`write` and decode it into a tf_keras model."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path} does not exist or is not a file; expected a compresslab .cldc file")
    try:
        return decode(path.read_bytes())
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


__all__ = ["encode", "decode", "read_header", "size_breakdown", "write", "read",
           "huffman_code_lengths", "huffman_encode", "huffman_decode", "gap_symbols", "positions_from_gaps"]
