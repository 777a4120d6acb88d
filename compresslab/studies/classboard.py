"""The class board: one shared study where every student's measured variants meet.

Owns: creating a class study (:func:`create_class`), submitting Records to it from any machine
(:func:`submit`: one finished Optuna trial per record, objectives = smallest stored bytes and
accuracy, the student's name or an anonymous id with it; a record already submitted by the same
student is not added twice) and reading the whole class back (:func:`class_records`), which
``to_frame``, the TradeoffBoard and ``write_report`` take like any list of Records.

Example:
    >>> cl.studies.create_class("lab-3", storage="postgresql+psycopg2://teacher@server/compresslab")
    >>> cl.studies.submit("lab-3", records, student="Lin", storage=...)        # on each student's laptop
    >>> cl.to_frame(cl.studies.class_records("lab-3", storage=...))            # on the lecturer's screen
"""

from __future__ import annotations

import getpass
import hashlib
import math
import os
import socket
from collections.abc import Iterable

from ..records import Record
from ..sizes import deployable_bytes
from .storage import open_storage
from .study import FORMAT_VERSION, RECORD_KEY, _create, _optuna, load_study, study_info, study_records

STUDENT_KEY = "student"
MAX_STUDENT_NAME = 80


def create_class(name: str, storage=None, *, title: str = ""):
    """Create (or reopen) a class study that students submit their variants to.

    Args:
        name: the class study's name, e.g. ``"lab-3"``.
        storage: None (the default SQLite file: one machine), or a URL every student's machine reaches.
        title: shown on the board and in the report.
    """
    info = {"kind": "class", "version": FORMAT_VERSION, "title": str(title)}
    return _create(name, storage, info, ["minimize", "maximize"])


def anonymous_id() -> str:
    """A stable anonymous id for this user on this machine (``anon-`` and 6 hex digits)."""
    seed = f"{getpass.getuser()}@{socket.gethostname()}"
    return "anon-" + hashlib.sha256(seed.encode()).hexdigest()[:6]


def _student(student) -> str:
    if student is None:
        return anonymous_id()
    if not isinstance(student, str) or not student.strip():
        raise ValueError(f"student is {student!r}; give a name (text) or None for an anonymous id")
    if len(student) > MAX_STUDENT_NAME:
        raise ValueError(f"student name has {len(student)} characters; at most {MAX_STUDENT_NAME} are allowed")
    return student.strip()


def _size(record: Record) -> float:
    size = deployable_bytes(record)
    if math.isinf(size):  # nothing stored was measured: fall back to the dense float32 figure, said so
        size = float(record.dense_float32_bytes or 0)
    return size


def submit(name: str, records: Record | Iterable[Record], *, student: str | None = None, storage=None) -> int:
    """Add measured Records to a class study; returns how many were new.

    Args:
        name: the class study's name.
        records: one Record or several (e.g. a panel's ``records`` or ``cl.ExperimentLog(path)``).
        student: the student's name; None gives an anonymous id (:func:`anonymous_id`).
        storage: where the class study lives.

    Raises:
        ValueError: no such class study, a study of another kind, a record without accuracy, a bad name.
        TypeError: something that is not a Record.
    """
    optuna = _optuna()
    who = _student(student)
    records = [records] if isinstance(records, Record) else list(records)
    for record in records:
        if not isinstance(record, Record):
            raise TypeError(f"submit takes compresslab Records, got a {type(record).__name__}")
        if record.accuracy is None:
            raise ValueError(f"record {record.name!r} has no accuracy; only measured variants go on the board")
    storage = open_storage(storage)
    study = load_study(name, storage)
    kind = study_info(study)["kind"]
    if kind != "class":
        raise ValueError(f"study {name!r} is a {kind} study, not a class board; create one with create_class")
    already = {(t.user_attrs.get(STUDENT_KEY), t.user_attrs.get("key")) for t in study.get_trials(deepcopy=False)}
    added = 0
    for record in records:
        if (who, record.key) in already:
            continue
        payload = record.to_dict()
        payload["extra"] = {**payload.get("extra", {}), STUDENT_KEY: who}
        study.add_trial(optuna.create_trial(
            state=optuna.trial.TrialState.COMPLETE, values=[_size(record), float(record.accuracy)],
            user_attrs={RECORD_KEY: payload, STUDENT_KEY: who, "key": record.key}))
        already.add((who, record.key))
        added += 1
    return added


def class_records(name: str, storage=None) -> list[Record]:
    """Every student's submitted Records, in submission order (``extra["student"]`` says whose)."""
    study = load_study(name, storage)
    return study_records(study)


def import_log(log, name: str, *, student: str | None = None, storage=None) -> int:
    """Copy an ExperimentLog's records (or a ``.jsonl`` path's) into a class study; returns how many were new.

    The study is created when it does not exist. Running it twice adds nothing the second time.
    """
    from ..records import ExperimentLog, load_records

    records = load_records(ExperimentLog(log) if isinstance(log, (str, os.PathLike)) else log)
    create_class(name, storage)
    return submit(name, records, student=student, storage=storage)


def export_log(study_or_name, path, *, storage=None):
    """Append a study's records (any kind) to an ExperimentLog at ``path``, skipping those it holds.

    Returns:
        The :class:`~compresslab.records.ExperimentLog`.
    """
    from ..records import ExperimentLog

    study = load_study(study_or_name, storage) if isinstance(study_or_name, str) else study_or_name
    log = ExperimentLog(path)
    present = log.keys()
    log.extend(record for record in study_records(study) if record.key not in present)
    return log


__all__ = ["create_class", "submit", "class_records", "anonymous_id", "import_log", "export_log"]
