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

import contextlib
import hashlib
import json
import math
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ._io import _fsync_folder, _write_temp, locked


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


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# Field groups of a Record, by the check they need (see _check_record).
_TEXTS = ("technique", "dataset", "accuracy_backend", "timestamp")
_COUNTS = ("params", "nonzero_params", "dense_float32_bytes", "tflite_bytes", "gzip_bytes", "reference_bytes")
_AMOUNTS = ("entropy_bytes", "latency_ms")


def _record_error(name: str, value, allowed: str) -> ValueError:
    return ValueError(f"Record.{name} is {_short(value)}; {allowed}")


def _as_int(name: str, value, low: int | None):
    """``value`` as a plain int (numpy integers accepted), or the field's error."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise _record_error(name, value, "it must be a whole number" + (f" >= {low}" if low is not None else "")
                            + " or None")
    value = int(value)
    if low is not None and value < low:
        raise _record_error(name, value, f"it must be a whole number >= {low} or None")
    return value


def _as_float(name: str, value, low: float, high: float | None = None):
    """``value`` as a plain finite float in [low, high], or the field's error."""
    if value is None:
        return None
    allowed = f"it must be a finite number in [{low:g}, {'inf' if high is None else f'{high:g}'}] or None"
    if high == 1.0 and low == 0.0:
        allowed = "it must be a fraction in [0, 1] or None"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _record_error(name, value, allowed)
    number = float(value)
    if not math.isfinite(number) or number < low or (high is not None and number > high):
        raise _record_error(name, value, allowed)
    return number


def _as_mapping(name: str, value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise _record_error(name, value, "it must be a dict with string keys")
    return value


def _check_record(record: Record) -> None:
    """Type- and range-check every field of ``record`` in place (numpy scalars become plain numbers).

    Raises:
        ValueError: ``Record.<field> is <value>; <what is allowed>``.
    """
    if not isinstance(record.name, str) or not record.name:
        raise _record_error("name", record.name, "it must be a non-empty string")
    for name in _TEXTS:
        if not isinstance(getattr(record, name), str):
            raise _record_error(name, getattr(record, name), "it must be a string")
    for name in _COUNTS:
        setattr(record, name, _as_int(name, getattr(record, name), 0))
    record.latency_threads = _as_int("latency_threads", record.latency_threads, 1)
    record.seed = _as_int("seed", record.seed, None)
    record.accuracy = _as_float("accuracy", record.accuracy, 0.0, 1.0)
    for name in _AMOUNTS:
        setattr(record, name, _as_float(name, getattr(record, name), 0.0))
    record.spec = _as_mapping("spec", record.spec)
    record.extra = _as_mapping("extra", record.extra)
    if record.reference is not None and not (isinstance(record.reference, str) and record.reference):
        raise _record_error("reference", record.reference, "it must be the reference model's name or None")
    if record.params is not None and record.nonzero_params is not None and record.nonzero_params > record.params:
        raise _record_error("nonzero_params", record.nonzero_params,
                            f"it cannot exceed params ({record.params})")


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
        dense_float32_bytes: ``4 * params``: the model's own dense float32 size.
        tflite_bytes: bytes of the real converted TFLite flatbuffer.
        gzip_bytes: bytes of that flatbuffer after ``gzip -9``.
        entropy_bytes: Shannon bound of the weights' values (sum over tensors of n * H / 8).
        latency_ms: median single-image latency in LiteRT after warm-up.
        latency_threads: CPU threads the latency was measured with.
        seed: the seed of the run that produced the variant, when there was one.
        timestamp: ISO 8601 time of measurement (UTC).
        extra: further named figures (e.g. ``sparse_bytes``, ``compressed_bytes``).
        reference: name of the model the variant came from, when it is another model (the teacher
            of a distilled student); None when the variant has the parameters of its reference.
        reference_bytes: that reference's dense float32 bytes. Every "x smaller" ratio divides
            :func:`ratio_reference_bytes` (this, else ``dense_float32_bytes``) by the variant's size.
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
    reference: str | None = None
    reference_bytes: int | None = None

    def __post_init__(self):
        _check_record(self)

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
        """A record from its :meth:`to_dict` form, every field checked.

        Raises:
            ValueError: not a dict, an unknown or missing field, or a field of the wrong type
                or out of range (the message names the field and the value).
        """
        if not isinstance(payload, dict):
            raise ValueError(f"a Record is a JSON object (dict), got {type(payload).__name__} {_short(payload)}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(payload) - known)
        if unknown:
            raise ValueError(f"unknown Record fields {unknown}; known fields are {sorted(known)}")
        if "name" not in payload:
            raise ValueError("Record field 'name' is missing; every record needs a name")
        return cls(**payload)


def ratio_reference_bytes(record: Record) -> int | None:
    """The bytes every "x smaller" ratio of ``record`` is against: its reference's dense float32 size.

    That is ``reference_bytes`` when the variant came from another model (a distilled student: the
    teacher), else the variant's own ``dense_float32_bytes`` (pruning, clustering and quantization
    keep the parameters of the model they came from).
    """
    return record.reference_bytes if record.reference_bytes is not None else record.dense_float32_bytes


def with_reference(record: Record, reference: Record) -> Record:
    """``record`` measured against ``reference``, the model it came from (e.g. a student's teacher).

    Returns:
        A copy of ``record`` with ``reference`` (its name) and ``reference_bytes`` (its dense
        float32 bytes) set.

    Example:
        >>> student = with_reference(measure(distilled, data, name="student"), teacher_record)
    """
    if not isinstance(reference, Record):
        raise TypeError(f"reference must be a Record (of the model the variant came from), got "
                        f"{type(reference).__name__}")
    return replace(record, reference=reference.name, reference_bytes=reference.dense_float32_bytes)


def to_frame(records):
    """One row per record, with derived columns ``sparsity``, ``ratio_vs_float32_gzip`` and ``accuracy_pct``.

    Also ``ratio_reference_bytes`` (see :func:`ratio_reference_bytes`): what the variant's size
    ratios are against.

    ``records``: Records, an :class:`ExperimentLog` or a log path, or a compresslab study
    (see :func:`load_records`).

    ``extra`` figures become columns of their own (prefixed ``extra.``) and ``spec`` stays a dict
    column plus a JSON text column ``spec_json`` (for tables and hover text).

    Example:
        >>> to_frame([record]).loc[0, "gzip_bytes"]
    """
    import pandas as pd

    rows = []
    for record in load_records(records):
        row = record.to_dict()
        extra = row.pop("extra") or {}
        row["spec_json"] = json.dumps(row["spec"], sort_keys=True)
        row["sparsity"] = record.sparsity
        row["accuracy_pct"] = None if record.accuracy is None else 100.0 * record.accuracy
        row["ratio_reference_bytes"] = ratio_reference_bytes(record)
        row["ratio_vs_float32_gzip"] = (
            record.dense_float32_bytes / record.gzip_bytes
            if record.dense_float32_bytes and record.gzip_bytes else None
        )
        for key, value in extra.items():
            row[f"extra.{key}"] = value
        rows.append(row)
    columns = [f.name for f in fields(Record) if f.name != "extra"]
    columns += ["spec_json", "sparsity", "accuracy_pct", "ratio_reference_bytes", "ratio_vs_float32_gzip"]
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
    append so the log stays valid. Opening an existing log resumes it. Several processes on one
    machine may append at once: appends hold an exclusive ``flock`` on the log (readers a shared
    one), so a half-written line of a live writer is never taken for a crash leftover.
    Every line is type-checked on read; a bad line raises ``ValueError`` naming the file, the
    line number and the field.

    Example:
        >>> log = ExperimentLog("runs/sweep.jsonl")
        >>> if record.key not in log.keys(): log.append(record)
    """

    def __init__(self, path: str | os.PathLike):
        if not isinstance(path, (str, os.PathLike)):
            raise ValueError(f"ExperimentLog path is {_short(path)}; it must be a .jsonl file path (str or Path)")
        self.path = Path(path)
        if self.path.exists() and self.path.is_dir():
            raise ValueError(f"{self.path} is a folder; an experiment log is a .jsonl file")

    def _read_lines(self) -> tuple[list[Record], bool]:
        try:
            handle = open(self.path, "rb")
        except FileNotFoundError:
            return [], False
        with handle, locked(handle, exclusive=False):  # no writer is mid-line while we read
            raw = handle.read()
        if not raw:
            return [], False
        lines = raw.split(b"\n")
        torn = not raw.endswith(b"\n")
        complete, tail = lines[:-1], lines[-1]
        records = []
        for number, line in enumerate(complete, start=1):
            if not line.strip():
                continue
            try:
                records.append(_parse_line(line))
            except ValueError as error:
                raise ValueError(
                    f"{self.path}, line {number} is not a valid record ({error}); the log is corrupt "
                    "beyond a torn last line, so it was not read"
                ) from None
        if torn and tail.strip():
            try:  # a final record written whole but without its newline is still a record
                records.append(_parse_line(tail))
                torn = False
            except ValueError:
                warnings.warn(
                    f"{self.path}, line {len(lines)}: skipped a torn last line ({len(tail)} bytes), most "
                    "likely a write cut short by a crash",
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

    def _repair_tail(self, handle) -> None:
        """Move a torn last line aside. The caller holds the exclusive lock, so no other writer
        is mid-line: an unterminated tail can only be left by a writer that died."""
        tail, cut = _unterminated_tail(handle)
        if cut is None:
            return
        try:
            _parse_line(tail)
            handle.write(b"\n")  # a whole record missing only its newline
            return
        except ValueError:
            pass
        with open(self.path.with_name(self.path.name + ".torn"), "ab") as aside:
            aside.write(tail + b"\n")
            aside.flush()
            os.fsync(aside.fileno())
        handle.truncate(cut)
        warnings.warn(f"{self.path}: moved a torn last line to {self.path.name}.torn before appending",
                      stacklevel=3)

    def append(self, record: Record) -> Record:
        """Append one record durably (write, flush, fsync) and return it.

        Several processes may append to one log at once: each append holds an exclusive OS lock
        on the log file while it repairs a torn tail and writes its line.
        """
        if not isinstance(record, Record):
            raise ValueError(f"ExperimentLog.append takes a Record, got {type(record).__name__}")
        line = (json.dumps(record.to_dict(), sort_keys=True, allow_nan=False) + "\n").encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise NotADirectoryError(f"cannot write {self.path}: a part of {self.path.parent} is a file, "
                                     "not a folder") from None
        with open(self.path, "a+b") as handle, locked(handle):
            self._repair_tail(handle)
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        return record

    def extend(self, records: Iterable[Record]) -> None:
        for record in records:
            self.append(record)

    def __repr__(self) -> str:
        return f"ExperimentLog({str(self.path)!r})"


def _parse_line(line: bytes) -> Record:
    """One log line as a Record; every failure is a ValueError naming what is wrong."""
    try:
        payload = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"not JSON: {error}") from None
    try:
        return Record.from_dict(payload)
    except TypeError as error:  # defensive: a signature mismatch the checks above missed
        raise ValueError(str(error)) from None


def _unterminated_tail(handle, chunk: int = 1 << 16) -> tuple[bytes, int | None]:
    """The bytes after the file's last newline and where they start (None when it ends in one).

    Reads backwards from the end, so an append costs the same whatever the log's length.
    """
    size = os.fstat(handle.fileno()).st_size
    if size == 0 or os.pread(handle.fileno(), 1, size - 1) == b"\n":
        return b"", None
    end, tail = size, b""
    while end > 0:
        start = max(0, end - chunk)
        block = os.pread(handle.fileno(), end - start, start) + tail
        newline = block.rfind(b"\n")
        if newline >= 0:
            return block[newline + 1:], start + newline + 1
        tail, end = block, start
    return tail, 0


def load_records(source) -> list[Record]:
    """Records from a log path, an :class:`ExperimentLog`, a compresslab study, or an iterable of records.

    A study (an Optuna study made by :mod:`compresslab.studies`: a sweep, a search or a class board)
    gives the Record of every finished trial, so ``to_frame``, the TradeoffBoard and ``write_report``
    read it as they read a log.
    """
    if hasattr(source, "get_trials") and hasattr(source, "study_name"):
        from .studies import study_records

        return study_records(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"{path} {'is a folder' if path.is_dir() else 'does not exist'}; "
                             "expected an experiment log (.jsonl)")
        return ExperimentLog(path).records()
    if isinstance(source, ExperimentLog):
        return source.records()
    if isinstance(source, (dict, bytes)) or not isinstance(source, Iterable):
        raise ValueError(f"expected a log path, an ExperimentLog or Record objects, got {type(source).__name__} "
                         f"{_short(source)}")
    records = list(source)
    for item in records:
        if not isinstance(item, Record):
            raise ValueError(f"expected Record objects, got {type(item).__name__} {_short(item)}")
    return records


# -- result collection: a student's export file, the lecturer's merge ---------------------------

STUDENT_KEY = "student"  # the same extra key the class board (studies.classboard) uses
EXPORTED_KEY = "exported_at"


def _file_label(student: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in student)[:40].strip("_") or "student"


def export_results(records, folder, *, student: str) -> Path:
    """Write a student's records to a NEW file ``folder/results-<student>-<UTC time>.jsonl`` (an experiment log).

    Each record carries ``extra["student"]`` (kept when it already names one) and ``extra["exported_at"]``.
    An existing file is never replaced (a second export in the same second gets ``-2``...), and the file
    appears whole or not at all.

    Args:
        records: Records, an :class:`ExperimentLog` or a log path (see :func:`load_records`).
        folder: where to write (created when missing).
        student: the student's name (1 to 80 characters).

    Returns:
        The path written, e.g. ``export_results(lab.records, "results", student="Lin")``.

    Raises:
        ValueError: an empty or over-long name, or no records.
    """
    if not isinstance(student, str) or not student.strip() or len(student.strip()) > 80:
        raise ValueError(f"student is {_short(student)}; give your name (1 to 80 characters)")
    records = load_records(records)
    if not records:
        raise ValueError("there are no measured variants to export yet; measure one first")
    now = datetime.now(UTC)
    stamp = now.isoformat(timespec="seconds")
    lines = []
    for record in records:
        extra = {STUDENT_KEY: student.strip(), **record.extra, EXPORTED_KEY: stamp}
        lines.append(json.dumps(replace(record, extra=extra).to_dict(), sort_keys=True, allow_nan=False))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"results-{_file_label(student.strip())}-{now.strftime('%Y%m%dT%H%M%SZ')}"
    temporary = _write_temp(folder / f"{stem}.jsonl", ("\n".join(lines) + "\n").encode("utf-8"))
    try:
        for number in range(1, 1000):
            target = folder / (f"{stem}.jsonl" if number == 1 else f"{stem}-{number}.jsonl")
            with contextlib.suppress(FileExistsError):
                os.link(temporary, target)  # unlike a rename, a link never replaces an existing file
                break
        else:  # pragma: no cover - a thousand exports in one second
            raise OSError(f"no free file name for {stem} in {folder}")
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_folder(folder)
    return target


def merge_folder(folder) -> list[Record]:
    """Every record of every ``.jsonl`` file in ``folder`` (read in name order), each student's repeats once.

    A record is identified by its student (``extra["student"]``, else the file's name) and
    :attr:`Record.key`: a student who exported twice counts once, two students who measured the same
    variant both count (the class sees the spread). Every merged record keeps ``extra["student"]``.

    Raises:
        ValueError: no such folder, no ``.jsonl`` file in it, or a file that is not a valid export
            (naming the file and the line).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder; give the folder holding the students' result files")
    paths = sorted(path for path in folder.glob("*.jsonl") if path.is_file())
    if not paths:
        raise ValueError(f"{folder} holds no .jsonl result files (a student's export is named results-*.jsonl)")
    merged, seen = [], set()
    for path in paths:
        lines = path.read_bytes().split(b"\n")
        if not any(line.strip() for line in lines):
            raise ValueError(f"{path} is empty; it is not a result file (remove it or ask for a new export)")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = _parse_line(line)
            except ValueError as error:
                raise ValueError(f"{path}, line {number} is not a valid record ({error}); remove the file or "
                                 "ask its student for a new export") from None
            student = str(record.extra.get(STUDENT_KEY) or path.stem)
            if (student, record.key) not in seen:
                seen.add((student, record.key))
                merged.append(replace(record, extra={**record.extra, STUDENT_KEY: student}))
    return merged


__all__ = ["Record", "to_frame", "ExperimentLog", "load_records", "export_results", "merge_folder"]
