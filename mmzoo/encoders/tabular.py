"""Tabular encoder: ``mlp`` over a float vector input ``tabular``."""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from mmzoo.encoders.base import batch_norm, check_output, encoder_model, modality_input
from mmzoo.registry import register_encoder
from mmzoo.spec import DataSpec


@register_encoder("mlp", modality="tabular")
def mlp(
    spec: DataSpec,
    output: str = "vector",
    units: Sequence[int] = (64, 64),
    dropout: float = 0.1,
) -> keras.Model:
    """BatchNorm'd inputs, then ``Dense(relu)`` layers (user-behaviour / item features).

    The sequence output is the final vector as a single token ``[batch, 1, dim]``.

    Example:
    >>> mmzoo.build(tabular="mlp", text="bigru", fusion="concat", num_classes=2)  # doctest: +SKIP
    """
    check_output("mlp", output, ("vector", "sequence"))
    inputs = modality_input(spec, "tabular")
    x = batch_norm(name="input_norm")(inputs)
    for i, u in enumerate(units, start=1):
        x = layers.Dense(int(u), activation="relu", name=f"dense_{i}")(x)
        x = layers.Dropout(dropout, name=f"dropout_{i}")(x)
    if output == "sequence":
        x = layers.Reshape((1, x.shape[-1]), name="as_token")(x)
    return encoder_model(inputs, x, "tabular")
