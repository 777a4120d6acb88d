"""Recipes: lists of steps, the built-in ones, and their validation.

Owns: parsing a recipe (list, JSON or a built-in name), the built-in recipes
(``deep_compression``), :func:`validate_recipe` (every problem listed before any work) and
:func:`describe_step` (a step's short label).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable

from .._keras import keras
from ..data import Dataset
from ..modelio.convert import ModelTypeError, as_tf_keras, is_keras3_model, model_type_error
from ..models import check_model_fits
from .specs import (  # noqa: F401  (the constants are re-exported for older imports)
    _CHECKS,
    EXPORT_FORMATS,
    OBJECTIVES,
    PRUNE_SCHEDULES,
    PTQ_MODES,
    STEP_PARAMETERS,
    STEPS,
    TECHNIQUES,
    StepSpec,
    _is_int,
    _is_number,
)


def deep_compression_recipe(*, sparsity: float = 0.92, scope: str = "global", prune_epochs: int = 4,
                            clusters: int = 16, conv_clusters: int | None = 32, depthwise_clusters: int | None = 32,
                            cluster_epochs: int = 1, prune_learning_rate: float = 1e-3,
                            cluster_learning_rate: float = 1e-4, batch_size: int = 64,
                            path: str | None = None) -> list[dict]:
    """The Deep Compression recipe (Han, Mao and Dally, ICLR 2016) as a list of steps.

    Prune (magnitude, gradual, fine-tuned with the mask held) -> share weights (``clusters``
    centroids per dense kernel, ``conv_clusters`` per convolution kernel, ``depthwise_clusters`` per
    depthwise kernel, zeros kept, centroids fine-tuned) -> entropy-code into compresslab's file format. Every knob of every step is a
    recipe key (docs/recipes.md); these arguments are the ones most often changed.

    ``prune_epochs`` defaults to 4: the pruning stage reaches 92% gradually over those epochs, and on
    the corpus of Keras 3 CNNs nobody here tuned (README, "Your model") 2 epochs left the most sensitive
    one 0.78 points under its input on the validation split, 4 epochs 0.32 (the other five were as
    good or better with 4). Pass ``prune_epochs=2`` for a quicker run.

    Example:
        >>> run_pipeline(model, data, deep_compression_recipe(sparsity=0.9, prune_learning_rate=5e-4))
    """
    return [
        {"step": "prune", "sparsity": sparsity, "scope": scope, "epochs": prune_epochs, "schedule": "polynomial",
         "learning_rate": prune_learning_rate, "batch_size": batch_size},
        {"step": "cluster", "clusters": clusters, "conv_clusters": conv_clusters,
         "depthwise_clusters": depthwise_clusters, "epochs": cluster_epochs,
         "learning_rate": cluster_learning_rate, "batch_size": batch_size},
        {"step": "export", "format": "codec", "path": path},
    ]


def sparse_vd_compression_recipe(*, epochs: int = 10, kl_weight: float = 1.0, threshold: float = 3.0,
                                 clusters: int = 16, conv_clusters: int | None = 32, cluster_epochs: int = 1,
                                 path: str | None = None) -> list[dict]:
    """Sparse variational dropout, then weight sharing with the zeros kept, then compresslab's file format.

    The model says which weights it does not need (Molchanov et al., ICML 2017); what is left is
    clustered and entropy-coded as in Deep Compression.

    Example:
        >>> run_pipeline(model, data, sparse_vd_compression_recipe(epochs=20))
    """
    return [
        {"step": "sparse_vd", "epochs": epochs, "kl_weight": kl_weight, "threshold": threshold},
        {"step": "cluster", "clusters": clusters, "conv_clusters": conv_clusters, "epochs": cluster_epochs},
        {"step": "export", "format": "codec", "path": path},
    ]


RECIPES: dict[str, Callable[[], list[dict]]] = {"deep_compression": deep_compression_recipe,
                                                "sparse_vd_compression": sparse_vd_compression_recipe}


def _parse(recipe):
    """A recipe as a list of steps (from a list of dicts or step specs, a JSON text or a built-in recipe's name)."""
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
    if isinstance(step, StepSpec):
        step = step.to_dict()
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
                done = {"prune": "pruned", "sparse_vd": "sparsified", "cluster": "clustered", "distill": "distilled from",
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
    not_a_model = model is not None and not isinstance(model, keras.Model) and not is_keras3_model(model)
    if model is not None:
        if not_a_model:
            problems.append(str(model_type_error(model)))
        else:
            model = as_tf_keras(model)
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
        raise (ModelTypeError if not_a_model else ValueError)(
            f"the recipe has {len(problems)} problem(s); nothing was run:\n{listing}")
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
    if name == "sparse_vd":
        return (f"sparse VD {step['epochs']} ep" + (f" (KL x{step['kl_weight']:g})" if step.get("kl_weight", 1) != 1
                                                   else ""))
    if name == "cluster":
        text = f"cluster {step['clusters']}"
        if step.get("conv_clusters"):
            text += f"/{step['conv_clusters']} conv"
        if step.get("depthwise_clusters") and step["depthwise_clusters"] != (step.get("conv_clusters") or step["clusters"]):
            text += f"/{step['depthwise_clusters']} depthwise"  # said only when it differs from the convolutions'
        return text + (f" ({step['epochs']} ep)" if step.get("epochs") else "")
    if name == "quantize":
        if step.get("mode"):
            return f"quantize {step['mode']}" + (" QAT" if step.get("epochs") else "")
        return f"quantize {step['bits']}-bit"
    if name == "distill":
        return f"distill into {step['student']}" + (f" x{step['width']:g}" if step["student"] == "student_cnn" else "")
    return f"export {step['format']}"
