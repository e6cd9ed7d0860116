"""A recommender's encoders: ``user_embedding`` / ``item_embedding`` (an id's learned vector),
``bag`` and ``gru`` over a user's ``history`` of item ids, ``profile_mlp`` over a user's features.

Unknown ids (a new user or item) share index 1, so their vector is learned from the ids kept out
of the vocabulary; history padding (0) is masked.
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from mmzoo.encoders.base import batch_norm, check_output, encoder_model, modality_input
from mmzoo.layers import FastGRU, MaskedGlobalPooling, TokenMask
from mmzoo.registry import register_encoder
from mmzoo.spec import DataSpec


def _id_embedding(spec: DataSpec, modality: str, size: int, output: str, dim: int, dropout: float) -> keras.Model:
    check_output(f"{modality}_embedding", output, ("vector",))
    inputs = modality_input(spec, modality)
    x = layers.Flatten(name="flatten")(layers.Embedding(size, dim, name="embedding")(inputs))
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    return encoder_model(inputs, x, modality)


@register_encoder("user_embedding", modality="user")
def user_embedding(spec: DataSpec, output: str = "vector", dim: int = 32, dropout: float = 0.1) -> keras.Model:
    """``Embedding(num_users, dim)`` of the user id.

    Example:
    >>> mmzoo.build("bag_cnn_gru_twotower", compile=False).query_tower.get_layer("user_encoder")  # doctest: +SKIP
    """
    return _id_embedding(spec, "user", spec.num_users, output, dim, dropout)


@register_encoder("item_embedding", modality="item")
def item_embedding(spec: DataSpec, output: str = "vector", dim: int = 32, dropout: float = 0.1) -> keras.Model:
    """``Embedding(num_items, dim)`` of the item id (what memorises an item's own pull).

    Example:
    >>> mmzoo.build("bag_cnn_gru_twotower", compile=False).candidate_tower.get_layer("item_encoder")  # doctest: +SKIP
    """
    return _id_embedding(spec, "item", spec.num_items, output, dim, dropout)


@register_encoder("bag", modality="history")
def bag(spec: DataSpec, output: str = "vector", dim: int = 64, dropout: float = 0.1) -> keras.Model:
    """The mean of the history's item vectors (padding masked): what the user keeps choosing.

    Example:
    >>> mmzoo.build("bag_cnn_gru_twotower", compile=False)  # doctest: +SKIP
    """
    check_output("bag", output, ("vector", "sequence"))
    inputs = modality_input(spec, "history")
    x = layers.Embedding(spec.num_items, dim, name="embedding")(inputs)
    if output == "sequence":
        return encoder_model(inputs, x, "history")
    x = MaskedGlobalPooling("mean", name="mean")(x, TokenMask(name="history_mask")(inputs))
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    return encoder_model(inputs, x, "history")


@register_encoder("gru", modality="history")
def gru(spec: DataSpec, output: str = "vector", dim: int = 64, units: int = 64, unroll: bool = False) -> keras.Model:
    """A GRU over the history's item vectors, oldest first (the order of the user's choices).

    Example:
    >>> mmzoo.build("gru_cnn_gru_twotower", compile=False)  # doctest: +SKIP
    """
    check_output("gru", output, ("vector", "sequence"))
    inputs = modality_input(spec, "history")
    x = layers.Embedding(spec.num_items, dim, mask_zero=True, name="embedding")(inputs)
    x = FastGRU(units, return_sequences=output == "sequence", unroll=unroll, name="gru")(x)
    return encoder_model(inputs, x, "history")


@register_encoder("profile_mlp", modality="profile")
def profile_mlp(spec: DataSpec, output: str = "vector", units: Sequence[int] = (32,), dropout: float = 0.1
                ) -> keras.Model:
    """BatchNorm'd user features, then ``Dense(relu)`` layers.

    Example:
    >>> mmzoo.build("bag_cnn_gru_twotower", compile=False)  # doctest: +SKIP
    """
    check_output("profile_mlp", output, ("vector",))
    inputs = modality_input(spec, "profile")
    x = batch_norm(name="input_norm")(inputs)
    for i, u in enumerate(units, start=1):
        x = layers.Dropout(dropout, name=f"dropout_{i}")(layers.Dense(int(u), activation="relu", name=f"dense_{i}")(x))
    return encoder_model(inputs, x, "profile")
