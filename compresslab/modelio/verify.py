"""Checking a converted model against Keras 3's own outputs, computed in a subprocess.

The two Kerases never share one interpreter (``TF_USE_LEGACY_KERAS`` is read once, at the first
TensorFlow import), so Keras 3 runs the file in a separate Python process on fixed random inputs
and the tf_keras model must reproduce its outputs within :data:`VERIFY_TOLERANCE`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from .._keras import tf

# Outputs of the converted model may differ from Keras 3's by float rounding only.
VERIFY_TOLERANCE = 1e-5
_VERIFY_TIMEOUT_SECONDS = 600

_REFERENCE_SCRIPT = r"""
import sys
import numpy as np
import keras

path, out, safe_mode = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
model = keras.saving.load_model(path, compile=False, safe_mode=safe_mode)
rng = np.random.default_rng(0)
inputs = []
for tensor in model.inputs:
    shape = [2] + [8 if d is None else int(d) for d in tensor.shape[1:]]
    if "int" in str(tensor.dtype):
        inputs.append(rng.integers(0, 2, size=shape).astype(str(tensor.dtype)))
    else:
        inputs.append(rng.standard_normal(shape).astype("float32"))
outputs = model(inputs if len(inputs) > 1 else inputs[0], training=False)
outputs = [keras.ops.convert_to_numpy(o) for o in keras.tree.flatten(outputs)]
arrays = {f"input{i}": x for i, x in enumerate(inputs)}
arrays.update({f"output{i}": y for i, y in enumerate(outputs)})
np.savez(out, **arrays)
"""


def _keras3_environment() -> dict:
    env = dict(os.environ)
    env.pop("TF_USE_LEGACY_KERAS", None)
    env["KERAS_BACKEND"] = "tensorflow"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    return env


def keras3_reference_outputs(path, *, trust: bool = False) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Inputs and outputs of a Keras 3 model file, computed by Keras 3 in a subprocess.

    Args:
        path: a ``.keras`` or ``.h5`` file written by Keras 3.
        trust: let Keras 3 deserialize Lambda layers (``safe_mode=False``).

    Returns:
        ``(inputs, outputs)``: lists of arrays; inputs come from ``np.random.default_rng(0)``.

    Raises:
        ValueError: if Keras 3 cannot load or run the file.
    """
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="compresslab-verify-") as folder:
        out = Path(folder) / "reference.npz"
        command = [sys.executable, "-c", _REFERENCE_SCRIPT, str(path.resolve()), str(out),
                   "0" if trust else "1"]
        try:
            result = subprocess.run(command, env=_keras3_environment(), capture_output=True, text=True,
                                    timeout=_VERIFY_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            raise ValueError(f"verifying {str(path)!r}: Keras 3 did not finish within "
                             f"{_VERIFY_TIMEOUT_SECONDS} s (pass verify=False to skip the check)") from None
        if result.returncode != 0 or not out.exists():
            tail = "\n".join(result.stderr.strip().splitlines()[-5:])
            raise ValueError(f"verifying {str(path)!r}: Keras 3 could not run the file in a subprocess "
                             f"(exit code {result.returncode}):\n{tail}\n(pass verify=False to skip the check)")
        with np.load(out) as data:
            inputs = [data[f"input{i}"] for i in range(sum(k.startswith("input") for k in data.files))]
            outputs = [data[f"output{i}"] for i in range(sum(k.startswith("output") for k in data.files))]
    return inputs, outputs


def _verify_against_keras3(model, path: Path, trust: bool) -> None:
    # Looked up on the package at call time, so replacing compresslab.modelio.keras3_reference_outputs
    # (as the tests do, to fake a conversion that drifts) still takes effect after the split.
    from . import keras3_reference_outputs as reference_outputs

    inputs, expected = reference_outputs(path, trust=trust)
    feed = [tf.constant(x) for x in inputs]
    outputs = model(feed if len(feed) > 1 else feed[0], training=False)
    actual = [np.asarray(o) for o in tf.nest.flatten(outputs)]
    if len(actual) != len(expected):
        raise ValueError(f"the conversion of the Keras 3 model in {str(path)!r} did not reproduce its outputs: "
                         f"{len(actual)} outputs in tf_keras, {len(expected)} in Keras 3")
    for index, (mine, theirs) in enumerate(zip(actual, expected, strict=True)):
        if mine.shape != theirs.shape:
            raise ValueError(f"the conversion of the Keras 3 model in {str(path)!r} did not reproduce its "
                             f"outputs: output {index} has shape {mine.shape} in tf_keras, {theirs.shape} "
                             "in Keras 3")
        diff = float(np.max(np.abs(mine.astype(np.float64) - theirs.astype(np.float64)))) if mine.size else 0.0
        if not diff < VERIFY_TOLERANCE:
            raise ValueError(f"the conversion of the Keras 3 model in {str(path)!r} did not reproduce its "
                             f"outputs: max abs difference {diff:.3g} on output {index} (allowed "
                             f"< {VERIFY_TOLERANCE:g})")
