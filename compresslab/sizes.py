"""Every size figure compresslab reports, in one place, and the size/accuracy front.

Owns: which stored size a variant is compared at (:func:`size_column`, :func:`deployable_bytes`)
and the Pareto front of size against accuracy (:func:`pareto_front`). Model-level byte counts
(sparse encodings, gzip of weights, packed quantized weights) live here too. Nothing here imports
plotly or ipywidgets: reports, boards and searches all use these without a view.

Example:
    >>> sizes, sources = size_column(cl.to_frame(records), "smallest")
    >>> pareto_front(sizes, [r.accuracy for r in records])
"""

from __future__ import annotations

import math

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


__all__ = ["SIZE_MEASURES", "size_column", "pareto_front", "deployable_bytes"]
