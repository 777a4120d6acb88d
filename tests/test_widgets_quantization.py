"""Tests of the QuantizationLab panel (driven without a browser) and the quantization plots."""

from __future__ import annotations

import numpy as np
import pytest

import compresslab as cl
from compresslab import quantize as q
from compresslab.tflite import TFLiteArtifact


@pytest.fixture(scope="module")
def lab(trained_student, small_digits, tmp_path_factory):
    return cl.widgets.QuantizationLab(trained_student, small_digits,
                                      export_dir=tmp_path_factory.mktemp("exports"))


def _trace(figure, prefix):
    return next(trace for trace in figure.data if (trace.name or "").startswith(prefix))


def test_panel_exposes_controls_and_figures(lab):
    for name in ("bits", "scheme", "granularity", "fractional_bits", "layer", "ptq_dynamic", "ptq_float16",
                 "ptq_int8", "qat", "qat_epochs", "export", "export_path", "artifact", "sweep", "lowbit_mode",
                 "lowbit", "errors_of", "layer_errors"):
        assert name in lab.controls, name
    assert set(lab.figures) == {"accuracy", "histogram", "size", "layers"}
    assert lab.controls["bits"].min == 1 and lab.controls["bits"].max == 16
    assert lab.last_error is None


def test_moving_the_bits_slider_updates_figures_and_table_with_the_right_numbers(lab, trained_student,
                                                                                small_digits):
    lab.controls["layer"].value = "__all__"
    lab.controls["scheme"].value = "symmetric"
    lab.controls["granularity"].value = "per_tensor"
    lab.controls["bits"].value = 8
    histogram_before = list(_trace(lab.figures["histogram"], "quantized").y)
    lab.controls["bits"].value = 2
    assert lab.last_error is None
    spec = q.QuantSpec(bits=2)
    assert lab.spec() == spec
    expected = cl.models.accuracy(q.simulate(trained_student, spec), small_digits)
    assert lab.current["accuracy"] == pytest.approx(expected)
    current = _trace(lab.figures["accuracy"], "current")
    assert list(current.x) == [2] and current.y[0] == pytest.approx(100 * expected)
    assert list(_trace(lab.figures["histogram"], "quantized").y) != histogram_before
    assert "2-bit" in lab.figures["histogram"].layout.title.text
    assert lab.current["distinct_codes"] <= 4
    assert f"{100 * expected:.2f}%" in lab.table.value
    levels = _trace(lab.figures["histogram"], "levels")
    assert np.count_nonzero(~np.isnan(np.asarray(levels.x, dtype=float))) == 2 * 3  # 3 levels, 2 points each
    curve = _trace(lab.figures["accuracy"], "symmetric per-tensor")
    assert 2 in list(curve.x) and 8 in list(curve.x)


def test_scheme_granularity_and_layer_controls_map_to_the_spec(lab):
    lab.controls["bits"].value = 4
    lab.controls["granularity"].value = "per_channel"
    lab.controls["scheme"].value = "asymmetric"
    lab.controls["layer"].value = "conv2"
    assert lab.spec() == q.QuantSpec(bits=4, scheme="asymmetric", granularity="per_channel", layers=("conv2",))
    assert lab.current["layer_shown"] == "conv2"
    assert any("conv2 only" in (trace.name or "") for trace in lab.figures["accuracy"].data)
    lab.controls["scheme"].value = "fixed_point"
    assert lab.controls["granularity"].disabled and not lab.controls["fractional_bits"].disabled
    lab.controls["fractional_bits"].value = 3
    assert lab.spec() == q.QuantSpec(bits=4, scheme="fixed_point", fractional_bits=3, layers=("conv2",))
    assert lab.last_error is None
    lab.controls["scheme"].value = "symmetric"
    lab.controls["layer"].value = "__all__"
    assert not lab.controls["granularity"].disabled


def test_sweep_fills_the_curve(lab):
    lab.controls["scheme"].value = "symmetric"
    lab.controls["granularity"].value = "per_channel"
    lab.controls["sweep"].click()
    assert lab.last_error is None
    curve = _trace(lab.figures["accuracy"], "symmetric per-channel")
    assert sorted(curve.x) == list(range(1, 17))


def test_export_before_any_file_shows_an_error_in_the_panel(trained_student, small_digits, tmp_path):
    panel = cl.widgets.QuantizationLab(trained_student, small_digits, export_dir=tmp_path)
    panel.controls["export"].click()
    assert isinstance(panel.last_error, ValueError)
    assert "nothing to export" in panel.error_box.value


def test_ptq_button_adds_a_litert_record_and_export_writes_it(lab, small_digits, tmp_path):
    lab.controls["ptq_int8"].click()
    assert lab.last_error is None, lab.last_error
    names = [record.name for record in lab.records]
    assert names == ["float32", "PTQ int8"]
    record = lab.records[-1]
    assert record.accuracy_backend == "litert" and record.extra["bits"] == 8
    assert record.accuracy == pytest.approx(lab.artifacts["PTQ int8"].accuracy(small_digits))
    assert any((trace.name or "").startswith("PTQ int8") for trace in lab.figures["accuracy"].data)
    assert {trace.name for trace in lab.figures["size"].data} == {"baseline", "quantize"}
    assert not lab.controls["ptq_int8"].disabled  # re-enabled after the run
    assert lab.controls["export_path"].value.endswith("-PTQ-int8.tflite")
    target = lab.export_dir / "model-int8.tflite"  # exports stay inside the panel's folder (tests/test_serving.py)
    lab.controls["export_path"].value = str(target)
    lab.controls["export"].click()
    assert lab.last_error is None
    assert TFLiteArtifact.load(target).content == lab.artifacts["PTQ int8"].content


def test_qat_button_trains_and_adds_its_record(lab):
    lab.controls["qat_epochs"].value = 1
    lab.controls["qat"].click()
    assert lab.last_error is None, lab.last_error
    assert lab.records[-1].name == "QAT int8 (1 ep)"
    assert lab.records[-1].accuracy_backend == "litert"
    assert "QAT int8 (1 ep)" in lab.controls["artifact"].options


def test_lowbit_button_writes_a_real_int4_file_and_layer_errors_show_which_layer_broke(
        trained_student, small_digits, tmp_path):
    panel = cl.widgets.QuantizationLab(trained_student, small_digits, export_dir=tmp_path)
    assert panel.controls["lowbit_mode"].value == "int4 weights (per channel)"
    panel.controls["lowbit"].click()
    assert panel.last_error is None, panel.last_error
    record = panel.records[-1]
    assert record.name == "int4 weights (per channel) file"
    assert record.accuracy_backend == "litert"
    artifact = panel.artifacts[record.name]
    assert record.tflite_bytes == artifact.size_bytes < 0.2 * artifact.info["float32_tflite_bytes"]
    assert set(artifact.info["layer_storage"].values()) == {"int4 per_channel"}
    assert record.name in panel.controls["artifact"].options
    assert record.name in [value for _, value in panel.controls["errors_of"].options]
    assert "KB" in panel.status.value

    # per-layer error of the file: one pair of bars per layer, numbers in panel.layer_table
    panel.controls["errors_of"].value = record.name
    panel.controls["layer_errors"].click()
    assert panel.last_error is None, panel.last_error
    table = panel.layer_table
    assert list(table["storage"].unique()) == ["int4 per_channel"]
    bars = {trace.name: trace for trace in panel.figures["layers"].data}
    assert set(bars) == {"weights", "layer output"}
    assert len(bars["weights"].x) == len(table)
    assert bars["weights"].y[0] == pytest.approx(table["weight_snr_db"].iloc[0])
    assert record.name in panel.figures["layers"].layout.title.text

    # the slider's simulation at 2 bits: weights much noisier than the int4 file's
    panel.controls["bits"].value = 2
    panel.controls["errors_of"].value = "__slider__"
    panel.controls["layer_errors"].click()
    assert panel.last_error is None, panel.last_error
    assert set(panel.layer_table["storage"]) == {"simulated"}
    assert (panel.layer_table["weight_snr_db"].to_numpy() < table["weight_snr_db"].to_numpy() - 6).all()


def test_a_second_press_adds_no_duplicate_and_other_buttons_wait_for_a_running_job(
        trained_student, small_digits, tmp_path, monkeypatch):
    panel = cl.widgets.QuantizationLab(trained_student, small_digits, export_dir=tmp_path)
    seen = {}
    original = q.post_training

    def spy(*args, **kwargs):  # runs inside the job: what does the browser see meanwhile?
        seen.update({name: panel.controls[name].disabled for name in ("ptq_float16", "qat", "lowbit", "export")})
        return original(*args, **kwargs)

    monkeypatch.setattr(q, "post_training", spy)
    panel.controls["ptq_dynamic"].click()
    assert panel.last_error is None, panel.last_error
    assert seen == {"ptq_float16": True, "qat": True, "lowbit": True, "export": True}
    assert not any(panel.controls[name].disabled for name in seen)  # every button back after the job
    seen.clear()
    panel.controls["ptq_dynamic"].click()  # the same variant again
    assert seen == {}  # nothing was converted a second time
    assert [record.name for record in panel.records] == ["float32", "PTQ dynamic"]
    assert "already measured" in panel.status.value


def test_panel_rejects_data_that_does_not_fit(trained_student, digits):
    small_images = cl.Dataset.from_arrays(digits.x_train[:10, :14, :14], digits.y_train[:10],
                                          digits.x_test[:10, :14, :14], digits.y_test[:10])
    with pytest.raises(ValueError, match="expects inputs of shape"):
        cl.widgets.QuantizationLab(trained_student, small_images)


# ---------------------------------------------------------------------------------------------
# Plots


def test_fig_quantization_levels_draws_levels_or_says_they_are_too_dense():
    values = np.random.default_rng(0).normal(size=1000)
    three = q.quantize_array(values, 3)
    figure = cl.plots.fig_quantization_levels(values, three.values, three.levels(), title="w")
    assert [trace.name.split(" (")[0] for trace in figure.data] == ["float weights", "quantized weights",
                                                                     "quantization levels"]
    assert sum(figure.data[0].y) == 1000 and sum(figure.data[1].y) == 1000
    dense = q.quantize_array(values, 12)
    figure = cl.plots.fig_quantization_levels(values, dense.values, dense.levels())
    assert "too dense" in figure.data[2].name
    with pytest.raises(ValueError, match="empty"):
        cl.plots.fig_quantization_levels([])


def test_fig_accuracy_vs_bits_and_size_vs_accuracy():
    curve = [{"bits": b, "accuracy": a, "series": "s"} for b, a in [(2, 0.5), (4, 0.9), (8, 0.97)]]
    figure = cl.plots.fig_accuracy_vs_bits(curve, float_accuracy=0.98, current_bits=4)
    names = [trace.name for trace in figure.data]
    assert names[0] == "s" and names[1].startswith("float32 (98.00%)") and names[2] == "current: 4 bits"
    assert list(figure.data[2].y) == [90.0]
    with pytest.raises(ValueError, match="columns"):
        cl.plots.fig_accuracy_vs_bits([{"bits": 1}])
    records = [cl.Record(name="float", technique="baseline", accuracy=0.98, tflite_bytes=4000),
               cl.Record(name="int8", technique="quantize", accuracy=0.97, tflite_bytes=1000)]
    figure = cl.plots.fig_quantized_size_vs_accuracy(cl.to_frame(records))
    assert {trace.name for trace in figure.data} == {"baseline", "quantize"}
    with pytest.raises(ValueError, match="size is"):
        cl.plots.fig_quantized_size_vs_accuracy(cl.to_frame(records), size="bytes")


def test_fig_quantization_sensitivity():
    import pandas as pd

    frame = pd.DataFrame([{"layer": "a", "bits": 2, "accuracy_drop_points": 5.0},
                          {"layer": "b", "bits": 2, "accuracy_drop_points": 1.0}])
    figure = cl.plots.fig_quantization_sensitivity(frame)
    assert list(figure.data[0].y) == [5.0, 1.0]
