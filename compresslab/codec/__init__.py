"""compresslab's own compressed model format: Deep Compression's storage, byte for byte.

Han, Mao and Dally (ICLR 2016) store a pruned, weight-shared network as, per layer:

* the positions of the surviving weights, as *relative indices* (the gap since the previous
  non-zero weight, with a filler entry when a gap is longer than the index width allows);
* a small *codebook* of shared weight values (the k-means centroids) and, per surviving
  weight, the index of its centroid;
* Huffman codes for both the gaps and the centroid indices.

This package writes and reads exactly that, in three parts: :mod:`.huffman` (the canonical
Huffman coder, part of the lesson), :mod:`.tensors` (one tensor: raw, sparse or coded, with
its positions as a bitmask or gaps) and :mod:`.fileformat` (the ``.cldc`` file: header,
payload and CRC). Every tensor is stored whichever way is smaller, with every bit counted.

Example:
    >>> blob = encode(clustered_model)
    >>> len(blob), 4 * clustered_model.count_params() / len(blob)   # bytes and ratio
    >>> model = decode(blob)
"""

from __future__ import annotations

from .fileformat import MAGIC, VERSION, decode, encode, read, read_header, size_breakdown, write
from .huffman import LENGTH_FIELD_BITS, MAX_CODE_LENGTH, huffman_code_lengths, huffman_decode, huffman_encode
from .tensors import GAP_BITS_CHOICES, MAX_CODEBOOK, gap_symbols, positions_from_gaps

__all__ = ["encode", "decode", "read_header", "size_breakdown", "write", "read",
           "huffman_code_lengths", "huffman_encode", "huffman_decode", "gap_symbols", "positions_from_gaps",
           "MAGIC", "VERSION", "LENGTH_FIELD_BITS", "MAX_CODE_LENGTH", "MAX_CODEBOOK", "GAP_BITS_CHOICES"]
