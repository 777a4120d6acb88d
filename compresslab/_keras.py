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

import contextlib
import os
import sys
import tempfile
import types

os.environ["TF_USE_LEGACY_KERAS"] = "1"
# TensorFlow's C++ logging fills a student's notebook with CUDA-not-found lines on every CPU laptop.
# Level 3 keeps only fatal messages; set TF_CPP_MIN_LOG_LEVEL yourself to see more.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def captured_native_stderr():
    """Catch what C++ code writes straight to file descriptor 2 during the block, instead of showing it.

    Yields an object whose ``text`` holds what was written, once the block has ended (so a caller can
    attach it to an error: nothing a failing converter said is lost). TensorFlow's converter prints
    "fully_quantize: 0, inference_type: 6, ..." on every int8 file, which a notebook shows as a pink
    stderr box. Set COMPRESSLAB_VERBOSE=1 to let everything through.
    """
    caught = types.SimpleNamespace(text="")
    if os.environ.get("COMPRESSLAB_VERBOSE"):
        yield caught
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (some embedded interpreters)
        yield caught
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield caught
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            caught.text = sink.read().decode("utf-8", errors="replace")


@contextlib.contextmanager
def quiet_native_stderr():
    """Silence what C++ code writes straight to file descriptor 2 (not Python's warnings or errors).

    TensorFlow prints "Could not find cuda drivers" before its log level applies, and LiteRT prints
    "Created TensorFlow Lite XNNPACK delegate" on every interpreter. Set COMPRESSLAB_VERBOSE=1 to keep them.
    """
    with captured_native_stderr():
        yield


with quiet_native_stderr():
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


def saved_metadata_class():
    """tf_keras's own ``SavedMetadata`` protobuf message class (what ``keras_metadata.pb`` holds)."""
    from tf_keras.protobuf import saved_metadata_pb2

    return saved_metadata_pb2.SavedMetadata


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


__all__ = ["tf", "keras", "tfmot", "versions", "quiet_native_stderr", "captured_native_stderr"]
