"""Which layer types each technique acts on, measured rather than declared: the README's support table.

:func:`support_table` builds one tiny tf_keras model per layer type (Input -> the layer -> Flatten ->
Dense), runs every technique on it and looks at what happened to that layer's kernels:

* ``"acts"``: its kernel changed the way the technique changes kernels;
* ``"skipped, warned"``: left as it was, and a warning named it (never silently);
* ``"refused"``: the technique raised an error naming the layer, before doing any work;
* ``"skipped, SILENT"``: left as it was with no warning (a defect this table exists to catch).

``python -m compresslab.support`` prints the table as Markdown.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._keras import keras
from .data import Dataset
from .layers import kernel_variables

LAYER_TYPES = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose", "Dense", "BatchNormalization")
TECHNIQUES = ("simulated quantization (4-bit)", "magnitude pruning (one-shot)", "pruning with tfmot (fine-tune)",
              "weight clustering (tfmot)", "quantization-aware training (tfmot)", "filter pruning",
              "sparse variational dropout")


def _layer(kind: str):
    return {
        "Conv2D": lambda: keras.layers.Conv2D(8, 3, name="under_test"),
        "DepthwiseConv2D": lambda: keras.layers.DepthwiseConv2D(3, depth_multiplier=8, name="under_test"),
        "SeparableConv2D": lambda: keras.layers.SeparableConv2D(8, 3, name="under_test"),
        "Conv2DTranspose": lambda: keras.layers.Conv2DTranspose(8, 3, strides=2, name="under_test"),
        "Dense": lambda: keras.layers.Dense(32, name="under_test"),
        "BatchNormalization": lambda: keras.layers.BatchNormalization(name="under_test"),
    }[kind]()


def probe_model(kind: str, input_shape=(28, 28, 1), classes: int = 10, seed: int = 0):
    """Input -> MaxPool 2 -> the layer under test (named ``under_test``) -> Flatten -> Dense (logits)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape)
    x = keras.layers.MaxPooling2D(2)(inputs)  # smaller maps keep the probes fast
    if kind == "Dense":
        x = keras.layers.Flatten()(x)
        x = _layer(kind)(x)
    else:
        x = keras.layers.Flatten()(_layer(kind)(x))
    outputs = keras.layers.Dense(classes, name="head")(x)
    return _compiled(keras.Model(inputs, outputs, name=f"probe_{kind}"))


def _compiled(model):
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def trained_probe(kind: str, data: Dataset):
    """A :func:`probe_model` of ``kind`` trained for one epoch on ``data`` (what every technique is probed on)."""
    model = probe_model(kind, data.input_shape, data.num_classes)
    model.fit(data.x_train, data.y_train, epochs=1, batch_size=64, verbose=0)
    return model


def _kernels(model, name="under_test") -> list[np.ndarray]:
    try:
        layer = model.get_layer(name)
    except ValueError:
        return []
    return [variable.numpy().copy() for _, variable in kernel_variables(layer)]


def _run(technique: str, model, data: Dataset):
    from . import cluster, prune, quantize, sparse_vd

    if technique == "simulated quantization (4-bit)":
        return quantize.simulate(model, quantize.QuantSpec(bits=4))
    if technique == "magnitude pruning (one-shot)":
        return prune.apply(model, prune.PruneSpec(sparsity=0.5))
    if technique == "pruning with tfmot (fine-tune)":
        return prune.finetune(model, data, final_sparsity=0.5, epochs=1)
    if technique == "weight clustering (tfmot)":
        return cluster.cluster_weights(model, cluster.ClusterSpec(clusters=4))
    if technique == "quantization-aware training (tfmot)":
        quantize.check_quantization_aware(model)
        return quantize.aware_training(model, data, epochs=1).float_model()
    if technique == "filter pruning":
        return prune.filter_pruning(model, data, 0.5, finetune_epochs=0)
    if technique == "sparse variational dropout":
        return sparse_vd.variational_dropout(model, data, epochs=1, kl_weight=1.0, threshold=-2.0)
    raise ValueError(f"unknown technique {technique!r}; known: {', '.join(TECHNIQUES)}")


def _acted(technique: str, before: list[np.ndarray], after: list[np.ndarray]) -> bool:
    if not before:
        return False
    if len(after) != len(before) or any(a.shape != b.shape for a, b in zip(after, before)):
        return True  # filter pruning changes shapes
    if technique == "magnitude pruning (one-shot)" or technique.startswith("pruning") or technique.startswith("sparse"):
        return any(np.mean(a == 0) > np.mean(b == 0) + 0.05 for a, b in zip(after, before))
    if technique.startswith("weight clustering"):
        return any(len(np.unique(a)) <= 4 < len(np.unique(b)) for a, b in zip(after, before))
    return any(not np.array_equal(a, b) for a, b in zip(after, before))


def probe(technique: str, kind: str, data: Dataset, trained=None) -> str:
    """What ``technique`` does to a layer of type ``kind`` (see the module docstring for the answers).

    ``trained``: the :func:`trained_probe` of ``kind`` on ``data`` when the caller already has it (the
    technique runs on a copy; it is never changed); by default one is trained here.
    """
    from .models import clone

    model = _compiled(clone(trained if trained is not None else trained_probe(kind, data)))
    before = _kernels(model)
    if not before:
        return "no kernel (left as is)"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = _run(technique, model, data)
        except (TypeError, ValueError) as error:
            return "refused" if "under_test" in str(error) or kind in str(error) else f"error: {error}"[:120]
    if _acted(technique, before, _kernels(result)):
        return "acts"
    named = any("under_test" in str(warning.message) for warning in caught)
    return "skipped, warned" if named else "skipped, SILENT"


def support_table(data: Dataset | None = None) -> dict[str, dict[str, str]]:
    """``{technique: {layer type: answer}}`` for every technique and layer type, measured on ``data``."""
    if data is None:
        from .data import load_dataset

        data = load_dataset("digits").subset(train=256, test=64, seed=0)
    trained = {kind: trained_probe(kind, data) for kind in LAYER_TYPES}  # one training per layer type
    return {technique: {kind: probe(technique, kind, data, trained[kind]) for kind in LAYER_TYPES}
            for technique in TECHNIQUES}


def markdown(table: dict[str, dict[str, str]]) -> str:
    """The table as Markdown: one row per technique, one column per layer type."""
    lines = ["| technique | " + " | ".join(LAYER_TYPES) + " |", "|---|" + "---|" * len(LAYER_TYPES)]
    lines += [f"| {technique} | " + " | ".join(row[kind] for kind in LAYER_TYPES) + " |"
              for technique, row in table.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(support_table()))
