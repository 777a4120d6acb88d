"""Pipelines: recipe validation, Deep Compression end to end, autocompress and sweeps."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import compresslab as cl
from compresslab import codec, pipeline
from compresslab.records import ExperimentLog
from compresslab.sizes import deployable_bytes


def _kernels(model):
    return {layer.name: layer.kernel.numpy() for layer in model.layers if getattr(layer, "kernel", None) is not None}


# ---------------------------------------------------------------------------------------------
# Validation


def test_every_problem_is_listed_before_any_work(trained_student, small_digits, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("a step ran although the recipe is invalid")

    monkeypatch.setattr(pipeline.runner, "_RUNNERS", {name: never for name in pipeline.runner._RUNNERS})
    recipe = [
        {"step": "prun", "sparsity": 0.5},
        {"step": "quantize", "mode": "int8"},
        {"step": "prune", "sparsity": 1.5, "layers": ["nope"]},
        {"step": "cluster", "clusters": 1, "colour": "red"},
        {"step": "export", "format": "zip"},
        {"step": "distill"},
    ]
    started = time.perf_counter()
    with pytest.raises(ValueError) as caught:
        cl.run_pipeline(trained_student, small_digits, recipe)
    assert time.perf_counter() - started < 5
    message = str(caught.value)
    assert "nothing was run" in message
    for expected in ("unknown step 'prun'",
                     "PruneSpec.sparsity is 1.5",
                     "step 3 (prune): comes after step 2 (quantize to a TFLite file)",
                     "layers ['nope'] do not exist",
                     "unknown parameter(s) ['colour']",
                     "ClusterSpec.clusters is 1",
                     "format is 'zip'",
                     "export must be the last step"):
        assert expected in message, expected
    # Problems come in recipe order.
    assert message.index("step 1:") < message.index("step 3 (prune)") < message.index("step 5 (export)")


def test_validate_recipe_fills_defaults_and_reads_json():
    steps = pipeline.validate_recipe('[{"step": "prune", "sparsity": 0.8}, {"step": "export"}]')
    assert steps[0]["scope"] == "layer" and steps[0]["epochs"] == 0 and steps[1]["format"] == "codec"
    assert pipeline.validate_recipe("deep_compression")[-1]["format"] == "codec"
    for bad, expected in [("not json", "neither a built-in recipe"), ([], "no steps"), (42, "list of steps"),
                          ([{"step": "quantize"}], "either mode"),
                          ([{"step": "quantize", "mode": "dynamic", "bits": 4}], "not both"),
                          ([{"step": "prune"}], "exactly one of sparsity"),
                          ([{"step": "prune", "threshold": 0.1, "epochs": 2}], "schedule 'oneshot'"),
                          ([{"step": "quantize", "mode": "int8"}, {"step": "export", "format": "codec"}],
                           "exported as it is"),
                          ([{"step": "distill", "student": "resnet", "alpha": 2}], "zoo architecture")]:
        with pytest.raises(ValueError, match=expected):
            pipeline.validate_recipe(bad)


def test_model_and_data_are_checked(trained_student, small_digits):
    other = cl.Dataset.from_arrays(np.zeros((4, 8, 8, 1), np.float32), [0, 1, 0, 1],
                                   np.zeros((2, 8, 8, 1), np.float32), [0, 1])
    with pytest.raises(ValueError, match="model and data"):
        cl.run_pipeline(trained_student, other, [{"step": "prune", "sparsity": 0.5}])
    with pytest.raises(TypeError, match=r"model must be a Keras classifier \(a tf_keras or Keras 3 Model\); got str"):
        cl.run_pipeline("model", small_digits, [{"step": "prune", "sparsity": 0.5}])


# ---------------------------------------------------------------------------------------------
# Running


@pytest.fixture(scope="module")
def deep_compressed(trained_seed_cnn, small_digits, tmp_path_factory):
    log = tmp_path_factory.mktemp("dc") / "log.jsonl"
    path = log.parent / "seed_cnn.cldc"
    recipe = pipeline.deep_compression_recipe(sparsity=0.9, prune_epochs=1, cluster_epochs=1, path=str(path))
    before = [w.copy() for w in trained_seed_cnn.get_weights()]
    result = cl.run_pipeline(trained_seed_cnn, small_digits, recipe, log=log)
    assert all(np.array_equal(a, b) for a, b in zip(before, trained_seed_cnn.get_weights()))  # input untouched
    return result, log, path


def test_deep_compression_stages_are_measured_and_logged(deep_compressed, small_digits):
    result, log, path = deep_compressed
    names = [record.extra["step"] for record in result.records]
    assert names == ["input", "prune", "cluster", "export"]
    assert [r.technique for r in result.records] == ["baseline", "prune", "cluster", "pipeline"]
    assert [r.key for r in ExperimentLog(log).records()] == [r.key for r in result.records]
    dense = result.records[0].dense_float32_bytes
    sizes = [r.extra["compressed_bytes"] for r in result.records]
    assert sizes[0] > dense > sizes[1] > sizes[2]  # each stage shrinks the real file
    assert result.final.extra["compressed_bytes"] == len(result.blob) == path.stat().st_size
    assert result.ratio == pytest.approx(dense / len(result.blob))
    assert result.ratio > 20
    baseline = result.records[0].accuracy
    assert result.final.accuracy >= baseline - 0.05, (baseline, result.final.accuracy)


def test_deep_compression_keeps_zeros_and_shares_weights(deep_compressed, trained_seed_cnn):
    result, _, path = deep_compressed
    pruned_stage = result.records[1]
    assert pruned_stage.sparsity > 0.8
    final = result.model
    kernels = _kernels(final)
    # Every kernel holds at most its clusters' values (16 dense / 32 conv, zero among them).
    assert len(np.unique(kernels["dense1"])) <= 16 + 1
    assert len(np.unique(kernels["conv2"])) <= 32 + 1
    assert np.mean(kernels["dense1"] == 0) > 0.85  # the pruned weights stayed zero through clustering
    # The file on disk decodes to the same weights and the same test accuracy.
    from_disk = codec.read(path)
    assert all(np.array_equal(a, b) for a, b in zip(from_disk.get_weights(), final.get_weights()))
    assert result.final.accuracy_backend == "keras"


def test_pruning_then_int8_tflite_with_progress(trained_student, small_digits):
    recipe = [{"step": "prune", "sparsity": 0.5, "schedule": "oneshot"}, {"step": "quantize", "mode": "int8"},
              {"step": "export", "format": "tflite"}]
    seen = []
    result = cl.run_pipeline(trained_student, small_digits, recipe, measure_input=False,
                             progress=lambda stage, total, record: seen.append((stage, total, record.name)))
    assert [(stage, total) for stage, total, _ in seen] == [(1, 3), (2, 3), (3, 3)]
    assert "prune 50%" in seen[0][2] and "quantize int8" in seen[1][2]
    assert result.model is None and result.artifact is not None and result.blob is None
    assert [r.accuracy_backend for r in result.records] == ["keras", "litert", "litert"]
    assert result.records[0].sparsity == pytest.approx(0.5, abs=0.05)
    assert result.final.tflite_bytes < result.records[0].tflite_bytes / 2.5  # int8 is about 4x smaller
    assert result.final.accuracy > 0.5


# ---------------------------------------------------------------------------------------------
# Autocompress


def test_autocompress_finds_a_smaller_model_within_budget(trained_student, small_digits, tmp_path):
    log = tmp_path / "auto.jsonl"
    found = cl.autocompress(trained_student, small_digits, max_accuracy_drop=2.0, log=log, epochs=0,
                            sparsities=(0.5, 0.8), cluster_choices=(8, 16), max_trials=3)
    assert found.met and not found.interrupted
    assert found.best_record.accuracy >= found.baseline.accuracy - 0.02
    assert deployable_bytes(found.best_record) < deployable_bytes(found.baseline)
    logged = ExperimentLog(log).records()
    # the input and every trial on validation, then the input and the pick measured once on test
    assert len(logged) == 1 + len(found.records) + 2 and 2 <= len(found.records) <= 3
    assert [r.extra["split"] for r in logged] == ["validation"] * (1 + len(found.records)) + ["test", "test"]
    assert found.baseline.dataset.endswith("(validation)") and found.test_record.dataset == small_digits.name
    assert found.test_record.extra["validation_accuracy"] == found.best_record.accuracy
    assert found.met_on_test == (found.test_record.accuracy >= found.baseline_test.accuracy - 0.02)
    assert len(found.study.trials) == len(found.records)  # every candidate is a study trial
    assert all("meets_budget" in r.extra for r in found.records)
    assert any("sensitivity caps" in note for note in found.notes)
    for record in found.records:  # a trial started from a pruned model records the whole chain, and says so
        steps = [step["step"] for step in record.spec["recipe"]]
        label = record.name.split(": ", 1)[1]
        assert (steps[0] == "prune") == label.startswith("prune "), (record.name, steps)
        assert "%" in label if steps[0] == "prune" else True, record.name  # the sparsities it pruned to
        assert record.spec["stage"] == len(steps)
    if found.blob is not None:  # a codec winner decodes to the returned model
        assert all(np.array_equal(a, b) for a, b in zip(codec.decode(found.blob).get_weights(),
                                                        found.best.get_weights()))


def test_drop_standard_error_is_the_paired_error_of_the_difference():
    reference = np.ones(100, dtype=bool)
    candidate = reference.copy()
    candidate[:10] = False  # ten images lost, none gained: differences -1 (x10) and 0 (x90)
    expected = np.sqrt((10 * 0.9**2 + 90 * 0.1**2) / 99) / 10  # sample sd over sqrt(n)
    assert pipeline.search.drop_standard_error(reference, candidate) == pytest.approx(expected, rel=1e-12)
    # images both get right (or both wrong) add nothing; one image won and another lost is a zero drop
    # that is still uncertain
    assert pipeline.search.drop_standard_error(reference, reference) == 0.0
    before, after = reference.copy(), reference.copy()
    before[1], after[0] = False, False
    assert pipeline.search.drop_standard_error(before, after) == pytest.approx(np.sqrt(2 / 99) / 10, rel=1e-12)
    with pytest.raises(ValueError, match="differ in shape"):
        pipeline.search.drop_standard_error(reference, candidate[:50])


def test_autocompress_budget_counts_the_standard_error(trained_student, small_digits, monkeypatch):
    """A trial is within budget when its validation drop plus margin_se paired standard errors fits."""
    from compresslab.pipeline import search as search_module

    seen = []
    real_correct = search_module._correct

    def spy_correct(variant, data):
        seen.append(data.name)
        return real_correct(variant, data)

    monkeypatch.setattr(search_module, "_correct", spy_correct)
    found = {margin: cl.autocompress(trained_student, small_digits, max_accuracy_drop=2.0, epochs=0,
                                     sparsities=(0.6, 0.7, 0.8), cluster_choices=(4,), max_trials=4,
                                     validation=0.3, margin_se=margin)
             for margin in (0.0, 1.0)}
    assert seen and all(name.endswith("(validation)") for name in seen)  # chosen on validation only
    for margin, result in found.items():
        for record in result.records:
            lower = record.accuracy - margin * record.extra["accuracy_drop_se"]
            assert record.extra["meets_budget"] == (lower >= record.extra["accuracy_floor"]), record.name
            assert record.extra["margin_se"] == margin
    # the first trials are the same either way (later ones follow from their outcomes); with the margin,
    # a trial within budget on its measured drop alone is not
    loose, strict = found[0.0].records[:2], found[1.0].records[:2]
    assert [r.name for r in loose] == [r.name for r in strict]
    assert [r.accuracy for r in loose] == [r.accuracy for r in strict]
    assert any(a.extra["meets_budget"] and not b.extra["meets_budget"] for a, b in zip(loose, strict))
    assert found[1.0].best_record is found[1.0].baseline  # nothing else is sure enough: the input is kept
    # the pick's error is the paired error of its own predictions against the input's, on validation
    pick = found[0.0]
    view = search_module.validation_view(search_module.with_validation(small_digits, 0.3))
    expected = search_module.drop_standard_error(real_correct(trained_student, view), real_correct(pick.best, view))
    assert pick.best_record.extra["accuracy_drop_se"] == pytest.approx(expected, abs=1e-12)
    assert pick.met and pick.best_record is not pick.baseline
    assert any("standard error" in note for note in found[1.0].notes)


def test_autocompress_keeps_best_so_far_when_interrupted(trained_student, small_digits):
    calls = []

    def interrupt_on_second(record):
        calls.append(record)
        if len(calls) == 2:
            raise KeyboardInterrupt

    found = cl.autocompress(trained_student, small_digits, max_accuracy_drop=50.0, epochs=0,
                            sparsities=(0.3, 0.6), cluster_choices=(16,), on_trial=interrupt_on_second)
    assert found.interrupted and len(found.records) == 2
    # A 50-point budget accepts the first pruned variant: it is the best so far, not the input.
    assert found.best_record is not found.baseline and found.best_record in found.records
    assert any("interrupted" in note for note in found.notes)


def test_autocompress_does_not_rerun_levels_the_caps_make_identical(trained_student, small_digits, monkeypatch):
    caps = {"conv1": 0.5, "conv2": 0.5, "dense1": 0.5, "logits": 0.0}
    monkeypatch.setattr(pipeline.search, "_sensitivity", lambda *args: (None, caps))
    monkeypatch.setattr(pipeline.search, "_caps", lambda *args: caps)  # widening changes nothing here
    found = cl.autocompress(trained_student, small_digits, max_accuracy_drop=50.0, epochs=0,
                            sparsities=(0.5, 0.8, 0.9), cluster_choices=(16,))
    prune_trials = [r for r in found.records if r.spec["recipe"][-1]["step"] == "prune"]
    capped = [r for r in prune_trials if r.spec["recipe"][0].get("sparsities")]
    assert len(capped) == 1  # 0.8 and 0.9 capped to 0.5 are the 0.5 trial
    assert sum("same model as a trial already run" in note for note in found.notes) == 1


def test_autocompress_tries_global_ranking_where_the_caps_held_it_back(trained_student, small_digits, monkeypatch):
    caps = {"conv1": 0.5, "conv2": 0.5, "dense1": 0.5, "logits": 0.0}
    monkeypatch.setattr(pipeline.search, "_sensitivity", lambda *args: (None, caps))
    monkeypatch.setattr(pipeline.search, "_caps", lambda *args: caps)  # widening changes nothing here
    found = cl.autocompress(trained_student, small_digits, max_accuracy_drop=100.0, epochs=0,  # all within budget
                            sparsities=(0.5, 0.8, 0.9), cluster_choices=(16,))
    first = [r.spec["recipe"][0] for r in found.records]
    global_levels = [step["sparsity"] for step in first
                     if step["step"] == "prune" and step["scope"] == "global" and step["sparsities"] is None]
    # the capped pick removed under 50% of the weights: the levels above, 80% and 90%, are tried globally
    assert sorted(set(global_levels)) == [0.8, 0.9]
    assert any("no caps" in note for note in found.notes)
    assert any("pruning level kept: 90% (global)" in note for note in found.notes), found.notes
    clustered = [r for r in found.records if r.spec["recipe"][-1]["step"] == "export"]
    assert clustered and clustered[0].spec["recipe"][0]["sparsity"] == 0.9  # clustering starts from it
    assert clustered[0].name.split(": ", 1)[1].startswith("prune 90% global")


def test_global_levels_are_those_above_the_share_the_capped_pick_removed(trained_student, small_digits,
                                                                          monkeypatch):
    # conv1 (288 of about 14,000 prunable weights) may go to 90%: the capped pick still removes about half of
    # the weights, so 50%, 80% and 90% with one global ranking remove more and are searched (the old rule, the
    # highest capped layer's 90%, left nothing to try)
    caps = {"conv1": 0.9, "conv2": 0.5, "dense1": 0.5, "logits": 0.0}
    monkeypatch.setattr(pipeline.search, "_sensitivity", lambda *args: (None, caps))
    monkeypatch.setattr(pipeline.search, "_caps", lambda *args: caps)
    found = cl.autocompress(trained_student, small_digits, max_accuracy_drop=100.0, epochs=0,
                            sparsities=(0.5, 0.8, 0.9), cluster_choices=(16,))
    capped = [r for r in found.records if r.spec["recipe"][0].get("sparsities")
              and r.spec["recipe"][-1]["step"] == "prune"]
    removed = cl.prune.global_sparsity(cl.prune.to_layer_sparsities(trained_student, capped[-1].spec["recipe"][0]["sparsities"]))
    assert 0.4 < removed < 0.6
    note = next(note for note in found.notes if "one global ranking" in note)
    assert note.startswith(f"the capped pick removed {100 * removed:.0f}% of the prunable weights: trying 50%, 80%, 90% with one")
    assert any("pruning level kept: 90% (global)" in note for note in found.notes), found.notes


def _caps_by_looseness(monkeypatch, table):
    """autocompress's caps as a function of how far the scan's loose drop is widened (factor 1: unwidened)."""
    monkeypatch.setattr(pipeline.search, "_sensitivity", lambda *args: (None, table[1]))
    monkeypatch.setattr(pipeline.search, "_caps", lambda scan, drop, factor=1: table[factor])


def test_autocompress_widens_the_caps_while_within_budget(trained_student, small_digits, monkeypatch):
    table = {1: {"conv1": 0.0, "conv2": 0.5, "dense1": 0.5, "logits": 0.0},
             2: {"conv1": 0.0, "conv2": 0.5, "dense1": 0.5, "logits": 0.0},  # the same: no trial for it
             4: {"conv1": 0.5, "conv2": 0.8, "dense1": 0.8, "logits": 0.0},
             8: {"conv1": 0.5, "conv2": 0.9, "dense1": 0.9, "logits": 0.5},
             16: {"conv1": 0.9, "conv2": 0.9, "dense1": 0.9, "logits": 0.9}}  # every layer at the level: the end
    _caps_by_looseness(monkeypatch, table)
    found = cl.autocompress(trained_student, small_digits, max_accuracy_drop=100.0, epochs=0,  # all within budget
                            sparsities=(0.5, 0.8), cluster_choices=(16,))
    pruned = [r for r in found.records if r.spec["recipe"][-1]["step"] == "prune"]
    widened = [r.spec["recipe"][0]["sparsities"] for r in pruned if "loose drop" in r.name]
    # at the level found (80%), caps widened by 4, 8 and 16 times; every layer at least as pruned as before
    assert widened == [{"conv1": 0.5, "conv2": 0.8, "dense1": 0.8, "logits": 0.0},
                       {"conv1": 0.5, "conv2": 0.8, "dense1": 0.8, "logits": 0.5},
                       {"conv1": 0.8, "conv2": 0.8, "dense1": 0.8, "logits": 0.8}]
    assert "prune every layer 80% (level 80%, caps from loose drop 99.0 pts)" in pruned[-1].name
    assert any("widening them at 80%" in note for note in found.notes)
    # the last widened trial is what clustering starts from; nothing is left for a global ranking to try
    clustered = [r for r in found.records if r.spec["recipe"][-1]["step"] == "export"]
    assert clustered[0].spec["recipe"][0]["sparsities"] == widened[-1]
    assert not any("no caps" in note for note in found.notes)
    studied = {t.number: t.params for t in found.study.trials}
    assert [p["caps_looseness"] for p in studied.values() if p["format"] == "keras"] == [1, 4, 8, 16]
    assert studied[max(studied)]["caps_looseness"] == 16  # the int8 trial records the caps it started from


def test_autocompress_stops_widening_at_the_first_trial_outside_budget(trained_student, small_digits, monkeypatch):
    table = {1: {"conv1": 0.0, "conv2": 0.0, "dense1": 0.5, "logits": 0.0},
             2: {"conv1": 0.9, "conv2": 0.9, "dense1": 0.9, "logits": 0.9}}  # one-shot, no fine-tuning: ruinous
    table.update({factor: table[2] for factor in (4, 8, 16, 32)})
    _caps_by_looseness(monkeypatch, table)
    found = cl.autocompress(trained_student, small_digits, max_accuracy_drop=5.0, epochs=0,
                            sparsities=(0.5, 0.9), cluster_choices=(16,), validation=0.3)
    pruned = [r for r in found.records if r.spec["recipe"][-1]["step"] == "prune"]
    widened = [r for r in pruned if r.spec["recipe"][0].get("sparsities") == table[2]]
    assert len(widened) == 1 and not widened[0].extra["meets_budget"]  # tried once, outside: no wider caps tried
    assert not any("loose drop" in r.name for r in found.records if r is not widened[0])  # nothing wider, nothing kept
    assert max(t.params["caps_looseness"] for t in found.study.trials) == 2


def test_autocompress_clusters_depthwise_kernels_only_where_the_model_has_them(trained_student, small_digits):
    from compresslab._keras import keras

    cl.models.set_seed(0)
    inputs = keras.Input(small_digits.input_shape)
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu", name="stem")(inputs)
    x = keras.layers.SeparableConv2D(8, 3, activation="relu", name="separable")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(small_digits.num_classes, activation="softmax")(x))
    cl.models.compile_for_classification(model)
    found = {}
    for name, candidate in (("separable", model), ("student", trained_student)):
        found[name] = cl.autocompress(candidate, small_digits, max_accuracy_drop=100.0, epochs=0, sparsities=(0.5,),
                                      cluster_choices=(4,), max_trials=6)
    for name, expected in (("separable", 4), ("student", None)):
        steps = [step for record in found[name].records for step in record.spec["recipe"] if step["step"] == "cluster"]
        assert steps and {step["depthwise_clusters"] for step in steps} == {expected}, name
    kernel = found["separable"].best.get_layer("separable").depthwise_kernel.numpy()  # the pick, decoded
    assert found["separable"].best_record.spec["recipe"][-1]["step"] == "export"
    assert np.unique(kernel[kernel != 0]).size <= 4


def test_autocompress_rejects_bad_arguments(trained_student, small_digits):
    with pytest.raises(ValueError) as caught:
        cl.autocompress(trained_student, small_digits, max_accuracy_drop=-1, objective="speed", max_trials=0,
                        search="grid", validation=0.9, margin_se=-1, batchnorm_images=-5)
    message = str(caught.value)
    for word in ("max_accuracy_drop", "objective", "max_trials", "search is 'grid'", "validation is 0.9",
                 "margin_se is -1", "batchnorm_images is -5"):
        assert word in message


def test_autocompress_scans_with_batchnorm_statistics_re_estimated(small_digits, monkeypatch):
    from compresslab._keras import keras

    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(8, 3, strides=2, use_bias=False),
                              keras.layers.BatchNormalization(), keras.layers.ReLU(),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)])
    cl.models.compile_for_classification(model)
    model.fit(small_digits.x_train, small_digits.y_train, epochs=1, verbose=0)
    calls = []
    real_scan = cl.prune.sensitivity_scan

    def spy(*args, **kwargs):
        calls.append(kwargs.get("batchnorm_images"))
        return real_scan(*args, **kwargs)

    monkeypatch.setattr(cl.prune, "sensitivity_scan", spy)
    options = {"max_trials": 1, "epochs": 0, "sparsities": (0.5,), "cluster_choices": (8,)}
    found = cl.autocompress(model, small_digits, **options)
    assert calls == [2000]
    caps = next(note for note in found.notes if note.startswith("sensitivity caps"))
    fine_tuning = int(found.notes[0].split("(")[1].split(" left")[0].replace(",", ""))
    assert f"BatchNormalization statistics re-estimated on {min(2000, fine_tuning):,} training images" in caps
    found = cl.autocompress(model, small_digits, batchnorm_images=0, **options)
    assert calls == [2000, 0]
    caps = next(note for note in found.notes if note.startswith("sensitivity caps"))
    assert "re-estimated" not in caps


def test_autocompress_never_reads_the_test_split_while_choosing(trained_student, small_digits, monkeypatch):
    """Every measurement before the final report uses the validation split; the test split is read twice at the end."""
    from compresslab.pipeline import search as search_module

    seen = []
    real_measure = search_module.measure
    real_run = search_module.run_pipeline

    def spy_measure(model, data, **kwargs):
        seen.append(data.name)
        return real_measure(model, data, **kwargs)

    def spy_run(model, data, *args, **kwargs):
        seen.append(data.name)
        return real_run(model, data, *args, **kwargs)

    monkeypatch.setattr(search_module, "measure", spy_measure)
    monkeypatch.setattr(search_module, "run_pipeline", spy_run)
    found = cl.autocompress(trained_student, small_digits, max_accuracy_drop=50.0, epochs=0, sparsities=(0.5,),
                            cluster_choices=(16,), max_trials=2)
    assert seen[-2:] == [small_digits.name, small_digits.name]  # input and pick, once each, on test
    assert all(name.endswith("(validation)") for name in seen[:-2]) and len(seen) == 2 + 1 + len(found.records)


def test_autocompress_as_a_stored_study_with_nsga2(trained_student, small_digits, tmp_path):
    url = f"sqlite:///{tmp_path / 'auto.db'}"
    found = cl.autocompress(trained_student, small_digits, max_accuracy_drop=50.0, epochs=0, sparsities=(0.5, 0.8),
                            cluster_choices=(8,), max_trials=3, search="nsga2", storage=url, study_name="auto")
    stored = cl.studies.load_study("auto", url)
    assert len(stored.trials) == 3 == len(found.records)
    assert {tuple(sorted(t.params)) for t in stored.trials} == {("caps_looseness", "clusters", "format", "scope", "sparsity_level")}
    assert [r.name for r in cl.studies.study_records(stored)] == [r.name for r in found.records]
    info = cl.studies.study_info(stored)  # what the search was asked for travels with its trials
    assert (info["kind"], info["margin_se"], info["batchnorm_images"]) == ("autocompress", 1.0, 2000)


# ---------------------------------------------------------------------------------------------
# Sweeps


def test_expand_grid():
    configurations = pipeline.expand_grid({"steps": ["prune", "quantize"], "prune.sparsity": [0.5, 0.8],
                                           "prune.schedule": "oneshot", "quantize.bits": [4, 8]})
    assert len(configurations) == 4
    label, steps = configurations[0]
    assert label == "prune.sparsity=0.5, quantize.bits=4"
    assert steps == [{"step": "prune", "sparsity": 0.5, "schedule": "oneshot"}, {"step": "quantize", "bits": 4}]
    with pytest.raises(ValueError, match="<step>.<parameter>"):
        pipeline.expand_grid({"steps": ["prune"], "cluster.clusters": [4]})


def test_sweep_logs_each_configuration_and_rerun_skips(trained_student, small_digits, tmp_path, monkeypatch):
    log = tmp_path / "sweep.jsonl"
    grid = {"steps": ["prune"], "prune.sparsity": [0.5, 0.8], "prune.schedule": "oneshot"}
    with ThreadPoolExecutor(max_workers=2) as executor:
        records = cl.sweep(trained_student, small_digits, grid, log, executor=executor)
    assert [r.name for r in records] == ["prune.sparsity=0.5", "prune.sparsity=0.8"]
    assert len(ExperimentLog(log)) == 2
    assert records[1].sparsity > records[0].sparsity
    assert records[0].extra["compressed_bytes"] > records[1].extra["compressed_bytes"]

    ran = []
    real_task = pipeline.grid._sweep_task
    monkeypatch.setattr(pipeline.grid, "_sweep_task", lambda task: ran.append(task["name"]) or real_task(task))
    grid["prune.sparsity"] = [0.5, 0.8, 0.9]
    with ThreadPoolExecutor(max_workers=1) as executor:
        again = cl.sweep(trained_student, small_digits, grid, log, executor=executor)
    assert ran == ["prune.sparsity=0.9"]  # the two finished configurations were skipped
    assert len(again) == 3 and len(ExperimentLog(log)) == 3
    assert [r.key for r in again[:2]] == [r.key for r in records]


def test_sweep_default_process_pool(trained_student, small_digits, tmp_path):
    log = tmp_path / "pool.jsonl"
    grid = [[{"step": "quantize", "mode": "dynamic"}]]
    records = cl.sweep(trained_student, small_digits, grid, log, max_workers=1)  # one spawned process
    assert len(records) == 1 and len(ExperimentLog(log)) == 1
    assert records[0].accuracy_backend == "litert" and records[0].accuracy > 0.5
    assert records[0].extra["stages"][0]["name"].startswith("quantize #1")


def test_sweep_validates_every_configuration_first(trained_student, small_digits, tmp_path):
    with pytest.raises(ValueError, match="2 configuration"):
        cl.sweep(trained_student, small_digits, {"steps": ["prune"], "prune.sparsity": [0.5, 1.2, 2.0]},
                 tmp_path / "x.jsonl")
    assert not (tmp_path / "x.jsonl").exists()
    with pytest.raises(ValueError, match="needs a log"):
        cl.sweep(trained_student, small_digits, {"steps": ["prune"], "prune.sparsity": 0.5}, None)


def test_every_stage_is_measured_against_the_input_even_after_distillation(trained_student, small_digits):
    result = cl.run_pipeline(trained_student, small_digits,
                             [{"step": "distill", "width": 0.5, "epochs": 1}, {"step": "export", "format": "codec"}])
    teacher, student, exported = result.records
    assert teacher.reference is None  # the input is its own reference
    for record in (student, exported):
        assert record.reference == teacher.name and record.reference_bytes == teacher.dense_float32_bytes
        assert cl.records.ratio_reference_bytes(record) == teacher.dense_float32_bytes
    # The student really is smaller than its teacher: its own dense size would have hidden that.
    assert student.dense_float32_bytes < teacher.dense_float32_bytes
