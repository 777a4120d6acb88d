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
    >>> spec = DistillSpec(temperature=10, alpha=0.1, epochs=5)
    >>> teacher = cl.baseline("seed_cnn", data)
    >>> student = cl.models.build("student_cnn", seed=0, width=0.5)
    >>> distilled, history = distill(teacher, student, data, spec)
    >>> scratch, _ = train_from_scratch(student, data, spec)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._keras import keras, tf
from .data import Dataset
from .models import (
    ProgressCallback,
    check_model_fits,
    clone,
    compile_for_classification,
    outputs_logits,
    predict_logits,
    set_seed,
)
from .models import train as train_classifier
from .specs import Spec, check_int, check_number

# A teacher whose test accuracy is within this fraction of the way from chance to perfect is
# called untrained: distilling from it teaches the student noise.
UNTRAINED_MARGIN = 0.1


@dataclass(frozen=True)
class DistillSpec(Spec):
    """Settings of a distillation run (and of its from-scratch baseline: the same budget).

    Attributes:
        temperature: softens both distributions, ``softmax(logits / T)``; > 0. ``T = 1`` is the
            plain softmax; Hinton et al. used ``T = 20`` on MNIST.
        alpha: weight of the hard-label cross-entropy, in [0, 1]; ``1 - alpha`` weighs the
            soft-target term. ``alpha = 1`` is training from scratch.
        epochs: passes over the training split (>= 1).
        batch_size: images per step (>= 1).
        learning_rate: Adam's learning rate (> 0).
        seed: seeds shuffling, so two runs with the same spec and student repeat.

    Example:
        >>> DistillSpec(temperature=20, alpha=0.1, epochs=5)
    """

    temperature: float = 10.0
    alpha: float = 0.1
    epochs: int = 5
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0

    def __post_init__(self):
        check_number(self, "temperature", 0, None, low_open=True)
        check_number(self, "alpha", 0, 1)
        check_int(self, "epochs", 1, None)
        check_int(self, "batch_size", 1, None)
        check_number(self, "learning_rate", 0, None, low_open=True)
        check_int(self, "seed", 0, None)


# ---------------------------------------------------------------------------------------------
# Logits of any classifier


class _DenseLogits(keras.layers.Layer):
    """``x @ kernel + bias`` of an existing Dense layer: its output before the activation.

    It holds the Dense layer itself, so the variables are shared (not copied): gradients reach
    the original kernel and bias.
    """

    def __init__(self, dense: keras.layers.Dense, **kwargs):
        super().__init__(name=f"{dense.name}_logits", **kwargs)
        self.dense = dense

    def call(self, inputs):
        outputs = tf.tensordot(inputs, self.dense.kernel, axes=1)
        if self.dense.use_bias:
            outputs = outputs + self.dense.bias
        return outputs


def logits_model(model: keras.Model) -> keras.Model:
    """A view of ``model`` that outputs logits, sharing its weights (nothing is copied).

    A model that already outputs logits (every zoo model) is returned as it is. When the last
    layer applies a softmax, the view stops beneath it: a separate ``Softmax`` or
    ``Activation("softmax")`` layer is skipped (its input is the logits), and a
    ``Dense(activation="softmax")`` layer is replaced by its kernel and bias applied to its
    input.

    Args:
        model: a single-input tf_keras classifier.

    Returns:
        A tf_keras model with the same input whose output is ``model``'s pre-softmax logits.

    Raises:
        ValueError: the softmax sits in a layer whose logits cannot be recovered.

    Example:
        >>> logits = logits_model(loaded_classifier)(images)
    """
    if outputs_logits(model):
        return model
    last = model.layers[-1]
    try:
        inputs = model.inputs
        last_input = last.input
    except (AttributeError, ValueError) as error:
        raise ValueError(
            f"model {model.name!r} ends in a softmax, but its last layer {last.name!r} is not called "
            "once in a graph, so the logits beneath it cannot be found; give a model that outputs logits"
        ) from error
    if isinstance(last, keras.layers.Softmax) or isinstance(last, keras.layers.Activation):
        return keras.Model(inputs, last_input, name=f"{model.name}_logits")
    if isinstance(last, keras.layers.Dense):
        return keras.Model(inputs, _DenseLogits(last)(last_input), name=f"{model.name}_logits")
    raise ValueError(
        f"model {model.name!r} ends in a {type(last).__name__} layer with a softmax activation; "
        "compresslab can recover logits beneath Dense, Softmax and Activation layers only"
    )


def _finite_real(value) -> bool:
    return (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
            and math.isfinite(value))


def _check_temperature(value, what: str = "temperature") -> float:
    """``value`` as a float if it is a finite number > 0 (an infinite T silently trains a NaN student)."""
    if not (_finite_real(value) and value > 0):
        raise ValueError(f"{what} is {value!r}; it must be a finite number > 0")
    return float(value)


def _check_alpha(value) -> float:
    if not (_finite_real(value) and 0 <= value <= 1):
        raise ValueError(f"alpha is {value!r}; it must be a finite number in [0, 1]")
    return float(value)


def soften(logits, temperature: float) -> np.ndarray:
    """``softmax(logits / temperature)`` over the last axis, in NumPy (fast, for sliders).

    Example:
        >>> soften([2.0, 1.0, 0.0], temperature=10).round(3)
        array([0.367, 0.332, 0.301])
    """
    temperature = _check_temperature(temperature)
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled = scaled - scaled.max(axis=-1, keepdims=True)  # avoids overflow; softmax is shift-invariant
    exponentials = np.exp(scaled)
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def entropy_bits(probabilities) -> np.ndarray:
    """Shannon entropy in bits over the last axis: 0 for a one-hot distribution, log2(K) for uniform.

    Example:
        >>> float(entropy_bits([0.5, 0.5]))
        1.0
    """
    p = np.asarray(probabilities, dtype=np.float64)
    return -(p * np.log2(np.where(p > 0, p, 1.0))).sum(axis=-1)


def soft_targets(teacher: keras.Model, images, temperatures) -> np.ndarray:
    """The teacher's distribution ``softmax(logits / T)`` at each temperature.

    At ``T = 1`` a confident teacher puts nearly all the mass on one class; as ``T`` grows the
    small probabilities of the other classes (which digits this one resembles: the "dark
    knowledge") become visible.

    Args:
        teacher: a tf_keras classifier (logits or softmax output: see :func:`logits_model`).
        images: one image ``(H, W, C)`` or a batch ``(N, H, W, C)``.
        temperatures: one temperature or a sequence of them, each > 0.

    Returns:
        ``(len(temperatures), N, num_classes)`` probabilities, or ``(len(temperatures),
        num_classes)`` for a single image. A scalar temperature drops the first axis.

    Raises:
        ValueError: a temperature <= 0, or images whose shape does not fit the teacher.

    Example:
        >>> soft_targets(teacher, data.x_test[0], [1, 5, 20]).shape
        (3, 10)
    """
    scalar = np.ndim(temperatures) == 0
    values = [temperatures] if scalar else list(temperatures)
    if not values:
        raise ValueError("temperatures is empty; give at least one temperature > 0")
    for value in values:
        _check_temperature(value, "every temperature")
    images = np.asarray(images, dtype=np.float32)
    expected = tuple(teacher.input_shape[1:])
    single = images.ndim == len(expected)
    batch = images[None] if single else images
    if batch.ndim != len(expected) + 1 or any(d is not None and d != e for d, e in zip(expected, batch.shape[1:])):
        raise ValueError(f"images have shape {images.shape}; the teacher expects {expected} or (N, *{expected})")
    logits = predict_logits(logits_model(teacher), batch)
    result = np.stack([soften(logits, value) for value in values])
    if single:
        result = result[:, 0]
    return result[0] if scalar else result


# ---------------------------------------------------------------------------------------------
# The loss and the training model


def distillation_loss(labels, student_logits, teacher_logits, *, temperature: float, alpha: float):
    """The distillation objective, averaged over the batch, and its two parts.

    Args:
        labels: integer class labels ``(N,)``.
        student_logits, teacher_logits: ``(N, num_classes)`` logits (before any softmax).
        temperature: ``T`` > 0.
        alpha: weight of the hard-label term, in [0, 1].

    Returns:
        ``(total, hard, soft)`` tensors: ``hard = CE(labels, softmax(student))``,
        ``soft = T**2 * KL(softmax(teacher / T) || softmax(student / T))`` and
        ``total = alpha * hard + (1 - alpha) * soft``.

    Example:
        >>> total, hard, soft = distillation_loss(y, s, t, temperature=4.0, alpha=0.1)
    """
    labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
    student_logits = tf.cast(student_logits, tf.float32)
    teacher_logits = tf.cast(teacher_logits, tf.float32)
    hard = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=student_logits))
    alpha = _check_alpha(alpha)
    temperature = tf.constant(_check_temperature(temperature), tf.float32)
    teacher_log_probs = tf.nn.log_softmax(teacher_logits / temperature, axis=-1)
    student_log_probs = tf.nn.log_softmax(student_logits / temperature, axis=-1)
    kl = tf.reduce_sum(tf.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs), axis=-1)
    soft = temperature**2 * tf.reduce_mean(kl)
    total = alpha * hard + (1.0 - alpha) * soft
    return total, hard, soft


class Distiller(keras.Model):
    """A tf_keras Model that trains ``student`` on the distillation loss from ``teacher``.

    ``fit`` takes images and labels, or ``(images, teacher_logits)`` and labels when the
    teacher's logits were computed once beforehand (they are constants: the teacher runs in
    inference mode). Gradients are taken with respect to the student's trainable variables
    only, and the teacher's logits pass through ``tf.stop_gradient``: the teacher never trains.

    Args:
        student: the model to train (must output logits; see :func:`logits_model`).
        teacher: the model to imitate (logits output).
        temperature: ``T`` > 0.
        alpha: weight of the hard-label term, in [0, 1].

    Example:
        >>> distiller = Distiller(student, teacher, temperature=10, alpha=0.1)
        >>> distiller.compile(optimizer=keras.optimizers.Adam(1e-3))
        >>> distiller.fit(x_train, y_train, epochs=3)
    """

    def __init__(self, student: keras.Model, teacher: keras.Model, *, temperature: float, alpha: float,
                 name: str = "distiller"):
        super().__init__(name=name)
        if student is teacher:
            raise ValueError("the student and the teacher are the same model; distill into a separate student")
        self.student = student
        self.teacher = teacher
        self.temperature = _check_temperature(temperature)
        self.alpha = _check_alpha(alpha)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.hard_tracker = keras.metrics.Mean(name="hard_loss")
        self.soft_tracker = keras.metrics.Mean(name="soft_loss")
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @property
    def metrics(self):
        return [self.loss_tracker, self.hard_tracker, self.soft_tracker, self.accuracy_tracker]

    def _split(self, x):
        if isinstance(x, (tuple, list)):
            images, teacher_logits = x
        else:
            images, teacher_logits = x, self.teacher(x, training=False)
        return images, tf.stop_gradient(teacher_logits)

    def call(self, inputs, training=None):
        images = inputs[0] if isinstance(inputs, (tuple, list)) else inputs
        return self.student(images, training=training)

    def compute_distillation_loss(self, x, y, training: bool = False):
        """``(total, hard, soft, student_logits)`` for a batch (used by train_step and tests)."""
        images, teacher_logits = self._split(x)
        student_logits = self.student(images, training=training)
        total, hard, soft = distillation_loss(y, student_logits, teacher_logits,
                                              temperature=self.temperature, alpha=self.alpha)
        return total, hard, soft, student_logits

    def _update(self, y, total, hard, soft, student_logits):
        self.loss_tracker.update_state(total)
        self.hard_tracker.update_state(hard)
        self.soft_tracker.update_state(soft)
        self.accuracy_tracker.update_state(y, student_logits)
        return {metric.name: metric.result() for metric in self.metrics}

    def train_step(self, data):
        x, y = data[0], data[1]
        with tf.GradientTape() as tape:
            total, hard, soft, student_logits = self.compute_distillation_loss(x, y, training=True)
            # Regularisation losses of the student (e.g. L2 kernels) are part of its objective.
            if self.student.losses:
                total = total + tf.add_n(self.student.losses)
        variables = self.student.trainable_variables
        gradients = tape.gradient(total, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        return self._update(y, total, hard, soft, student_logits)

    def test_step(self, data):
        x, y = data[0], data[1]
        total, hard, soft, student_logits = self.compute_distillation_loss(x, y, training=False)
        return self._update(y, total, hard, soft, student_logits)


# ---------------------------------------------------------------------------------------------
# Checks


def _check_models(teacher, student) -> None:
    for role, model in (("teacher", teacher), ("student", student)):
        if not isinstance(model, keras.Model):
            raise TypeError(
                f"the {role} must be a tf_keras Model, got {type(model).__name__}; load files with cl.load_model"
            )
        if isinstance(model.input_shape, list):
            raise ValueError(f"the {role} has several inputs; distillation needs single-input image classifiers")
    if teacher is student:
        raise ValueError("the teacher and the student are the same model; build a separate, smaller student")
    teacher_shape, student_shape = tuple(teacher.input_shape[1:]), tuple(student.input_shape[1:])
    if teacher_shape != student_shape:
        raise ValueError(
            f"the teacher takes inputs of shape {teacher_shape} but the student takes {student_shape}; "
            "both must read the same images"
        )
    teacher_outputs, student_outputs = teacher.output_shape[-1], student.output_shape[-1]
    if teacher_outputs != student_outputs:
        raise ValueError(
            f"the teacher has {teacher_outputs} outputs but the student has {student_outputs}; "
            "both must predict the same classes"
        )


def _check_data(data, *models) -> None:
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a compresslab Dataset, got {type(data).__name__}")
    for role, model in models:
        try:
            check_model_fits(model, data)
        except ValueError as error:
            raise ValueError(f"the {role} does not fit the data: {error}") from None


def _check_spec(spec) -> DistillSpec:
    if spec is None:
        return DistillSpec()
    if isinstance(spec, dict):
        return DistillSpec.from_dict(spec)
    if not isinstance(spec, DistillSpec):
        raise TypeError(f"spec must be a DistillSpec (or its dict), got {type(spec).__name__}")
    return spec


def check_teacher(teacher: keras.Model, data: Dataset, *, teacher_logits: np.ndarray | None = None) -> float:
    """The teacher's test accuracy; warns (``UserWarning``) when it is near chance.

    Args:
        teacher: the teacher model.
        data: its test split is used.
        teacher_logits: the teacher's logits on ``data.x_test`` if already computed.

    Returns:
        The accuracy in [0, 1].

    Example:
        >>> check_teacher(cl.models.seed_cnn(), data)   # untrained: warns
    """
    if teacher_logits is None:
        teacher_logits = predict_logits(teacher, data.x_test)
    accuracy = float(np.mean(np.asarray(teacher_logits).argmax(axis=1) == data.y_test))
    chance = 1.0 / data.num_classes
    if accuracy < chance + UNTRAINED_MARGIN * (1.0 - chance):
        warnings.warn(
            f"the teacher's test accuracy is {accuracy:.1%}, near chance ({chance:.1%}) for "
            f"{data.num_classes} classes: it looks untrained, and a student distilled from it learns noise",
            UserWarning,
            stacklevel=3,
        )
    return accuracy


# ---------------------------------------------------------------------------------------------
# Training


def _callbacks(epochs: int, progress, description: str) -> list:
    on_epoch = progress if callable(progress) else None
    return [ProgressCallback(epochs, on_epoch=on_epoch, show_bar=progress is True, description=description)]


def distill(teacher: keras.Model, student: keras.Model, data: Dataset, spec: DistillSpec | None = None, *,
            progress: bool | Callable = False, track_test: bool = False, cache_teacher: bool = True,
            teacher_train_logits: np.ndarray | None = None) -> tuple[keras.Model, keras.callbacks.History]:
    """Train a copy of ``student`` to imitate ``teacher`` on ``data``'s training split.

    The student passed in is not changed: a clone (same architecture, same starting weights)
    is trained and returned. The teacher is never trained and its weights never reach the
    student; only its outputs do.

    Args:
        teacher: a trained tf_keras classifier (logits or softmax output).
        student: the (usually smaller, usually untrained) model to start from.
        data: the :class:`Dataset`; only the training split is used for training.
        spec: a :class:`DistillSpec` (default ``DistillSpec()``).
        progress: True for a progress bar, False for silence, or ``callable(epoch, logs)``.
        track_test: also report the test split's loss and accuracy after each epoch
            (``val_*`` in the history). For display only: nothing is chosen with it.
        cache_teacher: compute the teacher's logits on the training images once instead of
            in every step (identical values, since the teacher runs in inference mode; much
            faster when the teacher is large).
        teacher_train_logits: the teacher's logits on ``data.x_train``, computed beforehand, to
            share them between runs (several seeds); shape ``(len(x_train), num_classes)``.

    Returns:
        ``(distilled_student, history)``: the new compiled student (same output as the student
        passed in) and the Keras ``History`` with ``loss``, ``hard_loss``, ``soft_loss`` and
        ``accuracy`` per epoch.

    Raises:
        TypeError: a model that is not a tf_keras Model, data that is not a Dataset, a bad spec.
        ValueError: teacher and student with different input shapes or numbers of outputs, or
            data whose images or classes fit neither.

    Warns:
        UserWarning: the teacher's test accuracy is near chance (it looks untrained).

    Example:
        >>> distilled, history = distill(teacher, student, data, DistillSpec(temperature=20, alpha=0.1))
    """
    spec = _check_spec(spec)
    _check_models(teacher, student)
    _check_data(data, ("teacher", teacher), ("student", student))
    teacher_view = logits_model(teacher)
    check_teacher(teacher_view, data)

    trained = clone(student)
    trained_view = logits_model(trained)  # shares the clone's weights: training it trains the clone
    distiller = Distiller(trained_view, teacher_view, temperature=spec.temperature, alpha=spec.alpha)
    distiller.compile(optimizer=keras.optimizers.Adam(spec.learning_rate))
    inputs = data.x_train
    if teacher_train_logits is not None:
        teacher_train_logits = np.asarray(teacher_train_logits, dtype=np.float32)
        expected = (len(data.x_train), data.num_classes)
        if teacher_train_logits.shape != expected:
            raise ValueError(f"teacher_train_logits has shape {teacher_train_logits.shape}; expected {expected} "
                             "(the teacher's logits on data.x_train)")
        inputs = (data.x_train, teacher_train_logits)
    elif cache_teacher:
        inputs = (data.x_train, predict_logits(teacher_view, data.x_train).astype(np.float32))
    set_seed(spec.seed)  # as train_from_scratch does right before fitting
    history = distiller.fit(
        inputs, data.y_train,
        epochs=spec.epochs, batch_size=spec.batch_size, shuffle=True, verbose=0,
        validation_data=(data.x_test, data.y_test) if track_test else None,
        callbacks=_callbacks(spec.epochs, progress, "distilling"),
    )
    compile_for_classification(trained, spec.learning_rate)
    trained.compresslab_info = {"technique": "distill", "spec": spec.to_dict(), "teacher": teacher.name}
    return trained, history


def train_from_scratch(student: keras.Model, data: Dataset, spec: DistillSpec | None = None, *,
                       progress: bool | Callable = False,
                       track_test: bool = False) -> tuple[keras.Model, keras.callbacks.History]:
    """Train a copy of ``student`` on the labels alone, with the budget of a distillation run.

    The reference a distilled student must beat: same starting weights (a clone of
    ``student``), same epochs, batch size, optimizer (Adam), learning rate and seed as
    :func:`distill` with the same ``spec``; only the teacher's soft targets are missing.

    Args:
        student: the model to start from (not changed).
        data: the :class:`Dataset`.
        spec: the :class:`DistillSpec` whose budget to use (temperature and alpha are ignored).
        progress: True for a progress bar, False for silence, or ``callable(epoch, logs)``.
        track_test: also report test loss and accuracy per epoch (``val_*``), for display only.

    Returns:
        ``(trained_student, history)``.

    Raises:
        TypeError, ValueError: as :func:`distill`, for the student and the data.

    Example:
        >>> scratch, history = train_from_scratch(student, data, DistillSpec(epochs=5))
    """
    spec = _check_spec(spec)
    if not isinstance(student, keras.Model):
        raise TypeError(f"the student must be a tf_keras Model, got {type(student).__name__}")
    _check_data(data, ("student", student))
    trained = clone(student)
    compile_for_classification(trained, spec.learning_rate)
    history = train_classifier(
        trained, data, epochs=spec.epochs, batch_size=spec.batch_size, seed=spec.seed,
        learning_rate=spec.learning_rate, progress=False, compile=False,
        # The test tracker runs first so the progress callable sees its figure.
        callbacks=([_TestTracker(data)] if track_test else []) + _callbacks(spec.epochs, progress, "from scratch"),
    )
    trained.compresslab_info = {"technique": "scratch", "spec": spec.to_dict()}
    return trained, history


class _TestTracker(keras.callbacks.Callback):
    """Adds ``val_accuracy`` (test split, display only) to the logs after each epoch.

    ``models.train`` has no validation-data argument; this keeps the scratch history's keys the
    same as :func:`distill`'s with ``track_test``. It runs before the progress callback's next
    epoch, so callables see the figure in ``logs``.
    """

    def __init__(self, data: Dataset):
        super().__init__()
        self.data = data

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logits = predict_logits(self.model, self.data.x_test)
        logs["val_accuracy"] = float(np.mean(logits.argmax(axis=1) == self.data.y_test))


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
    _check_models(teacher, student)
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
    from .models import build

    spec = _check_spec(spec)
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
