"""Records of measured model variants, DataFrames of them, and the append-only experiment log.

One :class:`Record` per measured variant. Plots and reports read DataFrames made by
:func:`to_frame`; experiments persist records in an :class:`ExperimentLog`, a JSON Lines
file that is flushed and fsync'd after every record so a killed sweep loses nothing
that finished.

Example:
    >>> log = ExperimentLog("runs/quantize.jsonl")
    >>> log.append(record)
    >>> frame = to_frame(log)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

import numpy as np


def _plain(value):
    """Make numpy scalars and arrays JSON-friendly."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class Record:
    """The measured figures of one model variant.

    Attributes:
        name: label of the variant (e.g. ``"int8 PTQ"``).
        technique: ``"baseline"``, ``"quantize"``, ``"prune"``, ``"cluster"``, ``"distill"``, ``"pipeline"``...
        spec: the technique's settings as a plain dict (``spec.to_dict()``).
        dataset: name of the data set the accuracy was measured on.
        accuracy: top-1 accuracy on the held-out test split, in [0, 1].
        accuracy_backend: ``"keras"`` or ``"litert"`` (the interpreter that produced ``accuracy``).
        params: all parameters of the model.
        nonzero_params: parameters that are not exactly zero.
        dense_float32_bytes: ``4 * params``, the reference for every compression ratio.
        tflite_bytes: bytes of the real converted TFLite flatbuffer.
        gzip_bytes: bytes of that flatbuffer after ``gzip -9``.
        entropy_bytes: Shannon bound of the weights' values (sum over tensors of n * H / 8).
        latency_ms: median single-image latency in LiteRT after warm-up.
        latency_threads: CPU threads the latency was measured with.
        seed: the seed of the run that produced the variant, when there was one.
        timestamp: ISO 8601 time of measurement (UTC).
        extra: further named figures (e.g. ``sparse_bytes``, ``compressed_bytes``).
    """

    name: str
    technique: str = "baseline"
    spec: dict = field(default_factory=dict)
    dataset: str = ""
    accuracy: float | None = None
    accuracy_backend: str = "keras"
    params: int | None = None
    nonzero_params: int | None = None
    dense_float32_bytes: int | None = None
    tflite_bytes: int | None = None
    gzip_bytes: int | None = None
    entropy_bytes: float | None = None
    latency_ms: float | None = None
    latency_threads: int | None = None
    seed: int | None = None
    timestamp: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Record.name is {self.name!r}; it must be a non-empty string")
        if self.accuracy is not None and not 0.0 <= float(self.accuracy) <= 1.0:
            raise ValueError(f"Record.accuracy is {self.accuracy}; it must be a fraction in [0, 1]")
        if self.spec is None:
            self.spec = {}

    @property
    def sparsity(self) -> float | None:
        if not self.params or self.nonzero_params is None:
            return None
        return 1.0 - self.nonzero_params / self.params

    @property
    def key(self) -> str:
        """Identity of the variant (name, technique, spec, data set, seed): a rerun with the same key is a repeat."""
        payload = json.dumps(
            {"name": self.name, "technique": self.technique, "spec": _plain(self.spec),
             "dataset": self.dataset, "seed": self.seed},
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:20]

    def to_dict(self) -> dict:
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, payload: dict) -> Record:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(payload) - known)
        if unknown:
            raise ValueError(f"unknown Record fields {unknown}; known fields are {sorted(known)}")
        return cls(**payload)


def to_frame(records: Iterable[Record] | ExperimentLog):
    """One row per record, with derived columns ``sparsity``, ``ratio_vs_float32_gzip`` and ``accuracy_pct``.

    ``extra`` figures become columns of their own (prefixed ``extra.``) and ``spec`` stays a dict
    column plus a JSON text column ``spec_json`` (for tables and hover text).

    Example:
        >>> to_frame([record]).loc[0, "gzip_bytes"]
    """
    import pandas as pd

    rows = []
    for record in records:
        row = record.to_dict()
        extra = row.pop("extra") or {}
        row["spec_json"] = json.dumps(row["spec"], sort_keys=True)
        row["sparsity"] = record.sparsity
        row["accuracy_pct"] = None if record.accuracy is None else 100.0 * record.accuracy
        row["ratio_vs_float32_gzip"] = (
            record.dense_float32_bytes / record.gzip_bytes
            if record.dense_float32_bytes and record.gzip_bytes else None
        )
        for key, value in extra.items():
            row[f"extra.{key}"] = value
        rows.append(row)
    columns = [f.name for f in fields(Record) if f.name != "extra"]
    columns += ["spec_json", "sparsity", "accuracy_pct", "ratio_vs_float32_gzip"]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=columns)
    ordered = [c for c in columns if c in frame.columns] + [c for c in frame.columns if c not in columns]
    return frame[ordered]


class ExperimentLog:
    """An append-only JSON Lines file of :class:`Record` s.

    Every :meth:`append` writes one line, flushes and fsyncs, so a process killed mid-sweep
    leaves every finished record intact. A torn last line (a write cut short by a crash) is
    skipped with a warning when reading, and moved aside to ``<log>.torn`` before the next
    append so the log stays valid. Opening an existing log resumes it.

    Example:
        >>> log = ExperimentLog("runs/sweep.jsonl")
        >>> if record.key not in log.keys(): log.append(record)
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if self.path.exists() and self.path.is_dir():
            raise ValueError(f"{self.path} is a folder; an experiment log is a .jsonl file")

    def _read_lines(self) -> tuple[list[Record], bool]:
        if not self.path.exists():
            return [], False
        raw = self.path.read_bytes()
        if not raw:
            return [], False
        lines = raw.split(b"\n")
        torn = not raw.endswith(b"\n")
        complete, tail = (lines[:-1], lines[-1]) if torn else (lines[:-1], b"")
        records = []
        for number, line in enumerate(complete, start=1):
            if not line.strip():
                continue
            try:
                records.append(Record.from_dict(json.loads(line)))
            except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError) as error:
                raise ValueError(
                    f"{self.path}, line {number} is not a valid record ({error}); the log is corrupt "
                    "beyond a torn last line, so it was not read"
                ) from None
        if torn and tail.strip():
            try:  # a final record written whole but without its newline is still a record
                records.append(Record.from_dict(json.loads(tail)))
                torn = False
            except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError):
                warnings.warn(
                    f"{self.path}: skipped a torn last line ({len(tail)} bytes), most likely a write "
                    "cut short by a crash",
                    stacklevel=3,
                )
        return records, torn

    def records(self) -> list[Record]:
        """Every complete record in the order written."""
        return self._read_lines()[0]

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records())

    def __len__(self) -> int:
        return len(self.records())

    def keys(self) -> set[str]:
        """The :attr:`Record.key` of every record (to skip work a rerun has already done)."""
        return {record.key for record in self.records()}

    def _repair_tail(self) -> None:
        raw = self.path.read_bytes()
        if not raw or raw.endswith(b"\n"):
            return
        cut = raw.rfind(b"\n") + 1
        tail = raw[cut:]
        try:
            Record.from_dict(json.loads(tail))
            with open(self.path, "ab") as handle:  # a whole record missing only its newline
                handle.write(b"\n")
                handle.flush()
                os.fsync(handle.fileno())
            return
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError):
            pass
        with open(self.path.with_name(self.path.name + ".torn"), "ab") as aside:
            aside.write(tail + b"\n")
            aside.flush()
            os.fsync(aside.fileno())
        with open(self.path, "r+b") as handle:
            handle.truncate(cut)
            handle.flush()
            os.fsync(handle.fileno())
        warnings.warn(f"{self.path}: moved a torn last line to {self.path.name}.torn before appending",
                      stacklevel=3)

    def append(self, record: Record) -> Record:
        """Append one record durably (write, flush, fsync) and return it."""
        if not isinstance(record, Record):
            raise ValueError(f"ExperimentLog.append takes a Record, got {type(record).__name__}")
        line = json.dumps(record.to_dict(), sort_keys=True, allow_nan=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self._repair_tail()
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        return record

    def extend(self, records: Iterable[Record]) -> None:
        for record in records:
            self.append(record)

    def __repr__(self) -> str:
        return f"ExperimentLog({str(self.path)!r})"


def load_records(source) -> list[Record]:
    """Records from a log path, an :class:`ExperimentLog`, or an iterable of records."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise ValueError(f"{path} does not exist; expected an experiment log (.jsonl)")
        return ExperimentLog(path).records()
    if isinstance(source, ExperimentLog):
        return source.records()
    records = list(source)
    for item in records:
        if not isinstance(item, Record):
            raise ValueError(f"expected Record objects, got {type(item).__name__}")
    return records


__all__ = ["Record", "to_frame", "ExperimentLog", "load_records"]
