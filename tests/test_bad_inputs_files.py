"""Corrupt and truncated files: every parser answers with one ValueError that names the file.

Each format compresslab reads (.keras and .h5 from tf_keras and from Keras 3, SavedModel folders,
compresslab's .cldc, MNIST IDX files, Keras-format .npz archives, CIFAR-10 Python batches) is cut
short at several lengths, has bytes flipped, is replaced by an empty file or a folder, or carries the
wrong suffix; none may surface struct.error, KeyError, OSError from h5py or zipfile, a protobuf
DecodeError, a pickle error, or an error that does not say which file.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import shutil
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import compresslab as cl
from compresslab import codec

FRACTIONS = (0.0, 0.01, 0.1, 0.5, 0.9, 0.99)


def _damaged(raw: bytes, *, flip_within: int | None = None) -> list[tuple[str, bytes]]:
    """Cuts at several lengths, the last byte missing, and three rounds of 20 flipped bytes.

    ``flip_within`` limits the flips to the first bytes (where a format can notice them: a data
    format without a checksum cannot tell a flipped pixel from a real one).
    """
    out = [(f"cut at {fraction:.0%}", raw[: int(len(raw) * fraction)]) for fraction in FRACTIONS]
    out.append(("last byte missing", raw[:-1]))
    rng = np.random.default_rng(0)
    span = min(len(raw), flip_within or len(raw))
    for round_ in range(3):
        flipped = bytearray(raw)
        for index in rng.integers(0, span, size=20):
            flipped[index] ^= 0xFF
        out.append((f"20 bytes flipped ({round_})", bytes(flipped)))
    return out


def _assert_names_the_file(call, path, label=""):
    with pytest.raises(ValueError) as caught:
        call(path)
    assert path.name in str(caught.value), f"{label}: {type(caught.value).__name__}: {caught.value}"


def _load(path):
    return cl.load_model(path, verify=False)


@pytest.fixture(scope="module")
def files(trained_student, tmp_path_factory):
    folder = tmp_path_factory.mktemp("good")
    cl.save_model(trained_student, folder / "model.keras")
    cl.save_model(trained_student, folder / "model.h5")
    trained_student.save(folder / "saved", save_format="tf")
    codec.write(trained_student, folder / "model.cldc")
    return folder


KERAS3_SCRIPT = r"""
import sys
from pathlib import Path
import keras
folder = Path(sys.argv[1])
model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, name="conv"),
                          keras.layers.Flatten(name="flat"), keras.layers.Dense(3, name="dense")])
model.save(folder / "model.keras")
model.save(folder / "model.h5")
"""


@pytest.fixture(scope="module")
def keras3_files(tmp_path_factory):
    """A small model saved by Keras 3 itself (in a subprocess), as .keras and .h5."""
    folder = tmp_path_factory.mktemp("keras3")
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env.update(KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1")
    result = subprocess.run([sys.executable, "-c", KERAS3_SCRIPT, str(folder)], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _load(folder / "model.keras") is not None  # the undamaged files load
    return folder


# ---------------------------------------------------------------------------------------------
# Model files


@pytest.mark.parametrize("suffix", [".keras", ".h5", ".cldc"])
def test_damaged_model_files_name_the_file(files, tmp_path, suffix):
    read = codec.read if suffix == ".cldc" else _load
    for label, content in _damaged((files / f"model{suffix}").read_bytes()):
        path = tmp_path / f"damaged {label}{suffix}"
        path.write_bytes(content)
        _assert_names_the_file(read, path, label)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_damaged_keras3_files_name_the_file(keras3_files, tmp_path, suffix):
    for label, content in _damaged((keras3_files / f"model{suffix}").read_bytes()):
        path = tmp_path / f"damaged {label}{suffix}"
        path.write_bytes(content)
        _assert_names_the_file(_load, path, label)


def _rezipped(source, tmp_path, name, replace):
    """A copy of the .keras zip ``source`` whose members are rewritten by ``replace(member, bytes)``."""
    target = tmp_path / name
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w") as out:
        for member in archive.namelist():
            content = replace(member, archive.read(member))
            if content is not None:
                out.writestr(member, content)
    return target


def test_a_keras3_zip_with_damaged_members_names_the_file(keras3_files, tmp_path):
    source = keras3_files / "model.keras"
    weights = zipfile.ZipFile(source).read("model.weights.h5")
    cases = [(f"weights {label}", lambda m, c, d=content: d if m == "model.weights.h5" else c)
             for label, content in _damaged(weights)]
    cases += [
        ("config not JSON", lambda m, c: b"{not json" if m == "config.json" else c),
        ("config a list", lambda m, c: b"[1, 2]" if m == "config.json" else c),
        ("config without layers", lambda m, c: b'{"class_name": "Sequential", "config": {}}'
         if m == "config.json" else c),
        ("metadata not JSON", lambda m, c: b"\xff\xfe" if m == "metadata.json" else c),
        ("no weights", lambda m, c: None if m == "model.weights.h5" else c),
        ("no config", lambda m, c: None if m == "config.json" else c),
        ("a layer that is a number", lambda m, c: b'{"class_name": "Sequential", "config": {"layers": [5]}}'
         if m == "config.json" else c),
        ("a layer config that is a list", lambda m, c: b'{"class_name": "Sequential", "config": {"layers": '
         b'[{"class_name": "Dense", "config": [1]}]}}' if m == "config.json" else c),
        ("layers a number", lambda m, c: b'{"class_name": "Sequential", "config": {"layers": 3}}'
         if m == "config.json" else c),
    ]
    for index, (label, replace) in enumerate(cases):
        _assert_names_the_file(_load, _rezipped(source, tmp_path, f"member-{index}.keras", replace), label)


def test_a_keras_zip_declaring_huge_members_is_refused_before_decompressing(files, tmp_path, monkeypatch):
    from compresslab import datafiles

    monkeypatch.setattr(datafiles, "MAX_DATA_BYTES", 1000)
    with pytest.raises(ValueError, match="refused before decompressing") as caught:
        _load(files / "model.keras")
    assert "model.keras" in str(caught.value)


@pytest.mark.parametrize("member", ["saved_model.pb", "keras_metadata.pb", "variables/variables.index"])
def test_damaged_saved_model_folders_name_the_folder(files, tmp_path, member):
    for index, (label, content) in enumerate(_damaged((files / "saved" / member).read_bytes())):
        folder = tmp_path / f"saved-{index}"
        shutil.copytree(files / "saved", folder)
        (folder / member).write_bytes(content)
        _assert_names_the_file(_load, folder, label)


@pytest.mark.parametrize("member", ["saved_model.pb", "keras_metadata.pb"])
def test_a_saved_model_whose_file_is_a_folder_names_the_folder(files, tmp_path, member):
    folder = tmp_path / "saved"
    shutil.copytree(files / "saved", folder)
    (folder / member).unlink()
    (folder / member).mkdir()
    _assert_names_the_file(_load, folder, member)


def test_empty_files_folders_and_wrong_suffixes_where_a_model_file_is_expected(files, tmp_path):
    (tmp_path / "empty-folder").mkdir()
    _assert_names_the_file(_load, tmp_path / "empty-folder")
    for suffix in (".keras", ".h5", ".cldc"):
        (tmp_path / f"folder{suffix}").mkdir()
        (tmp_path / f"empty{suffix}").write_bytes(b"")
        read = codec.read if suffix == ".cldc" else _load
        _assert_names_the_file(read, tmp_path / f"folder{suffix}", "a folder")
        _assert_names_the_file(read, tmp_path / f"empty{suffix}", "an empty file")
    text = tmp_path / "notes.keras"
    text.write_text("not a model")
    _assert_names_the_file(_load, text)
    for source, renamed, read in [("model.keras", "model.cldc", codec.read), ("model.h5", "h5.cldc", codec.read),
                                  ("model.cldc", "cldc.keras", _load), ("model.cldc", "cldc.h5", _load),
                                  ("model.keras", "zip.h5", _load)]:
        shutil.copy(files / source, tmp_path / renamed)
        _assert_names_the_file(read, tmp_path / renamed, f"{source} renamed {renamed}")
    assert _load(shutil.copy(files / "model.h5", tmp_path / "h5.keras")) is not None  # the content decides


def _crafted_cldc(blob: bytes, change, version: int) -> bytes:
    """A .cldc file of format ``version`` whose header is rewritten by ``change``, its checksum valid again."""
    import json
    import zlib

    from compresslab.codec import fileformat

    header = fileformat.read_header(blob)
    payload = blob[header.pop("_payload_start"): -4]
    header.pop("_file_bytes")
    if version == 2:  # version 2 stores no offsets: they follow from the lengths
        for entry in header["tensors"]:
            entry.pop("offset")
    change(header)
    if version == 1:
        packed = zlib.compress(json.dumps(header).encode())
    else:
        packed = fileformat._pack_header(header)
    body = fileformat.MAGIC + bytes([version]) + struct.pack("<I", len(packed)) + packed + payload
    return body + struct.pack("<I", zlib.crc32(body))


@pytest.mark.parametrize("version", [1, 2])
def test_crafted_cldc_headers_with_a_valid_checksum_name_the_file(files, tmp_path, version):
    blob = (files / "model.cldc").read_bytes()
    assert codec.read(files / "model.cldc") is not None
    intact = tmp_path / "intact.cldc"
    intact.write_bytes(_crafted_cldc(blob, lambda header: None, version))
    restored = codec.read(intact)  # the crafting itself keeps a good file good
    for mine, theirs in zip(restored.get_weights(), codec.read(files / "model.cldc").get_weights()):
        np.testing.assert_array_equal(mine, theirs)

    def set_tensor_field(key, value):
        return lambda header: header["tensors"][0].__setitem__(key, value)

    changes = {
        "no architecture": lambda header: header.pop("architecture"),
        "architecture a string": lambda header: header.__setitem__("architecture", "Sequential"),
        "layers not dicts": lambda header: header["architecture"]["config"].__setitem__("layers", [1, 2]),
        "tensors a number": lambda header: header.__setitem__("tensors", 7),
        "a tensor without a shape": lambda header: header["tensors"][0].pop("shape"),
        "a tensor of another shape": set_tensor_field("shape", [1, 2, 3]),
        "an unknown encoding": set_tensor_field("encoding", "zip"),
        "a tensor entry that is a list": lambda header: header["tensors"].__setitem__(0, [1]),
    }
    if version == 1:
        changes.update({"an offset outside the file": set_tensor_field("offset", 10**9),
                        "an offset that is text": set_tensor_field("offset", "zero")})
    changes.update({"a length outside the file": set_tensor_field("length", 10**9),
                    "a length that is text": set_tensor_field("length", "zero"),
                    "a negative length": set_tensor_field("length", -1)})
    for label, change in changes.items():
        path = tmp_path / f"{label}.cldc"
        path.write_bytes(_crafted_cldc(blob, change, version))
        _assert_names_the_file(codec.read, path, label)


def test_a_cldc_file_holding_a_lambda_is_refused(tmp_path):
    from compresslab._keras import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t * 2.0, name="double"),
                              keras.layers.Dense(2)])
    path = codec.write(model, tmp_path / "lambda.cldc")
    with pytest.raises(ValueError, match="'double' is a Lambda layer") as caught:
        codec.read(path)
    assert "lambda.cldc" in str(caught.value)
    with pytest.raises(ValueError, match="'double' is a Lambda layer"):
        codec.decode(path.read_bytes())
    x = np.ones((2, 4), np.float32)
    restored = codec.read(path, trust=True)  # a file the user made: its Lambda may run
    np.testing.assert_allclose(restored(x).numpy(), model(x).numpy(), atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Data files


def _idx(array: np.ndarray) -> bytes:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _mnist_arrays():
    rng = np.random.default_rng(0)
    return {"x_train": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), "y_train": np.arange(20) % 10,
            "x_test": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8), "y_test": np.arange(10)}


IDX_NAMES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


def _mnist_folder(folder, *, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    for key, array in _mnist_arrays().items():
        raw = _idx(array)
        (folder / (IDX_NAMES[key] + (".gz" if gz else ""))).write_bytes(gzip.compress(raw) if gz else raw)
    return folder


def _mnist(path):
    return cl.load_dataset("mnist", data_dir=path.parent)


@pytest.mark.parametrize("key", ["x_test", "y_train"])
def test_damaged_idx_files_name_the_file(tmp_path, key):
    assert len(cl.load_dataset("mnist", data_dir=_mnist_folder(tmp_path / "good")).x_test) == 10
    raw = _idx(_mnist_arrays()[key])
    cases = [(f"IDX {label}", gzip.compress(content)) for label, content in _damaged(raw, flip_within=16)]
    cases += [(f"gzip {label}", content) for label, content in _damaged(gzip.compress(raw))]
    cases += [("bad magic", gzip.compress(b"\x00\x00\x09\x03" + raw[4:])), ("a text file", b"hello\n")]
    for index, (label, content) in enumerate(cases):
        target = _mnist_folder(tmp_path / f"case-{index}") / (IDX_NAMES[key] + ".gz")
        target.write_bytes(content)
        _assert_names_the_file(_mnist, target, label)


def test_uncompressed_idx_files_and_folders_in_their_place_name_the_file(tmp_path):
    folder = _mnist_folder(tmp_path / "plain", gz=False)
    assert len(cl.load_dataset("mnist", data_dir=folder).x_train) == 20
    target = folder / IDX_NAMES["x_train"]
    raw = target.read_bytes()
    for label, content in _damaged(raw, flip_within=16):
        target.write_bytes(content)
        _assert_names_the_file(_mnist, target, label)
    target.unlink()
    target.mkdir()
    _assert_names_the_file(_mnist, target, "a folder")


def test_idx_labels_outside_the_classes_name_the_file(tmp_path):
    folder = _mnist_folder(tmp_path)
    target = folder / (IDX_NAMES["y_test"] + ".gz")
    target.write_bytes(gzip.compress(_idx(np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 200]))))
    with pytest.raises(ValueError, match="label 200") as caught:
        _mnist(target)
    assert target.name in str(caught.value)


def _npz_bytes(**change) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{**_mnist_arrays(), **change})
    return buffer.getvalue()


def test_damaged_npz_files_name_the_file(tmp_path):
    good = tmp_path / "good" / "mnist.npz"
    good.parent.mkdir()
    good.write_bytes(_npz_bytes())
    assert len(_mnist(good).x_train) == 20
    cases = _damaged(_npz_bytes())
    cases += [("a folder", None), ("not a zip", b"PK\x03\x04 but nothing else"),
              ("object array", _npz_bytes(y_test=np.array([{"a": 1}] * 10, dtype=object))),
              ("labels outside the classes", _npz_bytes(y_train=np.arange(20) % 10 + 50)),
              ("images of the wrong shape", _npz_bytes(x_test=np.zeros((10, 5), np.uint8)))]
    buffer = io.BytesIO()
    np.savez(buffer, x_train=np.zeros((2, 28, 28), np.uint8))
    cases.append(("arrays missing", buffer.getvalue()))
    for index, (label, content) in enumerate(cases):
        target = tmp_path / f"case-{index}" / "mnist.npz"
        target.parent.mkdir()
        if content is None:
            target.mkdir()
        else:
            target.write_bytes(content)
        _assert_names_the_file(_mnist, target, label)


def _cifar_batch(n=10, seed=0, change=None) -> bytes:
    rng = np.random.default_rng(seed)
    batch = {b"batch_label": b"batch", b"labels": [i % 10 for i in range(n)],
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"f.png"] * n}
    return pickle.dumps({**batch, **(change or {})}, protocol=2)


def _cifar_folder(folder):
    batches = folder / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    for i in range(1, 6):
        (batches / f"data_batch_{i}").write_bytes(_cifar_batch(seed=i))
    (batches / "test_batch").write_bytes(_cifar_batch(seed=9))
    return batches


def _cifar(path):
    return cl.load_dataset("cifar10", data_dir=path.parent.parent)


def test_damaged_cifar_batches_name_the_file(tmp_path):
    assert len(cl.load_dataset("cifar10", data_dir=_cifar_folder(tmp_path / "good").parent).x_train) == 50
    cases = _damaged(_cifar_batch())
    cases += [("a folder", None), ("not a dict", pickle.dumps([1, 2, 3])),
              ("labels outside the classes", _cifar_batch(change={b"labels": [77] * 10})),
              ("labels not a list", _cifar_batch(change={b"labels": "abc"})),
              ("data of the wrong shape", _cifar_batch(change={b"data": np.zeros((10, 7), np.uint8)})),
              ("float data", _cifar_batch(change={b"data": np.zeros((10, 3072), np.float32)})),
              ("an npz", _npz_bytes())]
    for index, (label, content) in enumerate(cases):
        target = _cifar_folder(tmp_path / f"case-{index}") / "data_batch_2"
        target.unlink()
        if content is None:
            target.mkdir()
        else:
            target.write_bytes(content)
        _assert_names_the_file(_cifar, target, label)
