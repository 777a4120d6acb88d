"""Knowledge distillation: train a small student to imitate a large teacher's softened outputs.

Hinton, Vinyals and Dean (2015) soften both networks' logits with a temperature ``T`` and
train the student on

    loss = alpha * CE(labels, softmax(student))
           + (1 - alpha) * T**2 * KL(softmax(teacher / T) || softmax(student / T))

The ``T**2`` keeps the soft term's gradients on the same scale as the hard term's whatever the
temperature (they shrink as ``1 / T**2`` otherwise). Only the student's weights train: the
teacher runs in inference mode, its outputs are constants, and its weights are never copied
into the student.

For an honest comparison, :func:`train_from_scratch` trains the same student (same initial
weights) with the same budget (epochs, batch size, Adam, learning rate, seed) on the labels
alone.

Example:
    >>> spec = DistillSpec(epochs=5)          # T = 8, alpha = 0.5 (chosen on a validation split)
    >>> teacher = cl.baseline("seed_cnn", data)
    >>> student = cl.models.build("student_cnn", seed=0, width=0.5)
    >>> distilled, history = distill(teacher, student, data, spec)
    >>> scratch, _ = train_from_scratch(student, data, spec)
"""

from __future__ import annotations

from .compare import compare, compare_seeds, count_errors
from .spec import UNTRAINED_MARGIN, DistillSpec  # noqa: F401  (a documented constant)
from .targets import entropy_bits, logits_model, soft_targets, soften
from .training import (  # noqa: F401  (used by the panel)
    Distiller,
    _check_data,
    _check_models,
    _check_spec,
    check_teacher,
    distill,
    distillation_loss,
    train_from_scratch,
)

__all__ = [
    "DistillSpec",
    "count_errors",
    "compare_seeds",
    "Distiller",
    "distill",
    "train_from_scratch",
    "compare",
    "soft_targets",
    "soften",
    "entropy_bits",
    "logits_model",
    "distillation_loss",
    "check_teacher",
]
