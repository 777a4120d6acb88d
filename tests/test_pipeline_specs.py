"""Recipe steps as frozen specs: validated on construction, hashable, JSON round trip, usable in recipes."""

from __future__ import annotations

import json

import pytest

from compresslab.pipeline import (
    STEP_PARAMETERS,
    ClusterStep,
    DistillStep,
    ExportStep,
    PruneStep,
    QuantizeStep,
    SparseVDStep,
    validate_recipe,
)


@pytest.mark.parametrize("spec", [
    PruneStep(sparsity=0.9, epochs=2, layers=("dense",)),
    PruneStep(sparsities={"conv": 0.5, "dense": 0.8}),
    ClusterStep(clusters=8, conv_clusters=32, epochs=1),
    QuantizeStep(mode="int8"),
    QuantizeStep(bits=4, granularity="per_tensor"),
    DistillStep(temperature=4.0, alpha=0.5),
    ExportStep(format="tflite", mode="int8"),
    SparseVDStep(epochs=3, kl_weight=0.5, layers=("conv1",)),
])
def test_step_specs_round_trip_through_json_and_hash(spec):
    payload = json.loads(json.dumps(spec.to_dict()))
    assert payload["step"] == spec.step
    again = type(spec).from_dict(payload)
    assert again == spec and hash(again) == hash(spec)
    assert set(payload) - {"step"} == set(STEP_PARAMETERS[spec.step])


@pytest.mark.parametrize("build, words", [
    (lambda: PruneStep(sparsity=1.5), ["sparsity", "1.5"]),
    (lambda: PruneStep(), ["exactly one of sparsity, threshold or sparsities"]),
    (lambda: PruneStep(sparsity=0.5, epochs=-1, learning_rate=0), ["epochs is -1", "learning_rate is 0"]),
    (lambda: ClusterStep(clusters=1), ["clusters", "1"]),
    (lambda: QuantizeStep(), ["either mode", "or bits"]),
    (lambda: QuantizeStep(mode="int3"), ["mode is 'int3'"]),
    (lambda: DistillStep(temperature=0), ["temperature", "0"]),
    (lambda: ExportStep(format="zip"), ["format is 'zip'"]),
    (lambda: SparseVDStep(epochs=0, threshold=12, kl_weight=-1), ["epochs is 0", "threshold is 12", "kl_weight is -1"]),
])
def test_step_specs_refuse_bad_values_naming_every_problem(build, words):
    with pytest.raises(ValueError) as caught:
        build()
    for word in words:
        assert word in str(caught.value)


def test_a_recipe_may_mix_step_specs_and_dicts():
    steps = validate_recipe([PruneStep(sparsity=0.5), {"step": "export", "format": "codec"}])
    assert steps[0] == PruneStep(sparsity=0.5).to_dict()
    assert steps[1]["step"] == "export"


def test_from_dict_refuses_another_kind_of_step():
    with pytest.raises(ValueError, match="another kind"):
        PruneStep.from_dict({"step": "cluster", "clusters": 8})


def test_cluster_labels_name_depthwise_counts_only_when_they_differ():
    from compresslab.pipeline.recipe import describe_step

    step = {"step": "cluster", "clusters": 16, "conv_clusters": 32, "depthwise_clusters": 32, "epochs": 1}
    assert describe_step(step) == "cluster 16/32 conv (1 ep)"  # the same as the convolutions': not repeated
    assert describe_step({**step, "depthwise_clusters": 8}) == "cluster 16/32 conv/8 depthwise (1 ep)"
    assert describe_step({**step, "conv_clusters": None, "depthwise_clusters": 16, "epochs": 0}) == "cluster 16"
