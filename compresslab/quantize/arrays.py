"""The numpy core of quantization: one array in, its codes, scales, zero points and dequantized values out.

Owns :class:`QuantizedArray`, :func:`quantize_array` (symmetric, asymmetric and fixed-point
formulas, per tensor or per channel) and the counting helpers :func:`distinct_values` and
:func:`bits_needed`. No Keras here: a notebook can show every step of the formula on a plain array.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .spec import QuantSpec

# ---------------------------------------------------------------------------------------------
# The numpy core


@dataclass
class QuantizedArray:
    """One tensor after quantization.

    Attributes:
        values: the dequantized float32 values (same shape as the input): what the model computes with.
        codes: the integer codes that would be stored (same shape), int32.
        scale: the step between levels, one per group (shape ``(groups,)``).
        zero_point: the code that represents 0.0, one per group (0 for symmetric and fixed point).
        bits: the bit width.
        groups: 1 for per-tensor, the number of channels for per-channel.
        scheme: the scheme that made it.
    """

    values: np.ndarray
    codes: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    bits: int
    groups: int
    scheme: str = "symmetric"

    def grid_codes(self) -> np.ndarray:
        """Every code the scheme allows at this bit width (used or not)."""
        bits = self.bits
        if self.scheme == "symmetric":
            if bits == 1:
                return np.array([-1, 1])
            top = 2 ** (bits - 1) - 1
            return np.arange(-top, top + 1)
        if self.scheme == "asymmetric":
            return np.arange(0, 2 ** bits)
        return np.arange(-(2 ** (bits - 1)), 2 ** (bits - 1))

    def levels(self, group: int = 0) -> np.ndarray:
        """The real values group ``group``'s codes stand for: the quantization grid ``s * (q - z)``."""
        codes = self.grid_codes().astype(np.float64)
        return ((codes - self.zero_point[group]) * self.scale[group]).astype(np.float32)


def quantize_array(values, bits: int, scheme: str = "symmetric", granularity: str = "per_tensor", *,
                   fractional_bits: int | None = None, channel_axes: tuple[int, ...] = (-1,)) -> QuantizedArray:
    """Quantize then dequantize one array with numpy.

    * symmetric, bits >= 2: ``s = max|x| / (2^(b-1) - 1)``, ``q = clip(round(x / s), -(2^(b-1)-1), 2^(b-1)-1)``,
      ``x_hat = s * q``. Zero is exact; ``2^b - 1`` levels (TFLite's "narrow range" for int8 weights).
    * symmetric, bits == 1: the sign with one scale, ``x_hat = s * sign(x)``, ``s = mean|x|``
      (the scale that minimises the squared error, as in XNOR-Net): two levels.
    * asymmetric: the range ``[min(x_min, 0), max(x_max, 0)]`` is cut into ``2^b - 1`` steps,
      ``s = (max - min) / (2^b - 1)``, zero point ``z = round(-min / s)``,
      ``q = clip(round(x / s) + z, 0, 2^b - 1)``, ``x_hat = s * (q - z)``.
    * fixed_point: ``q = clip(round(x * 2^p), -2^(b-1), 2^(b-1) - 1)``, ``x_hat = q / 2^p``.

    Per-channel quantization computes one scale (and zero point) per slice along
    ``channel_axes`` (several axes are taken together as one channel index). Each group then
    has at most ``2^bits`` distinct values, and so does the whole tensor's set of codes.

    Args:
        values: the float array.
        bits: 1 to 16.
        scheme: ``"symmetric"``, ``"asymmetric"`` or ``"fixed_point"``.
        granularity: ``"per_tensor"`` or ``"per_channel"``.
        fractional_bits: p for ``fixed_point``.
        channel_axes: the channel axes for per-channel (default: the last axis).

    Returns:
        A :class:`QuantizedArray`.

    Example:
        >>> quantize_array(np.array([-1.0, 0.1, 0.5]), bits=2).values
        array([-1.,  0.,  1.], dtype=float32)
    """
    array = np.asarray(values, dtype=np.float32)
    spec = QuantSpec(bits=bits, scheme=scheme, granularity=granularity, fractional_bits=fractional_bits)
    if spec.granularity == "per_channel" and array.ndim > 0:
        axes = tuple(sorted(axis % array.ndim for axis in channel_axes))
        others = [axis for axis in range(array.ndim) if axis not in axes]
        moved = np.transpose(array, others + list(axes))
        groups = int(np.prod([array.shape[axis] for axis in axes]))
        flat = moved.reshape(-1, groups)
    else:
        axes, others, moved = (), list(range(array.ndim)), array
        groups = 1
        flat = array.reshape(-1, 1)
    codes, scale, zero_point = _quantize_columns(flat.astype(np.float64), spec)
    codes = codes + 0.0  # round() gives -0.0 for small negatives; show them as 0
    dequantized = ((codes - zero_point) * scale).astype(np.float32)
    # Undo the reshape and transpose: back to the caller's layout.
    if axes:
        order = others + list(axes)
        inverse = np.argsort(order)
        dequantized = np.transpose(dequantized.reshape(moved.shape), inverse)
        codes = np.transpose(codes.reshape(moved.shape), inverse)
    else:
        dequantized = dequantized.reshape(array.shape)
        codes = codes.reshape(array.shape)
    return QuantizedArray(values=dequantized, codes=codes.astype(np.int32), scale=scale.ravel(),
                          zero_point=zero_point.ravel().astype(np.int32), bits=int(bits), groups=groups,
                          scheme=spec.scheme)


def _quantize_columns(flat: np.ndarray, spec: QuantSpec):
    """Quantize each column of ``flat`` (rows = elements, columns = groups)."""
    bits = spec.bits
    columns = flat.shape[1]
    if spec.scheme == "fixed_point":
        scale = np.full((1, columns), 2.0 ** -spec.fractional_bits)
        codes = np.clip(np.round(flat / scale), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        return codes, scale, np.zeros((1, columns))
    if spec.scheme == "symmetric":
        if bits == 1:
            scale = np.abs(flat).mean(axis=0, keepdims=True)
            scale = np.where(scale > 0, scale, 1.0)
            codes = np.where(flat >= 0, 1.0, -1.0)
            return codes, scale, np.zeros((1, columns))
        top = 2 ** (bits - 1) - 1
        scale = np.abs(flat).max(axis=0, keepdims=True) / top
        scale = np.where(scale > 0, scale, 1.0)
        codes = np.clip(np.round(flat / scale), -top, top)
        return codes, scale, np.zeros((1, columns))
    # asymmetric: the range always contains 0 so that zero (padding, pruned weights) stays exact.
    steps = 2 ** bits - 1
    low = np.minimum(flat.min(axis=0, keepdims=True), 0.0)
    high = np.maximum(flat.max(axis=0, keepdims=True), 0.0)
    scale = (high - low) / steps
    scale = np.where(scale > 0, scale, 1.0)
    zero_point = np.clip(np.round(-low / scale), 0, steps)
    codes = np.clip(np.round(flat / scale) + zero_point, 0, steps)
    return codes, scale, zero_point



def distinct_values(values) -> int:
    """How many distinct values an array holds (what quantization and clustering bound)."""
    return int(np.unique(np.asarray(values)).size)


def bits_needed(count: int) -> int:
    """Bits needed to index ``count`` distinct values (``ceil(log2(count))``, at least 1)."""
    return max(1, math.ceil(math.log2(max(1, count))))
