"""Data sets: the offline default (scikit-learn's digits), MNIST-style sets and a user's own arrays.

Every data set is held as a :class:`Dataset`: ``float32`` images of shape
``(N, height, width, channels)`` scaled to ``[0, 1]``, integer labels, and a
held-out test split that every accuracy in compresslab is measured on.

Example:
    >>> data = load_dataset("digits")
    >>> data.x_train.shape[1:]
    (28, 28, 1)
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10")

# Most classes a Dataset may have: one stray label of 20,000,000 must not make a 20-million-way
# classifier (1.5 GB of logits weights); ImageNet-1k is the largest set a CNN course uses.
MAX_CLASSES = 1000

_CLASS_NAMES = {
    "digits": [str(i) for i in range(10)],
    "mnist": [str(i) for i in range(10)],
    "fashion_mnist": [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ],
    "cifar10": [
        "airplane", "automobile", "bird", "cat", "deer",
        "dog", "frog", "horse", "ship", "truck",
    ],
}


def default_data_home() -> Path:
    """Folder where downloaded data sets and cached baselines land.

    ``COMPRESSLAB_HOME`` wins; otherwise the ``data/`` folder of a source checkout
    (the one ``make lab`` uses); otherwise ``~/.cache/compresslab``.
    """
    env = os.environ.get("COMPRESSLAB_HOME")
    if env:
        return Path(env).expanduser()
    checkout_data = Path(__file__).resolve().parent.parent / "data"
    if checkout_data.is_dir() and os.access(checkout_data, os.W_OK):
        return checkout_data
    return Path.home() / ".cache" / "compresslab"


@dataclass(eq=False)
class Dataset:
    """A classification data set split into train, optional validation, and held-out test arrays.

    Attributes:
        x_train, x_test: ``float32`` images ``(N, H, W, C)`` in ``[0, 1]``.
        y_train, y_test: ``int64`` labels in ``[0, num_classes)``.
        class_names: one name per class.
        name: short identifier recorded with every measurement.
        source: where the arrays came from (for reports).
        x_val, y_val: a validation split carved from the training data (see
            :meth:`with_validation`) to choose settings on; empty arrays when there is none.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    name: str = "custom"
    source: str = ""
    _cache: dict = field(default_factory=dict, repr=False)
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    def __post_init__(self):
        if self.x_val is None:
            self.x_val = np.zeros((0, *self.x_train.shape[1:]), dtype=self.x_train.dtype)
        if self.y_val is None:
            self.y_val = np.zeros((0,), dtype=self.y_train.dtype)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def describe(self) -> str:
        """A few lines saying what the data set holds."""
        counts = np.bincount(self.y_train, minlength=self.num_classes)
        h, w, c = self.input_shape
        validation = f" / {len(self.x_val):,} validation" if len(self.x_val) else ""
        return (
            f"{self.name}: {len(self.x_train):,} train{validation} / {len(self.x_test):,} test images, "
            f"{h}x{w}x{c}, {self.num_classes} classes\n"
            f"  train images per class: min {counts.min()}, max {counts.max()}\n"
            f"  pixel range [{float(self.x_train.min()):.2f}, {float(self.x_train.max()):.2f}]"
            + (f"\n  source: {self.source}" if self.source else "")
        )

    def __repr__(self) -> str:
        return f"Dataset({self.describe().splitlines()[0]})"

    def _copy(self, **arrays) -> Dataset:
        """A new Dataset with some arrays replaced (and a fresh cache)."""
        current = {key: getattr(self, key) for key in ("x_train", "y_train", "x_test", "y_test", "x_val", "y_val")}
        source = arrays.pop("source", self.source)
        return Dataset(**{**current, **arrays}, class_names=list(self.class_names), name=self.name, source=source)

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """The images and labels of one split: ``"train"``, ``"validation"`` (to choose) or ``"test"`` (to report).

        Raises:
            ValueError: an unknown split name, or ``"validation"`` when the data set has none (make one
                with :meth:`with_validation`).
        """
        if split == "validation" and not len(self.x_val):
            raise ValueError(f"{self.name} has no validation split to choose on; make one with "
                             "data.with_validation(0.1) (or cl.load_dataset(..., validation=0.1))")
        splits = {"train": (self.x_train, self.y_train), "validation": (self.x_val, self.y_val),
                  "test": (self.x_test, self.y_test)}
        if split not in splits:
            raise ValueError(f"split is {split!r}; allowed: 'train', 'validation' (to choose settings), "
                             "'test' (to report)")
        return splits[split]

    def subset(self, train: int | None = None, test: int | None = None, seed: int = 0, *,
               validation: int | None = None) -> Dataset:
        """A smaller, class-balanced-at-random copy (for quick experiments and tests).

        Args:
            train, test, validation: how many images to keep of each split (None: all of it).
            seed: seeds the random choice.

        Example:
            >>> small = data.subset(train=600, test=200)
        """
        train, test, validation = (None if n is None else _count(key, n, 1) for key, n in
                                   (("train", train), ("test", test), ("validation", validation)))
        rng = np.random.default_rng(_count("seed", seed, 0))

        def pick(x, y, n):
            if n is None or n >= len(x):
                return x, y
            index = np.sort(rng.choice(len(x), size=n, replace=False))
            return x[index], y[index]

        x_train, y_train = pick(self.x_train, self.y_train, train)
        x_test, y_test = pick(self.x_test, self.y_test, test)
        x_val, y_val = pick(self.x_val, self.y_val, validation)
        return self._copy(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, x_val=x_val,
                          y_val=y_val, source=self.source + (" (subset)" if self.source else "subset"))

    def with_validation(self, fraction: float = 0.1, seed: int = 0) -> Dataset:
        """A NEW Dataset whose training split gave ``fraction`` of its images to a validation split.

        The split is stratified (each class gives the same share) and seeded; the test split is
        untouched. Choose settings on ``x_val``/``y_val``, report once on the test split.

        Args:
            fraction: share of the training images moved to validation, strictly between 0 and 1.
            seed: seeds the random split (same seed, same split).

        Returns:
            A new :class:`Dataset`; this one is not changed.

        Raises:
            ValueError: a bad fraction, a data set that already has a validation split, or a
                class too small to give at least one image to each side.

        Example:
            >>> data = load_dataset("digits").with_validation(0.1, seed=0)
            >>> len(data.x_val)
            135
        """
        if len(self.x_val):
            raise ValueError(f"{self.name} already holds a validation split of {len(self.x_val)} images; "
                             "carve it once, from a data set without one")
        fraction = _fraction("fraction", fraction)
        seed = _count("seed", seed, 0)
        from sklearn.model_selection import train_test_split

        try:
            kept, held = train_test_split(np.arange(len(self.y_train)), test_size=fraction,
                                          stratify=self.y_train, random_state=int(seed))
        except ValueError as error:  # a class with one image, or fewer held images than classes
            raise ValueError(
                f"cannot carve a stratified {fraction:g} validation split from {len(self.y_train)} training "
                f"images in {self.num_classes} classes ({error})"
            ) from None
        kept, held = np.sort(kept), np.sort(held)
        return self._copy(x_train=self.x_train[kept], y_train=self.y_train[kept],
                          x_val=self.x_train[held], y_val=self.y_train[held])

    @classmethod
    def from_arrays(
        cls,
        x_train,
        y_train,
        x_test,
        y_test,
        *,
        class_names: list[str] | None = None,
        name: str = "custom",
        source: str = "arrays",
        scale: bool = False,
        require_all_classes: bool = False,
    ) -> Dataset:
        """Build a validated :class:`Dataset` from a user's own arrays.

        Images may be ``(N, H, W)`` (one channel is added) or ``(N, H, W, C)``. Integer images
        are scaled from ``[0, 255]`` to ``[0, 1]``. Float images must already lie in ``[0, 1]``;
        pass ``scale=True`` for float images in ``[0, 255]``. Labels must be integers in
        ``[0, K)`` with at most :data:`MAX_CLASSES` classes.

        Args:
            x_train, y_train, x_test, y_test: the images and integer labels of each split.
            class_names: one name per class (default: ``"0"``, ``"1"``, ... up to the largest label).
            name, source: recorded with every measurement and in reports.
            scale: float images are in ``[0, 255]``: divide them by 255.
            require_all_classes: a class with no training image is an error (otherwise a warning).

        Raises:
            ValueError: naming the array, what was found and what is expected.

        Example:
            >>> data = Dataset.from_arrays(x, y, x_test, y_test, class_names=["cat", "dog"])
        """
        images = {key: _validate_images(key, value, scale) for key, value in (("x_train", x_train), ("x_test", x_test))}
        labels = {key: _validate_labels(key, value) for key, value in (("y_train", y_train), ("y_test", y_test))}
        if images["x_train"].shape[1:] != images["x_test"].shape[1:]:
            raise ValueError(
                f"x_train images have shape {images['x_train'].shape[1:]} but x_test images have "
                f"{images['x_test'].shape[1:]}; both splits must hold images of the same shape"
            )
        for split in ("train", "test"):
            n_images, n_labels = len(images[f"x_{split}"]), len(labels[f"y_{split}"])
            if n_images != n_labels:
                raise ValueError(
                    f"x_{split} has {n_images} images but y_{split} has {n_labels} labels; "
                    "each image needs exactly one label"
                )
        if class_names is None:
            top = int(max(labels["y_train"].max(), labels["y_test"].max()))
            if top >= MAX_CLASSES:
                key = "y_train" if labels["y_train"].max() == top else "y_test"
                raise ValueError(f"{key} holds label {top}; compresslab handles at most {MAX_CLASSES} classes "
                                 f"(labels 0 to {MAX_CLASSES - 1})")
            class_names = [str(i) for i in range(top + 1)]
        if isinstance(class_names, str) or not isinstance(class_names, (list, tuple, np.ndarray)):
            raise ValueError(f"class_names is {class_names!r}; it must be a list of class names")
        class_names = [str(c) for c in class_names]
        if not 2 <= len(class_names) <= MAX_CLASSES:
            raise ValueError(f"class_names has {len(class_names)} entries; a classifier needs from 2 to "
                             f"{MAX_CLASSES} classes")
        for key, y in labels.items():
            if y.max() >= len(class_names):
                raise ValueError(
                    f"{key} holds label {int(y.max())}, out of range for {len(class_names)} classes; "
                    f"labels must lie in [0, {len(class_names) - 1}]"
                )
        absent = np.flatnonzero(np.bincount(labels["y_train"], minlength=len(class_names)) == 0)
        if len(absent):
            message = (f"y_train has no image of class(es) {absent[:10].tolist()}"
                       f"{' ...' if len(absent) > 10 else ''} ({len(absent)} of {len(class_names)}); "
                       "a model cannot learn a class it never sees")
            if require_all_classes:
                raise ValueError(message)
            warnings.warn(message, stacklevel=2)
        return cls(images["x_train"], labels["y_train"], images["x_test"], labels["y_test"],
                   class_names, name=name, source=source)


def _count(name: str, value, low: int) -> int:
    """``value`` as an int >= ``low`` (numpy integers accepted), or a ValueError naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} is {value!r}; it must be an integer >= {low}")
    return int(value)


def _fraction(name: str, value) -> float:
    """``value`` as a float strictly between 0 and 1, or a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0 < float(value) < 1:
        raise ValueError(f"{name} is {value!r}; it must be a number strictly between 0 and 1")
    return float(value)


def _validate_images(key: str, x, scale: bool = False) -> np.ndarray:
    try:
        x = np.asarray(x)
    except Exception as error:  # ragged lists and the like
        raise ValueError(f"{key} could not be read as an array ({error}); expected (N, H, W[, C]) images") from None
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(f"{key} has dtype {x.dtype}; expected numeric images (uint8 or float)")
    if np.issubdtype(x.dtype, np.complexfloating):
        raise ValueError(f"{key} has dtype {x.dtype}; expected real-valued images (uint8 or float)")
    if x.ndim == 3:
        x = x[..., np.newaxis]
    if x.ndim != 4:
        raise ValueError(
            f"{key} has shape {x.shape} (rank {x.ndim}); expected images of rank 3 (N, H, W) "
            "or rank 4 (N, H, W, C)"
        )
    if len(x) == 0 or 0 in x.shape[1:]:
        raise ValueError(f"{key} is empty (shape {x.shape}); every split needs at least one image of at least 1x1")
    if x.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"{key} has {x.shape[-1]} channels (shape {x.shape}); expected channels-last images "
            "with 1, 3 or 4 channels"
        )
    if x.dtype == bool:
        return x.astype(np.float32)
    if np.issubdtype(x.dtype, np.floating):
        if not np.all(np.isfinite(x)):
            bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
            raise ValueError(f"{key} contains {bad} NaN or inf values; images must be finite")
        high = 255.0 if scale else 1.0
        low_value, high_value = float(x.min()), float(x.max())
        if low_value < 0 or high_value > high:
            hint = ("pass integer images or rescale them" if scale
                    else "pass scale=True for float images in [0, 255]")
            raise ValueError(f"{key} holds float values in [{low_value:g}, {high_value:g}]; float images "
                             f"must lie in [0, {high:g}] ({hint})")
        return (x / 255.0).astype(np.float32) if scale else x.astype(np.float32, copy=False)
    if x.min() < 0 or x.max() > 255:
        raise ValueError(
            f"{key} is an integer array with values in [{x.min()}, {x.max()}]; integer images must lie "
            "in [0, 255] (or pass floats)"
        )
    return (x.astype(np.float32) / 255.0)


def _validate_labels(key: str, y) -> np.ndarray:
    try:
        y = np.asarray(y)
    except Exception as error:  # ragged lists and the like
        raise ValueError(f"{key} could not be read as an array ({error}); expected 1-D integer labels") from None
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(
            f"{key} has shape {y.shape}; expected a 1-D array of integer class labels (not one-hot)"
        )
    if len(y) == 0:
        raise ValueError(f"{key} is empty; every split needs at least one label")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{key} contains NaN or inf; labels must be integers")
        if not np.all(y == np.round(y)):
            raise ValueError(f"{key} holds non-integer values such as {y[y != np.round(y)][0]}; labels must be integers")
    elif not np.issubdtype(y.dtype, np.integer) or y.dtype == bool:
        raise ValueError(f"{key} has dtype {y.dtype}; expected integer class labels")
    if y.min() < 0:
        raise ValueError(f"{key} holds label {int(y.min())}; labels must be >= 0")
    if y.max() >= MAX_CLASSES:
        raise ValueError(f"{key} holds label {int(y.max())}; compresslab handles at most {MAX_CLASSES} classes "
                         f"(labels 0 to {MAX_CLASSES - 1})")
    return y.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Loaders


def load_dataset(name: str = "digits", *, data_dir: str | os.PathLike | None = None, seed: int = 0,
                 test_fraction: float = 0.25, validation: float = 0.0) -> Dataset:
    """Load a data set by name.

    Args:
        name: ``"digits"`` (offline default: scikit-learn's bundled 8x8 digits, resized to
            28x28x1 with MNIST's 4-pixel border), ``"mnist"``, ``"fashion_mnist"`` or ``"cifar10"``.
        data_dir: folder holding the official files (IDX ``.gz`` files for MNIST-style sets,
            a Keras-format ``.npz``, or ``cifar-10-batches-py``). Defaults to the
            ``COMPRESSLAB_DATA_DIR`` variable, then a copy cached by an earlier download,
            then a download through ``keras.datasets``.
        seed: seed of the stratified train/test split (digits only; the others have an
            official split).
        test_fraction: share of digits images held out for testing.
        validation: share of the training images moved to a stratified validation split
            (seeded by ``seed``; see :meth:`Dataset.with_validation`); 0 for none.

    Returns:
        A :class:`Dataset`.

    Raises:
        ValueError: unknown name, or files in ``data_dir`` that are missing or malformed.

    Example:
        >>> mnist = load_dataset("mnist", data_dir="../shared/data/mnist")
        >>> len(mnist.x_test)
        10000
    """
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    if validation != 0:
        validation = _fraction("validation", validation)
    if name == "digits":
        if data_dir is not None:
            raise ValueError("the digits data set ships with scikit-learn; data_dir does not apply to it")
        data = _load_digits(seed=seed, test_fraction=test_fraction)
        return data.with_validation(validation, seed=seed) if validation else data

    folder = data_dir if data_dir is not None else os.environ.get("COMPRESSLAB_DATA_DIR")
    if folder is not None:
        if not isinstance(folder, (str, os.PathLike)):
            raise ValueError(f"data_dir is {folder!r}; it must be a folder path (str or Path)")
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise ValueError(f"data_dir {str(folder)!r} is not a folder; point it at the folder holding the {name} files")
        arrays = _load_from_folder(name, folder)
        source = str(folder)
    else:
        cached = default_data_home() / f"{name}.npz"
        if cached.exists():
            arrays = _load_npz(cached)
            source = str(cached)
        else:
            arrays = _download(name, cached)
            source = f"keras.datasets.{name} (cached at {cached})"
    data = Dataset.from_arrays(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
                               class_names=_CLASS_NAMES[name], name=name, source=source)
    return data.with_validation(validation, seed=seed) if validation else data


def _load_digits(seed: int, test_fraction: float) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    test_fraction, seed = _fraction("test_fraction", test_fraction), _count("seed", seed, 0)
    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)  # 8x8, values 0..16
    images = _digits_to_mnist_layout(images)
    x_train, x_test, y_train, y_test = train_test_split(
        images, bunch.target, test_size=test_fraction, stratify=bunch.target, random_state=seed
    )
    return Dataset.from_arrays(x_train, y_train, x_test, y_test, class_names=_CLASS_NAMES["digits"],
                               name="digits", source="scikit-learn load_digits (8x8 -> 28x28)")


def _digits_to_mnist_layout(images: np.ndarray) -> np.ndarray:
    """Resize 8x8 digits to 20x20 (bilinear) and pad to 28x28, the way MNIST centres its digits."""
    from scipy.ndimage import zoom

    resized = zoom(images, (1, 20 / 8, 20 / 8), order=1)
    resized = np.clip(resized, 0.0, 1.0)
    padded = np.zeros((len(images), 28, 28), dtype=np.float32)
    padded[:, 4:24, 4:24] = resized
    return padded[..., np.newaxis]


from .datafiles import (  # noqa: E402,F401  (the readers live there; names kept for old imports)
    MAX_COMPRESSION_RATIO,
    MAX_DATA_BYTES,
    _download,
    _load_from_folder,
    _load_npz,
    _read_idx,
)

__all__ = ["Dataset", "load_dataset", "default_data_home", "DATASETS", "MAX_CLASSES"]
