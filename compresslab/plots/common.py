"""What every chart shares: the technique colours, the base layout, a plain weight histogram and the
chart texts' language.

Topic modules (``quantization``, ``pruning``, ``distillation``, ``tradeoff``) start their figures
from :func:`base_layout` so that every chart of a lesson looks alike.

Every title, axis title, legend name and hover text comes from the message catalogue
(:func:`compresslab.i18n.t`, keys ``plot.*``) in the language in use when the figure or its traces
are made. A trace whose name is translated keeps its English name in ``meta`` (see :func:`named`
and :func:`display_label`): code that looks a trace up compares ``meta``, which does not change
with the language.
"""

from __future__ import annotations

import math
import re

import plotly.graph_objects as go

from ..i18n import MESSAGES, t

TECHNIQUE_COLORS = {
    "baseline": "#37474f",
    "quantize": "#1e88e5",
    "cluster": "#8e24aa",
    "prune": "#43a047",
    "distill": "#fb8c00",
    "pipeline": "#e53935",
}

TEMPLATE = "plotly_white"


def named(key: str, **fields) -> dict:
    """A trace's ``name`` in the language in use and its ``meta``: the same name in English.

    Args:
        key: a ``plot.*`` key of :data:`compresslab.i18n.MESSAGES`.
        **fields: the message's ``{fields}``.

    Returns:
        ``{"name": ..., "meta": ...}``, to spread into a trace (``go.Scatter(**named(...))`` or a dict).

    Example:
        >>> named("plot.pareto_front")     # in Chinese
        {'name': '帕累托前沿', 'meta': 'Pareto front'}
    """
    return {"name": t(key, **fields), "meta": MESSAGES[key]["en"].format(**fields)}


# Data labels the panels and lessons plot (technique names, series, variants, schedules): the data keep
# the English text (it is what code groups and filters by); only the chart shows it translated.
_LABELS = {
    **{technique: f"plot.technique.{technique}" for technique in TECHNIQUE_COLORS},
    "magnitude, layer scope": "plot.label.magnitude_layer",
    "magnitude, global scope": "plot.label.magnitude_global",
    "threshold |w| < t": "plot.label.threshold",
    "polynomial": "plot.label.polynomial",
    "constant": "plot.label.constant",
    "unpruned": "plot.unpruned",
    "pruned now": "plot.label.pruned_now",
    "simulated": "plot.simulated",
    **{f"{scheme} {scale}": f"plot.label.{scheme}_{scale.replace('-', '_')}"
       for scheme in ("symmetric", "asymmetric") for scale in ("per-channel", "per-tensor")},
}
_LABEL_PATTERNS = [
    (re.compile(r"fixed-point p=(?P<p>\d+)"), "plot.label.fixed_point"),
    (re.compile(r"(?P<series>.+) \((?P<layer>[^()]+) only\)"), "plot.label.layer_only"),
    (re.compile(r"fine-tuned \((?P<schedule>\w+)\)"), "plot.label.finetuned"),
    (re.compile(r"(?P<schedule>\w+) \(chosen\)"), "plot.label.chosen"),
    (re.compile(r"teacher \((?P<name>.+)\)"), "plot.label.teacher"),
    (re.compile(r"scratch student (?P<width>\S+)x"), "plot.label.scratch"),
    (re.compile(r"distilled student (?P<width>\S+)x"), "plot.label.distilled"),
]


def display_label(text) -> str:
    """A data label (technique, series, variant or schedule name) as the chart shows it.

    Known English labels (``"prune"``, ``"magnitude, layer scope"``, ``"fine-tuned (polynomial)"``,
    ``"scratch student 0.5x"``...) come back in the language in use; anything else (layer names, a
    lesson's own series) comes back unchanged. In English every label comes back unchanged.

    Args:
        text: the label as stored in the data.

    Returns:
        The text to show.

    Example:
        >>> display_label("fine-tuned (constant)")   # in Chinese
        '微调（恒定）'
    """
    text = str(text)
    if text in _LABELS:
        return t(_LABELS[text])
    for pattern, key in _LABEL_PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            return t(key, **{field: display_label(value) for field, value in match.groupdict().items()})
    return text


def labelled(text) -> dict:
    """``{"name": display_label(text), "meta": text}``: a data-labelled trace's name and its fixed id."""
    return {"name": display_label(text), "meta": str(text)}


def base_layout(title: str, x_title: str, y_title: str, **extra) -> dict:
    """The layout every compresslab chart starts from (passed to the Figure constructor).

    Args:
        title: chart title.
        x_title: x axis title.
        y_title: y axis title.
        **extra: more layout keys; a dict merges into the base's dict of the same key.

    Returns:
        A layout dict.

    Example:
        >>> go.Figure(layout=base_layout("Accuracy", "bits", "accuracy (%)", height=300))
    """
    layout = dict(
        title=dict(text=title, x=0.02, xanchor="left"),
        template=TEMPLATE,
        # automargin: the margin grows to fit tick labels and axis titles (a rotated y title was cut
        # off at laptop width).
        xaxis=dict(title=dict(text=x_title), automargin=True),
        yaxis=dict(title=dict(text=y_title), automargin=True),
        margin=dict(l=60, r=20, t=50, b=105),
        height=390,
        # Below the plot, not over it: a legend at the top ran into long titles on a projector.
        legend=dict(orientation="h", yanchor="top", y=-0.28, xanchor="left", x=0.0),
    )
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(layout.get(key), dict):
            layout[key] = {**layout[key], **value}
        else:
            layout[key] = value
    return layout


# Accuracy axes span at least this many percentage points: on 450 test images one image is 0.22
# points, and an axis of 97.35-97.55% made one image look like a collapse.
MIN_ACCURACY_SPAN = 2.0


def accuracy_range(values, min_span: float = MIN_ACCURACY_SPAN, low: float = 0.0, high: float = 100.5):
    """A y range (percent) holding every value, at least ``min_span`` points wide; None to autorange.

    Args:
        values: the plotted accuracies in percent (None and NaN are ignored).
        min_span: the narrowest range allowed, in percentage points.
        low, high: the range never leaves these bounds.

    Returns:
        ``[bottom, top]`` when the values span less than ``min_span`` (centred on them, kept within
        bounds), else None (plotly's own autorange is honest for a wide spread).
    """
    numbers = [float(v) for v in values if v is not None and v == v]
    if not numbers:
        return None
    bottom, top = min(numbers), max(numbers)
    if top - bottom >= min_span:
        return None
    pad = (min_span - (top - bottom)) / 2
    bottom, top = bottom - pad, top + pad
    if top > high:
        bottom, top = bottom - (top - high), high
    if bottom < low:
        bottom, top = low, top + (low - bottom)
    return [bottom, top]


def short_number(value: float) -> str:
    """``20000`` -> ``"20k"``, ``1500000`` -> ``"1.5M"``, ``5`` -> ``"5"``: a tick label a class can read."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def log_axis(values, **extra) -> dict:
    """A log axis whose every tick is labelled in full ("20k 50k 100k"), not plotly's "5 2 100k 5 2".

    Ticks at 1, 2 and 5 times each power of ten when the values span at most two decades, at the powers
    of ten alone when they span more (the 1-2-5 labels would crowd each other).

    Args:
        values: the plotted positive values (others are ignored); none: plotly's own log ticks.
        extra: more axis properties (e.g. a title).
    """
    numbers = [float(v) for v in values if v is not None and v == v and float(v) > 0]
    axis = {"type": "log", **extra}
    if not numbers:
        return axis
    low, high = min(numbers), max(numbers)
    steps = (1, 2, 5) if math.log10(high / low) <= 2 else (1,)
    ticks = [step * 10.0 ** power for power in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1)
             for step in steps]
    # One tick either side of the data, so the axis is never left with a single label.
    below = [t for t in ticks if t <= low][-1:]
    above = [t for t in ticks if t > low and t >= high][:1]
    chosen = below + [t for t in ticks if low < t < high] + above
    return {**axis, "tickvals": chosen, "ticktext": [short_number(t) for t in chosen]}


def honest_accuracy_axis(figure, min_span: float = MIN_ACCURACY_SPAN):
    """Give ``figure``'s y axis (accuracy in percent) a minimum span; returns the figure."""
    values = [y for trace in figure.data for y in (getattr(trace, "y", None) or ())]
    span = accuracy_range(values, min_span)
    if span is None:
        figure.layout.yaxis.range, figure.layout.yaxis.autorange = None, True
    else:
        figure.layout.yaxis.autorange, figure.layout.yaxis.range = False, span
    return figure


def fig_weight_histogram(values, *, title: str | None = None, bins: int = 80, lines=None,
                         line_label: str = "", line_color: str = "#e53935") -> go.Figure:
    """Histogram of weight values with optional vertical lines (quantization levels, thresholds).

    Args:
        values: weights (flattened).
        title: chart title (default: "Weights" in the language in use).
        bins: number of histogram bins.
        lines: x positions to mark (the first 300).
        line_label: legend entry for the lines (none when empty).
        line_color: colour of the lines.

    Returns:
        A ``go.Figure`` with one histogram trace (plus the legend entry).
    """
    import numpy as np

    values = np.asarray(values).ravel()
    figure = go.Figure(
        data=[go.Histogram(x=values, nbinsx=bins, marker_color="#90a4ae", **named("plot.weights"))],
        layout=base_layout(t("plot.weights_title") if title is None else title, t("plot.weight_value"),
                           t("plot.count"), bargap=0.02),
    )
    for x in list(lines if lines is not None else [])[:300]:
        figure.add_vline(x=float(x), line_width=1, line_color=line_color, opacity=0.6)
    if line_label and lines is not None and len(lines):
        figure.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=dict(color=line_color),
                                    name=line_label))
    return figure
