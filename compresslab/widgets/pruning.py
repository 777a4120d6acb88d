"""PruningLab: move a threshold or a sparsity slider and watch accuracy, sparsity, weights and sizes.

The panel keeps ONE working copy of the model (a :class:`compresslab.prune.PruningWorkbench`):
a slider move builds boolean masks from magnitudes sorted once, assigns the masked kernels
with ``variable.assign`` and runs one compiled pass over cached test tensors. Nothing is cloned
or recompiled per move.

Size figures are labelled by what they are: while a slider moves the panel shows exact byte
counts of the pruned weights (dense float32, bitmask and CSR encodings) and a quick gzip -6 of
the raw float32 weights; the real TFLite file and its gzip -9 are measured only on the
"Measure TFLite" button.

Example:
    >>> lab = cl.widgets.PruningLab(model, data)
    >>> lab.controls["sparsity"].value = 0.8
    >>> lab.last_accuracy
"""

from __future__ import annotations

import html
import time
from concurrent.futures import ThreadPoolExecutor

import ipywidgets as widgets
import numpy as np
import pandas as pd

from .. import prune
from ..i18n import t
from ..modelio.convert import as_tf_keras
from ..models import accuracy as keras_accuracy
from ..plots import pruning as plots
from ._base import Panel, figure_widget, wrapping_row
from ._base import update_traces as assign_traces

_BESIDE = ThreadPoolExecutor(max_workers=1, thread_name_prefix="compresslab-gzip")

ALL_LAYERS = "all layers"


class PruningLab(Panel):
    """A live pruning panel over a trained model.

    Args:
        model: a trained tf_keras classifier (never modified).
        data: its :class:`~compresslab.data.Dataset`; accuracy is on the test split.
        layers: prunable layers to include (default: every Conv / Dense kernel).
        epochs: initial value of the fine-tuning epochs control.

    Attributes:
        controls: ``threshold``, ``sparsity`` (sliders), ``scope`` (layer / global),
            ``histogram_layer``, ``schedule``, ``epochs``, ``finetune`` and ``tflite`` (buttons).
        figures: ``accuracy``, ``layer_sparsity``, ``histogram``, ``sizes``, ``schedule``.
        method: ``"magnitude"`` or ``"threshold"``: whichever slider moved last.
        last_accuracy, last_sizes, last_update_seconds: figures of the latest update.
        finetuned_model: the model the fine-tune button produced (None before).
    """

    title = "Pruning lab"

    def __init__(self, model, data, *, layers=None, epochs: int = 2, batch_size: int = 64):
        super().__init__()
        started = time.perf_counter()
        self.model = model = as_tf_keras(model)
        self.data = data
        self.batch_size = int(batch_size)
        self.workbench = prune.PruningWorkbench(model, data, layers=layers)
        bench = self.workbench
        self.method = "magnitude"
        self.finetuned_model = None
        self.history = pd.DataFrame(columns=["sparsity", "accuracy", "series"])
        self._all_weights = np.concatenate([k.ravel() for k in bench.originals])
        self._edges = {ALL_LAYERS: plots.histogram_edges(self._all_weights)}
        for name, kernel in zip(bench.names, bench.originals):
            self._edges[name] = plots.histogram_edges(kernel)
        self._dense_sizes = {**bench.sparse_sizes(), "weights_gzip_bytes": bench.weights_gzip_bytes()}
        max_threshold = max(1e-6, bench.threshold_at_sparsity(0.99))
        self._syncing, self._drawn_schedule = False, None
        self._schedule_curves = {}  # (final sparsity, steps, schedule) -> its curve

        style = {"description_width": "90px"}
        wide = widgets.Layout(width="420px")
        self.controls = {
            "threshold": widgets.FloatSlider(value=0.0, min=0.0, max=float(max_threshold),
                                             step=float(max_threshold) / 100, readout_format=".4f",
                                             description=t("prune.threshold"), style=style, layout=wide),
            "sparsity": widgets.FloatSlider(value=0.0, min=0.0, max=0.99, step=0.01, readout_format=".0%",
                                            description=t("prune.sparsity"), style=style, layout=wide),
            "scope": widgets.ToggleButtons(options=[(t("prune.per_layer"), "layer"), (t("prune.global"), "global")],
                                           value="layer", description=t("prune.scope"), style=style),
            "histogram_layer": widgets.Dropdown(options=[(t("prune.all_layers"), ALL_LAYERS),
                                                         *[(name, name) for name in bench.names]],
                                                value=ALL_LAYERS, description=t("prune.histogram"), style=style),
            "schedule": widgets.ToggleButtons(options=["polynomial", "constant"], value="polynomial",
                                              description=t("prune.schedule"), style=style),
            "epochs": widgets.IntSlider(value=int(epochs), min=1, max=10, description=t("prune.epochs"), style=style),
            "finetune": widgets.Button(description=t("prune.finetune"), icon="play",
                                       layout=widgets.Layout(width="240px")),
            "tflite": widgets.Button(description=t("prune.tflite"), icon="file",
                                     layout=widgets.Layout(width="200px")),
        }
        self.summary = widgets.HTML()
        self.tflite_box = widgets.HTML(t("prune.tflite_note"))

        self.figures = {
            "accuracy": figure_widget(self._accuracy_figure(None)),
            "layer_sparsity": figure_widget(plots.fig_layer_sparsity(bench.layer_sparsities(), target=0.0)),
            "histogram": figure_widget(plots.fig_threshold_histogram(self._all_weights, 0.0,
                                                                     edges=self._edges[ALL_LAYERS],
                                                                     title=t("prune.weights_of",
                                                                             layer=t("prune.all_layers")))),
            "sizes": figure_widget(plots.fig_sizes(self._sizes_frame(self._dense_sizes))),
            "schedule": figure_widget(self._schedule_figure()),
        }

        self.controls["threshold"].observe(self.guard(self._on_threshold), names="value")
        self.controls["sparsity"].observe(self.guard(self._on_sparsity), names="value")
        self.controls["scope"].observe(self.guard(lambda change: self.update()), names="value")
        self.controls["histogram_layer"].observe(self.guard(lambda change: self.update()), names="value")
        for name in ("schedule", "epochs"):
            self.controls[name].observe(self.guard(lambda change: self.update_schedule()), names="value")
        self.run_button(self.controls["finetune"], self.finetune)
        self.run_button(self.controls["tflite"], self.measure_tflite)

        c = self.controls
        self.view = widgets.VBox([
            widgets.HTML(f"<h3>{html.escape(t('prune.title'))}</h3>"),
            widgets.HBox([widgets.VBox([c["sparsity"], c["threshold"]]), widgets.VBox([c["scope"],
                                                                                         c["histogram_layer"]])]),
            self.summary,
            self.error_box,
            wrapping_row(self.figures["accuracy"], self.figures["layer_sparsity"]),
            wrapping_row(self.figures["histogram"], self.figures["sizes"]),
            widgets.HBox([c["tflite"], self.tflite_box]),
            widgets.HTML(t("prune.finetune_heading")),
            widgets.HBox([c["schedule"], c["epochs"]]),
            widgets.HBox([c["finetune"], self.progress]),
            self.status,
            self.figures["schedule"],
        ])
        self.update()
        self.setup_seconds = time.perf_counter() - started

    # -- controls -> spec (the ONE mapping) ----------------------------------------------------

    def spec(self) -> prune.PruneSpec:
        """The :class:`~compresslab.prune.PruneSpec` the controls describe now."""
        if self.method == "threshold":
            return prune.PruneSpec(method="threshold", threshold=float(self.controls["threshold"].value))
        return prune.PruneSpec(method="magnitude", sparsity=float(self.controls["sparsity"].value),
                               scope=self.controls["scope"].value)

    # -- callbacks -----------------------------------------------------------------------------

    def _on_threshold(self, change):
        if self._syncing:
            return
        self.method = "threshold"
        self.update()

    def _on_sparsity(self, change):
        if self._syncing:
            return
        self.method = "magnitude"
        self.update()

    def _sync_sliders(self, spec, sparsity: float) -> None:
        """Make the slider that did NOT move show what the one that moved did (one state, two views).

        After a threshold move the sparsity slider shows the sparsity reached; after a sparsity move in
        global scope the threshold slider shows the one global threshold that gives it (per-layer scope
        has one threshold per layer, so the threshold slider goes back to 0 there).
        """
        self._syncing = True
        try:
            if spec.method == "threshold":
                self.controls["sparsity"].value = min(0.99, round(float(sparsity), 2))
            elif spec.scope == "global":
                self.controls["threshold"].value = min(self.controls["threshold"].max,
                                                       float(self.workbench.threshold_at_sparsity(spec.sparsity)))
            else:
                self.controls["threshold"].value = 0.0
        finally:
            self._syncing = False

    def update(self) -> None:
        """Re-mask, re-evaluate and redraw the live figures (called on every slider move)."""
        started = time.perf_counter()
        spec = self.spec()
        bench = self.workbench
        masks = bench.apply(spec)
        # gzip of the weights (~0.1 s) runs beside the evaluation: zlib and TensorFlow both release the GIL.
        gzip_bytes = _BESIDE.submit(bench.weights_gzip_bytes)
        sparsity = bench.global_sparsity()
        self._sync_sliders(spec, sparsity)
        # What the masks alone decide is drawn first; accuracy and sizes follow once measured.
        target = spec.sparsity if spec.method == "magnitude" else None
        assign_traces(self.figures["layer_sparsity"], plots.layer_sparsity_traces(bench.layer_sparsities(), target))
        traces, title = self._histogram_traces(spec, masks)
        assign_traces(self.figures["histogram"], traces, title=title)
        accuracy = bench.accuracy()
        sizes = {**bench.sparse_sizes(), "weights_gzip_bytes": gzip_bytes.result()}
        self.last_accuracy, self.last_sparsity, self.last_sizes = accuracy, sparsity, sizes
        series = "threshold |w| < t" if spec.method == "threshold" else f"magnitude, {spec.scope} scope"
        self.history = pd.concat(
            [self.history, pd.DataFrame([{"sparsity": sparsity, "accuracy": accuracy, "series": series}])],
            ignore_index=True,
        )
        # The summary before the remaining charts: each redraw takes a moment in the browser.
        if spec.method == "threshold":
            rule = t("prune.rule_threshold", threshold=spec.threshold)
        else:
            rule = t("prune.rule_layer" if spec.scope == "layer" else "prune.rule_global", sparsity=spec.sparsity)
        self.summary.value = t(
            "prune.summary", rule=rule, sparsity=sparsity, accuracy=accuracy, unpruned=bench.float_accuracy,
            gzip=sizes["weights_gzip_bytes"] / 1000, bitmask=sizes["bitmask_bytes"] / 1000,
            dense=sizes["dense_float32_bytes"] / 1000)
        # Only trace data change on a move: assign it in place (building whole go.Figures with their
        # template costs ~0.3 s each, more than the evaluation itself).
        assign_traces(self.figures["accuracy"], self._accuracy_traces((sparsity, accuracy)), accuracy_axis=True)
        assign_traces(self.figures["sizes"], plots.size_traces(self._sizes_frame(sizes)))
        if self._schedule_final() != self._drawn_schedule:
            self.update_schedule()  # its title and curves name the sparsity the fine-tune button would use
        self.last_update_seconds = time.perf_counter() - started

    def update_schedule(self) -> None:
        """Redraw the schedule preview for the current sparsity, epochs and schedule (traces and title only)."""
        frame, steps_per_epoch, title = self._schedule_frame()
        assign_traces(self.figures["schedule"], plots.sparsity_schedule_traces(frame, steps_per_epoch=steps_per_epoch),
                      title=title)

    def _schedule_final(self) -> float:
        """The final sparsity the schedule preview shows: the current one (0.8 while nothing is pruned)."""
        return max(0.01, min(0.99, round(float(self.workbench.global_sparsity()), 2) or 0.8))

    def finetune(self, button=None) -> None:
        """Fine-tune with tfmot at the current sparsity and schedule (the button's callback)."""
        sparsity = round(float(self.workbench.global_sparsity()), 4)
        sparsity = min(sparsity, 0.99)
        scope = "global" if self.method == "threshold" else self.controls["scope"].value
        epochs = int(self.controls["epochs"].value)
        schedule = self.controls["schedule"].value
        with self.busy(self.controls["finetune"], total=epochs, label=t("prune.finetune_label")) as step:
            self.set_status(t("prune.finetuning", sparsity=sparsity, scope=scope, schedule=schedule, epochs=epochs))
            model = prune.finetune(
                self.model, self.data, final_sparsity=sparsity, schedule=schedule, epochs=epochs, scope=scope,
                batch_size=self.batch_size,
                progress=lambda epoch, logs: step(1, t("prune.epoch", epoch=epoch + 1, epochs=epochs,
                                                       accuracy=logs.get("accuracy", float("nan")))),
            )
        accuracy = keras_accuracy(model, self.data)
        reached = prune.global_sparsity(model, self.workbench.names)
        self.finetuned_model = model
        self.history = pd.concat(
            [self.history, pd.DataFrame([{"sparsity": reached, "accuracy": accuracy,
                                          "series": f"fine-tuned ({schedule})"}])],
            ignore_index=True,
        )
        assign_traces(self.figures["accuracy"], self._accuracy_traces((self.last_sparsity, self.last_accuracy)))
        self.set_status(t("prune.finetuned", schedule=schedule, epochs=epochs, reached=reached, accuracy=accuracy,
                          one_shot=self.last_accuracy, unpruned=self.workbench.float_accuracy,
                          seconds=self.last_run_seconds))

    def measure_tflite(self, button=None) -> None:
        """Convert the unpruned and the currently pruned model to float32 TFLite and report real sizes."""
        with self.busy(self.controls["tflite"], total=2, label=t("prune.converting")) as step:
            rows = [prune.size_report(self.model, name="unpruned")]
            step(1)
            rows.append(prune.size_report(self.workbench.export(), name=f"pruned {self.last_sparsity:.0%}"))
            step(1)
        frame = pd.DataFrame(rows)
        self.tflite_sizes = frame
        cells = "".join(
            f"<tr><td>{html.escape(str(r['name']))}</td><td>{r['tflite_bytes']:,}</td><td>{r['gzip_bytes']:,}</td>"
            f"<td>{r['bitmask_bytes']:,}</td><td>{r['csr_bytes']:,}</td></tr>" for _, r in frame.iterrows()
        )
        self.tflite_box.value = t("prune.tflite_table", cells=cells)

    # -- figures -------------------------------------------------------------------------------

    def _series_names(self):
        names = ["magnitude, layer scope", "magnitude, global scope", "threshold |w| < t",
                 "fine-tuned (polynomial)", "fine-tuned (constant)"]
        return names

    def _accuracy_frame(self):
        frame = self.history if len(self.history) else pd.DataFrame({"sparsity": [], "accuracy": [], "series": []})
        # One point per (series, sparsity): the latest wins, so repeated moves do not pile up.
        return frame.drop_duplicates(subset=["series", "sparsity"], keep="last")

    def _accuracy_traces(self, current):
        return plots.accuracy_traces(self._accuracy_frame(), float_accuracy=self.workbench.float_accuracy,
                                     current=current, series_names=self._series_names())

    def _accuracy_figure(self, current):
        return plots.fig_accuracy_vs_sparsity(self._accuracy_frame(), float_accuracy=self.workbench.float_accuracy,
                                              current=current, series_names=self._series_names(),
                                              title=t("prune.accuracy_title"))

    def _histogram_traces(self, spec, masks):
        bench = self.workbench
        chosen = self.controls["histogram_layer"].value
        if chosen == ALL_LAYERS:
            values, kept = self._all_weights, np.concatenate([m.ravel() for m in masks])
        else:
            index = bench.names.index(chosen)
            values, kept = bench.originals[index].ravel(), masks[index].ravel()
        if spec.method == "threshold":
            threshold = spec.threshold
        elif spec.scope == "global":
            threshold = bench.threshold_at_sparsity(spec.sparsity)
        elif chosen != ALL_LAYERS:
            threshold = bench.threshold_at_sparsity(spec.sparsity, chosen)
        else:
            threshold = None  # per-layer scope: every layer has its own cut
        traces = plots.threshold_histogram_traces(values, threshold, kept=kept, edges=self._edges[chosen])
        shown = t("prune.all_layers") if chosen == ALL_LAYERS else chosen
        return traces, t("prune.histogram_title", layer=shown)

    def _sizes_frame(self, sizes):
        rows = [{"name": "unpruned", **self._dense_sizes}, {"name": "pruned now", **sizes}]
        return pd.DataFrame(rows)

    def _schedule_frame(self):
        """The preview's curves (both schedules, the chosen one marked), steps per epoch and title."""
        epochs = int(self.controls["epochs"].value)
        steps_per_epoch = int(np.ceil(len(self.data.x_train) / self.batch_size))
        final = self._drawn_schedule = self._schedule_final()
        frames = []
        for name in ("polynomial", "constant"):
            key = (final, steps_per_epoch * epochs, name)
            if key not in self._schedule_curves:  # tfmot's own schedule, stepped: tens of ms a curve
                self._schedule_curves[key] = prune.schedule_curve(final_sparsity=final, total_steps=key[1],
                                                                  schedule=name)
            frames.append(self._schedule_curves[key])
        frame = pd.concat(frames, ignore_index=True)
        chosen = self.controls["schedule"].value
        frame["schedule"] = [f"{name} (chosen)" if name == chosen else name for name in frame["schedule"]]
        return frame, steps_per_epoch, t("prune.schedule_title", final=final, epochs=epochs)

    def _schedule_figure(self):
        frame, steps_per_epoch, title = self._schedule_frame()
        return plots.fig_sparsity_schedule(frame, steps_per_epoch=steps_per_epoch, title=title)


__all__ = ["PruningLab"]
