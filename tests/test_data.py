import gzip
import os
import pickle
import struct

import numpy as np
import pytest

import compresslab as cl
from compresslab import data as data_module
from compresslab import datafiles


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


# ---------------------------------------------------------------------------------------------
# Validation split (choose on validation, report on test)


def test_with_validation_is_a_new_stratified_seeded_split(digits):
    split = digits.with_validation(0.1, seed=0)
    assert split is not digits and len(digits.x_val) == 0 and digits.y_val.shape == (0,)
    assert len(split.x_train) + len(split.x_val) == len(digits.x_train) and len(split.x_val) == 135
    assert split.x_val.shape[1:] == (28, 28, 1) and split.y_val.dtype == np.int64
    np.testing.assert_array_equal(split.x_test, digits.x_test)  # the test split is untouched
    counts = np.bincount(split.y_val, minlength=10)
    assert counts.min() >= 13 and counts.max() <= 14  # stratified: about a tenth of every class
    np.testing.assert_array_equal(digits.with_validation(0.1, seed=0).y_val, split.y_val)
    assert not np.array_equal(digits.with_validation(0.1, seed=1).y_val, split.y_val)
    # no training image is also a validation image
    train_rows = {row.tobytes() for row in split.x_train}
    assert not any(row.tobytes() in train_rows for row in split.x_val)
    assert "1,212 train / 135 validation / 450 test" in split.describe() and "135 validation" in repr(split)
    small = split.subset(train=100, test=50, validation=20)
    assert (len(small.x_train), len(small.x_val), len(small.x_test)) == (100, 20, 50)
    assert len(split.subset(train=100).x_val) == 135
    with pytest.raises(ValueError, match="already holds a validation split of 135"):
        split.with_validation(0.1)


def test_arrays_names_a_split_and_accuracy_measures_it(digits, trained_student):
    split = digits.with_validation(0.1, seed=0)
    for name, expected in (("train", split.x_train), ("validation", split.x_val), ("test", split.x_test)):
        assert split.arrays(name)[0] is expected
    with pytest.raises(ValueError, match="no validation split to choose on.*with_validation"):
        digits.arrays("validation")
    with pytest.raises(ValueError, match="split is 'val'; allowed: 'train', 'validation'"):
        split.arrays("val")
    on_validation = cl.models.accuracy(trained_student, split, split="validation")
    predictions = trained_student.predict(split.x_val, verbose=0).argmax(axis=1)
    assert on_validation == pytest.approx(float(np.mean(predictions == split.y_val)))
    assert cl.models.accuracy(trained_student, split) == cl.models.accuracy(trained_student, split, split="test")


def test_load_dataset_validation_parameter(digits):
    data = cl.load_dataset("digits", validation=0.2, seed=0)
    assert len(data.x_val) == 270 and len(data.x_test) == len(digits.x_test)
    assert len(cl.load_dataset("digits").x_val) == 0
    for bad in (1.0, -0.1, float("nan"), "0.1", True):
        with pytest.raises(ValueError, match=f"validation is {bad!r}; it must be a number strictly between 0 and 1"):
            cl.load_dataset("digits", validation=bad)


def test_validation_needs_enough_images_per_class():
    x, y, xt, yt = _arrays(n_train=6)
    data = cl.Dataset.from_arrays(x, y, xt, yt)
    with pytest.raises(ValueError, match="cannot carve a stratified 0.1 validation split from 6 training images"):
        data.with_validation(0.1)


# ---------------------------------------------------------------------------------------------
# Labels, classes and pixel ranges


def test_labels_are_bounded_and_every_class_should_be_present():
    x, y, xt, yt = _arrays()
    stray = y.copy()
    stray[0] = 20_000_000  # used to make a 20,000,001-way classifier
    with pytest.raises(ValueError, match="y_train holds label 20000000; compresslab handles at most 1000 classes"):
        cl.Dataset.from_arrays(x, stray, xt, yt)
    gap = np.where(y == 1, 2, y)  # class 1 never appears in training
    with pytest.warns(UserWarning, match=r"y_train has no image of class\(es\) \[1\]"):
        cl.Dataset.from_arrays(x, gap, xt, yt)
    with pytest.raises(ValueError, match=r"y_train has no image of class\(es\) \[1\]"):
        cl.Dataset.from_arrays(x, gap, xt, yt, require_all_classes=True)
    with pytest.raises(ValueError, match="class_names has 1001 entries"):
        cl.Dataset.from_arrays(x, y, xt, yt, class_names=[str(i) for i in range(1001)])


def test_float_images_outside_unit_range_need_scale():
    x, y, xt, yt = _arrays()
    with pytest.raises(ValueError, match=r"x_train holds float values in \[.*, 1e\+30\].*pass scale=True"):
        cl.Dataset.from_arrays(np.where(x > 0.5, 1e30, x), y, xt, yt)
    with pytest.raises(ValueError, match=r"x_test holds float values in \[.*, 25\d.*\]; float images must lie in \[0, 1\]"):
        cl.Dataset.from_arrays(x, y, xt * 255, yt)
    scaled = cl.Dataset.from_arrays(x * 255, y, xt * 255, yt, scale=True)
    np.testing.assert_allclose(scaled.x_train[..., 0], x, atol=1e-6)
    with pytest.raises(ValueError, match=r"float images must lie in \[0, 255\]"):
        cl.Dataset.from_arrays(x * 300, y, xt, yt, scale=True)


# ---------------------------------------------------------------------------------------------
# Untrusted files: CIFAR-10 pickles, IDX headers, .npz archives


def _cifar_batch(n=20, seed=0, protocol=2):
    rng = np.random.default_rng(seed)
    return pickle.dumps({b"batch_label": b"batch", b"labels": [int(i) % 10 for i in range(n)],
                         b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         b"filenames": [b"f.png"] * n}, protocol=protocol)


def _cifar_folder(folder, test_batch=None):
    batches = folder / "cifar-10-batches-py"
    batches.mkdir(parents=True, exist_ok=True)
    for i in range(1, 6):
        raw = _cifar_batch(seed=i, protocol=2 if i % 2 else 5)
        if i == 3:  # as the official Python 2 files name NumPy's module
            raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
        (batches / f"data_batch_{i}").write_bytes(raw)
    (batches / "test_batch").write_bytes(test_batch if test_batch is not None else _cifar_batch(10, seed=9))
    return batches


def test_cifar_batches_load_without_unrestricted_pickle(tmp_path):
    _cifar_folder(tmp_path)
    data = cl.load_dataset("cifar10", data_dir=tmp_path)
    assert data.x_train.shape == (100, 32, 32, 3) and data.x_test.shape == (10, 32, 32, 3)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [2, 5])
def test_malicious_cifar_pickle_is_refused_and_nothing_runs(tmp_path, protocol):
    marker = tmp_path / "pwned"
    evil = pickle.dumps({b"data": _Evil(marker), b"labels": []}, protocol=protocol)
    batches = _cifar_folder(tmp_path, test_batch=evil)
    with pytest.raises(ValueError, match=r"test_batch refers to (posix|os)\.system, which a CIFAR-10 batch never does"):
        cl.load_dataset("cifar10", data_dir=tmp_path)
    assert not marker.exists()
    (batches / "test_batch").write_bytes(pickle.dumps({b"data": eval}, protocol=protocol))  # noqa: S307
    with pytest.raises(ValueError, match="refers to (__builtin__|builtins).eval"):
        cl.load_dataset("cifar10", data_dir=tmp_path)


def test_truncated_or_wrong_cifar_batch_names_the_file(tmp_path):
    batches = _cifar_folder(tmp_path, test_batch=_cifar_batch()[:500])
    with pytest.raises(ValueError, match="test_batch is not a readable CIFAR-10 batch"):
        cl.load_dataset("cifar10", data_dir=tmp_path)
    (batches / "test_batch").write_bytes(pickle.dumps({b"data": [1, 2, 3]}))
    with pytest.raises(ValueError, match=r"test_batch lacks a uint8 b'data' array"):
        cl.load_dataset("cifar10", data_dir=tmp_path)


def test_idx_header_cut_short_is_a_value_error_naming_the_file(tmp_path):
    _fake_mnist(tmp_path)
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(struct.pack(">HBB", 0, 0x08, 3) + b"\x00\x00")  # 3 dims declared, half of one given
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz: its IDX header is cut short"):
        cl.load_dataset("mnist", data_dir=tmp_path)


def test_idx_gzip_bomb_is_refused_from_its_header(tmp_path):
    _fake_mnist(tmp_path)
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(struct.pack(">HBB", 0, 0x08, 3) + struct.pack(">3I", 4_000_000, 28, 28 * 100))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.gz declares shape .* more than the"):
        cl.load_dataset("mnist", data_dir=tmp_path)


def test_npz_zip_bomb_is_refused_before_decompressing(tmp_path, monkeypatch):
    import tracemalloc
    import zipfile

    with zipfile.ZipFile(tmp_path / "mnist.npz", "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("x_train.npy", "w", force_zip64=True) as member:
            chunk = bytes(1 << 20)
            for _ in range(80):  # 80 MiB of zeros: about 80 KiB compressed
                member.write(chunk)
    tracemalloc.start()
    with pytest.raises(ValueError, match=r"member 'x_train.npy' expands .*x to 83,886,080 bytes, a decompression bomb"):
        cl.load_dataset("mnist", data_dir=tmp_path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 * 1024**2
    monkeypatch.setattr(datafiles, "MAX_DATA_BYTES", 1000)
    np.savez(tmp_path / "fashion_mnist.npz", x_train=np.zeros((8, 28, 28), np.uint8), y_train=np.arange(8),
             x_test=np.zeros((4, 28, 28), np.uint8), y_test=np.arange(4))
    with pytest.raises(ValueError, match=r"fashion_mnist.npz declares [\d,]+ bytes of arrays, more than the 1,000"):
        cl.load_dataset("fashion_mnist", data_dir=tmp_path)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "is not a readable .npz file"),
        (b"PK\x03\x04 broken zip", "is not a readable .npz file"),
        ("pickled", "is not a readable .npz file"),
        ("missing", r"lacks arrays \['y_test'\]"),
    ],
)
def test_corrupt_npz_is_a_value_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "mnist.npz"
    if content == "pickled":
        np.savez(path, x_train=np.array([object()], dtype=object), y_train=[0], x_test=[0], y_test=[0])
    elif content == "missing":
        np.savez(path, x_train=np.zeros((2, 4, 4)), y_train=[0, 1], x_test=np.zeros((2, 4, 4)))
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=f"mnist.npz.*{message}|{message}"):
        cl.load_dataset("mnist", data_dir=tmp_path)
