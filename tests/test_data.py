import gzip
import struct

import numpy as np
import pytest

import compresslab as cl
from compresslab import data as data_module


def test_digits_default_is_28x28_stratified_and_seeded(digits):
    assert digits.name == "digits"
    assert digits.input_shape == (28, 28, 1)
    assert digits.x_train.dtype == np.float32 and digits.y_train.dtype == np.int64
    assert len(digits.x_train) + len(digits.x_test) == 1797
    assert 0.0 <= digits.x_train.min() and digits.x_train.max() <= 1.0
    # MNIST layout: a 4-pixel empty border around a 20x20 digit
    assert digits.x_train[:, :4].max() == 0 and digits.x_train[:, 24:].max() == 0
    # stratified: every class holds about a quarter of its images in the test split
    test_counts = np.bincount(digits.y_test, minlength=10)
    assert test_counts.min() >= 43 and test_counts.max() <= 47
    again = cl.load_dataset("digits", seed=0)
    np.testing.assert_array_equal(again.y_test, digits.y_test)
    other = cl.load_dataset("digits", seed=1)
    assert not np.array_equal(other.y_test, digits.y_test)


def test_describe_names_sizes(digits):
    text = digits.describe()
    assert "1,347 train / 450 test" in text and "28x28x1" in text and "10 classes" in text


def test_unknown_dataset_lists_choices():
    with pytest.raises(ValueError, match="unknown data set 'imagenet'.*digits, mnist"):
        cl.load_dataset("imagenet")


def test_mnist_from_the_official_idx_folder(mnist):
    assert mnist.x_train.shape == (60000, 28, 28, 1)
    assert mnist.x_test.shape == (10000, 28, 28, 1)
    assert np.bincount(mnist.y_test).tolist()[:3] == [980, 1135, 1032]  # the official test split
    assert mnist.x_train.max() == 1.0 and mnist.x_train.min() == 0.0


def test_data_dir_from_environment(monkeypatch, mnist_dir):
    monkeypatch.setenv("COMPRESSLAB_DATA_DIR", str(mnist_dir))
    assert len(cl.load_dataset("mnist").x_test) == 10000


def _write_idx(path, array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def _fake_mnist(folder, n_train=20, n_test=10):
    rng = np.random.default_rng(0)
    _write_idx(folder / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_train, 28, 28)))
    _write_idx(folder / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, n_train))
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (n_test, 28, 28)))
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, n_test))


def test_idx_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="not a folder"):
        cl.load_dataset("mnist", data_dir=tmp_path / "nope")
    with pytest.raises(ValueError, match="lacks train-images-idx3-ubyte.gz"):
        cl.load_dataset("mnist", data_dir=tmp_path)
    _fake_mnist(tmp_path)
    assert len(cl.load_dataset("fashion_mnist", data_dir=tmp_path).x_train) == 20
    raw = gzip.decompress((tmp_path / "t10k-images-idx3-ubyte.gz").read_bytes())
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(ValueError, match="truncated or corrupt"):
        cl.load_dataset("mnist", data_dir=tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="could not be read"):
        cl.load_dataset("mnist", data_dir=tmp_path)


def test_keras_npz_folder(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "mnist.npz", x_train=rng.integers(0, 256, (8, 28, 28), dtype=np.uint8),
             y_train=np.arange(8) % 10, x_test=rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
             y_test=np.arange(4))
    data = cl.load_dataset("mnist", data_dir=tmp_path)
    assert data.x_test.shape == (4, 28, 28, 1)


def test_download_is_cached_and_offline_failure_is_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPRESSLAB_HOME", str(tmp_path))
    monkeypatch.delenv("COMPRESSLAB_DATA_DIR", raising=False)
    calls = []

    def fake_load_data():
        calls.append(1)
        rng = np.random.default_rng(0)
        return ((rng.integers(0, 256, (6, 28, 28), dtype=np.uint8), np.arange(6)),
                (rng.integers(0, 256, (3, 28, 28), dtype=np.uint8), np.arange(3)))

    from compresslab._keras import keras

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", fake_load_data)
    first = cl.load_dataset("fashion_mnist")
    second = cl.load_dataset("fashion_mnist")
    assert calls == [1] and (tmp_path / "fashion_mnist.npz").exists()
    np.testing.assert_array_equal(first.x_train, second.x_train)

    def offline():
        raise OSError("network is unreachable")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(ValueError, match="Offline\\? Point data_dir"):
        cl.load_dataset("mnist")


def _arrays(n_train=12, n_test=6, shape=(8, 8)):
    rng = np.random.default_rng(0)
    return (rng.random((n_train, *shape)).astype(np.float32), np.arange(n_train) % 3,
            rng.random((n_test, *shape)).astype(np.float32), np.arange(n_test) % 3)


def test_from_arrays_adds_channel_and_scales_uint8():
    x, y, xt, yt = _arrays()
    data = cl.Dataset.from_arrays(x, y, xt, yt, class_names=["a", "b", "c"], name="toy")
    assert data.input_shape == (8, 8, 1) and data.num_classes == 3
    data8 = cl.Dataset.from_arrays((x * 255).astype(np.uint8), y, (xt * 255).astype(np.uint8), yt)
    assert data8.x_train.max() <= 1.0 and data8.num_classes == 3


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: (a[0][0], *a[1:]), "rank 2"),
        (lambda a: (a[0].astype(str), *a[1:]), "dtype <U"),
        (lambda a: (a[0], a[1] - 1, *a[2:]), "label -1"),
        (lambda a: (a[0], a[1] + 5, *a[2:]), "out of range for 3 classes"),
        (lambda a: (np.where(np.arange(a[0].size).reshape(a[0].shape) == 0, np.nan, a[0]), *a[1:]), "1 NaN or inf"),
        (lambda a: (a[0][:0], a[1][:0], *a[2:]), "x_train is empty"),
        (lambda a: (a[0], a[1][:-1], *a[2:]), "x_train has 12 images but y_train has 11 labels"),
        (lambda a: (a[0], a[1], a[2][:, :4], a[3]), "both splits must hold images of the same shape"),
        (lambda a: (a[0], a[1] + 0.5, *a[2:]), "non-integer"),
        (lambda a: (a[0], np.eye(3)[a[1]], *a[2:]), "not one-hot"),
    ],
)
def test_from_arrays_rejects_bad_input(change, message):
    arrays = change(_arrays())
    with pytest.raises(ValueError, match=message):
        cl.Dataset.from_arrays(*arrays, class_names=["a", "b", "c"])


def test_subset_keeps_classes(digits):
    small = digits.subset(train=100, test=50)
    assert len(small.x_train) == 100 and len(small.x_test) == 50 and small.num_classes == 10


def test_default_home_prefers_env(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPRESSLAB_HOME", str(tmp_path))
    assert data_module.default_data_home() == tmp_path
