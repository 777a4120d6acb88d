"""Sensitivity analysis: each layer's accuracy under pruning, and the sparsities a budget allows."""

from __future__ import annotations

import numpy as np

from ..data import Dataset
from .masks import _exact_keep_mask, prunable_layers
from .spec import PruneSpec
from .workbench import PruningWorkbench


def sensitivity_scan(model, data: Dataset, sparsities=(0.0, 0.25, 0.5, 0.75, 0.9, 0.95), *, layers=None,
                     split: str = "validation", batchnorm_images: int = 2000):
    """Each layer's accuracy when it alone is magnitude-pruned to each sparsity.

    The other layers stay dense, so the curve shows how much that layer can lose. Runs on one
    working copy (see :class:`PruningWorkbench`): one pass over ``split`` per (layer, sparsity).
    A scan is made to CHOOSE sparsities (:func:`suggest_sparsities`), so it measures on the
    validation split by default; ``split="test"`` is for looking only.

    A model with BatchNormalization layers keeps, after a cut, the moving statistics of the
    uncut model, and a cut convolution's outputs no longer have those statistics: judged that
    way, a layer that fine-tuning would easily bring back looks ruined (on a small residual CNN,
    75% of one convolution "lost" 11 points; with the statistics re-estimated, 2). So after
    every cut, and for the dense reference too, the scan re-estimates each BatchNormalization
    layer's mean and variance from ``batchnorm_images`` training images (a seeded sample; the
    adaptive-BN evaluation of EagleEye, Li et al. 2020), in layer order. Fine-tuning re-estimates
    them anyway. ``batchnorm_images=0`` keeps the statistics the model came with.

    Args:
        batchnorm_images: training images for re-estimating BatchNormalization statistics (0:
            off). Only BatchNormalization layers of the model itself are re-estimated, not those
            inside a nested model; a model without them is scanned as it is.

    Returns:
        A DataFrame with columns layer, sparsity, accuracy, accuracy_drop (vs the dense model,
        re-estimated the same way), weights (the layer's kernel size), split;
        ``frame.attrs["split"]`` says which split, ``frame.attrs["batchnorm_images"]`` how many
        images re-estimated BatchNormalization statistics (0 when none were).

    Raises:
        ValueError: a sparsity outside [0, 1), a missing layer, no validation split in ``data``
            (make one with ``data.with_validation(0.1)``), or ``batchnorm_images`` not a whole
            number >= 0.

    Example:
        >>> scan = sensitivity_scan(model, data, [0.5, 0.8, 0.95])
    """
    import pandas as pd

    values = list(sparsities)
    if not values:
        raise ValueError("sparsities is empty; give values in [0, 1) such as [0.5, 0.8, 0.95]")
    for value in values:
        PruneSpec(sparsity=value)
    if isinstance(batchnorm_images, bool) or not isinstance(batchnorm_images, (int, np.integer)) \
            or batchnorm_images < 0:
        raise ValueError(f"batchnorm_images is {batchnorm_images!r}; it must be a whole number >= 0 "
                         "(0 keeps the model's own BatchNormalization statistics)")
    names = None if layers is None else tuple(layers)
    prunable_layers(model, names)
    bench = PruningWorkbench(model, data, layers=names, split=split)
    recalibrate = BatchNormRecalibration(bench.model, data.x_train, int(batchnorm_images))
    recalibrate()
    reference = bench.accuracy() if recalibrate.layers else bench.float_accuracy
    rows = []
    for index, name in enumerate(bench.names):
        for sparsity in values:
            masks = [np.ones(k.shape, bool) for k in bench.originals]
            masks[index] = _exact_keep_mask(bench.magnitudes[index], bench.orders[index], sparsity).reshape(
                bench.originals[index].shape)
            bench.assign(masks)
            recalibrate()
            accuracy = bench.accuracy()
            rows.append({"layer": name, "sparsity": float(sparsity), "accuracy": accuracy,
                         "accuracy_drop": reference - accuracy,
                         "weights": int(bench.originals[index].size), "split": split})
    frame = pd.DataFrame(rows)
    frame.attrs["split"] = split
    frame.attrs["batchnorm_images"] = recalibrate.images if recalibrate.layers else 0
    return frame


class BatchNormRecalibration:
    """Re-estimate a model's BatchNormalization moving statistics from a sample of images.

    Calling it sets every BatchNormalization layer of ``model`` (its own layers, in order, each
    after the ones before it) to the exact mean and variance of its inputs over the sample, as a
    fully converged moving average would. It changes ``model`` in place; use it on a working copy.

    Args:
        model: a tf_keras model (the layers are looked up once).
        images: the pool to sample from (training images, never the split being judged).
        count: how many images to use (a seeded sample; all of them when the pool is smaller);
            0, or an empty pool, makes the call do nothing (``layers`` is then empty).

    Example:
        >>> BatchNormRecalibration(copy, data.x_train, 2000)()
    """

    def __init__(self, model, images, count: int, *, seed: int = 0, batch_size: int = 500):
        from .._keras import keras

        self.layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
        images = np.asarray(images, np.float32)
        if not count or not self.layers or not len(images):
            self.layers, self.images, self._inputs = [], 0, []
            return
        if len(images) > count:
            images = images[np.sort(np.random.default_rng(seed).choice(len(images), count, replace=False))]
        self.images = len(images)
        self._batches = [images[start : start + batch_size] for start in range(0, len(images), batch_size)]
        # One sub-model per layer, sharing the model's variables: each sees the statistics already set.
        try:
            self._inputs = [keras.Model(model.inputs, layer.input) for layer in self.layers]
        except Exception as error:  # e.g. a BatchNormalization layer called in two places
            raise ValueError(f"cannot re-estimate the BatchNormalization statistics of model {model.name!r} "
                             f"({type(error).__name__}: {error}); pass batchnorm_images=0 to keep its own") from None

    def __call__(self) -> None:
        for layer, inputs in zip(self.layers, self._inputs):
            total, total_squares, count = 0.0, 0.0, 0
            axes = tuple(i for i in range(len(layer.input.shape)) if i not in
                         {a % len(layer.input.shape) for a in np.atleast_1d(layer.axis)})
            for batch in self._batches:
                values = inputs(batch, training=False).numpy().astype(np.float64)
                total = total + values.sum(axis=axes)
                total_squares = total_squares + (values ** 2).sum(axis=axes)
                count += int(np.prod([values.shape[axis] for axis in axes]))
            mean = total / count
            variance = np.maximum(total_squares / count - mean ** 2, 0.0)
            layer.moving_mean.assign(mean.astype(np.float32))
            layer.moving_variance.assign(variance.astype(np.float32))


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
