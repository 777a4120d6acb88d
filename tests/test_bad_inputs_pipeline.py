"""Bad-input catalogue of recipes, autocompress, sweeps, studies and sparse VD.

Each case asserts the error's TYPE and that its message names the offending step, field, value or
name; nothing runs before the error (recipes are checked whole before any step).
"""

from __future__ import annotations

import pytest

import compresslab as cl
from compresslab import studies
from compresslab.pipeline import validate_recipe

INF, NAN = float("inf"), float("nan")

RECIPE_CASES = [
    ("prune_to_everything", r"step 1 \(prune\): PruneSpec.sparsity is 1.0"),
    ([{"step": "prune", "sparsity": 0.5, "epochs": "two"}], r"epochs is 'two'; it must be an integer >= 0"),
    ([{"step": "prune", "sparsity": 0.5, "learning_rate": INF}], r"learning_rate is inf; it must be a number > 0"),
    ([{"step": "prune", "sparsity": 0.5, "learning_rate": NAN}], r"learning_rate is nan"),
    ([{"step": "prune", "sparsity": 0.5, "batch_size": 0}], r"batch_size is 0; it must be an integer >= 1"),
    ([{"step": "prune", "sparsity": 0.5, "schedule": "cosine"}], r"schedule is 'cosine'"),
    ([{"step": "prune", "sparsity": 0.5, "threshold": 0.1}], r"give exactly one of sparsity, threshold or sparsities"),
    ([{"step": "prune", "sparsities": {}}], r"sparsities must be a non-empty dict"),
    ([{"step": "prune", "sparsities": {"dense1": 1.5}}], r"layer 'dense1'.*sparsity is 1.5"),
    ([{"step": "prune", "threshold": 0.1, "epochs": 1}], r"with a threshold use schedule 'oneshot'"),
    ([{"step": "prune", "sparsity": 0.5, "bogus": 1}], r"unknown parameter\(s\) \['bogus'\]"),
    ([{"step": "cluster", "clusters": 1}], r"ClusterSpec.clusters is 1"),
    ([{"step": "cluster", "clusters": 8, "conv_clusters": 0}], r"conv_clusters.*ClusterSpec.clusters is 0"),
    ([{"step": "cluster", "clusters": 8, "depthwise_clusters": 1}], r"depthwise_clusters.*ClusterSpec.clusters is 1"),
    ([{"step": "cluster", "clusters": 8, "preserve_sparsity": "yes"}], r"preserve_sparsity is 'yes'"),
    ([{"step": "cluster", "clusters": 8, "init": "random"}], r"init is 'random'"),
    ([{"step": "quantize"}], r"give either mode .* or bits"),
    ([{"step": "quantize", "mode": "int8", "bits": 4}], r"not both or neither"),
    ([{"step": "quantize", "mode": "int3"}], r"mode is 'int3'"),
    ([{"step": "quantize", "mode": "float16", "epochs": 1}], r"quantization-aware training .* use mode 'int8'"),
    ([{"step": "quantize", "mode": "int8", "representative_images": 0}], r"representative_images is 0"),
    ([{"step": "quantize", "bits": 0}], r"QuantSpec.bits is 0"),
    ([{"step": "distill", "temperature": -1}], r"temperature is -1"),
    ([{"step": "distill", "student": "resnet50"}], r"student is 'resnet50'; choose a zoo architecture"),
    ([{"step": "distill", "width": 0}], r"width is 0; it must be a number > 0"),
    ([{"step": "export", "format": "onnx"}], r"format is 'onnx'"),
    ([{"step": "export", "format": "codec", "mode": "int8"}], r"mode applies to format 'tflite' only"),
    ([{"step": "export", "path": 5}], r"path is 5; it must be a file path or None"),
    ([{"step": "export"}, {"step": "prune", "sparsity": 0.5}], r"export must be the last step"),
    ([{"step": "quantize", "mode": "int8"}, {"step": "prune", "sparsity": 0.5}], r"a TFLite file cannot be pruned"),
    ([{"step": "sparse_vd", "epochs": 0}], r"sparse_vd\): epochs is 0; it must be an integer >= 1"),
    ([{"step": "sparse_vd", "threshold": 20}], r"threshold is 20; it must be a log alpha between -10 and 10"),
    ([{"step": "sparse_vd", "kl_weight": 0}], r"kl_weight is 0"),
    ([{"step": "sparse_vd", "layers": "conv1"}], r"layers is 'conv1'; it must be None"),
    ([{"step": "teleport"}], r"unknown step 'teleport'"),
    ([["prune"]], r"a step is a dict with a 'step' key, got list"),
    ([], r"it has no steps"),
    (42, r"a recipe is a list of steps .* got int"),
    ("{not json", r"neither a built-in recipe .* nor valid JSON"),
]


@pytest.mark.parametrize("recipe, message", RECIPE_CASES)
def test_recipe_problems_are_named(recipe, message):
    if recipe == "prune_to_everything":
        recipe = [{"step": "prune", "sparsity": 1.0}]
    with pytest.raises(ValueError, match=message):
        validate_recipe(recipe)


AUTOCOMPRESS_CASES = [
    ({"max_accuracy_drop": -1}, r"max_accuracy_drop is -1; it is in percentage points"),
    ({"max_accuracy_drop": 101}, r"max_accuracy_drop is 101"),
    ({"max_accuracy_drop": NAN}, r"max_accuracy_drop is nan"),
    ({"objective": "speed"}, r"objective is 'speed'"),
    ({"max_trials": 0}, r"max_trials is 0"),
    ({"time_budget": -5}, r"time_budget is -5"),
    ({"epochs": -1}, r"epochs is -1"),
    ({"sparsities": (0.5, 1.0)}, r"sparsities is \[0.5, 1.0\]"),
    ({"cluster_choices": (1,)}, r"cluster_choices is \[1\]"),
    ({"filter_ratios": (0.0,)}, r"filter_ratios is \[0.0\]"),
    ({"search": "random"}, r"search is 'random'"),
    ({"search": "nsga2", "objective": "latency"}, r"use it with objective 'size'"),
    ({"validation": 0.7}, r"validation is 0.7"),
]


@pytest.mark.parametrize("kwargs, message", AUTOCOMPRESS_CASES)
def test_autocompress_arguments_are_named(trained_student, small_digits, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cl.autocompress(trained_student, small_digits, **kwargs)


def test_autocompress_refuses_what_is_not_a_model_or_a_dataset(small_digits, trained_student):
    with pytest.raises(TypeError, match=r"model must be a Keras classifier \(a tf_keras or Keras 3 Model\); got str"):
        cl.autocompress("model.keras", small_digits)
    with pytest.raises(ValueError, match="data is a tuple, not a compresslab Dataset"):
        cl.autocompress(trained_student, (1, 2))


def test_sweep_needs_a_log_and_a_grid(trained_student, small_digits, tmp_path):
    with pytest.raises(ValueError, match="sweep needs a log"):
        cl.sweep(trained_student, small_digits, {"steps": ["prune"], "prune.sparsity": [0.5]}, None)
    with pytest.raises(ValueError, match="grid key 'cluster.clusters' must be '<step>.<parameter>'"):
        cl.sweep(trained_student, small_digits, {"steps": ["prune"], "cluster.clusters": [4]}, tmp_path / "l.jsonl")
    with pytest.raises(ValueError, match="grid key 'prune.sparsity' has an empty list"):
        cl.sweep(trained_student, small_digits, {"steps": ["prune"], "prune.sparsity": []}, tmp_path / "l.jsonl")
    with pytest.raises(ValueError, match=r"grid\['steps'\] must be a non-empty list"):
        cl.sweep(trained_student, small_digits, {"steps": []}, tmp_path / "l.jsonl")


def test_study_names_and_storages_are_checked(trained_student, small_digits, tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(ValueError, match="study name is ''"):
        studies.create_class("", url)
    with pytest.raises(ValueError, match="no study named 'ghost'"):
        studies.run_worker("ghost", url)
    studies.create_class("class", url)
    with pytest.raises(ValueError, match="study 'class' is a class study: it has no trials for workers to run"):
        studies.run_worker("class", url)
    with pytest.raises(ValueError, match="student is 5"):
        studies.submit("class", [cl.Record(name="x", accuracy=0.5)], student=5, storage=url)
    with pytest.raises(TypeError, match="storage is a list"):
        studies.open_storage(["sqlite://"])


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 1.5}, "epochs is 1.5"),
    ({"threshold": NAN}, "threshold is nan"),
    ({"learning_rate": 0}, "learning_rate is 0"),
    ({"kl_weight": INF}, "kl_weight is inf"),
])
def test_sparse_vd_settings_are_named(trained_student, small_digits, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cl.sparse_vd.variational_dropout(trained_student, small_digits, **kwargs)
