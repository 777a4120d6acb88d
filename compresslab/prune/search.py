"""Sensitivity analysis: each layer's accuracy under pruning, and the sparsities a budget allows."""

from __future__ import annotations

import numpy as np

from ..data import Dataset
from .masks import _exact_keep_mask, prunable_layers
from .spec import PruneSpec
from .workbench import PruningWorkbench


def sensitivity_scan(model, data: Dataset, sparsities=(0.0, 0.25, 0.5, 0.75, 0.9, 0.95), *, layers=None,
                     split: str = "validation"):
    """Each layer's accuracy when it alone is magnitude-pruned to each sparsity.

    The other layers stay dense, so the curve shows how much that layer can lose. Runs on one
    working copy (see :class:`PruningWorkbench`): one pass over ``split`` per (layer, sparsity).
    A scan is made to CHOOSE sparsities (:func:`suggest_sparsities`), so it measures on the
    validation split by default; ``split="test"`` is for looking only.

    Returns:
        A DataFrame with columns layer, sparsity, accuracy, accuracy_drop (vs the dense model),
        weights (the layer's kernel size), split; ``frame.attrs["split"]`` says which split too.

    Raises:
        ValueError: a sparsity outside [0, 1), a missing layer, or no validation split in ``data``
            (make one with ``data.with_validation(0.1)``).

    Example:
        >>> scan = sensitivity_scan(model, data, [0.5, 0.8, 0.95])
    """
    import pandas as pd

    values = list(sparsities)
    if not values:
        raise ValueError("sparsities is empty; give values in [0, 1) such as [0.5, 0.8, 0.95]")
    for value in values:
        PruneSpec(sparsity=value)
    names = None if layers is None else tuple(layers)
    prunable_layers(model, names)
    bench = PruningWorkbench(model, data, layers=names, split=split)
    rows = []
    for index, name in enumerate(bench.names):
        for sparsity in values:
            masks = [np.ones(k.shape, bool) for k in bench.originals]
            masks[index] = _exact_keep_mask(bench.magnitudes[index], bench.orders[index], sparsity).reshape(
                bench.originals[index].shape)
            bench.assign(masks)
            accuracy = bench.accuracy()
            rows.append({"layer": name, "sparsity": float(sparsity), "accuracy": accuracy,
                         "accuracy_drop": bench.float_accuracy - accuracy,
                         "weights": int(bench.originals[index].size), "split": split})
    frame = pd.DataFrame(rows)
    frame.attrs["split"] = split
    return frame


def suggest_sparsities(scan, max_accuracy_drop: float = 1.0) -> dict[str, float]:
    """From a :func:`sensitivity_scan`, each layer's highest scanned sparsity within the allowed drop.

    Args:
        scan: the DataFrame :func:`sensitivity_scan` returns (its ``accuracy_drop`` is a fraction).
        max_accuracy_drop: the accuracy each layer may lose, in percentage POINTS (1.0 = one
            point, e.g. 98.0% -> 97.0%), as everywhere in compresslab; 0.5 is half a point.

    Returns:
        ``{layer: sparsity}`` (0.0 for a layer with no scanned sparsity inside the budget).

    Raises:
        ValueError: a budget that is not a finite number in [0, 100], or a scan measured on the test
            split (choices are made on validation; the test split is for reporting).

    Example:
        >>> to_layer_sparsities(model, suggest_sparsities(scan, max_accuracy_drop=0.5))
    """
    if isinstance(max_accuracy_drop, bool) or not isinstance(max_accuracy_drop, (int, float, np.number)) \
            or not 0 <= max_accuracy_drop <= 100:
        raise ValueError(f"max_accuracy_drop is {max_accuracy_drop!r}; it must be a number of percentage "
                         "points in [0, 100] (1.0 = one point)")
    split = scan.attrs.get("split") or (scan["split"].iloc[0] if "split" in scan and len(scan) else None)
    if split == "test":
        raise ValueError("this sensitivity scan was measured on the test split; sparsities are chosen on the "
                         "validation split: scan with sensitivity_scan(model, data) on a data set that has one "
                         "(data.with_validation(0.1))")
    # The scan's drops are fractions; compare in points. The tiny slack absorbs float rounding of
    # 100 * drop so a drop of exactly the budget counts as inside it.
    budget = float(max_accuracy_drop) + 1e-9
    result = {}
    for layer, rows in scan.groupby("layer", sort=False):
        ok = rows[100.0 * rows["accuracy_drop"] <= budget]
        result[layer] = float(ok["sparsity"].max()) if len(ok) else 0.0
    return result
