"""Bad-input catalogue of the core layers: specs, records and the experiment log, data sets, file writing.

Each case is what a student might type into a widget or config, or what an attacker might put in
a file, and asserts the error's TYPE and that its message names the offending field, value or file.
"""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest

import compresslab as cl
from compresslab import _io
from compresslab.distill import DistillSpec, distillation_loss, soften
from compresslab.records import ExperimentLog, Record, load_records, to_frame

INF, NAN = float("inf"), float("nan")

# ---------------------------------------------------------------------------------------------
# DistillSpec: every field, wrong types, out of range, non-finite

SPEC_CASES = [
    ({"temperature": 0}, r"DistillSpec.temperature is 0; it must be a number in \(0, inf\)"),
    ({"temperature": -1.5}, r"DistillSpec.temperature is -1.5"),
    ({"temperature": INF}, r"DistillSpec.temperature is inf; it must be a finite number"),
    ({"temperature": NAN}, r"DistillSpec.temperature is nan; it must be a finite number"),
    ({"temperature": "10"}, r"DistillSpec.temperature is '10'"),
    ({"temperature": None}, r"DistillSpec.temperature is None"),
    ({"temperature": True}, r"DistillSpec.temperature is True"),
    ({"temperature": [10]}, r"DistillSpec.temperature is \[10\]"),
    ({"temperature": 1 + 2j}, r"DistillSpec.temperature is \(1\+2j\)"),
    ({"alpha": 1.01}, r"DistillSpec.alpha is 1.01; it must be a number in \[0, 1\]"),
    ({"alpha": -INF}, r"DistillSpec.alpha is -inf; it must be a finite number"),
    ({"alpha": "half"}, r"DistillSpec.alpha is 'half'"),
    ({"epochs": 0}, r"DistillSpec.epochs is 0; it must be an integer >= 1"),
    ({"epochs": "ten"}, r"DistillSpec.epochs is 'ten'; it must be an integer"),
    ({"epochs": 2.0}, r"DistillSpec.epochs is 2.0"),
    ({"epochs": np.float64(2.0)}, r"DistillSpec.epochs is np.float64\(2.0\)|DistillSpec.epochs is 2.0"),
    ({"batch_size": -8}, r"DistillSpec.batch_size is -8"),
    ({"batch_size": np.bool_(True)}, r"DistillSpec.batch_size is (np.)?True"),
    ({"learning_rate": INF}, r"DistillSpec.learning_rate is inf; it must be a finite number"),
    ({"learning_rate": 0}, r"DistillSpec.learning_rate is 0"),
    ({"learning_rate": "1e-3"}, r"DistillSpec.learning_rate is '1e-3'"),
    ({"seed": -1}, r"DistillSpec.seed is -1; it must be an integer >= 0"),
    ({"seed": 1.5}, r"DistillSpec.seed is 1.5"),
]


@pytest.mark.parametrize("kwargs, message", SPEC_CASES)
def test_distill_spec_fields(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DistillSpec(**kwargs)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: DistillSpec.from_dict("temperature=4"), r"DistillSpec.from_dict takes a dict, got str"),
        (lambda: DistillSpec.from_dict({"temp": 4}), r"DistillSpec has no field\(s\) \['temp'\]"),
        (lambda: DistillSpec.from_json("{temperature: 4}"), r"DistillSpec.from_json got text that is not JSON"),
        (lambda: DistillSpec.from_json("[1, 2]"), r"DistillSpec.from_dict takes a dict, got list"),
        (lambda: DistillSpec().replace(colour="red"), r"DistillSpec has no field\(s\) \['colour'\]"),
        (lambda: DistillSpec().replace(temperature=-1), r"DistillSpec.temperature is -1"),
        (lambda: soften([1.0, 2.0], INF), r"temperature is inf; it must be a finite number > 0"),
        (lambda: soften([1.0, 2.0], "hot"), r"temperature is 'hot'"),
        (lambda: distillation_loss([0], [[1.0, 0.0]], [[1.0, 0.0]], temperature=2, alpha=2),
         r"alpha is 2; it must be a finite number in \[0, 1\]"),
    ],
)
def test_spec_parsing_and_softening(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ---------------------------------------------------------------------------------------------
# Record fields (built in code, or read from a crafted log line)

RECORD_CASES = [
    ({"name": ""}, r"Record.name is ''"),
    ({"name": 5}, r"Record.name is 5; it must be a non-empty string"),
    ({"technique": ["prune"]}, r"Record.technique is \['prune'\]; it must be a string"),
    ({"dataset": None}, r"Record.dataset is None; it must be a string"),
    ({"spec": "bits=4"}, r"Record.spec is 'bits=4'; it must be a dict"),
    ({"accuracy": 1.5}, r"Record.accuracy is 1.5; it must be a fraction in \[0, 1\]"),
    ({"accuracy": "93%"}, r"Record.accuracy is '93%'"),
    ({"accuracy": INF}, r"Record.accuracy is inf"),
    ({"params": -100}, r"Record.params is -100; it must be a whole number >= 0"),
    ({"params": "many"}, r"Record.params is 'many'"),
    ({"nonzero_params": 3.5}, r"Record.nonzero_params is 3.5"),
    ({"params": 10, "nonzero_params": 11}, r"Record.nonzero_params is 11; it cannot exceed params \(10\)"),
    ({"dense_float32_bytes": False}, r"Record.dense_float32_bytes is False"),
    ({"tflite_bytes": -1}, r"Record.tflite_bytes is -1"),
    ({"gzip_bytes": "big"}, r"Record.gzip_bytes is 'big'"),
    ({"entropy_bytes": -0.5}, r"Record.entropy_bytes is -0.5; it must be a finite number in \[0, inf\]"),
    ({"latency_ms": NAN}, r"Record.latency_ms is nan"),
    ({"latency_threads": 0}, r"Record.latency_threads is 0; it must be a whole number >= 1"),
    ({"seed": "0"}, r"Record.seed is '0'"),
    ({"timestamp": 1700000000}, r"Record.timestamp is 1700000000; it must be a string"),
    ({"extra": 5}, r"Record.extra is 5; it must be a dict"),
    ({"extra": {3: "x"}}, r"Record.extra is \{3: 'x'\}"),
]


@pytest.mark.parametrize("fields, message", RECORD_CASES)
def test_record_fields(fields, message):
    with pytest.raises(ValueError, match=message):
        Record(**{"name": "variant", **fields})


LOG_LINES = [
    ('{"name": "a", "gzip_bytes": "big"}', r"line 2 is not a valid record \(Record.gzip_bytes is 'big'"),
    ('{"name": "a", "extra": 5}', r"line 2 is not a valid record \(Record.extra is 5"),
    ('{"name": "a", "params": -100}', r"line 2 is not a valid record \(Record.params is -100"),
    ('{"name": "a", "colour": "red"}', r"line 2 is not a valid record \(unknown Record fields \['colour'\]"),
    ('{"technique": "prune"}', r"line 2 is not a valid record \(Record field 'name' is missing"),
    ('"just a string"', r"line 2 is not a valid record \(a Record is a JSON object \(dict\), got str"),
    ("null", r"line 2 is not a valid record \(a Record is a JSON object \(dict\), got NoneType"),
    ('{"name": "a", "accuracy": NaN}', r"line 2 is not a valid record \(Record.accuracy is nan"),
    ("{not json", r"line 2 is not a valid record \(not JSON"),
    ('{"name": "a"' + "\udcff".encode("utf-8", "surrogateescape").decode("latin-1") + "}",
     r"line 2 is not a valid record \(not JSON"),
]


@pytest.mark.parametrize("line, message", LOG_LINES)
def test_crafted_log_lines_name_file_line_and_field(tmp_path, line, message):
    path = tmp_path / "crafted.jsonl"
    path.write_bytes(b'{"name": "ok"}\n' + line.encode("utf-8", "surrogateescape") + b'\n{"name": "after"}\n')
    with pytest.raises(ValueError, match=rf"crafted.jsonl, {message}"):
        ExperimentLog(path).records()


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda tmp: ExperimentLog(5), ValueError, r"ExperimentLog path is 5"),
        (lambda tmp: ExperimentLog(tmp), ValueError, r"is a folder; an experiment log is a .jsonl file"),
        (lambda tmp: ExperimentLog(tmp / "log.jsonl").append({"name": "x"}), ValueError,
         r"takes a Record, got dict"),
        (lambda tmp: (tmp.joinpath("file").write_text("x"), ExperimentLog(tmp / "file" / "log.jsonl")
                      .append(Record(name="x"))), NotADirectoryError, r"file/log.jsonl: a part of .*file is a file"),
        (lambda tmp: load_records(tmp / "missing.jsonl"), ValueError, r"missing.jsonl does not exist"),
        (lambda tmp: load_records(str(tmp)), ValueError, r"is a folder; expected an experiment log"),
        (lambda tmp: load_records(5), ValueError, r"expected a log path, an ExperimentLog or Record objects, got int"),
        (lambda tmp: load_records([Record(name="x"), {"name": "y"}]), ValueError,
         r"expected Record objects, got dict \{'name': 'y'\}"),
        (lambda tmp: to_frame([{"name": "y"}]), ValueError, r"expected Record objects, got dict"),
        (lambda tmp: to_frame({"name": "y"}), ValueError, r"got dict"),
    ],
)
def test_log_and_frame_entry_points(tmp_path, call, error, message):
    with pytest.raises(error, match=message):
        call(tmp_path)


# ---------------------------------------------------------------------------------------------
# Data sets: from_arrays, splits, loaders

def _arrays(n=12):
    rng = np.random.default_rng(0)
    return (rng.random((n, 8, 8)).astype(np.float32), np.arange(n) % 3,
            rng.random((6, 8, 8)).astype(np.float32), np.arange(6) % 3)


ARRAY_CASES = [
    (lambda a: (None, *a[1:]), r"x_train has dtype object"),
    (lambda a: ([[1, 2], [3]], *a[1:]), r"x_train could not be read as an array"),
    (lambda a: (a[0].astype(np.complex64), *a[1:]), r"x_train has dtype complex64; expected real-valued"),
    (lambda a: (a[0][:, :0], *a[1:]), r"x_train is empty \(shape \(12, 0, 8, 1\)\)"),
    (lambda a: (np.repeat(a[0][..., None], 2, axis=-1), *a[1:]), r"x_train has 2 channels"),
    (lambda a: (a[0] * 255, *a[1:]), r"x_train holds float values in .*pass scale=True"),
    (lambda a: (a[0] - 0.5, *a[1:]), r"x_train holds float values in \[-0.\d+"),
    (lambda a: (np.full_like(a[0], np.inf), *a[1:]), r"x_train contains 768 NaN or inf values"),
    (lambda a: ((a[0] * 255).astype(np.int32) + 300, *a[1:]), r"x_train is an integer array with values in"),
    (lambda a: (a[0], a[1], a[2], np.where(a[3] == 0, -3, a[3])), r"y_test holds label -3"),
    (lambda a: (a[0], a[1].astype(bool), *a[2:]), r"y_train has dtype bool"),
    (lambda a: (a[0], [[0, 1]] * 12, *a[2:]), r"y_train has shape \(12, 2\)"),
    (lambda a: (a[0], np.where(a[1] == 0, 5000, a[1]), *a[2:]), r"y_train holds label 5000; .* at most 1000 classes"),
    (lambda a: (a[0], a[1], a[2], np.full(6, np.nan)), r"y_test contains NaN or inf"),
]


@pytest.mark.parametrize("change, message", ARRAY_CASES)
def test_from_arrays_inputs(change, message):
    with pytest.raises(ValueError, match=message):
        cl.Dataset.from_arrays(*change(_arrays()))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"class_names": "abc"}, r"class_names is 'abc'; it must be a list"),
        ({"class_names": ["only"]}, r"class_names has 1 entries; a classifier needs from 2 to 1000"),
        ({"class_names": ["a", "b"]}, r"y_train holds label 2, out of range for 2 classes"),
        ({"require_all_classes": True, "class_names": ["a", "b", "c", "d"]},
         r"y_train has no image of class\(es\) \[3\]"),
    ],
)
def test_from_arrays_class_names(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cl.Dataset.from_arrays(*_arrays(), **kwargs)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda d: d.subset(train=-1), r"train is -1; it must be an integer >= 1"),
        (lambda d: d.subset(test="5"), r"test is '5'; it must be an integer >= 1"),
        (lambda d: d.subset(train=0), r"train is 0"),
        (lambda d: d.subset(validation=2.5), r"validation is 2.5"),
        (lambda d: d.subset(seed=-2), r"seed is -2; it must be an integer >= 0"),
        (lambda d: d.with_validation(0), r"fraction is 0; it must be a number strictly between 0 and 1"),
        (lambda d: d.with_validation(NAN), r"fraction is nan"),
        (lambda d: d.with_validation(0.5, seed="x"), r"seed is 'x'"),
        (lambda d: d.with_validation(0.9), r"cannot carve a stratified 0.9 validation split from 12 training images"),
    ],
)
def test_split_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call(cl.Dataset.from_arrays(*_arrays()))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "imagenet"}, r"unknown data set 'imagenet'"),
        ({"name": 5}, r"unknown data set 5"),
        ({"name": None}, r"unknown data set None"),
        ({"name": "digits", "test_fraction": "a"}, r"test_fraction is 'a'"),
        ({"name": "digits", "test_fraction": 1}, r"test_fraction is 1"),
        ({"name": "digits", "seed": "a"}, r"seed is 'a'"),
        ({"name": "digits", "validation": -0.2}, r"validation is -0.2"),
        ({"name": "digits", "data_dir": "/tmp"}, r"data_dir does not apply"),
        ({"name": "mnist", "data_dir": 5}, r"data_dir is 5; it must be a folder path"),
        ({"name": "mnist", "data_dir": "/no/such/folder"}, r"data_dir '/no/such/folder' is not a folder"),
    ],
)
def test_load_dataset_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cl.load_dataset(**kwargs)


def _idx(array, magic=None):
    header = magic or struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _mnist_folder(folder, replace=None):
    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (20, 28, 28))),
        "train-labels-idx1-ubyte.gz": _idx(np.arange(20) % 10),
        "t10k-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (10, 28, 28))),
        "t10k-labels-idx1-ubyte.gz": _idx(np.arange(10)),
    }
    files.update(replace or {})
    for name, raw in files.items():
        (folder / name).write_bytes(gzip.compress(raw) if not name.endswith("!") else raw)


@pytest.mark.parametrize(
    "name, raw, message",
    [
        ("t10k-labels-idx1-ubyte.gz", b"", r"t10k-labels-idx1-ubyte.gz is 0 bytes long"),
        ("t10k-labels-idx1-ubyte.gz", b"\x00\x00\x0d\x01" + b"\x00" * 20, r"does not start with an IDX header"),
        ("t10k-labels-idx1-ubyte.gz", b"\x00\x00\x08\x09" + b"\x00" * 40, r"magic 00000809"),
        ("t10k-labels-idx1-ubyte.gz", struct.pack(">HBB", 0, 8, 2) + b"\x00\x00\x00",
         r"t10k-labels-idx1-ubyte.gz: its IDX header is cut short"),
        ("t10k-labels-idx1-ubyte.gz", _idx(np.arange(10)) + b"extra", r"holds more; the file is truncated or corrupt"),
        ("train-labels-idx1-ubyte.gz", _idx(np.arange(7)), r"20 train images but 7 labels"),
        ("train-labels-idx1-ubyte.gz", _idx(np.arange(20) % 10 + 250), r"out of range for 10 classes"),
    ],
)
def test_crafted_idx_files(tmp_path, name, raw, message):
    _mnist_folder(tmp_path, {name: raw})
    with pytest.raises(ValueError, match=message):
        cl.load_dataset("mnist", data_dir=tmp_path)


def test_gzip_that_is_not_gzip_names_the_file(tmp_path):
    _mnist_folder(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"x" * 100)[:-8] + b"garbage!")
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.gz (could not be read|is \d+ bytes|does not start)"):
        cl.load_dataset("mnist", data_dir=tmp_path)


@pytest.mark.parametrize(
    "payload, message",
    [
        (lambda: pickle.dumps({b"data": np.zeros((2, 3072), np.float64), b"labels": [0, 1]}),
         r"data_batch_1 lacks a uint8 b'data' array"),
        (lambda: pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}),
         r"data_batch_1 lacks a b'labels' list with one label per image"),
        (lambda: pickle.dumps([1, 2, 3]), r"data_batch_1 lacks a uint8 b'data' array"),
        (lambda: pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 99999]}),
         r"data_batch_1 labels holds label 99999"),
        (lambda: pickle.dumps({b"data": np.array([print], dtype=object), b"labels": [0]}),
         r"data_batch_1 refers to builtins.print, which a CIFAR-10 batch never does"),
        (lambda: pickle.dumps(__import__("collections").OrderedDict()),
         r"data_batch_1 refers to collections.OrderedDict"),
        (lambda: b"not a pickle at all", r"data_batch_1 is not a readable CIFAR-10 batch"),
    ],
)
def test_crafted_cifar_batches(tmp_path, payload, message):
    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    (batches / "data_batch_1").write_bytes(payload())
    with pytest.raises(ValueError, match=message):
        cl.load_dataset("cifar10", data_dir=tmp_path)


def test_cifar_folder_missing_a_batch_names_it(tmp_path):
    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    (batches / "data_batch_1").write_bytes(
        pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ValueError, match=r"data_batch_2 is missing; cifar-10-batches-py holds data_batch_1..5"):
        cl.load_dataset("cifar10", data_dir=tmp_path)


# ---------------------------------------------------------------------------------------------
# File writing

@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda tmp: _io.atomic_write(tmp, "x"), IsADirectoryError, r"is a folder; give the path of a file"),
        (lambda tmp: (tmp.joinpath("f").write_text("x"), _io.atomic_write(tmp / "f" / "r.html", "x")),
         NotADirectoryError, r"cannot write .*f/r.html: a part of .*f is a file"),
        (lambda tmp: _io.atomic_write(None, "x"), TypeError, r"a file path must be a str or Path, got NoneType"),
        (lambda tmp: _io.atomic_write(tmp / "a", {"a": 1}), TypeError, r"bytes or str, got dict"),
        (lambda tmp: _io.atomic_write_many({tmp / "a": "1", tmp / "b": None}), TypeError, r"bytes or str, got NoneType"),
        (lambda tmp: _io.atomic_write_many({tmp / "a": "1", str(tmp / "a"): "2"}), ValueError,
         r"got the same file twice"),
    ],
)
def test_file_writing(tmp_path, call, error, message):
    with pytest.raises(error, match=message):
        call(tmp_path)
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")]

