"""compresslab: teach and experiment with the compression of Keras CNNs.

The public API, grouped by what you want to do (everything else is internal):

* data and models: ``load_dataset``, ``Dataset``, ``models`` (zoo), ``train``, ``baseline``,
  ``load_model``, ``save_model``
* measure: ``measure``, ``Record``, ``to_frame``, ``ExperimentLog``
* compress: ``QuantSpec`` + ``quantize``, ``PruneSpec`` + ``prune``, ``ClusterSpec`` + ``cluster``,
  ``DistillSpec`` + ``distill``, ``sparse_vd`` (sparse variational dropout), ``lowbit`` (real 8/4/2-bit
  TFLite files through ai-edge-quantizer)
* combine and report: ``run_pipeline``, ``autocompress``, ``sweep``, ``write_report``, ``sizes``
* share: ``studies`` (Optuna studies on SQLite or PostgreSQL: sweeps, searches, the class board)
* views: ``widgets`` (ipywidgets panels) and ``plots`` (plotly figures), loaded on first use

``import compresslab`` imports TensorFlow (through ``compresslab._keras``) but neither
ipywidgets nor plotly.

Example:
    >>> import compresslab as cl
    >>> data = cl.load_dataset()
    >>> record = cl.measure(cl.baseline(dataset=data), data, name="baseline")
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

from . import models  # noqa: E402  (imports TensorFlow through _keras)
from .data import Dataset, load_dataset  # noqa: E402
from .i18n import get_language, set_language  # noqa: E402  (the panels' language: "en" or "zh")
from .measure import measure  # noqa: E402
from .modelio import ModelTypeError, as_tf_keras, load_model, save_model  # noqa: E402
from .models import baseline, train  # noqa: E402
from .records import ExperimentLog, Record, to_frame  # noqa: E402

# Loaded on first use: technique modules and views (views import ipywidgets / plotly).
_LAZY_MODULES = {"quantize", "prune", "cluster", "distill", "pipeline", "plots", "widgets", "report", "cli", "tflite",
                 "codec", "sizes", "studies", "sparse_vd", "lowbit", "exercises"}
_LAZY_NAMES = {
    "QuantSpec": "quantize",
    "PruneSpec": "prune",
    "ClusterSpec": "cluster",
    "DistillSpec": "distill",
    "run_pipeline": "pipeline",
    "autocompress": "pipeline",
    "sweep": "pipeline",
    "write_report": "report",
}


def __getattr__(name: str):
    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY_NAMES:
        module = importlib.import_module(f".{_LAZY_NAMES[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'compresslab' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _LAZY_MODULES | set(_LAZY_NAMES))


__all__ = [
    "load_dataset", "Dataset", "models", "train", "baseline", "load_model", "save_model", "as_tf_keras",
    "ModelTypeError", "set_language", "get_language",
    "measure", "Record", "to_frame", "ExperimentLog",
    "QuantSpec", "PruneSpec", "ClusterSpec", "DistillSpec",
    "quantize", "prune", "cluster", "distill", "lowbit",
    "run_pipeline", "autocompress", "sweep", "write_report",
    "codec", "sizes", "studies", "plots", "widgets",
]
