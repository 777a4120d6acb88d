"""ipywidgets panels over the compute core (imports ipywidgets and plotly: loaded on first use).

Each panel exposes ``controls`` (name -> widget) and ``figures`` (name -> LiveFigure, a plotly figure that is also a widget),
so a test can set ``panel.controls["bits"].value = 4`` and check ``panel.figures[...]``.

Example:
    >>> lab = cl.widgets.QuantizationLab(model, data)
    >>> lab          # displays the panel in Jupyter
    >>> cl.widgets.ClassroomApp().view   # every panel in one tabbed dashboard (notebooks/app.ipynb)
"""

from __future__ import annotations

import importlib

_PANELS = {
    "QuantizationLab": "quantization",
    "PruningLab": "pruning",
    "DistillationLab": "distillation",
    "TradeoffBoard": "tradeoff",
    "ClassroomApp": "classroom",
    "StudyMonitor": "study",
    "ClassSubmitBox": "study",
    "ExportResultsBox": "collect",
}


def __getattr__(name: str):
    if name in _PANELS:
        return getattr(importlib.import_module(f".{_PANELS[name]}", __name__), name)
    if name == "Panel":
        from ._base import Panel

        return Panel
    raise AttributeError(f"module 'compresslab.widgets' has no attribute {name!r}")


def __dir__():
    return sorted(list(_PANELS) + ["Panel"])


__all__ = list(_PANELS) + ["Panel"]
