"""One weight tensor in the compressed format: positions, codebook and values.

A tensor is stored the smallest of three ways, every bit counted: ``raw`` float32, ``sparse``
(the positions of its non-zero weights + their float32 values) or ``coded`` (those positions
+ a codebook of its distinct non-zero values + Huffman-coded codebook indices). Positions are
a bitmask or Deep Compression's relative indices (gaps), Huffman-coded, whichever is smaller.
"""

from __future__ import annotations

import numpy as np

from .huffman import LENGTH_FIELD_BITS, _pack_lengths, _unpack_lengths, huffman_decode, huffman_encode

# A tensor with more distinct non-zero values than this was not clustered: store it raw.
MAX_CODEBOOK = 4096
# Gap index widths tried for the relative-index coding (the paper uses 8 for conv, 5 for fc).
GAP_BITS_CHOICES = (2, 3, 4, 5, 6, 7, 8)


def gap_symbols(positions: np.ndarray, gap_bits: int) -> np.ndarray:
    """Relative indices as in Deep Compression: zeros skipped before each non-zero, with fillers.

    Symbol ``g < 2**gap_bits - 1`` means "skip g zeros, then a non-zero weight"; the largest symbol
    is a filler meaning "skip that many zeros, no weight" (the paper's padding zero).

    Args:
        positions: increasing flat indices of the non-zero weights.
        gap_bits: width of a relative index; gaps of ``2**gap_bits - 1`` or more need fillers.

    Returns:
        The symbols, each in ``[0, 2**gap_bits)``.

    Example:
        >>> gap_symbols(np.array([0, 3, 12]), gap_bits=3).tolist()
        [0, 2, 7, 1]
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
    """Flat indices of the non-zero weights from :func:`gap_symbols`'s relative indices.

    Args:
        symbols: relative indices, fillers included.
        gap_bits: the width they were made with.

    Returns:
        The increasing positions of the non-zero weights.

    Example:
        >>> positions_from_gaps(np.array([0, 2, 7, 1]), gap_bits=3).tolist()
        [0, 3, 12]
    """
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
