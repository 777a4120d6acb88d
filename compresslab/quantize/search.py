"""Where the bits matter: one layer at a time, and bits per layer under an accuracy budget.

Owns :func:`layer_sensitivity` and :func:`mixed_precision` (with :class:`MixedPrecisionPlan`), both
measured with :class:`~compresslab.quantize.simulate.SimulationEvaluator`. Budgets and drops are in
percentage POINTS of accuracy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..data import Dataset
from ..models import (
    check_model_fits,
    compile_for_classification,
)
from ..sizes import packed_weight_bytes
from .simulate import (
    SimulationEvaluator,
    _chosen_layers,
    _with_weights,
)
from .spec import QuantSpec, _check_data, _check_model

# ---------------------------------------------------------------------------------------------
# Where the bits matter


def _bits_list(bits) -> list[int]:
    values = [bits] if isinstance(bits, (int, np.integer)) and not isinstance(bits, bool) else bits
    try:
        values = list(values)
    except TypeError:
        raise ValueError(f"bits is {bits!r}; give an integer from 1 to 16 or a list of them") from None
    if not values:
        raise ValueError("bits is empty; give an integer from 1 to 16 or a list of them")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= 16:
            raise ValueError(f"bits contains {value!r}; every bit width must be an integer from 1 to 16")
    return [int(v) for v in values]


def layer_sensitivity(model, data: Dataset, bits: int | Iterable[int] = 4, *, scheme: str = "symmetric",
                      granularity: str = "per_channel", fractional_bits: int | None = None):
    """Quantize one layer at a time (every other layer float) and measure each one's accuracy drop.

    Args:
        model: a tf_keras model (not modified).
        data: accuracy is measured on its held-out test split.
        bits: one bit width or a list of them (one row per layer and bit width).
        scheme, granularity, fractional_bits: as in :class:`QuantSpec`.

    Returns:
        A pandas DataFrame, one row per (layer, bits), in model order, with columns ``layer``,
        ``layer_type``, ``weights`` (kernel values quantized), ``bits``, ``scheme``,
        ``granularity``, ``float_accuracy``, ``accuracy`` (fractions in [0, 1]) and
        ``accuracy_drop_points`` (percentage points, positive = worse).

    Raises:
        ValueError: bad bits/scheme/granularity, a model with nothing to quantize or that does
            not fit the data.

    Example:
        >>> frame = layer_sensitivity(model, data, bits=[2, 4])
        >>> frame.sort_values("accuracy_drop_points", ascending=False).head()
    """
    import pandas as pd

    model = _check_model(model)
    _check_data(data)
    bit_widths = _bits_list(bits)
    for width in bit_widths:  # validates scheme/granularity/fractional_bits for every width up front
        QuantSpec(bits=width, scheme=scheme, granularity=granularity, fractional_bits=fractional_bits)
    check_model_fits(model, data)
    _chosen_layers(model, None)
    evaluator = SimulationEvaluator(model, data.x_test, data.y_test)
    rows = []
    for layer in evaluator.layers:
        weights = sum(v.size for (name, _), v in evaluator.float_values.items() if name == layer.name)
        for width in bit_widths:
            spec = QuantSpec(bits=width, scheme=scheme, granularity=granularity,
                             fractional_bits=fractional_bits, layers=(layer.name,))
            value = evaluator.accuracy_for(spec)
            rows.append({"layer": layer.name, "layer_type": type(layer).__name__, "weights": int(weights),
                         "bits": width, "scheme": scheme, "granularity": granularity,
                         "float_accuracy": evaluator.float_accuracy, "accuracy": value,
                         "accuracy_drop_points": 100.0 * (evaluator.float_accuracy - value)})
    return pd.DataFrame(rows)


@dataclass
class MixedPrecisionPlan:
    """Bits per layer proposed by :func:`mixed_precision`, and what they measured.

    Attributes:
        bits: layer name -> bits (None: the layer stays float32 because no candidate fitted).
        scheme, granularity: the quantizer used for every layer.
        max_accuracy_drop: the budget in percentage points (0.5: half a point of accuracy).
        search_split: the images the search measured on (``"validation"`` or ``"train"``, so
            the test split stays held out for the final figure; ``"test"`` only when asked).
        search_accuracy_drop_points: the drop on the search images.
        float_accuracy: float model's test accuracy.
        accuracy: the proposal's measured test accuracy.
        accuracy_drop_points: ``100 * (float_accuracy - accuracy)``.
        met: whether the measured test drop is within the budget.
        average_bits: kernel bits averaged over kernel values (float32 layers count 32).
        packed_bytes: ideal packed size of the model under the plan (see :func:`packed_weight_bytes`).
        evaluations: simulated accuracies computed during the search.
        model: the simulated model (a new Keras model).
    """

    bits: dict
    scheme: str
    granularity: str
    max_accuracy_drop: float
    search_split: str
    search_accuracy_drop_points: float
    float_accuracy: float
    accuracy: float
    accuracy_drop_points: float
    met: bool
    average_bits: float
    packed_bytes: float
    evaluations: int
    model: object = None

    def to_frame(self):
        """One row per layer: layer, bits."""
        import pandas as pd

        return pd.DataFrame([{"layer": k, "bits": v if v is not None else 32} for k, v in self.bits.items()])


def mixed_precision(model, data: Dataset, max_accuracy_drop: float = 0.5, *,
                    candidate_bits: Iterable[int] = (2, 3, 4, 5, 6, 8), scheme: str = "symmetric",
                    granularity: str = "per_channel", search_split: str | None = None,
                    search_images: int = 2000, seed: int = 0) -> MixedPrecisionPlan:
    """Propose bits per layer so the accuracy drop stays within ``max_accuracy_drop`` points.

    Greedy search: layers are visited from the most to the fewest weights (where bits save the
    most); each takes the lowest candidate bit width for which the whole model, with the choices
    made so far, stays within the budget on the search images. The proposal is then measured
    once on the held-out test split, and ``met`` says whether it is within budget there too.

    Args:
        model: a tf_keras model (not modified).
        data: the data set.
        max_accuracy_drop: the budget in percentage POINTS of accuracy, 0 to 100: 0.5 means half a
            point (99.0% -> 98.5% is allowed), NOT a fraction; a small value like 0.005 is
            accepted and means 0.005 points.
        candidate_bits: bit widths to try (1 to 16).
        scheme, granularity: the quantizer (as in :class:`QuantSpec`).
        search_split: where the search measures: ``"validation"`` (the data set's validation
            split, see ``Dataset.with_validation``; the default when it has one), ``"train"`` (a
            sample of ``search_images`` training images; the default otherwise) or ``"test"``
            (not for honest figures: the test split then both chooses and reports).
        search_images: size of the sample (of the validation or training split).
        seed: picks the sample.

    Returns:
        A :class:`MixedPrecisionPlan`.

    Raises:
        ValueError: a budget outside [0, 100], bad candidate bits, scheme or granularity.

    Example:
        >>> plan = mixed_precision(model, data, max_accuracy_drop=0.5)
        >>> plan.bits, plan.accuracy_drop_points, plan.met
    """
    model = _check_model(model)
    _check_data(data)
    if isinstance(max_accuracy_drop, bool) or not isinstance(max_accuracy_drop, (int, float)) \
            or not 0 <= max_accuracy_drop <= 100:
        raise ValueError(f"max_accuracy_drop is {max_accuracy_drop!r}; it must be a number of percentage "
                         "POINTS of accuracy from 0 to 100 (0.5 means half a point; 0.005 means 0.005 "
                         "points, not half a percent)")
    candidates = sorted(set(_bits_list(candidate_bits)))
    for width in candidates:
        QuantSpec(bits=width, scheme=scheme, granularity=granularity)
    if search_split is None:
        search_split = "validation" if len(data.x_val) else "train"
    if search_split not in ("validation", "train", "test"):
        raise ValueError(f"search_split is {search_split!r}; choose 'validation', 'train' or 'test'")
    if search_split == "validation" and not len(data.x_val):
        raise ValueError(f"search_split is 'validation' but {data.name} has no validation split; carve one with "
                         "data.with_validation(0.1) or cl.load_dataset(..., validation=0.1)")
    check_model_fits(model, data)
    _chosen_layers(model, None)
    if search_split in ("train", "validation"):
        x, y = (data.x_train, data.y_train) if search_split == "train" else (data.x_val, data.y_val)
        rng = np.random.default_rng(seed)
        index = np.sort(rng.choice(len(x), size=min(int(search_images), len(x)), replace=False))
        search = SimulationEvaluator(model, x[index], y[index])
    else:
        search = SimulationEvaluator(model, data.x_test, data.y_test)
    cache: dict[tuple[str, int], dict] = {}

    def arrays_for(layer: str, width: int) -> dict:
        if (layer, width) not in cache:
            cache[(layer, width)] = search.quantize(QuantSpec(bits=width, scheme=scheme, granularity=granularity,
                                                              layers=(layer,)))
        return cache[(layer, width)]

    sizes = {layer.name: sum(v.size for (n, _), v in search.float_values.items() if n == layer.name)
             for layer in search.layers}
    order = sorted(sizes, key=lambda name: -sizes[name])
    chosen: dict[str, int | None] = {name: None for name in search.layer_names}
    evaluations = 0
    search_drop = 0.0
    for name in order:
        for width in candidates:
            trial = {**chosen, name: width}
            arrays = {}
            for layer_name, layer_bits in trial.items():
                if layer_bits is not None:
                    arrays.update(arrays_for(layer_name, layer_bits))
            value = search.accuracy(arrays)
            evaluations += 1
            drop = 100.0 * (search.float_accuracy - value)
            if drop <= max_accuracy_drop:
                chosen[name] = width
                search_drop = drop
                break
    final_arrays = {}
    for layer_name, layer_bits in chosen.items():
        if layer_bits is not None:
            final_arrays.update(arrays_for(layer_name, layer_bits))
    result_model = _with_weights(model, final_arrays)
    compile_for_classification(result_model)
    from ..models import accuracy as keras_accuracy

    float_accuracy = keras_accuracy(model, data)
    value = keras_accuracy(result_model, data)
    total_values = sum(sizes.values())
    average = sum(sizes[n] * (b if b is not None else 32) for n, b in chosen.items()) / max(1, total_values)
    drop = 100.0 * (float_accuracy - value)
    return MixedPrecisionPlan(
        bits=chosen, scheme=scheme, granularity=granularity, max_accuracy_drop=float(max_accuracy_drop),
        search_split=search_split, search_accuracy_drop_points=search_drop, float_accuracy=float_accuracy,
        accuracy=value, accuracy_drop_points=drop, met=drop <= max_accuracy_drop + 1e-9,
        average_bits=float(average), packed_bytes=packed_weight_bytes(model, final_arrays),
        evaluations=evaluations, model=result_model)
