"""How compresslab/codec/header_v2.zdict was made: the preset zlib dictionary of .cldc format version 2.

A .cldc header is the model's architecture (tf_keras JSON) and a table of its tensors. Most of that
text (layer class names, default configs, initializer and regularizer fields, tensor-table keys) is the
same in every file, and zlib alone cannot exploit that in a header of a few kilobytes. Version 2
compresses the header with a preset dictionary holding that common text: two small models that use the
common CNN layers, and the tensor table one of them gets. On the six corpus CNNs of
bench/bench_models.py the header shrinks from 890-1,442 bytes to 300-652.

The dictionary is part of the format: every version-2 file needs these exact bytes to be read, so the
committed file never changes (fileformat.py pins its SHA-256). A different dictionary means a new format
version, with this one still read. Run this script only to see how the file was built:

    python scripts/header_dictionary.py OUT      # writes the dictionary to OUT (compare with the committed one)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def _compact(text: str) -> str:
    return json.dumps(json.loads(text), separators=(",", ":"))


def build() -> bytes:
    from compresslab._keras import keras
    from compresslab.codec import fileformat

    keras.backend.clear_session()  # the same auto-generated layer names on every run
    keras.utils.set_random_seed(0)
    layers = keras.layers
    inputs = keras.Input((28, 28, 1))
    x = layers.Conv2D(8, 3, activation="relu", padding="same")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    y = layers.DepthwiseConv2D(3, padding="same")(x)
    y = layers.SeparableConv2D(8, 3, padding="same")(y)
    x = layers.Add()([x, y])
    x = layers.MaxPooling2D(2)(x)
    x = layers.AveragePooling2D(2)(x)
    x = layers.Conv2D(8, 3, use_bias=False)(x)
    pooled = layers.GlobalAveragePooling2D()(x)
    flat = layers.Flatten()(x)
    x = layers.Concatenate()([pooled, flat])
    x = layers.Dense(16, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    x = layers.ReLU()(x)
    functional = keras.Model(inputs, layers.Dense(10, activation="softmax")(x), name="model")
    sequential = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(4, 3, activation="relu"),
                                   layers.MaxPooling2D(2), layers.Flatten(),
                                   layers.Dense(10, activation="softmax")])
    # A pruned, shared copy of the functional model gives a tensor table with every storage kind.
    arrays = []
    for values in functional.get_weights():
        if values.ndim > 1:
            threshold = np.quantile(np.abs(values), 0.9)
            values = np.where(np.abs(values) >= threshold, np.round(values * 8) / 8, 0.0)
        arrays.append(values.astype(np.float32))
    functional.set_weights(arrays)
    table = fileformat.read_header(fileformat.encode(functional))["tensors"]
    table = [{key: value for key, value in entry.items() if key != "offset"} for entry in table]
    text = (_compact(functional.to_json()) + _compact(sequential.to_json())
            + json.dumps(table, separators=(",", ":")))
    return text.encode("utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    data = build()
    args.out.write_bytes(data)
    print(f"{len(data):,} bytes written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
