"""TFLite conversion and the LiteRT interpreter: the deployable side of every measurement.

A :class:`TFLiteArtifact` holds the bytes of a converted flatbuffer. Its accuracy and
latency are always measured by running those bytes in LiteRT
(``ai_edge_litert.interpreter.Interpreter``), never by asking the Keras model it came from.

Example:
    >>> artifact = convert(model)                       # float32 flatbuffer
    >>> artifact.accuracy(data), artifact.size_bytes
"""

from __future__ import annotations

import gzip
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._io import atomic_write
from ._keras import captured_native_stderr, keras, quiet_native_stderr, tf

CONVERSION_MODES = ("float32", "dynamic", "float16", "int8")


def _interpreter_class():
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter


@dataclass(eq=False)
class TFLiteArtifact:
    """The bytes of a TFLite model plus what is known of how it was made.

    Attributes:
        content: the flatbuffer bytes.
        mode: ``"float32"``, ``"dynamic"``, ``"float16"`` or ``"int8"`` (or a label of the caller's).
        name: a label for records and file names.
        params: parameters of the Keras model it was converted from.
        nonzero_params: non-zero parameters of that model.
        info: free-form facts (e.g. the QAT bit width), copied into records.
    """

    content: bytes
    mode: str = "float32"
    name: str = "model"
    params: int | None = None
    nonzero_params: int | None = None
    info: dict = field(default_factory=dict)

    @property
    def size_bytes(self) -> int:
        """Bytes of the flatbuffer as it would be deployed."""
        return len(self.content)

    @property
    def gzip_bytes(self) -> int:
        """Bytes after ``gzip -9``: what storage or download of the file costs."""
        return len(gzip.compress(self.content, compresslevel=9, mtime=0))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the flatbuffer to ``path`` (``.tflite`` added if missing), atomically.

        A crash mid-write never leaves a half-written file at ``path``.
        """
        path = Path(path)
        if path.suffix != ".tflite":
            path = path.with_suffix(path.suffix + ".tflite") if path.suffix else path.with_suffix(".tflite")
        return atomic_write(path, self.content)

    @classmethod
    def load(cls, path: str | os.PathLike, **kwargs) -> TFLiteArtifact:
        """Read a ``.tflite`` file, checking that LiteRT can open it."""
        path = Path(path)
        content = path.read_bytes()
        artifact = cls(content, name=kwargs.pop("name", path.stem), **kwargs)
        try:
            artifact.interpreter()
        except Exception as error:
            raise ValueError(f"{path} is not a TFLite model LiteRT can run ({error})") from None
        return artifact

    # -- running -----------------------------------------------------------------------------

    def interpreter(self, threads: int = 1):
        """A fresh LiteRT interpreter over these bytes with ``threads`` CPU threads."""
        with quiet_native_stderr():
            interpreter = _interpreter_class()(model_content=self.content, num_threads=int(threads))
            interpreter.allocate_tensors()
        return interpreter

    def predict(self, x: np.ndarray, batch_size: int = 256, threads: int = 1) -> np.ndarray:
        """Run the model in LiteRT on ``x``; returns float outputs (int8 outputs are dequantized)."""
        runner = _Runner(self, threads=threads)
        return runner.run(np.asarray(x, dtype=np.float32), batch_size)

    def accuracy(self, data, batch_size: int = 256, threads: int = 1) -> float:
        """Top-1 accuracy on ``data``'s held-out test split, measured by running LiteRT."""
        outputs = self.predict(data.x_test, batch_size=batch_size, threads=threads)
        return float(np.mean(outputs.argmax(axis=1) == data.y_test))

    def latency_ms(self, sample: np.ndarray, *, threads: int = 1, warmup: int = 10, runs: int = 50) -> float:
        """Median milliseconds of one single-image inference after ``warmup`` runs."""
        runner = _Runner(self, threads=threads)
        return runner.latency_ms(np.asarray(sample, dtype=np.float32), warmup=warmup, runs=runs)

    def __repr__(self) -> str:
        return f"TFLiteArtifact(name={self.name!r}, mode={self.mode!r}, {self.size_bytes:,} bytes)"


class _Runner:
    """Feeds float images to an interpreter, quantizing input and dequantizing output as needed."""

    def __init__(self, artifact: TFLiteArtifact, threads: int = 1):
        self.interpreter = artifact.interpreter(threads)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self._batch = None

    def _resize(self, batch: int, shape) -> None:
        if self._batch != batch:
            self.interpreter.resize_tensor_input(self.input["index"], [batch, *shape])
            self.interpreter.allocate_tensors()
            self.input = self.interpreter.get_input_details()[0]
            self.output = self.interpreter.get_output_details()[0]
            self._batch = batch

    def _encode(self, x: np.ndarray) -> np.ndarray:
        dtype = self.input["dtype"]
        if dtype == np.float32:
            return x.astype(np.float32, copy=False)
        scale, zero_point = self.input["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)

    def _decode(self, y: np.ndarray) -> np.ndarray:
        if self.output["dtype"] == np.float32:
            return y
        scale, zero_point = self.output["quantization"]
        return (y.astype(np.float32) - zero_point) * scale

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.input["index"], self._encode(x))
        self.interpreter.invoke()
        return self._decode(self.interpreter.get_tensor(self.output["index"]))

    def run(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        if len(x) == 0:
            return np.zeros((0, self.output["shape"][-1]), np.float32)
        batch = min(batch_size, len(x))
        self._resize(batch, x.shape[1:])
        outputs = []
        for start in range(0, len(x), batch):
            chunk = x[start : start + batch]
            real = len(chunk)
            if real < batch:  # pad the last batch rather than reallocating the interpreter
                chunk = np.concatenate([chunk, np.zeros((batch - real, *x.shape[1:]), x.dtype)])
            outputs.append(self._invoke(chunk)[:real].copy())
        return np.concatenate(outputs)

    def latency_ms(self, sample: np.ndarray, warmup: int, runs: int) -> float:
        if sample.ndim == 3:
            sample = sample[np.newaxis]
        sample = sample[:1]
        self._resize(1, sample.shape[1:])
        encoded = self._encode(sample)
        for _ in range(warmup):
            self.interpreter.set_tensor(self.input["index"], encoded)
            self.interpreter.invoke()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            self.interpreter.set_tensor(self.input["index"], encoded)
            self.interpreter.invoke()
            times.append((time.perf_counter() - start) * 1000.0)
        return float(statistics.median(times))


# tfmot layers whose own variables are bookkeeping, not parameters of the model: pruning masks,
# thresholds and step counters, quantizer ranges, cluster centroids and indices. The layer they wrap
# keeps its kernel and bias under its own name, and those are counted.
_TFMOT_BOOKKEEPING = ("PruneLowMagnitude", "QuantizeWrapper", "QuantizeWrapperV2", "QuantizeLayer",
                      "ClusterWeights", "ClusterWeightsMHA")


def parameter_weights(model: keras.Model) -> list:
    """The model's parameters: every weight except the variables tfmot's wrappers add.

    Kernels, biases and normalisation statistics count; a pruning wrapper's mask, threshold and
    step, a quantization wrapper's ranges and step, a clustering wrapper's centroids and indices do
    not, so a wrapped model has the parameter count of the model it wraps.
    """
    scopes = tuple(f"{layer.name}/" for layer in model.submodules
                   if type(layer).__name__ in _TFMOT_BOOKKEEPING and hasattr(layer, "name"))
    return [weight for weight in model.weights if not (scopes and weight.name.startswith(scopes))]


def count_params(model: keras.Model) -> tuple[int, int]:
    """(all parameters, non-zero parameters) over the model's parameters (see :func:`parameter_weights`)."""
    total = 0
    nonzero = 0
    for weight in parameter_weights(model):
        values = weight.numpy()
        total += values.size
        nonzero += int(np.count_nonzero(values))
    return total, nonzero


def convert(model: keras.Model, mode: str = "float32", *, representative: np.ndarray | None = None,
            int8_io: bool = True, name: str | None = None, info: dict | None = None) -> TFLiteArtifact:
    """Convert a tf_keras model to TFLite.

    Args:
        model: the Keras model (not modified).
        mode: ``"float32"`` (no optimization), ``"dynamic"`` (int8 weights, float activations),
            ``"float16"`` (float16 weights) or ``"int8"`` (full-integer: int8 weights and
            activations calibrated on ``representative``).
        representative: images for int8 calibration (required for ``"int8"``).
        int8_io: for ``"int8"``, make the input and output int8 too (a fully integer model).
        name: label for the artifact (defaults to the model's name).

    Returns:
        A :class:`TFLiteArtifact`.

    Example:
        >>> artifact = convert(model, "int8", representative=data.x_train[:200])
    """
    if mode not in CONVERSION_MODES:
        raise ValueError(f"mode is {mode!r}; choose one of {', '.join(CONVERSION_MODES)}")
    if mode == "int8" and (representative is None or len(representative) == 0):
        raise ValueError("int8 conversion needs representative images to calibrate activation ranges")
    converter = _converter(model)
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode == "int8":
        samples = np.asarray(representative, dtype=np.float32)

        def dataset():
            for index in range(len(samples)):
                yield [samples[index : index + 1]]

        converter.representative_dataset = dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    content = _quiet_convert(converter)
    params, nonzero = count_params(model)
    return TFLiteArtifact(content, mode=mode, name=name or model.name, params=params,
                          nonzero_params=nonzero, info=dict(info or {}))


def _converter(model: keras.Model):
    # A concrete function with a batch dimension of None converts cleanly for tf_keras models
    # and keeps the file free of the Keras model's Python-side state.
    input_spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(input_spec)
    # The converter saves its trackable object as a SavedModel first (the file keeps the
    # "serving_default" signature that ai-edge-quantizer reads). Handing it the Keras model makes that
    # save trace every layer again (2-4x the conversion's time); a bare module holding the variables
    # the function reads writes the same signature and the same bytes.
    holder = tf.Module()
    holder.captured = list(function.variables)
    return tf.lite.TFLiteConverter.from_concrete_functions([function], holder)


def _quiet_convert(converter) -> bytes:
    """Run the converter with TensorFlow's absl logging turned down (it prints pages otherwise).

    What the converter's C++ side prints is caught; when the conversion fails it is attached to the
    error (as a note), so nothing it said is lost.
    """
    import logging

    logger = tf.get_logger()
    previous = logger.level
    logger.setLevel(logging.ERROR)
    native = None
    try:
        with captured_native_stderr() as native:
            return converter.convert()
    except Exception as error:
        if native is not None and native.text.strip():
            error.add_note("the TFLite converter printed:\n" + native.text.strip()[-4000:])
        raise
    finally:
        logger.setLevel(previous)


__all__ = ["TFLiteArtifact", "convert", "count_params", "CONVERSION_MODES"]
