"""No stored code runs with trust=False, wherever a Lambda hides (issue 12): wrappers, .h5 and SavedModel."""

from __future__ import annotations

import pytest

import compresslab as cl
from compresslab._keras import keras


def _model_with_nested_lambda(marker):
    path = str(marker)

    def leave_a_mark(tensor):
        open(path, "w").write("code ran")  # noqa: SIM115  (the point: a side effect on load)
        return tensor * 2.0

    inputs = keras.Input((4, 3), name="sequence")
    hidden = keras.layers.TimeDistributed(keras.layers.Lambda(leave_a_mark), name="wrapper")(inputs)
    outputs = keras.layers.Dense(10, name="logits")(keras.layers.Flatten()(hidden))
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("suffix", [".h5", ""])  # "" = a SavedModel folder
def test_a_lambda_nested_in_a_wrapper_never_runs_without_trust(tmp_path, suffix):
    marker = tmp_path / "marker.txt"
    model = _model_with_nested_lambda(marker)
    target = tmp_path / f"model{suffix}"
    model.save(str(target))  # tf_keras's own writer, as an attacker would
    marker.unlink(missing_ok=True)
    with pytest.raises(ValueError, match=r"layer 'wrapper' holds a Lambda layer .* trust=True"):
        cl.load_model(target)
    assert not marker.exists(), "the nested Lambda's code ran while loading"


def test_plain_models_still_load_without_trust(tmp_path, trained_student):
    for name in ("plain.h5", "plain.keras"):
        path = cl.save_model(trained_student, tmp_path / name)
        assert cl.load_model(path).count_params() == trained_student.count_params()
