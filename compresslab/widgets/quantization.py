"""The quantization lab: a live bit-width slider over a model, plus TFLite PTQ, QAT and export.

Moving the bits slider (or a toggle) re-quantizes the kernels with numpy, assigns them to one
cached working copy of the model, and re-measures the test accuracy with a compiled
``tf.function`` over cached test tensors (see :class:`compresslab.quantize.SimulationEvaluator`):
no cloning or retracing per move. Results are cached per spec, so going back is instant.

Example:
    >>> lab = cl.widgets.QuantizationLab(model, data)
    >>> lab.controls["bits"].value = 4
    >>> lab.current["accuracy"]
"""

from __future__ import annotations

import html
import time
from pathlib import Path

import ipywidgets as widgets
import numpy as np

from .. import lowbit
from .. import quantize as quantization
from ..data import Dataset, default_data_home
from ..i18n import t
from ..measure import measure
from ..models import check_model_fits
from ..plots.common import display_label
from ..plots.quantization import (
    accuracy_vs_bits_traces,
    fig_accuracy_vs_bits,
    fig_layer_errors,
    fig_quantization_levels,
    fig_quantized_size_vs_accuracy,
    quantization_levels_traces,
)
from ..records import to_frame
from ..serving import confined_path
from ._base import Panel, figure_widget, replace_figure, update_traces, wrapping_row

ALL_LAYERS = "__all__"
SLIDER_SOURCE = "__slider__"
# The low-bit files the panel offers (ai-edge-quantizer), label -> spec.
LOWBIT_CHOICES = {
    "int4 weights (per channel)": lowbit.LowBitSpec("int4_weight_only"),
    "int4 weights (blocks of 32)": lowbit.LowBitSpec("int4_dynamic", granularity="blockwise", block_size=32),
    "int8 weights": lowbit.LowBitSpec("int8_weight_only"),
}
# The label each choice shows (message keys): the English label stays the value and the record's name.
_LOWBIT_MESSAGES = {"int4 weights (per channel)": "quant.lowbit_int4_channel",
                    "int4 weights (blocks of 32)": "quant.lowbit_int4_blocks", "int8 weights": "quant.lowbit_int8"}


class QuantizationLab(Panel):
    """A panel to feel what bits per weight cost in accuracy and buy in size.

    Controls (``panel.controls``): ``bits`` (1-16 slider), ``scheme``, ``granularity``,
    ``fractional_bits`` (fixed point only), ``layer`` (quantize all layers or one), ``sweep``
    (fill the curve for 1-16 bits), ``ptq_dynamic``, ``ptq_float16``, ``ptq_int8``, ``qat``,
    ``qat_epochs``, ``lowbit_mode`` and ``lowbit`` (a real low-bit file written by ai-edge-quantizer),
    ``artifact`` (which TFLite file to export), ``export_path``, ``export``, ``errors_of`` and
    ``layer_errors`` (per-layer error of the slider's simulation or of a file).

    Figures (``panel.figures``): ``accuracy`` (accuracy against bits, float line, current point,
    measured TFLite/QAT records), ``histogram`` (a layer's weights with the quantization levels),
    ``size`` (TFLite file size against accuracy of every measured variant), ``layers`` (weight
    and output SNR per layer: which layer broke; ``panel.layer_table`` holds its numbers).

    ``panel.table`` shows the current figures; ``panel.current`` holds them as a dict;
    ``panel.records`` holds the measured :class:`~compresslab.records.Record` s.

    Args:
        model: a trained tf_keras classifier (not modified).
        data: the data set; accuracy is measured on its test split.
        bits, scheme, granularity: the starting position of the controls.
        export_dir: the folder exported ``.tflite`` files go to, and the only one the export box may
            write into (``<data home>/exports`` by default).
        batch_size: images per compiled evaluation call.

    Example:
        >>> lab = QuantizationLab(cl.baseline("seed_cnn", "digits"), cl.load_dataset("digits"))
        >>> lab          # shows the panel
    """

    title = "Quantization lab"

    def __init__(self, model, data: Dataset, *, bits: int = 8, scheme: str = "symmetric",
                 granularity: str = "per_channel", export_dir=None, batch_size: int = 256):
        super().__init__()
        if not isinstance(data, Dataset):
            raise TypeError(f"data must be a compresslab Dataset, got {type(data).__name__}")
        model = check_model_fits(model, data)
        quantization.QuantSpec(bits=bits, scheme=scheme, granularity=granularity,
                               fractional_bits=7 if scheme == "fixed_point" else None)
        self.model = model
        self.data = data
        self.evaluator = quantization.SimulationEvaluator(model, data.x_test, data.y_test, batch_size=batch_size)
        self.float_accuracy = self.evaluator.float_accuracy
        self.float_bytes = 4 * sum(int(np.prod(w.shape)) for w in model.weights)
        self.accuracy_cache: dict[quantization.QuantSpec, float] = {}
        self.records: list = []
        self.artifacts: dict[str, object] = {}
        self.current: dict = {}
        self.export_dir = Path(export_dir) if export_dir is not None else default_data_home() / "exports"
        self._float_record = None
        self._build_controls(bits, scheme, granularity)
        self.table = widgets.HTML(value="")
        self.figures["accuracy"] = figure_widget(fig_accuracy_vs_bits([], float_accuracy=self.float_accuracy))
        self.figures["histogram"] = figure_widget(fig_quantization_levels(
            next(iter(self.evaluator.float_values.values()))))
        self.figures["size"] = figure_widget(fig_quantized_size_vs_accuracy([]))
        self.figures["layers"] = figure_widget(fig_layer_errors(
            {"layer": [], "storage": [], "weight_snr_db": [], "output_snr_db": []},
            title=t("quant.layers_empty")))
        self.layer_table = None
        self._build_view()
        for name in ("bits", "scheme", "granularity", "fractional_bits", "layer"):
            self.controls[name].observe(self.guard(self._on_change), names="value")
        self.run_button(self.controls["sweep"], self._on_sweep)
        for mode in quantization.PTQ_MODES:
            self.run_button(self.controls[f"ptq_{mode}"], lambda button, mode=mode: self.run_post_training(mode, button))
        self.run_button(self.controls["qat"], lambda button: self.run_aware_training(button))
        self.run_button(self.controls["lowbit"], lambda button: self.run_lowbit(button=button))
        self.run_button(self.controls["layer_errors"], lambda button: self.run_layer_errors(button))
        self.run_button(self.controls["export"], lambda button: self.export())
        self.guard(self.update)()

    # -- building ---------------------------------------------------------------------------

    def _build_controls(self, bits: int, scheme: str, granularity: str) -> None:
        c = self.controls
        c["bits"] = widgets.IntSlider(value=bits, min=1, max=16, step=1, description=t("quant.bits"))
        c["scheme"] = widgets.ToggleButtons(options=[(t(f"quant.scheme_{s}"), s) for s in quantization.SCHEMES],
                                            value=scheme, description=t("quant.scheme"))
        c["granularity"] = widgets.ToggleButtons(
            options=[(t(f"quant.granularity_{g}"), g) for g in quantization.GRANULARITIES], value=granularity,
            description=t("quant.scales"))
        c["fractional_bits"] = widgets.IntSlider(value=7, min=0, max=15, description=t("quant.fraction"),
                                                 disabled=scheme != "fixed_point")
        options = [(t("quant.all_layers"), ALL_LAYERS)] + [(name, name) for name in self.evaluator.layer_names]
        c["layer"] = widgets.Dropdown(options=options, value=ALL_LAYERS, description=t("quant.layer"))
        c["sweep"] = widgets.Button(description=t("quant.sweep"), icon="line-chart",
                                    layout=widgets.Layout(width="auto", align_self="flex-start"))
        for mode in quantization.PTQ_MODES:
            c[f"ptq_{mode}"] = widgets.Button(description=t(f"quant.ptq_{mode}"), tooltip=t(f"quant.ptq_{mode}_tip"))
        c["qat_epochs"] = widgets.BoundedIntText(value=1, min=1, max=50, description=t("quant.qat_epochs"),
                                                 layout=widgets.Layout(width="160px"))
        c["qat"] = widgets.Button(description=t("quant.qat"), tooltip=t("quant.qat_tip"))
        c["lowbit_mode"] = widgets.Dropdown(options=[(t(_LOWBIT_MESSAGES[label]), label) for label in LOWBIT_CHOICES],
                                            value=next(iter(LOWBIT_CHOICES)), description=t("quant.lowbit_mode"))
        c["lowbit"] = widgets.Button(description=t("quant.lowbit"), icon="compress", tooltip=t("quant.lowbit_tip"))
        c["errors_of"] = widgets.Dropdown(options=[(t("quant.slider_simulation"), SLIDER_SOURCE)],
                                          value=SLIDER_SOURCE, description=t("quant.errors_of"))
        c["layer_errors"] = widgets.Button(description=t("quant.layer_errors"), icon="bar-chart",
                                           tooltip=t("quant.layer_errors_tip"))
        c["artifact"] = widgets.Dropdown(options=[], description=t("quant.file"))
        c["export_path"] = widgets.Text(value=str(self.export_dir / f"{self.model.name}.tflite"),
                                        description=t("quant.path"), layout=widgets.Layout(width="420px"))
        c["export"] = widgets.Button(description=t("quant.export"), icon="download")

    def _build_view(self) -> None:
        c = self.controls
        header = widgets.HTML(f"<h3>{html.escape(t('quant.title'))}</h3><p>"
                              + t("quant.header", accuracy=100 * self.float_accuracy, count=self.evaluator.count,
                                  dataset=html.escape(self.data.name)) + "</p>")
        simulate_box = widgets.VBox([c["bits"], c["scheme"], c["granularity"], c["fractional_bits"], c["layer"],
                                     c["sweep"], self.table])
        charts = wrapping_row(self.figures["accuracy"], self.figures["histogram"])
        deploy = widgets.VBox([
            widgets.HTML(f"<b>{t('quant.deploy')}</b>"),
            wrapping_row(c["ptq_dynamic"], c["ptq_float16"], c["ptq_int8"], c["qat_epochs"], c["qat"]),
            widgets.HBox([c["lowbit_mode"], c["lowbit"]]),
            wrapping_row(c["artifact"], c["export_path"], c["export"]),
            self.progress, self.status,
        ])
        layers = widgets.VBox([widgets.HBox([c["errors_of"], c["layer_errors"]]), self.figures["layers"]])
        self.view = widgets.VBox([header, self.error_box, simulate_box, charts, deploy, self.figures["size"], layers])

    # -- controls -> spec (the ONE mapping) ---------------------------------------------------

    def spec(self) -> quantization.QuantSpec:
        """The :class:`~compresslab.quantize.QuantSpec` the controls describe."""
        c = self.controls
        fixed = c["scheme"].value == "fixed_point"
        return quantization.QuantSpec(
            bits=int(c["bits"].value),
            scheme=c["scheme"].value,
            granularity="per_tensor" if fixed else c["granularity"].value,
            fractional_bits=int(c["fractional_bits"].value) if fixed else None,
            layers=None if c["layer"].value == ALL_LAYERS else (c["layer"].value,),
        )

    @staticmethod
    def spec_text(spec: quantization.QuantSpec) -> str:
        """``spec.label`` in the panel's language (``"4-bit symmetric per-channel"``, ``"4 位 对称，逐通道"``)."""
        if spec.scheme == "fixed_point":
            return t("quant.spec_fixed_point", bits=spec.bits, integer=spec.bits - spec.fractional_bits,
                     fraction=spec.fractional_bits)
        return t("quant.spec", bits=spec.bits,
                 series=display_label(f"{spec.scheme} {spec.granularity.replace('_', '-')}"))

    @staticmethod
    def series_label(spec: quantization.QuantSpec) -> str:
        """The curve a spec belongs to (everything but the bits)."""
        if spec.scheme == "fixed_point":
            text = f"fixed-point p={spec.fractional_bits}"
        else:
            text = f"{spec.scheme} {spec.granularity.replace('_', '-')}"
        return text + (f" ({spec.layers[0]} only)" if spec.layers else "")

    # -- live update ----------------------------------------------------------------------------

    def _on_change(self, change=None) -> None:
        fixed = self.controls["scheme"].value == "fixed_point"
        self.controls["fractional_bits"].disabled = not fixed
        self.controls["granularity"].disabled = fixed
        self.update()

    def measure_spec(self, spec: quantization.QuantSpec, arrays=None) -> float:
        """Simulated test accuracy of ``spec`` (cached per spec)."""
        if spec not in self.accuracy_cache:
            if arrays is None:
                arrays = self.evaluator.quantize(spec)
            self.accuracy_cache[spec] = self.evaluator.accuracy(arrays)
        return self.accuracy_cache[spec]

    def update(self) -> None:
        """Re-quantize for the current controls and update the table and both figures in place."""
        started = time.perf_counter()
        spec = self.spec()
        arrays = self.evaluator.quantize(spec)
        shown_key = self._shown_key(spec)
        shown = arrays[shown_key]
        group = int(np.argmax(shown.scale)) if shown.groups > 1 else 0
        levels = shown.levels(group)
        level_text = t("quant.levels") if shown.groups == 1 else t("quant.levels_channel", group=group)
        update_traces(self.figures["histogram"], quantization_levels_traces(
            self.evaluator.float_values[shown_key], shown.values, levels, levels_label=level_text),
            title=f"{shown_key[0]}.{shown_key[1]}: {self.spec_text(spec)}")
        # The histogram needs no evaluation: it is on its way to the browser while the model is measured.
        accuracy = self.measure_spec(spec, arrays)
        self._redraw_accuracy(spec)
        packed = quantization.packed_weight_bytes(self.evaluator.model, arrays)
        codes = int(np.count_nonzero(np.bincount((shown.codes - shown.codes.min()).ravel())))
        self.current = {
            "spec": spec.to_dict(), "bits": spec.bits, "accuracy": accuracy, "float_accuracy": self.float_accuracy,
            "accuracy_drop_points": 100 * (self.float_accuracy - accuracy), "layer_shown": shown_key[0],
            "distinct_codes": int(codes),
            "packed_bytes": packed, "float32_bytes": self.float_bytes,
            "update_ms": 1000 * (time.perf_counter() - started),
        }
        self._render_table()

    def _shown_key(self, spec) -> tuple[str, str]:
        keys = list(self.evaluator.float_values)
        if spec.layers:
            keys = [key for key in keys if key[0] == spec.layers[0]]
        return max(keys, key=lambda key: self.evaluator.float_values[key].size)

    def _curve(self) -> list[dict]:
        return [{"bits": spec.bits, "accuracy": value, "series": self.series_label(spec)}
                for spec, value in self.accuracy_cache.items()]

    def _redraw_accuracy(self, spec) -> None:
        frame = to_frame(self.records) if self.records else None
        update_traces(self.figures["accuracy"], accuracy_vs_bits_traces(
            self._curve(), float_accuracy=self.float_accuracy, current_bits=spec.bits,
            current_series=self.series_label(spec), records=frame), accuracy_axis=True)

    def _render_table(self) -> None:
        now = self.current
        rows = [
            (t("quant.row_weights"), t("quant.row_bits", bits=now["bits"], series=self.series_label(
                quantization.QuantSpec.from_dict(now["spec"])))),
            (t("quant.row_accuracy"), f"{100 * now['accuracy']:.2f}%"),
            (t("quant.row_drop"), t("quant.points", points=now["accuracy_drop_points"]).replace("+-", "-")),
            (t("quant.row_codes", layer=now["layer_shown"]),
             t("quant.codes", codes=now["distinct_codes"], most=2 ** now["bits"])),
            (t("quant.row_packed"), t("quant.packed", kb=now["packed_bytes"] / 1024,
                                      ratio=now["packed_bytes"] / now["float32_bytes"])),
            (t("quant.row_update"), f"{now['update_ms']:.0f} ms"),
        ]
        body = "".join(f"<tr><td style='padding:2px 10px 2px 0'>{html.escape(k)}</td>"
                       f"<td style='text-align:right'><b>{html.escape(v)}</b></td></tr>" for k, v in rows)
        self.table.value = f"<table class='compresslab-table'>{body}</table>"

    def _on_sweep(self, button=None) -> None:
        base = self.spec()
        with self.busy(button, total=16, label=t("quant.sweep_label")) as step:
            for bits in range(1, 17):
                self.measure_spec(base.replace(bits=bits))
                step(1, t("quant.bits_measured", bits=bits))
        self._redraw_accuracy(base)
        self.set_status(t("quant.curve_filled", series=self.series_label(base)))

    # -- deployable files -----------------------------------------------------------------------

    def _ensure_float_record(self) -> None:
        if self._float_record is None:
            self._float_record = measure(self.model, self.data, name="float32", technique="baseline",
                                         tflite=True, latency=True, extra={"tflite_mode": "float32"})
            self.records.append(self._float_record)

    def _add(self, artifact, record) -> None:
        self.records.append(record)
        self.artifacts[record.name] = artifact
        previous_default = str(self.export_dir / f"{self.model.name}.tflite")
        options = list(self.artifacts)
        self.controls["artifact"].options = options
        self.controls["errors_of"].options = [(t("quant.slider_simulation"), SLIDER_SOURCE)] + [(n, n) for n in options]
        self.controls["artifact"].value = record.name
        if self.controls["export_path"].value in (previous_default, *self._default_paths()):
            self.controls["export_path"].value = self._default_path(record.name)
        self._redraw_accuracy(self.spec())
        replace_figure(self.figures["size"], fig_quantized_size_vs_accuracy(to_frame(self.records)))

    def _default_path(self, name: str) -> str:
        slug = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name).strip("-")
        return str(self.export_dir / f"{self.model.name}-{slug}.tflite")

    def _default_paths(self) -> list[str]:
        return [self._default_path(name) for name in self.artifacts]

    def run_post_training(self, mode: str, button=None):
        """Convert with post-training quantization ``mode``, measure it in LiteRT and add its record."""
        if mode not in quantization.PTQ_MODES:
            raise ValueError(f"mode is {mode!r}; choose one of {', '.join(quantization.PTQ_MODES)}")
        earlier = self.already_measured(self.records, f"PTQ {mode}")
        if earlier is not None:
            return earlier
        with self.busy(button, total=3, label=f"PTQ {mode}") as step:
            self._ensure_float_record()
            step(1, t("quant.converting", name=f"PTQ {mode}"))
            artifact = quantization.post_training(self.model, self.data, mode)
            step(1, t("quant.measuring", name=f"PTQ {mode}"))
            record = measure(artifact, self.data, name=f"PTQ {mode}", technique="quantize",
                             spec={"ptq_mode": mode})
            step(1)
        self._add(artifact, record)
        self.set_status(t("quant.ptq_done", mode=mode, accuracy=100 * record.accuracy, kb=record.tflite_bytes / 1024,
                          ms=record.latency_ms, threads=record.latency_threads))
        return record

    def run_aware_training(self, button=None):
        """Quantization-aware training for ``qat_epochs`` epochs, int8 conversion, LiteRT measurement."""
        epochs = int(self.controls["qat_epochs"].value)
        earlier = self.already_measured(self.records, f"QAT int8 ({epochs} ep)")
        if earlier is not None:
            return earlier
        with self.busy(button, total=epochs + 2, label="QAT") as step:
            self._ensure_float_record()
            step(1, t("quant.qat_training"))
            result = quantization.aware_training(
                self.model, self.data, epochs=epochs,
                progress=lambda epoch, logs: step(1, t("quant.qat_epoch", epoch=epoch + 1, epochs=epochs,
                                                       loss=logs.get("loss", float("nan")))))
            record = measure(result.artifact, self.data, name=f"QAT int8 ({epochs} ep)", technique="quantize",
                             spec={"qat_epochs": epochs, "bits": 8})
            step(1)
        self._add(result.artifact, record)
        self.set_status(t("quant.qat_done", accuracy=100 * record.accuracy, kb=record.tflite_bytes / 1024))
        return record

    def run_lowbit(self, label: str | None = None, button=None):
        """Write the low-bit file chosen in ``lowbit_mode`` with ai-edge-quantizer and measure it in LiteRT."""
        label = label or self.controls["lowbit_mode"].value
        if label not in LOWBIT_CHOICES:
            raise ValueError(f"low-bit file {label!r} is not offered; choose one of {list(LOWBIT_CHOICES)}")
        spec = LOWBIT_CHOICES[label]
        earlier = self.already_measured(self.records, f"{label} file")
        if earlier is not None:
            return earlier
        with self.busy(button, total=3, label=label) as step:
            self._ensure_float_record()
            step(1, t("quant.lowbit_writing", label=label))
            artifact = lowbit.post_training_lowbit(self.model, self.data, spec)
            step(1, t("quant.measuring", name=label))
            record = measure(artifact, self.data, name=f"{label} file", technique="quantize", spec=spec)
            step(1)
        self._add(artifact, record)
        ratio = record.tflite_bytes / artifact.info["float32_tflite_bytes"]
        self.set_status(t("quant.lowbit_done", label=label, accuracy=100 * record.accuracy,
                          kb=record.tflite_bytes / 1024, ratio=ratio))
        return record

    def run_layer_errors(self, button=None):
        """Per-layer weight and output error of the source in ``errors_of``; draws the ``layers`` chart."""
        source = self.controls["errors_of"].value
        with self.busy(button, total=2, label=t("quant.layer_errors")) as step:
            if source == SLIDER_SOURCE:
                spec = self.spec()
                variant, label = quantization.simulate(self.model, spec), t("quant.simulation_label", spec=spec.label)
            else:
                variant, label = self.artifacts[source], source
            step(1, t("quant.layer_errors_of", label=label))
            frame = lowbit.layer_errors(self.model, variant, self.data)
            step(1)
        self.layer_table = frame
        replace_figure(self.figures["layers"], fig_layer_errors(
            frame, title=t("quant.layers_title", label=label, images=frame.attrs["images"],
                           split=frame.attrs["images_split"])))
        worst = frame.sort_values("output_snr_db").iloc[0] if len(frame) else None
        if worst is not None:
            self.set_status(t("quant.worst_layer", label=label, layer=worst["layer"], snr=worst["output_snr_db"]))
        return frame

    def export(self) -> Path:
        """Write the chosen TFLite file to the path in ``controls['export_path']``.

        The path must lie inside the panel's ``export_dir`` (a relative path is taken inside it): a
        path that leads out of it, by ``..``, an absolute path or a symbolic link, is refused, so a
        served app never writes outside the student's folder.
        """
        if not self.artifacts:
            raise ValueError("nothing to export yet: press a PTQ or QAT button first to make a TFLite file")
        name = self.controls["artifact"].value
        if name not in self.artifacts:
            raise ValueError(f"choose a file to export; made so far: {list(self.artifacts)}")
        text = self.controls["export_path"].value.strip()
        if not text:
            raise ValueError("the export path is empty: type where to write the .tflite file")
        path = self.artifacts[name].save(confined_path(self.export_dir, text))
        self.set_status(t("quant.wrote", path=path, size=path.stat().st_size))
        return path


__all__ = ["QuantizationLab", "update_traces"]
