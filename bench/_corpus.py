"""A corpus of small Keras 3 CNNs that are NOT in compresslab's zoo, written the way users write them.

Each builder uses plain Keras 3 (the ``keras`` package, no compresslab import inside) and returns an
uncompiled model; :func:`train_keras3` compiles and fits it with Keras 3's own ``fit`` as a user would
(Adam at Keras's default rate, sparse categorical cross-entropy, ``from_logits`` matching the output).
Between them the models cover: softmax and logits outputs, with and without BatchNorm, Dropout,
depthwise-separable and depthwise convolutions, a residual block (functional API), global average
pooling, average pooling and a wide dense head.
"""

from __future__ import annotations

import keras


def keras_example_convnet(shape, classes):
    """The Keras "simple MNIST convnet" example: two conv/pool blocks, Dropout 0.5, softmax."""
    return keras.Sequential([
        keras.Input(shape),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(classes, activation="softmax"),
    ], name="keras_example_convnet")


def batchnorm_logits(shape, classes):
    """Conv-BatchNorm-ReLU blocks and a dense head ending in logits (no softmax layer)."""
    return keras.Sequential([
        keras.Input(shape),
        keras.layers.Conv2D(16, 3, padding="same", use_bias=False),
        keras.layers.BatchNormalization(),
        keras.layers.ReLU(),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(32, 3, padding="same", use_bias=False),
        keras.layers.BatchNormalization(),
        keras.layers.ReLU(),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(classes),
    ], name="batchnorm_logits")


def separable_gap(shape, classes):
    """A stem convolution, depthwise-separable convolutions and global average pooling, softmax."""
    return keras.Sequential([
        keras.Input(shape),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.SeparableConv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.SeparableConv2D(128, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.SeparableConv2D(128, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(classes, activation="softmax"),
    ], name="separable_gap")


def residual_logits(shape, classes):
    """A functional model with one residual block (Add), BatchNorm, global average pooling, logits."""
    inputs = keras.Input(shape)
    # A strided stem and pooling first: the block works on 7x7 maps, so the model trains in minutes on a CPU.
    x = keras.layers.Conv2D(24, 3, strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    shortcut = x
    x = keras.layers.Conv2D(24, 3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Conv2D(24, 3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Add()([shortcut, x])
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Conv2D(64, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    outputs = keras.layers.Dense(classes)(x)
    return keras.Model(inputs, outputs, name="residual_logits")


def wide_head(shape, classes):
    """Small convolutions and a wide dense head (512 units) with Dropout: most weights are dense."""
    return keras.Sequential([
        keras.Input(shape),
        keras.layers.Conv2D(16, 5, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(32, 5, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(512, activation="relu"),
        keras.layers.Dropout(0.3),
        keras.layers.Dense(classes, activation="softmax"),
    ], name="wide_head")


def depthwise_lenet(shape, classes):
    """LeNet-like with average pooling, tanh, a DepthwiseConv2D + BatchNorm block and a 120-84 head."""
    return keras.Sequential([
        keras.Input(shape),
        keras.layers.Conv2D(6, 5, padding="same", activation="tanh"),
        keras.layers.AveragePooling2D(2),
        keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False),
        keras.layers.BatchNormalization(),
        keras.layers.Activation("tanh"),
        keras.layers.Conv2D(16, 5, activation="tanh"),
        keras.layers.AveragePooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(120, activation="tanh"),
        keras.layers.Dense(84, activation="tanh"),
        keras.layers.Dense(classes, activation="softmax"),
    ], name="depthwise_lenet")


CORPUS = {builder.__name__: builder for builder in (
    keras_example_convnet, batchnorm_logits, separable_gap, residual_logits, wide_head, depthwise_lenet)}


def outputs_logits(model) -> bool:
    """True when the model's last layer has no softmax (the user compiles with ``from_logits=True``)."""
    return getattr(model.layers[-1], "activation", None) is not keras.activations.softmax


def train_keras3(name: str, data, *, epochs: int = 3, batch_size: int = 128, seed: int = 0):
    """Build corpus model ``name`` and train it with Keras 3's ``fit`` on ``data``'s training split."""
    keras.utils.set_random_seed(seed)
    model = CORPUS[name](data.input_shape, data.num_classes)
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=outputs_logits(model)),
                  metrics=["accuracy"])
    validation = (data.x_val, data.y_val) if len(data.x_val) else None
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=batch_size, validation_data=validation,
              verbose=0)
    return model
