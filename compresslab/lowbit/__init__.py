"""Low-bit files a phone could run: 8-, 4- and 2-bit TFLite through ai-edge-quantizer, read back layer by layer.

tfmot deploys 8 bits only; compresslab's bit slider simulates any width. This package writes real
low-bit files with Google's ai-edge-quantizer and measures them in LiteRT like every other file:

* say how: :class:`LowBitSpec` (mode, per-channel or blockwise, layers kept at 8 bits or float);
* write: :func:`post_training_lowbit` (a :class:`~compresslab.tflite.TFLiteArtifact`), and
  :func:`plan_to_lowbit` to write a :func:`compresslab.quantize.mixed_precision` plan as a file;
* look inside: :func:`file_weights` reads every weight back from a file, dequantized, with the
  Keras layer it came from; :func:`layer_errors` compares a variant with its float original
  layer by layer (weight error and output error), the data of the "which layer broke" chart;
* compare: :func:`keras3_quantize_rows` measures Keras 3's own ``model.quantize`` on a Keras 3
  copy of the same model, with the share of weights it leaves float.

The package: :mod:`.spec`, :mod:`.files`, :mod:`.fileweights`, :mod:`.errors`, :mod:`.keras3`.

Example:
    >>> artifact = cl.lowbit.post_training_lowbit(model, data, cl.lowbit.LowBitSpec("int4_weight_only"))
    >>> cl.measure(artifact, data, name="int4 file", technique="quantize")
"""

from __future__ import annotations

from .errors import layer_errors
from .files import build_recipe, plan_to_lowbit, post_training_lowbit
from .fileweights import FileWeight, file_weights
from .keras3 import keras3_quantize_rows
from .spec import BLOCK_SIZES, BLOCKWISE_MODES, GRANULARITIES, MODES, LowBitSpec

__all__ = ["LowBitSpec", "MODES", "GRANULARITIES", "BLOCK_SIZES", "BLOCKWISE_MODES", "post_training_lowbit",
           "plan_to_lowbit", "build_recipe", "FileWeight", "file_weights", "layer_errors", "keras3_quantize_rows"]
