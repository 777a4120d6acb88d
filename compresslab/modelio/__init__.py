"""Saving and loading Keras models, including models saved by Keras 3.

compresslab works in tf_keras (Keras 2) because tensorflow-model-optimization needs it, but
since TensorFlow 2.16 the default ``tf.keras`` is Keras 3, and tf_keras refuses the files
Keras 3 writes (``Unrecognized keyword arguments: ['batch_shape']`` and friends). So
:func:`load_model` reads a file's configuration itself (the ``.keras`` zip and the HDF5 file
are parsed with :mod:`zipfile`, :mod:`json` and :mod:`h5py`, never with Keras 3), and:

* a tf_keras file is handed to tf_keras after a safety check of its layers;
* a Keras 3 file has its configuration translated to tf_keras, the model is rebuilt in
  tf_keras, the weights are copied variable by variable, and (by default) the outputs are
  checked against Keras 3 itself, run in a separate Python process so the two Kerases never
  share one interpreter.

Lambda layers and custom layers run code stored in (or referenced by) the file, so they are
refused unless the caller passes ``trust=True``.

Model objects get the same treatment: :func:`as_tf_keras` (in :mod:`.convert`) returns a tf_keras
model unchanged and converts a Keras 3 model object once, through the same verified path; every
entry point that takes a model calls it, and anything that is not a Keras classifier raises
:class:`ModelTypeError`.

The package is split along those steps: :mod:`.save` (atomic saving), :mod:`.load` (format
detection and loading), :mod:`.checks` (safety checks and error wording), :mod:`.savedmodel`
(SavedModel folders), :mod:`.keras3` (configuration translation), :mod:`.weights` (copying a
Keras 3 file's weights) and :mod:`.verify` (the comparison with Keras 3 in a subprocess).

Example:
    >>> save_model(model, "cnn.keras")
    >>> model = load_model("cnn.keras")
"""

from __future__ import annotations

# Every name below was importable from the single-module compresslab.modelio; the private
# ones stay importable for code (and tests) written against it.
from .checks import _GRAPH_MODELS, _H5_SUFFIXES, EXPECTED, _check_model_config, _unreadable  # noqa: F401
from .convert import ModelTypeError, as_tf_keras, is_keras3_model, model_type_error
from .keras3 import _ConversionError, _convert_model_config  # noqa: F401
from .load import _convert_keras3, load_model  # noqa: F401
from .save import save_model
from .savedmodel import read_saved_model_metadata  # noqa: F401
from .verify import (  # noqa: F401
    _VERIFY_TIMEOUT_SECONDS,
    VERIFY_TOLERANCE,
    _verify_against_keras3,
    keras3_reference_outputs,
)

__all__ = ["ModelTypeError", "as_tf_keras", "is_keras3_model", "load_model", "model_type_error",
           "save_model"]
