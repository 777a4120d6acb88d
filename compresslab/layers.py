"""Which weights of a layer are its kernels: the one answer every technique starts from.

Owns :data:`KERNEL_ATTRIBUTES` and :func:`kernel_attributes` / :func:`kernel_variables`. Each
technique filters what IT supports on top of this list (quantization simulates kernel,
depthwise_kernel and pointwise_kernel; tfmot prunes DepthwiseConv2D but does not cluster it), so
the rule "what is a kernel" lives here once and "what do I act on" lives with the technique.

Example:
    >>> kernel_attributes(model.get_layer("conv1"))
    ['kernel']
"""

from __future__ import annotations

from ._keras import tf

# Attribute names under which tf_keras layers keep a kernel-like weight matrix: Conv*/Dense
# (kernel), DepthwiseConv2D and SeparableConv* (depthwise_kernel, pointwise_kernel), Embedding
# (embeddings). Biases and batch-norm statistics are not kernels.
KERNEL_ATTRIBUTES = ("kernel", "depthwise_kernel", "pointwise_kernel", "embeddings")


def kernel_variables(layer) -> list[tuple[str, object]]:
    """The ``(attribute, variable)`` pairs of ``layer`` that hold a kernel, in a fixed order.

    Args:
        layer: a tf_keras layer (built; an unbuilt layer has no variables yet and yields ``[]``).

    Returns:
        ``[(attribute, tf.Variable), ...]`` in the order of :data:`KERNEL_ATTRIBUTES`; empty for
        layers without a kernel (pooling, flatten, batch norm, ...).

    Example:
        >>> kernel_variables(separable_layer)
        [('depthwise_kernel', <tf.Variable ...>), ('pointwise_kernel', <tf.Variable ...>)]
    """
    found = []
    for attribute in KERNEL_ATTRIBUTES:
        variable = getattr(layer, attribute, None)
        if isinstance(variable, tf.Variable):
            found.append((attribute, variable))
    return found


def kernel_attributes(layer) -> list[str]:
    """Names of the attributes of ``layer`` that hold a kernel ``tf.Variable``.

    Args:
        layer: a tf_keras layer.

    Returns:
        A subset of :data:`KERNEL_ATTRIBUTES`, in that order (e.g. ``["kernel"]`` for Dense).
    """
    return [attribute for attribute, _ in kernel_variables(layer)]


__all__ = ["KERNEL_ATTRIBUTES", "kernel_attributes", "kernel_variables"]
