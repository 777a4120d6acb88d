"""Running a whole recipe: :func:`run_pipeline` and its :class:`PipelineResult`.

Owns: validation then step-by-step execution, the export step (codec or TFLite file), and one
measured Record per stage.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from .. import codec
from .._keras import keras
from ..data import Dataset
from ..measure import measure
from ..modelio.convert import as_tf_keras
from ..records import ExperimentLog, Record
from ..tflite import TFLiteArtifact, convert, count_params
from .recipe import RECIPES, TECHNIQUES, describe_step, validate_recipe
from .steps import _RUNNERS


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` produced.

    Attributes:
        model: the final Keras model (for a codec export: the model DECODED from the file), or
            None when the pipeline ended in a TFLite file.
        artifact: the final TFLite file, when there is one.
        blob: the bytes of compresslab's compressed file, when the recipe exported with the codec.
        path: where the export was written, if a path was given.
        records: one measured Record per stage (the input model first when measured).
        steps: the validated steps.
        seconds: wall time of the whole pipeline.
    """

    model: object
    artifact: TFLiteArtifact | None
    blob: bytes | None
    path: Path | None
    records: list[Record]
    steps: list[dict]
    seconds: float

    @property
    def final(self) -> Record:
        """The record of the last stage."""
        return self.records[-1]

    @property
    def ratio(self) -> float | None:
        """Dense float32 bytes of the input model / bytes of the final file (codec, else gzip'd TFLite)."""
        reference = self.records[0].dense_float32_bytes
        size = self.final.extra.get("compressed_bytes") if self.blob is not None else self.final.gzip_bytes
        return reference / size if reference and size else None

    def frame(self):
        """The stage records as a DataFrame."""
        from ..records import to_frame

        return to_frame(self.records)


def _emit(progress, text: str) -> None:
    if progress is True:
        print(text, flush=True)


def _measure_stage(current, data, *, name, technique, spec, seed, latency, extra):
    extra = dict(extra)
    if isinstance(current, keras.Model):
        extra["compressed_bytes"] = len(codec.encode(current))
    return measure(current, data, name=name, technique=technique, spec=spec, tflite=True, latency=latency,
                   seed=seed, extra=extra)


def run_pipeline(model, data: Dataset, recipe, log=None, *, name: str | None = None, seed: int = 0,
                 measure_input: bool = True, latency: bool = False, progress: bool | Callable = False
                 ) -> PipelineResult:
    """Validate a recipe, run its steps, and measure a Record per stage.

    Every stage is measured on the held-out test split (a TFLite stage in LiteRT) with its real
    file sizes, and carries the input model as its reference (``reference``, ``reference_bytes``: the
    input's dense float32 bytes), so every ratio, even after a distill step, is against the input.
    Keras stages also get ``extra["compressed_bytes"]``: the bytes of compresslab's compressed file of
    that stage (sparse positions after pruning, codebooks after clustering).

    Args:
        model: a trained tf_keras model (not modified).
        data: the :class:`Dataset` (training split for fine-tuning, test split for accuracy).
        recipe: a list of steps, a JSON text of one, or ``"deep_compression"``.
        log: an :class:`ExperimentLog` or a path: every stage's Record is appended to it.
        name: label prefix of the records (default: the recipe's name or ``"pipeline"``).
        seed: seeds every step's training.
        measure_input: measure the input model first (stage 0, technique ``"baseline"``).
        latency: measure LiteRT latency of every stage too (slower).
        progress: True to print a line per stage, or ``callable(stage, total, record)``.

    Returns:
        A :class:`PipelineResult`.

    Raises:
        ValueError: every problem of the recipe, listed, before any work starts.

    Example:
        >>> result = run_pipeline(model, data, [{"step": "prune", "sparsity": 0.8, "epochs": 1},
        ...                                     {"step": "quantize", "mode": "int8"}])
        >>> result.final.accuracy, result.final.tflite_bytes
    """
    label = name or (recipe if isinstance(recipe, str) and recipe in RECIPES else "pipeline")
    model = as_tf_keras(model)
    steps = validate_recipe(recipe, model, data)
    if not isinstance(model, keras.Model) or not isinstance(data, Dataset):
        raise ValueError("run_pipeline needs a tf_keras Model and a compresslab Dataset")
    log = ExperimentLog(log) if isinstance(log, (str, os.PathLike)) else log
    records: list[Record] = []
    started = time.perf_counter()
    train_progress = progress if progress is True else False

    # Every stage came from the input model: its ratios are against the input's dense float32 bytes
    # (after a distill step, the student's own parameters would make the ratio look small).
    reference = (f"{label}: input", 4 * count_params(model)[0])

    def keep(record: Record, index: int) -> None:
        if index > 0:
            record = replace(record, reference=reference[0], reference_bytes=reference[1])
        records.append(record)
        if log is not None:
            log.append(record)
        if callable(progress) and progress is not True:
            progress(index, len(steps), record)
        size = record.extra.get("compressed_bytes") or record.gzip_bytes
        _emit(progress, f"[{index}/{len(steps)}] {record.name}: accuracy {100 * record.accuracy:.2f}%, "
                        f"{size:,} bytes, {record.extra.get('seconds', 0):.1f} s")

    if measure_input:
        keep(_measure_stage(model, data, name=f"{label}: input", technique="baseline",
                            spec={"recipe": [], "stage": 0}, seed=seed, latency=latency,
                            extra={"stage": 0, "step": "input", "seconds": 0.0}), 0)
    current = model
    blob, path = None, None
    for index, step in enumerate(steps, start=1):
        begin = time.perf_counter()
        spec = {"recipe": steps[:index], "stage": index}
        extra = {"stage": index, "step": step["step"], "label": describe_step(step)}
        if step["step"] == "export":
            if step["format"] == "codec":
                blob = codec.encode(current, name=label)
                if step["path"]:
                    path = codec.write(blob, step["path"])
                current = codec.decode(blob)  # measured from the file, not from the model it came from
                extra.update(compressed_bytes=len(blob),
                             compressed_ratio=4 * current.count_params() / len(blob))
            else:
                if isinstance(current, keras.Model):
                    representative = data.x_train[:300] if step["mode"] == "int8" else None
                    current = convert(current, step["mode"], representative=representative, name=label)
                if step["path"]:
                    path = current.save(step["path"])
            extra["seconds"] = time.perf_counter() - begin
            record = measure(current, data, name=f"{label}: {index}. {describe_step(step)}",
                             technique=TECHNIQUES["export"], spec=spec, tflite=True, latency=latency, seed=seed,
                             extra=extra)
            if path is not None:
                record.extra["path"] = str(path)
            keep(record, index)
            continue
        current = _RUNNERS[step["step"]](current, data, step, seed, train_progress)
        extra["seconds"] = time.perf_counter() - begin
        keep(_measure_stage(current, data, name=f"{label}: {index}. {describe_step(step)}",
                            technique=TECHNIQUES[step["step"]], spec=spec, seed=seed, latency=latency,
                            extra=extra), index)
    artifact = current if isinstance(current, TFLiteArtifact) else None
    final_model = current if isinstance(current, keras.Model) else None
    return PipelineResult(final_model, artifact, blob, path, records, steps, time.perf_counter() - started)
