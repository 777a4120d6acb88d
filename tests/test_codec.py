"""compresslab's compressed model format: Huffman coding, gap coding, round trips and corrupt files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import compresslab as cl
from compresslab import codec


def _prune_and_share(model, sparsity=0.9, clusters=16):
    """A numpy stand-in for prune + cluster: zero the smallest weights, snap the rest to a linear codebook."""
    arrays = []
    for values in model.get_weights():
        if values.ndim > 1:
            threshold = np.quantile(np.abs(values), sparsity)
            values = np.where(np.abs(values) > threshold, values, 0.0)
            nonzero = values[values != 0]
            centroids = np.linspace(nonzero.min(), nonzero.max(), clusters)
            values[values != 0] = centroids[np.abs(nonzero[:, None] - centroids[None]).argmin(1)]
        arrays.append(values.astype(np.float32))
    copy = cl.models.clone(model)
    copy.set_weights(arrays)
    return copy


@pytest.fixture(scope="module")
def shared_model(trained_seed_cnn):
    return _prune_and_share(trained_seed_cnn)


def test_huffman_round_trip_and_optimal_lengths():
    rng = np.random.default_rng(0)
    symbols = rng.choice(6, size=5000, p=[0.5, 0.2, 0.1, 0.1, 0.05, 0.05])
    stream, bits, lengths = codec.huffman_encode(symbols, 8)
    assert np.array_equal(codec.huffman_decode(stream, len(symbols), lengths, bits), symbols)
    assert lengths[0] == 1 and lengths[6] == lengths[7] == 0  # the commonest gets one bit, unused none
    # Huffman is within one bit per symbol of the entropy.
    counts = np.bincount(symbols)
    entropy = -(counts * np.log2(counts / counts.sum())).sum()
    assert entropy <= bits < entropy + len(symbols)
    assert codec.huffman_code_lengths([5, 1, 1, 0]).tolist() == [1, 2, 2, 0]


def test_huffman_lengths_are_limited():
    frequencies = [2 ** i for i in range(30)]  # a Fibonacci-like skew that wants 29-bit codes
    lengths = codec.huffman_code_lengths(frequencies, max_length=16)
    assert lengths.max() <= 16
    assert sum(2.0 ** -length for length in lengths) <= 1.0
    symbols = np.repeat(np.arange(30), 3)
    stream, bits, lengths = codec.huffman_encode(symbols, 30)
    assert np.array_equal(codec.huffman_decode(stream, len(symbols), lengths, bits), symbols)


def test_gap_coding_inserts_fillers_like_the_paper():
    positions = np.array([1, 3, 20])
    symbols = codec.gap_symbols(positions, gap_bits=3)  # filler = 7 zeros skipped, no weight
    assert symbols.tolist() == [1, 1, 7, 7, 2]
    assert codec.positions_from_gaps(symbols, 3).tolist() == positions.tolist()


def test_round_trip_is_exact_and_accuracy_equal(shared_model, digits):
    blob = codec.encode(shared_model)
    restored = codec.decode(blob)
    for original, decoded in zip(shared_model.get_weights(), restored.get_weights()):
        assert np.array_equal(original, decoded)
    assert cl.models.accuracy(restored, digits) == cl.models.accuracy(shared_model, digits)
    assert [layer.name for layer in restored.layers] == [layer.name for layer in shared_model.layers]


def test_compressed_size_counts_every_byte_and_beats_dense(shared_model):
    blob = codec.encode(shared_model)
    breakdown = codec.size_breakdown(blob)
    assert breakdown["file_bytes"] == len(blob)
    assert breakdown["header_bytes"] + sum(t["bytes"] for t in breakdown["tensors"]) == len(blob)
    dense = 4 * shared_model.count_params()
    assert dense / len(blob) > 25  # 90% sparse, 16 shared values: far below float32
    by_name = {t["name"]: t for t in breakdown["tensors"]}
    assert by_name["dense1/kernel:0"]["encoding"] == "coded"
    assert by_name["dense1/kernel:0"]["positions"] == "gaps"  # gaps beat a bitmask at 90% sparsity
    assert by_name["dense1/kernel:0"]["codebook"] <= 16
    assert by_name["logits/bias:0"]["encoding"] == "raw"  # a small dense tensor stays float32


def test_dense_unclustered_model_is_stored_raw_and_exactly(trained_student):
    blob = codec.encode(trained_student)
    restored = codec.decode(blob)
    assert all(np.array_equal(a, b) for a, b in zip(trained_student.get_weights(), restored.get_weights()))
    tensors = codec.size_breakdown(blob)["tensors"]
    # No tensor is stored bigger than its float32 bytes (a few dead units' zero biases may go sparse).
    assert all(t["bytes"] <= 4 * t["params"] for t in tensors)
    kernels = [t for t in tensors if t["name"].endswith("kernel:0")]
    assert all(t["encoding"] == "raw" for t in kernels)
    # Raw storage costs the float32 bytes plus a small header, never more than a few kB.
    assert len(blob) - 4 * trained_student.count_params() < 4000


def test_pruned_but_not_clustered_is_stored_sparse(trained_seed_cnn):
    model = cl.prune.to_sparsity(trained_seed_cnn, 0.9)
    blob = codec.encode(model)
    by_name = {t["name"]: t for t in codec.size_breakdown(blob)["tensors"]}
    assert by_name["dense1/kernel:0"]["encoding"] == "sparse"
    # 10% of the values at 4 bytes each, plus a few bits per position.
    assert 4 * 20480 < by_name["dense1/kernel:0"]["bytes"] < 4 * 20480 * 1.25
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), codec.decode(blob).get_weights()))


def test_bitmask_chosen_when_dense(trained_student):
    arrays = []
    for values in trained_student.get_weights():
        if values.ndim > 1:  # 4 shared values, no zeros: a bitmask (or a gap per weight) is needed
            values = np.sign(values) * 0.1 + (values > 0) * 0.05
        arrays.append(values.astype(np.float32))
    model = cl.models.clone(trained_student)
    model.set_weights(arrays)
    blob = codec.encode(model)
    assert any(t.get("positions") in ("mask", "gaps") for t in codec.size_breakdown(blob)["tensors"])
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), codec.decode(blob).get_weights()))


def test_write_and_read_files_atomically(shared_model, tmp_path):
    path = codec.write(shared_model, tmp_path / "sub" / "model.cldc")
    assert path.exists() and not list(path.parent.glob("*.part"))
    restored = codec.read(path)
    assert all(np.array_equal(a, b) for a, b in zip(shared_model.get_weights(), restored.get_weights()))


def test_encode_does_not_modify_the_model(shared_model):
    before = [w.copy() for w in shared_model.get_weights()]
    codec.encode(shared_model)
    assert all(np.array_equal(a, b) for a, b in zip(before, shared_model.get_weights()))


def test_corrupt_and_truncated_files_raise_clear_errors(shared_model, tmp_path):
    blob = codec.encode(shared_model)
    with pytest.raises(ValueError, match="checksum"):
        codec.decode(blob[:-100])
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0xFF
    with pytest.raises(ValueError, match="checksum"):
        codec.decode(bytes(flipped))
    with pytest.raises(ValueError, match="CLDC"):
        codec.decode(b"PK\x03\x04 not ours")
    with pytest.raises(ValueError, match="bytes"):
        codec.decode("a string")
    with pytest.raises(ValueError, match="does not exist"):
        codec.read(tmp_path / "missing.cldc")
    empty = tmp_path / "empty.cldc"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.cldc"):
        codec.read(empty)
    # The one model error every entry point gives (a ValueError too, as before).
    with pytest.raises(ValueError, match=r"model must be a Keras classifier .*; got str \(builtins\): to use a "
                                         r"model file, load it with cl.load_model"):
        codec.encode("not a model")


# ---------------------------------------------------------------------------------------------
# Format versions: version 2 (a preset dictionary for the header) is written, version 1 still read

DATA = Path(__file__).parent / "data"


def _format_fixture_model():
    """The model tests/data/format_v1.cldc was written from (by compresslab 0.2.0-dev's version-1 encoder)."""
    from compresslab._keras import keras

    layers = keras.layers
    inputs = keras.Input((8, 8, 1))
    x = layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.Flatten(name="flat")(x)
    model = keras.Model(inputs, layers.Dense(3, name="logits")(x), name="format_fixture")
    rng = np.random.default_rng(7)
    arrays = []
    for weight in model.get_weights():
        values = rng.normal(size=weight.shape).astype(np.float32)
        if values.ndim > 1:  # pruned and shared: a handful of values, most weights zero
            values = np.where(np.abs(values) > 1.0, np.round(values * 2) / 2, 0.0).astype(np.float32)
        arrays.append(values)
    model.set_weights(arrays)
    return model


def test_version_1_files_are_still_read_exactly():
    blob = (DATA / "format_v1.cldc").read_bytes()
    assert blob[4] == 1
    model = _format_fixture_model()
    restored = codec.decode(blob)
    # Layer names as stored (the input layer's is Keras's auto-generated one of that session).
    assert [layer.name for layer in restored.layers[1:]] == ["conv", "bn", "flat", "logits"]
    for original, decoded in zip(model.get_weights(), restored.get_weights()):
        assert np.array_equal(original, decoded)
    assert codec.size_breakdown(blob)["header_bytes"] + sum(
        t["bytes"] for t in codec.size_breakdown(blob)["tensors"]) == len(blob)


def test_version_2_is_written_with_the_same_payload_and_a_smaller_header():
    old = (DATA / "format_v1.cldc").read_bytes()
    new = codec.encode(_format_fixture_model())
    assert new[4] == codec.VERSION == 2
    old_parts, new_parts = codec.size_breakdown(old), codec.size_breakdown(new)
    # The tensors are stored byte for byte as before; only the header changed.
    assert [(t["name"], t["encoding"], t["bytes"]) for t in old_parts["tensors"]] == [
        (t["name"], t["encoding"], t["bytes"]) for t in new_parts["tensors"]]
    assert old[old_parts["header_bytes"] - 4: -4] == new[new_parts["header_bytes"] - 4: -4]
    assert new_parts["header_bytes"] < 0.6 * old_parts["header_bytes"]
    # Offsets are not stored in version 2; reading gives them back as version 1 had them.
    assert [t["offset"] for t in codec.read_header(new)["tensors"]] == [
        t["offset"] for t in codec.read_header(old)["tensors"]]
    for a, b in zip(codec.decode(old).get_weights(), codec.decode(new).get_weights()):
        assert np.array_equal(a, b)


def test_a_newer_format_version_is_refused_naming_the_readable_ones(shared_model):
    import struct
    import zlib

    blob = bytearray(codec.encode(shared_model)[:-4])
    blob[4] = 3
    blob = bytes(blob) + struct.pack("<I", zlib.crc32(bytes(blob)))
    with pytest.raises(ValueError, match=r"version 3 is not supported \(this compresslab reads versions 1, 2\)"):
        codec.decode(blob)


def test_the_header_dictionary_is_pinned(tmp_path, monkeypatch):
    from compresslab.codec import fileformat

    committed = fileformat.header_dictionary()
    import hashlib

    assert hashlib.sha256(committed).hexdigest() == fileformat._DICTIONARY_SHA256
    altered = tmp_path / "header_v2.zdict"
    altered.write_bytes(committed.replace(b"Conv2D", b"Conv3D", 1))
    monkeypatch.setattr(fileformat, "_DICTIONARY", altered)
    fileformat.header_dictionary.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="SHA-256 differs"):
            codec.encode(_format_fixture_model())
    finally:
        monkeypatch.undo()
        fileformat.header_dictionary.cache_clear()
    assert fileformat.header_dictionary() == committed


def test_the_dictionary_script_rebuilds_the_committed_bytes(tmp_path):
    import subprocess
    import sys

    from compresslab.codec import fileformat

    script = Path(__file__).parents[1] / "scripts" / "header_dictionary.py"
    # In its own process: the script clears the Keras session to get the same layer names every time.
    subprocess.run([sys.executable, str(script), str(tmp_path / "built.zdict")], check=True, capture_output=True)
    assert (tmp_path / "built.zdict").read_bytes() == fileformat.header_dictionary()
