"""Live evaluation: one working copy of a model whose kernels are swapped in place, fast enough for a slider.

Owns :class:`LiveEvaluator`. Every live tool (the quantization lab's sliders, layer sensitivity,
mixed-precision search, the pruning workbench) asks the same question many times: "what is the
accuracy if these kernels held those values?". Cloning and recompiling per question costs seconds;
this class clones and compiles ONCE, caches the images as tensors in fixed batches, and answers
each question with a few ``variable.assign`` calls and one pass over the images. Techniques
compute their arrays (quantized, masked, clustered) and hand them in; nothing technique-specific
lives here. The input model is never modified.

Example:
    >>> live = LiveEvaluator(model, data.x_test, data.y_test)
    >>> live.assign({("conv1", "kernel"): my_array}); live.accuracy()
    >>> live.reset()
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._keras import tf
from .layers import kernel_variables
from .modelio.convert import as_tf_keras
from .models import clone

Key = tuple[str, str]  # (layer name, attribute), e.g. ("conv1", "kernel")


class LiveEvaluator:
    """Accuracy of a model with some kernels replaced, without cloning or retracing per call.

    Args:
        model: a tf_keras classifier (not modified: the evaluator works on its own clone).
        x, y: images and integer labels to measure on (e.g. ``data.x_test``, ``data.y_test``).
        batch_size: images per compiled call (256: on a 2-core CPU, batches of thousands of images
            ran slower, their activations no longer fit in cache).
        kernels: ``layer -> [(attribute, variable), ...]``, which weights of a layer may be
            swapped; default :func:`compresslab.layers.kernel_variables` (every kernel). A
            technique passes its own filter (e.g. only what it supports).

    Attributes:
        model: the working clone.
        layers: layers of the clone with at least one swappable kernel, in model order.
        variables: ``(layer name, attribute) -> tf.Variable`` of the clone.
        originals: ``(layer name, attribute) -> numpy array`` of the input model's values.
        count: number of images.

    Raises:
        TypeError: ``model`` is not a tf_keras model.
        ValueError: ``x`` and ``y`` differ in length.

    Example:
        >>> live = LiveEvaluator(model, data.x_test, data.y_test)
        >>> live.assign({("dense", "kernel"): np.zeros_like(live.originals[("dense", "kernel")])})
        >>> live.accuracy()
    """

    def __init__(self, model, x, y, batch_size: int = 256, *,
                 kernels: Callable[[object], list[tuple[str, object]]] | None = None):
        model = as_tf_keras(model)
        x = np.asarray(x, dtype=np.float32)
        y = np.asarray(y)
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} images and y {len(y)} labels; they must be the same length")
        select = kernels or kernel_variables
        self.model = clone(model)
        self.layers = [layer for layer in self.model.layers if select(layer)]
        self.variables: dict[Key, object] = {(layer.name, attribute): variable
                                              for layer in self.layers for attribute, variable in select(layer)}
        self.originals: dict[Key, np.ndarray] = {key: v.numpy() for key, v in self.variables.items()}
        # What each variable holds now (None: its original values), so an unchanged kernel is not
        # copied again: a slider that moves one layer's bits re-assigns one variable, not all.
        self._assigned: dict[Key, object] = {key: None for key in self.variables}
        self.count = len(x)
        batch = max(1, min(int(batch_size), len(x)))
        self._batches = [tf.constant(x[start : start + batch]) for start in range(0, len(x), batch)]
        self._labels = [y[start : start + batch] for start in range(0, len(x), batch)]
        network = self.model

        @tf.function(input_signature=[tf.TensorSpec([None, *x.shape[1:]], tf.float32)])
        def predict_classes(images):
            return tf.argmax(network(images, training=False), axis=1)

        self._predict = predict_classes

    @property
    def layer_names(self) -> list[str]:
        """Names of :attr:`layers`."""
        return [layer.name for layer in self.layers]

    def _check_keys(self, arrays) -> None:
        unknown = sorted(set(arrays) - set(self.variables))
        if unknown:
            raise ValueError(f"kernels {unknown} are not swappable weights of this model; "
                             f"they are {sorted(self.variables)}")

    def update(self, arrays: dict[Key, np.ndarray]) -> None:
        """Swap in the given kernels; every other kernel keeps what it holds now.

        Args:
            arrays: ``(layer name, attribute) -> array`` of the variable's shape; ``None`` as a
                value puts that kernel's original values back.

        Raises:
            ValueError: a key that is not one of :attr:`variables`.
        """
        self._check_keys(arrays)
        for key, values in arrays.items():
            if values is None:
                if self._assigned[key] is not None:
                    self.variables[key].assign(self.originals[key])
                    self._assigned[key] = None
            elif self._assigned[key] is not values:  # same object: already assigned
                self.variables[key].assign(values)
                self._assigned[key] = values

    def assign(self, arrays: dict[Key, np.ndarray]) -> None:
        """Make the working model hold exactly ``arrays``, every kernel not listed at its original values.

        Args:
            arrays: ``(layer name, attribute) -> array``.

        Raises:
            ValueError: a key that is not one of :attr:`variables`.
        """
        self._check_keys(arrays)
        self.update({key: arrays.get(key) for key in self.variables})

    def reset(self) -> None:
        """Put every kernel back to the input model's values."""
        self.update({key: None for key in self.variables})

    def accuracy(self) -> float:
        """Fraction of the images classified correctly by the working model as it is now."""
        correct = 0
        for images, labels in zip(self._batches, self._labels):
            correct += int(np.count_nonzero(self._predict(images).numpy() == labels))
        return correct / max(1, self.count)


__all__ = ["LiveEvaluator"]
