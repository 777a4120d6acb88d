"""Tests of DistillationLab, driven without a browser: set control values, check the figures and numbers."""

from __future__ import annotations

import time

import numpy as np
import pytest

import compresslab as cl
from compresslab import distill as core
from compresslab.plots import distillation as plots
from compresslab.widgets import distillation as panel_module


@pytest.fixture(scope="module")
def lab(trained_seed_cnn, small_digits):
    return cl.widgets.DistillationLab(trained_seed_cnn, small_digits, latency=False,
                                      spec=core.DistillSpec(temperature=4, alpha=0.2, epochs=1))


def test_controls_figures_and_spec(lab):
    assert set(lab.controls) == {"temperature", "alpha", "width", "epochs", "image", "run"}
    assert set(lab.figures) == {"soft_targets", "image", "curves", "comparison"}
    assert (lab.controls["temperature"].min, lab.controls["temperature"].max) == (1.0, 20.0)
    lab.controls["alpha"].value = 0.3
    lab.controls["epochs"].value = 2
    lab.controls["temperature"].value = 7.5
    assert lab.spec() == core.DistillSpec(temperature=7.5, alpha=0.3, epochs=2)
    lab.controls["epochs"].value = 1


def test_temperature_slider_redraws_the_softened_distribution(lab, trained_seed_cnn, small_digits):
    lab.controls["image"].value = 5
    lab.controls["temperature"].value = 1.0
    figure = lab.figures["soft_targets"]
    at_one = np.array(figure.data[1].y)
    started = time.perf_counter()
    lab.controls["temperature"].value = 20.0
    seconds = time.perf_counter() - started
    at_twenty = np.array(figure.data[1].y)
    assert lab.last_error is None
    assert not np.allclose(at_one, at_twenty)
    expected = core.soft_targets(trained_seed_cnn, small_digits.x_test[5], [1.0, 20.0])
    np.testing.assert_allclose(figure.data[0].y, expected[0], atol=1e-5)
    np.testing.assert_allclose(at_twenty, expected[1], atol=1e-5)
    assert plots.entropy_bits(at_twenty) > plots.entropy_bits(at_one)
    assert "T = 20" in figure.data[1].name and "T = 20" in figure.layout.title.text
    # cached logits: a redraw is one NumPy softmax plus a figure update, never a model call
    assert seconds < 0.5


def test_image_selector_changes_both_figures(lab, small_digits):
    lab.controls["temperature"].value = 10.0
    lab.controls["image"].value = 0
    before = np.array(lab.figures["soft_targets"].data[1].y)
    lab.controls["image"].value = 3
    np.testing.assert_allclose(lab.figures["image"].data[0].z, small_digits.x_test[3][..., 0])
    true_name = f"{small_digits.class_names[int(small_digits.y_test[3])]} (true)"
    assert true_name in list(lab.figures["soft_targets"].data[1].x)
    assert not np.allclose(before, lab.figures["soft_targets"].data[1].y)


def test_run_trains_both_students_and_measures_three_models(lab, trained_seed_cnn, small_digits, monkeypatch):
    seen = {}
    real_compare = core.compare

    def spy(teacher, student, data, spec, **kwargs):
        seen["disabled_while_running"] = lab.controls["run"].disabled
        seen["spec"] = spec
        seen["student_params"] = student.count_params()
        result = real_compare(teacher, student, data, spec, **kwargs)
        seen["models"] = result
        return result

    monkeypatch.setattr(core, "compare", spy)
    lab.controls["width"].value = 0.25
    lab.controls["epochs"].value = 2
    lab.controls["alpha"].value = 0.1
    before = [list(trace.y) for trace in lab.figures["comparison"].data]
    lab.controls["run"].click()
    assert lab.last_error is None, lab.last_error
    assert seen["disabled_while_running"] is True
    assert lab.controls["run"].disabled is False
    assert seen["spec"].epochs == 2 and seen["spec"].alpha == 0.1
    frame = lab.results
    assert list(frame["extra.role"]) == ["teacher", "scratch", "distilled"]
    assert frame["params"].tolist() == [trained_seed_cnn.count_params(), seen["student_params"],
                                        seen["student_params"]]
    for role in ("scratch", "distilled"):
        record = lab.records[role]
        assert record.accuracy == pytest.approx(cl.models.accuracy(seen["models"][role], small_digits), abs=1e-6)
        assert record.tflite_bytes > 0
    assert lab.records["teacher"].accuracy == pytest.approx(cl.models.accuracy(trained_seed_cnn, small_digits))
    # the live curves hold two points per run, the chart and the table show the measured numbers
    assert [len(trace.y) for trace in lab.figures["curves"].data] == [2, 2]
    accuracy_bars = lab.figures["comparison"].data[0].y
    assert [list(trace.y) for trace in lab.figures["comparison"].data] != before
    np.testing.assert_allclose(accuracy_bars, 100 * frame["accuracy"].to_numpy(), atol=1e-9)
    assert "distilled student 0.25x" in lab.table.value and "test errors" in lab.table.value
    assert "distilled" in lab.status.value


def test_errors_in_a_run_land_in_the_error_box(lab, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("the student does not fit the data: boom")

    monkeypatch.setattr(core, "compare", broken)
    lab.controls["run"].click()
    assert isinstance(lab.last_error, ValueError)
    assert "boom" in lab.error_box.value
    assert lab.controls["run"].disabled is False
    # the next successful callback clears the box
    lab.controls["temperature"].value = 3.0
    assert lab.error_box.value == ""


def test_an_untrained_teacher_is_flagged_in_the_panel(small_digits):
    untrained = cl.models.build("seed_cnn", seed=1)
    with pytest.warns(UserWarning, match="untrained"):
        lab = panel_module.DistillationLab(untrained, small_digits, latency=False)
    assert lab.teacher_accuracy < 0.19
    assert "untrained" in lab.warning_box.value


def test_panel_rejects_a_teacher_that_does_not_fit(trained_seed_cnn):
    rng = np.random.default_rng(0)
    data = cl.Dataset.from_arrays(rng.random((20, 16, 16, 1), dtype=np.float32), rng.integers(0, 10, 20),
                                  rng.random((10, 16, 16, 1), dtype=np.float32), rng.integers(0, 10, 10),
                                  class_names=[str(i) for i in range(10)])
    with pytest.raises(ValueError, match="teacher does not fit"):
        panel_module.DistillationLab(trained_seed_cnn, data)


def test_plots_build_from_plain_inputs():
    figure = plots.fig_soft_targets(np.full((2, 3), 1 / 3), [1, 5], class_names=["a", "b", "c"], true_label=1)
    assert [trace.name.split(" (")[0] for trace in figure.data] == ["T = 1", "T = 5"]
    assert list(figure.data[0].x) == ["a", "b (true)", "c"]
    with pytest.raises(ValueError, match="temperatures"):
        plots.fig_soft_targets(np.full((2, 3), 1 / 3), [1])
    errors = plots.fig_distill_errors([{"seed": 0, "scratch_errors": 150, "distilled_errors": 120}], 100)
    assert list(errors.data[1].y) == [120]
    assert cl.plots.fig_distill_comparison is plots.fig_distill_comparison
