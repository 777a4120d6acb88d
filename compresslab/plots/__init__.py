"""plotly figures of compression experiments: ``fig_*(...) -> go.Figure``; nothing here calls ``.show()``.

Loaded on first use (imports plotly). Functions live in topic modules (``common``,
``quantization``, ``pruning``, ``distillation``, ``tradeoff``) and are found here by name.

Example:
    >>> fig = cl.plots.fig_accuracy_vs_bits(frame)
"""

from __future__ import annotations

import importlib

_MODULES = ("common", "quantization", "pruning", "distillation", "tradeoff")


def __getattr__(name: str):
    if name.startswith("fig_") or name in ("TECHNIQUE_COLORS",):
        for module_name in _MODULES:
            try:
                module = importlib.import_module(f".{module_name}", __name__)
            except ModuleNotFoundError as error:
                if error.name == f"{__name__}.{module_name}":
                    continue
                raise
            if hasattr(module, name):
                return getattr(module, name)
    raise AttributeError(f"module 'compresslab.plots' has no attribute {name!r}")
