"""Quantization-aware training: fine-tune with tfmot's fake-quant wrappers, then an int8 TFLite file.

Owns :class:`AwareTrainingResult`, :func:`check_quantization_aware` (which layers tfmot can wrap,
checked before any work) and :func:`aware_training`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .._keras import keras, tfmot
from ..data import Dataset
from ..models import (
    check_model_fits,
    clone,
    compile_for_classification,
    outputs_logits,
    set_seed,
    train,
)
from ..tflite import TFLiteArtifact, convert
from .ptq import _representative
from .simulate import _chosen_layers
from .spec import _check_data, _check_model

# ---------------------------------------------------------------------------------------------
# Quantization-aware training


@dataclass
class AwareTrainingResult:
    """What :func:`aware_training` produced.

    Attributes:
        model: the QAT-trained Keras model (fake-quant wrappers inside).
        artifact: the int8 TFLite file (bits == 8), or None for other bit widths.
        bits: the weight bit width trained for.
        simulation_only: True when ``bits != 8``: TFLite deploys 8-bit, so the lower bit width
            exists only as the Keras model's fake quantization (tfmot's experimental default_n_bit).
        keras_accuracy: test accuracy of ``model`` (fake-quantized, in Keras).
        history: the Keras training history (``history.history``).
        seconds: training time.
        source: the input model (tf_keras), whose plain architecture :meth:`float_model` refills.
    """

    model: object
    artifact: TFLiteArtifact | None
    bits: int
    simulation_only: bool
    keras_accuracy: float
    history: dict = field(default_factory=dict)
    seconds: float = 0.0
    source: object = None

    def float_model(self):
        """The QAT-trained float weights in the input's plain architecture: no quantizers, no wrappers.

        What to save, share or compress further after QAT (``cl.save_model`` writes it for plain
        Keras 3 too). Its float weights are the ones the fake quantizers were trained around; the
        quantizers' ranges are not kept (they live in the int8 ``artifact``).
        """
        if self.source is None:
            raise ValueError("this AwareTrainingResult does not hold its input model; run aware_training again")
        plain = clone(self.source)
        for layer in self.model.layers:
            inner = getattr(layer, "layer", None)  # tfmot's QuantizeWrapper holds the trained layer
            if inner is None:
                continue
            # The wrapper holds the trained "<layer>/kernel:0" and "<layer>/bias:0" beside its quantizers'.
            trained = {weight.name: weight.numpy() for weight in layer.weights}
            target = plain.get_layer(inner.name)
            missing = [weight.name for weight in target.weights if weight.name not in trained]
            if missing:
                raise ValueError(f"layer {inner.name!r}: the QAT wrapper holds no weight named {missing[0]!r}")
            target.set_weights([trained[weight.name] for weight in target.weights])
        compile_for_classification(plain)
        return plain


def check_quantization_aware(model, bits: int = 8) -> None:
    """Raise a clear ValueError if tfmot's QAT cannot wrap every layer of ``model``.

    Names the first unsupported layer and says what to do. Called by :func:`aware_training`
    before any work starts.
    """
    model = _check_model(model)
    if not isinstance(model, keras.Sequential) and not getattr(model, "_is_graph_network", False):
        raise ValueError(
            f"model {model.name!r} is a subclassed Keras model; tfmot quantization-aware training "
            "needs a Sequential or functional model: rebuild it with keras.Input and layer calls"
        )
    q = tfmot().quantization.keras
    if bits == 8:
        registry = q.default_8bit.Default8BitQuantizeRegistry()
    else:
        registry = q.experimental.default_n_bit.DefaultNBitQuantizeRegistry(
            num_bits_weight=bits, num_bits_activation=8)
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            raise ValueError(
                f"layer {layer.name!r} is a nested model; tfmot cannot quantize a model inside a model: "
                "flatten it into one functional model (or use post_training(model, data, 'int8'))"
            )
        if registry.supports(layer):
            continue
        if isinstance(layer, keras.layers.BatchNormalization) and _follows_convolution(layer):
            continue  # tfmot folds Conv + BatchNormalization
        raise ValueError(
            f"layer {layer.name!r} ({type(layer).__name__}) cannot be quantized by tfmot's "
            "quantization-aware training. What to do: replace it with a supported layer (Conv2D, "
            "DepthwiseConv2D, Dense, pooling, ReLU, Add, Concatenate, Reshape, Flatten, Dropout, "
            "BatchNormalization right after a convolution), or annotate it yourself with "
            "tfmot.quantization.keras.quantize_annotate_layer(layer, quantize_config=...) and a custom "
            "QuantizeConfig, or use post-training quantization instead: "
            "cl.quantize.post_training(model, data, 'int8') handles any layer TFLite supports."
        )


def _follows_convolution(layer) -> bool:
    try:
        parent = layer.inbound_nodes[0].inbound_layers
    except (AttributeError, IndexError):
        return False
    return isinstance(parent, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))


def aware_training(model, data: Dataset, *, epochs: int, bits: int = 8, learning_rate: float = 1e-4,
                   batch_size: int = 64, seed: int = 0, progress: bool | Callable = False,
                   representative_images: int = 300, name: str | None = None) -> AwareTrainingResult:
    """Quantization-aware training (QAT) with tfmot, then an int8 TFLite file.

    The model is wrapped by ``tfmot.quantization.keras.quantize_model`` (8-bit: per-channel
    symmetric weights, asymmetric activations, the TFLite int8 scheme), fine-tuned for
    ``epochs`` on the training split so the weights learn to live on the quantization grid,
    then converted to a full-integer int8 TFLite file (int8 input and output) measured in LiteRT.

    Other bit widths (2 to 7) use tfmot's experimental ``default_n_bit`` scheme
    (``num_bits_weight=bits``, 8-bit activations). They are a SIMULATION ONLY: TFLite deploys
    8-bit, so no artifact is produced and the accuracy is the Keras fake-quant model's.

    Args:
        model: a trained tf_keras model (not modified).
        data: the data set (training split for fine-tuning and int8 calibration).
        epochs: fine-tuning epochs (>= 1; 1 is usually enough).
        bits: weight bit width, 2 to 8.
        learning_rate: Adam learning rate of the fine-tuning (small: the model is already trained).
        batch_size: images per step.
        seed: seeds shuffling and the calibration images.
        progress: True for a bar, False for silence, or ``callable(epoch, logs)``.
        representative_images: training images for the int8 conversion.
        name: label of the artifact.

    Returns:
        An :class:`AwareTrainingResult`.

    Raises:
        ValueError: bits out of range, epochs < 1, a model that does not fit the data, or a layer
            tfmot cannot quantize (named, with what to do), all before training starts.

    Example:
        >>> result = aware_training(model, data, epochs=1)
        >>> result.artifact.accuracy(data), result.artifact.size_bytes
    """
    model = _check_model(model)
    _check_data(data)
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 8:
        raise ValueError(f"bits is {bits!r}; quantization-aware training supports integers from 2 to 8 "
                         "(8 deploys to TFLite; 2-7 use tfmot's experimental n-bit scheme, simulation only)")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs is {epochs!r}; it must be an integer >= 1")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate is {learning_rate!r}; it must be > 0")
    check_model_fits(model, data)
    check_quantization_aware(model, bits)
    _chosen_layers(model, None)
    q = tfmot().quantization.keras
    set_seed(seed)
    try:
        if bits == 8:
            qat_model = q.quantize_model(clone(model))
        else:
            scheme = q.experimental.default_n_bit.DefaultNBitQuantizeScheme(
                num_bits_weight=bits, num_bits_activation=8)
            qat_model = q.quantize_apply(q.quantize_annotate_model(clone(model)), scheme)
    except (RuntimeError, ValueError) as error:  # anything the pre-check did not foresee
        raise ValueError(f"tfmot could not prepare the model for quantization-aware training: {error}. "
                         "Use cl.quantize.post_training(model, data, 'int8') instead, or replace the "
                         "layer it names with a supported one.") from None
    qat_model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=outputs_logits(model)),
        metrics=["accuracy"],
    )
    started = time.perf_counter()
    history = train(qat_model, data, epochs=epochs, batch_size=batch_size, seed=seed, progress=progress,
                    compile=False)
    seconds = time.perf_counter() - started
    from ..models import accuracy as keras_accuracy

    artifact = None
    if bits == 8:
        artifact = convert(qat_model, "int8", representative=_representative(data, representative_images, seed),
                           int8_io=True, name=name or f"{model.name} qat-int8",
                           info={"technique": "aware_training", "bits": 8, "qat_epochs": epochs,
                                 "learning_rate": learning_rate, "int8_io": True})
    return AwareTrainingResult(model=qat_model, artifact=artifact, bits=bits, simulation_only=bits != 8,
                               keras_accuracy=keras_accuracy(qat_model, data),
                               history={k: [float(v) for v in vs] for k, vs in history.history.items()},
                               seconds=seconds, source=model)

