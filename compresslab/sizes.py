"""Every size figure compresslab reports, in one place, and the size/accuracy front.

Owns: which stored size a variant is compared at (:func:`size_column`, :func:`deployable_bytes`)
and the Pareto front of size against accuracy (:func:`pareto_front`). Model-level byte counts
(sparse encodings with their index bits :func:`sparse_bytes`, gzip of raw weights
:func:`weights_gzip_bytes`, a pruned variant's sizes side by side :func:`size_report`, packed
quantized weights :func:`packed_weight_bytes`, the Shannon bound :func:`entropy_bytes`) live
here too. Nothing here imports
plotly or ipywidgets: reports, boards and searches all use these without a view.

Example:
    >>> sizes, sources = size_column(cl.to_frame(records), "smallest")
    >>> pareto_front(sizes, [r.accuracy for r in records])
"""

from __future__ import annotations

import math
import zlib

import numpy as np

# The size a variant is plotted at. "smallest" takes, per variant, the smallest real file measured
# for it: compresslab's compressed file (extra.compressed_bytes), the gzipped TFLite file or the
# TFLite file; the column it came from is shown on hover.
SIZE_MEASURES = {
    "smallest": "smallest stored file",
    "extra.compressed_bytes": "compressed file (compresslab codec)",
    "gzip_bytes": "gzip -9 of the TFLite file",
    "tflite_bytes": "TFLite file",
    "dense_float32_bytes": "dense float32 (4 x params)",
}
ENCODINGS = ("bitmask", "csr")  # sparse encodings :func:`sparse_bytes` counts
_SMALLEST_FROM = ("extra.compressed_bytes", "gzip_bytes", "tflite_bytes", "dense_float32_bytes")


def size_column(frame, size: str = "smallest"):
    """Bytes per row for the chosen size measure, and the name of the column each came from.

    Args:
        frame: a DataFrame from :func:`compresslab.to_frame`.
        size: a key of :data:`SIZE_MEASURES`.

    Returns:
        ``(sizes, sources)``: two lists aligned with the frame's rows (None where unknown).
    """
    if size not in SIZE_MEASURES:
        raise ValueError(f"size is {size!r}; choose one of {', '.join(SIZE_MEASURES)}")
    files = _SMALLEST_FROM[:-1] if size == "smallest" else (size,)
    sizes, sources = [], []
    for _, row in frame.iterrows():
        candidates = [(float(row[c]), c) for c in files if c in frame.columns and _present(row.get(c))]
        # The dense float32 size is only a fallback: it is not a file anyone stores.
        if not candidates and size == "smallest" and _present(row.get("dense_float32_bytes")):
            candidates = [(float(row["dense_float32_bytes"]), "dense_float32_bytes")]
        best, source = min(candidates) if candidates else (None, None)
        sizes.append(best)
        sources.append(source)
    return sizes, sources


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value > 0


def pareto_front(sizes, accuracies) -> list[int]:
    """Indices of the variants no other variant beats on both size and accuracy, smallest first.

    A variant is on the front when every smaller (or equally small) variant is less accurate.

    Example:
        >>> pareto_front([10, 20, 30], [0.9, 0.8, 0.95])
        [0, 2]
    """
    points = [(float(s), -float(a), i) for i, (s, a) in enumerate(zip(sizes, accuracies))
              if _present(s) and a is not None and not (isinstance(a, float) and math.isnan(a))]
    front, best = [], -math.inf
    for _size, negative_accuracy, index in sorted(points):
        if -negative_accuracy > best:
            front.append(index)
            best = -negative_accuracy
    return front


def deployable_bytes(record) -> float:
    """The smallest real file measured for one :class:`~compresslab.records.Record`.

    Takes compresslab's compressed file (``extra["compressed_bytes"]``), the gzipped TFLite file or
    the TFLite file, whichever is smallest; ``math.inf`` when none was measured. The dense float32
    figure is not a file and never counts here.
    """
    candidates = [s for s in (record.extra.get("compressed_bytes"), record.gzip_bytes, record.tflite_bytes) if s]
    return float(min(candidates)) if candidates else math.inf



# ---------------------------------------------------------------------------------------------
# Byte counts of pruned weights (sparse encodings, gzip of raw weights, a size report)


def _index_bits(count: int) -> int:
    return max(1, math.ceil(math.log2(max(2, count))))


def sparse_bytes(model, encoding: str = "bitmask", *, value_bytes: int = 4, layers=None) -> int:
    """Bytes of the model's weights in a sparse encoding, with the index overhead counted.

    Prunable kernels are encoded sparsely; every other weight (biases, BatchNorm) is stored dense.

    * ``"bitmask"``: one bit per weight saying zero / non-zero (``ceil(n / 8)`` bytes) plus the
      non-zero values (``value_bytes`` each). Beats dense once more than 1/32 of float32 weights are zero.
    * ``"csr"``: compressed sparse rows of the kernel viewed as (outputs, inputs): a row pointer per
      output plus one, each ``ceil(log2(nnz + 1))`` bits, a column index per non-zero,
      ``ceil(log2(inputs))`` bits, and the values. Cheaper than a bitmask only at high sparsity.

    Args:
        model: a tf_keras model.
        encoding: ``"bitmask"`` or ``"csr"``.
        value_bytes: bytes per stored value (4 for float32, 1 for int8).

    Returns:
        The total number of bytes (an integer, rounded up per tensor).

    Example:
        >>> sparse_bytes(pruned, "bitmask"), 4 * pruned.count_params()
    """
    from .prune.masks import _has_prunable, _kernel_of, prunable_layers

    if encoding not in ENCODINGS:
        raise ValueError(f"encoding is {encoding!r}; allowed: 'bitmask', 'csr'")
    if isinstance(value_bytes, bool) or not isinstance(value_bytes, int) or value_bytes < 1:
        raise ValueError(f"value_bytes is {value_bytes!r}; it must be an integer >= 1")
    # A model pruning cannot touch is all dense: every weight counted at value_bytes.
    chosen = prunable_layers(model, layers) if layers is not None or _has_prunable(model) else []
    kernels = {_kernel_of(layer).name for layer in chosen}
    total = 0
    for weight in model.weights:
        values = weight.numpy()
        if weight.name not in kernels:
            total += values.size * value_bytes
            continue
        total += _sparse_tensor_bytes(values, encoding, value_bytes)
    return int(total)


def _sparse_tensor_bytes(values: np.ndarray, encoding: str, value_bytes: int) -> int:
    nonzero = int(np.count_nonzero(values))
    if encoding == "bitmask":
        return math.ceil(values.size / 8) + nonzero * value_bytes
    matrix = np.moveaxis(values, -1, 0).reshape(values.shape[-1], -1)  # (outputs, inputs)
    rows, columns = matrix.shape
    pointer_bits = (rows + 1) * _index_bits(nonzero + 1)
    column_bits = nonzero * _index_bits(columns)
    return math.ceil((pointer_bits + column_bits) / 8) + nonzero * value_bytes


def weights_gzip_bytes(arrays, level: int = 6) -> int:
    """zlib/gzip size of the raw float32 bytes of ``arrays`` (a quick proxy, NOT a TFLite file).

    Level 6 takes ~0.07 s on 225k weights where level 9 can take 0.7 s on very sparse data, which
    is why the panel uses it while a slider moves.
    """
    payload = b"".join(np.ascontiguousarray(a, dtype=np.float32).tobytes() for a in arrays)
    return len(zlib.compress(payload, level))


def size_report(model, *, name: str | None = None, artifact=None) -> dict:
    """Every honest size of one variant, in bytes.

    ``dense_float32_bytes`` (4 x params), ``tflite_bytes`` (the real float32 flatbuffer; or the
    given ``artifact``'s bytes), ``gzip_bytes`` (gzip -9 of that file), ``bitmask_bytes`` and
    ``csr_bytes`` (:func:`sparse_bytes` with float32 values, or int8 values when the artifact is
    int8), plus params, nonzero params and ``kernel_sparsity``: the sparsity over the prunable
    kernels only (None when the model has none; see :func:`compresslab.prune.global_sparsity`).

    Example:
        >>> pd.DataFrame([size_report(dense, name="dense"), size_report(pruned, name="pruned")])
    """
    from .prune.masks import _has_prunable, global_sparsity
    from .tflite import convert, count_params

    params, nonzero = count_params(model)
    if artifact is None:
        artifact = convert(model, "float32")
    value_bytes = 1 if artifact.mode in ("int8", "dynamic") else (2 if artifact.mode == "float16" else 4)
    return {
        "name": name or model.name,
        "tflite_mode": artifact.mode,
        "params": params,
        "nonzero_params": nonzero,
        "kernel_sparsity": round(global_sparsity(model), 4) if _has_prunable(model) else None,
        "dense_float32_bytes": 4 * params,
        "tflite_bytes": artifact.size_bytes,
        "gzip_bytes": artifact.gzip_bytes,
        "bitmask_bytes": sparse_bytes(model, "bitmask", value_bytes=value_bytes),
        "csr_bytes": sparse_bytes(model, "csr", value_bytes=value_bytes),
    }


# ---------------------------------------------------------------------------------------------
# Byte counts of quantized weights (ideal packing) and the entropy bound of any weights


def packed_weight_bytes(model, arrays) -> float:
    """Ideal packed size in bytes of ``model`` with some kernels quantized. A bound, not a file size.

    Each quantized kernel counts ``bits`` per value plus one float32 scale and one float32 zero
    point per group; every other weight of the model counts 32 bits.

    Args:
        model: the tf_keras model the arrays came from.
        arrays: ``(layer name, attribute) -> QuantizedArray`` (see
            :func:`compresslab.quantize.quantize_weights`).

    Returns:
        Bytes (a float: bit widths need not fill whole bytes).

    Example:
        >>> packed_weight_bytes(model, cl.quantize.quantize_weights(model, cl.QuantSpec(bits=4)))
    """
    total_bits = 0.0
    counted = 0
    for quantized in arrays.values():
        total_bits += quantized.values.size * quantized.bits + quantized.groups * 32 * 2
        counted += quantized.values.size
    all_params = sum(int(np.prod(w.shape)) for w in model.weights)
    return (total_bits + (all_params - counted) * 32) / 8.0


def entropy_bytes(weights) -> float:
    """Shannon bound in bytes: sum over tensors of ``n * H(values) / 8``.

    ``H`` is the empirical entropy of a tensor's values. It is the size an ideal entropy coder
    would reach if it coded each value independently, and it falls as quantization, clustering
    and pruning leave fewer distinct values.

    Args:
        weights: a list of arrays (e.g. ``[w.numpy() for w in model.weights]``).

    Returns:
        Bytes (a float).

    Example:
        >>> entropy_bytes([np.array([0.0, 0.0, 1.0, 1.0])])   # 4 values of 1 bit
        0.5
    """
    total_bits = 0.0
    for tensor in weights:
        values = np.asarray(tensor).ravel()
        if values.size == 0:
            continue
        _, counts = np.unique(values, return_counts=True)
        probabilities = counts / values.size
        total_bits += float(-(counts * np.log2(probabilities)).sum())
    return total_bits / 8.0


__all__ = ["SIZE_MEASURES", "size_column", "pareto_front", "deployable_bytes", "sparse_bytes",
           "weights_gzip_bytes", "size_report", "packed_weight_bytes", "entropy_bytes"]
