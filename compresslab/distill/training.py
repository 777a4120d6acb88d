"""The distillation objective and its training: :func:`distillation_loss`, :class:`Distiller`, input checks,
:func:`distill` and the honest baseline :func:`train_from_scratch` (same student, same budget)."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from .._keras import keras, tf
from ..data import Dataset
from ..modelio.convert import as_tf_keras
from ..models import (
    ProgressCallback,
    check_model_fits,
    clone,
    compile_for_classification,
    fit_arrays,
    predict_logits,
    set_seed,
)
from ..models import train as train_classifier
from .spec import UNTRAINED_MARGIN, DistillSpec
from .targets import _check_alpha, _check_temperature, logits_model

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
                 shift: int = 0, seed: int = 0, name: str = "distiller"):
        super().__init__(name=name)
        if student is teacher:
            raise ValueError("the student and the teacher are the same model; distill into a separate student")
        self.student = student
        self.teacher = teacher
        self.temperature = _check_temperature(temperature)
        self.alpha = _check_alpha(alpha)
        self.shifter = random_shift(student.input_shape[1:], shift, seed)
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
        """``(total, hard, soft, student_logits)`` for a batch (used by train_step and tests).

        With a shift, a training batch is shifted first and the teacher's logits are taken on the
        shifted images (precomputed logits are refused: they belong to the unshifted ones).
        """
        if training and self.shifter is not None:
            if isinstance(x, (tuple, list)):
                raise ValueError("precomputed teacher logits cannot be used with shift > 0: the teacher "
                                 "must see each shifted image")
            x = self.shifter(x, training=True)
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


def random_shift(input_shape, shift: int, seed: int = 0):
    """A layer moving each image by up to ``shift`` whole pixels in each direction (zeros fill in), or None.

    Active only in training (``layer(images, training=True)``); a new shift per image and step.
    """
    if not shift:
        return None
    height, width = int(input_shape[0]), int(input_shape[1])
    if 2 * shift >= min(height, width):
        raise ValueError(f"shift is {shift} pixels; images of {height}x{width} allow less than half their side "
                         f"(at most {(min(height, width) - 1) // 2})")
    return keras.layers.RandomTranslation(shift / height, shift / width, fill_mode="constant",
                                          interpolation="nearest", fill_value=0.0, seed=seed)


class _ShiftedLabels(keras.Model):
    """Trains ``student`` (logits output) on the labels alone, each batch shifted as :class:`Distiller` shifts it."""

    def __init__(self, student: keras.Model, shift: int, seed: int):
        super().__init__(name="shifted_labels")
        self.student = student
        self.shifter = random_shift(student.input_shape[1:], shift, seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def train_step(self, data):
        images, labels = data[0], tf.cast(tf.reshape(data[1], [-1]), tf.int32)
        images = self.shifter(images, training=True)
        with tf.GradientTape() as tape:
            logits = self.student(images, training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
            if self.student.losses:
                loss = loss + tf.add_n(self.student.losses)
        variables = self.student.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        self.loss_tracker.update_state(loss)
        self.accuracy_tracker.update_state(labels, logits)
        return {metric.name: metric.result() for metric in self.metrics}


# ---------------------------------------------------------------------------------------------
# Checks


def _check_models(teacher, student) -> tuple:
    """The (teacher, student) tf_keras models (Keras 3 ones converted), checked against each other."""
    teacher, student = as_tf_keras(teacher, role="teacher"), as_tf_keras(student, role="student")
    for role, model in (("teacher", teacher), ("student", student)):
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
    return teacher, student


def _check_data(data, *models) -> None:
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a compresslab Dataset, got {type(data).__name__}")
    for role, model in models:
        model = as_tf_keras(model, role=role)  # a ModelTypeError names the role and is not re-worded below
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
            faster when the teacher is large). With ``spec.shift`` the teacher runs on every
            shifted batch instead.
        teacher_train_logits: the teacher's logits on ``data.x_train``, computed beforehand, to
            share them between runs (several seeds); shape ``(len(x_train), num_classes)``.
            Refused with ``spec.shift`` (they are logits of the unshifted images).

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
    teacher, student = _check_models(teacher, student)
    _check_data(data, ("teacher", teacher), ("student", student))
    teacher_view = logits_model(teacher)
    check_teacher(teacher_view, data)

    trained = clone(student)
    trained_view = logits_model(trained)  # shares the clone's weights: training it trains the clone
    distiller = Distiller(trained_view, teacher_view, temperature=spec.temperature, alpha=spec.alpha,
                          shift=spec.shift, seed=spec.seed)
    distiller.compile(optimizer=keras.optimizers.Adam(spec.learning_rate))
    inputs = data.x_train
    if spec.shift:  # the teacher runs on every shifted batch: there is nothing to cache
        if teacher_train_logits is not None:
            raise ValueError(f"teacher_train_logits were given with shift={spec.shift}: they are the teacher's "
                             "logits on the unshifted images, and a shifted image needs its own; leave them out")
    elif teacher_train_logits is not None:
        teacher_train_logits = np.asarray(teacher_train_logits, dtype=np.float32)
        expected = (len(data.x_train), data.num_classes)
        if teacher_train_logits.shape != expected:
            raise ValueError(f"teacher_train_logits has shape {teacher_train_logits.shape}; expected {expected} "
                             "(the teacher's logits on data.x_train)")
        inputs = (data.x_train, teacher_train_logits)
    elif cache_teacher:
        inputs = (data.x_train, predict_logits(teacher_view, data.x_train).astype(np.float32))
    set_seed(spec.seed)  # as train_from_scratch does right before fitting
    history = fit_arrays(
        distiller, inputs, data.y_train, epochs=spec.epochs, batch_size=spec.batch_size,
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
    student = as_tf_keras(student, role="student")
    _check_data(data, ("student", student))
    trained = clone(student)
    compile_for_classification(trained, spec.learning_rate)
    if spec.shift:
        return _from_scratch_shifted(trained, data, spec, progress, track_test)
    history = train_classifier(
        trained, data, epochs=spec.epochs, batch_size=spec.batch_size, seed=spec.seed,
        learning_rate=spec.learning_rate, progress=False, compile=False,
        # The test tracker runs first so the progress callable sees its figure.
        callbacks=([_TestTracker(data)] if track_test else []) + _callbacks(spec.epochs, progress, "from scratch"),
    )
    trained.compresslab_info = {"technique": "scratch", "spec": spec.to_dict()}
    return trained, history


def _from_scratch_shifted(trained, data: Dataset, spec: DistillSpec, progress, track_test: bool):
    """:func:`train_from_scratch` with ``spec.shift``: the same batches as :func:`distill`, shifted alike."""
    trainer = _ShiftedLabels(logits_model(trained), spec.shift, spec.seed)  # shares ``trained``'s weights
    trainer.compile(optimizer=keras.optimizers.Adam(spec.learning_rate))
    set_seed(spec.seed)  # as distill does right before fitting
    history = fit_arrays(trainer, data.x_train, data.y_train, epochs=spec.epochs, batch_size=spec.batch_size,
                         callbacks=([_TestTracker(data, trained)] if track_test else [])
                         + _callbacks(spec.epochs, progress, "from scratch"))
    compile_for_classification(trained, spec.learning_rate)
    trained.compresslab_info = {"technique": "scratch", "spec": spec.to_dict()}
    return trained, history


class _TestTracker(keras.callbacks.Callback):
    """Adds ``val_accuracy`` (test split, display only) to the logs after each epoch.

    ``models.train`` has no validation-data argument; this keeps the scratch history's keys the
    same as :func:`distill`'s with ``track_test``. It runs before the progress callback's next
    epoch, so callables see the figure in ``logs``.
    """

    def __init__(self, data: Dataset, model: keras.Model | None = None):
        super().__init__()
        self.data = data
        self.measured = model  # the model to measure (default: the one being fitted)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logits = predict_logits(self.measured if self.measured is not None else self.model, self.data.x_test)
        logs["val_accuracy"] = float(np.mean(logits.argmax(axis=1) == self.data.y_test))
