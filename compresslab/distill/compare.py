"""Comparing a distilled student with the same student trained from scratch, over one seed or several."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._keras import keras
from ..data import Dataset
from ..modelio.convert import as_tf_keras
from ..models import predict_logits
from .spec import DistillSpec
from .targets import logits_model
from .training import _check_data, _check_models, _check_spec, distill, train_from_scratch


def compare(teacher: keras.Model, student: keras.Model, data: Dataset, spec: DistillSpec | None = None, *,
            progress: Callable | None = None, track_test: bool = False,
            teacher_train_logits: np.ndarray | None = None) -> dict:
    """Train ``student`` from scratch and by distillation with the same budget.

    Args:
        teacher, student, data, spec: as :func:`distill`.
        progress: optional ``callable(run, epoch, logs)`` with ``run`` in ``"scratch"``, ``"distilled"``.
        track_test: record test accuracy per epoch (display only).
        teacher_train_logits: forwarded to :func:`distill`.

    Returns:
        ``{"scratch": model, "distilled": model, "histories": {"scratch": dict, "distilled": dict}}``.

    Example:
        >>> result = compare(teacher, cl.models.build("student_cnn", seed=0, width=0.5), data)
    """
    spec = _check_spec(spec)
    teacher, student = _check_models(teacher, student)
    _check_data(data, ("teacher", teacher), ("student", student))

    def forward(run):
        return (lambda epoch, logs: progress(run, epoch, logs)) if progress else False

    scratch, scratch_history = train_from_scratch(student, data, spec, progress=forward("scratch"),
                                                  track_test=track_test)
    distilled, distilled_history = distill(teacher, student, data, spec, progress=forward("distilled"),
                                           track_test=track_test, teacher_train_logits=teacher_train_logits)
    return {
        "scratch": scratch,
        "distilled": distilled,
        "histories": {"scratch": scratch_history.history, "distilled": distilled_history.history},
    }


def count_errors(model: keras.Model, data: Dataset) -> int:
    """Misclassified images of the held-out test split (out of ``len(data.x_test)``).

    Example:
        >>> count_errors(teacher, mnist)   # e.g. 106 out of 10,000
    """
    predictions = predict_logits(model, data.x_test).argmax(axis=1)
    return int(np.sum(predictions != data.y_test))


def compare_seeds(teacher: keras.Model, data: Dataset, spec: DistillSpec | None = None, *, seeds=(0, 1, 2),
                  width: float = 0.5, progress: Callable | None = None, keep_models: bool = False) -> list[dict]:
    """Scratch versus distilled ``student_cnn(width)`` test errors, for several seeds.

    For each seed a student is built with that seed (its initial weights), then trained from
    scratch and by distillation with ``spec`` (its ``seed`` replaced by the run's seed).

    Args:
        teacher: the trained teacher.
        data: the :class:`Dataset`.
        spec: the :class:`DistillSpec` (temperature, alpha and budget).
        seeds: the seeds, one run each.
        width: ``student_cnn`` width.
        progress: optional ``callable(text)`` called after each run.
        keep_models: also return the trained models (``scratch_model``, ``distilled_model``).

    Returns:
        One dict per seed: ``seed``, ``scratch_errors``, ``distilled_errors``, ``teacher_errors``,
        ``test_images``, ``student_params`` (and the models with ``keep_models``).

    Example:
        >>> runs = compare_seeds(teacher, data, DistillSpec(temperature=4, alpha=0.5, epochs=10))
    """
    from ..models import build

    spec = _check_spec(spec)
    teacher = as_tf_keras(teacher, role="teacher")
    _check_data(data, ("teacher", teacher))
    teacher_view = logits_model(teacher)
    train_logits = predict_logits(teacher_view, data.x_train)  # shared by every seed's run
    teacher_errors = count_errors(teacher_view, data)
    runs = []
    for seed in seeds:
        student = build("student_cnn", data.input_shape, data.num_classes, seed=int(seed), width=width)
        result = compare(teacher, student, data, spec.replace(seed=int(seed)), teacher_train_logits=train_logits)
        runs.append({
            "seed": int(seed),
            "scratch_errors": count_errors(result["scratch"], data),
            "distilled_errors": count_errors(result["distilled"], data),
            "teacher_errors": teacher_errors,
            "test_images": int(len(data.x_test)),
            "student_params": int(student.count_params()),
        })
        if keep_models:
            runs[-1].update(scratch_model=result["scratch"], distilled_model=result["distilled"])
        if progress is not None:
            progress(f"seed {seed}: scratch {runs[-1]['scratch_errors']}, distilled {runs[-1]['distilled_errors']} "
                     f"errors (teacher {teacher_errors}) out of {len(data.x_test)}")
    return runs
