"""Running one recipe step on a model: each technique's step calls that technique's public API.

Owns: the step runners ``_RUNNERS`` (prune, cluster, distill, quantize). Export is the runner's job
(:mod:`compresslab.pipeline.runner`).
"""

from __future__ import annotations

import numpy as np

from .._keras import keras, tfmot
from ..models import clone, compile_for_classification, set_seed, train


def _weight_masks(model) -> dict:
    """Keep-masks (non-zero) of every kernel of Conv / Dense layers: what fine-tuning must hold."""
    masks = {}
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is not None:
            values = kernel.numpy()
            if np.any(values == 0):
                masks[layer.name] = (kernel, (values != 0).astype(values.dtype))
    return masks


class _HoldZeros(keras.callbacks.Callback):
    """Re-applies pruning masks after every training step, so pruned weights stay exactly zero."""

    def __init__(self, masks: dict):
        super().__init__()
        self.masks = masks

    def on_train_batch_end(self, batch, logs=None):
        for variable, mask in self.masks.values():
            variable.assign(variable * mask)


def _finetune_holding_zeros(model, data, *, epochs, learning_rate, batch_size, seed, progress):
    masks = _weight_masks(model)
    train(model, data, epochs=epochs, batch_size=batch_size, seed=seed, learning_rate=learning_rate,
          progress=progress, callbacks=[_HoldZeros(masks)])
    for variable, mask in masks.values():
        variable.assign(variable * mask)
    return model


def _run_prune(model, data, step, seed, progress):
    from .. import prune

    epochs, schedule = step["epochs"], step["schedule"]
    layers = tuple(step["layers"]) if step["layers"] else None
    if step["sparsities"] is not None:
        pruned = prune.to_layer_sparsities(model, dict(step["sparsities"]))
    elif step["structure"] == "filters":
        return prune.filter_pruning(model, data, step["sparsity"], finetune_epochs=epochs, layers=layers,
                                    batch_size=step["batch_size"], learning_rate=step["learning_rate"], seed=seed,
                                    progress=progress)
    elif epochs > 0 and schedule != "oneshot":
        return prune.finetune(model, data, final_sparsity=step["sparsity"], schedule=schedule, epochs=epochs,
                              scope=step["scope"], layers=layers, structure=step["structure"],
                              batch_size=step["batch_size"], learning_rate=step["learning_rate"], seed=seed,
                              progress=progress)
    else:
        method = "threshold" if step["threshold"] is not None else "magnitude"
        spec = prune.PruneSpec(method=method, threshold=step["threshold"], sparsity=step["sparsity"],
                               scope=step["scope"], layers=layers, structure=step["structure"])
        pruned = prune.apply(model, spec, data)
    if epochs > 0:
        _finetune_holding_zeros(pruned, data, epochs=epochs, learning_rate=step["learning_rate"],
                                batch_size=step["batch_size"], seed=seed, progress=progress)
    return pruned


def _cluster_counts(model, step) -> dict[str, int]:
    from ..cluster import is_clusterable

    names = set(step["layers"]) if step["layers"] else None
    counts = {}
    for layer in model.layers:
        if not is_clusterable(layer) or (names is not None and layer.name not in names):
            continue
        is_conv = isinstance(layer, keras.layers.Conv2D) or "Conv" in type(layer).__name__
        clusters = step["conv_clusters"] if (is_conv and step["conv_clusters"]) else step["clusters"]
        kernel = layer.kernel.numpy()
        live = int(np.count_nonzero(kernel)) if step["preserve_sparsity"] else kernel.size
        # A kernel with fewer (non-zero) weights than centroids gains nothing from sharing: leave it.
        if live > clusters:
            counts[layer.name] = int(clusters)
    return counts


def _run_cluster(model, data, step, seed, progress):
    """Weight sharing: one of cluster.cluster_weights (plain) or tfmot with the zeros kept.

    Deep Compression clusters a PRUNED network: the pruned weights must stay zero, so when the
    model has zeros (and ``preserve_sparsity``) tfmot's sparsity-preserving clustering is used
    (one centroid pinned at zero), with a centroid count per layer (``conv_clusters`` for
    convolutions). ``compresslab.cluster.cluster_weights`` does the plain case.
    """
    from ..cluster import ClusterSpec, cluster_weights

    has_zeros = bool(_weight_masks(model))
    keep_zeros = step["preserve_sparsity"] and has_zeros
    if not keep_zeros and step["conv_clusters"] is None:
        layers = tuple(step["layers"]) if step["layers"] else None
        spec = ClusterSpec(clusters=step["clusters"], init=step["init"], layers=layers)
        return cluster_weights(model, spec, data if step["epochs"] else None, step["epochs"],
                               learning_rate=step["learning_rate"], batch_size=step["batch_size"], seed=seed,
                               progress=progress)
    counts = _cluster_counts(model, step)
    if not counts:
        raise ValueError(f"model {model.name!r} has no kernel with more weights than clusters to cluster")
    api = tfmot().clustering.keras
    init = {"linear": api.CentroidInitialization.LINEAR, "kmeans++": api.CentroidInitialization.KMEANS_PLUS_PLUS,
            "density": api.CentroidInitialization.DENSITY_BASED}[step["init"]]
    set_seed(seed)

    def wrap(layer):
        if layer.name in counts:
            return api.cluster_weights(layer, number_of_clusters=counts[layer.name], cluster_centroids_init=init,
                                       preserve_sparsity=keep_zeros)
        return layer

    wrapped = keras.models.clone_model(clone(model), clone_function=wrap)
    if step["epochs"] > 0:
        compile_for_classification(wrapped, step["learning_rate"])
        train(wrapped, data, epochs=step["epochs"], batch_size=step["batch_size"], seed=seed,
              learning_rate=step["learning_rate"], progress=progress, compile=False)
    result = clone(api.strip_clustering(wrapped))
    if keep_zeros:  # sparsity-preserving clustering keeps zeros; make sure not one weight moved off zero
        masks = _weight_masks(model)
        for layer_name, (_, mask) in masks.items():
            kernel = result.get_layer(layer_name).kernel
            kernel.assign(kernel.numpy() * mask)
    compile_for_classification(result)
    result.clustering = {"clusters": counts, "preserve_sparsity": keep_zeros, "epochs": step["epochs"]}
    return result


def _run_distill(model, data, step, seed, progress):
    from ..distill import DistillSpec, distill
    from ..models import build

    kwargs = {"width": step["width"]} if step["student"] == "student_cnn" else {}
    student = build(step["student"], data.input_shape, data.num_classes, seed=seed, **kwargs)
    spec = DistillSpec(temperature=step["temperature"], alpha=step["alpha"], epochs=step["epochs"],
                       batch_size=step["batch_size"], learning_rate=step["learning_rate"], seed=seed)
    trained, _history = distill(model, student, data, spec, progress=progress)
    return trained


def _run_quantize(model, data, step, seed, progress):
    from .. import quantize

    if step["mode"] is not None:
        if step["epochs"] > 0:
            result = quantize.aware_training(model, data, epochs=step["epochs"], bits=8, seed=seed,
                                             progress=progress,
                                             representative_images=step["representative_images"])
            return result.artifact
        return quantize.post_training(model, data, step["mode"],
                                      representative_images=step["representative_images"], seed=seed)
    spec = quantize.QuantSpec(bits=step["bits"], scheme=step["scheme"], granularity=step["granularity"])
    return quantize.simulate(model, spec, data, seed=seed)


def _run_sparse_vd(model, data, step, seed, progress):
    from ..sparse_vd import variational_dropout

    layers = tuple(step["layers"]) if step["layers"] else None
    return variational_dropout(model, data, epochs=step["epochs"], threshold=step["threshold"],
                               kl_weight=step["kl_weight"], learning_rate=step["learning_rate"],
                               batch_size=step["batch_size"], layers=layers, seed=seed, progress=progress)


_RUNNERS = {"prune": _run_prune, "sparse_vd": _run_sparse_vd, "cluster": _run_cluster, "distill": _run_distill, "quantize": _run_quantize}
