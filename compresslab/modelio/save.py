"""Saving tf_keras models atomically: a crash never leaves a half-written model behind.

Owns :func:`save_model` and the moves that put a finished file or SavedModel folder in place.
"""

from __future__ import annotations

import os
import shutil
import uuid
import warnings
from pathlib import Path

from .._keras import keras
from .checks import _H5_SUFFIXES


def save_model(model, path) -> Path:
    """Save a tf_keras model atomically: a crash never leaves a half-written file.

    The format follows the suffix: ``.keras`` (the native zip, recommended), ``.h5`` or
    ``.hdf5`` (legacy HDF5), anything else a TensorFlow SavedModel folder. The model is first
    written next to the destination under a temporary name, then moved into place with
    :func:`os.replace`, so readers see either the old file or the new one. A SavedModel folder
    cannot be replaced in one step: an existing folder is moved aside, the new one moved in,
    then the old one deleted. Missing parent folders are created.

    Args:
        model: a tf_keras model (``compresslab._keras.keras.Model``).
        path: destination file or folder.

    Returns:
        The destination as a :class:`~pathlib.Path`.

    Raises:
        TypeError: if ``model`` is not a tf_keras model (for example a Keras 3 model).

    Example:
        >>> save_model(model, "cnn.keras")
        PosixPath('cnn.keras')
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"save_model needs a tf_keras model (compresslab's Keras 2); got {type(model).__module__}."
            f"{type(model).__name__}. Build models with `from compresslab._keras import keras`, or "
            "save a Keras 3 model with Keras 3 and load it with compresslab.load_model, which converts it.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    # The temporary name keeps the suffix because tf_keras picks the format from it.
    tmp = path.with_name(f".{path.stem}.tmp-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        if suffix == ".keras":
            model.save(tmp)
        elif suffix in _H5_SUFFIXES:
            with warnings.catch_warnings():  # the caller chose HDF5; tf_keras's "legacy" nag is noise
                warnings.filterwarnings("ignore", message=".*HDF5 file via `model.save", category=UserWarning)
                model.save(tmp, save_format="h5")
        else:
            model.save(tmp, save_format="tf")
        _move_into_place(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    return path


def _move_into_place(tmp: Path, path: Path) -> None:
    if not tmp.is_dir():
        os.replace(tmp, path)
        return
    if path.is_dir():
        old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        if path.exists():
            path.unlink()
        os.replace(tmp, path)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
