"""Chained techniques: declarative recipes, Deep Compression, auto-compression and sweeps.

A *recipe* is a list of steps, each a dict with a ``"step"`` key (``distill``, ``prune``,
``cluster``, ``quantize`` or ``export``) and that step's parameters, as Python or JSON:

    [{"step": "prune", "sparsity": 0.9, "scope": "global", "epochs": 2},
     {"step": "cluster", "clusters": 16, "conv_clusters": 32, "epochs": 1},
     {"step": "export", "format": "codec"}]

:func:`run_pipeline` checks the whole recipe first and lists EVERY problem in one
``ValueError`` before any work starts, then runs the steps and measures a
:class:`~compresslab.Record` per stage. ``deep_compression`` is the built-in recipe of Han, Mao
and Dally (ICLR 2016): magnitude pruning with fine-tuning (mask held), weight sharing by
clustering with centroid fine-tuning (zeros kept), then entropy coding into compresslab's own
file format (:mod:`compresslab.codec`); its ratio is the real file's bytes against dense float32.

:func:`autocompress` searches sparsities (per layer, from a sensitivity scan), cluster counts
(index bits) and int8 quantization for the smallest (or fastest) variant within an accuracy
budget; :func:`sweep` runs every configuration of a grid, in parallel, into an experiment log.

Example:
    >>> result = run_pipeline(model, data, "deep_compression", log="runs/dc.jsonl")
    >>> result.final.extra["compressed_bytes"], result.ratio
"""

from __future__ import annotations

from .grid import expand_grid, sweep
from .recipe import (
    EXPORT_FORMATS,
    OBJECTIVES,
    PRUNE_SCHEDULES,
    PTQ_MODES,
    RECIPES,
    STEP_PARAMETERS,
    STEPS,
    TECHNIQUES,
    deep_compression_recipe,
    describe_step,
    sparse_vd_compression_recipe,
    validate_recipe,
)
from .runner import PipelineResult, run_pipeline
from .search import AutocompressResult, autocompress
from .specs import ClusterStep, DistillStep, ExportStep, PruneStep, QuantizeStep, SparseVDStep, StepSpec

__all__ = ["run_pipeline", "validate_recipe", "deep_compression_recipe", "sparse_vd_compression_recipe", "describe_step", "PipelineResult",
           "autocompress", "AutocompressResult", "sweep", "expand_grid", "STEPS", "RECIPES", "STEP_PARAMETERS",
           "TECHNIQUES", "StepSpec", "PruneStep", "SparseVDStep", "ClusterStep", "QuantizeStep", "DistillStep", "ExportStep", "PTQ_MODES", "PRUNE_SCHEDULES", "EXPORT_FORMATS", "OBJECTIVES"]
