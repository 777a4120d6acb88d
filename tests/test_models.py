import os
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import compresslab as cl
from compresslab import models
from compresslab._keras import keras


@pytest.mark.parametrize(
    "builder, params",
    [
        (cl.models.seed_cnn, 225_034),
        (cl.models.lenet5, 61_706),
        (cl.models.lenet_300_100, 266_610),
    ],
)
def test_zoo_parameter_counts(builder, params):
    model = builder()
    assert model.count_params() == params
    assert model.output_shape == (None, 10)
    assert model.layers[-1].name == "logits" and models.outputs_logits(model)


def test_seed_cnn_layers_match_the_classic_mnist_cnn():
    kinds = [type(layer).__name__ for layer in cl.models.seed_cnn().layers[1:]]
    assert kinds == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]


def test_lenet5_caffe_variant_is_the_deep_compression_model():
    assert cl.models.lenet5(variant="caffe").count_params() == 431_080
    with pytest.raises(ValueError, match="variant is 'tiny'"):
        cl.models.lenet5(variant="tiny")


def test_student_is_under_a_tenth_of_seed_cnn_and_scales_with_width():
    small = cl.models.student_cnn(width=1).count_params()
    assert small < cl.models.seed_cnn().count_params() / 10
    assert cl.models.student_cnn(width=2).count_params() > 2 * small
    with pytest.raises(ValueError, match="width is 0"):
        cl.models.student_cnn(width=0)


def test_train_is_reproducible_with_a_seed(small_digits):
    initial = cl.models.student_cnn(width=0.5)
    weights = []
    for _ in range(2):
        model = cl.models.clone(initial)
        cl.train(model, small_digits, epochs=1, seed=3, progress=False)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_train_gives_the_weights_keras_own_fit_gives(small_digits):
    # train() feeds Keras's own array batches with tf.data autotuning off (fit_arrays): the same
    # seeded shuffle as model.fit on the arrays, so the trained weights must be identical, and a
    # validation split must take the same last 10% Keras's validation_split takes.
    initial = cl.models.student_cnn(width=0.5)
    ours, keras_fit = cl.models.clone(initial), cl.models.clone(initial)
    history = cl.train(ours, small_digits, epochs=2, seed=4, progress=False, validation=True)
    models.set_seed(4)
    models.compile_for_classification(keras_fit)
    expected = keras_fit.fit(small_digits.x_train, small_digits.y_train, epochs=2, batch_size=64, shuffle=True,
                             validation_split=0.1, verbose=0)
    for a, b in zip(ours.get_weights(), keras_fit.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(history.history["val_loss"], expected.history["val_loss"], rtol=1e-6)


def test_build_with_a_seed_gives_the_same_initial_weights():
    first = cl.models.build("seed_cnn", seed=5).get_weights()
    second = cl.models.build("seed_cnn", seed=5).get_weights()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_train_reports_progress_and_learns(small_digits):
    seen = []
    model = cl.models.student_cnn()
    history = cl.train(model, small_digits, epochs=3, seed=0, progress=lambda epoch, logs: seen.append(epoch))
    assert seen == [0, 1, 2]
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_train_rejects_mismatched_model_and_bad_settings(small_digits):
    with pytest.raises(ValueError, match=r"expects inputs of shape \(32, 32, 3\)"):
        cl.train(cl.models.seed_cnn(input_shape=(32, 32, 3)), small_digits, epochs=1)
    with pytest.raises(ValueError, match="has 5 outputs but digits has 10 classes"):
        cl.train(cl.models.seed_cnn(num_classes=5), small_digits, epochs=1)
    with pytest.raises(ValueError, match="epochs is 0"):
        cl.train(cl.models.seed_cnn(), small_digits, epochs=0)


def test_baseline_is_cached_and_keyed(digits, tmp_path):
    start = time.perf_counter()
    first = cl.baseline("student_cnn", digits, epochs=2, seed=0, cache_dir=tmp_path, progress=False)
    trained_in = time.perf_counter() - start
    assert first.compresslab_info["cached"] is False
    second = cl.baseline("student_cnn", digits, epochs=2, seed=0, cache_dir=tmp_path, progress=False)
    assert second.compresslab_info["cached"] is True
    assert second.compresslab_info["key"] == first.compresslab_info["key"]
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert cl.models.accuracy(second, digits) == cl.models.accuracy(first, digits)
    other = cl.baseline("student_cnn", digits, epochs=2, seed=1, cache_dir=tmp_path, progress=False)
    assert other.compresslab_info["key"] != first.compresslab_info["key"]
    assert len(list(tmp_path.glob("*.keras"))) == 2
    assert trained_in > 0


def test_baseline_retrains_over_a_damaged_cache_file(digits, tmp_path):
    model = cl.baseline("student_cnn", digits, epochs=1, cache_dir=tmp_path, progress=False)
    path = model.compresslab_info["path"]
    with open(path, "wb") as handle:
        handle.write(b"garbage")
    with pytest.warns(UserWarning, match="does not match the SHA-256"):
        again = cl.baseline("student_cnn", digits, epochs=1, cache_dir=tmp_path, progress=False)
    assert again.compresslab_info["cached"] is False


def test_a_replaced_cache_file_is_never_loaded(digits, tmp_path):
    # a valid model file of another architecture put in place of the cached one: loads fine, but is refused
    model = cl.baseline("student_cnn", digits, epochs=1, cache_dir=tmp_path, progress=False)
    other = cl.baseline("seed_cnn", digits, epochs=1, cache_dir=tmp_path / "other", progress=False)
    Path(model.compresslab_info["path"]).write_bytes(Path(other.compresslab_info["path"]).read_bytes())
    with pytest.warns(UserWarning, match="does not match the SHA-256"):
        again = cl.baseline("student_cnn", digits, epochs=1, cache_dir=tmp_path, progress=False)
    assert again.name == model.name and again.compresslab_info["cached"] is False
    meta = Path(model.compresslab_info["path"]).with_suffix(".json")
    meta.write_text("{}")  # metadata without a hash: not trusted either
    with pytest.warns(UserWarning, match="no readable metadata with its SHA-256"):
        assert cl.baseline("student_cnn", digits, epochs=1, cache_dir=tmp_path, progress=False
                           ).compresslab_info["cached"] is False


def test_a_shared_cache_is_read_first_and_never_written(digits, tmp_path, monkeypatch):
    shared, own = tmp_path / "shared", tmp_path / "own"
    prepared = cl.baseline("student_cnn", digits, epochs=1, cache_dir=shared, progress=False)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in shared.iterdir())
    monkeypatch.setenv(cl.models.SHARED_CACHE_VARIABLE, str(shared))
    hit = cl.baseline("student_cnn", digits, epochs=1, cache_dir=own, progress=False)
    assert hit.compresslab_info["cached"] is True
    assert Path(hit.compresslab_info["path"]).parent == shared
    for a, b in zip(hit.get_weights(), prepared.get_weights()):
        np.testing.assert_array_equal(a, b)
    miss = cl.baseline("student_cnn", digits, epochs=1, seed=3, cache_dir=own, progress=False)
    assert miss.compresslab_info["cached"] is False
    assert Path(miss.compresslab_info["path"]).parent == own  # trained into the student's own cache
    assert sorted((p.name, p.stat().st_mtime_ns) for p in shared.iterdir()) == before  # shared untouched


def test_baseline_rejects_unknown_architecture(digits):
    with pytest.raises(ValueError, match="unknown architecture 'vgg'"):
        cl.baseline("vgg", digits)


def test_trained_baseline_is_accurate(trained_seed_cnn, digits):
    assert cl.models.accuracy(trained_seed_cnn, digits) > 0.9


def test_clone_copies_weights_without_sharing(trained_student):
    copy = cl.models.clone(trained_student)
    weights = copy.get_weights()
    weights[0][...] = 0
    copy.set_weights(weights)
    assert np.abs(trained_student.get_weights()[0]).sum() > 0


@pytest.mark.slow
def test_seed_cnn_learns_real_mnist_in_one_epoch(mnist):
    model = cl.models.seed_cnn()
    cl.train(model, mnist, epochs=1, seed=0, batch_size=128, progress=False)
    assert cl.models.accuracy(model, mnist) > 0.97


def test_models_that_are_not_single_output_classifiers_are_named_clearly(digits):
    from compresslab._keras import keras
    from compresslab.models import check_model_fits

    inputs = keras.Input((28, 28, 1))
    flat = keras.layers.Flatten()(inputs)
    two = keras.Model(inputs, [keras.layers.Dense(10)(flat), keras.layers.Dense(10)(flat)])
    with pytest.raises(ValueError, match=r"has 2 outputs \[\(None, 10\), \(None, 10\)\]; compresslab works with single-output"):
        check_model_fits(two, digits)
    dense_map = keras.Model(inputs, keras.layers.Conv2D(10, 3)(inputs))
    with pytest.raises(ValueError, match=r"output has shape \(None, 26, 26, 10\)"):
        check_model_fits(dense_map, digits)


def _snapshot(folder: Path):
    return sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir())


def test_a_read_only_cache_is_read_and_a_miss_trains_into_the_users_own(digits, tmp_path, monkeypatch):
    monkeypatch.setenv("COMPRESSLAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(cl.models.SHARED_CACHE_VARIABLE, raising=False)
    prepared_dir = tmp_path / "class-baselines"
    prepared = cl.baseline("student_cnn", digits, epochs=1, cache_dir=prepared_dir, progress=False)
    before = _snapshot(prepared_dir)
    hit = cl.baseline("student_cnn", digits, epochs=1, cache_dir=prepared_dir, read_only=True, progress=False)
    assert hit.compresslab_info["cached"] is True and hit.compresslab_info["path"] == prepared.compresslab_info["path"]
    miss = cl.baseline("student_cnn", digits, epochs=1, seed=5, cache_dir=prepared_dir, read_only=True,
                       progress=False)
    own = tmp_path / "home" / "baselines"
    assert miss.compresslab_info["cached"] is False and Path(miss.compresslab_info["path"]).parent == own
    assert _snapshot(prepared_dir) == before  # the read-only cache was never written
    again = cl.baseline("student_cnn", digits, epochs=1, seed=5, cache_dir=prepared_dir, read_only=True,
                        progress=False)
    assert again.compresslab_info["cached"] is True  # found in the user's own cache the second time
    with pytest.raises(ValueError, match="is read-only and .* cannot be written either"):
        cl.baseline("student_cnn", digits, epochs=1, seed=6, cache_dir=own, read_only=True, progress=False)


def test_training_can_be_disallowed_when_no_verified_entry_exists(digits, tmp_path):
    model = cl.baseline("student_cnn", digits, epochs=1, cache_dir=tmp_path, progress=False)
    assert cl.baseline("student_cnn", digits, epochs=1, cache_dir=tmp_path, train_if_missing=False,
                       progress=False).compresslab_info["cached"] is True
    path = Path(model.compresslab_info["path"])
    path.write_bytes(path.read_bytes()[:-10])  # damaged: the hash no longer matches
    with pytest.warns(UserWarning, match="does not match the SHA-256"):
        with pytest.raises(ValueError, match=f"no verified cached baseline {path.name} in .*training is disallowed"):
            cl.baseline("student_cnn", digits, epochs=1, cache_dir=tmp_path, train_if_missing=False, progress=False)
    assert len(path.read_bytes()) > 0  # the damaged file was neither loaded nor replaced


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into a mode 0555 folder, so the permission cannot make it read-only")
def test_an_unwritable_cache_dir_is_detected_without_a_flag(digits, tmp_path, monkeypatch):
    monkeypatch.setenv("COMPRESSLAB_HOME", str(tmp_path / "home"))
    shared = tmp_path / "shared"
    cl.baseline("student_cnn", digits, epochs=1, cache_dir=shared, progress=False)
    shared.chmod(0o555)
    try:
        before = _snapshot(shared)
        miss = cl.baseline("student_cnn", digits, epochs=1, seed=7, cache_dir=shared, progress=False)
        assert Path(miss.compresslab_info["path"]).parent == tmp_path / "home" / "baselines"
        assert _snapshot(shared) == before
    finally:
        shared.chmod(0o755)


def test_outputs_logits_sees_through_tfmot_wrappers():
    from compresslab._keras import tfmot

    inputs = keras.Input((28, 28, 1))
    softmax = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inputs)))
    logits = cl.models.student_cnn(width=0.5)
    api = tfmot()
    for model, expected in ((softmax, False), (logits, True)):
        assert cl.models.outputs_logits(model) is expected
        assert cl.models.outputs_logits(api.sparsity.keras.prune_low_magnitude(cl.models.clone(model))) is expected
        assert cl.models.outputs_logits(api.quantization.keras.quantize_model(cl.models.clone(model))) is expected
        clustered = api.clustering.keras.cluster_weights(
            cl.models.clone(model), number_of_clusters=4,
            cluster_centroids_init=api.clustering.keras.CentroidInitialization.LINEAR)
        assert cl.models.outputs_logits(clustered) is expected


def test_no_from_logits_warning_when_training_wrapped_softmax_models(small_digits):
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.Flatten()(keras.layers.MaxPooling2D(2)(x))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cl.prune.finetune(model, small_digits, final_sparsity=0.5, epochs=1)
        cl.quantize.aware_training(model, small_digits, epochs=1)
        cl.cluster.cluster_weights(model, cl.ClusterSpec(clusters=4), small_digits, epochs=1)
    assert not [w for w in caught if "from_logits" in str(w.message)], [str(w.message) for w in caught]
