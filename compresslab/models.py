"""A small model zoo, reproducible training and cached baselines.

Every zoo model ends in a linear ``Dense`` layer named ``logits``: it outputs
logits, not probabilities, so distillation can soften them with a temperature and
TFLite files stay free of a final softmax. ``argmax`` and accuracy are unchanged.

Example:
    >>> model = seed_cnn()
    >>> history = train(model, load_dataset("digits"), epochs=2, seed=0)
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ._io import atomic_write
from ._keras import keras, tf, versions
from .data import Dataset, default_data_home, load_dataset

ARCHITECTURES = ("seed_cnn", "lenet5", "lenet_300_100", "student_cnn")

# Epochs that reach a useful baseline on each data set in about a minute on a laptop CPU.
DEFAULT_EPOCHS = {"digits": 12, "mnist": 3, "fashion_mnist": 5, "cifar10": 10}


def _input(input_shape):
    return keras.Input(shape=tuple(input_shape), name="image")


def seed_cnn(input_shape=(28, 28, 1), num_classes: int = 10, *, name: str = "seed_cnn") -> keras.Model:
    """The classic Keras MNIST CNN: two 3x3 convolutions with pooling, then a 128-unit dense layer.

    Conv2D 32 3x3 relu, MaxPool 2, Conv2D 64 3x3 relu, MaxPool 2, Flatten, Dense 128 relu,
    Dense ``num_classes`` (logits). About 225,000 parameters on 28x28x1 inputs.
    """
    inputs = _input(input_shape)
    x = keras.layers.Conv2D(32, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(128, activation="relu", name="dense1")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def lenet5(input_shape=(28, 28, 1), num_classes: int = 10, *, variant: str = "classic",
           name: str = "lenet5") -> keras.Model:
    """LeNet-5.

    Args:
        variant: ``"classic"`` is LeCun et al. (1998) with ReLU and max pooling: 6 and 16
            5x5 filters, then 120, 84 and ``num_classes`` units (about 61,700 parameters).
            ``"caffe"`` is the Caffe variant used by Han et al. (2016) for Deep Compression:
            20 and 50 5x5 filters, 500 units (about 431,000 parameters).
    """
    if variant not in ("classic", "caffe"):
        raise ValueError(f"variant is {variant!r}; choose 'classic' or 'caffe'")
    inputs = _input(input_shape)
    if variant == "classic":
        x = keras.layers.Conv2D(6, 5, padding="same", activation="relu", name="conv1")(inputs)
        x = keras.layers.MaxPooling2D(2, name="pool1")(x)
        x = keras.layers.Conv2D(16, 5, activation="relu", name="conv2")(x)
        x = keras.layers.MaxPooling2D(2, name="pool2")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(120, activation="relu", name="dense1")(x)
        x = keras.layers.Dense(84, activation="relu", name="dense2")(x)
    else:
        x = keras.layers.Conv2D(20, 5, name="conv1")(inputs)
        x = keras.layers.MaxPooling2D(2, name="pool1")(x)
        x = keras.layers.Conv2D(50, 5, name="conv2")(x)
        x = keras.layers.MaxPooling2D(2, name="pool2")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(500, activation="relu", name="dense1")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def lenet_300_100(input_shape=(28, 28, 1), num_classes: int = 10, *, name: str = "lenet_300_100") -> keras.Model:
    """The fully connected LeNet-300-100: Flatten, Dense 300 relu, Dense 100 relu, logits (266,610 parameters)."""
    inputs = _input(input_shape)
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = keras.layers.Dense(300, activation="relu", name="dense1")(x)
    x = keras.layers.Dense(100, activation="relu", name="dense2")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def student_cnn(input_shape=(28, 28, 1), num_classes: int = 10, *, width: float = 1.0,
                name: str | None = None) -> keras.Model:
    """A small CNN whose size scales with ``width``, for distillation.

    ``width=1`` gives Conv2D 8, MaxPool, Conv2D 16, MaxPool, Dense 32, logits: about 14,400
    parameters on 28x28x1, under a tenth of :func:`seed_cnn`. ``width=2`` doubles every layer.
    """
    if not width > 0:
        raise ValueError(f"width is {width}; it must be > 0")
    filters1 = max(1, int(round(8 * width)))
    filters2 = max(1, int(round(16 * width)))
    units = max(1, int(round(32 * width)))
    inputs = _input(input_shape)
    x = keras.layers.Conv2D(filters1, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(filters2, 3, activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(units, activation="relu", name="dense1")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=name or f"student_cnn_w{width:g}")


_BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "seed_cnn": seed_cnn,
    "lenet5": lenet5,
    "lenet_300_100": lenet_300_100,
    "student_cnn": student_cnn,
}


def build(arch: str, input_shape=(28, 28, 1), num_classes: int = 10, *, seed: int | None = None,
          **kwargs) -> keras.Model:
    """Build a zoo model by name (one of :data:`ARCHITECTURES`); a ``seed`` fixes its initial weights."""
    if arch not in _BUILDERS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    if seed is not None:
        set_seed(seed)
    return _BUILDERS[arch](input_shape, num_classes, **kwargs)


# ---------------------------------------------------------------------------------------------
# Training


def _unwrapped_activation(activation):
    # tfmot's QuantizeAwareActivation keeps the layer's own activation function in ``.activation``.
    while activation is not None and not hasattr(activation, "__name__") and hasattr(activation, "activation"):
        activation = activation.activation
    return activation


def outputs_logits(model: keras.Model) -> bool:
    """True when the model's last layer does not already apply a softmax.

    Sees through tfmot's wrappers (pruning, clustering, quantization-aware training), which hold
    the real last layer in ``.layer`` and may wrap its activation.
    """
    last = model.layers[-1]
    while isinstance(last, keras.layers.Wrapper):
        last = last.layer
    if isinstance(last, keras.layers.Softmax):
        return False
    activation = _unwrapped_activation(getattr(last, "activation", None))
    return getattr(activation, "__name__", "") != "softmax"


def compile_for_classification(model: keras.Model, learning_rate: float = 1e-3) -> keras.Model:
    """Compile with Adam and sparse cross-entropy, matching the model's output (logits or softmax)."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=outputs_logits(model)),
        metrics=["accuracy"],
    )
    return model


class ProgressCallback(keras.callbacks.Callback):
    """Shows a progress bar (a widget in Jupyter, text elsewhere) and forwards epoch ends.

    Args:
        epochs: total number of epochs (for the bar).
        on_epoch: optional ``callable(epoch, logs)`` called after each epoch, used by the panels.
        show_bar: False to suppress the bar (panels draw their own).
    """

    def __init__(self, epochs: int, on_epoch: Callable | None = None, show_bar: bool = True,
                 description: str = "training"):
        super().__init__()
        self.epochs = epochs
        self.on_epoch = on_epoch
        self.show_bar = show_bar
        self.description = description
        self._bar = None

    def on_train_begin(self, logs=None):
        if self.show_bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.epochs, desc=self.description, unit="epoch", leave=True)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if self._bar is not None:
            self._bar.update(1)
            shown = {k: f"{v:.4f}" for k, v in logs.items() if isinstance(v, (int, float))}
            self._bar.set_postfix(shown)
        if self.on_epoch is not None:
            self.on_epoch(epoch, logs)

    def on_train_end(self, logs=None):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow so that a run can be repeated."""
    keras.utils.set_random_seed(int(seed))


def train(model: keras.Model, data: Dataset, *, epochs: int, batch_size: int = 64, seed: int = 0,
          learning_rate: float = 1e-3, progress: bool | Callable = True, validation: bool = False,
          callbacks: list | None = None, compile: bool = True) -> keras.callbacks.History:
    """Train a classifier on ``data.x_train``, reproducibly.

    Args:
        model: a tf_keras model whose input fits ``data``'s images.
        data: the :class:`Dataset`; only its training split is used (the test split stays held out).
        epochs: passes over the training split (>= 1).
        batch_size: images per step.
        seed: seeds shuffling and any dropout: the same starting model and seed give the same
            trained model (build the model with :func:`build`'s ``seed`` to fix its initial weights).
        learning_rate: Adam's learning rate (used when ``compile`` is True).
        progress: True for a progress bar, False for silence, or ``callable(epoch, logs)``.
        validation: hold out 10% of the training split to report ``val_accuracy``.
        callbacks: extra Keras callbacks.
        compile: compile the model afresh (Adam + sparse cross-entropy); False keeps the user's.

    Returns:
        The Keras ``History``.

    Example:
        >>> history = train(seed_cnn(), load_dataset(), epochs=3, seed=1)
    """
    check_model_fits(model, data)
    if int(epochs) < 1:
        raise ValueError(f"epochs is {epochs}; it must be at least 1")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size is {batch_size}; it must be at least 1")
    set_seed(seed)
    if compile or model.optimizer is None:
        compile_for_classification(model, learning_rate)
    on_epoch = progress if callable(progress) else None
    all_callbacks = [ProgressCallback(int(epochs), on_epoch=on_epoch, show_bar=progress is True)]
    all_callbacks += list(callbacks or [])
    x, y, validation_data = data.x_train, data.y_train, None
    if validation:  # the last 10%, unshuffled, as Keras's own validation_split takes them
        cut = int(len(x) * 0.9)
        x, y, validation_data = x[:cut], y[:cut], (x[cut:], y[cut:])
    return fit_arrays(model, x, y, epochs=int(epochs), batch_size=int(batch_size), callbacks=all_callbacks,
                      validation_data=validation_data)


def fit_arrays(model: keras.Model, x, y, *, epochs: int, batch_size: int, callbacks=None, validation_data=None):
    """``model.fit`` on in-memory arrays, with the same shuffled batches as Keras makes, without tf.data autotuning.

    Keras turns arrays into a tf.data pipeline that tf.data autotunes; deleting that pipeline's
    iterator at the end of ``fit`` sometimes waited about 4 s for the autotuning thread (measured:
    a 9 s sparse VD run took 13-14 s in half the runs). The batches here come from Keras's own
    array adapter (same seeded shuffle, so the trained weights are identical to
    ``model.fit(x, y, shuffle=True)``; a test checks it) with autotuning turned off.

    Args:
        model: a compiled tf_keras model.
        x: the inputs (an array, or a tuple of arrays for a model with several inputs).
        y: the targets.
        epochs: passes over the data.
        batch_size: examples per step.
        callbacks: Keras callbacks.
        validation_data: ``(x, y)`` evaluated after every epoch, or None.

    Returns:
        The Keras ``History``.
    """
    from tf_keras.src.engine import data_adapter  # pinned tf-keras 2.21: the adapter model.fit itself uses

    adapter = data_adapter.TensorLikeDataAdapter(x, y, batch_size=batch_size, epochs=epochs, shuffle=True)
    options = tf.data.Options()
    options.autotune.enabled = False
    return model.fit(adapter.get_dataset().with_options(options), epochs=epochs, steps_per_epoch=adapter.get_size(),
                     validation_data=validation_data, callbacks=callbacks, verbose=0)


def check_model_fits(model, data: Dataset):
    """Raise a clear ``ValueError`` when a model's input or output does not fit a data set.

    Args:
        model: a tf_keras or Keras 3 classifier (a Keras 3 model is converted, see
            :func:`compresslab.modelio.as_tf_keras`).
        data: the data set it will run on.

    Returns:
        The tf_keras model to compute with (``model`` itself when it is one).

    Raises:
        ModelTypeError: (a TypeError and a ValueError) if ``model`` is not a single-output Keras classifier.
        ValueError: if its input shape or number of classes does not fit ``data``.
    """
    from .modelio.convert import as_tf_keras

    model = as_tf_keras(model)
    model_shape = tuple(model.input_shape[1:]) if not isinstance(model.input_shape, list) else None
    if model_shape is None:
        raise ValueError("the model has several inputs; compresslab works with single-input image classifiers")
    if any(d is not None and d != e for d, e in zip(model_shape, data.input_shape)) or len(model_shape) != len(data.input_shape):
        raise ValueError(
            f"the model expects inputs of shape {model_shape} but {data.name} images have shape "
            f"{data.input_shape}"
        )
    if isinstance(model.output_shape, list):
        raise ValueError(
            f"the model has {len(model.output_shape)} outputs {[tuple(s) for s in model.output_shape]}; "
            "compresslab works with single-output image classifiers (one output of shape (None, classes))"
        )
    if len(model.output_shape) != 2:
        raise ValueError(
            f"the model's output has shape {tuple(model.output_shape)}; compresslab works with image classifiers "
            "whose output is (None, classes)"
        )
    outputs = model.output_shape[-1]
    if outputs != data.num_classes:
        raise ValueError(
            f"the model has {outputs} outputs but {data.name} has {data.num_classes} classes"
        )
    return model


def predict_logits(model: keras.Model, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """The model's outputs on ``x`` in batches, without Keras' per-call overhead of ``predict``."""
    outputs = []
    for start in range(0, len(x), batch_size):
        outputs.append(model(x[start : start + batch_size], training=False).numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0, model.output_shape[-1]), np.float32)


def accuracy(model: keras.Model, data: Dataset, batch_size: int = 512, *, split: str = "test") -> float:
    """Top-1 accuracy on one split (default the held-out test split), as a fraction in [0, 1].

    ``split="validation"`` measures on the validation split, where settings are chosen.
    """
    x, y = data.arrays(split)
    predictions = predict_logits(model, x, batch_size).argmax(axis=1)
    return float(np.mean(predictions == y))


def clone(model: keras.Model) -> keras.Model:
    """A new model with the same architecture and a copy of the weights (never shares variables)."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


# ---------------------------------------------------------------------------------------------
# Cached baselines


SHARED_CACHE_VARIABLE = "COMPRESSLAB_SHARED_CACHE"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cached(folder: Path, name: str, key: str):
    """The verified cached model ``name`` in ``folder``, or None (with a warning when an entry is refused).

    An entry is used only when its metadata records the SHA-256 of its model file and the file still
    has it: a damaged, truncated or replaced file is never loaded.
    """
    from .modelio import load_model

    path = folder / name
    meta_path = path.with_suffix(".json")
    if not path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        recorded = meta["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        warnings.warn(f"cached baseline {path} has no readable metadata with its SHA-256 ({meta_path.name}); "
                      "it is not used and the model is trained again", UserWarning, stacklevel=3)
        return None
    if _sha256(path) != recorded:
        warnings.warn(f"cached baseline {path} does not match the SHA-256 recorded in {meta_path.name} (damaged or "
                      "replaced); it is not used and the model is trained again", UserWarning, stacklevel=3)
        return None
    try:
        model = load_model(path)
    except ValueError as error:
        warnings.warn(f"cached baseline {path} cannot be loaded ({error}); the model is trained again",
                      UserWarning, stacklevel=3)
        return None
    compile_for_classification(model)
    model.compresslab_info = {**meta, "key": key, "cached": True, "path": str(path)}
    return model


def _writable(folder: Path) -> bool:
    """Whether ``folder`` can be written, or created (its nearest existing parent can be written)."""
    probe = folder.expanduser().absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK)


def baseline(arch: str = "seed_cnn", dataset: str | Dataset = "digits", *, epochs: int | None = None,
             seed: int = 0, batch_size: int = 64, data_dir=None, cache_dir=None, shared_cache=None,
             read_only: bool | None = None, train_if_missing: bool = True,
             progress: bool = True, refresh: bool = False) -> keras.Model:
    """A trained zoo model, cached on disk so a notebook's second run starts in seconds.

    The cache key holds the architecture, the data set, the seed, the epochs, the batch size
    and the library versions, so a change to any of them trains afresh.

    Args:
        arch: a zoo architecture (see :data:`ARCHITECTURES`).
        dataset: a data-set name for :func:`load_dataset`, or a loaded :class:`Dataset`.
        epochs: training epochs; defaults to :data:`DEFAULT_EPOCHS` for the data set.
        seed: training seed.
        data_dir: forwarded to :func:`load_dataset`.
        cache_dir: where cached models are read and written (default ``<data home>/baselines``).
        shared_cache: a folder of baselines prepared once for a class (default: the
            ``COMPRESSLAB_SHARED_CACHE`` variable), searched first and NEVER written: a miss trains
            into ``cache_dir``. Make it read-only for the students.
        read_only: never write ``cache_dir`` (default: when it cannot be written); a miss is
            trained into the user's own cache, ``<data home>/baselines``, which is searched too.
        train_if_missing: False raises a ValueError instead of training when no verified cached
            entry exists (a class that must use the baselines prepared for it).
        refresh: retrain even when a cached model exists.

    Every cache entry records the SHA-256 of its model file; an entry whose file does not match
    (damaged, truncated or replaced) is not loaded: a warning says so and the model is trained
    again. Cached files are loaded with ``trust=False``, so no code stored in them runs.

    Returns:
        A compiled tf_keras model. ``model.compresslab_info`` holds the cache key, the training
        seconds and whether it came from the cache.

    Example:
        >>> model = baseline("seed_cnn", "digits")
    """
    from .modelio import save_model

    if arch not in _BUILDERS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    data = dataset if isinstance(dataset, Dataset) else load_dataset(dataset, data_dir=data_dir)
    epochs = int(epochs if epochs is not None else DEFAULT_EPOCHS.get(data.name, 5))
    key_fields = {
        "arch": arch,
        "dataset": data.name,
        "train_size": len(data.x_train),
        # which images, not only how many: two subsets (or validation carve-outs) of one size differ
        "train_labels": hashlib.sha256(np.ascontiguousarray(data.y_train).tobytes()).hexdigest()[:16],
        "input_shape": list(data.input_shape),
        "seed": int(seed),
        "epochs": epochs,
        "batch_size": int(batch_size),
        "versions": {k: v for k, v in versions().items() if k in ("tensorflow", "tf_keras", "compresslab")},
    }
    key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()[:16]
    own = default_data_home() / "baselines"
    folder = Path(cache_dir) if cache_dir is not None else own
    name = f"{arch}-{data.name}-s{seed}-e{epochs}-{key}.keras"
    shared = shared_cache if shared_cache is not None else os.environ.get(SHARED_CACHE_VARIABLE) or None
    places = ([Path(shared)] if shared else []) + [folder]
    if read_only or (read_only is None and not _writable(folder)):
        if folder.absolute() == own.absolute() or not _writable(own):
            raise ValueError(f"the baseline cache {folder} is read-only and {own} cannot be written either; give "
                             "cache_dir a folder you can write (or set COMPRESSLAB_HOME)")
        places.append(own)
        folder = own  # a miss is trained into the user's own cache, never into the read-only one
    if not refresh:
        for place in places:
            model = _cached(place, name, key)
            if model is not None:
                return model
    if not train_if_missing:
        raise ValueError(f"no verified cached baseline {name} in {', '.join(map(str, places))}, and training is "
                         "disallowed (train_if_missing=False): ask for the prepared baselines or allow training")
    path = folder / name
    meta_path = path.with_suffix(".json")
    model = build(arch, data.input_shape, data.num_classes, seed=seed)
    start = time.perf_counter()
    history = train(model, data, epochs=epochs, batch_size=batch_size, seed=seed, progress=progress)
    seconds = time.perf_counter() - start
    folder.mkdir(parents=True, exist_ok=True)
    save_model(model, path)
    meta = {**key_fields, "train_seconds": round(seconds, 2),
            "final_train_accuracy": float(history.history["accuracy"][-1]), "sha256": _sha256(path)}
    atomic_write(meta_path, json.dumps(meta, indent=2))
    model.compresslab_info = {**meta, "key": key, "cached": False, "path": str(path)}
    return model


__all__ = [
    "ARCHITECTURES",
    "fit_arrays",
    "seed_cnn",
    "lenet5",
    "lenet_300_100",
    "student_cnn",
    "build",
    "train",
    "baseline",
    "accuracy",
    "predict_logits",
    "clone",
    "compile_for_classification",
    "outputs_logits",
    "check_model_fits",
    "set_seed",
    "ProgressCallback",
]
