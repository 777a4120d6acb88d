"""Tests of compresslab.layers: which attributes of a layer hold a kernel."""

from __future__ import annotations

from compresslab import layers as cl_layers
from compresslab._keras import keras


def _built(layer, shape):
    layer.build(shape)
    return layer


def test_kernel_attributes_of_each_layer_kind():
    assert cl_layers.kernel_attributes(_built(keras.layers.Dense(3), (None, 4))) == ["kernel"]
    assert cl_layers.kernel_attributes(_built(keras.layers.Conv2D(2, 3), (None, 8, 8, 1))) == ["kernel"]
    assert cl_layers.kernel_attributes(_built(keras.layers.DepthwiseConv2D(3), (None, 8, 8, 2))) == [
        "depthwise_kernel"]
    assert cl_layers.kernel_attributes(_built(keras.layers.SeparableConv2D(4, 3), (None, 8, 8, 2))) == [
        "depthwise_kernel", "pointwise_kernel"]
    assert cl_layers.kernel_attributes(_built(keras.layers.Embedding(10, 3), (None, 5))) == ["embeddings"]
    assert cl_layers.kernel_attributes(_built(keras.layers.BatchNormalization(), (None, 4))) == []
    assert cl_layers.kernel_attributes(keras.layers.Flatten()) == []


def test_kernel_variables_are_the_layers_own_variables():
    layer = _built(keras.layers.SeparableConv2D(4, 3), (None, 8, 8, 2))
    pairs = cl_layers.kernel_variables(layer)
    assert [name for name, _ in pairs] == ["depthwise_kernel", "pointwise_kernel"]
    assert pairs[0][1] is layer.depthwise_kernel and pairs[1][1] is layer.pointwise_kernel
    assert id(layer.bias) not in {id(variable) for _, variable in pairs}


def test_an_unbuilt_layer_has_no_kernel_yet():
    assert cl_layers.kernel_variables(keras.layers.Dense(3)) == []
