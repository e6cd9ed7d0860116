"""Shared pieces of the encoder builders."""

from __future__ import annotations

from typing import Sequence

import keras

from mmzoo.layers import normalization
from mmzoo.spec import DataSpec

OUTPUT_KINDS = ("vector", "sequence", "map")

# Keras' default BatchNormalization momentum (0.99) averages over ~100 steps: on a few hundred
# rows (5 steps an epoch) the moving statistics used at inference were still near their
# initial values after 20 epochs, and validation sat at chance while training accuracy climbed
# (a spoken-digit task: 10% -> 75% with 0.9). 0.9 is PyTorch's default (its momentum=0.1).
BN_MOMENTUM = 0.9


def batch_norm(name: str) -> keras.layers.BatchNormalization:
    """The encoders' BatchNormalization (momentum `BN_MOMENTUM`, so small data gets usable
    inference statistics within a few dozen steps), trained with the fused kernel
    (`mmzoo.layers.BatchNormalization`)."""
    return normalization.BatchNormalization(momentum=BN_MOMENTUM, name=name)


def modality_input(spec: DataSpec, modality: str) -> keras.KerasTensor:
    """The ``keras.Input`` of one modality, shaped and typed by the spec."""
    return keras.Input(
        shape=spec.input_shapes()[modality], dtype=spec.input_dtypes()[modality], name=modality
    )


def check_output(name: str, output: str, supported: Sequence[str]) -> None:
    if output not in supported:
        raise ValueError(
            f"Encoder {name!r} cannot produce output={output!r}. It supports: {list(supported)}."
        )


def encoder_model(inputs, outputs, modality: str) -> keras.Model:
    """Wrap an encoder's graph as a functional model named ``<modality>_encoder``."""
    return keras.Model(inputs, outputs, name=f"{modality}_encoder")


def image_map_to_output(feature_map, output: str, vector: str = "avg"):
    """Turn an image feature map into the requested output kind."""
    if output == "map":
        return feature_map
    if output == "sequence":
        _, h, w, c = feature_map.shape
        return keras.layers.Reshape((h * w, c), name="patches")(feature_map)
    if vector == "flatten":
        return keras.layers.Flatten(name="flatten")(feature_map)
    return keras.layers.GlobalAveragePooling2D(name="pool")(feature_map)
