"""Corrupt and truncated files: every parser answers with one ValueError that names the file.

Each format compresslab reads (.keras, .h5, SavedModel folders, compresslab's .cldc, MNIST IDX files) is
cut short at several lengths and has bytes flipped; none may surface struct.error, KeyError,
OSError from h5py or zipfile, a protobuf DecodeError, or an error that does not say which file.
"""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

import compresslab as cl
from compresslab import codec

FRACTIONS = (0.0, 0.01, 0.1, 0.5, 0.9, 0.99)


def _damaged(raw: bytes) -> list[tuple[str, bytes]]:
    out = [(f"cut at {fraction:.0%}", raw[: int(len(raw) * fraction)]) for fraction in FRACTIONS]
    rng = np.random.default_rng(0)
    for round_ in range(3):
        flipped = bytearray(raw)
        for index in rng.integers(0, len(raw), size=20):
            flipped[index] ^= 0xFF
        out.append((f"20 bytes flipped ({round_})", bytes(flipped)))
    return out


def _assert_names_the_file(call, path):
    with pytest.raises(ValueError) as caught:
        call(path)
    assert path.name in str(caught.value), f"{type(caught.value).__name__}: {caught.value}"


@pytest.fixture(scope="module")
def files(trained_student, tmp_path_factory):
    folder = tmp_path_factory.mktemp("good")
    cl.save_model(trained_student, folder / "model.keras")
    cl.save_model(trained_student, folder / "model.h5")
    trained_student.save(folder / "saved", save_format="tf")
    codec.write(trained_student, folder / "model.cldc")
    return folder


@pytest.mark.parametrize("suffix", [".keras", ".h5", ".cldc"])
def test_damaged_model_files_name_the_file(files, tmp_path, suffix):
    read = codec.read if suffix == ".cldc" else (lambda p: cl.load_model(p, verify=False))
    for label, content in _damaged((files / f"model{suffix}").read_bytes()):
        path = tmp_path / f"damaged {label}{suffix}"
        path.write_bytes(content)
        _assert_names_the_file(read, path)


@pytest.mark.parametrize("member", ["saved_model.pb", "keras_metadata.pb"])
def test_damaged_saved_model_folders_name_the_folder(files, tmp_path, member):
    for index, (_, content) in enumerate(_damaged((files / "saved" / member).read_bytes())):
        folder = tmp_path / f"saved-{index}"
        shutil.copytree(files / "saved", folder)
        (folder / member).write_bytes(content)
        _assert_names_the_file(lambda p: cl.load_model(p, verify=False), folder)


def test_a_folder_or_a_wrong_suffix_where_a_model_file_is_expected(files, tmp_path):
    (tmp_path / "empty-folder").mkdir()
    _assert_names_the_file(lambda p: cl.load_model(p, verify=False), tmp_path / "empty-folder")
    text = tmp_path / "notes.keras"
    text.write_text("not a model")
    _assert_names_the_file(lambda p: cl.load_model(p, verify=False), text)
    renamed = tmp_path / "model.cldc"
    shutil.copy(files / "model.keras", renamed)
    _assert_names_the_file(codec.read, renamed)


@pytest.mark.slow
def test_damaged_idx_files_name_the_file(mnist_dir, tmp_path):
    raw = gzip.decompress((mnist_dir / "t10k-images-idx3-ubyte.gz").read_bytes())
    for label, content in [("cut", raw[:1000]), ("header only", raw[:3]), ("empty", b""),
                           ("bad magic", b"\x00\x00\x09\x03" + raw[4:2000])]:
        folder = tmp_path / label.replace(" ", "-")
        folder.mkdir()
        for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
            shutil.copy(mnist_dir / name, folder / name)
        target = folder / "t10k-images-idx3-ubyte.gz"
        target.write_bytes(gzip.compress(content))
        _assert_names_the_file(lambda p: cl.load_dataset("mnist", data_dir=p.parent), target)
