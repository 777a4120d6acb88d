"""Accepting a model object from either Keras: tf_keras models pass, Keras 3 models are converted once.

compresslab computes in tf_keras (tfmot needs it), but a user's model is often a Keras 3 object
already in memory. :func:`as_tf_keras` is the one gate every entry point calls: a tf_keras model
comes back unchanged; a Keras 3 ``keras.Model`` is saved by Keras 3 to a temporary ``.keras`` file
and read back with :func:`~compresslab.modelio.load_model` (``verify=True``: the converted model must
reproduce Keras 3's outputs), and the result is cached per object so a panel and ``measure`` given
the same object convert it once; anything else raises :class:`ModelTypeError` with one message shape.
Keras 3 is never imported here: an object is a Keras 3 model only if the ``keras`` package is
already loaded and the object is an instance of its ``Model``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import threading
import weakref
from pathlib import Path

import numpy as np

from .._keras import keras

ACCEPTED = "a Keras classifier (a tf_keras or Keras 3 Model)"


class ModelTypeError(TypeError, ValueError):
    """What is not a Keras classifier, where a model was expected.

    A :class:`TypeError`; also a :class:`ValueError`, because the entry points raised that before
    they all shared this check, and code catching it keeps working.
    """


def model_type_error(model, role: str = "model", detail: str | None = None) -> ModelTypeError:
    """The one error for a wrong model argument: ``<role> must be ...; got <type> (<module>)``.

    Args:
        model: what was given.
        role: what the argument is called where it was given ("model", "teacher", ...).
        detail: why a Keras model still does not qualify (several outputs, ...), appended.

    Returns:
        The :class:`ModelTypeError` to raise.
    """
    kind = type(model)
    message = f"{role} must be {ACCEPTED}; got {kind.__name__} ({kind.__module__})"
    if detail is None and isinstance(model, str | os.PathLike):
        detail = "to use a model file, load it with cl.load_model"
    return ModelTypeError(message + (f": {detail}" if detail else ""))


def is_keras3_model(model) -> bool:
    """True when ``model`` is a Keras 3 ``keras.Model`` (checked without importing Keras 3)."""
    keras3 = sys.modules.get("keras")
    if keras3 is None or not type(model).__module__.startswith("keras."):
        return False
    model_class = getattr(keras3, "Model", None)
    return isinstance(model_class, type) and isinstance(model, model_class)


def _structure_problem(model) -> str | None:
    """Why a built Keras model is not a single-input, single-output classifier (None if it is)."""
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):  # a subclassed model never called: later checks name it
        return None
    if not inputs or not outputs:
        return None
    if len(inputs) != 1:
        return (f"it has {len(inputs)} inputs; compresslab works with single-input image classifiers")
    if len(outputs) != 1:
        shapes = [tuple(output.shape) for output in outputs]
        return (f"it has {len(outputs)} outputs {shapes}; compresslab works with single-output image "
                "classifiers (one output of shape (None, classes))")
    return None


_LOCK = threading.Lock()
# id(Keras 3 model) -> (weak reference to it, fingerprint of its weights, converted tf_keras model)
_CONVERTED: dict[int, tuple[weakref.ref, str, object]] = {}


def _fingerprint(model) -> str:
    """SHA-256 of the model's weights: a Keras 3 model trained further must be converted again."""
    digest = hashlib.sha256()
    for variable in model.weights:
        array = np.ascontiguousarray(np.asarray(variable))
        digest.update(f"{variable.path}:{array.dtype}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _forget(key: int) -> None:
    with _LOCK:
        _CONVERTED.pop(key, None)


def _convert_object(model, role: str):
    from .load import load_model

    name = getattr(model, "name", "?")
    with tempfile.TemporaryDirectory(prefix="compresslab-keras3-") as folder:
        path = Path(folder) / "model.keras"
        try:
            model.save(path)
        except Exception as error:  # Keras 3 raises many types; say which model and why
            raise ValueError(f"cannot convert {role} (the Keras 3 model {name!r}) to tf_keras: Keras 3 "
                             f"could not save it ({type(error).__name__}: {error})") from None
        try:
            return load_model(path, verify=True)
        except ValueError as error:
            detail = str(error).replace(f"{str(path)!r}", "it").replace(str(path), "it")
            raise ValueError(f"cannot convert {role} (the Keras 3 model {name!r}) to tf_keras: "
                             f"{detail}") from None


def as_tf_keras(model, *, role: str = "model"):
    """The tf_keras model to compute with: ``model`` itself, or its verified tf_keras conversion.

    A tf_keras model is returned unchanged. A Keras 3 ``keras.Model`` is converted the way
    :func:`~compresslab.modelio.load_model` converts a Keras 3 file (saved by Keras 3 to a
    temporary ``.keras``, rebuilt in tf_keras, its outputs checked against Keras 3's within
    1e-5), once per object: the same object given again returns the same tf_keras model, until
    its weights change. The converted model is uncompiled.

    Args:
        model: the model argument an entry point received.
        role: its name in the error message ("model", "teacher", "student", ...).

    Returns:
        A tf_keras model.

    Raises:
        ModelTypeError: (a TypeError) if ``model`` is not a Keras model, or has several inputs or
            outputs: "<role> must be a Keras classifier (a tf_keras or Keras 3 Model); got <type>
            (<module>)".
        ValueError: if a Keras 3 model cannot be converted (a subclassed model, a custom layer,
            a conversion that does not reproduce its outputs).

    Example:
        >>> import keras                       # Keras 3
        >>> mine = keras.Sequential([...]); mine.fit(...)
        >>> model = as_tf_keras(mine)          # a tf_keras model with the same outputs
        >>> cl.measure(mine, data)             # entry points call as_tf_keras themselves
    """
    if isinstance(model, keras.Model):
        problem = _structure_problem(model)
        if problem:
            raise model_type_error(model, role, problem)
        return model
    if not is_keras3_model(model):
        raise model_type_error(model, role)
    problem = _structure_problem(model)
    if problem:
        raise model_type_error(model, role, problem)
    key, fingerprint = id(model), _fingerprint(model)
    with _LOCK:
        entry = _CONVERTED.get(key)
    if entry is not None and entry[0]() is model and entry[1] == fingerprint:
        return entry[2]
    converted = _convert_object(model, role)
    try:
        reference = weakref.ref(model, lambda _ref, key=key: _forget(key))
    except TypeError:  # not weak-referenceable: convert each time rather than keep it alive
        return converted
    with _LOCK:
        _CONVERTED[key] = (reference, fingerprint, converted)
    return converted


__all__ = ["ACCEPTED", "ModelTypeError", "as_tf_keras", "is_keras3_model", "model_type_error"]
