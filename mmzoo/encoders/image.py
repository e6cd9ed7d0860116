"""Image encoders: ``cnn``, ``resnet``, ``mobilenet``.

Input ``image``: ``[batch, height, width, channels]``, uint8 or float with values 0..255;
each encoder rescales to 0..1 inside.
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from mmzoo.encoders.base import batch_norm, check_output, encoder_model, image_map_to_output, modality_input
from mmzoo.registry import register_encoder
from mmzoo.spec import DataSpec

_OUTPUTS = ("vector", "sequence", "map")


def _rescaled(spec: DataSpec):
    inputs = modality_input(spec, "image")
    return inputs, layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)


@register_encoder("cnn", modality="image")
def cnn(
    spec: DataSpec,
    output: str = "vector",
    filters: Sequence[int] = (32, 64),
    pooling: str = "flatten",
) -> keras.Model:
    """The classic branch: ``Conv2D(3x3, relu) + MaxPool`` per entry of ``filters``.

    The vector output flattens the last feature map (``pooling="flatten"``, the classic
    Keras tutorial branch) or averages it (``pooling="avg"``).

    Example:
    >>> mmzoo.build(image="cnn", text="bigru", fusion="concat", num_classes=3)  # doctest: +SKIP
    """
    check_output("cnn", output, _OUTPUTS)
    inputs, x = _rescaled(spec)
    for i, f in enumerate(filters, start=1):
        x = layers.Conv2D(int(f), 3, activation="relu", name=f"conv_{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool_{i}")(x)
    return encoder_model(inputs, image_map_to_output(x, output, pooling), "image")


@register_encoder("resnet", modality="image")
def resnet(
    spec: DataSpec,
    output: str = "vector",
    stem_filters: int = 32,
    stage_filters: Sequence[int] = (32, 64, 128),
    blocks_per_stage: int = 1,
) -> keras.Model:
    """A small residual CNN: a 3x3 stem, then stages of basic residual blocks.

    Each stage after the first halves the resolution (strided first convolution with a
    1x1 projection shortcut). The vector output is global average pooling.

    Example:
    >>> mmzoo.build(image="resnet", text="bilstm", fusion="gated", num_classes=3)  # doctest: +SKIP
    """
    check_output("resnet", output, _OUTPUTS)
    inputs, x = _rescaled(spec)
    x = layers.Conv2D(stem_filters, 3, padding="same", use_bias=False, name="stem_conv")(x)
    x = batch_norm(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for s, f in enumerate(stage_filters, start=1):
        for b in range(1, blocks_per_stage + 1):
            stride = 2 if (s > 1 and b == 1) else 1
            x = _residual_block(x, int(f), stride, name=f"stage{s}_block{b}")
    return encoder_model(inputs, image_map_to_output(x, output, "avg"), "image")


def _residual_block(x, filters: int, stride: int, name: str):
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
        shortcut = batch_norm(name=f"{name}_proj_bn")(shortcut)
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = batch_norm(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = batch_norm(name=f"{name}_bn2")(y)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.ReLU(name=f"{name}_out")(y)


@register_encoder("mobilenet", modality="image")
def mobilenet(
    spec: DataSpec,
    output: str = "vector",
    alpha: float = 1.0,
    block_filters: Sequence[int] = (32, 64, 64, 128),
    block_strides: Sequence[int] = (1, 2, 1, 2),
) -> keras.Model:
    """Edge-sized MobileNet-style CNN of depthwise-separable blocks (ReLU6, BatchNorm).

    ``alpha`` scales every width, as in MobileNet.

    Example:
    >>> mmzoo.build(image="mobilenet", text="textcnn", fusion="concat", num_classes=3)  # doctest: +SKIP
    """
    check_output("mobilenet", output, _OUTPUTS)
    if len(block_filters) != len(block_strides):
        raise ValueError(
            "block_filters and block_strides must have the same length. Received: "
            f"{list(block_filters)} and {list(block_strides)}"
        )
    inputs, x = _rescaled(spec)
    x = layers.Conv2D(max(8, int(16 * alpha)), 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = batch_norm(name="stem_bn")(x)
    x = layers.ReLU(6.0, name="stem_relu")(x)
    for i, (f, s) in enumerate(zip(block_filters, block_strides), start=1):
        x = layers.DepthwiseConv2D(3, strides=s, padding="same", use_bias=False, name=f"block{i}_dw")(x)
        x = batch_norm(name=f"block{i}_dw_bn")(x)
        x = layers.ReLU(6.0, name=f"block{i}_dw_relu")(x)
        x = layers.Conv2D(max(8, int(f * alpha)), 1, use_bias=False, name=f"block{i}_pw")(x)
        x = batch_norm(name=f"block{i}_pw_bn")(x)
        x = layers.ReLU(6.0, name=f"block{i}_pw_relu")(x)
    return encoder_model(inputs, image_map_to_output(x, output, "avg"), "image")
