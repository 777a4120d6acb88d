"""The tradeoff chart: every measured variant as size (log axis) against accuracy, with the Pareto front.

Example:
    >>> frame = cl.to_frame(cl.ExperimentLog("runs/sweep.jsonl"))
    >>> cl.plots.fig_tradeoff(frame)
"""

from __future__ import annotations

import html
import json
import math

import numpy as np
import plotly.graph_objects as go

from ..i18n import t
from ..sizes import SIZE_MEASURES, pareto_front, size_column  # noqa: F401  (re-exported: their old home)
from .common import TECHNIQUE_COLORS, base_layout, display_label, log_axis, named

_OTHER_COLOR = "#9e9e9e"


def size_measure_label(size: str) -> str:
    """How a size measure (a key of :data:`SIZE_MEASURES`) is named on a chart, in the language in use."""
    return t(f"plot.size_measure.{size}") if size in SIZE_MEASURES else str(size)


def hover_text(row, size_bytes, source) -> str:
    """One variant's hover text, in the language in use; every user-provided string is HTML-escaped."""
    spec = row.get("spec_json") or json.dumps(row.get("spec") or {}, sort_keys=True)
    try:
        spec_lines = [f"{html.escape(str(k))}: {html.escape(json.dumps(v))}" for k, v in json.loads(spec).items()]
    except (TypeError, ValueError):
        spec_lines = [html.escape(str(spec))]
    accuracy = row.get("accuracy")
    lines = [
        f"<b>{html.escape(str(row.get('name')))}</b> ({html.escape(display_label(row.get('technique')))})",
        t("plot.hover_accuracy", accuracy=100 * accuracy, backend=html.escape(str(row.get("accuracy_backend"))))
        if _number(accuracy) else t("plot.hover_no_accuracy"),
        t("plot.hover_size", size=size_bytes, measure=html.escape(size_measure_label(source))) if size_bytes
        else t("plot.hover_no_size"),
    ]
    if row.get("extra.split") == "validation":
        lines.insert(2, t("plot.hover_validation"))
    reference_bytes = row.get("ratio_reference_bytes")
    if not _number(reference_bytes):
        reference_bytes = row.get("dense_float32_bytes")
    if _number(reference_bytes) and size_bytes:
        against = row.get("reference") if isinstance(row.get("reference"), str) and row.get("reference") else None
        reference = t("plot.hover_dense_of", name=html.escape(against)) if against else t("plot.hover_dense")
        lines.append(t("plot.hover_smaller", ratio=reference_bytes / size_bytes, reference=reference))
    if spec_lines:
        lines.append(t("plot.hover_spec", spec="<br>  ".join(spec_lines[:12])))
    return "<br>".join(lines)


def _number(value) -> bool:
    return isinstance(value, (int, float, np.number)) and not (isinstance(value, float) and math.isnan(value))


def _accuracy_title(frame, sizes, accuracies) -> str:
    """The accuracy axis title: which split the plotted points were measured on."""
    splits = frame["extra.split"].tolist() if "extra.split" in frame else [None] * len(frame)
    plotted = {"validation" if splits[i] == "validation" else "test" for i in range(len(frame))
               if sizes[i] is not None and accuracies[i] is not None}
    if plotted == {"validation"}:
        return t("plot.validation_accuracy")
    return t("plot.mixed_accuracy") if len(plotted) > 1 else t("plot.test_accuracy")


def fig_tradeoff(frame, *, size: str = "smallest", title: str | None = None,
                 highlight=None, height: int = 420) -> go.Figure:
    """Scatter of size (log x axis) against accuracy, one colour per technique, Pareto front drawn.

    The accuracy axis says which split the points were measured on: test (a record without
    ``extra.split``, or with ``"test"``), validation (every point ``extra.split == "validation"``,
    as in ``autocompress(...).frame()``), or both, and then each validation point says so.

    Args:
        frame: a DataFrame from :func:`compresslab.to_frame` (one row per variant).
        size: which size to plot (a key of :data:`SIZE_MEASURES`; ``"smallest"`` by default).
        title: chart title (default: "Size against accuracy" in the language in use).
        highlight: optional row positions to ring (the variants selected for comparison).
        height: figure height in pixels.

    Returns:
        A ``go.Figure``: one scatter trace per technique (``customdata`` holds each point's row
        position in ``frame``), a ``Pareto front`` line and, when given, a ``selected`` trace. Names
        are in the language in use; each trace's ``meta`` is its English name (the technique, or
        ``"Pareto front"`` / ``"selected"``), the same in every language.

    Example:
        >>> fig_tradeoff(cl.to_frame(records)).data[0].name
        'baseline'
    """
    if size not in SIZE_MEASURES:
        raise ValueError(f"size is {size!r}; choose one of {', '.join(SIZE_MEASURES)}")
    frame = frame.reset_index(drop=True)
    sizes, sources = size_column(frame, size) if len(frame) else ([], [])
    accuracies = [100.0 * a if _number(a) else None for a in frame.get("accuracy", [])]
    traces = []
    techniques = list(dict.fromkeys(frame["technique"].tolist())) if len(frame) else []
    for technique in techniques:
        rows = [i for i in range(len(frame)) if frame.loc[i, "technique"] == technique
                and sizes[i] is not None and accuracies[i] is not None]
        traces.append(go.Scatter(
            x=[sizes[i] for i in rows], y=[accuracies[i] for i in rows], mode="markers",
            name=html.escape(display_label(technique)), meta=str(technique), customdata=rows,
            marker=dict(size=10, color=TECHNIQUE_COLORS.get(technique, _OTHER_COLOR), opacity=0.85,
                        line=dict(width=1, color="white")),
            hovertext=[hover_text(frame.loc[i], sizes[i], sources[i]) for i in rows], hoverinfo="text",
        ))
    front = pareto_front(sizes, [a if a is not None else float("nan") for a in accuracies])
    traces.append(go.Scatter(
        x=[sizes[i] for i in front], y=[accuracies[i] for i in front], mode="lines",
        line=dict(shape="hv", color="#212121", dash="dot", width=1.5), hoverinfo="skip",
        **named("plot.pareto_front"),
    ))
    chosen = [i for i in (highlight or []) if 0 <= i < len(frame) and sizes[i] is not None
              and accuracies[i] is not None]
    if highlight is not None:
        traces.append(go.Scatter(
            x=[sizes[i] for i in chosen], y=[accuracies[i] for i in chosen], mode="markers", **named("plot.selected"),
            marker=dict(size=18, color="rgba(0,0,0,0)", line=dict(width=2.5, color="#ff6f00")),
            hoverinfo="skip",
        ))
    x_title = t("plot.size_axis", measure=size_measure_label(size))
    plotted = [sizes[i] for i in range(len(sizes)) if sizes[i] is not None]
    layout = base_layout(t("plot.tradeoff_title") if title is None else title, x_title,
                         _accuracy_title(frame, sizes, accuracies), height=height, xaxis=log_axis(plotted),
                         hovermode="closest")
    return go.Figure(data=traces, layout=layout)


__all__ = ["fig_tradeoff", "pareto_front", "size_column", "hover_text", "size_measure_label", "SIZE_MEASURES"]
