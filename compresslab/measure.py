"""Honest measurement: every figure named by what it is, accuracy on held-out data.

:func:`measure` turns a Keras model or a :class:`~compresslab.tflite.TFLiteArtifact` into a
:class:`~compresslab.records.Record`:

* ``params``, ``nonzero_params`` and ``dense_float32_bytes = 4 * params`` (the reference for ratios);
* ``tflite_bytes``: a real float32 conversion of a Keras model, or the artifact's own bytes;
* ``gzip_bytes``: ``gzip -9`` of that flatbuffer (what pruning and clustering buy);
* ``entropy_bytes``: the Shannon bound of the weights' values, summed over tensors;
* ``accuracy`` on the test split: Keras for a Keras model, the LiteRT interpreter for an artifact;
* ``latency_ms``: median single-image LiteRT latency after warm-up, with ``latency_threads``.

Example:
    >>> record = measure(model, data, name="float32 baseline")
    >>> record.accuracy, record.gzip_bytes
"""

from __future__ import annotations

from .data import Dataset
from .modelio.convert import as_tf_keras
from .models import accuracy as keras_accuracy
from .models import check_model_fits
from .records import Record, with_reference
from .sizes import entropy_bytes  # re-exported: it lived here first
from .tflite import TFLiteArtifact, convert, count_params, parameter_weights


def spec_dict(spec) -> dict:
    """A spec dataclass (with ``to_dict``), a dict, or None as a plain dict."""
    if spec is None:
        return {}
    if hasattr(spec, "to_dict"):
        return spec.to_dict()
    if isinstance(spec, dict):
        return dict(spec)
    raise ValueError(f"spec must be a spec object with to_dict(), a dict or None, not {type(spec).__name__}")


def measure(model_or_artifact, data: Dataset, *, name: str, technique: str = "baseline", spec=None,
            tflite: bool = True, latency: bool = True, threads: int = 1, seed: int | None = None,
            extra: dict | None = None, reference: Record | None = None) -> Record:
    """Measure a model variant into a :class:`Record`.

    Args:
        model_or_artifact: a tf_keras model or a :class:`TFLiteArtifact`.
        data: the data set; accuracy is measured on ``data.x_test`` / ``data.y_test`` only.
        name: label of the variant.
        technique: the technique that produced it (``"baseline"``, ``"quantize"``, ...).
        spec: the technique's spec (object with ``to_dict()`` or dict).
        tflite: convert a Keras model to float32 TFLite to fill ``tflite_bytes`` and ``gzip_bytes``
            (a second or two); False leaves them empty.
        latency: measure ``latency_ms`` in LiteRT (converting a Keras model when needed).
        threads: CPU threads for the latency measurement.
        seed: the seed of the run that produced the variant.
        extra: further named figures to store in ``Record.extra``.
        reference: the Record of the model this variant came from when it has other parameters
            (a distilled student: its teacher's); ratios are then against that model.

    Returns:
        The :class:`Record`.

    Raises:
        ValueError: the model does not fit the data, or the input is neither a model nor an artifact.

    Example:
        >>> measure(cl.baseline(), cl.load_dataset(), name="baseline").accuracy
    """
    if not isinstance(data, Dataset):
        raise ValueError(f"data must be a compresslab Dataset, got {type(data).__name__}; "
                         "load one with cl.load_dataset")
    spec_payload = spec_dict(spec)
    sample = data.x_test[:1]
    if isinstance(model_or_artifact, TFLiteArtifact):
        artifact = model_or_artifact
        params, nonzero = artifact.params, artifact.nonzero_params
        record = Record(
            name=name, technique=technique, spec=spec_payload, dataset=data.name,
            accuracy=artifact.accuracy(data), accuracy_backend="litert",
            params=params, nonzero_params=nonzero,
            dense_float32_bytes=None if params is None else 4 * params,
            tflite_bytes=artifact.size_bytes, gzip_bytes=artifact.gzip_bytes,
            latency_ms=artifact.latency_ms(sample, threads=threads) if latency else None,
            latency_threads=threads if latency else None,
            seed=seed, extra={"tflite_mode": artifact.mode, **artifact.info, **(extra or {})},
        )
        return record if reference is None else with_reference(record, reference)
    model = as_tf_keras(model_or_artifact, role="model (or a TFLiteArtifact)")
    check_model_fits(model, data)
    params, nonzero = count_params(model)
    artifact = convert(model, "float32") if (tflite or latency) else None
    record = Record(
        name=name, technique=technique, spec=spec_payload, dataset=data.name,
        accuracy=keras_accuracy(model, data), accuracy_backend="keras",
        params=params, nonzero_params=nonzero, dense_float32_bytes=4 * params,
        tflite_bytes=artifact.size_bytes if tflite else None,
        gzip_bytes=artifact.gzip_bytes if tflite else None,
        entropy_bytes=entropy_bytes([w.numpy() for w in parameter_weights(model)]),
        latency_ms=artifact.latency_ms(sample, threads=threads) if latency else None,
        latency_threads=threads if latency else None,
        seed=seed, extra=dict(extra or {}),
    )
    return record if reference is None else with_reference(record, reference)


__all__ = ["measure", "entropy_bytes", "spec_dict"]
