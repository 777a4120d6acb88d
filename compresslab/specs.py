"""Shared behaviour of the technique specs (``QuantSpec``, ``PruneSpec``, ``ClusterSpec``, ``DistillSpec``).

A spec is a frozen dataclass: hashable (it can key a cache), validated in
``__post_init__`` (a bad value raises ``ValueError`` naming the field, the value and what
is allowed) and round-tripped through JSON with ``to_dict()`` / ``from_dict()``.

Example:
    >>> @dataclass(frozen=True)
    ... class ToySpec(Spec):
    ...     bits: int = 8
    ...     def __post_init__(self):
    ...         check_int(self, "bits", 1, 16)
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Spec:
    """Base class: JSON round trip and a readable summary. Subclasses must be frozen dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        for key, value in payload.items():
            if isinstance(value, tuple):
                payload[key] = list(value)
        return payload

    @classmethod
    def from_dict(cls, payload: dict[str, Any]):
        if not isinstance(payload, dict):
            raise ValueError(f"{cls.__name__}.from_dict takes a dict, got {type(payload).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(payload) - known)
        if unknown:
            raise ValueError(f"{cls.__name__} has no field(s) {unknown}; its fields are {sorted(known)}")
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in payload.items()}
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str):
        try:
            payload = json.loads(text)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{cls.__name__}.from_json got text that is not JSON ({error}): {str(text)[:60]!r}") from None
        return cls.from_dict(payload)

    def replace(self, **changes):
        """A copy with some fields changed (validated again)."""
        return type(self).from_dict({**self.to_dict(), **changes})


def fail(spec, field_name: str, value, allowed: str) -> None:
    """Raise the standard spec error: which field, what value, what is allowed."""
    raise ValueError(f"{type(spec).__name__}.{field_name} is {value!r}; {allowed}")


def check_choice(spec, field_name: str, choices) -> None:
    """``spec.<field_name>`` is one of ``choices`` (a numpy string is stored as a plain ``str``)."""
    value = getattr(spec, field_name)
    try:
        ok = value in choices
    except TypeError:  # an unhashable value compared with a set of choices
        ok = False
    if not ok:
        fail(spec, field_name, value, "allowed: " + ", ".join(repr(c) for c in choices))
    if isinstance(value, np.str_):
        object.__setattr__(spec, field_name, str(value))


def _is_integer(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value) -> bool:
    return _is_integer(value) or isinstance(value, (float, np.floating))


def check_int(spec, field_name: str, low: int | None = None, high: int | None = None, *,
              optional: bool = False) -> None:
    """``spec.<field_name>`` is an integer in ``[low, high]`` (numpy integers stored as ``int``).

    Raises:
        ValueError: ``<Spec>.<field> is <value>; it must be an integer from <low> to <high>``.
    """
    value = getattr(spec, field_name)
    if value is None and optional:
        return
    if not _is_integer(value):
        fail(spec, field_name, value, "it must be an integer" + _range_text(low, high))
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        fail(spec, field_name, value, "it must be an integer" + _range_text(low, high))
    object.__setattr__(spec, field_name, value)


def check_number(spec, field_name: str, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False, optional: bool = False) -> None:
    """``spec.<field_name>`` is a finite number in the given interval (numpy scalars stored as plain numbers).

    NaN and infinities are refused even where the interval is unbounded: an infinite
    temperature or learning rate trains a model to NaN weights without any error.

    Raises:
        ValueError: ``<Spec>.<field> is <value>; it must be a number in [low, high]`` (``a finite
            number`` when the value is NaN or infinite).
    """
    value = getattr(spec, field_name)
    if value is None and optional:
        return
    if _is_real(value):  # plain numbers from here on: JSON-friendly, and messages that do not say np.float32
        value = int(value) if _is_integer(value) else float(value)
    ok = _is_real(value) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        left = "(" if low_open or low is None else "["
        right = ")" if high_open or high is None else "]"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        finite = "finite " if _is_real(value) and not math.isfinite(value) else ""
        fail(spec, field_name, value, f"it must be a {finite}number in {left}{lo}, {hi}{right}")
    object.__setattr__(spec, field_name, value)


def check_layers(spec, field_name: str = "layers") -> None:
    """``layers`` is None (all eligible layers) or a non-empty tuple of layer names."""
    value = getattr(spec, field_name)
    if value is None:
        return
    if (isinstance(value, str) or not isinstance(value, (list, tuple)) or len(value) == 0
            or not all(isinstance(v, str) and v for v in value)):
        fail(spec, field_name, value, "it must be None (every eligible layer) or a non-empty list of layer names")
    object.__setattr__(spec, field_name, tuple(str(v) for v in value))


def _range_text(low, high) -> str:
    if low is not None and high is not None:
        return f" from {low} to {high}"
    if low is not None:
        return f" >= {low}"
    if high is not None:
        return f" <= {high}"
    return ""


def resolve_layers(model, names, *, eligible=None, what: str = "layer") -> list:
    """The model's layers named in ``names`` (all ``eligible`` ones when ``names`` is None).

    Raises:
        ValueError: a name that is not a layer of the model, listing the layers that exist.
    """
    by_name = {layer.name: layer for layer in model.layers}
    candidates = [layer for layer in model.layers if eligible is None or eligible(layer)]
    if names is None:
        return candidates
    missing = [name for name in names if name not in by_name]
    if missing:
        raise ValueError(
            f"layers {missing} do not exist in model {model.name!r}; its {what}s are "
            f"{[layer.name for layer in candidates]}"
        )
    chosen = [by_name[name] for name in names]
    if eligible is not None:
        wrong = [layer.name for layer in chosen if not eligible(layer)]
        if wrong:
            raise ValueError(
                f"layers {wrong} cannot be used here; eligible {what}s are {[layer.name for layer in candidates]}"
            )
    return chosen


__all__ = ["Spec", "fail", "check_choice", "check_int", "check_number", "check_layers", "resolve_layers"]
