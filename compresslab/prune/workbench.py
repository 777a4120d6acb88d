"""Live exploration: :class:`PruningWorkbench`, one working copy of a model re-masked in place."""

from __future__ import annotations

import numpy as np

from ..data import Dataset
from ..evaluate import LiveEvaluator
from ..models import check_model_fits, clone, compile_for_classification
from ..sizes import _sparse_tensor_bytes, weights_gzip_bytes
from .masks import (
    _check_m_by_n_layers,
    _exact_keep_mask,
    _global_keep_masks,
    _kernel_attribute,
    _kernel_of,
    _m_by_n_keep_mask,
    prunable_layers,
    pruning_report,
)
from .spec import PruneSpec, _as_spec


class PruningWorkbench:
    """One working copy of a model whose kernels are re-masked in place, for fast repeated pruning.

    Built once: the original kernels and their magnitudes sorted per layer and globally; the
    working copy, the test images as tensors and the compiled forward pass belong to the shared
    :class:`compresslab.evaluate.LiveEvaluator`, which this class drives with masked kernels.
    Each :meth:`apply` then costs one mask per kernel, one ``variable.assign`` per changed kernel
    and one pass over the test set: no cloning, no recompiling. The input model is never modified.

    Example:
        >>> bench = PruningWorkbench(model, data)
        >>> bench.apply(PruneSpec(sparsity=0.8, scope="global")); bench.accuracy()

    Args:
        model: a trained tf_keras classifier (never modified).
        data: its :class:`~compresslab.data.Dataset`.
        layers: names of the prunable layers to mask (default: every prunable layer).
        batch_size: images per compiled call.
        split: ``"test"`` (default: a live look, as the panels show) or ``"validation"`` (to choose
            settings; ``data`` must have a validation split).

    Raises:
        TypeError: ``data`` is not a Dataset (e.g. an ``(x, y)`` tuple).
        ValueError: a model that does not fit the data or has nothing to prune, a missing layer, an
            unknown split or an empty validation split.
    """

    def __init__(self, model, data: Dataset, *, layers=None, batch_size: int = 256, split: str = "test"):
        if not isinstance(data, Dataset):
            # Without this, a tuple (x, y) fails deep inside with an AttributeError.
            raise TypeError(f"data must be a compresslab Dataset, got {type(data).__name__}; "
                            "wrap arrays with cl.Dataset.from_arrays(...)")
        if split not in ("test", "validation"):
            raise ValueError(f"split is {split!r}; allowed: 'validation' (to choose settings), 'test' (to report)")
        x, y = data.arrays(split)
        model = check_model_fits(model, data)
        self.data, self.split = data, split
        chosen = {layer.name for layer in prunable_layers(model, layers)}

        def pruned_kernel(layer):
            return [(_kernel_attribute(layer), _kernel_of(layer))] if layer.name in chosen else []

        # The shared live engine owns the working copy, the cached test tensors and the compiled pass.
        self.evaluator = LiveEvaluator(model, x, y, batch_size, kernels=pruned_kernel)
        self.model = self.evaluator.model
        self.layers = self.evaluator.layers
        self.names = [layer.name for layer in self.layers]
        self._keys = [(layer.name, _kernel_attribute(layer)) for layer in self.layers]
        self.variables = [self.evaluator.variables[key] for key in self._keys]
        self.originals = [self.evaluator.originals[key] for key in self._keys]
        self.magnitudes = [np.abs(k).ravel() for k in self.originals]
        self.orders = [np.argsort(m, kind="stable") for m in self.magnitudes]
        self.sorted_magnitudes = [m[o] for m, o in zip(self.magnitudes, self.orders)]
        self.all_magnitudes = np.concatenate(self.magnitudes)
        self.global_order = np.argsort(self.all_magnitudes, kind="stable")
        self.global_sorted = self.all_magnitudes[self.global_order]
        self.offsets = np.cumsum([0] + [m.size for m in self.magnitudes])
        self.other_weights = [w.numpy() for w in self.model.weights
                              if w.name not in {v.name for v in self.variables}]
        self.masks = [np.ones(k.shape, bool) for k in self.originals]
        self.float_accuracy = self.accuracy()

    def masks_for(self, spec: PruneSpec) -> list[np.ndarray]:
        """Boolean keep-masks (one per kernel) for an unstructured or 2:4 spec, without assigning."""
        spec = _as_spec(spec)
        if spec.structure == "filters":
            raise ValueError("the workbench masks weights; use filter_pruning for filters")
        if spec.layers is not None:
            missing = [n for n in spec.layers if n not in self.names]
            if missing:
                raise ValueError(f"layers {missing} are not prunable layers of this model; they are {self.names}")
        chosen = set(self.names if spec.layers is None else spec.layers)
        masks = []
        if spec.method == "threshold":
            for name, magnitudes, kernel in zip(self.names, self.magnitudes, self.originals):
                keep = magnitudes >= spec.threshold if name in chosen else np.ones(magnitudes.size, bool)
                masks.append(keep.reshape(kernel.shape))
            return masks
        if spec.structure == "2:4":
            layers = [layer for layer in self.layers if layer.name in chosen]
            good = {layer.name for layer in _check_m_by_n_layers(layers, explicit=spec.layers is not None)}
            return [(_m_by_n_keep_mask(kernel) if name in good else np.ones(kernel.shape, bool))
                    for name, kernel in zip(self.names, self.originals)]
        if spec.scope == "layer" or len(chosen) < len(self.names):
            for name, magnitudes, order, kernel in zip(self.names, self.magnitudes, self.orders, self.originals):
                if name in chosen and spec.scope == "layer":
                    keep = _exact_keep_mask(magnitudes, order, spec.sparsity)
                else:
                    keep = np.ones(magnitudes.size, bool)
                masks.append(keep.reshape(kernel.shape))
            if spec.scope == "global":  # global over a subset: rank the chosen kernels together
                index = [i for i, n in enumerate(self.names) if n in chosen]
                for i, keep in zip(index, _global_keep_masks([self.originals[i] for i in index], spec.sparsity)):
                    masks[i] = keep
            return masks
        return _global_keep_masks(self.originals, spec.sparsity, self.all_magnitudes, self.global_order)

    def apply(self, spec: PruneSpec) -> list[np.ndarray]:
        """Mask the working model's kernels for ``spec`` (from the ORIGINAL weights); returns the masks."""
        masks = self.masks_for(spec)
        self.assign(masks)
        return masks

    def assign(self, masks) -> None:
        """Hold the ORIGINAL kernels masked by ``masks`` (one boolean keep-mask per kernel, in ``names`` order)."""
        changed = {}
        for key, original, keep, old in zip(self._keys, self.originals, masks, self.masks):
            if old is keep or np.array_equal(old, keep):
                continue  # unchanged layer: skip the copy to the variable
            changed[key] = None if keep.all() else np.where(keep, original, 0).astype(original.dtype)
        self.evaluator.update(changed)
        self.masks = list(masks)

    def reset(self) -> None:
        """Back to the original (dense) weights."""
        self.assign([np.ones(k.shape, bool) for k in self.originals])

    def accuracy(self) -> float:
        """Test accuracy of the working model as it is now masked (Keras forward pass)."""
        return self.evaluator.accuracy()

    def layer_sparsities(self) -> dict[str, float]:
        """Fraction of zeros in each prunable kernel as currently masked."""
        return {name: float(1.0 - mask.mean()) for name, mask in zip(self.names, self.masks)}

    def global_sparsity(self) -> float:
        """Fraction of zeros over the prunable kernels together (not biases or unsupported layers)."""
        total = sum(mask.size for mask in self.masks)
        return float(sum(mask.size - int(mask.sum()) for mask in self.masks) / total)

    def sparsity_at_threshold(self, threshold: float) -> float:
        """Global fraction of kernel weights with ``|w| < threshold`` (binary search in sorted magnitudes)."""
        return float(np.searchsorted(self.global_sorted, threshold, side="left") / self.global_sorted.size)

    def threshold_at_sparsity(self, sparsity: float, layer: str | None = None) -> float:
        """The magnitude below which ``sparsity`` of the weights lie (globally, or in one layer)."""
        values = self.global_sorted if layer is None else self.sorted_magnitudes[self.names.index(layer)]
        index = int(round(sparsity * values.size))
        return float(values[min(index, values.size - 1)]) if values.size else 0.0

    def pruned_kernels(self) -> list[np.ndarray]:
        """The kernels as currently masked (new arrays, in ``names`` order)."""
        return [np.where(keep, original, 0) for keep, original in zip(self.masks, self.originals)]

    def weights_gzip_bytes(self, level: int = 6) -> int:
        """gzip of the float32 bytes of all weights as currently pruned (a proxy, not a TFLite file)."""
        return weights_gzip_bytes(self.pruned_kernels() + self.other_weights, level)

    def sparse_sizes(self) -> dict[str, int]:
        """dense float32, bitmask and CSR bytes of the weights as currently pruned (exact counts)."""
        others = sum(w.size for w in self.other_weights) * 4
        kernels = self.pruned_kernels()
        return {
            "dense_float32_bytes": 4 * (sum(k.size for k in kernels)) + others,
            "bitmask_bytes": others + sum(_sparse_tensor_bytes(k, "bitmask", 4) for k in kernels),
            "csr_bytes": others + sum(_sparse_tensor_bytes(k, "csr", 4) for k in kernels),
        }

    def export(self):
        """A NEW compiled model with the current masks applied (the working copy stays private)."""
        result = compile_for_classification(clone(self.model))
        result.pruning = pruning_report(result, self.names)
        return result
