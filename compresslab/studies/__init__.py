"""Compression studies on shared storage: sweeps, searches and a class board as Optuna studies.

* storage: :func:`open_storage`, :func:`default_storage_url` (SQLite in the data folder by default;
  any SQLAlchemy URL, e.g. PostgreSQL, shares a study across machines)
* sweeps: :func:`create_sweep` (a grid, one trial per configuration), :func:`run_worker` (join and
  pull trials until done), :func:`run_local_workers`
* results: :func:`study_records` (Records, for ``to_frame``, boards and reports), :func:`progress`
* the class board: :func:`create_class`, :func:`submit`, :func:`class_records`
* JSON Lines logs: :func:`import_log` (a log into a study), :func:`export_log` (a study into a log)

Example:
    >>> study = cl.studies.create_sweep("grid", model, data, {"steps": ["prune"], "prune.sparsity": [0.5, 0.9]})
    >>> cl.studies.run_worker("grid"); cl.to_frame(cl.studies.study_records(study))
"""

from __future__ import annotations

from .classboard import class_records, create_class, export_log, import_log, submit
from .storage import BlobStore, default_storage_url, open_storage, storage_url
from .study import (
    StudyProgress,
    create_sweep,
    load_study,
    progress,
    run_local_workers,
    run_worker,
    study_info,
    study_records,
)

__all__ = ["open_storage", "default_storage_url", "storage_url", "BlobStore", "create_sweep", "load_study",
           "run_worker", "run_local_workers", "study_records", "study_info", "progress", "StudyProgress",
           "create_class", "submit", "class_records", "import_log", "export_log"]
