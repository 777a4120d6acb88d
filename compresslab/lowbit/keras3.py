"""Keras 3's own ``model.quantize`` as comparison rows, measured on a Keras 3 copy of the same model.

Keras 3 (the ``keras`` package TensorFlow 2.21 installs) quantizes Dense, EinsumDense and
Embedding layers in place (``"int8"``, ``"int4"``, ``"float8"``) and leaves convolutions float.
compresslab runs in tf_keras, so the comparison runs Keras 3 in a separate Python process (the
two Kerases never share an interpreter, as in :mod:`compresslab.modelio.verify`): it loads the
model's ``.h5`` file, quantizes a fresh copy per mode, measures test accuracy, the saved
``.keras`` bytes, which layers it quantized, and tries the TFLite export; an exported file is then
measured in LiteRT here like every other file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..data import Dataset
from ..records import Record
from ..tflite import TFLiteArtifact

KERAS3_MODES = ("int8", "int4", "float8")
_TIMEOUT_SECONDS = 900

# Runs under Keras 3 (TF_USE_LEGACY_KERAS unset). argv: model.h5, arrays.npz, out folder, modes (comma separated).
_SCRIPT = r"""
import json, os, sys, traceback
import numpy as np
import keras

model_path, arrays_path, out, modes = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
arrays = np.load(arrays_path)
x, y = arrays["x"], arrays["y"]

def kernel_counts(model):
    counts = {}
    for layer in model.layers:
        for attribute in ("kernel", "depthwise_kernel", "pointwise_kernel", "embeddings"):
            variable = getattr(layer, attribute, None)
            if variable is not None and hasattr(variable, "shape"):
                counts[layer.name] = counts.get(layer.name, 0) + int(np.prod(variable.shape))
    return counts

rows = []
for mode in ["float32"] + modes:
    row = {"mode": mode}
    try:
        model = keras.saving.load_model(model_path, compile=False)
        counts = kernel_counts(model)
        if mode != "float32":
            model.quantize(mode)
        quantized = [layer.name for layer in model.layers if getattr(layer, "quantization_mode", None)]
        total = sum(counts.values()) or 1
        row["quantized_layers"] = quantized
        row["left_float_layers"] = [name for name in counts if name not in quantized]
        row["left_float_share"] = sum(c for n, c in counts.items() if n not in quantized) / total
        probabilities = model.predict(x, verbose=0, batch_size=256)
        row["accuracy"] = float(np.mean(np.argmax(probabilities, axis=-1) == y))
        keras_path = os.path.join(out, f"{mode}.keras")
        model.save(keras_path)
        row["keras_bytes"] = os.path.getsize(keras_path)
        tflite_path = os.path.join(out, f"{mode}.tflite")
        try:
            model.export(tflite_path, format="litert", verbose=False)
            row["tflite_path"] = tflite_path
        except Exception as error:
            row["tflite_error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
    except Exception as error:
        row["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}"
    rows.append(row)
with open(os.path.join(out, "rows.json"), "w") as handle:
    json.dump({"keras_version": keras.__version__, "rows": rows}, handle)
"""


def _run_keras3(model, data: Dataset, modes, folder: Path) -> dict:
    from ..modelio import save_model
    from ..modelio.verify import _keras3_environment

    model_path = save_model(model, folder / "model.h5")
    np.savez(folder / "arrays.npz", x=data.x_test.astype(np.float32), y=data.y_test)
    command = [sys.executable, "-c", _SCRIPT, str(model_path), str(folder / "arrays.npz"), str(folder),
               ",".join(modes)]
    try:
        result = subprocess.run(command, env=_keras3_environment(), capture_output=True, text=True,
                                timeout=_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"Keras 3 did not finish quantizing within {_TIMEOUT_SECONDS} s") from None
    rows_path = folder / "rows.json"
    if result.returncode != 0 or not rows_path.exists():
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"Keras 3 could not load or quantize the model in a subprocess "
                           f"(exit code {result.returncode}):\n{tail}")
    return json.loads(rows_path.read_text())


def keras3_quantize_rows(model, data: Dataset, modes=KERAS3_MODES, *, latency: bool = True,
                         threads: int = 1) -> list[Record]:
    """Keras 3's ``model.quantize(mode)`` on a Keras 3 copy of ``model``, one record per mode.

    Args:
        model: a tf_keras classifier (not modified); Keras 3 loads it from an ``.h5`` file.
        data: the data set; accuracy is on its test split.
        modes: any of ``"int8"``, ``"int4"``, ``"float8"``.
        latency: measure LiteRT latency of the files Keras 3 exports.
        threads: CPU threads for that latency.

    Returns:
        A float32 Keras 3 row first (the reference: it should match the tf_keras model), then one
        :class:`~compresslab.records.Record` per mode, ``technique="quantize"``. ``accuracy`` is
        Keras 3's on the test split (``accuracy_backend="keras3"``), or LiteRT's on the exported
        file when Keras 3 exports one (then ``tflite_bytes``/``gzip_bytes``/``latency_ms`` are
        that file's). ``extra`` holds ``keras3_mode``, ``keras_bytes`` (the saved ``.keras``
        file), ``quantized_layers``, ``left_float_layers`` and ``left_float_share`` (the share
        of kernel weights Keras 3 left float: its quantizer covers Dense/EinsumDense/Embedding,
        not convolutions), ``keras3_accuracy`` and ``tflite_error`` when the export failed. A
        mode that fails in Keras 3 gives a row with ``accuracy=None`` and ``extra["error"]``.

    Raises:
        ValueError: an unknown mode (before any work).
        RuntimeError: Keras 3 could not load the model at all.
    """
    from ..models import check_model_fits
    from ..quantize.spec import _check_data, _check_model
    from ..tflite import count_params

    modes = tuple(modes)
    unknown = [m for m in modes if m not in KERAS3_MODES]
    if unknown or not modes:
        raise ValueError(f"modes {list(unknown) or list(modes)} are not Keras 3 quantization modes; "
                         f"choose from {list(KERAS3_MODES)}")
    model = _check_model(model)
    _check_data(data)
    check_model_fits(model, data)
    params, nonzero = count_params(model)
    records = []
    with tempfile.TemporaryDirectory(prefix="compresslab-keras3-") as folder:
        payload = _run_keras3(model, data, modes, Path(folder))
        for row in payload["rows"]:
            extra = {"keras3_mode": row["mode"], "keras_version": payload["keras_version"],
                     **{k: row[k] for k in ("keras_bytes", "quantized_layers", "left_float_layers",
                                            "left_float_share", "error", "tflite_error") if k in row},
                     "keras3_accuracy": row.get("accuracy")}
            record = Record(name=f"Keras 3 quantize {row['mode']}" if row["mode"] != "float32" else "Keras 3 float32",
                            technique="quantize" if row["mode"] != "float32" else "baseline",
                            spec={"keras3_quantize": row["mode"]}, dataset=data.name,
                            accuracy=row.get("accuracy"), accuracy_backend="keras3", params=params,
                            nonzero_params=nonzero, dense_float32_bytes=4 * params, extra=extra)
            if "tflite_path" in row:
                artifact = TFLiteArtifact(Path(row["tflite_path"]).read_bytes(), mode=f"keras3-{row['mode']}")
                record.accuracy = artifact.accuracy(data)
                record.accuracy_backend = "litert"
                record.tflite_bytes, record.gzip_bytes = artifact.size_bytes, artifact.gzip_bytes
                if latency:
                    record.latency_ms = artifact.latency_ms(data.x_test[:1], threads=threads)
                    record.latency_threads = threads
            records.append(record)
    return records


__all__ = ["keras3_quantize_rows", "KERAS3_MODES"]
