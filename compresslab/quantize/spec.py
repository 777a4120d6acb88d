"""The quantization spec: :class:`QuantSpec`, its choices, and the checks every entry point runs first.

Owns the frozen dataclass that says how to quantize (bits, scheme, granularity, fixed-point
format, layers, activation bits), :data:`SCHEMES`, :data:`GRANULARITIES`, :data:`PTQ_MODES`, and
the input checks (a tf_keras classifier, a compresslab Dataset) shared by simulate, PTQ, QAT and
the searches.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..data import Dataset
from ..specs import Spec, check_choice, check_int, check_layers, fail

SCHEMES = ("symmetric", "asymmetric", "fixed_point")
GRANULARITIES = ("per_tensor", "per_channel")
PTQ_MODES = ("dynamic", "float16", "int8")




# ---------------------------------------------------------------------------------------------
# The spec


@dataclass(frozen=True)
class QuantSpec(Spec):
    """How to quantize a model's weights (and optionally its activations) in simulation.

    Attributes:
        bits: bits per weight, 1 to 16.
        scheme: ``"symmetric"`` (scale from max |w|, zero maps to zero, levels
            -(2^(b-1)-1) .. 2^(b-1)-1), ``"asymmetric"`` (scale and zero point from [min, max],
            levels 0 .. 2^b-1) or ``"fixed_point"`` (the textbook Q-format
            x_q = round(x * 2^p) / 2^p with ``fractional_bits`` = p, clipped to the signed
            b-bit range).
        granularity: ``"per_tensor"`` (one scale for the whole tensor) or ``"per_channel"``
            (one scale per output channel). ``fixed_point`` has one format for the whole tensor,
            so it needs ``"per_tensor"``.
        fractional_bits: p for ``fixed_point`` (0 to 31); must be None for the other schemes.
        layers: names of the layers to quantize, or None for every layer with a kernel.
        activation_bits: None (activations stay float) or 2 to 16: the output of every
            quantized layer is then fake-quantized too, with a range calibrated on training images.

    Raises:
        ValueError: a field out of range, naming the field, the value and what is allowed.

    Example:
        >>> QuantSpec(bits=4, scheme="asymmetric", granularity="per_channel")
        >>> QuantSpec(bits=8, scheme="fixed_point", fractional_bits=6)
    """

    bits: int = 8
    scheme: str = "symmetric"
    granularity: str = "per_tensor"
    fractional_bits: int | None = None
    layers: tuple[str, ...] | None = None
    activation_bits: int | None = None

    def __post_init__(self):
        check_int(self, "bits", 1, 16)
        check_choice(self, "scheme", SCHEMES)
        check_choice(self, "granularity", GRANULARITIES)
        if self.scheme == "fixed_point":
            if self.fractional_bits is None:
                fail(self, "fractional_bits", None,
                     "the fixed_point scheme needs fractional_bits (p in x_q = round(x * 2^p) / 2^p), "
                     "an integer from 0 to 31")
            check_int(self, "fractional_bits", 0, 31)
            if self.granularity != "per_tensor":
                fail(self, "granularity", self.granularity,
                     "fixed_point uses one Q-format for the whole tensor: use 'per_tensor' "
                     "(or the symmetric/asymmetric scheme for per-channel scales)")
        elif self.fractional_bits is not None:
            fail(self, "fractional_bits", self.fractional_bits,
                 f"it only applies to scheme='fixed_point' (scheme is {self.scheme!r}); leave it None")
        check_layers(self, "layers")
        check_int(self, "activation_bits", 2, 16, optional=True)

    @property
    def label(self) -> str:
        """A short human label, e.g. ``"4-bit symmetric per-channel"``."""
        text = f"{self.bits}-bit {self.scheme.replace('_', '-')} {self.granularity.replace('_', '-')}"
        if self.scheme == "fixed_point":
            text = f"{self.bits}-bit fixed-point Q{self.bits - self.fractional_bits}.{self.fractional_bits}"
        if self.activation_bits:
            text += f", {self.activation_bits}-bit activations"
        return text


def _as_spec(spec) -> QuantSpec:
    if isinstance(spec, QuantSpec):
        return spec
    if isinstance(spec, dict):
        return QuantSpec.from_dict(spec)
    raise TypeError(f"spec must be a QuantSpec (or its dict), got {type(spec).__name__}")



def _check_model(model):
    """The tf_keras classifier to quantize (a Keras 3 model converted); a clear error for anything else."""
    from ..modelio.convert import as_tf_keras

    model = as_tf_keras(model)
    try:
        shape = model.output_shape
    except (AttributeError, RuntimeError):
        return model  # a subclassed or never-called model: its own checks (e.g. tfmot's) name the problem
    if isinstance(shape, list) or len(shape) != 2:
        raise ValueError(
            f"model {model.name!r} is not a classifier: its output shape is {shape}; "
            "compresslab quantizes image classifiers with one output of shape (batch, classes)"
        )
    return model


def _check_data(data) -> None:
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a compresslab Dataset, got {type(data).__name__}; "
                        "load one with cl.load_dataset")
