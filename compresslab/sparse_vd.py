"""Sparse variational dropout (Molchanov, Ashukha and Vetrov, ICML 2017): let the model say which weights it does not need.

Owns: the variational Conv2D and Dense layers (a learned noise variance per weight), the KL
approximation of the paper, turning a trained model into a variational one and back into a plain,
sparse tf_keras model, and the per-weight ``log alpha`` maps a notebook can draw.

Each weight ``w`` gets a learned variance ``sigma^2``; ``alpha = sigma^2 / w^2`` is its dropout
rate. Training maximises the variational lower bound: the data term (cross-entropy) minus the KL
divergence from a log-uniform prior, which the paper approximates as

    -KL(alpha) ~= k1 * sigmoid(k2 + k3 * log alpha) - 0.5 * log(1 + 1/alpha) - k1
    with k1 = 0.63576, k2 = 1.87320, k3 = 1.48695.

The KL term pushes ``alpha`` up (more noise) wherever the data term allows; a weight with
``log alpha > 3`` (alpha > 20: noise twenty times its own size) carries no information and is
removed. Training uses the local reparameterisation trick: a layer's output is sampled from
``N(x W, x^2 sigma^2)`` instead of sampling every weight, which has lower variance.

Example:
    >>> sparse = cl.sparse_vd.variational_dropout(model, data, epochs=10)
    >>> cl.prune.global_sparsity(sparse), sparse.sparse_vd["kept"]
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ._keras import keras, tf
from .data import Dataset
from .models import check_model_fits, clone, compile_for_classification, outputs_logits, set_seed, train

K1, K2, K3 = 0.63576, 1.87320, 1.48695
THRESHOLD = 3.0  # log alpha above which a weight is removed (the paper's value)
LOG_ALPHA_RANGE = (-10.0, 10.0)  # clipped, as in the paper's reference code, for stable training
INITIAL_LOG_SIGMA2 = -10.0


def negative_kl(log_alpha):
    """The paper's approximation of -KL(q || log-uniform prior) for each weight (a tensor or array)."""
    log_alpha = tf.convert_to_tensor(log_alpha, tf.float32)
    return K1 * tf.sigmoid(K2 + K3 * log_alpha) - 0.5 * tf.math.softplus(-log_alpha) - K1


class _Variational:
    """What the variational Conv2D and Dense share: log sigma^2, log alpha, the KL, the mask and the call.

    A subclass says how its kernel meets its inputs (:meth:`_product`); everything else is here.
    """

    kl_scale = None  # a tf.Variable set by variational_dropout: KL weight / training images

    def build(self, input_shape):
        super().build(input_shape)
        self.log_sigma2 = self.add_weight(name="log_sigma2", shape=self.kernel.shape,
                                          initializer=keras.initializers.Constant(INITIAL_LOG_SIGMA2),
                                          trainable=True)

    def log_alpha(self):
        log_alpha = self.log_sigma2 - tf.math.log(tf.square(self.kernel) + 1e-8)
        return tf.clip_by_value(log_alpha, *LOG_ALPHA_RANGE)

    def kept(self):
        """1 where the weight is kept (log alpha <= threshold), 0 where it is removed."""
        return tf.cast(self.log_alpha() <= self.threshold, self.kernel.dtype)

    def kl(self):
        return -tf.reduce_sum(negative_kl(self.log_alpha()))

    def call(self, inputs, training=None):
        training = bool(training) if training is not None else keras.backend.learning_phase()
        if self.kl_scale is not None:
            self.add_loss(self.kl_scale * self.kl())
        if training:  # local reparameterisation: sample the output, not every weight
            mean = self._product(inputs, self.kernel)
            variance = self._product(tf.square(inputs), tf.exp(self.log_sigma2))
            output = mean + tf.sqrt(variance + 1e-8) * tf.random.normal(tf.shape(mean))
        else:
            output = self._product(inputs, self.kernel * self.kept())
        if self.use_bias:
            output = tf.nn.bias_add(output, self.bias)
        return self.activation(output) if self.activation is not None else output

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


class VariationalDense(_Variational, keras.layers.Dense):
    """A Dense layer with a learned noise variance per weight (sparse variational dropout)."""

    def __init__(self, units, threshold: float = THRESHOLD, **kwargs):
        super().__init__(units, **kwargs)
        self.threshold = float(threshold)

    def _product(self, inputs, kernel):
        return tf.matmul(inputs, kernel)


class VariationalConv2D(_Variational, keras.layers.Conv2D):
    """A Conv2D layer with a learned noise variance per weight (additive reparameterisation)."""

    def __init__(self, filters, kernel_size, threshold: float = THRESHOLD, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        self.threshold = float(threshold)

    def _product(self, inputs, kernel):
        return tf.nn.conv2d(inputs, kernel, strides=(1, *self.strides, 1), padding=self.padding.upper(),
                            dilations=(1, *self.dilation_rate, 1))


def _supported(layer) -> bool:
    """Plain Conv2D (channels last, no groups) and Dense layers become variational."""
    if type(layer) is keras.layers.Dense:
        return True
    return (type(layer) is keras.layers.Conv2D and layer.data_format == "channels_last"
            and getattr(layer, "groups", 1) == 1)


def to_variational(model, *, threshold: float = THRESHOLD, layers=None):
    """A NEW model whose Conv2D and Dense layers are variational, starting from ``model``'s weights.

    Args:
        model: a trained tf_keras model (not modified).
        threshold: log alpha above which weights are removed.
        layers: names of the layers to make variational (default: every plain Conv2D and Dense).

    Returns:
        The variational model, and the list of layer names it made variational.

    Raises:
        ValueError: a named layer that is missing or not a plain Conv2D / Dense; nothing to make variational.
    """
    names = {layer.name for layer in model.layers if _supported(layer)}
    if layers is not None:
        layers = tuple(layers)
        wrong = [name for name in layers if name not in names]
        if wrong:
            raise ValueError(f"layers {wrong} cannot use variational dropout; plain Conv2D / Dense layers of "
                             f"{model.name!r} are {sorted(names)}")
        names = set(layers)
    from .prune.masks import skipped_layers, warn_skipped  # pruning's own report of untouched layers

    warn_skipped("sparse variational dropout", skipped_layers(model, lambda layer: layer.name in names))
    if not names:
        raise ValueError(f"model {model.name!r} has no plain Conv2D or Dense layer for variational dropout; its "
                         f"layers are {[layer.name for layer in model.layers]}")

    def replace(layer):
        if layer.name not in names:
            return layer.__class__.from_config(layer.get_config())
        config = layer.get_config()
        kind = VariationalDense if isinstance(layer, keras.layers.Dense) else VariationalConv2D
        return kind.from_config({**config, "threshold": threshold})

    variational = keras.models.clone_model(model, clone_function=replace)
    for source, target in zip(model.layers, variational.layers):
        weights = source.get_weights()
        if not weights:
            continue
        if target.name in names:  # kernel and bias copied; log sigma^2 keeps its initial value
            target.set_weights(weights + [target.get_weights()[-1]])
        else:
            target.set_weights(weights)
    return variational, sorted(names)


def strip_variational(variational, original):
    """A plain model shaped like ``original`` whose removed weights (log alpha > threshold) are exactly zero."""
    plain = clone(original)
    for layer in variational.layers:
        target = plain.get_layer(layer.name)
        if isinstance(layer, _Variational):
            kernel = (layer.kernel * layer.kept()).numpy()
            rest = [w for w in layer.get_weights()[1:-1]]  # the bias, when there is one
            target.set_weights([kernel, *rest])
        elif layer.get_weights():
            target.set_weights(layer.get_weights())
    compile_for_classification(plain)
    return plain


def log_alpha_maps(variational) -> dict[str, np.ndarray]:
    """Each variational layer's per-weight log alpha, shaped like its kernel (high = the model does not need it)."""
    return {layer.name: layer.log_alpha().numpy() for layer in variational.layers if isinstance(layer, _Variational)}


class _KLWarmUp(keras.callbacks.Callback):
    """Raises the KL weight linearly from 0 to 1 over the first epochs (the paper's warm-up)."""

    def __init__(self, scale: tf.Variable, images: int, warmup_epochs: int, kl_weight: float = 1.0):
        super().__init__()
        self.scale, self.images, self.warmup_epochs, self.kl_weight = scale, images, warmup_epochs, kl_weight

    def on_epoch_begin(self, epoch, logs=None):
        weight = min(1.0, (epoch + 1) / self.warmup_epochs) if self.warmup_epochs else 1.0
        self.scale.assign(self.kl_weight * weight / self.images)


def variational_dropout(model, data: Dataset, *, epochs: int = 10, threshold: float = THRESHOLD,
                        learning_rate: float = 1e-3, warmup_epochs: int | None = None, batch_size: int = 64,
                        kl_weight: float = 1.0, layers=None, seed: int = 0, progress: bool | Callable = False):
    """Prune ``model`` by sparse variational dropout, trained from its weights; returns a NEW sparse model.

    The objective per image is cross-entropy + KL / N (N training images: the variational lower
    bound divided by N), with the KL weight warmed up from 0 over ``warmup_epochs``. Afterwards
    every weight with ``log alpha > threshold`` is set to zero, the others keep their trained
    values, and the result is a plain tf_keras model of ``model``'s architecture: it goes on to
    clustering and the codec like any pruned model.

    Args:
        model: a trained tf_keras classifier (not modified).
        data: the data set (training split only).
        epochs: training epochs of the variational model.
        threshold: log alpha above which a weight is removed (3: alpha > 20).
        learning_rate: Adam's learning rate.
        warmup_epochs: epochs over which the KL weight rises to 1 (default: half of ``epochs``).
        batch_size: images per step.
        kl_weight: multiplies the KL term (1: the paper's variational bound). With few training
            images and many weights the full bound removes almost everything; a smaller weight
            trades sparsity for accuracy (say which you used when you report a figure).
        layers: names of the Conv2D / Dense layers to sparsify (default: all of them).
        seed: seeds the noise and the shuffling.
        progress: True for a bar, or ``callable(epoch, logs)``.

    Returns:
        The sparse model; ``model.sparse_vd`` holds ``log_alpha`` per layer, the share of weights
        ``kept`` per layer and overall, and the settings.

    Raises:
        ValueError: bad settings or a model with nothing to sparsify, before any training.
    """
    check_model_fits(model, data)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs is {epochs!r}; it must be an integer >= 1")
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold)
            and LOG_ALPHA_RANGE[0] < threshold < LOG_ALPHA_RANGE[1]):
        raise ValueError(f"threshold is {threshold!r}; it must be a log alpha between {LOG_ALPHA_RANGE[0]:g} and "
                         f"{LOG_ALPHA_RANGE[1]:g} (the paper uses 3)")
    if not (isinstance(learning_rate, (int, float)) and math.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate is {learning_rate!r}; it must be a finite number > 0")
    if not (isinstance(kl_weight, (int, float)) and math.isfinite(kl_weight) and kl_weight > 0):
        raise ValueError(f"kl_weight is {kl_weight!r}; it must be a finite number > 0 (1 is the paper's bound)")
    warmup = max(1, epochs // 2) if warmup_epochs is None else warmup_epochs
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup_epochs is {warmup_epochs!r}; it must be an integer >= 0")
    set_seed(seed)
    variational, names = to_variational(model, threshold=threshold, layers=layers)
    scale = tf.Variable(0.0, trainable=False, dtype=tf.float32, name="kl_scale")
    for layer in variational.layers:
        if isinstance(layer, _Variational):
            layer.kl_scale = scale
    variational.compile(optimizer=keras.optimizers.Adam(learning_rate),
                        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=outputs_logits(model)),
                        metrics=["accuracy"])
    train(variational, data, epochs=epochs, batch_size=batch_size, seed=seed, progress=progress, compile=False,
          callbacks=[_KLWarmUp(scale, len(data.x_train), warmup, float(kl_weight))])
    sparse = strip_variational(variational, model)
    maps = log_alpha_maps(variational)
    kept = {name: float(np.mean(values <= threshold)) for name, values in maps.items()}
    total = sum(values.size for values in maps.values())
    sparse.sparse_vd = {"log_alpha": maps, "kept": kept,
                        "kept_overall": sum(kept[n] * maps[n].size for n in maps) / total,
                        "threshold": threshold, "epochs": epochs, "kl_weight": float(kl_weight), "layers": names}
    return sparse


__all__ = ["variational_dropout", "to_variational", "strip_variational", "log_alpha_maps", "negative_kl",
           "VariationalDense", "VariationalConv2D", "THRESHOLD"]
