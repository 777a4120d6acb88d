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

import gzip
import os
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10")

_IDX_FILES = {
    "x_train": ("train-images-idx3-ubyte",),
    "y_train": ("train-labels-idx1-ubyte",),
    "x_test": ("t10k-images-idx3-ubyte",),
    "y_test": ("t10k-labels-idx1-ubyte",),
}

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
    """A classification data set split into train and held-out test arrays.

    Attributes:
        x_train, x_test: ``float32`` images ``(N, H, W, C)`` in ``[0, 1]``.
        y_train, y_test: ``int64`` labels in ``[0, num_classes)``.
        class_names: one name per class.
        name: short identifier recorded with every measurement.
        source: where the arrays came from (for reports).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    name: str = "custom"
    source: str = ""
    _cache: dict = field(default_factory=dict, repr=False)

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
        return (
            f"{self.name}: {len(self.x_train):,} train / {len(self.x_test):,} test images, "
            f"{h}x{w}x{c}, {self.num_classes} classes\n"
            f"  train images per class: min {counts.min()}, max {counts.max()}\n"
            f"  pixel range [{float(self.x_train.min()):.2f}, {float(self.x_train.max()):.2f}]"
            + (f"\n  source: {self.source}" if self.source else "")
        )

    def __repr__(self) -> str:
        return f"Dataset({self.describe().splitlines()[0]})"

    def subset(self, train: int | None = None, test: int | None = None, seed: int = 0) -> Dataset:
        """A smaller, class-balanced-at-random copy (for quick experiments and tests)."""
        rng = np.random.default_rng(seed)

        def pick(x, y, n):
            if n is None or n >= len(x):
                return x, y
            index = np.sort(rng.choice(len(x), size=n, replace=False))
            return x[index], y[index]

        x_train, y_train = pick(self.x_train, self.y_train, train)
        x_test, y_test = pick(self.x_test, self.y_test, test)
        return Dataset(x_train, y_train, x_test, y_test, list(self.class_names),
                       name=self.name, source=self.source + (" (subset)" if self.source else "subset"))

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
    ) -> Dataset:
        """Build a validated :class:`Dataset` from a user's own arrays.

        Images may be ``(N, H, W)`` (one channel is added) or ``(N, H, W, C)``.
        Integer images are scaled from ``[0, 255]`` to ``[0, 1]``; float images are
        kept as they are. Labels must be integers in ``[0, num_classes)``.

        Raises:
            ValueError: naming the array, what was found and what is expected.

        Example:
            >>> data = Dataset.from_arrays(x, y, x_test, y_test, class_names=["cat", "dog"])
        """
        arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
        images = {}
        labels = {}
        for key in ("x_train", "x_test"):
            images[key] = _validate_images(key, arrays[key])
        for key in ("y_train", "y_test"):
            labels[key] = _validate_labels(key, arrays[key])
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
        top = int(max(labels["y_train"].max(), labels["y_test"].max()))
        if class_names is None:
            class_names = [str(i) for i in range(top + 1)]
        class_names = [str(c) for c in class_names]
        if len(class_names) < 2:
            raise ValueError(f"class_names has {len(class_names)} entries; a classifier needs at least 2")
        for key, y in labels.items():
            if y.max() >= len(class_names):
                raise ValueError(
                    f"{key} holds label {int(y.max())}, out of range for {len(class_names)} classes; "
                    f"labels must lie in [0, {len(class_names) - 1}]"
                )
        return cls(images["x_train"], labels["y_train"], images["x_test"], labels["y_test"],
                   class_names, name=name, source=source)


def _validate_images(key: str, x) -> np.ndarray:
    try:
        x = np.asarray(x)
    except Exception as error:  # ragged lists and the like
        raise ValueError(f"{key} could not be read as an array ({error}); expected (N, H, W[, C]) images") from None
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(f"{key} has dtype {x.dtype}; expected numeric images (uint8 or float)")
    if x.ndim == 3:
        x = x[..., np.newaxis]
    if x.ndim != 4:
        raise ValueError(
            f"{key} has shape {x.shape} (rank {x.ndim}); expected images of rank 3 (N, H, W) "
            "or rank 4 (N, H, W, C)"
        )
    if len(x) == 0:
        raise ValueError(f"{key} is empty; every split needs at least one image")
    if x.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"{key} has {x.shape[-1]} channels (shape {x.shape}); expected channels-last images "
            "with 1, 3 or 4 channels"
        )
    if np.issubdtype(x.dtype, np.floating):
        if not np.all(np.isfinite(x)):
            bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
            raise ValueError(f"{key} contains {bad} NaN or inf values; images must be finite")
        return x.astype(np.float32, copy=False)
    if x.dtype == bool:
        return x.astype(np.float32)
    if x.min() < 0 or x.max() > 255:
        raise ValueError(
            f"{key} is an integer array with values in [{x.min()}, {x.max()}]; integer images must lie "
            "in [0, 255] (or pass floats)"
        )
    return (x.astype(np.float32) / 255.0)


def _validate_labels(key: str, y) -> np.ndarray:
    y = np.asarray(y)
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
    elif not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{key} has dtype {y.dtype}; expected integer class labels")
    if y.min() < 0:
        raise ValueError(f"{key} holds label {int(y.min())}; labels must be >= 0")
    return y.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Loaders


def load_dataset(name: str = "digits", *, data_dir: str | os.PathLike | None = None, seed: int = 0,
                 test_fraction: float = 0.25) -> Dataset:
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

    Returns:
        A :class:`Dataset`.

    Raises:
        ValueError: unknown name, or files in ``data_dir`` that are missing or malformed.

    Example:
        >>> mnist = load_dataset("mnist", data_dir="../shared/data/mnist")
        >>> len(mnist.x_test)
        10000
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    if name == "digits":
        if data_dir is not None:
            raise ValueError("the digits data set ships with scikit-learn; data_dir does not apply to it")
        return _load_digits(seed=seed, test_fraction=test_fraction)

    folder = data_dir if data_dir is not None else os.environ.get("COMPRESSLAB_DATA_DIR")
    if folder is not None:
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
    return Dataset.from_arrays(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
                               class_names=_CLASS_NAMES[name], name=name, source=source)


def _load_digits(seed: int, test_fraction: float) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction is {test_fraction}; it must lie strictly between 0 and 1")
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


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem, folder / stem.replace("-idx", ".idx")):
        if candidate.exists():
            return candidate
    return None


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as error:
        raise ValueError(f"{path} could not be read ({error}); expected an IDX file, optionally gzip-compressed") from None
    if len(raw) < 8:
        raise ValueError(f"{path} is {len(raw)} bytes long; too short for an IDX file")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path} does not start with an IDX header for unsigned bytes (magic {raw[:4].hex()})")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape))
    if len(raw) - offset != expected:
        raise ValueError(
            f"{path} declares shape {shape} ({expected} values) but holds {len(raw) - offset}; the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape)


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in _IDX_FILES if k not in npz.files]
            if missing:
                raise ValueError(f"{path} lacks arrays {missing}; a Keras-format .npz holds x_train, y_train, x_test, y_test")
            return {k: npz[k] for k in _IDX_FILES}
    except (OSError, EOFError, ValueError) as error:
        if isinstance(error, ValueError) and "lacks arrays" in str(error):
            raise
        raise ValueError(f"{path} is not a readable .npz file ({error})") from None


def _load_from_folder(name: str, folder: Path) -> dict[str, np.ndarray]:
    if name == "cifar10":
        batches = folder / "cifar-10-batches-py" if (folder / "cifar-10-batches-py").is_dir() else folder
        if (batches / "data_batch_1").exists():
            return _load_cifar_batches(batches)
    npz_candidates = [folder / f"{name}.npz"] + (
        [folder / "mnist.npz"] if name == "mnist" else []
    )
    for candidate in npz_candidates:
        if candidate.exists():
            return _load_npz(candidate)
    if name in ("mnist", "fashion_mnist"):
        paths = {key: _find(folder, stems[0]) for key, stems in _IDX_FILES.items()}
        missing = [_IDX_FILES[k][0] + ".gz" for k, p in paths.items() if p is None]
        if not missing:
            arrays = {key: _read_idx(path) for key, path in paths.items()}
            for split in ("train", "test"):
                if len(arrays[f"x_{split}"]) != len(arrays[f"y_{split}"]):
                    raise ValueError(
                        f"{folder}: {len(arrays[f'x_{split}'])} {split} images but "
                        f"{len(arrays[f'y_{split}'])} labels; the files do not belong together"
                    )
            return arrays
        raise ValueError(
            f"{folder} lacks {', '.join(missing)}; expected the four official IDX files "
            f"(train-images-idx3-ubyte.gz, ...) or {name}.npz"
        )
    raise ValueError(f"{folder} holds neither cifar-10-batches-py nor cifar10.npz")


def _load_cifar_batches(folder: Path) -> dict[str, np.ndarray]:
    def read(path):
        with open(path, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")  # official format; trusted local file
        x = batch[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return x, np.asarray(batch[b"labels"])

    parts = [read(folder / f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = read(folder / "test_batch")
    return {
        "x_train": np.concatenate([p[0] for p in parts]),
        "y_train": np.concatenate([p[1] for p in parts]),
        "x_test": x_test,
        "y_test": y_test,
    }


def _download(name: str, cached: Path) -> dict[str, np.ndarray]:
    from ._keras import keras

    loader = getattr(keras.datasets, name)
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as error:
        raise ValueError(
            f"could not download {name} through keras.datasets ({type(error).__name__}: {error}). "
            f"Offline? Point data_dir (or COMPRESSLAB_DATA_DIR) at a folder holding the official files."
        ) from None
    arrays = {"x_train": x_train, "y_train": y_train.reshape(-1), "x_test": x_test, "y_test": y_test.reshape(-1)}
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, cached)
    return arrays


__all__ = ["Dataset", "load_dataset", "default_data_home", "DATASETS"]
