"""Weight clustering: the k-means counterpart of linear quantization.

Linear quantization puts a tensor's values on an evenly spaced grid; clustering lets the data
choose the grid: each kernel's values are replaced by the nearest of ``clusters`` centroids
(learned by k-means-style updates), so a kernel holds at most ``clusters`` distinct values
and can be stored as ``log2(clusters)``-bit indices plus a small table of centroids. A gzip'd
TFLite file of a clustered model shrinks because repeated values compress well.

Owns :class:`ClusterSpec` and :func:`cluster_weights`: plain clustering and, with
``preserve_sparsity``, clustering of a pruned model that keeps every zero (Deep Compression's
second stage), with a centroid count per layer type (``conv_clusters``). Layers it cannot cluster
are reported, never skipped silently. Built on tfmot's ``cluster_weights`` and ``strip_clustering``.

Example:
    >>> clustered = cluster_weights(model, ClusterSpec(clusters=16), data, epochs=1)
    >>> cl.measure(clustered, data, name="16 clusters", technique="cluster").gzip_bytes
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._keras import keras, tfmot
from .data import Dataset
from .layers import kernel_attributes
from .modelio.convert import as_tf_keras
from .models import check_model_fits, clone, compile_for_classification, outputs_logits, set_seed, train
from .prune.finetune import HoldZeros
from .prune.masks import nothing_to_do_message, skipped_layers, warn_skipped, zero_masks
from .specs import Spec, check_choice, check_int, check_layers, fail, resolve_layers

INITS = ("kmeans++", "linear", "density")

_TFMOT_INIT = {"kmeans++": "KMEANS_PLUS_PLUS", "linear": "LINEAR", "density": "DENSITY_BASED"}


@dataclass(frozen=True)
class ClusterSpec(Spec):
    """How to cluster a model's kernels.

    Attributes:
        clusters: centroids per kernel (>= 2, at most 65,536). 16 clusters = 4-bit indices.
        init: how the centroids start: ``"kmeans++"`` (spread by k-means++ sampling),
            ``"linear"`` (evenly spaced between min and max: the same start as linear
            quantization) or ``"density"`` (evenly spaced in the cumulative distribution, so
            more centroids where weights are dense).
        layers: names of the layers to cluster, or None for every clusterable layer (Conv and
            Dense kernels; biases are never clustered).
        preserve_sparsity: keep every zero weight exactly zero (tfmot's sparsity-preserving
            clustering, zeros re-applied after stripping): cluster a PRUNED model, as Deep
            Compression does. Only the non-zero weights are shared among the centroids.
        conv_clusters: centroids per convolution kernel (Conv1D/2D/3D, their transposes,
            SeparableConv pointwise kernels); None uses ``clusters`` for them too.

    Raises:
        ValueError: clusters below 2, an unknown init, a non-bool preserve_sparsity, naming the
            field and what is allowed.

    Example:
        >>> ClusterSpec(clusters=8, init="linear")
        >>> ClusterSpec(clusters=32, conv_clusters=256, preserve_sparsity=True)   # Deep Compression
    """

    clusters: int = 16
    init: str = "kmeans++"
    layers: tuple[str, ...] | None = None
    preserve_sparsity: bool = False
    conv_clusters: int | None = None

    def __post_init__(self):
        check_int(self, "clusters", 2, 65536)
        check_choice(self, "init", INITS)
        check_layers(self, "layers")
        if not isinstance(self.preserve_sparsity, (bool, np.bool_)):
            fail(self, "preserve_sparsity", self.preserve_sparsity, "it must be True or False")
        object.__setattr__(self, "preserve_sparsity", bool(self.preserve_sparsity))
        check_int(self, "conv_clusters", 2, 65536, optional=True)

    def clusters_for(self, layer) -> int:
        """Centroids for ``layer``'s kernel: ``conv_clusters`` for convolutions (when set), else ``clusters``."""
        is_conv = "Conv" in type(layer).__name__
        return int(self.conv_clusters) if is_conv and self.conv_clusters is not None else int(self.clusters)


def _clusterable_kernels() -> dict:
    """Layer class -> the weight tfmot's ClusteringRegistry clusters (exact classes, as tfmot matches them).

    DepthwiseConv2D is absent on purpose: tfmot does not cluster it (large accuracy loss).
    """
    layers = keras.layers
    return {
        layers.Conv1D: "kernel", layers.Conv2D: "kernel", layers.Conv3D: "kernel",
        layers.Conv1DTranspose: "kernel", layers.Conv2DTranspose: "kernel", layers.Conv3DTranspose: "kernel",
        layers.SeparableConv1D: "pointwise_kernel", layers.SeparableConv2D: "pointwise_kernel",
        layers.Dense: "kernel", layers.Embedding: "embeddings",
    }


def _clustered_attribute(layer) -> str | None:
    """The weight tfmot clusters in ``layer`` (None when it clusters nothing there)."""
    name = _clusterable_kernels().get(type(layer))
    return name if name is not None and name in kernel_attributes(layer) else None


def is_clusterable(layer) -> bool:
    """True when tfmot clusters a weight of this layer (Conv1D/2D/3D, their transposes, Dense,
    SeparableConv pointwise kernels). DepthwiseConv2D is not clustered (tfmot: large accuracy loss)."""
    return _clustered_attribute(layer) is not None


def cluster_weights(model, spec: ClusterSpec, data: Dataset | None = None, epochs: int = 0, *,
                    learning_rate: float = 1e-4, batch_size: int = 64, seed: int = 0,
                    progress: bool | Callable = False):
    """Cluster the kernels of a model into a NEW model, optionally fine-tuning the centroids.

    The chosen layers are wrapped by ``tfmot.clustering.keras.cluster_weights`` (centroids
    initialised by ``spec.init``, ``spec.clusters`` of them, or ``spec.conv_clusters`` for
    convolutions); with ``epochs > 0`` the clustered model is fine-tuned on ``data``'s training
    split (the centroids move, the assignments follow); then ``strip_clustering`` leaves a plain
    Keras model whose clustered kernels each hold at most that many distinct values. Without
    fine-tuning, biases and every other weight are untouched; fine-tuning trains every layer, but
    only the chosen kernels are clustered.

    With ``spec.preserve_sparsity`` and a model that has zero weights, tfmot's sparsity-preserving
    clustering is used, the zeros of every other kernel are held during fine-tuning, and every
    zero is re-applied exactly after stripping: a pruned model stays exactly as sparse. A kernel
    with no more live (non-zero) weights than centroids gains nothing from sharing: it is skipped
    (and reported) rather than clustered.

    Args:
        model: a trained tf_keras model (not modified).
        spec: a :class:`ClusterSpec`.
        data: the data set; required when ``epochs > 0``.
        epochs: fine-tuning epochs (0: cluster only).
        learning_rate: Adam learning rate of the fine-tuning.
        batch_size: images per step.
        seed: seeds the centroid initialisation and the shuffling.
        progress: True for a bar, False for silence, or ``callable(epoch, logs)``.

    Returns:
        A compiled tf_keras model; ``model.clustering`` holds ``spec``, ``layers`` (clustered),
        ``clusters`` (centroids per layer), ``preserve_sparsity`` (whether zeros were kept),
        ``epochs`` and ``skipped`` (layers left unclustered -> share of all the model's weights).

    Warns:
        UserWarning: layers holding weights were left unclustered (unsupported types such as
            DepthwiseConv2D or LSTM, or kernels smaller than their centroid count).

    Raises:
        TypeError: ``model`` is not a tf_keras model, ``spec`` not a ClusterSpec or ``data`` not
            a Dataset.
        ValueError: a layer name that does not exist or cannot be clustered, a model with nothing
            to cluster, a named kernel with fewer values than clusters, ``epochs > 0`` without
            data, all before any work starts.

    Example:
        >>> clustered = cluster_weights(model, ClusterSpec(clusters=8), data, epochs=1)
    """
    model = as_tf_keras(model)
    spec = _check_inputs(model, spec, data, epochs, learning_rate)
    keep_zeros = spec.preserve_sparsity and bool(zero_masks(model))
    counts, skipped = _plan(model, spec, keep_zeros)
    warn_skipped("clustering", skipped)
    api = tfmot().clustering.keras
    init = getattr(api.CentroidInitialization, _TFMOT_INIT[spec.init])
    set_seed(seed)

    def wrap(layer):
        # Wrapping the already built layer (of our private clone) lets the wrapper initialise its
        # centroids from the trained kernel; other layers are shared with that clone unchanged.
        if layer.name in counts:
            extra = {"preserve_sparsity": True} if keep_zeros else {}
            return api.cluster_weights(layer, number_of_clusters=counts[layer.name], cluster_centroids_init=init,
                                       **extra)
        return layer

    wrapped = keras.models.clone_model(clone(model), clone_function=wrap)
    if epochs > 0:
        wrapped.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=outputs_logits(model)),
            metrics=["accuracy"],
        )
        # Unclustered kernels train freely; with preserve_sparsity their zeros are held too.
        held = [(variable, keep) for name, _, variable, keep in zero_masks(wrapped) if name not in counts]
        callbacks = [HoldZeros(held)] if keep_zeros and held else None
        train(wrapped, data, epochs=epochs, batch_size=batch_size, seed=seed, progress=progress, compile=False,
              callbacks=callbacks)
    result = clone(api.strip_clustering(wrapped))
    if keep_zeros:
        # tfmot pins one centroid at zero, but float updates can leave a zeroed weight a hair off
        # zero: re-apply the original zeros so not one weight moves.
        for name, attribute, _, keep in zero_masks(model):
            target = getattr(result.get_layer(name), attribute)
            target.assign(np.where(keep != 0, target.numpy(), np.zeros_like(keep)))  # +0.0, never -0.0
    compile_for_classification(result)
    result.clustering = {"spec": spec.to_dict(), "layers": sorted(counts), "clusters": counts,
                         "preserve_sparsity": keep_zeros, "epochs": epochs, "skipped": skipped}
    return result


def _check_inputs(model, spec, data, epochs, learning_rate) -> ClusterSpec:
    """Every argument checked before any work: the spec, coerced from a dict when needed."""
    if isinstance(spec, dict):
        spec = ClusterSpec.from_dict(spec)
    if not isinstance(spec, ClusterSpec):
        raise TypeError(f"spec must be a ClusterSpec, got {type(spec).__name__}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs is {epochs!r}; it must be an integer >= 0")
    if epochs > 0:
        if data is None:
            raise ValueError(f"epochs is {epochs} but no data was given: fine-tuning needs data "
                             "(pass data=your Dataset, or epochs=0 to cluster without fine-tuning)")
        if not isinstance(data, Dataset):
            raise TypeError(f"data must be a compresslab Dataset, got {type(data).__name__}")
        check_model_fits(model, data)
        if not learning_rate > 0:
            raise ValueError(f"learning_rate is {learning_rate!r}; it must be > 0")
    return spec


def _plan(model, spec: ClusterSpec, keep_zeros: bool) -> tuple[dict[str, int], dict[str, float]]:
    """Centroids per layer to cluster, and the weighted layers left alone (-> share of all weights)."""
    layers = resolve_layers(model, spec.layers, eligible=is_clusterable, what="clusterable layer")
    if not layers:
        raise ValueError(nothing_to_do_message(model, "cluster", "a Conv or Dense kernel tfmot can cluster"))
    counts, too_small = {}, []
    for layer in layers:
        clusters = spec.clusters_for(layer)
        values = getattr(layer, _clustered_attribute(layer)).numpy()
        live = int(np.count_nonzero(values)) if spec.preserve_sparsity else values.size
        if spec.preserve_sparsity and live <= clusters:
            too_small.append(layer.name)  # its zeros decide how many live weights remain: skip, report
        elif values.size < clusters and spec.layers is not None:
            raise ValueError(f"layer {layer.name!r} has {values.size} kernel values, fewer than clusters="
                             f"{clusters}; choose fewer clusters or leave this layer out (layers=...)")
        elif values.size < clusters:
            too_small.append(layer.name)
        else:
            counts[layer.name] = clusters
    if not counts:
        raise ValueError(f"model {model.name!r} has nothing to cluster: every chosen kernel ({too_small}) has no "
                         "more (live) weights than its centroid count; choose fewer clusters")
    unsupported = skipped_layers(model, is_clusterable)
    total = max(1, int(model.count_params()))
    small = {name: int(np.prod(getattr(model.get_layer(name), _clustered_attribute(model.get_layer(name))).shape))
             / total for name in too_small}
    return counts, {**unsupported, **small}


def distinct_values_per_kernel(model) -> dict[str, int]:
    """Distinct values of each clusterable kernel of ``model`` (at most ``clusters`` after clustering)."""
    result = {}
    for layer in model.layers:
        attribute = _clustered_attribute(layer)
        if attribute is not None:
            result[layer.name] = int(np.unique(getattr(layer, attribute).numpy()).size)
    return result


__all__ = ["ClusterSpec", "INITS", "cluster_weights", "is_clusterable", "distinct_values_per_kernel"]
