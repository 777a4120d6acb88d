"""What to prune: :class:`PruneSpec`, its allowed values, and the coercion of a number or dict to a spec."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..specs import Spec, check_choice, check_layers, check_number, fail

METHODS = ("threshold", "magnitude")
SCOPES = ("layer", "global")
STRUCTURES = ("unstructured", "2:4", "filters")
SCHEDULES = ("polynomial", "constant")
ENCODINGS = ("bitmask", "csr")


@dataclass(frozen=True)
class PruneSpec(Spec):
    """What to prune and how much.

    Args:
        method: ``"threshold"`` zeroes every weight with ``|w| < threshold``; ``"magnitude"``
            zeroes the smallest-magnitude weights until exactly ``sparsity`` of them are zero.
        threshold: the magnitude cut, >= 0 (only with ``method="threshold"``).
        sparsity: the fraction of weights to zero, in [0, 1) (only with ``method="magnitude"``).
            For ``structure="2:4"`` it is 0.5 by construction and may be left out; for
            ``structure="filters"`` it is the fraction of filters / units removed per layer.
        scope: ``"layer"`` gives every layer the same sparsity; ``"global"`` ranks all kernels
            together, so layers with many small weights lose more.
        layers: names of the layers to prune (default: every Conv / Dense kernel).
        structure: ``"unstructured"`` (any weight), ``"2:4"`` (2 zeros in every group of 4
            consecutive input weights: the pattern sparse tensor cores accelerate) or
            ``"filters"`` (whole filters and units: see :func:`filter_pruning`).
        include_biases: prune biases too (default False: biases are untouched).

    Raises:
        ValueError: a bad value, naming the field and what is allowed; both or neither of
            ``threshold`` and ``sparsity`` given for the method.

    Example:
        >>> PruneSpec(method="threshold", threshold=0.05)
        >>> PruneSpec(method="magnitude", sparsity=0.8, scope="global")
    """

    method: str = "magnitude"
    threshold: float | None = None
    sparsity: float | None = None
    scope: str = "layer"
    layers: tuple[str, ...] | None = None
    structure: str = "unstructured"
    include_biases: bool = False

    def __post_init__(self):
        check_choice(self, "method", METHODS)
        check_choice(self, "scope", SCOPES)
        check_choice(self, "structure", STRUCTURES)
        check_layers(self, "layers")
        if not isinstance(self.include_biases, bool):
            fail(self, "include_biases", self.include_biases, "it must be True or False")
        if self.method == "threshold":
            if self.threshold is None:
                fail(self, "threshold", None, "method 'threshold' needs a threshold >= 0 (and no sparsity)")
            if self.sparsity is not None:
                fail(self, "sparsity", self.sparsity,
                     "method 'threshold' takes a threshold only; give sparsity with method 'magnitude'")
            check_number(self, "threshold", 0.0, None)
            if not math.isfinite(self.threshold):
                fail(self, "threshold", self.threshold, "it must be a finite number >= 0")
            if self.structure != "unstructured":
                fail(self, "structure", self.structure,
                     "method 'threshold' prunes unstructured weights; use method 'magnitude' for 2:4 or filters")
            return
        # magnitude
        if self.threshold is not None:
            fail(self, "threshold", self.threshold,
                 "method 'magnitude' takes a sparsity only; give threshold with method 'threshold'")
        if self.structure == "2:4":
            if self.sparsity is None:
                object.__setattr__(self, "sparsity", 0.5)
            if self.sparsity != 0.5:
                fail(self, "sparsity", self.sparsity, "2:4 keeps 2 of every 4 weights: its sparsity is 0.5")
            return
        if self.sparsity is None:
            fail(self, "sparsity", None, "method 'magnitude' needs a sparsity in [0, 1) (and no threshold)")
        check_number(self, "sparsity", 0.0, 1.0, high_open=True)


def _as_spec(spec_or_sparsity, **defaults) -> PruneSpec:
    if isinstance(spec_or_sparsity, PruneSpec):
        return spec_or_sparsity
    if isinstance(spec_or_sparsity, dict):
        return PruneSpec.from_dict(spec_or_sparsity)
    if isinstance(spec_or_sparsity, (int, float)) and not isinstance(spec_or_sparsity, bool):
        return PruneSpec(method="magnitude", sparsity=float(spec_or_sparsity), **defaults)
    raise TypeError(f"expected a PruneSpec, a dict or a sparsity number, got {type(spec_or_sparsity).__name__}")
