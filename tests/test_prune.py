"""Tests of compresslab.prune: specs, one-shot pruning, tfmot fine-tuning, 2:4, filters, sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest

import compresslab as cl
from compresslab import prune
from compresslab._keras import keras
from compresslab.prune import PruneSpec
from compresslab.prune.filters import _n_out
from compresslab.prune.masks import _kernel_of


def kernels(model):
    return {layer.name: _kernel_of(layer).numpy() for layer in prune.prunable_layers(model)}


def all_weights(model):
    return [w.numpy().copy() for w in model.weights]


def tiny_dense_model(kernel, bias):
    inputs = keras.Input(shape=(kernel.shape[0],))
    layer = keras.layers.Dense(kernel.shape[1], name="dense")
    model = keras.Model(inputs, layer(inputs))
    layer.set_weights([kernel, bias])
    return model


# ---------------------------------------------------------------------------------------------
# PruneSpec


def test_spec_defaults_round_trip_and_hash():
    spec = PruneSpec(method="magnitude", sparsity=0.8, scope="global", layers=["conv1", "dense1"])
    assert spec.layers == ("conv1", "dense1")
    again = PruneSpec.from_json(spec.to_json())
    assert again == spec and hash(again) == hash(spec)
    assert PruneSpec(structure="2:4").sparsity == 0.5
    assert cl.PruneSpec is PruneSpec


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(method="magnitude"), "needs a sparsity"),
        (dict(method="threshold"), "needs a threshold"),
        (dict(method="magnitude", sparsity=0.5, threshold=0.1), "takes a sparsity only"),
        (dict(method="threshold", sparsity=0.5, threshold=0.1), "takes a threshold only"),
        (dict(sparsity=1.0), r"\[0, 1\)"),
        (dict(sparsity=-0.1), r"\[0, 1\)"),
        (dict(sparsity=float("nan")), r"\[0, 1\)"),
        (dict(method="threshold", threshold=-0.01), "threshold"),
        (dict(method="threshold", threshold=float("inf")), "finite"),
        (dict(method="random", sparsity=0.5), "allowed"),
        (dict(sparsity=0.5, scope="model"), "allowed"),
        (dict(sparsity=0.5, structure="4:8"), "allowed"),
        (dict(structure="2:4", sparsity=0.7), "0.5"),
        (dict(method="threshold", threshold=0.1, structure="filters"), "magnitude"),
        (dict(sparsity=0.5, layers="conv1"), "list of layer names"),
        (dict(sparsity=0.5, layers=[]), "list of layer names"),
    ],
)
def test_spec_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PruneSpec(**kwargs)


# ---------------------------------------------------------------------------------------------
# One-shot pruning


def test_by_threshold_zeroes_small_kernel_weights_only(trained_seed_cnn):
    before = all_weights(trained_seed_cnn)
    pruned = prune.by_threshold(trained_seed_cnn, 0.05)
    assert pruned is not trained_seed_cnn
    for old, new in zip(before, all_weights(trained_seed_cnn)):  # input untouched
        np.testing.assert_array_equal(old, new)
    original = kernels(trained_seed_cnn)
    for name, kernel in kernels(pruned).items():
        expected = np.where(np.abs(original[name]) < 0.05, 0.0, original[name])
        np.testing.assert_array_equal(kernel, expected)
        # Biases are untouched by default.
        np.testing.assert_array_equal(pruned.get_layer(name).bias.numpy(),
                                      trained_seed_cnn.get_layer(name).bias.numpy())
    with_biases = prune.by_threshold(trained_seed_cnn, 0.05, include_biases=True)
    bias = with_biases.get_layer("conv1").bias.numpy()
    original_bias = trained_seed_cnn.get_layer("conv1").bias.numpy()
    np.testing.assert_array_equal(bias, np.where(np.abs(original_bias) < 0.05, 0.0, original_bias))


def test_naive_rule_wipes_out_negative_weights(trained_seed_cnn, digits):
    naive = prune.by_naive_threshold(trained_seed_cnn, 0.0)
    for name, kernel in kernels(naive).items():
        assert (kernel < 0).sum() == 0, name
        assert (kernel == 0).mean() > 0.3  # about half of a trained layer is negative
    correct = prune.by_threshold(trained_seed_cnn, 0.0)  # |w| < 0 prunes nothing
    assert prune.global_sparsity(correct) < 0.001
    assert cl.models.accuracy(naive, digits) < cl.models.accuracy(correct, digits) - 0.3


@pytest.mark.parametrize("sparsity", [0.3, 0.8, 0.95])
def test_to_sparsity_per_layer_hits_target_within_one_weight(trained_seed_cnn, sparsity):
    pruned = prune.to_sparsity(trained_seed_cnn, PruneSpec(sparsity=sparsity))
    original = kernels(trained_seed_cnn)
    for name, kernel in kernels(pruned).items():
        assert abs(int((kernel == 0).sum()) - sparsity * kernel.size) <= 1, name
        # The zeroed weights are the smallest: every kept magnitude >= every pruned one.
        pruned_mask = kernel == 0
        magnitudes = np.abs(original[name])
        assert magnitudes[~pruned_mask].min() >= magnitudes[pruned_mask].max()


def test_to_sparsity_global_ranks_all_layers_together(trained_seed_cnn):
    pruned = prune.to_sparsity(trained_seed_cnn, PruneSpec(sparsity=0.8, scope="global"))
    sparsities = prune.layer_sparsity(pruned)
    total = sum(k.size for k in kernels(pruned).values())
    zeros = sum(int((k == 0).sum()) for k in kernels(pruned).values())
    assert abs(zeros - 0.8 * total) <= 1
    assert max(sparsities.values()) - min(sparsities.values()) > 0.2  # layers differ under a global cut
    original = np.concatenate([np.abs(k).ravel() for k in kernels(trained_seed_cnn).values()])
    mask = np.concatenate([(k == 0).ravel() for k in kernels(pruned).values()])
    assert original[~mask].min() >= original[mask].max()
    # A number is accepted as a sparsity.
    assert prune.layer_sparsity(prune.to_sparsity(trained_seed_cnn, 0.5))["conv2"] == pytest.approx(0.5, abs=1e-4)


def test_to_sparsity_only_named_layers_and_missing_layer_error(trained_seed_cnn):
    pruned = prune.to_sparsity(trained_seed_cnn, PruneSpec(sparsity=0.5, layers=("dense1",)))
    sparsities = prune.layer_sparsity(pruned)
    assert sparsities["dense1"] == pytest.approx(0.5, abs=1e-5)
    assert sparsities["conv1"] == 0.0
    with pytest.raises(ValueError, match="do not exist.*conv1"):
        prune.to_sparsity(trained_seed_cnn, PruneSpec(sparsity=0.5, layers=("nope",)))
    with pytest.raises(ValueError, match="cannot be used"):
        prune.to_sparsity(trained_seed_cnn, PruneSpec(sparsity=0.5, layers=("pool1",)))
    with pytest.raises(ValueError, match="by_threshold"):
        prune.to_sparsity(trained_seed_cnn, PruneSpec(method="threshold", threshold=0.1))
    with pytest.raises(ValueError, match="filter_pruning"):
        prune.to_sparsity(trained_seed_cnn, PruneSpec(sparsity=0.5, structure="filters"))


def test_to_layer_sparsities(trained_seed_cnn):
    pruned = prune.to_layer_sparsities(trained_seed_cnn, {"conv2": 0.25, "dense1": 0.9})
    sparsities = prune.layer_sparsity(pruned)
    assert sparsities["conv2"] == pytest.approx(0.25, abs=1e-4)
    assert sparsities["dense1"] == pytest.approx(0.9, abs=1e-5)
    assert sparsities["logits"] == 0.0
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        prune.to_layer_sparsities(trained_seed_cnn, {"conv2": 1.5})


def test_two_four_pattern_and_its_errors(trained_seed_cnn):
    assert not prune.is_m_by_n(trained_seed_cnn)
    assert max(prune.check_m_by_n(trained_seed_cnn).values()) < 0.01
    pruned = prune.apply(trained_seed_cnn, PruneSpec(structure="2:4"))
    report = prune.check_m_by_n(pruned)
    assert set(report) == {"conv2", "dense1", "logits"}  # conv1 has 1 input channel: skipped
    assert all(value == 1.0 for value in report.values()) and prune.is_m_by_n(pruned)
    assert prune.layer_sparsity(pruned)["conv1"] == 0.0
    # Groups run along the input axis: in every (h, w, out) column, each group of 4 inputs has 2 zeros.
    kernel = _kernel_of(pruned.get_layer("conv2")).numpy()  # (3, 3, 32, 64)
    groups = np.moveaxis(kernel, 2, 3).reshape(3, 3, 64, 8, 4)
    assert ((groups == 0).sum(axis=-1) == 2).all()
    with pytest.raises(ValueError, match="not a multiple of 4"):
        prune.apply(trained_seed_cnn, PruneSpec(structure="2:4", layers=("conv1", "conv2")))


# ---------------------------------------------------------------------------------------------
# Fine-tuning with tfmot


class MaskHoldsCheck(keras.callbacks.Callback):
    """After each epoch (after UpdatePruningStep), every masked kernel weight must be zero."""

    def __init__(self):
        super().__init__()
        self.violations = []
        self.epochs_checked = 0

    def on_epoch_end(self, epoch, logs=None):
        for layer in self.model.layers:
            pruning_vars = getattr(getattr(layer, "pruning_obj", None), "_pruning_vars", None)
            for weight, mask, _ in pruning_vars or []:
                outside = weight.numpy() * (1 - mask.numpy())
                if np.any(outside != 0):
                    self.violations.append((epoch, layer.name))
        self.epochs_checked += 1


def test_finetune_constant_mask_holds_and_zeros_stay_zero(trained_student, small_digits):
    start = prune.to_sparsity(trained_student, PruneSpec(sparsity=0.5))
    zeros_before = {name: kernel == 0 for name, kernel in kernels(start).items()}
    check = MaskHoldsCheck()
    tuned = prune.finetune(start, small_digits, final_sparsity=0.5, schedule="constant", epochs=2, callbacks=[check])
    assert check.epochs_checked == 2 and check.violations == []
    assert [layer.name for layer in tuned.layers] == [layer.name for layer in trained_student.layers]
    for name, kernel in kernels(tuned).items():
        assert np.all(kernel[zeros_before[name]] == 0), name
        assert abs(int((kernel == 0).sum()) - 0.5 * kernel.size) <= 1, name
    # Fine-tuning really trained: the surviving weights moved.
    moved = [not np.allclose(kernels(start)[n][~zeros_before[n]], k[~zeros_before[n]])
             for n, k in kernels(tuned).items()]
    assert any(moved)
    assert prune.layer_sparsity(start)["conv1"] == pytest.approx(0.5, abs=0.01)  # input untouched


def test_finetune_polynomial_global_reaches_final_sparsity(trained_student, small_digits):
    targets = prune.global_layer_targets(trained_student, 0.8)
    tuned = prune.finetune(trained_student, small_digits, final_sparsity=0.8, scope="global", epochs=2)
    info = tuned.compresslab_info
    assert info["end_step"] <= info["total_steps"] and info["schedule"] == "polynomial"
    for name, kernel in kernels(tuned).items():
        assert abs(int((kernel == 0).sum()) - targets[name] * kernel.size) <= 1, name
    total = sum(k.size for k in kernels(tuned).values())
    zeros = sum(int((k == 0).sum()) for k in kernels(tuned).values())
    assert abs(zeros / total - 0.8) <= len(targets) / total
    assert cl.models.accuracy(tuned, small_digits) > 0.5


def test_finetune_two_four_with_tfmot(trained_student, small_digits):
    tuned = prune.finetune(trained_student, small_digits, final_sparsity=0.5, structure="2:4", epochs=1)
    report = prune.check_m_by_n(tuned)
    assert set(report) == {"conv2", "dense1", "logits"} and prune.is_m_by_n(tuned)
    assert prune.layer_sparsity(tuned)["conv1"] == 0.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(final_sparsity=1.0), r"\[0, 1\)"),
        (dict(final_sparsity=0.5, schedule="linear"), "polynomial"),
        (dict(final_sparsity=0.5, epochs=0), "epochs"),
        (dict(final_sparsity=0.5, scope="model"), "scope"),
        (dict(final_sparsity=0.5, structure="filters"), "filter_pruning"),
        (dict(final_sparsity=0.5, layers=("missing",)), "do not exist"),
        (dict(final_sparsity=0.5, structure="2:4", layers=("conv1",)), "not a multiple of 4"),
        (dict(final_sparsity=0.5, begin_step=10_000), "begin_step"),
    ],
)
def test_finetune_bad_input_fails_fast(trained_student, small_digits, kwargs, message):
    with pytest.raises(ValueError, match=message):
        prune.finetune(trained_student, small_digits, **kwargs)


def test_schedule_curve_polynomial_and_constant():
    curve = prune.schedule_curve(final_sparsity=0.8, total_steps=200, frequency=10)
    assert curve["sparsity"].iloc[0] == 0.0
    assert curve["sparsity"].iloc[-1] == pytest.approx(0.8)
    assert np.all(np.diff(curve["sparsity"]) >= 0)
    end = curve.loc[curve["sparsity"] >= 0.8 - 1e-6, "step"].min()
    assert 100 <= end <= 150  # default: final sparsity after ~70% of the steps
    constant = prune.schedule_curve(final_sparsity=0.6, total_steps=50, schedule="constant")
    assert set(np.round(constant["sparsity"], 6)) == {0.6}
    with pytest.raises(ValueError, match="end_step"):
        prune.schedule_curve(final_sparsity=0.5, total_steps=50, begin_step=20, end_step=10)


# ---------------------------------------------------------------------------------------------
# Filter pruning


def zero_consumers(model, kept_indices):
    """The original model with the removed filters' consumers zeroed: must equal the rebuilt model."""
    reference = cl.models.clone(model)
    layers = [layer for layer in reference.layers if not isinstance(layer, keras.layers.InputLayer)]
    removed = None
    for layer in layers:
        if isinstance(layer, keras.layers.Flatten) and removed is not None:
            shape = layer.input_shape[1:]
            spatial, channels = int(np.prod(shape[:-1])), shape[-1]
            removed = (np.arange(spatial)[:, None] * channels + removed[None, :]).ravel()
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            if removed is not None:
                weights = layer.get_weights()
                index = [slice(None)] * weights[0].ndim
                index[-2] = removed
                weights[0][tuple(index)] = 0
                layer.set_weights(weights)
            kept = kept_indices.get(layer.name)
            removed = None if kept is None else np.setdiff1d(np.arange(_n_out(layer)), kept)
    return reference


def test_filter_pruning_rebuilds_an_equivalent_smaller_model(trained_seed_cnn, digits):
    smaller = prune.filter_pruning(trained_seed_cnn, digits, 0.5)
    info = smaller.compresslab_info
    assert info["kept"]["conv1"] == (16, 32) and info["kept"]["conv2"] == (32, 64)
    assert info["kept"]["dense1"] == (64, 128) and "logits" not in info["kept"]
    assert smaller.get_layer("dense1").kernel.shape == (5 * 5 * 32, 64)
    assert smaller.count_params() < 0.3 * trained_seed_cnn.count_params()
    # The surgery is exact: same logits as the original with the removed channels' consumers zeroed.
    reference = zero_consumers(trained_seed_cnn, info["kept_indices"])
    x = digits.x_test[:64]
    np.testing.assert_allclose(cl.models.predict_logits(smaller, x), cl.models.predict_logits(reference, x),
                               rtol=1e-4, atol=1e-4)
    # The filters kept are those with the largest L1 norms.
    norms = np.abs(trained_seed_cnn.get_layer("conv1").kernel.numpy()).sum(axis=(0, 1, 2))
    assert norms[info["kept_indices"]["conv1"]].min() >= np.delete(norms, info["kept_indices"]["conv1"]).max()
    assert trained_seed_cnn.get_layer("conv1").filters == 32  # input untouched


def test_filter_pruning_sequential_with_batchnorm_and_pooling(small_digits):
    cl.models.set_seed(0)
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(8, 3, name="c1"),
        keras.layers.BatchNormalization(name="bn1"),
        keras.layers.ReLU(name="relu1"),
        keras.layers.Conv2D(12, 3, name="c2"),
        keras.layers.BatchNormalization(name="bn2"),
        keras.layers.Activation("relu", name="relu2"),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dropout(0.1, name="drop"),
        keras.layers.Dense(10, name="logits"),
    ])
    # Non-trivial BatchNorm statistics so that slicing them wrongly would show.
    rng = np.random.default_rng(0)
    for name in ("bn1", "bn2"):
        layer = model.get_layer(name)
        layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32) for w in layer.get_weights()])
    smaller = prune.filter_pruning(model, small_digits, 0.5, finetune_epochs=1)
    assert smaller.get_layer("c1").filters == 4 and smaller.get_layer("c2").filters == 6
    assert smaller.get_layer("bn2").moving_mean.shape == (6,)
    no_tuning = prune.filter_pruning(model, None, 0.5)
    reference = zero_consumers(model, no_tuning.compresslab_info["kept_indices"])
    x = small_digits.x_test[:16]
    np.testing.assert_allclose(cl.models.predict_logits(no_tuning, x), cl.models.predict_logits(reference, x),
                               rtol=1e-4, atol=1e-4)


def test_filter_pruning_bad_input(trained_seed_cnn, digits):
    with pytest.raises(ValueError, match="remove every filter of layer 'conv1'"):
        prune.filter_pruning(trained_seed_cnn, digits, 0.99)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        prune.filter_pruning(trained_seed_cnn, digits, 1.0)
    with pytest.raises(ValueError, match="do not exist"):
        prune.filter_pruning(trained_seed_cnn, digits, 0.5, layers=["conv9"])
    with pytest.raises(ValueError, match="cannot lose filters"):
        prune.filter_pruning(trained_seed_cnn, digits, 0.5, layers=["logits"])
    with pytest.raises(ValueError, match="needs data"):
        prune.filter_pruning(trained_seed_cnn, None, 0.5, finetune_epochs=1)
    inputs = keras.Input(shape=(28, 28, 1))
    a = keras.layers.Conv2D(4, 3, padding="same", name="a")(inputs)
    b = keras.layers.Conv2D(4, 3, padding="same", name="b")(a)
    merged = keras.layers.Add(name="add")([a, b])
    outputs = keras.layers.Dense(10, name="logits")(keras.layers.Flatten()(merged))
    with pytest.raises(ValueError, match="plain chain"):
        prune.filter_pruning(keras.Model(inputs, outputs), digits, 0.5)


# ---------------------------------------------------------------------------------------------
# Sensitivity and sizes


def test_sensitivity_scan_and_suggestions(trained_seed_cnn, digits):
    # A look on the test split (split="test") matches the test accuracy of each pruned model ...
    scan = prune.sensitivity_scan(trained_seed_cnn, digits, [0.0, 0.5, 0.95], split="test")
    assert len(scan) == 4 * 3 and set(scan["layer"]) == {"conv1", "conv2", "dense1", "logits"}
    assert scan.attrs["split"] == "test" and set(scan["split"]) == {"test"}
    dense_accuracy = cl.models.accuracy(trained_seed_cnn, digits)
    assert np.allclose(scan.loc[scan["sparsity"] == 0.0, "accuracy"], dense_accuracy)
    conv1 = scan[(scan["layer"] == "conv1") & (scan["sparsity"] == 0.95)]["accuracy"].item()
    dense1 = scan[(scan["layer"] == "dense1") & (scan["sparsity"] == 0.95)]["accuracy"].item()
    assert conv1 < dense1  # 288 first-layer weights matter more than 200k dense ones
    # Pruning one layer alone matches to_layer_sparsities.
    alone = prune.to_layer_sparsities(trained_seed_cnn, {"conv1": 0.95})
    assert cl.models.accuracy(alone, digits) == pytest.approx(conv1)
    # ... but choosing from it is refused: sparsities are chosen on the validation split.
    with pytest.raises(ValueError, match="measured on the test split.*validation"):
        prune.suggest_sparsities(scan, max_accuracy_drop=1.0)
    # The default scan reads the validation split, and refuses a data set without one.
    with pytest.raises(ValueError, match="no validation split.*with_validation"):
        prune.sensitivity_scan(trained_seed_cnn, digits, [0.0, 0.5])
    held_out = digits.with_validation(0.2, seed=0)
    on_validation = prune.sensitivity_scan(trained_seed_cnn, held_out, [0.0, 0.5, 0.95], layers=["dense1"])
    assert on_validation.attrs["split"] == "validation"
    dense_on_validation = cl.models.accuracy(trained_seed_cnn, held_out, split="validation")
    assert np.allclose(on_validation.loc[on_validation["sparsity"] == 0.0, "accuracy"], dense_on_validation)
    alone = prune.to_layer_sparsities(trained_seed_cnn, {"dense1": 0.95})
    at_95 = on_validation[on_validation["sparsity"] == 0.95]["accuracy"].item()
    assert cl.models.accuracy(alone, held_out, split="validation") == pytest.approx(at_95)
    suggestion = prune.suggest_sparsities(on_validation, max_accuracy_drop=1.0)  # points
    assert set(suggestion) == {"dense1"} and suggestion["dense1"] in (0.0, 0.5, 0.95)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        prune.sensitivity_scan(trained_seed_cnn, held_out, [0.5, 1.2])
    with pytest.raises(ValueError, match="split is 'train'"):
        prune.sensitivity_scan(trained_seed_cnn, held_out, [0.5], split="train")


def test_sparse_bytes_counts_index_bits_exactly():
    kernel = np.zeros((8, 4), np.float32)
    kernel[[0, 1, 2, 3, 4, 5, 6, 7], [0, 1, 2, 3, 0, 1, 2, 3]] = 1.0  # 8 non-zeros of 32
    model = tiny_dense_model(kernel, np.ones(4, np.float32))
    # bitmask: ceil(32 / 8) = 4 bytes + 8 values x 4 bytes, + 4 dense bias values x 4 bytes.
    assert prune.sparse_bytes(model, "bitmask") == 4 + 32 + 16
    # CSR of the (4 outputs x 8 inputs) matrix: 5 row pointers x ceil(log2(9)) = 4 bits, 8 column
    # indices x ceil(log2(8)) = 3 bits -> 44 bits = 6 bytes, + 32 value bytes + 16 bias bytes.
    assert prune.sparse_bytes(model, "csr") == 6 + 32 + 16
    assert prune.sparse_bytes(model, "bitmask", value_bytes=1) == 4 + 8 + 4
    with pytest.raises(ValueError, match="bitmask"):
        prune.sparse_bytes(model, "zip")


def test_size_report_unstructured_is_smaller_only_when_compressed(trained_seed_cnn):
    dense = prune.size_report(trained_seed_cnn, name="dense")
    pruned = prune.size_report(prune.to_sparsity(trained_seed_cnn, PruneSpec(sparsity=0.8, scope="global")))
    assert abs(pruned["tflite_bytes"] - dense["tflite_bytes"]) < 0.01 * dense["tflite_bytes"]
    assert pruned["gzip_bytes"] < 0.4 * dense["gzip_bytes"]
    assert pruned["bitmask_bytes"] < 0.3 * dense["dense_float32_bytes"]
    assert dense["bitmask_bytes"] > dense["dense_float32_bytes"]  # a mask costs extra when nothing is zero
    assert pruned["nonzero_params"] < 0.25 * pruned["params"]
    assert pruned["kernel_sparsity"] == pytest.approx(0.8, abs=1e-4)


def test_workbench_matches_one_shot_and_leaves_model_alone(trained_seed_cnn, digits):
    before = all_weights(trained_seed_cnn)
    bench = prune.PruningWorkbench(trained_seed_cnn, digits)
    assert bench.float_accuracy == pytest.approx(cl.models.accuracy(trained_seed_cnn, digits))
    spec = PruneSpec(sparsity=0.9, scope="global")
    bench.apply(spec)
    assert bench.accuracy() == pytest.approx(cl.models.accuracy(prune.to_sparsity(trained_seed_cnn, spec), digits))
    assert bench.global_sparsity() == pytest.approx(0.9, abs=1e-5)
    threshold = bench.threshold_at_sparsity(0.9)
    assert bench.sparsity_at_threshold(threshold) == pytest.approx(0.9, abs=1e-4)
    bench.apply(PruneSpec(method="threshold", threshold=0.05))
    assert bench.accuracy() == pytest.approx(cl.models.accuracy(prune.by_threshold(trained_seed_cnn, 0.05), digits))
    exported = bench.export()
    assert prune.global_sparsity(exported) == pytest.approx(bench.global_sparsity())
    bench.reset()
    assert bench.global_sparsity() == 0.0 and bench.accuracy() == pytest.approx(bench.float_accuracy)
    for old, new in zip(before, all_weights(trained_seed_cnn)):
        np.testing.assert_array_equal(old, new)
    sizes = bench.sparse_sizes()
    assert sizes["dense_float32_bytes"] == 4 * trained_seed_cnn.count_params()
    assert math.isclose(bench.weights_gzip_bytes(), prune.weights_gzip_bytes([w.numpy() for w in trained_seed_cnn.weights]),
                        rel_tol=0.01)


def test_fine_tuned_zeros_are_positive_zeros(trained_student, small_digits):
    """-0.0 is zero, but its sign bit makes gzip and entropy coders see two symbols: never store it."""
    def negative_zeros(model):
        return sum(int(np.sum((k == 0) & np.signbit(k))) for k in
                   (v.numpy() for layer in model.layers for _, v in cl.layers.kernel_variables(layer)))

    tuned = prune.finetune(trained_student, small_digits, final_sparsity=0.8, epochs=1)
    held = prune.finetune_holding_zeros(prune.to_sparsity(trained_student, PruneSpec(sparsity=0.8)), small_digits,
                                        epochs=1, learning_rate=1e-3)
    assert prune.global_sparsity(tuned) > 0.7 and prune.global_sparsity(held) >= 0.79
    assert negative_zeros(tuned) == 0 and negative_zeros(held) == 0
    # positive_zeros itself: flips exactly the -0.0 entries, in place, and counts them.
    copy = cl.models.clone(trained_student)
    kernel = copy.layers[-1].kernel
    values = kernel.numpy()
    values[0, :3] = -0.0
    kernel.assign(values)
    assert prune.positive_zeros(copy) == 3 and negative_zeros(copy) == 0
    assert prune.positive_zeros(copy) == 0


def test_separable_convolutions_are_pruned_in_their_pointwise_kernel(small_digits):
    """As tfmot's registry does: the 1x1 pointwise kernel (most weights) is pruned, the depthwise one kept."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.MaxPooling2D(4)(inputs)
    x = keras.layers.SeparableConv2D(16, 3, padding="same", name="sep")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="head")(x))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    assert prune.is_prunable(model.get_layer("sep")) and _kernel_of(model.get_layer("sep")).name.endswith(
        "pointwise_kernel:0")
    for pruned in (prune.to_sparsity(model, PruneSpec(sparsity=0.5)),
                   prune.finetune(model, small_digits, final_sparsity=0.5, epochs=1)):
        layer = pruned.get_layer("sep")
        assert np.mean(layer.pointwise_kernel.numpy() == 0) == pytest.approx(0.5, abs=0.02)
        assert np.all(layer.depthwise_kernel.numpy() != 0)
        assert prune.layer_sparsity(pruned)["sep"] == pytest.approx(0.5, abs=0.02)


# ---------------------------------------------------------------------------------------------
# BatchNormalization statistics re-estimated in the sensitivity scan


@pytest.fixture(scope="module")
def batchnorm_cnn(digits):
    """A small Conv-BN-ReLU-Conv-BN CNN trained briefly on digits (so its moving statistics lag)."""
    from compresslab._keras import keras

    keras.utils.set_random_seed(3)
    layers = keras.layers
    inputs = keras.Input((28, 28, 1))
    x = layers.Conv2D(8, 3, strides=2, use_bias=False, name="conv_a")(inputs)
    x = layers.BatchNormalization(name="bn_a")(x)
    x = layers.ReLU()(x)
    x = layers.Conv2D(16, 3, strides=2, use_bias=False, name="conv_b")(x)
    x = layers.BatchNormalization(name="bn_b")(x)
    x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, layers.Dense(10, name="logits")(x), name="batchnorm_cnn")
    cl.models.compile_for_classification(model)
    model.fit(digits.x_train, digits.y_train, epochs=2, batch_size=64, verbose=0)
    return model


def _exact_statistics(model, layer_name, images):
    from compresslab._keras import keras

    layer = model.get_layer(layer_name)
    values = keras.Model(model.inputs, layer.input)(images, training=False).numpy().astype(np.float64)
    return values.mean(axis=(0, 1, 2)), values.var(axis=(0, 1, 2))


def test_batchnorm_recalibration_sets_the_exact_statistics_in_layer_order(batchnorm_cnn, digits):
    model = cl.models.clone(batchnorm_cnn)
    images = digits.x_train[:300]
    before = model.get_layer("bn_b").moving_mean.numpy().copy()
    recalibrate = prune.BatchNormRecalibration(model, images, 1000)  # the pool is smaller: all 300
    assert [layer.name for layer in recalibrate.layers] == ["bn_a", "bn_b"] and recalibrate.images == 300
    recalibrate()
    for name in ("bn_a", "bn_b"):  # bn_b's inputs are computed with bn_a's new statistics
        mean, variance = _exact_statistics(model, name, images)
        np.testing.assert_allclose(model.get_layer(name).moving_mean.numpy(), mean, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(model.get_layer(name).moving_variance.numpy(), variance, rtol=1e-4, atol=1e-5)
    assert not np.allclose(before, model.get_layer("bn_b").moving_mean.numpy())
    # Nothing else changed, and the model it was cloned from is untouched.
    for original, now in zip(batchnorm_cnn.get_layer("conv_b").get_weights(), model.get_layer("conv_b").get_weights()):
        assert np.array_equal(original, now)
    # count=0, an empty pool or a model without BatchNormalization: nothing to do.
    assert prune.BatchNormRecalibration(model, images, 0).layers == []
    assert prune.BatchNormRecalibration(model, images[:0], 100).layers == []


def test_the_scan_judges_a_cut_with_re_estimated_statistics(batchnorm_cnn, digits):
    held_out = digits.with_validation(0.2, seed=0)
    scan = prune.sensitivity_scan(batchnorm_cnn, held_out, [0.0, 0.75], layers=["conv_b"])
    assert scan.attrs["batchnorm_images"] == len(held_out.x_train)  # fewer than 2,000: all of them
    assert np.allclose(scan.loc[scan["sparsity"] == 0.0, "accuracy_drop"], 0.0)
    # The same cut by hand: prune conv_b to 75%, re-estimate both layers from the training images,
    # measure on validation.
    cut = prune.to_layer_sparsities(batchnorm_cnn, {"conv_b": 0.75})
    prune.BatchNormRecalibration(cut, held_out.x_train, 2000)()
    by_hand = cl.models.accuracy(cut, held_out, split="validation")
    at_75 = scan[scan["sparsity"] == 0.75]
    assert at_75["accuracy"].item() == pytest.approx(by_hand, abs=1.5 / len(held_out.y_val))
    reference = cl.models.clone(batchnorm_cnn)
    prune.BatchNormRecalibration(reference, held_out.x_train, 2000)()
    expected_drop = cl.models.accuracy(reference, held_out, split="validation") - by_hand
    assert at_75["accuracy_drop"].item() == pytest.approx(expected_drop, abs=1.5 / len(held_out.y_val))
    # batchnorm_images=0 is the old scan: the model's own statistics, drops against the model as it is.
    plain = prune.sensitivity_scan(batchnorm_cnn, held_out, [0.0, 0.75], layers=["conv_b"], batchnorm_images=0)
    assert plain.attrs["batchnorm_images"] == 0
    own = prune.to_layer_sparsities(batchnorm_cnn, {"conv_b": 0.75})
    stale = cl.models.accuracy(own, held_out, split="validation")
    assert plain[plain["sparsity"] == 0.75]["accuracy"].item() == pytest.approx(stale)
    assert abs(stale - by_hand) > 3 / len(held_out.y_val)  # the two ways differ: the check above can fail
    for bad in (-1, 1.5, True, "all"):
        with pytest.raises(ValueError, match="batchnorm_images is"):
            prune.sensitivity_scan(batchnorm_cnn, held_out, [0.5], batchnorm_images=bad)


def test_a_model_without_batchnorm_is_scanned_as_before(trained_seed_cnn, digits):
    held_out = digits.with_validation(0.2, seed=0)
    default = prune.sensitivity_scan(trained_seed_cnn, held_out, [0.0, 0.9], layers=["dense1"])
    off = prune.sensitivity_scan(trained_seed_cnn, held_out, [0.0, 0.9], layers=["dense1"], batchnorm_images=0)
    assert default.attrs["batchnorm_images"] == 0
    assert default["accuracy"].tolist() == off["accuracy"].tolist()
