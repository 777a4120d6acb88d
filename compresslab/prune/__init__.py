"""Pruning: zero the weights that matter least, then measure honestly what that buys.

What you can do here, grouped by goal:

* one-shot pruning into a NEW model: :func:`by_threshold` (zero ``|w| < threshold``),
  :func:`to_sparsity` (exact target sparsity by magnitude, per layer or global, or 2:4),
  :func:`to_layer_sparsities` (a sparsity per layer, e.g. chosen from a sensitivity scan),
  :func:`apply` (any :class:`PruneSpec`);
* pruning while training: :func:`finetune` (tfmot ``prune_low_magnitude`` with a polynomial or
  constant schedule, ``UpdatePruningStep``, then ``strip_pruning``), :func:`schedule_curve`;
  :func:`finetune_holding_zeros` trains an already pruned model with its zeros held;
* structured pruning: :func:`filter_pruning` removes whole Conv2D filters and Dense units and
  rebuilds a smaller model; 2:4 sparsity is checked by :func:`check_m_by_n`;
* analysis: :func:`layer_sparsity`, :func:`sensitivity_scan`, :func:`suggest_sparsities`;
* honest sizes (owned by :mod:`compresslab.sizes`, re-exported here): :func:`sparse_bytes`
  (bitmask or CSR encodings with their index bits counted), :func:`size_report` (dense TFLite,
  gzip and sparse-encoding bytes side by side);
* live exploration: :class:`PruningWorkbench` keeps ONE working copy of a model and re-masks
  its kernels in place, which is what the panel's sliders use.

Only kernels are pruned (Conv and Dense ``kernel``, DepthwiseConv2D ``depthwise_kernel``, SeparableConv
``pointwise_kernel``); biases are a tiny share of the parameters and zeroing them shifts every activation, so they are left
untouched unless ``include_biases=True``.

Example:
    >>> spec = PruneSpec(method="magnitude", sparsity=0.8, scope="global")
    >>> pruned = to_sparsity(model, spec)          # a new model; ``model`` is unchanged
    >>> layer_sparsity(pruned)

Modules: ``spec`` (PruneSpec), ``masks`` (prunable kernels, keep-masks, sparsity), ``oneshot``,
``finetune``, ``filters``, ``workbench`` (the live engine) and ``search`` (sensitivity).
"""

from __future__ import annotations

from ..sizes import ENCODINGS, size_report, sparse_bytes, weights_gzip_bytes

# Learned pruning: sparse variational dropout (Molchanov et al., 2017) lives in compresslab.sparse_vd;
# here under the name a pruning user looks for.
from ..sparse_vd import variational_dropout as sparse_variational_dropout
from .filters import filter_pruning
from .finetune import finetune, finetune_holding_zeros, global_layer_targets, schedule_curve
from .masks import (
    check_m_by_n,
    global_sparsity,
    is_m_by_n,
    is_prunable,
    layer_sparsity,
    positive_zeros,
    prunable_layers,
)
from .oneshot import apply, by_naive_threshold, by_threshold, to_layer_sparsities, to_sparsity
from .search import BatchNormRecalibration, sensitivity_scan, suggest_sparsities
from .spec import METHODS, SCHEDULES, SCOPES, STRUCTURES, PruneSpec
from .workbench import PruningWorkbench

__all__ = [
    # what to prune
    "PruneSpec", "METHODS", "SCOPES", "STRUCTURES", "SCHEDULES", "ENCODINGS",
    # one shot, into a new model
    "by_threshold", "by_naive_threshold", "to_sparsity", "to_layer_sparsities", "apply",
    # while training
    "sparse_variational_dropout", "finetune", "finetune_holding_zeros", "schedule_curve", "global_layer_targets",
    # structured
    "filter_pruning", "check_m_by_n", "is_m_by_n",
    # analysis
    "sensitivity_scan", "suggest_sparsities", "BatchNormRecalibration", "layer_sparsity", "global_sparsity",
    "prunable_layers", "is_prunable", "positive_zeros",
    # sizes (owned by compresslab.sizes)
    "sparse_bytes", "size_report", "weights_gzip_bytes",
    # live exploration
    "PruningWorkbench",
]
