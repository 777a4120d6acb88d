"""Canonical Huffman coding with a code-length limit: the entropy coder of Deep Compression.

Han, Mao and Dally code both the gaps between surviving weights and the codebook indices with
Huffman codes. A *canonical* code is fully described by its code lengths (shorter codes first,
then by symbol), so a file stores only :data:`LENGTH_FIELD_BITS` bits per symbol of the
alphabet, not a tree. Lengths are limited to :data:`MAX_CODE_LENGTH` bits so decoding is one
table lookup per symbol.

Example:
    >>> stream, bits, lengths = huffman_encode(np.array([0, 0, 1, 2]), alphabet_size=3)
    >>> huffman_decode(stream, 4, lengths, bits).tolist()
    [0, 0, 1, 2]
"""

from __future__ import annotations

import heapq

import numpy as np

# Canonical Huffman code lengths are stored in this many bits each, and codes are limited
# to MAX_CODE_LENGTH bits so a lookup table of 2**MAX_CODE_LENGTH entries decodes them.
LENGTH_FIELD_BITS = 5
MAX_CODE_LENGTH = 16


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

    Args:
        symbols: integers in ``[0, alphabet_size)``.
        alphabet_size: number of possible symbols (the code-length table has one entry each).

    Returns:
        ``(bitstream bytes, number of bits, code lengths per symbol)``.
    """
    symbols = np.asarray(symbols, dtype=np.int64)
    lengths = huffman_code_lengths(np.bincount(symbols, minlength=alphabet_size))
    codes = _canonical_codes(lengths)
    stream, bit_count = _pack_codes(codes[symbols], lengths[symbols])
    return stream, bit_count, lengths


def huffman_decode(stream: bytes, count: int, lengths: np.ndarray, bit_count: int) -> np.ndarray:
    """Decode ``count`` symbols from a canonical Huffman bitstream with the given code lengths.

    Args:
        stream: the bitstream bytes from :func:`huffman_encode`.
        count: number of symbols to decode.
        lengths: code length per symbol (0 for unused symbols).
        bit_count: number of meaningful bits in ``stream`` (the last byte is padded).

    Returns:
        The decoded symbols as an int64 array.

    Raises:
        ValueError: the table is not a prefix code, or the stream is truncated or corrupt.
    """
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
