"""Recipes: the steps a pipeline runs, their parameters and defaults, and validation.

Owns: the step names and their parameters (``STEP_PARAMETERS``), the built-in recipes
(``deep_compression``), :func:`validate_recipe` (every problem listed before any work) and
:func:`describe_step` (a step's short label).
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Callable

from .._keras import keras
from ..data import Dataset
from ..models import check_model_fits
from ..tflite import CONVERSION_MODES

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
    from ..distill import DistillSpec
    from ..models import ARCHITECTURES

    if params["student"] not in ARCHITECTURES:
        problems.append(f"{where}: student is {params['student']!r}; choose a zoo architecture: "
                        f"{', '.join(ARCHITECTURES)}")
    if not _is_number(params["width"], 0, low_open=True):
        problems.append(f"{where}: width is {params['width']!r}; it must be a number > 0")
    _spec_problem(where, lambda: DistillSpec(temperature=params["temperature"], alpha=params["alpha"],
                                             epochs=params["epochs"], batch_size=params["batch_size"],
                                             learning_rate=params["learning_rate"]), problems)


def _check_prune(where, params, problems):
    from ..prune import PruneSpec

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
    from ..cluster import ClusterSpec

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
    from ..quantize import QuantSpec

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
    from ..cluster import is_clusterable
    from ..prune import is_prunable
    from ..specs import resolve_layers

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
