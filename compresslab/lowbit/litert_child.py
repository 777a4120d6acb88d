"""Run a TFLite file in LiteRT in a child process, so a crash in a LiteRT kernel cannot kill the caller.

Low-bit files are the ones most likely to meet a faulty kernel: LiteRT 2.3.0 runs int2
convolutions to NaN, and in one CI run of ``make test`` the same file took the whole test process
down with a segmentation fault (heap-layout dependent: it did not repeat in 300 runs alone). In a
classroom that would be a dead Jupyter kernel and a lost notebook state. :func:`activations`
therefore runs the file in a fresh Python process and turns a crash into an exception that names
the signal.

This file imports only numpy and ai_edge_litert (never TensorFlow or the compresslab package),
so the child starts in about a third of a second; the parent runs it by its path.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import warnings

import numpy as np

TIMEOUT_SECONDS = 600


class LiteRTCrashed(RuntimeError):
    """LiteRT killed the child process that ran a file (a signal, not a Python exception)."""


def run_in_process(content: bytes, images: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Float values of the named tensors for ``images``, from LiteRT without the XNNPACK delegate."""
    from ai_edge_litert.interpreter import Interpreter

    with warnings.catch_warnings():
        # LiteRT warns that keeping every tensor is for debugging: here that is the point.
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
        interpreter = Interpreter(model_content=content, experimental_preserve_all_tensors=True)
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], [len(images), *images.shape[1:]])
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    x = images
    if np.issubdtype(detail["dtype"], np.integer):
        scale, zero = detail["quantization"]
        info = np.iinfo(detail["dtype"])
        x = np.clip(np.round(images / scale + zero), info.min, info.max)
    interpreter.set_tensor(detail["index"], x.astype(detail["dtype"]))
    interpreter.invoke()
    by_name = {d["name"]: d for d in interpreter.get_tensor_details()}
    values = {}
    for name in names:
        if name not in by_name:
            continue
        d = by_name[name]
        value = interpreter.get_tensor(d["index"]).astype(np.float32)
        scales = d["quantization_parameters"]["scales"]
        if np.issubdtype(d["dtype"], np.integer) and len(scales) == 1:
            value = (value - d["quantization_parameters"]["zero_points"][0]) * scales[0]
        values[name] = value
    return values


def _command(folder: str) -> list[str]:
    # -P: the script's own folder (compresslab/lowbit, with modules named errors, files, spec) must
    # not shadow anything numpy or LiteRT import
    return [sys.executable, "-P", os.path.abspath(__file__), folder]


def activations(content: bytes, images: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """:func:`run_in_process` in a child process.

    Raises:
        LiteRTCrashed: the child died of a signal (a segmentation fault in a kernel) or ran past
            ``TIMEOUT_SECONDS``.
        RuntimeError, ValueError: what LiteRT raised in the child (an unsupported op, a bad file),
            with its message.
    """
    names = list(names)
    with tempfile.TemporaryDirectory(prefix="compresslab-litert-") as folder:
        with open(os.path.join(folder, "model.tflite"), "wb") as handle:
            handle.write(content)
        np.save(os.path.join(folder, "images.npy"), np.asarray(images, dtype=np.float32))
        with open(os.path.join(folder, "names.json"), "w", encoding="utf-8") as handle:
            json.dump(names, handle)
        try:
            done = subprocess.run(_command(folder), capture_output=True, timeout=TIMEOUT_SECONDS, check=False)
        except subprocess.TimeoutExpired:
            raise LiteRTCrashed(f"LiteRT ran the file for more than {TIMEOUT_SECONDS} s on {len(images)} images "
                                "and was stopped") from None
        if done.returncode < 0:
            try:
                signame = signal.Signals(-done.returncode).name
            except ValueError:
                signame = f"signal {-done.returncode}"
            raise LiteRTCrashed(f"LiteRT crashed ({signame}) while running the file")
        failure = os.path.join(folder, "error.json")
        if os.path.exists(failure):
            with open(failure, encoding="utf-8") as handle:
                error = json.load(handle)
            kind = ValueError if error["type"] == "ValueError" else RuntimeError
            raise kind(error["message"])
        if done.returncode != 0:
            tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"the LiteRT child process exited with code {done.returncode}: {tail[0][:300]}")
        with np.load(os.path.join(folder, "values.npz")) as stored:
            order = json.loads(str(stored["__names__"]))
            return {name: stored[f"v{i}"] for i, name in enumerate(order)}


def _main(folder: str) -> int:
    with open(os.path.join(folder, "model.tflite"), "rb") as handle:
        content = handle.read()
    images = np.load(os.path.join(folder, "images.npy"))
    with open(os.path.join(folder, "names.json"), encoding="utf-8") as handle:
        names = json.load(handle)
    try:
        values = run_in_process(content, images, names)
    except (RuntimeError, ValueError) as error:
        with open(os.path.join(folder, "error.json"), "w", encoding="utf-8") as handle:
            json.dump({"type": type(error).__name__, "message": str(error)}, handle)
        return 1
    order = list(values)
    np.savez(os.path.join(folder, "values.npz"), __names__=np.array(json.dumps(order)),
             **{f"v{i}": values[name] for i, name in enumerate(order)})
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
