"""Tests of compresslab.distill: the spec, the loss, logits of softmax teachers, the Distiller and bad input."""

from __future__ import annotations

import numpy as np
import pytest

import compresslab as cl
from compresslab import distill as core
from compresslab._keras import keras, tf


def weights_of(model):
    return [w.copy() for w in model.get_weights()]


def same_weights(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def small_student(data, seed=0, width=0.5):
    return cl.models.build("student_cnn", data.input_shape, data.num_classes, seed=seed, width=width)


def softmax_copy(model, *, separate_layer: bool):
    """The same classifier ending in a softmax: a Dense(softmax) layer or a Softmax layer after the logits."""
    inputs = keras.Input(model.input_shape[1:])
    x = inputs
    for layer in model.layers[1:-1]:
        x = layer.__class__.from_config(layer.get_config())(x)
    last = model.layers[-1]
    if separate_layer:
        x = keras.layers.Dense(last.units, name="logits")(x)
        outputs = keras.layers.Softmax(name="probabilities")(x)
    else:
        outputs = keras.layers.Dense(last.units, activation="softmax", name="probabilities")(x)
    copy = keras.Model(inputs, outputs)
    copy.set_weights(model.get_weights())
    return copy


# ---------------------------------------------------------------------------------------------
# Spec


def test_spec_defaults_round_trip_and_hash():
    spec = core.DistillSpec(temperature=20, alpha=0.1, epochs=3, seed=2)
    assert core.DistillSpec.from_dict(spec.to_dict()) == spec
    assert core.DistillSpec.from_json(spec.to_json()) == spec
    assert hash(spec) == hash(core.DistillSpec(temperature=20, alpha=0.1, epochs=3, seed=2))
    assert cl.DistillSpec is core.DistillSpec
    assert spec.replace(alpha=1.0).alpha == 1.0


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("temperature", 0, "temperature"),
        ("temperature", -2.0, "temperature"),
        ("temperature", float("nan"), "temperature"),
        ("alpha", -0.1, "alpha"),
        ("alpha", 1.5, "alpha"),
        ("epochs", 0, "epochs"),
        ("epochs", 2.5, "epochs"),
        ("batch_size", 0, "batch_size"),
        ("learning_rate", 0.0, "learning_rate"),
    ],
)
def test_spec_rejects_bad_values(field, value, words):
    with pytest.raises(ValueError, match=words):
        core.DistillSpec(**{field: value})


@pytest.mark.parametrize("field", ["temperature", "learning_rate", "alpha"])
@pytest.mark.parametrize("value", [float("inf"), -float("inf"), np.float64("inf")])
def test_spec_rejects_infinite_numbers_naming_the_field(field, value):
    # temperature=inf and learning_rate=inf used to train a student to all-NaN weights silently
    with pytest.raises(ValueError, match=rf"DistillSpec.{field} is -?inf; it must be a finite number"):
        core.DistillSpec(**{field: value})


def test_spec_takes_numpy_scalars_and_stores_plain_numbers():
    spec = core.DistillSpec(temperature=np.float32(4.0), alpha=np.float64(0.25), epochs=np.int64(2),
                            batch_size=np.int32(32), seed=np.int64(1))
    assert spec == core.DistillSpec(temperature=4.0, alpha=0.25, epochs=2, batch_size=32, seed=1)
    assert [type(v) for v in (spec.temperature, spec.alpha, spec.epochs)] == [float, float, int]
    assert core.DistillSpec.from_json(spec.to_json()) == spec


def test_softening_and_loss_refuse_infinite_temperature_and_bad_alpha():
    logits = np.array([[3.0, 1.0, -2.0]])
    with pytest.raises(ValueError, match="temperature is inf; it must be a finite number > 0"):
        core.soften(logits, float("inf"))
    with pytest.raises(ValueError, match="temperature is True"):
        core.soften(logits, True)
    with pytest.raises(ValueError, match="alpha is nan"):
        core.distillation_loss([0], logits, logits, temperature=2.0, alpha=float("nan"))
    with pytest.raises(ValueError, match="temperature is inf"):
        core.distillation_loss([0], logits, logits, temperature=float("inf"), alpha=0.5)


def test_spec_accepts_the_edges_of_alpha():
    assert core.DistillSpec(alpha=0.0).alpha == 0.0
    assert core.DistillSpec(alpha=1.0, temperature=0.5).temperature == 0.5


# ---------------------------------------------------------------------------------------------
# Softening and the loss


def test_soften_is_the_tempered_softmax():
    logits = np.array([[3.0, 1.0, -2.0], [0.0, 0.0, 0.0]])
    expected = np.exp(logits / 4) / np.exp(logits / 4).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(core.soften(logits, 4), expected, rtol=1e-12)
    np.testing.assert_allclose(core.soften(logits, 4).sum(axis=1), 1.0)
    # higher temperature -> flatter: the largest probability falls toward 1/3
    assert core.soften(logits[0], 20).max() < core.soften(logits[0], 1).max()
    with pytest.raises(ValueError, match="temperature"):
        core.soften(logits, 0)


def numpy_loss(labels, student, teacher, temperature, alpha):
    def log_softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    hard = -np.mean(log_softmax(student)[np.arange(len(labels)), labels])
    p = np.exp(log_softmax(teacher / temperature))
    kl = np.sum(p * (np.log(p) - log_softmax(student / temperature)), axis=1).mean()
    soft = temperature**2 * kl
    return alpha * hard + (1 - alpha) * soft, hard, soft


@pytest.mark.parametrize("temperature, alpha", [(1.0, 0.5), (4.0, 0.1), (20.0, 0.0), (2.0, 1.0)])
def test_distillation_loss_matches_the_formula(temperature, alpha):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=16)
    student = rng.normal(size=(16, 10)).astype(np.float32) * 3
    teacher = rng.normal(size=(16, 10)).astype(np.float32) * 5
    total, hard, soft = core.distillation_loss(labels, student, teacher, temperature=temperature, alpha=alpha)
    expected = numpy_loss(labels, student.astype(np.float64), teacher.astype(np.float64), temperature, alpha)
    np.testing.assert_allclose([float(total), float(hard), float(soft)], expected, rtol=1e-4)


def test_soft_loss_is_zero_when_the_student_matches_the_teacher():
    logits = np.random.default_rng(1).normal(size=(8, 10)).astype(np.float32)
    _, _, soft = core.distillation_loss(np.zeros(8, int), logits, logits, temperature=5.0, alpha=0.0)
    assert abs(float(soft)) < 1e-5
    # a constant shift of the logits changes nothing either (softmax is shift-invariant)
    _, _, soft_shifted = core.distillation_loss(np.zeros(8, int), logits + 3.0, logits, temperature=5.0, alpha=0.0)
    assert abs(float(soft_shifted)) < 1e-4


# ---------------------------------------------------------------------------------------------
# Logits of any classifier, soft targets


@pytest.mark.parametrize("separate_layer", [False, True])
def test_logits_model_recovers_logits_beneath_a_softmax(trained_seed_cnn, small_digits, separate_layer):
    teacher = softmax_copy(trained_seed_cnn, separate_layer=separate_layer)
    assert not cl.models.outputs_logits(teacher)
    view = core.logits_model(teacher)
    x = small_digits.x_test[:32]
    np.testing.assert_allclose(view(x).numpy(), trained_seed_cnn(x).numpy(), atol=1e-4)
    # a view, not a copy: it reads the same variables
    assert {id(v) for v in view.trainable_variables} <= {id(v) for v in teacher.trainable_variables}


def test_logits_model_keeps_a_logits_model_and_recovers_an_activation_layer():
    model = cl.models.student_cnn(width=0.25)
    assert core.logits_model(model) is model
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, name="dense")(inputs)
    probabilities = keras.layers.Activation("softmax")(hidden)
    wrapped = keras.Model(inputs, probabilities)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(core.logits_model(wrapped)(x).numpy(), wrapped.get_layer("dense")(x).numpy(),
                               atol=1e-6)


def test_soft_targets_shapes_and_values(trained_seed_cnn, small_digits):
    images = small_digits.x_test[:3]
    probabilities = core.soft_targets(trained_seed_cnn, images, [1, 5, 20])
    assert probabilities.shape == (3, 3, 10)
    logits = trained_seed_cnn(images).numpy()
    np.testing.assert_allclose(probabilities[1], core.soften(logits, 5), atol=1e-5)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)
    # one image -> (temperatures, classes); a scalar temperature drops that axis too
    assert core.soft_targets(trained_seed_cnn, images[0], [1, 20]).shape == (2, 10)
    assert core.soft_targets(trained_seed_cnn, images[0], 20).shape == (10,)
    # the "dark knowledge" view: the top class's share falls and the others' rises with T
    single = core.soft_targets(trained_seed_cnn, images[0], [1, 20])
    assert single[1].max() < single[0].max()
    assert np.sort(single[1])[-2] > np.sort(single[0])[-2]


def test_soft_targets_of_a_softmax_teacher_use_its_logits(trained_seed_cnn, small_digits):
    image = small_digits.x_test[0]
    plain = core.soft_targets(trained_seed_cnn, image, [1, 10])
    wrapped = core.soft_targets(softmax_copy(trained_seed_cnn, separate_layer=False), image, [1, 10])
    np.testing.assert_allclose(wrapped, plain, atol=1e-5)


@pytest.mark.parametrize("temperatures", [0, [1, -1], [], ["hot"]])
def test_soft_targets_rejects_bad_temperatures(trained_seed_cnn, small_digits, temperatures):
    with pytest.raises(ValueError, match="temperature"):
        core.soft_targets(trained_seed_cnn, small_digits.x_test[:1], temperatures)


def test_soft_targets_rejects_images_of_the_wrong_shape(trained_seed_cnn):
    with pytest.raises(ValueError, match="shape"):
        core.soft_targets(trained_seed_cnn, np.zeros((2, 16, 16, 1), np.float32), [1])


# ---------------------------------------------------------------------------------------------
# The Distiller: only the student trains


def test_gradients_reach_only_the_student(trained_seed_cnn, small_digits):
    student = small_student(small_digits)
    distiller = core.Distiller(student, trained_seed_cnn, temperature=4.0, alpha=0.1)
    x, y = small_digits.x_train[:16], small_digits.y_train[:16]
    teacher_variables = trained_seed_cnn.trainable_variables
    with tf.GradientTape() as tape:
        total, _, _, _ = distiller.compute_distillation_loss(x, y, training=True)
    gradients = tape.gradient(total, student.trainable_variables + teacher_variables)
    student_gradients = gradients[: len(student.trainable_variables)]
    teacher_gradients = gradients[len(student.trainable_variables):]
    assert all(g is not None and float(tf.reduce_sum(tf.abs(g))) > 0 for g in student_gradients)
    assert all(g is None for g in teacher_gradients)


def test_distiller_fit_trains_the_student_and_never_the_teacher(trained_seed_cnn, small_digits):
    student = small_student(small_digits)
    teacher_before = weights_of(trained_seed_cnn)
    student_before = weights_of(student)
    distiller = core.Distiller(student, trained_seed_cnn, temperature=4.0, alpha=0.1)
    distiller.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = distiller.fit(small_digits.x_train[:256], small_digits.y_train[:256], epochs=1, batch_size=64,
                            verbose=0)
    assert same_weights(weights_of(trained_seed_cnn), teacher_before)
    assert not any(np.array_equal(a, b) for a, b in zip(weights_of(student), student_before))
    assert {"loss", "hard_loss", "soft_loss", "accuracy"} <= set(history.history)
    with pytest.raises(ValueError, match="same model"):
        core.Distiller(student, student, temperature=2.0, alpha=0.5)


def test_cached_teacher_logits_give_the_same_loss(trained_seed_cnn, small_digits):
    student = small_student(small_digits)
    distiller = core.Distiller(student, trained_seed_cnn, temperature=3.0, alpha=0.2)
    x, y = small_digits.x_train[:32], small_digits.y_train[:32]
    on_the_fly = distiller.compute_distillation_loss(x, y)[0]
    cached = distiller.compute_distillation_loss((x, trained_seed_cnn(x, training=False)), y)[0]
    np.testing.assert_allclose(float(on_the_fly), float(cached), rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# distill and train_from_scratch


def test_distill_returns_a_new_student_and_leaves_both_inputs_alone(trained_seed_cnn, small_digits):
    student = small_student(small_digits)
    teacher_before = weights_of(trained_seed_cnn)
    student_before = weights_of(student)
    spec = core.DistillSpec(temperature=8, alpha=0.1, epochs=2, seed=0)
    distilled, history = core.distill(trained_seed_cnn, student, small_digits, spec)
    # the teacher: bit-identical; the student passed in: untouched
    assert same_weights(weights_of(trained_seed_cnn), teacher_before)
    assert same_weights(weights_of(student), student_before)
    # not swapped: the trained model is the student's architecture, with changed weights
    assert distilled is not student and distilled is not trained_seed_cnn
    assert distilled.count_params() == student.count_params() < trained_seed_cnn.count_params() / 10
    assert [w.shape for w in distilled.get_weights()] == [w.shape for w in student_before]
    assert not any(np.array_equal(a, b) for a, b in zip(distilled.get_weights(), student_before))
    assert len(history.history["loss"]) == 2
    assert history.history["soft_loss"][-1] < history.history["soft_loss"][0]
    assert distilled.compresslab_info["technique"] == "distill"
    # compiled for classification: evaluate works and agrees with the held-out accuracy
    _, keras_accuracy = distilled.evaluate(small_digits.x_test, small_digits.y_test, verbose=0)
    assert keras_accuracy == pytest.approx(cl.models.accuracy(distilled, small_digits), abs=1e-6)


def test_alpha_one_is_training_from_scratch(trained_seed_cnn, small_digits):
    """Same budget, same start: with alpha = 1 the two functions must train the same model."""
    student = small_student(small_digits, seed=3)
    spec = core.DistillSpec(temperature=5, alpha=1.0, epochs=1, batch_size=50, seed=3)
    distilled, _ = core.distill(trained_seed_cnn, student, small_digits, spec)
    scratch, _ = core.train_from_scratch(student, small_digits, spec)
    for a, b in zip(distilled.get_weights(), scratch.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_distill_with_a_softmax_teacher(trained_seed_cnn, small_digits):
    teacher = softmax_copy(trained_seed_cnn, separate_layer=False)
    student = small_student(small_digits)
    spec = core.DistillSpec(temperature=5, alpha=0.0, epochs=1)
    from_softmax, _ = core.distill(teacher, student, small_digits, spec)
    from_logits, _ = core.distill(trained_seed_cnn, student, small_digits, spec)
    for a, b in zip(from_softmax.get_weights(), from_logits.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_a_softmax_student_is_trained_through_its_logits(trained_seed_cnn, small_digits):
    student = softmax_copy(small_student(small_digits), separate_layer=False)
    before = weights_of(student)
    distilled, _ = core.distill(trained_seed_cnn, student, small_digits, core.DistillSpec(epochs=1))
    assert same_weights(weights_of(student), before)
    assert not cl.models.outputs_logits(distilled)  # still outputs probabilities, like the input
    np.testing.assert_allclose(distilled(small_digits.x_test[:4]).numpy().sum(axis=1), 1.0, atol=1e-5)
    assert not same_weights(weights_of(distilled), before)


def test_compare_trains_both_with_the_same_budget(trained_seed_cnn, small_digits):
    calls = []
    student = small_student(small_digits)
    result = core.compare(trained_seed_cnn, student, small_digits,
                          core.DistillSpec(temperature=10, alpha=0.1, epochs=2),
                          progress=lambda run, epoch, logs: calls.append((run, epoch, "val_accuracy" in logs)),
                          track_test=True)
    assert calls == [("scratch", 0, True), ("scratch", 1, True), ("distilled", 0, True), ("distilled", 1, True)]
    for run in ("scratch", "distilled"):
        assert len(result["histories"][run]["val_accuracy"]) == 2
        # the last tracked test accuracy is the returned model's
        assert result["histories"][run]["val_accuracy"][-1] == pytest.approx(
            cl.models.accuracy(result[run], small_digits), abs=1e-6)


def test_a_distilled_student_learns(trained_seed_cnn, digits):
    student = small_student(digits, width=1.0)
    distilled, _ = core.distill(trained_seed_cnn, student, digits,
                                core.DistillSpec(temperature=4, alpha=0.5, epochs=6, seed=0))
    assert cl.models.accuracy(distilled, digits) > 0.8  # chance is 0.1


# ---------------------------------------------------------------------------------------------
# Bad input: a clear error before any training


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training started despite bad input")

    monkeypatch.setattr(core.Distiller, "fit", refuse)
    monkeypatch.setattr(core.training, "train_classifier", refuse)


def test_different_numbers_of_outputs(trained_seed_cnn, small_digits, no_training):
    student = cl.models.student_cnn(num_classes=5)
    with pytest.raises(ValueError, match="10 outputs but the student has 5"):
        core.distill(trained_seed_cnn, student, small_digits, core.DistillSpec(epochs=1))


def test_different_input_shapes(trained_seed_cnn, small_digits, no_training):
    student = cl.models.student_cnn(input_shape=(32, 32, 1))
    with pytest.raises(ValueError, match=r"inputs of shape \(28, 28, 1\) but the student takes \(32, 32, 1\)"):
        core.distill(trained_seed_cnn, student, small_digits, core.DistillSpec(epochs=1))


def test_data_that_fits_neither_model(trained_seed_cnn, no_training):
    rng = np.random.default_rng(0)
    data = cl.Dataset.from_arrays(rng.random((20, 16, 16, 1), dtype=np.float32), rng.integers(0, 10, 20),
                                  rng.random((10, 16, 16, 1), dtype=np.float32), rng.integers(0, 10, 10),
                                  class_names=[str(i) for i in range(10)])
    student = cl.models.student_cnn()
    with pytest.raises(ValueError, match="teacher does not fit the data.*16, 16, 1"):
        core.distill(trained_seed_cnn, student, data, core.DistillSpec(epochs=1))
    with pytest.raises(ValueError, match="student does not fit the data"):
        core.train_from_scratch(student, data, core.DistillSpec(epochs=1))


def test_other_bad_arguments(trained_seed_cnn, small_digits, no_training):
    student = cl.models.student_cnn()
    with pytest.raises(ValueError, match="same model"):
        core.distill(student, student, small_digits)
    with pytest.raises(TypeError, match=r"teacher must be a Keras classifier \(a tf_keras or Keras 3 Model\); got str"):
        core.distill("teacher.keras", student, small_digits)
    with pytest.raises(TypeError, match="Dataset"):
        core.distill(trained_seed_cnn, student, (small_digits.x_train, small_digits.y_train))
    with pytest.raises(TypeError, match="DistillSpec"):
        core.distill(trained_seed_cnn, student, small_digits, spec=3)
    with pytest.raises(ValueError, match="alpha"):
        core.distill(trained_seed_cnn, student, small_digits, spec={"alpha": 2.0})


def test_an_untrained_teacher_gets_a_warning(small_digits):
    untrained = cl.models.build("seed_cnn", seed=0)
    logits = np.zeros((len(small_digits.y_test), 10), np.float32)  # always predicts class 0
    with pytest.warns(UserWarning, match="untrained"):
        accuracy = core.check_teacher(untrained, small_digits, teacher_logits=logits)
    assert accuracy == pytest.approx(np.mean(small_digits.y_test == 0))
    with pytest.warns(UserWarning, match="near chance"):
        core.distill(untrained, small_student(small_digits), small_digits.subset(train=64, test=200),
                     core.DistillSpec(epochs=1))


def test_a_trained_teacher_gets_no_warning(trained_seed_cnn, small_digits, recwarn):
    accuracy = core.check_teacher(trained_seed_cnn, small_digits)
    assert accuracy > 0.8
    assert not [w for w in recwarn if "untrained" in str(w.message)]


# ---------------------------------------------------------------------------------------------
# Helpers for multi-seed comparisons


def test_count_errors_and_entropy(trained_seed_cnn, small_digits):
    errors = core.count_errors(trained_seed_cnn, small_digits)
    assert errors == round((1 - cl.models.accuracy(trained_seed_cnn, small_digits)) * len(small_digits.x_test))
    np.testing.assert_allclose(core.entropy_bits([[1.0, 0, 0, 0], [0.5, 0.5, 0, 0], [0.25] * 4]), [0.0, 1.0, 2.0])


def test_compare_seeds_reports_errors_per_seed(trained_seed_cnn, small_digits):
    messages = []
    runs = core.compare_seeds(trained_seed_cnn, small_digits, core.DistillSpec(temperature=4, alpha=0.5, epochs=1),
                              seeds=(0, 1), width=0.25, progress=messages.append, keep_models=True)
    assert [r["seed"] for r in runs] == [0, 1] and len(messages) == 2
    for run in runs:
        assert run["scratch_errors"] == core.count_errors(run["scratch_model"], small_digits)
        assert run["distilled_errors"] == core.count_errors(run["distilled_model"], small_digits)
        assert run["teacher_errors"] == core.count_errors(trained_seed_cnn, small_digits)
        assert run["test_images"] == len(small_digits.x_test)
    # different seeds -> different starting weights -> different students
    assert not np.array_equal(runs[0]["scratch_model"].get_weights()[0], runs[1]["scratch_model"].get_weights()[0])


def test_shared_teacher_logits_are_checked_and_used(trained_seed_cnn, small_digits):
    student = small_student(small_digits)
    with pytest.raises(ValueError, match="teacher_train_logits has shape"):
        core.distill(trained_seed_cnn, student, small_digits, core.DistillSpec(epochs=1),
                     teacher_train_logits=np.zeros((3, 10)))
    spec = core.DistillSpec(temperature=3, alpha=0.2, epochs=1)
    shared = cl.models.predict_logits(trained_seed_cnn, small_digits.x_train)
    with_shared, _ = core.distill(trained_seed_cnn, student, small_digits, spec, teacher_train_logits=shared)
    computed, _ = core.distill(trained_seed_cnn, student, small_digits, spec)
    for a, b in zip(with_shared.get_weights(), computed.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# shift: consistent teaching on randomly shifted images


@pytest.mark.parametrize("value", [-1, 9, 1.5, True])
def test_spec_refuses_a_bad_shift_naming_it(value):
    with pytest.raises(ValueError, match=r"DistillSpec.shift is .*integer from 0 to 8"):
        core.DistillSpec(shift=value)


def _shifted_by(original, moved, shift):
    """The (dy, dx) within +-shift that turns ``original`` into ``moved`` with zeros filling in, or None."""
    size = original.shape[0]
    padded = np.pad(original, ((shift, shift), (shift, shift), (0, 0)))
    for dy in range(-shift, shift + 1):
        for dx in range(-shift, shift + 1):
            window = padded[shift - dy : shift - dy + size, shift - dx : shift - dx + size]
            if np.array_equal(window, moved):
                return dy, dx
    return None


def test_random_shift_moves_each_image_by_whole_pixels_in_training_only(small_digits):
    layer = core.training.random_shift(small_digits.input_shape, 2, seed=0)
    images = small_digits.x_train[:32]
    moved = layer(images, training=True).numpy()
    offsets = [_shifted_by(a, b, 2) for a, b in zip(images, moved)]
    assert None not in offsets  # every image is a whole-pixel shift of itself, zeros filling the border
    assert len(set(offsets)) > 3  # a shift of its own per image, not one per batch
    np.testing.assert_array_equal(layer(images, training=False).numpy(), images)
    assert core.training.random_shift(small_digits.input_shape, 0) is None
    with pytest.raises(ValueError, match=r"shift is 14 pixels; images of 28x28 allow less than half their side \(at most 13\)"):
        core.training.random_shift(small_digits.input_shape, 14)


def test_with_a_shift_the_teacher_sees_the_students_shifted_images(trained_seed_cnn, small_digits):
    student = small_student(small_digits)
    distiller = core.Distiller(student, trained_seed_cnn, temperature=3.0, alpha=0.2, shift=2)
    x, y = small_digits.x_train[:32], small_digits.y_train[:32]
    distiller.shifter = lambda images, training: tf.roll(images, 3, axis=2)  # a known shift, to check the wiring
    total = float(distiller.compute_distillation_loss(x, y, training=True)[0])
    rolled = tf.roll(x, 3, axis=2)
    expected = core.distillation_loss(y, student(rolled, training=True), trained_seed_cnn(rolled, training=False),
                                      temperature=3.0, alpha=0.2)[0]
    unshifted_teacher = core.distillation_loss(y, student(rolled, training=True), trained_seed_cnn(x, training=False),
                                               temperature=3.0, alpha=0.2)[0]
    assert total == pytest.approx(float(expected), rel=1e-5)
    assert abs(total - float(unshifted_teacher)) > 1e-3  # the check can fail: the teacher's view matters
    # evaluation is never shifted, and precomputed logits (of unshifted images) are refused in training
    assert float(distiller.compute_distillation_loss(x, y)[0]) != pytest.approx(total, rel=1e-5)
    with pytest.raises(ValueError, match="precomputed teacher logits cannot be used with shift"):
        distiller.compute_distillation_loss((x, trained_seed_cnn(x, training=False)), y, training=True)


def test_distill_with_a_shift_refuses_shared_unshifted_logits(trained_seed_cnn, small_digits):
    shared = cl.models.predict_logits(trained_seed_cnn, small_digits.x_train)
    with pytest.raises(ValueError, match="teacher_train_logits were given with shift=2"):
        core.distill(trained_seed_cnn, small_student(small_digits), small_digits,
                     core.DistillSpec(epochs=1, shift=2), teacher_train_logits=shared)


def test_shifted_scratch_and_shifted_distill_at_alpha_one_train_the_same_model(trained_seed_cnn, small_digits):
    """Same budget, same start, same shifts: alpha = 1 leaves only the labels, as in the scratch baseline."""
    student = small_student(small_digits, seed=3)
    spec = core.DistillSpec(temperature=5, alpha=1.0, epochs=1, batch_size=50, seed=3, shift=2)
    distilled, _ = core.distill(trained_seed_cnn, student, small_digits, spec)
    scratch, history = core.train_from_scratch(student, small_digits, spec, track_test=True)
    for a, b in zip(distilled.get_weights(), scratch.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-4)
    again, _ = core.train_from_scratch(student, small_digits, spec)
    assert same_weights(weights_of(again), weights_of(scratch))  # seeded: the same shifts every run
    unshifted, _ = core.train_from_scratch(student, small_digits, core.DistillSpec(
        temperature=5, alpha=1.0, epochs=1, batch_size=50, seed=3))
    assert not same_weights(weights_of(unshifted), weights_of(scratch))
    assert scratch.compresslab_info["spec"]["shift"] == 2 and len(history.history["val_accuracy"]) == 1


def test_the_pipeline_distill_step_takes_a_shift(trained_seed_cnn, small_digits):
    with pytest.raises(ValueError, match=r"DistillSpec.shift is -1; it must be an integer from 0 to 8"):
        cl.pipeline.validate_recipe([{"step": "distill", "shift": -1}])
    result = cl.run_pipeline(trained_seed_cnn, small_digits, [{"step": "distill", "epochs": 1, "shift": 1}],
                             measure_input=False)
    assert result.model.compresslab_info["spec"]["shift"] == 1
