"""Figures of the quantization lab: weight histogram with levels, accuracy against bits,
size against accuracy, per-layer sensitivity. Each returns a ``go.Figure`` (never shown here).

Example:
    >>> fig = fig_accuracy_vs_bits(curve, float_accuracy=0.97, current_bits=4)
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..i18n import t
from .common import TECHNIQUE_COLORS, base_layout, honest_accuracy_axis, labelled, named

FLOAT_COLOR = "#37474f"
CURRENT_COLOR = "#e53935"
LEVEL_COLOR = "#e53935"
MAX_LEVELS_DRAWN = 256
SERIES_COLORS = ["#1e88e5", "#43a047", "#8e24aa", "#fb8c00", "#00897b", "#6d4c41"]
RECORD_SYMBOLS = {"dynamic": "diamond", "float16": "square", "int8": "star", "float32": "circle"}


def fig_quantization_levels(float_values, quantized_values=None, levels=None, *, title: str | None = None,
                            bins: int = 80, levels_label: str | None = None) -> go.Figure:
    """Histogram of a layer's float weights, the quantized weights, and the quantization levels.

    The histogram is computed with numpy (a bar trace per series), so the figure stays small
    even for layers with hundreds of thousands of weights. Levels are drawn as thin vertical
    lines when there are at most 256 of them in view; otherwise the legend says how many.

    Args:
        float_values: the layer's float weights (any shape).
        quantized_values: the same weights after quantization (optional).
        levels: the real values the codes stand for (optional).
        title: chart title (default: "Weights" in the language in use).
        bins: histogram bins over the float weights' range.
        levels_label: legend text for the level lines (default: "quantization levels" in the language in use).

    Returns:
        A ``go.Figure`` with traces "float weights", "quantized weights" (if given) and the levels
        (names in the language in use; ``meta`` in English).

    Example:
        >>> q = cl.quantize.quantize_array(w, bits=3)
        >>> fig_quantization_levels(w, q.values, q.levels())
    """
    traces = quantization_levels_traces(float_values, quantized_values, levels, bins=bins,
                                        levels_label=levels_label)
    layout = base_layout(t("plot.weights_title") if title is None else title, t("plot.weight_value"), t("plot.count"),
                         barmode="overlay", bargap=0)
    return go.Figure(data=traces, layout=layout)


def quantization_levels_traces(float_values, quantized_values=None, levels=None, *, bins: int = 80,
                               levels_label: str | None = None) -> list[dict]:
    """The traces of :func:`fig_quantization_levels` as plain dicts (no Figure: cheap for live updates)."""
    if levels_label is None:
        levels_label = t("plot.levels")
    values = np.asarray(float_values, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("float_values is empty: nothing to draw")
    low, high = float(values.min()), float(values.max())
    if quantized_values is not None:
        quantized = np.asarray(quantized_values, dtype=np.float64).ravel()
        low, high = min(low, float(quantized.min())), max(high, float(quantized.max()))
    if high <= low:
        high = low + 1e-6
    edges = np.linspace(low, high, int(bins) + 1)
    centers = 0.5 * (edges[:-1] + edges[1:])
    width = float(edges[1] - edges[0])
    counts, _ = np.histogram(values, edges)
    traces = [dict(type="bar", x=centers, y=counts, width=width, marker=dict(color="#90a4ae"), opacity=0.9,
                   **named("plot.float_weights"))]
    top = float(counts.max())
    if quantized_values is not None:
        quantized_counts, _ = np.histogram(quantized, edges)
        traces.append(dict(type="bar", x=centers, y=quantized_counts, width=width, marker=dict(color="#1e88e5"),
                           opacity=0.55, **named("plot.quantized_weights")))
        top = max(top, float(quantized_counts.max()))
    if levels is not None:
        levels = np.asarray(levels, dtype=np.float64).ravel()
        shown = levels[(levels >= low - width) & (levels <= high + width)]
        # A grid finer than the bars is a red wash, not a picture (and the slowest part of the chart to
        # draw): the levels are drawn while there are at most as many as bars, else the legend says why.
        if 0 < shown.size <= min(MAX_LEVELS_DRAWN, int(bins)):
            # One trace of vertical segments separated by gaps (NaN), not one shape per level.
            xs = np.repeat(shown, 3)
            ys = np.tile(np.array([0.0, top, np.nan]), shown.size)
            xs[2::3] = np.nan
            traces.append(dict(type="scatter", x=xs, y=ys, mode="lines", line=dict(color=LEVEL_COLOR, width=1),
                               opacity=0.6, hoverinfo="skip",
                               name=t("plot.levels_count", label=levels_label, count=levels.size), meta="quantization levels"))
        else:
            traces.append(dict(type="scatter", x=[np.nan], y=[np.nan], mode="lines",
                               line=dict(color=LEVEL_COLOR, width=1), opacity=0.6, hoverinfo="skip",
                               name=t("plot.levels_dense", count=levels.size, label=levels_label), meta="quantization levels"))
    return traces


def fig_accuracy_vs_bits(curve, *, float_accuracy: float | None = None, current_bits: int | None = None,
                         current_series: str | None = None, records=None,
                         title: str | None = None) -> go.Figure:
    """Accuracy (percent) against weight bits, one line per series, float reference, current point.

    Args:
        curve: a DataFrame (or list of dicts) with columns ``bits``, ``accuracy`` (fraction) and
            optionally ``series`` (e.g. ``"symmetric per-channel"``).
        float_accuracy: the float model's accuracy (fraction): drawn as a dashed line.
        current_bits: the bit width to highlight.
        current_series: the series of the highlighted point (default: the first).
        records: optional DataFrame from ``cl.to_frame`` of measured TFLite/QAT variants; drawn as
            markers at ``extra.bits`` (8 for int8/dynamic, 16 for float16) labelled by name.
        title: chart title (default: "Accuracy against bits per weight" in the language in use).

    Returns:
        A ``go.Figure``.

    Example:
        >>> fig_accuracy_vs_bits([{"bits": 4, "accuracy": 0.9}], float_accuracy=0.97, current_bits=4)
    """
    traces = accuracy_vs_bits_traces(curve, float_accuracy=float_accuracy, current_bits=current_bits,
                                     current_series=current_series, records=records)
    layout = base_layout(t("plot.bits_title") if title is None else title, t("plot.bits_axis"), t("plot.test_accuracy"),
                         xaxis=dict(range=[0.5, 16.5], dtick=1))
    return honest_accuracy_axis(go.Figure(data=traces, layout=layout))


def accuracy_vs_bits_traces(curve, *, float_accuracy: float | None = None, current_bits: int | None = None,
                            current_series: str | None = None, records=None) -> list[dict]:
    """The traces of :func:`fig_accuracy_vs_bits` as plain dicts (no Figure: cheap for live updates)."""
    import pandas as pd

    frame = pd.DataFrame(curve) if not isinstance(curve, pd.DataFrame) else curve.copy()
    if not frame.empty:
        missing = {"bits", "accuracy"} - set(frame.columns)
        if missing:
            raise ValueError(f"curve needs columns 'bits' and 'accuracy'; missing {sorted(missing)}")
    if "series" not in frame.columns:
        frame["series"] = "simulated"
    traces = []
    series_names = list(dict.fromkeys(frame["series"])) if not frame.empty else []
    for index, series in enumerate(series_names):
        part = frame[frame["series"] == series].sort_values("bits")
        traces.append(dict(type="scatter", x=part["bits"].tolist(), y=(100 * part["accuracy"]).tolist(),
                           mode="lines+markers", **labelled(series),
                           line=dict(color=SERIES_COLORS[index % len(SERIES_COLORS)])))
    if float_accuracy is not None:
        traces.append(dict(type="scatter", x=[1, 16], y=[100 * float_accuracy] * 2, mode="lines",
                           line=dict(color=FLOAT_COLOR, dash="dash"),
                           name=f"float32 ({100 * float_accuracy:.2f}%)", meta="float32"))
    if current_bits is not None and not frame.empty:
        series = current_series if current_series in series_names else series_names[0]
        here = frame[(frame["series"] == series) & (frame["bits"] == current_bits)]
        if not here.empty:
            value = 100 * float(here["accuracy"].iloc[-1])
            traces.append(dict(type="scatter", x=[current_bits], y=[value], mode="markers+text",
                               marker=dict(size=14, color=CURRENT_COLOR, line=dict(color="white", width=2)),
                               text=[f"{value:.2f}%"], textposition="top center",
                               **named("plot.current_bits", bits=current_bits)))
    if records is not None and len(records):
        for _, row in pd.DataFrame(records).iterrows():
            bits = row.get("extra.bits")
            if bits is None or pd.isna(bits) or row.get("accuracy") is None:
                continue
            mode = row.get("extra.tflite_mode") or ""
            traces.append(dict(
                type="scatter", x=[int(bits)], y=[100 * float(row["accuracy"])], mode="markers",
                marker=dict(size=12, symbol=RECORD_SYMBOLS.get(mode, "triangle-up"),
                            color=TECHNIQUE_COLORS.get(str(row.get("technique")), "#546e7a")),
                name=f"{row['name']} ({100 * float(row['accuracy']):.2f}%, {row.get('accuracy_backend', '')})",
                meta=str(row["name"])))
    return traces


def fig_quantized_size_vs_accuracy(frame, *, size: str = "tflite_bytes",
                                   title: str | None = None) -> go.Figure:
    """Every measured variant as a point: size (KB) against test accuracy (%), coloured by technique.

    Args:
        frame: a DataFrame from ``cl.to_frame(records)``.
        size: the size column: ``"tflite_bytes"``, ``"gzip_bytes"`` or ``"dense_float32_bytes"``.
        title: chart title (default: "File size against accuracy" in the language in use).

    Returns:
        A ``go.Figure`` (one trace per technique, points labelled by variant name; a trace's ``meta``
        is its technique).

    Example:
        >>> fig_quantized_size_vs_accuracy(cl.to_frame(records), size="gzip_bytes")
    """
    import pandas as pd

    allowed = ("tflite_bytes", "gzip_bytes", "dense_float32_bytes")
    if size not in allowed:
        raise ValueError(f"size is {size!r}; choose one of {', '.join(allowed)}")
    frame = pd.DataFrame(frame)
    traces = []
    if not frame.empty:
        frame = frame[frame[size].notna() & frame["accuracy"].notna()]
        for technique, part in frame.groupby("technique", sort=False):
            traces.append(go.Scatter(
                x=(part[size] / 1024).tolist(), y=(100 * part["accuracy"]).tolist(), mode="markers+text",
                text=part["name"].tolist(), textposition="top center", **labelled(technique),
                marker=dict(size=11, color=TECHNIQUE_COLORS.get(str(technique), "#546e7a"))))
    layout = base_layout(t("plot.file_size_title") if title is None else title, t(f"plot.kb.{size}"),
                         t("plot.test_accuracy"))
    if not traces:  # say what fills the chart rather than showing a blank frame
        traces = [go.Scatter(x=[], y=[], mode="markers", showlegend=False, **named("plot.no_files"))]
        layout["annotations"] = [dict(text=t("plot.no_files_note"),
                                      showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)]
    return go.Figure(data=traces, layout=layout)


def fig_quantization_sensitivity(frame, *, title: str | None = None) -> go.Figure:
    """Bars of each layer's accuracy drop (points) from :func:`compresslab.quantize.layer_sensitivity`.

    Args:
        frame: the sensitivity DataFrame (columns ``layer``, ``bits``, ``accuracy_drop_points``).
        title: chart title (default: "Accuracy drop when one layer is quantized" in the language in use).

    Returns:
        A ``go.Figure``: one bar group per layer, one bar per bit width.

    Example:
        >>> fig_quantization_sensitivity(cl.quantize.layer_sensitivity(model, data, bits=[2, 4]))
    """
    import pandas as pd

    frame = pd.DataFrame(frame)
    missing = {"layer", "bits", "accuracy_drop_points"} - set(frame.columns)
    if missing:
        raise ValueError(f"frame needs columns layer, bits, accuracy_drop_points; missing {sorted(missing)}")
    traces = []
    for index, (bits, part) in enumerate(frame.groupby("bits")):
        traces.append(go.Bar(x=part["layer"].tolist(), y=part["accuracy_drop_points"].tolist(),
                             **named("plot.bits", bits=bits), marker_color=SERIES_COLORS[index % len(SERIES_COLORS)],
                             text=[f"{v:.1f}" for v in part["accuracy_drop_points"]], textposition="outside"))
    return go.Figure(data=traces, layout=base_layout(t("plot.drop_title") if title is None else title,
                                                     t("plot.layer_alone"), t("plot.accuracy_drop"), barmode="group"))


def _finite_db(values) -> list:
    """dB values for a bar chart: infinities (no error at all) drawn at 99 dB, NaN left out."""
    return [None if v != v else float(min(max(v, -99.0), 99.0)) for v in values]


def fig_layer_errors(frame, *, title: str | None = None) -> go.Figure:
    """Bars of each layer's weight SNR and output SNR (dB) from :func:`compresslab.lowbit.layer_errors`.

    Higher is better: 6 dB is about one bit. The weight bar says how much the layer's own weights
    changed; the output bar says how far its activations drifted, including what earlier layers
    changed, so the first layer whose output bar drops is where the model broke.

    Args:
        frame: the DataFrame of ``layer_errors`` (columns ``layer``, ``storage``, ``weight_snr_db``,
            ``output_snr_db``).
        title: chart title (default: "Which layer broke? Signal-to-noise ratio per layer" in the language
            in use).

    Returns:
        A ``go.Figure`` with two bars per layer.
    """
    import pandas as pd

    frame = pd.DataFrame(frame)
    missing = {"layer", "storage", "weight_snr_db", "output_snr_db"} - set(frame.columns)
    if missing:
        raise ValueError(f"frame needs the columns of cl.lowbit.layer_errors; missing {sorted(missing)}")
    labels = [f"{layer}<br>{storage}" for layer, storage in zip(frame["layer"], frame["storage"])]
    traces = []
    for column, key, color in (("weight_snr_db", "plot.weights", SERIES_COLORS[0]),
                               ("output_snr_db", "plot.layer_output", SERIES_COLORS[3])):
        values = _finite_db(frame[column])
        traces.append(go.Bar(x=labels, y=values, marker_color=color, **named(key),
                             text=["" if v is None else f"{v:.0f}" for v in values], textposition="outside"))
    return go.Figure(data=traces, layout=base_layout(t("plot.layer_errors_title") if title is None else title,
                                                     t("plot.layer_storage"), t("plot.snr"), barmode="group"))


__all__ = ["fig_quantization_levels", "fig_accuracy_vs_bits", "fig_quantized_size_vs_accuracy",
           "fig_quantization_sensitivity", "fig_layer_errors", "quantization_levels_traces",
           "accuracy_vs_bits_traces"]
