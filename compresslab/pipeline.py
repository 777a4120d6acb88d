"""Chained techniques: declarative recipes, Deep Compression, auto-compression and sweeps.

A *recipe* is a list of steps, each a dict with a ``"step"`` key (``distill``, ``prune``,
``cluster``, ``quantize`` or ``export``) and that step's parameters, as Python or JSON:

    [{"step": "prune", "sparsity": 0.9, "scope": "global", "epochs": 2},
     {"step": "cluster", "clusters": 16, "conv_clusters": 32, "epochs": 1},
     {"step": "export", "format": "codec"}]

:func:`run_pipeline` checks the whole recipe first and lists EVERY problem in one
``ValueError`` before any work starts, then runs the steps and measures a
:class:`~compresslab.Record` per stage. ``deep_compression`` is the built-in recipe of Han, Mao
and Dally (ICLR 2016): magnitude pruning with fine-tuning (mask held), weight sharing by
clustering with centroid fine-tuning (zeros kept), then entropy coding into compresslab's own
file format (:mod:`compresslab.codec`); its ratio is the real file's bytes against dense float32.

:func:`autocompress` searches sparsities (per layer, from a sensitivity scan), cluster counts
(index bits) and int8 quantization for the smallest (or fastest) variant within an accuracy
budget; :func:`sweep` runs every configuration of a grid, in parallel, into an experiment log.

Example:
    >>> result = run_pipeline(model, data, "deep_compression", log="runs/dc.jsonl")
    >>> result.final.extra["compressed_bytes"], result.ratio
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import codec
from ._keras import keras, tfmot
from .data import Dataset
from .measure import measure
from .models import check_model_fits, clone, compile_for_classification, set_seed, train
from .records import ExperimentLog, Record
from .sizes import deployable_bytes
from .tflite import CONVERSION_MODES, TFLiteArtifact, convert

STEPS = ("distill", "prune", "cluster", "quantize", "export")
TECHNIQUES = {"distill": "distill", "prune": "prune", "cluster": "cluster", "quantize": "quantize",
              "export": "pipeline"}
PTQ_MODES = ("dynamic", "float16", "int8")
PRUNE_SCHEDULES = ("polynomial", "constant", "oneshot")
EXPORT_FORMATS = ("codec", "tflite")
OBJECTIVES = ("size", "latency")

# Parameters each step takes, with their defaults (None: not given).
STEP_PARAMETERS: dict[str, dict] = {
    "distill": {"student": "student_cnn", "width": 1.0, "temperature": 10.0, "alpha": 0.1, "epochs": 5,
                "batch_size": 64, "learning_rate": 1e-3},
    "prune": {"sparsity": None, "threshold": None, "sparsities": None, "scope": "layer", "layers": None,
              "structure": "unstructured", "epochs": 0, "schedule": "polynomial", "learning_rate": 1e-4,
              "batch_size": 64},
    "cluster": {"clusters": 16, "conv_clusters": None, "init": "linear", "layers": None, "epochs": 0,
                "learning_rate": 1e-4, "batch_size": 64, "preserve_sparsity": True},
    "quantize": {"mode": None, "bits": None, "scheme": "symmetric", "granularity": "per_channel",
                 "epochs": 0, "representative_images": 300},
    "export": {"format": "codec", "path": None, "mode": "float32"},
}


def deep_compression_recipe(*, sparsity: float = 0.92, scope: str = "global", prune_epochs: int = 2,
                            clusters: int = 16, conv_clusters: int | None = 32, cluster_epochs: int = 1,
                            path: str | None = None) -> list[dict]:
    """The Deep Compression recipe (Han, Mao and Dally, ICLR 2016) as a list of steps.

    Prune (magnitude, gradual, fine-tuned with the mask held) -> share weights (``clusters``
    centroids per dense kernel, ``conv_clusters`` per convolution kernel, zeros kept, centroids
    fine-tuned) -> entropy-code into compresslab's file format.

    Example:
        >>> run_pipeline(model, data, deep_compression_recipe(sparsity=0.9))
    """
    return [
        {"step": "prune", "sparsity": sparsity, "scope": scope, "epochs": prune_epochs, "schedule": "polynomial"},
        {"step": "cluster", "clusters": clusters, "conv_clusters": conv_clusters, "epochs": cluster_epochs},
        {"step": "export", "format": "codec", "path": path},
    ]


RECIPES: dict[str, Callable[[], list[dict]]] = {"deep_compression": deep_compression_recipe}


# ---------------------------------------------------------------------------------------------
# Validation: every problem of a recipe, before any work


def _is_int(value, low=None) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and (low is None or value >= low)


def _is_number(value, low=None, low_open=False) -> bool:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    return ok


def _parse(recipe):
    """A recipe as a list of step dicts (from a list, a JSON text or a built-in recipe's name)."""
    if isinstance(recipe, str):
        if recipe in RECIPES:
            return RECIPES[recipe](), None
        try:
            recipe = json.loads(recipe)
        except json.JSONDecodeError as error:
            return None, (f"the recipe {recipe[:60]!r} is neither a built-in recipe ({', '.join(RECIPES)}) nor "
                          f"valid JSON ({error})")
    if isinstance(recipe, dict) and "steps" in recipe:
        recipe = recipe["steps"]
    if isinstance(recipe, dict):
        recipe = [recipe]
    if not isinstance(recipe, (list, tuple)):
        return None, f"a recipe is a list of steps (dicts with a 'step' key), got {type(recipe).__name__}"
    return [copy.deepcopy(step) for step in recipe], None


def _check_step(index: int, step, problems: list[str]):
    """Check one step's name and parameters; returns the step with defaults filled (or None)."""
    where = f"step {index + 1}"
    if not isinstance(step, dict):
        problems.append(f"{where}: a step is a dict with a 'step' key, got {type(step).__name__} {step!r}")
        return None
    name = step.get("step")
    if name not in STEPS:
        problems.append(f"{where}: unknown step {name!r}; steps are {', '.join(STEPS)}")
        return None
    where = f"step {index + 1} ({name})"
    allowed = STEP_PARAMETERS[name]
    unknown = sorted(set(step) - set(allowed) - {"step"})
    if unknown:
        problems.append(f"{where}: unknown parameter(s) {unknown}; {name} takes {sorted(allowed)}")
    filled = {"step": name, **{k: v for k, v in allowed.items()}, **{k: v for k, v in step.items() if k in allowed}}
    _CHECKS[name](where, filled, problems)
    return filled


def _spec_problem(where: str, build: Callable, problems: list[str]) -> None:
    try:
        build()
    except (ValueError, TypeError) as error:
        problems.append(f"{where}: {error}")


def _check_epochs(where, params, problems, low=0):
    if not _is_int(params["epochs"], low):
        problems.append(f"{where}: epochs is {params['epochs']!r}; it must be an integer >= {low}")
    if "learning_rate" in params and not _is_number(params["learning_rate"], 0, low_open=True):
        problems.append(f"{where}: learning_rate is {params['learning_rate']!r}; it must be a number > 0")
    if "batch_size" in params and not _is_int(params["batch_size"], 1):
        problems.append(f"{where}: batch_size is {params['batch_size']!r}; it must be an integer >= 1")


def _check_distill(where, params, problems):
    from .distill import DistillSpec
    from .models import ARCHITECTURES

    if params["student"] not in ARCHITECTURES:
        problems.append(f"{where}: student is {params['student']!r}; choose a zoo architecture: "
                        f"{', '.join(ARCHITECTURES)}")
    if not _is_number(params["width"], 0, low_open=True):
        problems.append(f"{where}: width is {params['width']!r}; it must be a number > 0")
    _spec_problem(where, lambda: DistillSpec(temperature=params["temperature"], alpha=params["alpha"],
                                             epochs=params["epochs"], batch_size=params["batch_size"],
                                             learning_rate=params["learning_rate"]), problems)


def _check_prune(where, params, problems):
    from .prune import PruneSpec

    _check_epochs(where, params, problems)
    if params["schedule"] not in PRUNE_SCHEDULES:
        problems.append(f"{where}: schedule is {params['schedule']!r}; allowed: {', '.join(PRUNE_SCHEDULES)}")
    given = [k for k in ("sparsity", "threshold", "sparsities") if params[k] is not None]
    if len(given) != 1:
        problems.append(f"{where}: give exactly one of sparsity, threshold or sparsities (a dict layer -> "
                        f"sparsity); got {given or 'none'}")
        return
    if params["sparsities"] is not None:
        sparsities = params["sparsities"]
        if not isinstance(sparsities, dict) or not sparsities:
            problems.append(f"{where}: sparsities must be a non-empty dict {{layer name: sparsity in [0, 1)}}")
            return
        for layer, value in sparsities.items():
            _spec_problem(f"{where}, layer {layer!r}", lambda v=value, n=layer: PruneSpec(sparsity=v, layers=(n,)),
                          problems)
        return
    method = "threshold" if params["threshold"] is not None else "magnitude"
    layers = tuple(params["layers"]) if isinstance(params["layers"], list) else params["layers"]
    _spec_problem(where, lambda: PruneSpec(method=method, threshold=params["threshold"],
                                           sparsity=params["sparsity"], scope=params["scope"], layers=layers,
                                           structure=params["structure"]), problems)
    if _is_int(params["epochs"], 1) and params["schedule"] != "oneshot":
        if method == "threshold":
            problems.append(f"{where}: a gradual schedule ({params['schedule']!r}) prunes to a sparsity; with a "
                            "threshold use schedule 'oneshot' (prune once, then fine-tune with the mask held)")
        if params["structure"] == "filters":
            problems.append(f"{where}: filter pruning is fine-tuned after the surgery: use schedule 'oneshot'")


def _check_cluster(where, params, problems):
    from .cluster import ClusterSpec

    _check_epochs(where, params, problems)
    layers = tuple(params["layers"]) if isinstance(params["layers"], list) else params["layers"]
    _spec_problem(where, lambda: ClusterSpec(clusters=params["clusters"], init=params["init"], layers=layers),
                  problems)
    if params["conv_clusters"] is not None:
        _spec_problem(where + ", conv_clusters",
                      lambda: ClusterSpec(clusters=params["conv_clusters"], init=params["init"]), problems)
    if not isinstance(params["preserve_sparsity"], bool):
        problems.append(f"{where}: preserve_sparsity is {params['preserve_sparsity']!r}; it must be True or False")


def _check_quantize(where, params, problems):
    from .quantize import QuantSpec

    mode, bits = params["mode"], params["bits"]
    if (mode is None) == (bits is None):
        problems.append(f"{where}: give either mode ({', '.join(PTQ_MODES)}: a TFLite file) or bits (simulated "
                        "b-bit weights in a Keras model), not both or neither")
        return
    if not _is_int(params["epochs"], 0):
        problems.append(f"{where}: epochs is {params['epochs']!r}; it must be an integer >= 0")
    if mode is not None:
        if mode not in PTQ_MODES:
            problems.append(f"{where}: mode is {mode!r}; allowed: {', '.join(PTQ_MODES)}")
        if _is_int(params["epochs"], 1) and mode != "int8":
            problems.append(f"{where}: quantization-aware training (epochs > 0) produces an int8 file: use "
                            "mode 'int8' or epochs 0")
        if not _is_int(params["representative_images"], 1):
            problems.append(f"{where}: representative_images is {params['representative_images']!r}; it must be "
                            "an integer >= 1")
        return
    if _is_int(params["epochs"], 1):
        problems.append(f"{where}: epochs > 0 (quantization-aware training) needs mode 'int8'")
    _spec_problem(where, lambda: QuantSpec(bits=bits, scheme=params["scheme"], granularity=params["granularity"]),
                  problems)


def _check_export(where, params, problems):
    if params["format"] not in EXPORT_FORMATS:
        problems.append(f"{where}: format is {params['format']!r}; allowed: {', '.join(EXPORT_FORMATS)}")
    if params["mode"] not in CONVERSION_MODES:
        problems.append(f"{where}: mode is {params['mode']!r}; allowed: {', '.join(CONVERSION_MODES)}")
    if params["format"] == "codec" and params["mode"] != "float32":
        problems.append(f"{where}: mode applies to format 'tflite' only (the codec stores the Keras weights)")
    if params["path"] is not None and not isinstance(params["path"], (str, os.PathLike)):
        problems.append(f"{where}: path is {params['path']!r}; it must be a file path or None")


_CHECKS = {"distill": _check_distill, "prune": _check_prune, "cluster": _check_cluster,
           "quantize": _check_quantize, "export": _check_export}


def _check_order(steps: list, problems: list[str]) -> None:
    tflite_at = None
    for index, step in enumerate(steps):
        if step is None:
            continue
        name = step["step"]
        where = f"step {index + 1} ({name})"
        if name == "export" and index != len(steps) - 1:
            problems.append(f"{where}: export must be the last step; {len(steps) - index - 1} step(s) follow it")
        if tflite_at is not None:
            if name == "export":
                if step["format"] != "tflite" or step["mode"] != "float32":
                    problems.append(f"{where}: step {tflite_at + 1} already made a quantized TFLite file; it can only "
                                    "be exported as it is (format 'tflite', no mode)")
            else:
                done = {"prune": "pruned", "cluster": "clustered", "distill": "distilled from",
                        "quantize": "quantized again"}[name]
                problems.append(f"{where}: comes after step {tflite_at + 1} (quantize to a TFLite file); a TFLite "
                                f"file cannot be {done}: move {name!r} before the quantize step")
        if name == "quantize" and step.get("mode") is not None and tflite_at is None:
            tflite_at = index


def _check_layers_exist(model, steps: list, problems: list[str]) -> None:
    from .cluster import is_clusterable
    from .prune import is_prunable
    from .specs import resolve_layers

    for index, step in enumerate(steps):
        if step is None:
            continue
        if step["step"] == "distill":
            return  # later steps act on the student
        where = f"step {index + 1} ({step['step']})"
        names = step.get("layers")
        if step["step"] == "prune" and isinstance(step.get("sparsities"), dict):
            names = list(step["sparsities"])
        if not names or step["step"] not in ("prune", "cluster"):
            continue
        eligible = is_prunable if step["step"] == "prune" else is_clusterable
        try:
            resolve_layers(model, tuple(names), eligible=eligible, what=f"{step['step']}-able layer")
        except ValueError as error:
            problems.append(f"{where}: {error}")


def _step_number(problem: str) -> int:
    if problem.startswith("step "):
        number = problem[5:].split(" ", 1)[0].rstrip(":,")
        if number.isdigit():
            return int(number)
    return 10 ** 6


def validate_recipe(recipe, model=None, data: Dataset | None = None) -> list[dict]:
    """Check a whole recipe and return its steps with defaults filled in.

    Args:
        recipe: a list of step dicts, a JSON text of one, or a built-in recipe's name
            (``"deep_compression"``).
        model: when given, layer names in the steps are checked against it (and it against ``data``).
        data: when given with ``model``, the model must fit the data.

    Returns:
        The steps, each a dict with every parameter of its step.

    Raises:
        ValueError: listing EVERY problem found (unknown steps or parameters, impossible orders such
            as a step after ``export`` or pruning after quantizing to TFLite, bad values from each
            technique's spec, missing layers).

    Example:
        >>> validate_recipe([{"step": "prune", "sparsity": 0.8}, {"step": "export"}])
    """
    problems: list[str] = []
    steps, error = _parse(recipe)
    if error:
        raise ValueError(f"the recipe has 1 problem:\n  - {error}")
    if not steps:
        raise ValueError("the recipe has 1 problem:\n  - it has no steps; give at least one of " + ", ".join(STEPS))
    checked = [_check_step(index, step, problems) for index, step in enumerate(steps)]
    _check_order(checked, problems)
    if model is not None:
        if not isinstance(model, keras.Model):
            problems.append(f"the model is a {type(model).__name__}, not a tf_keras Model")
        else:
            if data is not None:
                try:
                    check_model_fits(model, data)
                except ValueError as error:
                    problems.append(f"model and data: {error}")
            _check_layers_exist(model, checked, problems)
    if data is not None and not isinstance(data, Dataset):
        problems.append(f"data is a {type(data).__name__}, not a compresslab Dataset")
    if problems:
        problems.sort(key=_step_number)  # stable: each step's problems together, in recipe order
        listing = "\n".join(f"  - {problem}" for problem in problems)
        raise ValueError(f"the recipe has {len(problems)} problem(s); nothing was run:\n{listing}")
    return [_plain_step(step) for step in checked]


def _plain_step(step: dict) -> dict:
    """JSON-friendly copy (tuples as lists, paths as text) so a step keys records and logs."""
    result = {}
    for key, value in step.items():
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, os.PathLike):
            value = str(value)
        result[key] = value
    return result


# ---------------------------------------------------------------------------------------------
# Running the steps


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
    from . import prune

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
    from .cluster import is_clusterable

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
    from .cluster import ClusterSpec, cluster_weights

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
    from .distill import DistillSpec, distill
    from .models import build

    kwargs = {"width": step["width"]} if step["student"] == "student_cnn" else {}
    student = build(step["student"], data.input_shape, data.num_classes, seed=seed, **kwargs)
    spec = DistillSpec(temperature=step["temperature"], alpha=step["alpha"], epochs=step["epochs"],
                       batch_size=step["batch_size"], learning_rate=step["learning_rate"], seed=seed)
    trained, _history = distill(model, student, data, spec, progress=progress)
    return trained


def _run_quantize(model, data, step, seed, progress):
    from . import quantize

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


_RUNNERS = {"prune": _run_prune, "cluster": _run_cluster, "distill": _run_distill, "quantize": _run_quantize}


def describe_step(step: dict) -> str:
    """A short label of a step, e.g. ``"prune 90% (global, 2 epochs)"``."""
    name = step["step"]
    if name == "prune":
        if step.get("sparsities"):
            target = "per layer " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in step["sparsities"].items())
        elif step.get("threshold") is not None:
            target = f"|w| < {step['threshold']:g}"
        else:
            target = f"{100 * step['sparsity']:.0f}%"
        return f"prune {target}" + (f" ({step['epochs']} ep)" if step.get("epochs") else "")
    if name == "cluster":
        text = f"cluster {step['clusters']}"
        if step.get("conv_clusters"):
            text += f"/{step['conv_clusters']} conv"
        return text + (f" ({step['epochs']} ep)" if step.get("epochs") else "")
    if name == "quantize":
        if step.get("mode"):
            return f"quantize {step['mode']}" + (" QAT" if step.get("epochs") else "")
        return f"quantize {step['bits']}-bit"
    if name == "distill":
        return f"distill into {step['student']}" + (f" x{step['width']:g}" if step["student"] == "student_cnn" else "")
    return f"export {step['format']}"


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` produced.

    Attributes:
        model: the final Keras model (for a codec export: the model DECODED from the file), or
            None when the pipeline ended in a TFLite file.
        artifact: the final TFLite file, when there is one.
        blob: the bytes of compresslab's compressed file, when the recipe exported with the codec.
        path: where the export was written, if a path was given.
        records: one measured Record per stage (the input model first when measured).
        steps: the validated steps.
        seconds: wall time of the whole pipeline.
    """

    model: object
    artifact: TFLiteArtifact | None
    blob: bytes | None
    path: Path | None
    records: list[Record]
    steps: list[dict]
    seconds: float

    @property
    def final(self) -> Record:
        """The record of the last stage."""
        return self.records[-1]

    @property
    def ratio(self) -> float | None:
        """Dense float32 bytes of the input model / bytes of the final file (codec, else gzip'd TFLite)."""
        reference = self.records[0].dense_float32_bytes
        size = self.final.extra.get("compressed_bytes") if self.blob is not None else self.final.gzip_bytes
        return reference / size if reference and size else None

    def frame(self):
        """The stage records as a DataFrame."""
        from .records import to_frame

        return to_frame(self.records)


def _emit(progress, text: str) -> None:
    if progress is True:
        print(text, flush=True)


def _measure_stage(current, data, *, name, technique, spec, seed, latency, extra):
    extra = dict(extra)
    if isinstance(current, keras.Model):
        extra["compressed_bytes"] = len(codec.encode(current))
    return measure(current, data, name=name, technique=technique, spec=spec, tflite=True, latency=latency,
                   seed=seed, extra=extra)


def run_pipeline(model, data: Dataset, recipe, log=None, *, name: str | None = None, seed: int = 0,
                 measure_input: bool = True, latency: bool = False, progress: bool | Callable = False
                 ) -> PipelineResult:
    """Validate a recipe, run its steps, and measure a Record per stage.

    Every stage is measured on the held-out test split (a TFLite stage in LiteRT) with its real
    file sizes; Keras stages also get ``extra["compressed_bytes"]``: the bytes of compresslab's
    compressed file of that stage (sparse positions after pruning, codebooks after clustering).

    Args:
        model: a trained tf_keras model (not modified).
        data: the :class:`Dataset` (training split for fine-tuning, test split for accuracy).
        recipe: a list of steps, a JSON text of one, or ``"deep_compression"``.
        log: an :class:`ExperimentLog` or a path: every stage's Record is appended to it.
        name: label prefix of the records (default: the recipe's name or ``"pipeline"``).
        seed: seeds every step's training.
        measure_input: measure the input model first (stage 0, technique ``"baseline"``).
        latency: measure LiteRT latency of every stage too (slower).
        progress: True to print a line per stage, or ``callable(stage, total, record)``.

    Returns:
        A :class:`PipelineResult`.

    Raises:
        ValueError: every problem of the recipe, listed, before any work starts.

    Example:
        >>> result = run_pipeline(model, data, [{"step": "prune", "sparsity": 0.8, "epochs": 1},
        ...                                     {"step": "quantize", "mode": "int8"}])
        >>> result.final.accuracy, result.final.tflite_bytes
    """
    label = name or (recipe if isinstance(recipe, str) and recipe in RECIPES else "pipeline")
    steps = validate_recipe(recipe, model, data)
    if not isinstance(model, keras.Model) or not isinstance(data, Dataset):
        raise ValueError("run_pipeline needs a tf_keras Model and a compresslab Dataset")
    log = ExperimentLog(log) if isinstance(log, (str, os.PathLike)) else log
    records: list[Record] = []
    started = time.perf_counter()
    train_progress = progress if progress is True else False

    def keep(record: Record, index: int) -> None:
        records.append(record)
        if log is not None:
            log.append(record)
        if callable(progress) and progress is not True:
            progress(index, len(steps), record)
        size = record.extra.get("compressed_bytes") or record.gzip_bytes
        _emit(progress, f"[{index}/{len(steps)}] {record.name}: accuracy {100 * record.accuracy:.2f}%, "
                        f"{size:,} bytes, {record.extra.get('seconds', 0):.1f} s")

    if measure_input:
        keep(_measure_stage(model, data, name=f"{label}: input", technique="baseline",
                            spec={"recipe": [], "stage": 0}, seed=seed, latency=latency,
                            extra={"stage": 0, "step": "input", "seconds": 0.0}), 0)
    current = model
    blob, path = None, None
    for index, step in enumerate(steps, start=1):
        begin = time.perf_counter()
        spec = {"recipe": steps[:index], "stage": index}
        extra = {"stage": index, "step": step["step"], "label": describe_step(step)}
        if step["step"] == "export":
            if step["format"] == "codec":
                blob = codec.encode(current, name=label)
                if step["path"]:
                    path = codec.write(blob, step["path"])
                current = codec.decode(blob)  # measured from the file, not from the model it came from
                extra.update(compressed_bytes=len(blob),
                             compressed_ratio=4 * current.count_params() / len(blob))
            else:
                if isinstance(current, keras.Model):
                    representative = data.x_train[:300] if step["mode"] == "int8" else None
                    current = convert(current, step["mode"], representative=representative, name=label)
                if step["path"]:
                    path = current.save(step["path"])
            extra["seconds"] = time.perf_counter() - begin
            record = measure(current, data, name=f"{label}: {index}. {describe_step(step)}",
                             technique=TECHNIQUES["export"], spec=spec, tflite=True, latency=latency, seed=seed,
                             extra=extra)
            if path is not None:
                record.extra["path"] = str(path)
            keep(record, index)
            continue
        current = _RUNNERS[step["step"]](current, data, step, seed, train_progress)
        extra["seconds"] = time.perf_counter() - begin
        keep(_measure_stage(current, data, name=f"{label}: {index}. {describe_step(step)}",
                            technique=TECHNIQUES[step["step"]], spec=spec, seed=seed, latency=latency,
                            extra=extra), index)
    artifact = current if isinstance(current, TFLiteArtifact) else None
    final_model = current if isinstance(current, keras.Model) else None
    return PipelineResult(final_model, artifact, blob, path, records, steps, time.perf_counter() - started)


# ---------------------------------------------------------------------------------------------
# Auto-compression


@dataclass
class AutocompressResult:
    """The outcome of :func:`autocompress`.

    Attributes:
        best: the chosen variant: a Keras model (decoded from its compressed file) or a TFLiteArtifact.
        best_record: its Record.
        blob: its compressed file's bytes (codec candidates), else None.
        baseline: the Record of the input model.
        records: every variant tried, in order (each was also appended to the log).
        met: whether ``best`` is within the accuracy budget (the input model always is).
        interrupted: the search was stopped (KeyboardInterrupt) and the best so far returned.
        seconds: wall time of the search.
        notes: what the search did, in order (for people reading the result).
    """

    best: object
    best_record: Record
    blob: bytes | None
    baseline: Record
    records: list[Record] = field(default_factory=list)
    met: bool = True
    interrupted: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def frame(self):
        from .records import to_frame

        return to_frame([self.baseline, *self.records])


_size_of = deployable_bytes  # kept for old callers; use compresslab.sizes.deployable_bytes


class _Search:
    """Book-keeping of one autocompress run: budget, trials, best so far."""

    def __init__(self, model, data, *, max_accuracy_drop, objective, log, max_trials, time_budget, seed,
                 progress, on_trial):
        self.model, self.data = model, data
        self.objective, self.seed, self.progress, self.on_trial = objective, seed, progress, on_trial
        self.log = ExperimentLog(log) if isinstance(log, (str, os.PathLike)) else log
        self.max_trials, self.time_budget = max_trials, time_budget
        self.started = time.perf_counter()
        self.baseline = measure(model, data, name="autocompress: input", technique="baseline", tflite=True,
                                latency=objective == "latency", seed=seed,
                                extra={"compressed_bytes": len(codec.encode(model))})
        if self.log is not None:
            self.log.append(self.baseline)
        self.floor = self.baseline.accuracy - max_accuracy_drop / 100.0
        self.records: list[Record] = []
        self.notes: list[str] = []
        self.best = (model, self.baseline, None)
        self.trials = 0

    def score(self, record: Record) -> float:
        return record.latency_ms if self.objective == "latency" else _size_of(record)

    def out_of_budget(self) -> bool:
        if self.max_trials is not None and self.trials >= self.max_trials:
            return True
        return self.time_budget is not None and time.perf_counter() - self.started > self.time_budget

    def note(self, text: str) -> None:
        self.notes.append(text)
        _emit(self.progress, "autocompress: " + text)

    def trial(self, start_model, recipe: list[dict], label: str, prefix: list[dict] | None = None):
        """Run one candidate recipe from ``start_model``; returns (result, meets budget) or None if out of budget.

        ``prefix`` holds the steps that made ``start_model`` from the input model, so the record's
        spec describes the whole chain.
        """
        if self.out_of_budget():
            return None
        self.trials += 1
        result = run_pipeline(start_model, self.data, recipe, name=f"autocompress #{self.trials}: {label}",
                              seed=self.seed, measure_input=False, latency=self.objective == "latency")
        record = result.final
        record.technique = "pipeline"
        record.spec = {"recipe": list(prefix or []) + result.steps, "stage": len(prefix or []) + len(result.steps)}
        record.extra["autocompress_trial"] = self.trials
        record.extra["accuracy_floor"] = self.floor
        record.extra["meets_budget"] = bool(record.accuracy >= self.floor)
        self.records.append(record)
        if self.log is not None:
            self.log.append(record)
        ok = record.accuracy >= self.floor
        self.note(f"trial {self.trials} {label}: {100 * record.accuracy:.2f}% "
                  f"({'within' if ok else 'outside'} budget), "
                  + (f"{record.latency_ms:.3f} ms" if self.objective == "latency" else f"{_size_of(record):,.0f} B"))
        if ok and self.score(record) < self.score(self.best[1]):
            best_variant = result.artifact if result.artifact is not None else result.model
            self.best = (best_variant, record, result.blob)
        if self.on_trial is not None:
            self.on_trial(record)
        return result, ok


def _layer_caps(model, data, levels, max_accuracy_drop, search) -> dict[str, float]:
    """Per-layer sparsity limits from a one-shot sensitivity scan (fine-tuning later recovers more)."""
    from .prune import sensitivity_scan, suggest_sparsities

    scan = sensitivity_scan(model, data, sorted(set([0.0, *levels])))
    # One-shot pruning loses far more than pruning with fine-tuning, so a layer may lose up to
    # four times the budget (at least 2 points) in the scan and still be worth trying.
    loose = min(0.99, max(4 * max_accuracy_drop, 2.0) / 100.0)
    caps = suggest_sparsities(scan, loose)
    search.note("sensitivity caps (one-shot scan, loose drop "
                f"{100 * loose:.1f} pts): " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in caps.items()))
    return caps


def _search_size(search: _Search, *, levels, cluster_choices, epochs, max_accuracy_drop):
    model, data = search.model, search.data
    caps = _layer_caps(model, data, levels, max_accuracy_drop, search)
    levels = sorted(levels)
    # Binary search for the highest sparsity level that stays within budget after fine-tuning.
    low, high = 0, len(levels) - 1
    best_pruned, best_level, prefix = None, None, []
    tried: dict = {}  # capped sparsities -> outcome: levels the caps make identical are not run twice
    while low <= high:
        middle = (low + high) // 2
        level = levels[middle]
        sparsities = {layer: min(level, cap) for layer, cap in caps.items()}
        if not any(value > 0 for value in sparsities.values()):
            low = middle + 1
            continue
        signature = tuple(sorted(sparsities.items()))
        outcome = tried.get(signature)
        if outcome is None:
            outcome = search.trial(model, [{"step": "prune", "sparsities": sparsities, "epochs": epochs,
                                            "schedule": "oneshot"}], f"prune {100 * level:.0f}% capped per layer")
            if outcome is None:
                return
            tried[signature] = outcome
        else:
            search.note(f"prune {100 * level:.0f}%: the per-layer caps give the same model as a trial already run")
        result, ok = outcome
        if ok:
            best_pruned, best_level, prefix = result.model, level, result.steps
            low = middle + 1
        else:
            high = middle - 1
    start = best_pruned if best_pruned is not None else model
    search.note(f"pruning level kept: {'none' if best_level is None else f'{100 * best_level:.0f}%'}")
    # Fewest clusters (index bits) first: the first count within budget is the smallest file.
    for clusters in sorted(cluster_choices):
        outcome = search.trial(start, [{"step": "cluster", "clusters": clusters, "epochs": epochs},
                                       {"step": "export", "format": "codec"}],
                               f"{'pruned ' if best_pruned is not None else ''}{clusters} clusters "
                               f"({math.log2(clusters):.0f}-bit indices) + codec", prefix)
        if outcome is None:
            return
        if outcome[1]:
            break
    search.trial(start, [{"step": "quantize", "mode": "int8"}],
                 f"{'pruned ' if best_pruned is not None else ''}int8 TFLite", prefix)


def _search_latency(search: _Search, *, epochs, filter_ratios):
    model = search.model
    for mode in ("int8", "dynamic", "float16"):
        if search.trial(model, [{"step": "quantize", "mode": mode}], f"{mode} TFLite") is None:
            return
    for ratio in sorted(filter_ratios):
        outcome = search.trial(model, [{"step": "prune", "sparsity": ratio, "structure": "filters",
                                        "schedule": "oneshot", "epochs": max(1, epochs)},
                                       {"step": "quantize", "mode": "int8"}],
                               f"{100 * ratio:.0f}% filters removed + int8")
        if outcome is None or not outcome[1]:
            return


def autocompress(model, data: Dataset, *, max_accuracy_drop: float = 0.5, objective: str = "size", log=None,
                 max_trials: int | None = 12, time_budget: float | None = None, epochs: int = 1,
                 sparsities: Iterable[float] = (0.5, 0.75, 0.9, 0.95, 0.97),
                 cluster_choices: Iterable[int] = (8, 16, 32), filter_ratios: Iterable[float] = (0.25, 0.5),
                 seed: int = 0, progress: bool = False, on_trial: Callable | None = None) -> AutocompressResult:
    """Search for the smallest (or fastest) variant within an accuracy budget.

    ``objective="size"``: a one-shot sensitivity scan caps each layer's sparsity (sensitive
    layers are pruned less); a binary search over the sparsity ``levels`` finds the highest level
    that stays within budget after ``epochs`` of fine-tuning (mask held); then the pruned model is
    clustered with the fewest centroids (index bits) that stay within budget and stored with
    compresslab's codec, and int8 TFLite is tried as an alternative format. ``objective="latency"``:
    int8 / dynamic / float16 TFLite, then filter pruning + int8, by LiteRT latency (1 thread).

    Every variant tried is measured on the held-out test split and logged. The best so far is
    kept: a ``KeyboardInterrupt`` (Ctrl-C, or raised by ``on_trial``) ends the search early and
    returns it with ``interrupted=True``.

    Args:
        model: a trained tf_keras model (not modified).
        data: the data set.
        max_accuracy_drop: the budget in percentage POINTS of test accuracy (0.5 = half a point).
        objective: ``"size"`` (smallest real file) or ``"latency"``.
        log: an ExperimentLog or path; the input and every variant are appended.
        max_trials: at most this many candidate variants (None: no limit).
        time_budget: stop starting new trials after this many seconds (None: no limit).
        epochs: fine-tuning epochs of each pruning / clustering trial.
        sparsities: sparsity levels searched.
        cluster_choices: centroid counts tried (8, 16, 32 = 3, 4, 5-bit indices).
        filter_ratios: fractions of filters removed (latency objective).
        seed: training seed.
        progress: print a line per trial.
        on_trial: ``callable(record)`` after every trial.

    Returns:
        An :class:`AutocompressResult`.

    Raises:
        ValueError: bad arguments (before any work).

    Example:
        >>> found = autocompress(model, data, max_accuracy_drop=0.5, log="runs/auto.jsonl")
        >>> found.best_record.extra["compressed_bytes"], found.best_record.accuracy
    """
    problems = []
    if not isinstance(model, keras.Model):
        problems.append(f"model is a {type(model).__name__}, not a tf_keras Model")
    if not isinstance(data, Dataset):
        problems.append(f"data is a {type(data).__name__}, not a compresslab Dataset")
    if not _is_number(max_accuracy_drop, 0) or max_accuracy_drop > 100:
        problems.append(f"max_accuracy_drop is {max_accuracy_drop!r}; it is in percentage points, from 0 to 100")
    if objective not in OBJECTIVES:
        problems.append(f"objective is {objective!r}; allowed: {', '.join(OBJECTIVES)}")
    if max_trials is not None and not _is_int(max_trials, 1):
        problems.append(f"max_trials is {max_trials!r}; it must be an integer >= 1 or None")
    if time_budget is not None and not _is_number(time_budget, 0, low_open=True):
        problems.append(f"time_budget is {time_budget!r}; it must be a number of seconds > 0 or None")
    if not _is_int(epochs, 0):
        problems.append(f"epochs is {epochs!r}; it must be an integer >= 0")
    levels = list(sparsities)
    if not levels or not all(_is_number(s, 0) and s < 1 for s in levels):
        problems.append(f"sparsities is {levels!r}; give values in [0, 1)")
    choices = list(cluster_choices)
    if not choices or not all(_is_int(c, 2) for c in choices):
        problems.append(f"cluster_choices is {choices!r}; give integers >= 2")
    ratios = list(filter_ratios)
    if not all(_is_number(r, 0, low_open=True) and r < 1 for r in ratios):
        problems.append(f"filter_ratios is {ratios!r}; give values in (0, 1)")
    if not problems:
        try:
            check_model_fits(model, data)
        except ValueError as error:
            problems.append(str(error))
    if problems:
        raise ValueError("autocompress cannot start:\n" + "\n".join(f"  - {p}" for p in problems))
    search = _Search(model, data, max_accuracy_drop=max_accuracy_drop, objective=objective, log=log,
                     max_trials=max_trials, time_budget=time_budget, seed=seed, progress=progress,
                     on_trial=on_trial)
    interrupted = False
    try:
        if objective == "size":
            _search_size(search, levels=levels, cluster_choices=choices, epochs=epochs,
                         max_accuracy_drop=max_accuracy_drop)
        else:
            _search_latency(search, epochs=epochs, filter_ratios=ratios)
    except KeyboardInterrupt:
        interrupted = True
        search.note(f"interrupted after {search.trials} trial(s); returning the best so far")
    if search.out_of_budget():
        search.note(f"stopped by the budget after {search.trials} trial(s)")
    best, best_record, blob = search.best
    search.note(f"best: {best_record.name} at {100 * best_record.accuracy:.2f}% (input "
                f"{100 * search.baseline.accuracy:.2f}%)")
    return AutocompressResult(best=best, best_record=best_record, blob=blob, baseline=search.baseline,
                              records=search.records, met=best_record.accuracy >= search.floor,
                              interrupted=interrupted, seconds=time.perf_counter() - search.started,
                              notes=search.notes)


# ---------------------------------------------------------------------------------------------
# Sweeps


def expand_grid(grid) -> list[tuple[str, list[dict]]]:
    """Every configuration of a grid as ``(name, recipe)``.

    A grid is either a list of recipes, or a dict: ``"steps"`` lists the step names in order and
    ``"<step>.<parameter>"`` keys give a value or a LIST of values to sweep (the cartesian product
    of all lists is taken; wrap a list-valued parameter such as ``layers`` in another list).

    Example:
        >>> expand_grid({"steps": ["prune", "quantize"], "prune.sparsity": [0.5, 0.8],
        ...              "prune.epochs": 1, "quantize.mode": "int8"})[0][0]
        'prune.sparsity=0.5'
    """
    if isinstance(grid, (list, tuple)):
        configurations = []
        for index, recipe in enumerate(grid):
            steps, error = _parse(recipe)
            if error:
                raise ValueError(f"grid entry {index + 1}: {error}")
            configurations.append((" + ".join(str(s.get("step")) if isinstance(s, dict) else "?" for s in steps)
                                   + f" #{index + 1}", steps))
        return configurations
    if not isinstance(grid, dict) or "steps" not in grid:
        raise ValueError("a grid is a list of recipes or a dict with 'steps' (step names in order) and "
                         "'<step>.<parameter>' keys whose list values are swept")
    names = grid["steps"]
    if not isinstance(names, (list, tuple)) or not names:
        raise ValueError("grid['steps'] must be a non-empty list of step names, e.g. ['prune', 'quantize']")
    axes, fixed = {}, {}
    for key, value in grid.items():
        if key == "steps":
            continue
        step_name, _, parameter = str(key).partition(".")
        if not parameter or step_name not in names:
            raise ValueError(f"grid key {key!r} must be '<step>.<parameter>' with a step of {list(names)}")
        if isinstance(value, (list, tuple)):
            if not value:
                raise ValueError(f"grid key {key!r} has an empty list of values")
            axes[key] = list(value)
        else:
            fixed[key] = value
    configurations = []
    for combination in itertools.product(*axes.values()) if axes else [()]:
        chosen = {**fixed, **dict(zip(axes, combination))}
        steps = [{"step": step_name} for step_name in names]
        for key, value in chosen.items():
            step_name, _, parameter = key.partition(".")
            steps[list(names).index(step_name)][parameter] = value
        label = ", ".join(f"{key}={json.dumps(value)}" for key, value in zip(axes, combination)) or "configuration"
        configurations.append((label, steps))
    return configurations


def _identity(name: str, steps: list[dict], dataset: str, seed: int) -> Record:
    """The final record's identity fields (its key is known before the configuration runs)."""
    technique = TECHNIQUES[steps[-1]["step"]]
    return Record(name=name, technique=technique, spec={"recipe": steps, "stage": len(steps)},
                  dataset=dataset, seed=seed)


_WORKER_CACHE: dict = {}


def _worker_inputs(model_path: str, data_path: str):
    if model_path not in _WORKER_CACHE:
        from .modelio import load_model

        _WORKER_CACHE[model_path] = load_model(model_path, verify=False)
    if data_path not in _WORKER_CACHE:
        with np.load(data_path, allow_pickle=False) as arrays:
            _WORKER_CACHE[data_path] = Dataset(
                arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
                [str(c) for c in arrays["class_names"]], name=str(arrays["name"]), source=str(arrays["source"]))
    return _WORKER_CACHE[model_path], _WORKER_CACHE[data_path]


def _sweep_task(task: dict) -> dict:
    """Run one configuration (in a worker process or thread); returns the final record as a dict."""
    model, data = _worker_inputs(task["model_path"], task["data_path"])
    result = run_pipeline(model, data, task["steps"], name=task["name"], seed=task["seed"],
                          measure_input=False, latency=task["latency"])
    final = result.final
    identity = _identity(task["name"], task["steps"], data.name, task["seed"])
    final.name, final.technique, final.spec = identity.name, identity.technique, identity.spec
    final.extra["stages"] = [{"name": r.name, "accuracy": r.accuracy,
                              "compressed_bytes": r.extra.get("compressed_bytes"), "gzip_bytes": r.gzip_bytes}
                             for r in result.records]
    return final.to_dict()


def sweep(model, data: Dataset, grid, log, *, executor=None, max_workers: int = 2, seed: int = 0,
          latency: bool = False, progress: bool | Callable = False) -> list[Record]:
    """Run every configuration of a grid into an experiment log; a rerun skips what the log holds.

    Each configuration is a recipe run from ``model`` by :func:`run_pipeline`; its final stage
    becomes one logged Record named after the swept values. Configurations run in parallel on
    ``executor`` (any ``concurrent.futures.Executor``; by default a process pool of
    ``max_workers`` spawned processes). Workers receive the model and data as files written once
    to a temporary folder (a process cannot share a TensorFlow model) and return records; only
    this process writes the log, as each configuration finishes, so a killed sweep loses nothing
    that finished and a rerun resumes (records are matched by :attr:`Record.key`).

    Args:
        model: a trained tf_keras model (not modified).
        data: the data set.
        grid: see :func:`expand_grid`.
        log: an :class:`ExperimentLog` or path (required: it is what makes reruns resume).
        executor: a ``concurrent.futures`` executor, or None for a process pool.
        max_workers: processes of the default pool.
        seed: training seed of every configuration.
        latency: measure LiteRT latency too.
        progress: True to print a line per finished configuration, or ``callable(done, total, record)``.

    Returns:
        The Records of every configuration of the grid, in grid order (from the log when skipped).

    Raises:
        ValueError: a bad grid or any configuration's recipe problems (all listed), before any work.

    Example:
        >>> sweep(model, data, {"steps": ["prune"], "prune.sparsity": [0.5, 0.8, 0.9]}, "runs/prune.jsonl")
    """
    if log is None:
        raise ValueError("sweep needs a log (an ExperimentLog or a .jsonl path): it is where results land and "
                         "what lets a rerun skip finished configurations")
    log = ExperimentLog(log) if isinstance(log, (str, os.PathLike)) else log
    configurations = expand_grid(grid)
    problems, prepared = [], []
    for label, steps in configurations:
        try:
            prepared.append((label, validate_recipe(steps, model, data)))
        except ValueError as error:
            problems.append(f"configuration {label!r}: {error}")
    if problems:
        raise ValueError(f"the grid has {len(problems)} configuration(s) with problems; nothing was run:\n"
                         + "\n".join(problems))
    existing = {record.key: record for record in log.records()}
    keys = [_identity(label, steps, data.name, seed).key for label, steps in prepared]
    todo = [(label, steps, key) for (label, steps), key in zip(prepared, keys) if key not in existing]
    finished: dict[str, Record] = {}
    if todo:
        finished = _run_configurations(model, data, todo, log, executor=executor, max_workers=max_workers,
                                       seed=seed, latency=latency, progress=progress, total=len(prepared),
                                       already=len(prepared) - len(todo))
    return [existing.get(key) or finished[key] for key in keys if key in existing or key in finished]


def _run_configurations(model, data, todo, log, *, executor, max_workers, seed, latency, progress, total, already):
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from .modelio import save_model

    finished: dict[str, Record] = {}
    with tempfile.TemporaryDirectory(prefix="compresslab-sweep-") as folder:
        model_path = str(Path(folder) / "model.keras")
        data_path = str(Path(folder) / "data.npz")
        save_model(model, model_path)
        np.savez(data_path, x_train=data.x_train, y_train=data.y_train, x_test=data.x_test, y_test=data.y_test,
                 class_names=np.array(data.class_names), name=np.array(data.name), source=np.array(data.source))
        owned = executor is None
        if owned:
            import multiprocessing

            # "spawn": TensorFlow is not safe to fork once initialised.
            executor = ProcessPoolExecutor(max_workers=max_workers, mp_context=multiprocessing.get_context("spawn"))
        try:
            futures = {
                executor.submit(_sweep_task, {"model_path": model_path, "data_path": data_path, "steps": steps,
                                              "name": label, "seed": seed, "latency": latency}): key
                for label, steps, key in todo
            }
            done = already
            for future in as_completed(futures):
                record = Record.from_dict(future.result())
                log.append(record)
                finished[futures[future]] = record
                done += 1
                if callable(progress):
                    progress(done, total, record)
                else:
                    _emit(progress, f"sweep [{done}/{total}] {record.name}: {100 * record.accuracy:.2f}%")
        finally:
            if owned:
                executor.shutdown(wait=True, cancel_futures=True)
    return finished


__all__ = ["run_pipeline", "validate_recipe", "deep_compression_recipe", "describe_step", "PipelineResult",
           "autocompress", "AutocompressResult", "sweep", "expand_grid", "STEPS", "RECIPES"]
