"""DistillationLab: see what temperature does to a teacher's outputs, then distil a student and compare.

The temperature and image sliders redraw the teacher's softened distribution instantly: the
teacher's logits on the test split are computed once, when the panel is built, and each redraw
is one NumPy softmax. The run button trains the chosen student twice with the same budget (from
scratch, then distilled), showing both learning curves as they grow, and measures the teacher
and both students (accuracy, parameters, TFLite size, latency) with :func:`cl.measure`.

Example:
    >>> lab = cl.widgets.DistillationLab(cl.baseline("seed_cnn", "digits"), cl.load_dataset("digits"))
    >>> lab
"""

from __future__ import annotations

import html
import warnings

import ipywidgets as widgets

from .. import distill as core
from ..i18n import t
from ..measure import measure
from ..modelio.convert import as_tf_keras
from ..models import build, predict_logits
from ..plots.distillation import (
    entropy_bits,
    fig_digit,
    fig_distill_comparison,
    fig_distill_curves,
    fig_soft_targets,
    temperature_labels,
)
from ..records import to_frame, with_reference
from ..tflite import count_params
from ._base import Panel, figure_widget, replace_figure, wrapping_row

# Student widths offered by the selector (student_cnn's width multiplier).
STUDENT_WIDTHS = (0.25, 0.5, 1.0, 2.0)
TABLE_COLUMNS = {
    "name": "model",
    "accuracy_pct": "test accuracy (%)",
    "extra.test_errors": "test errors",
    "params": "parameters",
    "tflite_bytes": "TFLite bytes",
    "gzip_bytes": "gzip bytes",
    "latency_ms": "latency (ms)",
}
# The message key of each column's header (shown in the panel's language).
_COLUMN_MESSAGES = {"name": "distill.col_model", "accuracy_pct": "distill.col_accuracy",
                    "extra.test_errors": "distill.col_errors", "params": "distill.col_params",
                    "tflite_bytes": "distill.col_tflite", "gzip_bytes": "distill.col_gzip",
                    "latency_ms": "distill.col_latency"}


class DistillationLab(Panel):
    """An ipywidgets panel for knowledge distillation.

    Args:
        teacher: a trained tf_keras classifier (logits or softmax output).
        data: the :class:`~compresslab.data.Dataset` (train split for training, test split for
            every figure).
        spec: starting settings (a :class:`~compresslab.distill.DistillSpec`); its batch size,
            learning rate and seed are used for every run.
        widths: the student widths offered (``student_cnn(width=...)``).
        latency: measure LiteRT latency of the three models after a run (about a second each).

    Attributes:
        controls: ``temperature``, ``alpha``, ``width``, ``epochs``, ``image``, ``run``.
        figures: ``soft_targets``, ``image``, ``curves``, ``comparison``.
        table: an HTML widget with the measured results; ``results`` is the DataFrame.
        records: ``{"teacher", "scratch", "distilled"}`` -> :class:`~compresslab.records.Record`.
        teacher_accuracy: the teacher's test accuracy (a warning is shown when near chance).

    Example:
        >>> lab = DistillationLab(teacher, data)
        >>> lab.controls["temperature"].value = 20     # the distribution flattens at once
        >>> lab.run()                                  # same as clicking "Train both students"
    """

    title = "Distillation lab"

    def __init__(self, teacher, data, *, spec: core.DistillSpec | None = None,
                 widths=STUDENT_WIDTHS, latency: bool = True):
        super().__init__()
        base = core.DistillSpec() if spec is None else spec
        if not isinstance(base, core.DistillSpec):
            raise TypeError(f"spec must be a DistillSpec, got {type(base).__name__}")
        teacher = as_tf_keras(teacher, role="teacher")
        core._check_data(data, ("teacher", teacher))
        self.teacher = teacher
        self.data = data
        self.base_spec = base
        self.latency = bool(latency)
        self.records: dict = {}
        self.results = None
        self.histories: dict = {"scratch": {}, "distilled": {}}
        # Computed once: every slider move reuses these logits.
        self._teacher_view = core.logits_model(teacher)
        self.test_logits = predict_logits(self._teacher_view, data.x_test)
        self.warning_box = widgets.HTML(value="")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.teacher_accuracy = core.check_teacher(self._teacher_view, data, teacher_logits=self.test_logits)
        for warning in caught:
            warnings.warn(str(warning.message), UserWarning, stacklevel=2)
            self.warning_box.value = (
                '<div class="compresslab-warning" style="border:1px solid #f9a825;background:#fff8e1;'
                f'padding:6px 10px;border-radius:4px"><b>{t("panel.warning")}</b> {html.escape(str(warning.message))}</div>'
            )

        style = {"description_width": "110px"}
        width_options = []
        for width in widths:
            params, _ = count_params(_student(data, width, seed=None))
            width_options.append((t("distill.width_option", width=width, params=params), float(width)))
        offered = [w for _, w in width_options]
        default_width = 1.0 if 1.0 in offered else offered[0]
        self.controls = {
            "temperature": widgets.FloatSlider(value=min(20.0, max(1.0, base.temperature)), min=1.0, max=20.0,
                                               step=0.5, description=t("distill.temperature"), style=style),
            "alpha": widgets.FloatSlider(value=base.alpha, min=0.0, max=1.0, step=0.05,
                                         description=t("distill.alpha"), style=style),
            "width": widgets.Dropdown(options=width_options, value=default_width, description=t("distill.width"),
                                      style=style),
            "epochs": widgets.IntSlider(value=base.epochs, min=1, max=30, description=t("distill.epochs"),
                                        style=style),
            "image": widgets.IntSlider(value=0, min=0, max=len(data.x_test) - 1, description=t("distill.image"),
                                       style=style),
            "run": widgets.Button(description=t("distill.run"), button_style="primary", icon="play",
                                  layout=widgets.Layout(width="220px")),
        }
        self.figures = {
            "soft_targets": figure_widget(self._soft_targets_figure()),
            "image": figure_widget(self._image_figure()),
            "curves": figure_widget(fig_distill_curves(self.histories)),
            "comparison": figure_widget(fig_distill_comparison(_empty_frame())),
        }
        self.table = widgets.HTML(value=t("distill.press"))

        redraw = self.guard(self._redraw_soft_targets)
        self.controls["temperature"].observe(redraw, names="value")
        self.controls["image"].observe(redraw, names="value")
        self.controls["image"].observe(self.guard(self._redraw_image), names="value")
        self.run_button(self.controls["run"], self._on_run)

        teacher_line = widgets.HTML(t("distill.teacher_line", name=html.escape(teacher.name),
                                      params=count_params(teacher)[0], accuracy=self.teacher_accuracy,
                                      count=len(data.x_test)))
        soft_row = wrapping_row(self.figures["soft_targets"], self.figures["image"])
        settings = widgets.VBox([self.controls[name] for name in ("temperature", "image", "alpha", "width", "epochs")])
        self.view = widgets.VBox([
            widgets.HTML(f"<h3>{t('distill.title')}</h3>"),
            teacher_line,
            self.warning_box,
            settings,
            soft_row,
            widgets.HBox([self.controls["run"], self.progress]),
            self.status,
            self.error_box,
            self.figures["curves"],
            self.table,
            self.figures["comparison"],
        ])

    # -- controls -> spec ------------------------------------------------------------------------

    def spec(self) -> core.DistillSpec:
        """The one mapping from the controls to a :class:`~compresslab.distill.DistillSpec`."""
        return self.base_spec.replace(
            temperature=float(self.controls["temperature"].value),
            alpha=float(self.controls["alpha"].value),
            epochs=int(self.controls["epochs"].value),
        )

    # -- the temperature view -------------------------------------------------------------------

    def soft_targets(self):
        """``(temperatures, probabilities)`` drawn now: T = 1 and the slider's T, for the chosen image."""
        index = int(self.controls["image"].value) if self.controls else 0
        temperature = float(self.controls["temperature"].value) if self.controls else self.base_spec.temperature
        temperatures = [1.0, temperature]
        logits = self.test_logits[index]
        return temperatures, [core.soften(logits, t) for t in temperatures]

    def _soft_target_parts(self):
        temperatures, probabilities = self.soft_targets()
        index = int(self.controls["image"].value) if self.controls else 0
        true_label = int(self.data.y_test[index])
        names = [t("distill.true", name=name) if i == true_label else str(name)
                 for i, name in enumerate(self.data.class_names)]
        entropies = [float(entropy_bits(p)) for p in probabilities]
        title = t("distill.soft_title", index=index, t=temperatures[1], entropy=entropies[1])
        return temperatures, probabilities, entropies, names, title

    def _soft_targets_figure(self):
        temperatures, probabilities, _, _, title = self._soft_target_parts()
        index = int(self.controls["image"].value) if self.controls else 0
        return fig_soft_targets(probabilities, temperatures, class_names=self.data.class_names,
                                true_label=int(self.data.y_test[index]), title=title)

    def _image_figure(self):
        index = int(self.controls["image"].value) if self.controls else 0
        return fig_digit(self.data.x_test[index], title=t("distill.image_title", index=index,
                                                          label=self.data.class_names[int(self.data.y_test[index])]))

    def _redraw_soft_targets(self, change=None):
        # Only the bar heights, names and the title change: building a new go.Figure (template and
        # validation) costs ~100x more than this in-place update, and a slider must feel live.
        temperatures, probabilities, entropies, names, title = self._soft_target_parts()
        figure = self.figures["soft_targets"]
        with figure.batch_update():
            for trace, temperature, row, entropy in zip(figure.data, temperatures, probabilities, entropies):
                trace.x = names
                trace.y = row
                trace.update(temperature_labels(temperature, entropy))
            figure.layout.title.text = title

    def _redraw_image(self, change=None):
        index = int(self.controls["image"].value)
        figure = self.figures["image"]
        pixels = self.data.x_test[index]
        with figure.batch_update():
            figure.data[0].z = pixels.mean(axis=-1) if pixels.ndim == 3 else pixels
            figure.layout.title.text = t("distill.image_title", index=index,
                                         label=self.data.class_names[int(self.data.y_test[index])])

    # -- training and measuring -----------------------------------------------------------------

    def run(self):
        """Train the chosen student from scratch and by distillation, then measure all three models.

        Returns:
            The results DataFrame (``cl.to_frame`` of the three records).
        """
        spec = self.spec()
        width = float(self.controls["width"].value)
        button = self.controls["run"]
        self.histories = {"scratch": {}, "distilled": {}}
        replace_figure(self.figures["curves"], fig_distill_curves(self.histories))
        student = _student(self.data, width, seed=spec.seed)
        with self.busy(button, total=2 * spec.epochs + 3, label=t("distill.training")) as step:

            def on_epoch(run, epoch, logs):
                history = self.histories[run]
                for key, value in logs.items():
                    history.setdefault(key, []).append(float(value))
                replace_figure(self.figures["curves"], fig_distill_curves(self.histories))
                accuracy = logs.get("val_accuracy")
                shown = t("distill.epoch_accuracy", accuracy=accuracy) if accuracy is not None else ""
                step(1, t("distill.epoch", run=run, epoch=epoch + 1, epochs=spec.epochs, shown=shown))

            self.set_status(t("distill.from_scratch", width=width, epochs=spec.epochs))
            result = core.compare(self.teacher, student, self.data, spec, progress=on_epoch, track_test=True)
            records = {}
            if "teacher" not in self.records:
                step(1, t("distill.measuring_teacher"))
                records["teacher"] = self._measure(self.teacher, "teacher", None, spec, width)
            else:
                records["teacher"] = self.records["teacher"]
                step(1)
            for role in ("scratch", "distilled"):
                step(1, t("distill.measuring_student", role=role))
                records[role] = with_reference(self._measure(result[role], role, spec if role == "distilled"
                                                             else None, spec, width), records["teacher"])
        self.records = records
        self.results = to_frame([records["teacher"], records["scratch"], records["distilled"]])
        self.table.value = _table_html(self.results)
        replace_figure(self.figures["comparison"], fig_distill_comparison(self.results))
        scratch, distilled = records["scratch"], records["distilled"]
        self.set_status(t("distill.done", seconds=getattr(self, "last_run_seconds", 0), scratch=scratch.accuracy,
                          distilled=distilled.accuracy, teacher=records["teacher"].accuracy,
                          count=len(self.data.x_test), t=spec.temperature, alpha=spec.alpha))
        return self.results

    def _on_run(self, button=None):
        self.run()

    def _measure(self, model, role, spec_for_record, spec, width):
        names = {"teacher": f"teacher ({self.teacher.name})", "scratch": f"scratch student {width:g}x",
                 "distilled": f"distilled student {width:g}x"}
        logits = self.test_logits if role == "teacher" else predict_logits(model, self.data.x_test)
        errors = int((logits.argmax(axis=1) != self.data.y_test).sum())
        extra = {"role": role, "test_errors": errors}
        if role != "teacher":
            extra.update(student_width=width, epochs=spec.epochs, seed=spec.seed)
        return measure(model, self.data, name=names[role],
                       technique="distill" if role == "distilled" else "baseline",
                       spec=spec_for_record, tflite=True, latency=self.latency,
                       seed=None if role == "teacher" else spec.seed, extra=extra)


def _student(data, width: float, seed):
    return build("student_cnn", data.input_shape, data.num_classes, seed=seed, width=width)


def _empty_frame():
    import pandas as pd

    return pd.DataFrame({"name": ["teacher", "scratch student", "distilled student"],
                         "technique": ["baseline", "baseline", "distill"],
                         "accuracy": [0.0, 0.0, 0.0], "params": [None] * 3,
                         "tflite_bytes": [None] * 3, "latency_ms": [None] * 3})


def _table_html(frame) -> str:
    columns = [c for c in TABLE_COLUMNS if c in frame.columns]
    shown = frame[columns]
    formats = {"accuracy_pct": "{:.2f}".format, "params": "{:,.0f}".format,
               "tflite_bytes": "{:,.0f}".format, "gzip_bytes": "{:,.0f}".format,
               "latency_ms": lambda v: "n/a" if v != v or v is None else f"{v:.3f}",
               "extra.test_errors": "{:,.0f}".format}
    formatters = {t(_COLUMN_MESSAGES[k]): v for k, v in formats.items() if k in shown.columns}
    shown = shown.rename(columns={column: t(_COLUMN_MESSAGES[column]) for column in columns})
    return shown.to_html(index=False, formatters=formatters, classes="compresslab-table", border=0, na_rep="n/a")


__all__ = ["DistillationLab", "STUDENT_WIDTHS"]
