"""Tests of compresslab.cluster: ClusterSpec validation and tfmot weight clustering."""

from __future__ import annotations

import numpy as np
import pytest

import compresslab as cl
from compresslab import cluster as c
from compresslab._keras import keras


@pytest.mark.parametrize("changes, field", [
    ({"clusters": 1}, "clusters"), ({"clusters": 0}, "clusters"), ({"clusters": 2.5}, "clusters"),
    ({"init": "random"}, "init"), ({"layers": "dense1"}, "layers"),
    ({"preserve_sparsity": "yes"}, "preserve_sparsity"), ({"preserve_sparsity": 1}, "preserve_sparsity"),
    ({"conv_clusters": 1}, "conv_clusters"), ({"conv_clusters": 3.5}, "conv_clusters"),
    ({"depthwise_clusters": 1}, "depthwise_clusters"), ({"depthwise_clusters": "8"}, "depthwise_clusters"),
])
def test_cluster_spec_rejects_bad_values(changes, field):
    with pytest.raises(ValueError, match=rf"ClusterSpec\.{field} is"):
        c.ClusterSpec(**changes)


def test_cluster_spec_round_trip():
    spec = c.ClusterSpec(clusters=8, init="density", layers=["dense1"])
    assert c.ClusterSpec.from_dict(spec.to_dict()) == spec
    deep = c.ClusterSpec(clusters=32, conv_clusters=64, preserve_sparsity=True)
    again = c.ClusterSpec.from_json(deep.to_json())
    assert again == deep and hash(again) == hash(deep)
    assert (again.conv_clusters, again.preserve_sparsity) == (64, True)
    assert cl.ClusterSpec is c.ClusterSpec


@pytest.mark.parametrize("init", ["kmeans++", "linear", "density"])
def test_each_kernel_has_at_most_clusters_values_and_biases_are_untouched(trained_student, small_digits, init):
    before = [w.copy() for w in trained_student.get_weights()]
    clustered = c.cluster_weights(trained_student, c.ClusterSpec(clusters=8, init=init))
    assert clustered is not trained_student
    counts = c.distinct_values_per_kernel(clustered)
    assert set(counts) == {"conv1", "conv2", "dense1", "logits"}
    assert all(2 <= count <= 8 for count in counts.values())
    for name in counts:
        np.testing.assert_array_equal(clustered.get_layer(name).bias.numpy(),
                                      trained_student.get_layer(name).bias.numpy())
    for old, new in zip(before, trained_student.get_weights()):
        np.testing.assert_array_equal(old, new)
    float_accuracy = cl.models.accuracy(trained_student, small_digits)
    assert cl.models.accuracy(clustered, small_digits) >= float_accuracy - 0.1


def test_fine_tuning_keeps_the_cluster_bound_and_recovers_accuracy(trained_student, small_digits):
    spec = c.ClusterSpec(clusters=4, layers=("dense1",))
    plain = c.cluster_weights(trained_student, spec)
    tuned = c.cluster_weights(trained_student, spec, small_digits, epochs=2, learning_rate=1e-3)
    assert c.distinct_values_per_kernel(tuned)["dense1"] <= 4
    # layers not named are fine-tuned too but not clustered
    assert np.unique(tuned.get_layer("conv1").kernel.numpy()).size > 4
    assert cl.models.accuracy(tuned, small_digits) >= cl.models.accuracy(plain, small_digits) - 0.02
    recorded = {key: tuned.clustering[key] for key in ("spec", "layers", "epochs")}
    assert recorded == {"spec": spec.to_dict(), "layers": ["dense1"], "epochs": 2}


def test_clustering_shrinks_the_gzip_file(trained_student, small_digits):
    clustered = c.cluster_weights(trained_student, c.ClusterSpec(clusters=4))
    before = cl.measure(trained_student, small_digits, name="float", latency=False)
    after = cl.measure(clustered, small_digits, name="clustered", technique="cluster", latency=False)
    assert after.gzip_bytes < 0.6 * before.gzip_bytes


def test_bad_inputs_fail_before_work(trained_student, small_digits):
    with pytest.raises(ValueError, match="no data was given"):
        c.cluster_weights(trained_student, c.ClusterSpec(clusters=4), epochs=1)
    with pytest.raises(ValueError, match=r"\['nope'\] do not exist"):
        c.cluster_weights(trained_student, c.ClusterSpec(clusters=4, layers=("nope",)))
    with pytest.raises(ValueError, match="cannot be used here"):
        c.cluster_weights(trained_student, c.ClusterSpec(clusters=4, layers=("pool1",)))
    with pytest.raises(ValueError, match="fewer than clusters"):
        c.cluster_weights(trained_student, c.ClusterSpec(clusters=5000, layers=("conv1",)))
    with pytest.raises(ValueError, match="epochs is -1"):
        c.cluster_weights(trained_student, c.ClusterSpec(clusters=4), small_digits, epochs=-1)
    with pytest.raises(TypeError, match="ClusterSpec"):
        c.cluster_weights(trained_student, 8)
    inputs = keras.Input((28, 28, 1))
    depthwise_only = keras.Model(inputs, keras.layers.DepthwiseConv2D(3)(inputs))
    with pytest.raises(ValueError, match="nothing to cluster"):
        c.cluster_weights(depthwise_only, c.ClusterSpec(clusters=4))


# ---------------------------------------------------------------------------------------------
# Sparsity-preserving clustering, conv_clusters, skipped layers


def test_pruned_kernels_stay_exactly_zero_through_clustering_and_fine_tuning(trained_student, small_digits):
    pruned = cl.prune.to_sparsity(trained_student, 0.7)
    zeros = {name: pruned.get_layer(name).kernel.numpy() == 0 for name in ("conv1", "conv2", "dense1", "logits")}
    spec = c.ClusterSpec(clusters=8, preserve_sparsity=True)
    clustered = c.cluster_weights(pruned, spec, small_digits, epochs=1, learning_rate=1e-3)
    for name, was_zero in zeros.items():
        kernel = clustered.get_layer(name).kernel.numpy()
        assert np.all(kernel[was_zero] == 0), name                 # not one pruned weight moved
    assert clustered.clustering["preserve_sparsity"] is True
    # conv1 has 72 kernel weights, about 22 live after pruning: more than 8, so it is clustered
    assert set(clustered.clustering["clusters"]) == {"conv1", "conv2", "dense1", "logits"}
    assert all(count <= 8 + 1 for count in c.distinct_values_per_kernel(clustered).values())  # + the zero
    # without preserve_sparsity the fine-tuned centroid the zeros share moves off zero
    plain = c.cluster_weights(pruned, c.ClusterSpec(clusters=8), small_digits, epochs=1, learning_rate=1e-3)
    assert plain.clustering["preserve_sparsity"] is False
    assert np.mean(plain.get_layer("dense1").kernel.numpy() == 0) < np.mean(zeros["dense1"])


def test_conv_clusters_set_the_convolution_centroids(trained_student):
    clustered = c.cluster_weights(trained_student, c.ClusterSpec(clusters=4, conv_clusters=16))
    assert clustered.clustering["clusters"] == {"conv1": 16, "conv2": 16, "dense1": 4, "logits": 4}
    counts = c.distinct_values_per_kernel(clustered)
    assert counts["dense1"] <= 4 and counts["logits"] <= 4
    assert 4 < counts["conv2"] <= 16


def test_kernels_with_too_few_live_weights_are_skipped_and_reported(trained_student):
    pruned = cl.prune.to_layer_sparsities(trained_student, {"conv1": 0.95})  # 72 weights -> 4 live
    with pytest.warns(UserWarning, match="conv1"):
        clustered = c.cluster_weights(pruned, c.ClusterSpec(clusters=8, preserve_sparsity=True))
    assert "conv1" not in clustered.clustering["clusters"]
    assert clustered.clustering["skipped"] == {"conv1": pytest.approx(72 / trained_student.count_params())}
    np.testing.assert_array_equal(clustered.get_layer("conv1").kernel.numpy(), pruned.get_layer("conv1").kernel.numpy())


def test_unsupported_layers_are_reported_not_silent():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.DepthwiseConv2D(3, name="depthwise")(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="dense")(x))
    with pytest.warns(UserWarning, match=r"'depthwise' \(\d+\.\d% of the weights\)"):
        clustered = c.cluster_weights(model, c.ClusterSpec(clusters=4))
    assert set(clustered.clustering["skipped"]) == {"depthwise"}
    assert clustered.clustering["skipped"]["depthwise"] == pytest.approx(27 / model.count_params())


def _separable_model(seed=0):
    """A small model with a SeparableConv2D and a DepthwiseConv2D (tfmot clusters neither depthwise kernel)."""
    cl.models.set_seed(seed)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="stem")(inputs)
    x = keras.layers.SeparableConv2D(8, 3, padding="same", activation="relu", name="separable")(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="depthwise")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="logits")(x))
    cl.models.compile_for_classification(model)
    return model


def _depthwise_values(model, name):
    return np.unique(model.get_layer(name).depthwise_kernel.numpy()).size


def test_depthwise_clusters_cluster_the_kernels_tfmot_leaves_alone():
    model = _separable_model()
    # Without depthwise_clusters: tfmot's behaviour, the depthwise kernels keep every value, reported.
    with pytest.warns(UserWarning, match="'depthwise'"):
        plain = c.cluster_weights(model, c.ClusterSpec(clusters=4))
    assert _depthwise_values(plain, "separable") == 36 and _depthwise_values(plain, "depthwise") == 144
    assert plain.clustering["depthwise_clusters"] == {}
    shared = c.cluster_weights(model, c.ClusterSpec(clusters=4, depthwise_clusters=3))
    assert shared.clustering["depthwise_clusters"] == {"separable": 3, "depthwise": 3}
    assert shared.clustering["skipped"] == {}
    assert set(shared.clustering["layers"]) == {"stem", "separable", "depthwise", "logits"}
    assert _depthwise_values(shared, "separable") <= 3 and _depthwise_values(shared, "depthwise") <= 3
    assert np.unique(shared.get_layer("separable").pointwise_kernel.numpy()).size <= 4
    # each depthwise value is the mean of the original values k-means put together (no fine-tuning)
    before = model.get_layer("depthwise").depthwise_kernel.numpy().reshape(-1)
    after = shared.get_layer("depthwise").depthwise_kernel.numpy().reshape(-1)
    for value in np.unique(after):
        np.testing.assert_allclose(value, before[after == value].mean(), rtol=1e-5)


def test_share_assignments_follow_the_init_and_hold_zeros():
    values = np.array([0.0, 0.1, 0.11, 0.12, -0.5, -0.52, 0.0, 0.9])
    for init in c.INITS:
        labels = c.share_assignments(values, 3, init=init, keep_zeros=True)
        assert labels[0] == labels[6] == -1
        groups = {tuple(np.flatnonzero(labels == k)) for k in range(3)}
        assert groups == {(1, 2, 3), (4, 5), (7,)}
    labels = c.share_assignments(values, 3, keep_zeros=False)
    assert labels[0] == labels[6] != -1 and (labels >= 0).all()


def test_depthwise_fine_tuning_moves_centroids_but_keeps_assignments_and_zeros():
    from compresslab.data import Dataset

    rng = np.random.default_rng(0)
    x = rng.random((256, 8, 8, 1), dtype=np.float32)
    y = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype(np.int64)
    data = Dataset(x[:192], y[:192], x[192:], y[192:], [str(i) for i in range(10)], name="toy")
    model = cl.prune.to_layer_sparsities(_separable_model(), {"depthwise": 0.5})
    zeros = model.get_layer("depthwise").depthwise_kernel.numpy() == 0
    start = c.cluster_weights(model, c.ClusterSpec(clusters=4, depthwise_clusters=4, preserve_sparsity=True))
    tuned = c.cluster_weights(model, c.ClusterSpec(clusters=4, depthwise_clusters=4, preserve_sparsity=True), data,
                              epochs=2, learning_rate=1e-2)
    for name in ("separable", "depthwise"):
        before = start.get_layer(name).depthwise_kernel.numpy()
        after = tuned.get_layer(name).depthwise_kernel.numpy()
        assert np.unique(after[after != 0]).size <= 4
        assert not np.array_equal(before, after)  # the centroids trained
        # the same groups: two weights share a value after tuning exactly when they did before
        np.testing.assert_array_equal(before[..., None] == before.reshape(-1), after[..., None] == after.reshape(-1))
    assert (tuned.get_layer("depthwise").depthwise_kernel.numpy()[zeros] == 0).all()


def test_depthwise_only_model_clusters_without_tfmot():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=4, name="depthwise")(inputs)
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    clustered = c.cluster_weights(model, c.ClusterSpec(clusters=4, depthwise_clusters=4, layers=("depthwise",)))
    assert clustered.clustering["clusters"] == {} and clustered.clustering["depthwise_clusters"] == {"depthwise": 4}
    assert _depthwise_values(clustered, "depthwise") <= 4
