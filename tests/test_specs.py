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


def test_numpy_scalars_are_accepted_and_stored_as_plain_numbers():
    import json

    import numpy as np

    spec = ToySpec(bits=np.int64(4), rate=np.float32(0.5), scheme=np.str_("asymmetric"),
                   layers=[np.str_("conv1")])
    assert (type(spec.bits), type(spec.rate), type(spec.scheme), type(spec.layers[0])) == (int, float, str, str)
    assert spec == ToySpec(bits=4, rate=0.5, scheme="asymmetric", layers=("conv1",))
    assert json.loads(spec.to_json()) == {"bits": 4, "rate": 0.5, "scheme": "asymmetric", "layers": ["conv1"]}
    assert ToySpec.from_json(spec.to_json()) == spec
    with pytest.raises(ValueError, match=r"ToySpec.bits is np.int64\(99\)|ToySpec.bits is 99"):
        ToySpec(bits=np.int64(99))
    with pytest.raises(ValueError, match=r"ToySpec.bits is np.True_|ToySpec.bits is True"):
        ToySpec(bits=np.bool_(True))


@pytest.mark.parametrize("value", [float("inf"), -float("inf"), float("nan")])
def test_non_finite_numbers_are_refused_naming_the_field(value):
    @dataclass(frozen=True)
    class Unbounded(Spec):
        scale: float = 1.0

        def __post_init__(self):
            check_number(self, "scale", 0, None, low_open=True)

    with pytest.raises(ValueError, match=r"Unbounded.scale is -?(inf|nan); it must be a finite number in \(0, inf\)"):
        Unbounded(scale=value)
