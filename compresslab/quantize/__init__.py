"""Quantization: how few bits can a weight have, and what does it buy on disk and in speed?

Four ways in, from the textbook formula to a deployable int8 file:

* simulate the bit width: :class:`QuantSpec` + :func:`simulate` fake-quantize the weights
  (quantize, then dequantize) in numpy and return a NEW Keras model, so any bit width from 1 to
  16 can be tried in a second;
* post-training quantization: :func:`post_training` converts to TFLite (``"dynamic"``,
  ``"float16"`` or full-integer ``"int8"``), measured by running LiteRT;
* quantization-aware training: :func:`aware_training` fine-tunes with tfmot's fake-quant
  wrappers, then converts to an int8 TFLite file;
* where the bits matter: :func:`layer_sensitivity` (one layer at a time) and
  :func:`mixed_precision` (bits per layer under an accuracy budget).

The numpy core, :func:`quantize_array`, returns the integer codes, the scale(s) and the zero
point(s) as well as the dequantized values, so a notebook can show every step of the formula.

The package: :mod:`.spec` (QuantSpec), :mod:`.arrays` (the numpy formulas), :mod:`.simulate`
(simulate, SimulationEvaluator), :mod:`.ptq`, :mod:`.qat` and :mod:`.search`; every public name
is re-exported here, grouped by what you want to do.

Example:
    >>> spec = QuantSpec(bits=4, scheme="symmetric", granularity="per_channel")
    >>> quantized = simulate(model, spec)
    >>> cl.models.accuracy(quantized, data)
"""

from __future__ import annotations

# ruff: noqa: I001  (the groups below follow what a user wants to do, not the alphabet)

# Say how to quantize
from .spec import GRANULARITIES, PTQ_MODES, SCHEMES, QuantSpec

# The formulas, on one array
from .arrays import QuantizedArray, bits_needed, distinct_values, quantize_array

# Simulate bit widths on a model (and measure them live)
from .simulate import (
    KERNEL_ATTRIBUTES,
    FakeQuantActivation,
    SimulationEvaluator,
    channel_axes,
    has_quantizable_weights,
    quantizable_weights,
    quantize_weights,
    simulate,
)

# Deploy: post-training quantization and quantization-aware training to TFLite
from .ptq import post_training
from .qat import AwareTrainingResult, aware_training, check_quantization_aware

# Where the bits matter
from .search import MixedPrecisionPlan, layer_sensitivity, mixed_precision

# Sizes (they live in compresslab.sizes)
from ..sizes import packed_weight_bytes

__all__ = [
    "QuantSpec", "SCHEMES", "GRANULARITIES", "PTQ_MODES", "QuantizedArray", "quantize_array",
    "quantize_weights", "quantizable_weights", "has_quantizable_weights", "channel_axes", "simulate",
    "FakeQuantActivation", "SimulationEvaluator", "packed_weight_bytes", "post_training",
    "AwareTrainingResult", "check_quantization_aware", "aware_training", "layer_sensitivity",
    "MixedPrecisionPlan", "mixed_precision", "distinct_values", "bits_needed", "KERNEL_ATTRIBUTES",
]
