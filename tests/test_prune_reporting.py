"""Tests of what pruning reports and holds: skipped layers, sparsity coverage, budgets in points,
fine-tuning with zeros held, and clear errors for models or data it cannot work with."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import compresslab as cl
from compresslab import prune
from compresslab._keras import keras


def lstm_heavy_model():
    """A classifier whose LSTM holds most of the weights: pruning can only touch the Dense head."""
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Reshape((28, 28))(inputs)
    x = keras.layers.LSTM(64, name="lstm")(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="head")(x))
    return model


def test_skipped_layers_are_reported_with_their_share_and_both_sparsities():
    model = lstm_heavy_model()
    lstm_share = sum(int(np.prod(w.shape)) for w in model.get_layer("lstm").weights if len(w.shape) >= 2)
    lstm_share /= model.count_params()
    with pytest.warns(UserWarning, match=r"'lstm' \(\d+\.\d% of the weights\)"):
        pruned = prune.to_sparsity(model, 0.5)
    assert pruned.pruning["layers"] == ["head"]
    assert pruned.pruning["skipped"] == {"lstm": pytest.approx(lstm_share)}
    assert lstm_share > 0.9
    # the prunable figure says 50%, the all-weights figure tells the truth about the model
    assert pruned.pruning["sparsity_of_prunable_kernels"] == pytest.approx(0.5, abs=1e-3)
    assert prune.global_sparsity(pruned) == pytest.approx(0.5, abs=1e-3)
    assert prune.global_sparsity(pruned, over="all") < 0.05
    assert pruned.pruning["sparsity_of_all_weights"] == prune.global_sparsity(pruned, over="all")
    with pytest.raises(ValueError, match="over is 'some'"):
        prune.global_sparsity(pruned, over="some")


def test_no_warning_and_empty_skipped_on_a_fully_prunable_model(trained_seed_cnn):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        pruned = prune.to_sparsity(trained_seed_cnn, 0.5)
    assert pruned.pruning["skipped"] == {}
    assert set(pruned.pruning["layers"]) == set(prune.layer_sparsity(trained_seed_cnn))


def test_a_model_with_nothing_to_prune_is_a_clear_error():
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Reshape((28, 28))(inputs)
    model = keras.Model(inputs, keras.layers.SimpleRNN(10, name="rnn")(x))
    for call in (lambda: prune.to_sparsity(model, 0.5), lambda: prune.by_threshold(model, 0.1),
                 lambda: prune.global_sparsity(model), lambda: prune.apply(model, prune.PruneSpec(sparsity=0.5))):
        with pytest.raises(ValueError, match=r"nothing to prune.*'rnn': 'SimpleRNN'"):
            call()
    # size figures of such a model still work: every weight is dense
    assert prune.sparse_bytes(model, "bitmask") == 4 * model.count_params()


def test_suggest_sparsities_takes_percentage_points():
    scan = pd.DataFrame({"layer": ["a", "a", "a", "b", "b"], "sparsity": [0.5, 0.8, 0.9, 0.5, 0.9],
                         "accuracy_drop": [0.002, 0.008, 0.03, 0.0, 0.012]})
    assert prune.suggest_sparsities(scan) == {"a": 0.8, "b": 0.5}                 # default: 1 point
    assert prune.suggest_sparsities(scan, max_accuracy_drop=0.5) == {"a": 0.5, "b": 0.5}
    assert prune.suggest_sparsities(scan, max_accuracy_drop=3.0) == {"a": 0.9, "b": 0.9}
    assert prune.suggest_sparsities(scan, max_accuracy_drop=0.005) == {"a": 0.0, "b": 0.5}  # 0.005 points
    for bad in (-1, 101, float("nan"), "1"):
        with pytest.raises(ValueError, match="percentage points"):
            prune.suggest_sparsities(scan, max_accuracy_drop=bad)


def test_finetune_holding_zeros_keeps_every_zero_and_leaves_the_input_alone(trained_student, small_digits):
    pruned = prune.to_sparsity(trained_student, 0.6)
    before = [w.copy() for w in pruned.get_weights()]
    zeros = {layer.name: layer.kernel.numpy() == 0 for layer in pruned.layers if hasattr(layer, "kernel")}
    tuned = prune.finetune_holding_zeros(pruned, small_digits, epochs=1, learning_rate=1e-3)
    assert tuned is not pruned
    for old, new in zip(before, pruned.get_weights()):
        np.testing.assert_array_equal(old, new)                      # input never mutated
    moved = False
    for name, was_zero in zeros.items():
        kernel = tuned.get_layer(name).kernel.numpy()
        assert np.all(kernel[was_zero] == 0), name
        moved |= not np.array_equal(kernel, pruned.get_layer(name).kernel.numpy())
    assert moved                                                     # it did train the live weights
    assert tuned.optimizer is not None
    with pytest.raises(ValueError, match="epochs is 0"):
        prune.finetune_holding_zeros(pruned, small_digits, epochs=0, learning_rate=1e-3)
    with pytest.raises(ValueError, match="learning_rate is -1"):
        prune.finetune_holding_zeros(pruned, small_digits, epochs=1, learning_rate=-1)


def test_workbench_and_lab_refuse_arrays_with_a_type_error(trained_student, small_digits):
    pairs = (small_digits.x_test, small_digits.y_test)
    with pytest.raises(TypeError, match="data must be a compresslab Dataset, got tuple"):
        prune.PruningWorkbench(trained_student, pairs)
    pytest.importorskip("ipywidgets")
    with pytest.raises(TypeError, match="data must be a compresslab Dataset, got tuple"):
        cl.widgets.PruningLab(trained_student, pairs)


def test_filter_pruning_reports_the_layers_it_left_whole(trained_seed_cnn):
    smaller = prune.filter_pruning(trained_seed_cnn, None, 0.5, layers=("conv2",))
    assert smaller.pruning["layers"] == ["conv2"]
    whole = smaller.pruning["skipped"]
    assert "conv2" not in whole and {"conv1", "logits"} <= set(whole)
    share = sum(int(np.prod(w.shape)) for w in trained_seed_cnn.get_layer("logits").weights if len(w.shape) >= 2)
    assert whole["logits"] == pytest.approx(share / trained_seed_cnn.count_params())
