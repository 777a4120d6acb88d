"""How to write a low-bit TFLite file: :class:`LowBitSpec`, its modes, and the checks run before any work.

The modes are the recipes of Google's ai-edge-quantizer (pinned in pyproject.toml) that run in
LiteRT on a CPU, named by what they store and compute:

* ``"int8_weight_only"`` / ``"int4_weight_only"``: weights stored at 8 / 4 bits and dequantized to
  float before each op (float compute; the file shrinks, the arithmetic does not change);
* ``"int8_dynamic"`` / ``"int4_dynamic"`` / ``"int2_dynamic"``: weights at 8 / 4 / 2 bits,
  activations quantized on the fly at run time (integer compute);
* ``"int8_static"`` / ``"int16x8_static"``: int8 weights and int8 or int16 activations whose ranges
  are calibrated on training images.

``granularity="blockwise"`` (one scale per ``block_size`` weights along a Dense layer's input)
exists in ai-edge-quantizer 0.10.0 for the 4- and 2-bit dynamic modes and for Dense
(FULLY_CONNECTED) layers only; convolutions in such a file are quantized per channel at the same
bits, and every file's layer table says which layer got what. compresslab offers it for
``"int4_dynamic"`` only: an int2 blockwise file is written, but LiteRT 2.3.0's XNNPACK delegate
refuses it ("unsupported datatype (INT2)") and its builtin kernel returned near-zero logits for
every image when we tried, so such a file would not be a file a phone could run.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..specs import Spec, check_choice, check_layers, fail

# mode -> (kind, weight bits, activation bits or None)
MODES = {
    "int8_weight_only": ("weight_only", 8, None),
    "int4_weight_only": ("weight_only", 4, None),
    "int8_dynamic": ("dynamic", 8, None),
    "int4_dynamic": ("dynamic", 4, None),
    "int2_dynamic": ("dynamic", 2, None),
    "int8_static": ("static", 8, 8),
    "int16x8_static": ("static", 8, 16),
}
GRANULARITIES = ("per_channel", "blockwise")
BLOCK_SIZES = (32, 64, 128, 256)
BLOCKWISE_MODES = ("int4_dynamic",)


@dataclass(frozen=True)
class LowBitSpec(Spec):
    """A low-bit TFLite file to write with ai-edge-quantizer.

    Attributes:
        mode: one of :data:`MODES` (see the module docstring for what each stores and computes).
        granularity: ``"per_channel"`` (one scale per output channel) or ``"blockwise"`` (one
            scale per ``block_size`` input weights of a Dense layer; ``"int4_dynamic"`` only).
        block_size: 32, 64, 128 or 256 for ``"blockwise"``; None otherwise. It must divide the
            input size of every Dense layer it applies to (checked against the model before any work).
        keep_int8: layer names stored at 8 bits whatever the mode (the selective form).
        keep_float: layer names left float32.

    Raises:
        ValueError: a field out of range, naming the field, the value and what is allowed.

    Example:
        >>> LowBitSpec("int4_weight_only")
        >>> LowBitSpec("int4_dynamic", granularity="blockwise", block_size=32, keep_int8=("logits",))
    """

    mode: str = "int4_weight_only"
    granularity: str = "per_channel"
    block_size: int | None = None
    keep_int8: tuple[str, ...] = ()
    keep_float: tuple[str, ...] = ()

    def __post_init__(self):
        check_choice(self, "mode", tuple(MODES))
        check_choice(self, "granularity", GRANULARITIES)
        if self.granularity == "blockwise":
            if self.mode not in BLOCKWISE_MODES:
                fail(self, "granularity", self.granularity,
                     f"blockwise files that LiteRT runs exist only for modes {list(BLOCKWISE_MODES)} "
                     f"(Dense layers); mode {self.mode!r} takes 'per_channel'")
            if isinstance(self.block_size, bool) or self.block_size not in BLOCK_SIZES:
                fail(self, "block_size", self.block_size,
                     f"blockwise needs a block size from {list(BLOCK_SIZES)}")
            object.__setattr__(self, "block_size", int(self.block_size))
        elif self.block_size is not None:
            fail(self, "block_size", self.block_size, "it is only used with granularity='blockwise'; leave it None")
        for name in ("keep_int8", "keep_float"):
            value = getattr(self, name)
            if value in ((), []):
                object.__setattr__(self, name, ())
            else:
                check_layers(self, name)
        both = sorted(set(self.keep_int8) & set(self.keep_float))
        if both:
            fail(self, "keep_float", self.keep_float, f"layers {both} are also in keep_int8; a layer takes one")

    @property
    def kind(self) -> str:
        """``"weight_only"``, ``"dynamic"`` or ``"static"``."""
        return MODES[self.mode][0]

    @property
    def bits(self) -> int:
        """Bits per weight for the layers the mode quantizes."""
        return MODES[self.mode][1]

    @property
    def activation_bits(self) -> int | None:
        """Bits per activation for the static modes; None when activations stay float."""
        return MODES[self.mode][2]


__all__ = ["LowBitSpec", "MODES", "GRANULARITIES", "BLOCK_SIZES", "BLOCKWISE_MODES"]
