"""Running one recipe step on a model: each technique's step calls that technique's public API.

Owns: the step runners ``_RUNNERS`` (prune, cluster, distill, quantize). Export is the runner's job
(:mod:`compresslab.pipeline.runner`).
"""

from __future__ import annotations


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
        return prune.finetune_holding_zeros(pruned, data, epochs=epochs, learning_rate=step["learning_rate"],
                                            batch_size=step["batch_size"], seed=seed, progress=progress)
    return pruned


def _run_cluster(model, data, step, seed, progress):
    """Weight sharing through :func:`compresslab.cluster.cluster_weights`.

    Deep Compression clusters a PRUNED network: with ``preserve_sparsity`` (the default of the step)
    and zeros in the model, the zeros stay exactly zero; ``conv_clusters`` sets the centroids of
    convolution kernels, ``depthwise_clusters`` those of depthwise kernels (None: left unclustered).
    """
    from ..cluster import ClusterSpec, cluster_weights
    from ..prune.masks import zero_masks

    layers = tuple(step["layers"]) if step["layers"] else None
    spec = ClusterSpec(clusters=step["clusters"], conv_clusters=step["conv_clusters"],
                       depthwise_clusters=step["depthwise_clusters"], init=step["init"], layers=layers, preserve_sparsity=bool(step["preserve_sparsity"] and zero_masks(model)))
    return cluster_weights(model, spec, data if step["epochs"] else None, step["epochs"],
                           learning_rate=step["learning_rate"], batch_size=step["batch_size"], seed=seed,
                           progress=progress)


def _run_distill(model, data, step, seed, progress):
    from ..distill import DistillSpec, distill
    from ..models import build

    kwargs = {"width": step["width"]} if step["student"] == "student_cnn" else {}
    student = build(step["student"], data.input_shape, data.num_classes, seed=seed, **kwargs)
    spec = DistillSpec(temperature=step["temperature"], alpha=step["alpha"], epochs=step["epochs"],
                       batch_size=step["batch_size"], learning_rate=step["learning_rate"], seed=seed,
                       shift=step["shift"])
    trained, _history = distill(model, student, data, spec, progress=progress)
    return trained


def _run_quantize(model, data, step, seed, progress):
    from .. import quantize

    if step["mode"] is not None:
        if step["epochs"] > 0:
            result = quantize.aware_training(model, data, epochs=step["epochs"], bits=8, seed=seed,
                                             progress=progress, learning_rate=step["learning_rate"],
                                             batch_size=step["batch_size"],
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
