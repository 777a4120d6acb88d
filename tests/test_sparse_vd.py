"""Sparse variational dropout: the paper's KL approximation, the masking rule, and training that sparsifies."""

from __future__ import annotations

import numpy as np
import pytest

from compresslab import sparse_vd
from compresslab.sparse_vd import K1, K2, K3, THRESHOLD


def test_negative_kl_is_the_papers_approximation():
    log_alpha = np.array([-8.0, -2.0, 0.0, 3.0, 8.0], dtype=np.float32)
    expected = K1 / (1 + np.exp(-(K2 + K3 * log_alpha))) - 0.5 * np.log1p(np.exp(-log_alpha)) - K1
    assert np.allclose(sparse_vd.negative_kl(log_alpha).numpy(), expected, atol=1e-6)
    kl = -sparse_vd.negative_kl(np.linspace(-8, 8, 33).astype(np.float32)).numpy()
    # The KL penalty falls as the noise grows: it pushes every weight towards high alpha (removal)...
    assert np.all(np.diff(kl) < 0) and kl[-1] < 1e-3
    # ...and a weight the data needs (alpha -> 0) pays about 0.5 * log(1 / alpha) nats to stay.
    assert kl[0] == pytest.approx(K1 - K1 / (1 + np.exp(-(K2 - 8 * K3))) + 0.5 * np.log1p(np.exp(8)), rel=1e-5)


def test_a_fresh_variational_model_computes_what_the_trained_one_did(trained_student, small_digits):
    variational, names = sparse_vd.to_variational(trained_student)
    assert names == sorted(layer.name for layer in trained_student.layers
                           if type(layer).__name__ in ("Conv2D", "Dense"))
    x = small_digits.x_test[:32]
    # log sigma^2 starts at -10, so log alpha = -10 - log w^2: only weights below e^-6.5 (~0.0015) start
    # above the threshold, and removing them barely changes the outputs
    assert np.allclose(variational(x, training=False).numpy(), trained_student(x, training=False).numpy(), atol=0.02)
    plain = sparse_vd.strip_variational(variational, trained_student)
    for name in names:
        before, after = trained_student.get_layer(name).kernel.numpy(), plain.get_layer(name).kernel.numpy()
        tiny = np.abs(before) < np.exp((sparse_vd.INITIAL_LOG_SIGMA2 - THRESHOLD) / 2)
        assert np.all(after[tiny] == 0) and np.array_equal(after[~tiny], before[~tiny])


def test_weights_with_log_alpha_above_the_threshold_are_removed_and_only_those(trained_student, small_digits):
    variational, names = sparse_vd.to_variational(trained_student)
    layer = variational.get_layer(names[0])
    kernel = layer.kernel.numpy()
    log_sigma2 = np.log(1e-4 * kernel ** 2 + 1e-12)  # alpha = 1e-4 everywhere: every weight kept
    noisy = np.zeros(kernel.shape, bool)
    noisy.flat[::3] = True  # every third weight: sigma^2 = 100 w^2 -> log alpha = log 100 > 3
    log_sigma2[noisy] = np.log(100 * kernel[noisy] ** 2 + 1e-8)
    layer.log_sigma2.assign(log_sigma2)
    assert np.all(layer.log_alpha().numpy()[noisy] > THRESHOLD)
    plain = sparse_vd.strip_variational(variational, trained_student)
    stripped = plain.get_layer(names[0]).kernel.numpy()
    assert np.all(stripped[noisy] == 0) and np.array_equal(stripped[~noisy], kernel[~noisy])
    x = small_digits.x_test[:16]
    assert np.allclose(variational(x, training=False).numpy(), plain(x, training=False).numpy(), atol=1e-4)


def test_training_noise_has_the_local_reparameterisation_variance(trained_student, small_digits):
    variational, names = sparse_vd.to_variational(trained_student)
    dense = [variational.get_layer(n) for n in names if "dense" in n or n == "logits"][-1]
    dense.log_sigma2.assign(np.full(dense.kernel.shape, np.log(0.01), np.float32))  # sigma^2 = 0.01
    inputs = np.random.default_rng(0).normal(size=(4000, dense.kernel.shape[0])).astype(np.float32)
    samples = dense(inputs, training=True).numpy() - dense(inputs, training=False).numpy()
    expected = (inputs ** 2) @ np.full(dense.kernel.shape, 0.01, np.float32)
    assert np.mean(samples ** 2 / expected) == pytest.approx(1.0, abs=0.05)  # E[eps^2 var] / var = 1


def test_variational_dropout_sparsifies_a_trained_model(trained_seed_cnn, digits):
    from compresslab import models, prune

    before = models.accuracy(trained_seed_cnn, digits)
    # digits has 1,347 training images for 225,034 weights: the full bound (kl_weight=1) removes
    # nearly everything (seen: 0.8% kept, 54% accuracy); a tenth of it keeps the accuracy
    sparse = sparse_vd.variational_dropout(trained_seed_cnn, digits, epochs=6, kl_weight=0.1, seed=0)
    assert sparse is not trained_seed_cnn and prune.global_sparsity(trained_seed_cnn) == 0.0
    kept = sparse.sparse_vd["kept_overall"]
    assert kept < 0.2  # seen: 9.5% kept
    assert prune.global_sparsity(sparse) == pytest.approx(1 - kept, abs=0.01)
    assert models.accuracy(sparse, digits) >= before - 0.02  # seen: 96.4% against 96.0%
    # the first convolution (784 inputs' worth of evidence per filter) keeps far more than the big dense layer
    assert sparse.sparse_vd["kept"]["conv1"] > 3 * sparse.sparse_vd["kept"]["dense1"]
    # the maps say which weights: log alpha is high exactly where the weight was removed
    for name, log_alpha in sparse.sparse_vd["log_alpha"].items():
        kernel = sparse.get_layer(name).kernel.numpy()
        removed = log_alpha > THRESHOLD
        assert np.all(kernel[removed] == 0) and np.count_nonzero(kernel[~removed]) >= 0.99 * np.sum(~removed)


@pytest.mark.parametrize("kwargs, words", [
    ({"epochs": 0}, "epochs is 0"),
    ({"threshold": float("inf")}, "threshold is inf"),
    ({"learning_rate": -1.0}, "learning_rate is -1.0"),
    ({"layers": ("nope",)}, "layers ['nope'] cannot use variational dropout"),
    ({"warmup_epochs": -1}, "warmup_epochs is -1"),
    ({"kl_weight": 0}, "kl_weight is 0"),
])
def test_bad_settings_are_refused_before_training(trained_student, small_digits, kwargs, words):
    with pytest.raises(ValueError) as caught:
        sparse_vd.variational_dropout(trained_student, small_digits, **kwargs)
    assert words in str(caught.value)


def test_the_sparse_vd_recipe_ends_in_a_real_file_whose_model_is_measured(trained_seed_cnn, digits):
    import compresslab as cl
    from compresslab.pipeline import SparseVDStep, sparse_vd_compression_recipe

    recipe = sparse_vd_compression_recipe(epochs=4, kl_weight=0.1, cluster_epochs=0)
    assert SparseVDStep.from_dict(recipe[0]).kl_weight == 0.1
    result = cl.run_pipeline(trained_seed_cnn, digits, recipe)
    vd, clustered, export = result.records[1:]
    assert vd.technique == "prune" and vd.sparsity > 0.8
    assert clustered.sparsity >= vd.sparsity - 1e-9  # clustering kept every removed weight at zero
    assert export.extra["compressed_bytes"] == len(result.blob)
    assert result.ratio > 20 and export.accuracy >= result.records[0].accuracy - 0.05
    decoded = cl.codec.decode(result.blob)
    assert cl.models.accuracy(decoded, digits) == export.accuracy  # the file's model is what was measured


def test_pruning_offers_sparse_variational_dropout_by_name():
    from compresslab import prune

    assert prune.sparse_variational_dropout is sparse_vd.variational_dropout
    assert "sparse_variational_dropout" in prune.__all__
