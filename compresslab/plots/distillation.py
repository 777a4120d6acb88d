"""Figures of knowledge distillation: softened teacher distributions and teacher/student comparisons."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..distill import entropy_bits
from ..i18n import t
from .common import TECHNIQUE_COLORS, base_layout, display_label, named

# Teacher, scratch student and distilled student keep the same colours in every chart.
ROLE_COLORS = {
    "teacher": TECHNIQUE_COLORS["baseline"],
    "scratch": "#90a4ae",
    "distilled": TECHNIQUE_COLORS["distill"],
}
_TEMPERATURE_COLORS = ["#b0bec5", "#fb8c00", "#1e88e5", "#8e24aa", "#43a047", "#e53935"]


def temperature_labels(temperature: float, entropy: float) -> dict:
    """One temperature's bar trace texts: ``name`` ("T = 5 (H = 1.20 bits)"), ``meta`` (the same in
    English) and ``hovertemplate``, in the language in use (a live panel assigns them in place)."""
    return {**named("plot.temperature", t=temperature, entropy=entropy),
            "hovertemplate": t("plot.class_hover") + f"<extra>T = {temperature:g}</extra>"}


def fig_soft_targets(probabilities, temperatures, *, class_names=None, title: str | None = None,
                     true_label: int | None = None) -> go.Figure:
    """Bar chart of a teacher's softened distribution over the classes, one bar group per temperature.

    Args:
        probabilities: ``(len(temperatures), num_classes)`` (as from
            ``cl.distill.soft_targets(teacher, image, temperatures)``) or one ``(num_classes,)`` row.
        temperatures: the temperature of each row.
        class_names: labels of the classes (default ``0..num_classes-1``).
        title: chart title (default: "Teacher's softened distribution, softmax(logits / T)" in the
            language in use).
        true_label: index of the image's true class, marked in the axis labels.

    Returns:
        A ``go.Figure`` with one bar trace per temperature (legend: ``T = ... (H = ... bits)``, see
        :func:`temperature_labels`).

    Example:
        >>> fig_soft_targets(cl.distill.soft_targets(teacher, image, [1, 20]), [1, 20])
    """
    probabilities = np.atleast_2d(np.asarray(probabilities, dtype=np.float64))
    temperatures = list(np.atleast_1d(temperatures))
    if len(temperatures) != len(probabilities):
        raise ValueError(f"{len(probabilities)} distributions but {len(temperatures)} temperatures; give one each")
    num_classes = probabilities.shape[1]
    names = [str(c) for c in (class_names if class_names is not None else range(num_classes))]
    if true_label is not None and 0 <= int(true_label) < num_classes:
        names[int(true_label)] = t("distill.true", name=names[int(true_label)])
    entropies = entropy_bits(probabilities)
    traces = [
        go.Bar(x=names, y=row, marker_color=_TEMPERATURE_COLORS[i % len(_TEMPERATURE_COLORS)],
               **temperature_labels(temperature, h))
        for i, (temperature, row, h) in enumerate(zip(temperatures, probabilities, entropies))
    ]
    layout = base_layout(t("plot.soft_title") if title is None else title, t("plot.class"), t("plot.probability"),
                         barmode="group",
                         yaxis=dict(range=[0, 1.02]), bargap=0.15)
    return go.Figure(data=traces, layout=layout)


def fig_digit(image, *, title: str | None = None) -> go.Figure:
    """A grey-scale view of one ``(H, W)`` or ``(H, W, 1)`` image (top row at the top).

    Args:
        image: the pixels.
        title: chart title (default: "Test image" in the language in use).
    """
    pixels = np.asarray(image, dtype=np.float32)
    if pixels.ndim == 3:
        pixels = pixels.mean(axis=-1)
    layout = base_layout(t("plot.digit_title") if title is None else title, "", "", height=240, width=240, margin=dict(l=10, r=10, t=40, b=10),
                         xaxis=dict(visible=False), yaxis=dict(visible=False, autorange="reversed",
                                                               scaleanchor="x"))
    return go.Figure(data=[go.Heatmap(z=pixels, colorscale="Greys", reversescale=False, showscale=False,
                                      hovertemplate=t("plot.pixel_hover") + "<extra></extra>")],
                     layout=layout)


def _role(name: str, technique: str | None) -> str:
    text = f"{name} {technique or ''}".lower()
    if "distill" in text:
        return "distilled"
    if "scratch" in text:
        return "scratch"
    return "teacher"


def fig_distill_comparison(frame, *, title: str | None = None) -> go.Figure:
    """Four bar panels (accuracy, parameters, size, latency) for the teacher and the two students.

    Args:
        frame: ``cl.to_frame(records)``: one row per model with ``name``, ``technique``,
            ``accuracy``, ``params``, ``gzip_bytes`` (or ``tflite_bytes``) and ``latency_ms``
            (missing figures are left empty). Known model names (``"scratch student 1x"``...) are
            shown translated.
        title: chart title (default: "Teacher, scratch student and distilled student" in the language
            in use).

    Returns:
        A ``go.Figure`` with four bar traces, one per measured figure.

    Example:
        >>> fig_distill_comparison(cl.to_frame([teacher_record, scratch_record, distilled_record]))
    """
    names = [str(n) for n in frame["name"]]
    techniques = list(frame["technique"]) if "technique" in frame else [None] * len(names)
    colors = [ROLE_COLORS[_role(n, technique)] for n, technique in zip(names, techniques)]
    shown = [display_label(n) for n in names]
    tflite = _column(frame, "tflite_bytes")
    measured_size = any(v is not None for v in tflite)
    sizes = tflite if measured_size else _column(frame, "dense_float32_bytes")
    panels = [
        (t("plot.test_accuracy"), [None if v is None else 100 * v for v in _column(frame, "accuracy")], "{:.1f}%"),
        (t("plot.parameters"), _column(frame, "params"), "{:,.0f}"),
        (t("plot.tflite_kb") if measured_size else t("plot.float32_kb"),
         [None if v is None else v / 1024 for v in sizes], "{:,.1f}"),
        (t("plot.latency"), _column(frame, "latency_ms"), "{:.3f}"),
    ]
    figure = make_subplots(rows=1, cols=4, subplot_titles=[p[0] for p in panels], horizontal_spacing=0.07)
    for column, (label, values, fmt) in enumerate(panels, start=1):
        text = [fmt.format(v) if v is not None else t("plot.not_available") for v in values]
        figure.add_trace(go.Bar(x=shown, y=[v if v is not None else 0 for v in values], marker_color=colors,
                                text=text, textposition="auto", name=label, showlegend=False,
                                hovertemplate="%{x}: %{text}<extra>" + label + "</extra>"),
                         row=1, col=column)
    figure.update_layout(**base_layout(t("plot.comparison_title") if title is None else title, "", "", height=340, margin=dict(l=40, r=20, t=70, b=60)))
    accuracies = [v for v in panels[0][1] if v is not None]
    if accuracies:
        # Zoom the accuracy axis so a one-point difference is visible, and say so in its title.
        low = max(0.0, min(accuracies) - 5)
        figure.update_yaxes(range=[low, 100.5], row=1, col=1)
        figure.layout.annotations[0].text = t("plot.accuracy_from", low=low)
    return go.Figure(data=figure.data, layout=figure.layout)


def _column(frame, name: str) -> list:
    """A column as floats with None for missing values (a missing column is all None)."""
    if name not in frame:
        return [None] * len(frame)
    return [_number(v) for v in frame[name]]


def _number(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if number != number else number


def fig_distill_curves(histories: dict, *, metric: str = "val_accuracy",
                       title: str | None = None) -> go.Figure:
    """Lines of a per-epoch figure for the scratch and the distilled student.

    Args:
        histories: ``{"scratch": history_dict, "distilled": history_dict}`` (Keras
            ``History.history`` dicts, as from ``cl.distill.compare``); either may be empty.
        metric: the key to draw (``val_accuracy`` needs ``track_test=True``; ``accuracy`` is
            the training accuracy).
        title: chart title (default: "Test accuracy after each epoch (display only)" in the language
            in use).

    Returns:
        A ``go.Figure`` with one line per run (always two traces, so it can be updated in place; names
        "scratch student" and "distilled student" in the language in use, in English in ``meta``).

    Example:
        >>> fig_distill_curves(result["histories"])
    """
    traces = []
    for run in ("scratch", "distilled"):
        values = list((histories or {}).get(run, {}).get(metric, []))
        scale = 100.0 if "accuracy" in metric else 1.0
        traces.append(go.Scatter(x=list(range(1, len(values) + 1)), y=[scale * float(v) for v in values],
                                 mode="lines+markers", line=dict(color=ROLE_COLORS[run], width=3),
                                 **named(f"plot.{run}_student")))
    y_title = t("plot.accuracy_pct") if "accuracy" in metric else metric
    return go.Figure(data=traces, layout=base_layout(t("plot.curves_title") if title is None else title,
                                                     t("plot.epoch"), y_title))


def fig_distill_errors(runs, teacher_errors: float, *, test_images: int = 10000,
                       title: str | None = None) -> go.Figure:
    """Test errors per seed for the scratch and the distilled student, with the teacher as a line.

    Args:
        runs: a list of ``{"seed", "scratch_errors", "distilled_errors"}`` dicts (as in
            ``bench/bench_distill.py``'s JSON).
        teacher_errors: the teacher's test errors.
        test_images: size of the test split (for the default title).
        title: chart title (default: "Test errors out of 10,000" in the language in use).

    Returns:
        A grouped bar ``go.Figure``.
    """
    seeds = [t("plot.seed", seed=r["seed"]) for r in runs]
    figure = go.Figure(
        data=[
            go.Bar(x=seeds, y=[r[f"{run}_errors"] for r in runs], marker_color=ROLE_COLORS[run],
                   **named(f"plot.{run}_student"))
            for run in ("scratch", "distilled")
        ],
        layout=base_layout(title or t("plot.errors_title", count=test_images), t("plot.run"), t("plot.test_errors"),
                           barmode="group"),
    )
    figure.add_hline(y=float(teacher_errors), line_color=ROLE_COLORS["teacher"], line_dash="dash",
                     annotation_text=t("plot.teacher_errors", errors=teacher_errors), annotation_position="top left")
    return figure


__all__ = ["fig_soft_targets", "temperature_labels", "fig_digit", "fig_distill_comparison", "fig_distill_curves",
           "fig_distill_errors", "entropy_bits", "ROLE_COLORS"]
