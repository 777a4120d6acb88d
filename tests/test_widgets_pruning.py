"""PruningLab driven without a browser: set control values, check figures and numbers."""

from __future__ import annotations

import numpy as np
import pytest

import compresslab as cl
from compresslab import prune
from compresslab.prune import PruneSpec


@pytest.fixture(scope="module")
def lab(trained_seed_cnn, digits):
    return cl.widgets.PruningLab(trained_seed_cnn, digits)


def trace(figure, name_start):
    return next(t for t in figure.data if (t.name or "").startswith(name_start))


def test_panel_exposes_controls_and_figures(lab):
    assert {"threshold", "sparsity", "scope", "histogram_layer", "schedule", "epochs", "finetune",
            "tflite"} <= set(lab.controls)
    assert set(lab.figures) == {"accuracy", "layer_sparsity", "histogram", "sizes", "schedule"}
    assert lab.last_error is None
    assert lab.last_accuracy == pytest.approx(lab.workbench.float_accuracy)


def test_sparsity_slider_updates_everything(lab, trained_seed_cnn, digits):
    lab.controls["scope"].value = "layer"
    before_hist = list(trace(lab.figures["histogram"], "pruned").y)
    lab.controls["sparsity"].value = 0.8
    assert lab.last_error is None and lab.method == "magnitude"
    assert lab.spec() == PruneSpec(sparsity=0.8, scope="layer")
    expected = cl.models.accuracy(prune.to_sparsity(trained_seed_cnn, PruneSpec(sparsity=0.8)), digits)
    assert lab.last_accuracy == pytest.approx(expected)
    bars = lab.figures["layer_sparsity"].data[0]
    assert list(bars.x) == ["conv1", "conv2", "dense1", "logits"]
    assert np.allclose(bars.y, 80.0, atol=0.2)
    pruned_counts = np.asarray(trace(lab.figures["histogram"], "pruned").y)
    total = sum(k.size for k in lab.workbench.originals)
    assert abs(pruned_counts.sum() - 0.8 * total) <= 4 and list(pruned_counts) != before_hist
    now = trace(lab.figures["accuracy"], "now")
    assert now.x[0] == pytest.approx(80.0, abs=0.1) and now.y[0] == pytest.approx(100 * expected)
    sizes = lab.figures["sizes"]
    bitmask = trace(sizes, "bitmask")
    assert bitmask.y[1] < 0.4 * bitmask.y[0]  # "pruned now" against "unpruned"
    assert lab.last_sizes["bitmask_bytes"] == pytest.approx(1000 * bitmask.y[1])
    assert "gzip -6 of float32 weights" in lab.summary.value


def test_global_scope_and_threshold_slider(lab, trained_seed_cnn, digits):
    lab.controls["sparsity"].value = 0.9
    lab.controls["scope"].value = "global"
    sparsities = list(lab.figures["layer_sparsity"].data[0].y)
    assert max(sparsities) - min(sparsities) > 20  # layers differ under a global cut
    assert lab.last_sparsity == pytest.approx(0.9, abs=1e-4)
    line = trace(lab.figures["histogram"], "±threshold")
    cut = lab.workbench.threshold_at_sparsity(0.9)
    assert line.x[3] == pytest.approx(cut) and line.x[0] == pytest.approx(-cut)

    # One state, two views: in global scope the threshold slider shows the cut the sparsity slider made.
    assert lab.controls["threshold"].value == pytest.approx(min(cut, lab.controls["threshold"].max))
    lab.controls["threshold"].value = 0.05
    assert lab.method == "threshold" and lab.last_error is None
    # ... and after a threshold move the sparsity slider shows the sparsity reached (not the old 90%).
    assert lab.controls["sparsity"].value == pytest.approx(round(lab.last_sparsity, 2))
    assert lab.method == "threshold"  # syncing the other slider did not switch the method back
    expected = cl.models.accuracy(prune.by_threshold(trained_seed_cnn, 0.05), digits)
    assert lab.last_accuracy == pytest.approx(expected)
    assert lab.last_sparsity == pytest.approx(lab.workbench.sparsity_at_threshold(0.05))
    line = trace(lab.figures["histogram"], "±threshold")
    assert line.x[3] == pytest.approx(0.05, rel=1e-3)
    lab.controls["histogram_layer"].value = "conv2"
    assert lab.figures["histogram"].layout.title.text.startswith("Weights of conv2")
    kept = np.asarray(trace(lab.figures["histogram"], "kept").y).sum()
    conv2 = lab.workbench.originals[lab.workbench.names.index("conv2")]
    assert kept == int((np.abs(conv2) >= 0.05).sum())
    lab.controls["histogram_layer"].value = "all layers"
    series = {t.name for t in lab.figures["accuracy"].data if len(t.x)}
    assert {"magnitude, layer scope", "magnitude, global scope", "threshold |w| < t"} <= series


def test_callback_errors_land_in_the_error_box(lab, monkeypatch):
    def broken(spec):
        raise ValueError("boom from the core")

    monkeypatch.setattr(lab.workbench, "apply", broken)
    lab.controls["sparsity"].value = 0.33
    assert "boom from the core" in lab.error_box.value
    monkeypatch.undo()
    lab.controls["sparsity"].value = 0.34
    assert lab.error_box.value == "" and lab.last_error is None


def test_schedule_preview_follows_controls(lab):
    before = [list(t.y) for t in lab.figures["schedule"].data]
    lab.controls["epochs"].value = 4
    after = [list(t.y) for t in lab.figures["schedule"].data]
    assert before != after
    lab.controls["schedule"].value = "constant"
    names = [t.name for t in lab.figures["schedule"].data]
    assert "constant (chosen)" in names and lab.last_error is None
    # The preview names the sparsity the fine-tune button would use, whatever slider moved last.
    lab.controls["sparsity"].value = 0.6
    assert "60%" in lab.figures["schedule"].layout.title.text
    lab.controls["sparsity"].value = 0.3
    assert "30%" in lab.figures["schedule"].layout.title.text


def test_tflite_button_reports_real_sizes(lab):
    lab.controls["sparsity"].value = 0.8
    lab.controls["tflite"].click()
    assert lab.last_error is None
    frame = lab.tflite_sizes
    unpruned, pruned = frame.iloc[0], frame.iloc[1]
    assert abs(int(pruned["tflite_bytes"]) - int(unpruned["tflite_bytes"])) < 0.01 * unpruned["tflite_bytes"]
    assert pruned["gzip_bytes"] < 0.5 * unpruned["gzip_bytes"]
    assert "TFLite file bytes" in lab.tflite_box.value
    assert not lab.controls["tflite"].disabled


def test_finetune_button_runs_with_progress(trained_student, small_digits):
    panel = cl.widgets.PruningLab(trained_student, small_digits, epochs=1)
    panel.controls["sparsity"].value = 0.6
    seen = []
    panel.progress.observe(lambda change: seen.append(change["new"]), names="value")
    panel.controls["finetune"].click()
    assert panel.last_error is None
    assert seen and max(seen) == 1 and not panel.controls["finetune"].disabled
    assert prune.layer_sparsity(panel.finetuned_model)["dense1"] == pytest.approx(0.6, abs=0.01)
    tuned = trace(panel.figures["accuracy"], "fine-tuned (polynomial)")
    assert len(tuned.x) == 1 and "fine-tuned" in panel.status.value


def test_fig_log_alpha_lays_kernels_out_as_pictures():
    from compresslab.plots.pruning import kernel_image

    conv = np.arange(3 * 3 * 1 * 8, dtype=float).reshape(3, 3, 1, 8)
    image = kernel_image(conv)
    # every weight appears exactly once; the rest are NaN gaps between tiles
    assert np.sort(image[~np.isnan(image)]).tolist() == np.sort(conv.ravel()).tolist()
    assert image[0:3, 0:3].tolist() == conv[:, :, 0, 0].tolist()  # filter 0 is the first tile
    dense = np.arange(12, dtype=float).reshape(4, 3)
    assert kernel_image(dense).tolist() == dense.T.tolist()
    log_alpha = np.where(conv > 30, 5.0, -5.0)
    figure = cl.plots.fig_log_alpha(log_alpha, conv, magnitude_kept=np.abs(conv) > 10)
    assert len(figure.data) == 2
    left, right = (np.asarray(trace.z, dtype=float) for trace in figure.data)
    assert np.nanmax(left) == 5.0 and np.nanmin(left) == -5.0
    assert set(np.unique(right[~np.isnan(right)])) == {0.0, 1.0}
    with pytest.raises(ValueError, match="log_alpha has shape"):
        cl.plots.fig_log_alpha(log_alpha, dense)
    with pytest.raises(ValueError, match="Dense \\(2-D\\) or Conv2D \\(4-D\\)"):
        kernel_image(np.zeros(5))


def test_accuracy_axes_span_at_least_two_points(lab):
    from compresslab.plots.common import accuracy_range

    assert accuracy_range([97.35, 97.55]) == pytest.approx([96.45, 98.45])  # one image no longer looks large
    assert accuracy_range([99.9, 100.0]) == pytest.approx([98.5, 100.5])    # kept within the bounds
    assert accuracy_range([50.0, 97.0]) is None and accuracy_range([None]) is None
    lab.controls["sparsity"].value = 0.1
    axis = lab.figures["accuracy"].layout.yaxis
    plotted = [y for t in lab.figures["accuracy"].data for y in (t.y or ()) if y is not None]
    if max(plotted) - min(plotted) >= 2.0:   # the points visited earlier spread widely: plotly's own range
        assert axis.range is None and axis.autorange is True
    else:                                    # a narrow spread: at least two points of axis around it
        low, high = axis.range
        assert high - low >= 2.0 - 1e-9 and low <= min(plotted) and max(plotted) <= high


def test_a_fresh_panel_draws_a_narrow_accuracy_spread_on_two_points_of_axis(trained_student, small_digits):
    fresh = cl.widgets.PruningLab(trained_student, small_digits)
    fresh.controls["sparsity"].value = 0.01  # one pruned weight in a hundred: the accuracy barely moves
    axis = fresh.figures["accuracy"].layout.yaxis
    low, high = axis.range
    assert high - low == pytest.approx(2.0) and axis.autorange is False
