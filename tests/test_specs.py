from dataclasses import dataclass

import pytest

import compresslab as cl
from compresslab.specs import Spec, check_choice, check_int, check_layers, check_number, resolve_layers


@dataclass(frozen=True)
class ToySpec(Spec):
    bits: int = 8
    scheme: str = "symmetric"
    rate: float = 0.5
    layers: tuple | None = None

    def __post_init__(self):
        check_int(self, "bits", 1, 16)
        check_choice(self, "scheme", ("symmetric", "asymmetric"))
        check_number(self, "rate", 0.0, 1.0, high_open=True)
        check_layers(self)


def test_spec_round_trips_and_hashes():
    spec = ToySpec(bits=4, layers=("conv1",))
    assert ToySpec.from_dict(spec.to_dict()) == spec
    assert ToySpec.from_json(spec.to_json()) == spec
    assert spec.to_dict()["layers"] == ["conv1"]
    assert len({spec, ToySpec(bits=4, layers=("conv1",))}) == 1
    assert spec.replace(bits=2).bits == 2
    assert ToySpec(layers=["a", "b"]).layers == ("a", "b")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"bits": 0}, r"ToySpec.bits is 0; it must be an integer from 1 to 16"),
        ({"bits": 8.0}, r"ToySpec.bits is 8.0"),
        ({"bits": True}, r"ToySpec.bits is True"),
        ({"scheme": "log"}, r"ToySpec.scheme is 'log'; allowed: 'symmetric', 'asymmetric'"),
        ({"rate": 1.0}, r"ToySpec.rate is 1.0; it must be a number in \[0, 1\)"),
        ({"rate": float("nan")}, r"ToySpec.rate is nan"),
        ({"layers": "conv1"}, r"ToySpec.layers is 'conv1'; it must be None"),
        ({"layers": ()}, r"ToySpec.layers is \(\)"),
    ],
)
def test_bad_values_name_field_value_and_allowed(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ToySpec(**kwargs)


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(ValueError, match=r"ToySpec has no field\(s\) \['colour'\]"):
        ToySpec.from_dict({"colour": "red"})


def test_resolve_layers_lists_what_exists():
    model = cl.models.student_cnn()
    dense = resolve_layers(model, None, eligible=lambda layer: "dense" in type(layer).__name__.lower())
    assert [layer.name for layer in dense] == ["dense1", "logits"]
    with pytest.raises(ValueError, match=r"layers \['conv9'\] do not exist.*'conv1'"):
        resolve_layers(model, ["conv9"])
    with pytest.raises(ValueError, match=r"layers \['pool1'\] cannot be used here"):
        resolve_layers(model, ["pool1"], eligible=lambda layer: hasattr(layer, "kernel"), what="weighted layer")
