"""The one module that imports TensorFlow, tf_keras and tensorflow-model-optimization.

tensorflow-model-optimization (tfmot) only works with Keras 2, which ships as the
``tf_keras`` package. TensorFlow >= 2.16 makes ``tf.keras`` point at Keras 3 unless
``TF_USE_LEGACY_KERAS=1`` is set *before* TensorFlow is first imported, so this
module sets it and every other compresslab module imports ``tf`` and ``keras``
from here.

tfmot is imported lazily through :func:`tfmot` because it adds about a second to
start-up and only the techniques that wrap layers (QAT, pruning schedules,
clustering) need it.
"""

from __future__ import annotations

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
# Quiet TensorFlow's C++ start-up banner unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

_TFMOT = None


def tfmot():
    """Return the ``tensorflow_model_optimization`` module, importing it on first use."""
    global _TFMOT
    if _TFMOT is None:
        import tensorflow_model_optimization as module

        _TFMOT = module
    return _TFMOT


def versions() -> dict[str, str]:
    """Versions of the libraries whose behaviour decides every measured figure."""
    import numpy

    from . import __version__

    result = {
        "compresslab": __version__,
        "tensorflow": tf.__version__,
        "tf_keras": keras.__version__,
        "numpy": numpy.__version__,
    }
    try:
        from importlib.metadata import version

        result["tensorflow_model_optimization"] = version("tensorflow-model-optimization")
        result["ai_edge_litert"] = version("ai-edge-litert")
    except Exception:  # pragma: no cover - metadata missing only in broken installs
        pass
    return result


__all__ = ["tf", "keras", "tfmot", "versions"]
