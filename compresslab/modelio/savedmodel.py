"""Loading tf_keras SavedModel folders, after checking the model description they carry.

tf_keras writes the configuration of every object it saves into ``keras_metadata.pb``, a
``SavedMetadata`` protocol buffer. It is read here with the message class tf_keras itself
ships (``tf_keras.protobuf.saved_metadata_pb2``, the one its own loader uses), so the safety
checks see the configuration before tf_keras deserializes anything.
"""

from __future__ import annotations

import json
from pathlib import Path

from google.protobuf.message import DecodeError

from .._keras import keras, saved_metadata_class
from .checks import _check_model_config, _short, _unreadable

_METADATA_FILE = "keras_metadata.pb"


def read_saved_model_metadata(path) -> dict | None:
    """The Keras metadata of a SavedModel's root object (the model itself).

    Args:
        path: the ``keras_metadata.pb`` file of a SavedModel folder written by tf_keras.

    Returns:
        The root object's metadata (``class_name``, ``config``, ...) as a dict, or ``None``
        when the file describes no root object.

    Raises:
        ValueError: if the file is not a valid ``SavedMetadata`` message or its root
            metadata is not JSON; the message names the file.

    Example:
        >>> read_saved_model_metadata("saved_model/keras_metadata.pb")["class_name"]
        'Functional'
    """
    path = Path(path)
    metadata = saved_metadata_class()()
    try:
        metadata.ParseFromString(path.read_bytes())
    except OSError as error:  # a folder in the file's place, or a file that cannot be read
        raise ValueError(f"{str(path)!r} cannot be read as a Keras SavedModel metadata file "
                         f"({error.strerror or error})") from None
    except DecodeError as error:
        raise ValueError(f"{str(path)!r} is not a valid Keras SavedModel metadata file "
                         f"(corrupt or truncated?): {error}") from None
    for node in metadata.nodes:
        if node.node_path == "root":
            try:
                return json.loads(node.metadata or "{}")
            except ValueError as error:
                raise ValueError(f"{str(path)!r}: the root object's metadata is not valid JSON "
                                 f"({error})") from None
    return None


def _load_saved_model(path: Path, trust: bool):
    if not (path / "saved_model.pb").exists():
        raise _unreadable(path, "the folder holds no saved_model.pb, so it is not a SavedModel")
    metadata_file = path / _METADATA_FILE
    if not metadata_file.exists():
        raise _unreadable(path, "the SavedModel has no keras_metadata.pb: it was not written by "
                                "tf_keras (Keras 3's model.export() makes inference-only artifacts)")
    try:
        root = read_saved_model_metadata(metadata_file)
    except ValueError as error:
        raise _unreadable(path, f"keras_metadata.pb is corrupt ({error})") from None
    if root is None or "class_name" not in root:
        raise _unreadable(path, "keras_metadata.pb describes no Keras model")
    _check_model_config({"class_name": root["class_name"], "config": root.get("config")}, path, trust)
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:
        raise _unreadable(path, f"tf_keras could not load the SavedModel ({type(error).__name__}: "
                                f"{_short(error)})") from None
