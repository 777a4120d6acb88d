"""Pruning figures: weights against a threshold, per-layer sparsity, accuracy against sparsity,
sensitivity scans, sparsity schedules and honest sizes. Each returns a ``go.Figure``.

Histograms are binned with numpy and drawn as bars, so a figure carries ~100 numbers instead of
every weight: that keeps a live panel's updates small.

Example:
    >>> fig_threshold_histogram(weights, threshold=0.05)
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..i18n import t
from .common import (
    TECHNIQUE_COLORS,
    base_layout,
    display_label,
    honest_accuracy_axis,
    labelled,
    log_axis,
    named,
)

KEPT_COLOR = "#90a4ae"
PRUNED_COLOR = "#e53935"
LINE_COLOR = "#c62828"


def histogram_edges(values, bins: int = 100) -> np.ndarray:
    """Bin edges symmetric around zero that cover ``values`` (reuse them while a slider moves)."""
    values = np.asarray(values).ravel()
    limit = float(np.max(np.abs(values))) if values.size else 1.0
    return np.linspace(-limit, limit, int(bins) + 1) if limit > 0 else np.linspace(-1, 1, int(bins) + 1)


def threshold_histogram_traces(values, threshold: float | None = None, *, kept=None, edges=None,
                               bins: int = 100) -> list[dict]:
    """The traces of :func:`fig_threshold_histogram` as plain dicts (a live panel assigns them in place)."""
    values = np.asarray(values).ravel()
    if edges is None:
        edges = histogram_edges(values, bins)
    if kept is None:
        kept = np.abs(values) >= (threshold if threshold is not None else -np.inf)
    kept = np.asarray(kept).ravel()
    kept_counts, _ = np.histogram(values[kept], bins=edges)
    pruned_counts = np.histogram(values, bins=edges)[0] - kept_counts
    centers = (edges[:-1] + edges[1:]) / 2
    width = float(edges[1] - edges[0])
    n_kept = int(kept.sum())
    traces = [
        dict(type="bar", x=centers, y=kept_counts, width=width, marker=dict(color=KEPT_COLOR),
             **named("plot.kept", count=n_kept)),
        dict(type="bar", x=centers, y=pruned_counts, width=width, marker=dict(color=PRUNED_COLOR),
             **named("plot.pruned", count=kept.size - n_kept)),
    ]
    if threshold is not None:
        top = max(1, int(max(kept_counts.max(initial=0), pruned_counts.max(initial=0))))
        traces.append(dict(type="scatter", x=[-threshold, -threshold, None, threshold, threshold],
                           y=[0.5, top, None, 0.5, top], mode="lines", line=dict(color=LINE_COLOR, dash="dash"),
                           **named("plot.threshold_line", threshold=threshold)))
    else:
        traces.append(dict(type="scatter", x=[None], y=[None], mode="lines", line=dict(color=LINE_COLOR, dash="dash"),
                           **named("plot.no_threshold")))
    return traces


def fig_threshold_histogram(values, threshold: float | None = None, *, kept=None, edges=None, bins: int = 100,
                            title: str | None = None, log_y: bool = True) -> go.Figure:
    """Histogram of weights, kept (grey) against pruned (red), with lines at -threshold and +threshold.

    Args:
        values: the weights (any shape; flattened), before pruning.
        threshold: where to draw the +/- lines (None: no lines).
        kept: boolean array like ``values``: True for weights that survive. Default: ``|w| >= threshold``.
        edges: histogram bin edges (see :func:`histogram_edges`); computed from ``values`` if None.
        title: chart title (default: "Weights and the pruning threshold" in the language in use).
        log_y: log-scaled counts (the spike at zero dwarfs everything else once pruned).
    """
    layout = base_layout(t("plot.threshold_title") if title is None else title, t("plot.weight_before"),
                         t("plot.count"), barmode="stack", bargap=0)
    if log_y:  # counts from 1 to every weight in one bin
        layout["yaxis"] = {**layout["yaxis"], **log_axis([1, max(1, np.size(values))])}
    return go.Figure(data=threshold_histogram_traces(values, threshold, kept=kept, edges=edges, bins=bins),
                     layout=layout)


def layer_sparsity_traces(sparsities, target: float | None = None) -> list[dict]:
    """The traces of :func:`fig_layer_sparsity` as plain dicts (bars, then the target line)."""
    if hasattr(sparsities, "columns"):
        layers, values = list(sparsities["layer"]), [float(v) for v in sparsities["sparsity"]]
    else:
        layers, values = list(sparsities), [float(v) for v in sparsities.values()]
    return [
        dict(type="bar", x=layers, y=[100 * v for v in values], text=[f"{100 * v:.1f}%" for v in values],
             textposition="outside", marker=dict(color=TECHNIQUE_COLORS["prune"]), **named("plot.sparsity")),
        dict(type="scatter", x=layers, y=[None if target is None else 100 * target] * len(layers), mode="lines",
             line=dict(color=LINE_COLOR, dash="dash"),
             **(named("plot.target") if target is None else named("plot.target_pct", percent=100 * target))),
    ]


def fig_layer_sparsity(sparsities, *, title: str | None = None, target: float | None = None) -> go.Figure:
    """Bars of each layer's sparsity (fraction of zero kernel weights).

    Args:
        sparsities: dict layer -> sparsity, or a DataFrame with ``layer`` and ``sparsity`` columns.
        title: chart title (default: "Sparsity per layer" in the language in use).
        target: draw the requested sparsity as a dashed line.
    """
    return go.Figure(data=layer_sparsity_traces(sparsities, target),
                     layout=base_layout(t("plot.layer_sparsity_title") if title is None else title, t("plot.layer"),
                                        t("plot.zero_weights"), yaxis=dict(range=[0, 110])))


PALETTE = ["#43a047", "#1e88e5", "#fb8c00", "#8e24aa", "#00897b", "#6d4c41", "#37474f"]


def accuracy_traces(frame, *, float_accuracy: float | None = None, current=None, series: str = "series",
                    series_names=None) -> list[dict]:
    """The traces of :func:`fig_accuracy_vs_sparsity` as plain dicts.

    ``series_names`` fixes the series (and so the number of traces), even those without points yet.
    A series' legend name is :func:`~compresslab.plots.common.display_label` of it; its ``meta`` is the
    series as given.
    """
    if series in frame.columns:
        names = list(series_names) if series_names is not None else list(dict.fromkeys(frame[series]))
        groups = [(name, frame[frame[series] == name]) for name in names]
    else:
        groups = [(None, frame)]
    traces = []
    for index, (name, rows) in enumerate(groups):
        rows = rows.sort_values("sparsity")
        traces.append(dict(type="scatter", x=list(100 * rows["sparsity"].astype(float)),
                           y=list(100 * rows["accuracy"].astype(float)), mode="lines+markers",
                           line=dict(color=PALETTE[index % len(PALETTE)]),
                           **(named("plot.accuracy") if name is None else labelled(name))))
    if float_accuracy is not None:
        traces.append(dict(type="scatter", x=[0, 100], y=[100 * float_accuracy] * 2, mode="lines",
                           line=dict(color="#37474f", dash="dot"), **named("plot.unpruned")))
    if current is not None:
        traces.append(dict(type="scatter", x=[100 * current[0]], y=[100 * current[1]], mode="markers",
                           marker=dict(size=14, color=LINE_COLOR, symbol="diamond"), **named("plot.now")))
    return traces


def fig_accuracy_vs_sparsity(frame, *, float_accuracy: float | None = None, current=None,
                             series: str = "series", series_names=None,
                             title: str | None = None) -> go.Figure:
    """Test accuracy (%) against sparsity (%), one line per series.

    Args:
        frame: DataFrame with ``sparsity`` and ``accuracy`` (fractions) and optionally a ``series``
            column (e.g. "one-shot", "fine-tuned").
        float_accuracy: the unpruned model's accuracy (a dashed reference line).
        current: (sparsity, accuracy) to highlight.
        series_names: the series to draw, in order (default: those in ``frame``).
        title: chart title (default: "Accuracy against sparsity" in the language in use).
    """
    traces = accuracy_traces(frame, float_accuracy=float_accuracy, current=current, series=series,
                             series_names=series_names)
    layout = base_layout(t("plot.accuracy_sparsity_title") if title is None else title, t("plot.sparsity_pct"),
                         t("plot.test_accuracy"), xaxis=dict(range=[0, 100]))
    return honest_accuracy_axis(go.Figure(data=traces, layout=layout))


def fig_sensitivity(scan, *, float_accuracy: float | None = None,
                    title: str | None = None) -> go.Figure:
    """One line per layer: test accuracy when only that layer is pruned to each sparsity.

    Args:
        scan: the DataFrame of :func:`compresslab.prune.sensitivity_scan`.
        float_accuracy: the unpruned model's accuracy (a dotted reference line).
        title: chart title (default: "Sensitivity: each layer pruned alone" in the language in use).
    """
    figure = go.Figure(layout=base_layout(t("plot.sensitivity_title") if title is None else title,
                                          t("plot.layer_sparsity_pct"), t("plot.test_accuracy")))
    for name, rows in scan.groupby("layer", sort=False):
        rows = rows.sort_values("sparsity")
        figure.add_trace(go.Scatter(x=100 * rows["sparsity"], y=100 * rows["accuracy"], mode="lines+markers",
                                    name=str(name)))
    if float_accuracy is not None:
        figure.add_trace(go.Scatter(x=[0, 100], y=[100 * float_accuracy] * 2, mode="lines",
                                    line=dict(color="#37474f", dash="dot"), **named("plot.unpruned")))
    return figure


def fig_sparsity_schedule(frame, *, title: str | None = None,
                          steps_per_epoch: int | None = None) -> go.Figure:
    """Sparsity applied at each training step, one line per schedule.

    Args:
        frame: DataFrame with ``step``, ``sparsity`` and optionally ``schedule`` columns (see
            :func:`compresslab.prune.schedule_curve`); a schedule's legend name is shown translated
            when it is a known one (``"polynomial"``, ``"constant (chosen)"``...), its ``meta`` as given.
        title: chart title (default: "Sparsity schedule during fine-tuning" in the language in use).
        steps_per_epoch: mark epoch boundaries.
    """
    figure = go.Figure(layout=base_layout(t("plot.schedule_title") if title is None else title,
                                          t("plot.training_step"), t("plot.sparsity_pct"), yaxis=dict(range=[0, 100])))
    for trace in sparsity_schedule_traces(frame, steps_per_epoch=steps_per_epoch):
        figure.add_trace(go.Scatter(**{key: value for key, value in trace.items() if key != "type"}))
    return figure


def sparsity_schedule_traces(frame, *, steps_per_epoch: int | None = None) -> list[dict]:
    """The traces of :func:`fig_sparsity_schedule` as plain dicts (no Figure: cheap for live updates)."""
    traces = []
    groups = frame.groupby("schedule", sort=False) if "schedule" in frame.columns else [(None, frame)]
    for name, rows in groups:
        traces.append(dict(type="scatter", x=np.asarray(rows["step"]), y=100 * np.asarray(rows["sparsity"]),
                           mode="lines", line_shape="hv",
                           **(named("plot.schedule") if name is None else labelled(name))))
    if steps_per_epoch:
        last = int(frame["step"].max())
        marks = list(range(int(steps_per_epoch), last + 1, int(steps_per_epoch)))
        xs, ys = [], []
        for mark in marks:
            xs += [mark, mark, None]
            ys += [0, 100, None]
        traces.append(dict(type="scatter", x=xs, y=ys, mode="lines", line=dict(color="#b0bec5", dash="dot"),
                           **named("plot.epoch_end")))
    return traces


# The English names of the size columns; a chart shows them through the catalogue (plot.size_label.*).
SIZE_LABELS = {
    "dense_float32_bytes": "dense float32 (4 B x params)",
    "tflite_bytes": "TFLite file",
    "gzip_bytes": "TFLite file, gzip -9",
    "weights_gzip_bytes": "float32 weights, gzip -6 (quick proxy)",
    "bitmask_bytes": "bitmask + non-zero values",
    "csr_bytes": "CSR (row pointers + column indices + values)",
}


def size_traces(frame, *, columns=None, name_column: str = "name") -> list[dict]:
    """The traces of :func:`fig_sizes` as plain dicts (one bar group per size column).

    A variant's name on the x axis is shown translated when it is a known label (``"unpruned"``,
    ``"pruned now"``); a trace's ``meta`` is its English size name.
    """
    import pandas as pd

    if isinstance(frame, dict):
        frame = pd.DataFrame([{name_column: t("plot.model"), **frame}])
    columns = [c for c in (columns or SIZE_LABELS) if c in frame.columns]
    traces = []
    for column in columns:
        values = [float(v) / 1000 for v in frame[column]]
        shown = named(f"plot.size_label.{column}") if column in SIZE_LABELS else {"name": column, "meta": column}
        traces.append(dict(type="bar", x=[display_label(name) for name in frame[name_column]], y=values,
                           text=[f"{v:,.0f}" for v in values], textposition="outside", **shown))
    return traces


def fig_sizes(frame, *, columns=None, title: str | None = None, name_column: str = "name") -> go.Figure:
    """Grouped bars of the size figures (kB) of each variant.

    Args:
        frame: DataFrame with a ``name`` column and size columns such as those of
            :func:`compresslab.prune.size_report` (or a dict size name -> bytes for one variant).
        columns: which size columns to draw (default: those present among :data:`SIZE_LABELS`).
        title: chart title (default: "Honest sizes" in the language in use).
        name_column: the column naming each variant.
    """
    return go.Figure(data=size_traces(frame, columns=columns, name_column=name_column),
                     layout=base_layout(t("plot.sizes_title") if title is None else title, t("plot.variant"),
                                        t("plot.kilobytes"), barmode="group"))


def kernel_image(values) -> np.ndarray:
    """A kernel laid out as one 2-D picture: Dense [in, out] as is; Conv2D [kh, kw, in, out] as a row of
    kh x kw tiles (one per output filter, input channels stacked), separated by NaN gaps."""
    values = np.asarray(values, dtype=float)
    if values.ndim == 2:
        return values.T
    if values.ndim != 4:
        raise ValueError(f"a kernel picture needs a Dense (2-D) or Conv2D (4-D) kernel, got shape {values.shape}")
    kh, kw, channels, filters = values.shape
    columns = int(np.ceil(np.sqrt(filters * 2)))
    rows = int(np.ceil(filters / columns))
    image = np.full((rows * (kh * channels + 1), columns * (kw + 1)), np.nan)
    for index in range(filters):
        r, c = divmod(index, columns)
        tile = values[:, :, :, index].transpose(2, 0, 1).reshape(kh * channels, kw)
        image[r * (kh * channels + 1): r * (kh * channels + 1) + kh * channels, c * (kw + 1): c * (kw + 1) + kw] = tile
    return image


def fig_log_alpha(log_alpha, weights, *, threshold: float = 3.0, magnitude_kept=None,
                  title: str | None = None) -> go.Figure:
    """One layer's log alpha from sparse variational dropout beside its weights' magnitude.

    Left: log alpha per weight (dark = the model is sure it needs the weight; light = noise larger
    than the weight, log alpha above ``threshold``: removed). Right: |w| of the same weights, or, when
    ``magnitude_kept`` is given, which weights magnitude pruning keeps at the same sparsity (1 kept,
    0 removed), so the two choices can be compared weight by weight.

    Args:
        log_alpha: the layer's log alpha, shaped like its kernel (``model.sparse_vd["log_alpha"][name]``).
        weights: the layer's kernel (same shape).
        threshold: the log alpha above which sparse VD removes a weight.
        magnitude_kept: optional boolean mask of the weights magnitude pruning keeps.
        title: chart title (default: "Which weights does the model need?" in the language in use).
    """
    from plotly.subplots import make_subplots

    log_alpha = np.asarray(log_alpha)
    if np.shape(weights) != log_alpha.shape:
        raise ValueError(f"log_alpha has shape {log_alpha.shape} but weights {np.shape(weights)}; give one layer's both")
    right = np.abs(weights) if magnitude_kept is None else np.asarray(magnitude_kept, dtype=float)
    right_title = "|w|" if magnitude_kept is None else t("plot.magnitude_kept")
    figure = make_subplots(rows=1, cols=2, subplot_titles=(t("plot.log_alpha_panel", threshold=threshold),
                                                          right_title), horizontal_spacing=0.08)
    figure.add_trace(go.Heatmap(z=kernel_image(log_alpha), colorscale="Greys", zmin=-10, zmax=10,
                                colorbar={"title": "log alpha", "x": 0.45}, hoverongaps=False), row=1, col=1)
    figure.add_trace(go.Heatmap(z=kernel_image(right), colorscale="Greys", reversescale=True, showscale=False,
                                hoverongaps=False), row=1, col=2)
    figure.update_yaxes(autorange="reversed", showticklabels=False)
    figure.update_xaxes(showticklabels=False)
    figure.update_layout(title=t("plot.log_alpha_title") if title is None else title, height=420, margin={"l": 20, "r": 20, "t": 70, "b": 20},
                         plot_bgcolor="white")
    return figure


__all__ = [
    "histogram_edges", "threshold_histogram_traces", "layer_sparsity_traces", "accuracy_traces", "size_traces", "fig_threshold_histogram", "fig_layer_sparsity", "fig_accuracy_vs_sparsity",
    "fig_sensitivity", "fig_sparsity_schedule", "sparsity_schedule_traces", "fig_sizes", "SIZE_LABELS", "fig_log_alpha", "kernel_image",
]
