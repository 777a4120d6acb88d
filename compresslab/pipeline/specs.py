"""Recipe steps as validated frozen specs: one dataclass per step, every parameter documented.

Owns: the step names, their parameters and defaults (``PruneStep``, ``ClusterStep``, ``QuantizeStep``,
``DistillStep``, ``ExportStep``), and the checks of one step's values. A recipe may hold these specs
or plain dicts with a ``"step"`` key (JSON); both are checked by the same code, which lists EVERY
problem of a step at once.

Example:
    >>> PruneStep(sparsity=0.9, epochs=2).to_dict()["step"]
    'prune'
    >>> PruneStep(sparsity=1.5)
    Traceback (most recent call last):
    ValueError: prune step: ...sparsity is 1.5...
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from ..specs import Spec
from ..tflite import CONVERSION_MODES

STEPS = ("distill", "prune", "sparse_vd", "cluster", "quantize", "export")
TECHNIQUES = {"distill": "distill", "prune": "prune", "sparse_vd": "prune", "cluster": "cluster", "quantize": "quantize",
              "export": "pipeline"}
PTQ_MODES = ("dynamic", "float16", "int8")
PRUNE_SCHEDULES = ("polynomial", "constant", "oneshot")
EXPORT_FORMATS = ("codec", "tflite")
OBJECTIVES = ("size", "latency")

def _is_int(value, low=None) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and (low is None or value >= low)


def _is_number(value, low=None, low_open=False) -> bool:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    return ok


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
                                             learning_rate=params["learning_rate"], shift=params["shift"]),
                  problems)


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
    for key in ("conv_clusters", "depthwise_clusters"):
        if params[key] is not None:
            _spec_problem(where + f", {key}", lambda key=key: ClusterSpec(clusters=params[key], init=params["init"]),
                          problems)
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


def _check_sparse_vd(where, params, problems):
    _check_epochs(where, params, problems, low=1)
    threshold = params["threshold"]
    if not _is_number(threshold) or not -10 < threshold < 10:
        problems.append(f"{where}: threshold is {threshold!r}; it must be a log alpha between -10 and 10 (the paper uses 3)")
    if not _is_number(params["kl_weight"], 0, low_open=True):
        problems.append(f"{where}: kl_weight is {params['kl_weight']!r}; it must be a number > 0 (1: the paper's bound)")
    layers = params["layers"]
    if layers is not None and (isinstance(layers, str) or not layers or not all(isinstance(n, str) for n in layers)):
        problems.append(f"{where}: layers is {layers!r}; it must be None (every Conv2D / Dense) or a list of names")


_CHECKS = {"distill": _check_distill, "prune": _check_prune, "sparse_vd": _check_sparse_vd,
           "cluster": _check_cluster, "quantize": _check_quantize, "export": _check_export}


@dataclass(frozen=True)
class StepSpec(Spec):
    """Base of the step specs: validated on construction (every problem listed), JSON round trip."""

    step: ClassVar[str] = ""

    def __post_init__(self):
        for field_ in fields(self):  # lists from JSON become tuples so the spec stays hashable
            value = getattr(self, field_.name)
            if isinstance(value, list):
                object.__setattr__(self, field_.name, tuple(value))
            elif isinstance(value, dict):
                object.__setattr__(self, field_.name, tuple(sorted(value.items())))
        problems: list[str] = []
        _CHECKS[self.step](f"{self.step} step", self.params(), problems)
        if problems:
            raise ValueError("; ".join(problems))

    def params(self) -> dict[str, Any]:
        """The step's parameters as plain values (``sparsities`` as a dict, tuples as lists)."""
        payload = super().to_dict()
        if payload.get("sparsities") is not None:
            payload["sparsities"] = {name: value for name, value in payload["sparsities"]}
        return payload

    def to_dict(self) -> dict[str, Any]:
        """The step as a recipe dict: ``{"step": name, **parameters}`` (what JSON recipes hold)."""
        return {"step": self.step, **self.params()}

    @classmethod
    def from_dict(cls, payload: dict[str, Any]):
        payload = dict(payload)
        if payload.pop("step", cls.step) != cls.step:
            raise ValueError(f"{cls.__name__}.from_dict got a step of another kind: {payload!r}")
        return super().from_dict(payload)


@dataclass(frozen=True)
class PruneStep(StepSpec):
    """Prune: one-shot or gradual (tfmot) magnitude pruning, a threshold, per-layer sparsities or filters.

    Give exactly one of ``sparsity``, ``threshold`` or ``sparsities``. With ``epochs > 0`` and a
    gradual ``schedule`` ("polynomial", "constant") tfmot prunes while training; ``schedule="oneshot"``
    prunes first, then fine-tunes with the zeros held. ``structure`` is "unstructured", "2:4" or
    "filters" (filters are removed by surgery, then fine-tuned). ``scope`` "layer" or "global".
    """

    step: ClassVar[str] = "prune"
    sparsity: float | None = None
    threshold: float | None = None
    sparsities: Any = None
    scope: str = "layer"
    layers: tuple[str, ...] | None = None
    structure: str = "unstructured"
    epochs: int = 0
    schedule: str = "polynomial"
    learning_rate: float = 1e-3
    batch_size: int = 64


@dataclass(frozen=True)
class SparseVDStep(StepSpec):
    """Sparse variational dropout (:mod:`compresslab.sparse_vd`): ``epochs`` of training with a learned
    noise per weight; weights with log alpha above ``threshold`` are removed. ``kl_weight`` scales the
    KL term (1: the paper's bound)."""

    step: ClassVar[str] = "sparse_vd"
    epochs: int = 10
    threshold: float = 3.0
    kl_weight: float = 1.0
    layers: tuple[str, ...] | None = None
    learning_rate: float = 1e-3
    batch_size: int = 64


@dataclass(frozen=True)
class ClusterStep(StepSpec):
    """Share weights: ``clusters`` centroids per kernel (``conv_clusters`` for convolutions,
    ``depthwise_clusters`` for depthwise kernels, which are left unclustered when it is None).

    ``preserve_sparsity`` keeps pruned zeros at zero (Deep Compression); ``epochs`` fine-tunes the
    centroids; ``init`` is "linear", "kmeans++" or "density".
    """

    step: ClassVar[str] = "cluster"
    clusters: int = 16
    conv_clusters: int | None = None
    depthwise_clusters: int | None = None
    init: str = "linear"
    layers: tuple[str, ...] | None = None
    epochs: int = 0
    learning_rate: float = 1e-4
    batch_size: int = 64
    preserve_sparsity: bool = True


@dataclass(frozen=True)
class QuantizeStep(StepSpec):
    """Quantize: ``mode`` makes a TFLite file (dynamic, float16, int8; int8 with ``epochs > 0`` is QAT);
    ``bits`` simulates b-bit weights in a Keras model (``scheme``, ``granularity``). Give one of the two.
    ``learning_rate`` and ``batch_size`` are QAT's (``epochs > 0``)."""

    step: ClassVar[str] = "quantize"
    mode: str | None = None
    bits: int | None = None
    scheme: str = "symmetric"
    granularity: str = "per_channel"
    epochs: int = 0
    representative_images: int = 300
    learning_rate: float = 1e-4
    batch_size: int = 64


@dataclass(frozen=True)
class DistillStep(StepSpec):
    """Distill the current model (the teacher) into a new zoo ``student`` of the given ``width``."""

    step: ClassVar[str] = "distill"
    student: str = "student_cnn"
    width: float = 1.0
    temperature: float = 8.0   # DistillSpec's defaults (tests/test_docs_recipes.py keeps them equal)
    alpha: float = 0.5
    epochs: int = 5
    batch_size: int = 64
    learning_rate: float = 1e-3
    shift: int = 0


@dataclass(frozen=True)
class ExportStep(StepSpec):
    """Export: ``format`` "codec" (compresslab's Deep Compression file) or "tflite" (with ``mode``),
    written to ``path`` when one is given. Always the last step."""

    step: ClassVar[str] = "export"
    format: str = "codec"
    path: str | None = None
    mode: str = "float32"


STEP_SPECS: dict[str, type[StepSpec]] = {cls.step: cls for cls in
                                         (DistillStep, PruneStep, SparseVDStep, ClusterStep, QuantizeStep, ExportStep)}
# Parameters each step takes, with their defaults (derived from the specs: one source of truth).
STEP_PARAMETERS: dict[str, dict] = {name: {f.name: f.default for f in fields(cls)} for name, cls in STEP_SPECS.items()}

__all__ = ["StepSpec", "PruneStep", "SparseVDStep", "ClusterStep", "QuantizeStep", "DistillStep", "ExportStep", "STEP_SPECS",
           "STEP_PARAMETERS", "STEPS"]
