"""Weight clustering: the k-means counterpart of linear quantization.

Linear quantization puts a tensor's values on an evenly spaced grid; clustering lets the data
choose the grid: each kernel's values are replaced by the nearest of ``clusters`` centroids
(learned by k-means-style updates), so a kernel holds at most ``clusters`` distinct values
and can be stored as ``log2(clusters)``-bit indices plus a small table of centroids. A gzip'd
TFLite file of a clustered model shrinks because repeated values compress well.

Owns :class:`ClusterSpec` and :func:`cluster_weights`: plain clustering and, with
``preserve_sparsity``, clustering of a pruned model that keeps every zero (Deep Compression's
second stage), with a centroid count per layer type (``conv_clusters``). Depthwise kernels, which
tfmot does not cluster, are clustered here when asked (``depthwise_clusters``: k-means, then the
assignments held and each centroid moved to its members' mean after every fine-tuning step). Layers
it cannot cluster are reported, never skipped silently. Built on tfmot's ``cluster_weights`` and
``strip_clustering``.

Example:
    >>> clustered = cluster_weights(model, ClusterSpec(clusters=16), data, epochs=1)
    >>> cl.measure(clustered, data, name="16 clusters", technique="cluster").gzip_bytes
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._keras import keras, tf, tfmot
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
        depthwise_clusters: centroids per depthwise kernel (DepthwiseConv2D, and the depthwise
            half of SeparableConv1D/2D), which tfmot does not cluster. None (default) leaves
            them as they are, as tfmot does (reported as skipped); a number clusters them here:
            k-means over the kernel's values (started as ``init`` says), then, while fine-tuning,
            every value of a centroid is set to their mean after each step, so the kernel never
            holds more than that many distinct values.

    Raises:
        ValueError: clusters below 2, an unknown init, a non-bool preserve_sparsity, naming the
            field and what is allowed.

    Example:
        >>> ClusterSpec(clusters=8, init="linear")
        >>> ClusterSpec(clusters=32, conv_clusters=256, preserve_sparsity=True)   # Deep Compression
        >>> ClusterSpec(clusters=16, depthwise_clusters=16)   # MobileNet-style models: depthwise kernels too
    """

    clusters: int = 16
    init: str = "kmeans++"
    layers: tuple[str, ...] | None = None
    preserve_sparsity: bool = False
    conv_clusters: int | None = None
    depthwise_clusters: int | None = None

    def __post_init__(self):
        check_int(self, "clusters", 2, 65536)
        check_choice(self, "init", INITS)
        check_layers(self, "layers")
        if not isinstance(self.preserve_sparsity, (bool, np.bool_)):
            fail(self, "preserve_sparsity", self.preserve_sparsity, "it must be True or False")
        object.__setattr__(self, "preserve_sparsity", bool(self.preserve_sparsity))
        check_int(self, "conv_clusters", 2, 65536, optional=True)
        check_int(self, "depthwise_clusters", 2, 65536, optional=True)

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

    With ``spec.depthwise_clusters``, depthwise kernels (which tfmot does not cluster) are clustered
    too: k-means over each kernel's values, then the assignments are held while fine-tuning and each
    centroid follows the mean of its values (:class:`HoldShared`).

    Returns:
        A compiled tf_keras model; ``model.clustering`` holds ``spec``, ``layers`` (clustered),
        ``clusters`` (centroids per layer tfmot clustered), ``depthwise_clusters`` (centroids per
        depthwise kernel clustered here), ``preserve_sparsity`` (whether zeros were kept),
        ``epochs`` and ``skipped`` (layers left unclustered -> share of all the model's weights).

    Warns:
        UserWarning: layers holding weights were left unclustered (unsupported types such as LSTM,
            DepthwiseConv2D without ``depthwise_clusters``, or kernels smaller than their centroid count).

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
    counts, shared, skipped = _plan(model, spec, keep_zeros)
    warn_skipped("clustering", skipped)
    api = tfmot().clustering.keras
    init = getattr(api.CentroidInitialization, _TFMOT_INIT[spec.init])
    set_seed(seed)
    base = clone(model)
    # Depthwise kernels (tfmot leaves them alone) are clustered here first: k-means, values set to centroids.
    assignments = {name: share_assignments(base.get_layer(name).depthwise_kernel.numpy(), clusters,
                                           init=spec.init, keep_zeros=keep_zeros, seed=seed)
                   for name, clusters in shared.items()}
    _holding(base, assignments, shared).hold()

    def wrap(layer):
        # Wrapping the already built layer (of our private clone) lets the wrapper initialise its
        # centroids from the trained kernel; other layers are shared with that clone unchanged.
        if layer.name in counts:
            extra = {"preserve_sparsity": True} if keep_zeros else {}
            return api.cluster_weights(layer, number_of_clusters=counts[layer.name], cluster_centroids_init=init,
                                       **extra)
        return layer

    wrapped = keras.models.clone_model(base, clone_function=wrap) if counts else base
    if epochs > 0:
        wrapped.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=outputs_logits(model)),
            metrics=["accuracy"],
        )
        # Unclustered kernels train freely; with preserve_sparsity their zeros are held too. Depthwise
        # kernels clustered here keep their assignments (and zeros): HoldShared moves only the centroids.
        held = [(variable, keep) for name, attribute, variable, keep in zero_masks(wrapped)
                if name not in counts and not (name in shared and attribute == "depthwise_kernel")]
        callbacks = [HoldZeros(held)] if keep_zeros and held else []
        if shared:
            callbacks.append(_holding(wrapped, assignments, shared))
        train(wrapped, data, epochs=epochs, batch_size=batch_size, seed=seed, progress=progress, compile=False,
              callbacks=callbacks or None)
    result = clone(api.strip_clustering(wrapped) if counts else wrapped)
    if shared:  # once more on the final weights (idempotent): at most that many values per kernel
        _holding(result, assignments, shared).hold()
    if keep_zeros:
        # tfmot pins one centroid at zero, but float updates can leave a zeroed weight a hair off
        # zero: re-apply the original zeros so not one weight moves.
        for name, attribute, _, keep in zero_masks(model):
            target = getattr(result.get_layer(name), attribute)
            target.assign(np.where(keep != 0, target.numpy(), np.zeros_like(keep)))  # +0.0, never -0.0
    compile_for_classification(result)
    result.clustering = {"spec": spec.to_dict(), "layers": sorted(set(counts) | set(shared)), "clusters": counts,
                         "depthwise_clusters": shared, "preserve_sparsity": keep_zeros, "epochs": epochs,
                         "skipped": skipped}
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


def _plan(model, spec: ClusterSpec, keep_zeros: bool) -> tuple[dict[str, int], dict[str, int], dict[str, float]]:
    """Centroids per layer for tfmot to cluster, centroids per depthwise kernel to cluster here, and the
    weighted layers left alone (-> share of all weights)."""
    eligible = _handled(spec)
    layers = resolve_layers(model, spec.layers, eligible=eligible, what="clusterable layer")
    if not layers:
        raise ValueError(nothing_to_do_message(model, "cluster", "a Conv or Dense kernel tfmot can cluster"))
    counts, shared, too_small = {}, {}, []
    for layer in layers:
        for attribute, clusters, plan in ((_clustered_attribute(layer), spec.clusters_for(layer), counts),
                                          (depthwise_attribute(layer), spec.depthwise_clusters, shared)):
            if attribute is None or clusters is None:
                continue
            values = getattr(layer, attribute).numpy()
            live = int(np.count_nonzero(values)) if spec.preserve_sparsity else values.size
            if spec.preserve_sparsity and live <= clusters:
                too_small.append((layer.name, attribute))  # its zeros decide how many live weights remain
            elif values.size < clusters and spec.layers is not None:
                raise ValueError(f"layer {layer.name!r} has {values.size} {attribute} values, fewer than "
                                 f"clusters={clusters}; choose fewer clusters or leave this layer out (layers=...)")
            elif values.size < clusters:
                too_small.append((layer.name, attribute))
            else:
                plan[layer.name] = int(clusters)
    if not counts and not shared:
        raise ValueError(f"model {model.name!r} has nothing to cluster: every chosen kernel "
                         f"({[name for name, _ in too_small]}) has no more (live) weights than its centroid count; "
                         "choose fewer clusters")
    unsupported = skipped_layers(model, eligible)
    total = max(1, int(model.count_params()))
    small = {}
    for name, attribute in too_small:
        small[name] = small.get(name, 0.0) + int(np.prod(getattr(model.get_layer(name), attribute).shape)) / total
    return counts, shared, {**unsupported, **small}


def depthwise_attribute(layer) -> str | None:
    """``"depthwise_kernel"`` for DepthwiseConv2D and SeparableConv layers (the kernel tfmot leaves alone)."""
    return "depthwise_kernel" if "depthwise_kernel" in kernel_attributes(layer) else None


def _handled(spec: ClusterSpec) -> Callable:
    """Which layers this spec clusters something in: tfmot's set, plus depthwise layers when asked."""
    if spec.depthwise_clusters is None:
        return is_clusterable
    return lambda layer: is_clusterable(layer) or depthwise_attribute(layer) is not None


def share_assignments(values: np.ndarray, clusters: int, *, init: str = "kmeans++", keep_zeros: bool = False,
                      seed: int = 0) -> np.ndarray:
    """Cluster a kernel's values with k-means: the centroid index of each value (-1 for a held zero).

    The centroids start as ``init`` says (``"kmeans++"``, ``"linear"``: evenly spaced from min to
    max, ``"density"``: evenly spaced quantiles) and move by Lloyd's iterations (scikit-learn's
    ``KMeans``). With ``keep_zeros``, zero values are not clustered: they get -1 and stay zero.

    Example:
        >>> share_assignments(np.array([0.1, 0.11, -0.5, 0.0]), 2, keep_zeros=True)
        array([ 0,  0,  1, -1])
    """
    from sklearn.cluster import KMeans, kmeans_plusplus

    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    live = flat != 0 if keep_zeros else np.ones(flat.shape, dtype=bool)
    points = flat[live].reshape(-1, 1)
    distinct = np.unique(points).size
    labels = np.full(flat.shape, -1, dtype=np.int64)
    if distinct <= clusters:  # already at most that many values: each distinct value is a centroid
        labels[live] = np.unique(points, return_inverse=True)[1].reshape(-1)
        return labels
    if init == "linear":
        start = np.linspace(points.min(), points.max(), clusters)
    elif init == "density":
        start = np.quantile(points, (np.arange(clusters) + 0.5) / clusters)
    else:
        start = kmeans_plusplus(points, clusters, random_state=seed)[0].reshape(-1)
    fitted = KMeans(clusters, init=start.reshape(-1, 1), n_init=1, random_state=seed).fit(points)
    labels[live] = fitted.labels_
    return labels


class HoldShared(keras.callbacks.Callback):
    """Keeps clustered kernels clustered while they train: after every step, each value is set to the
    mean of its centroid's values (the assignments never change; a held zero stays zero).

    The mean of the members after a step is the centroid moved by the mean of their updates, the
    centroid fine-tuning of Deep Compression. Used for the depthwise kernels tfmot does not cluster.

    Args:
        groups: ``(variable, labels, clusters)`` triples; ``labels`` from :func:`share_assignments`.
    """

    def __init__(self, groups: list):
        super().__init__()
        self.groups = []
        for variable, labels, clusters in groups:
            labels = np.asarray(labels).reshape(-1)
            # Held zeros go to an extra segment whose value is always 0.
            segments = np.where(labels < 0, clusters, labels).astype(np.int32)
            self.groups.append((variable, tf.constant(segments), int(clusters)))

    def on_train_batch_end(self, batch, logs=None):
        self.hold()

    def hold(self) -> None:
        """Set every clustered value to its centroid's mean now."""
        for variable, segments, clusters in self.groups:
            flat = tf.reshape(variable, [-1])
            means = tf.math.unsorted_segment_mean(flat, segments, clusters + 1)
            means = tf.concat([means[:clusters], tf.zeros([1], dtype=means.dtype)], axis=0)
            variable.assign(tf.reshape(tf.gather(means, segments), tf.shape(variable)))


def _holding(model, assignments: dict, shared: dict) -> HoldShared:
    """A :class:`HoldShared` over ``model``'s depthwise kernels clustered here (``shared``: name -> centroids)."""
    return HoldShared([(_depthwise_variable(model, name), assignments[name], shared[name]) for name in shared])


def _depthwise_variable(model, name: str):
    """The depthwise kernel variable of layer ``name`` in ``model`` (looking inside tfmot's wrappers)."""
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        if inner.name == name:
            return inner.depthwise_kernel
    raise KeyError(name)


def distinct_values_per_kernel(model) -> dict[str, int]:
    """Distinct values of each clusterable kernel of ``model`` (at most ``clusters`` after clustering)."""
    result = {}
    for layer in model.layers:
        attribute = _clustered_attribute(layer)
        if attribute is not None:
            result[layer.name] = int(np.unique(getattr(layer, attribute).numpy()).size)
    return result


__all__ = ["ClusterSpec", "INITS", "HoldShared", "cluster_weights", "depthwise_attribute", "is_clusterable",
           "distinct_values_per_kernel", "share_assignments"]
