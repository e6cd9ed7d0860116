"""Text encoders: ``bigru`` (default), ``bilstm``, ``textcnn``, ``transformer``.

Input ``text``: int32 token ids ``[batch, seq_len]``; id 0 is padding and is masked
through every branch (recurrent masking, masked pooling, attention masks).
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import layers

from mmzoo.encoders.base import check_output, encoder_model, modality_input
from mmzoo.layers import FastGRU, MaskedGlobalPooling, PositionEmbedding, TokenMask, TransformerEncoderBlock
from mmzoo.registry import register_encoder
from mmzoo.spec import DataSpec

_OUTPUTS = ("vector", "sequence")


def _recurrent_encoder(
    spec: DataSpec,
    output: str,
    cell: type,
    kind: str,
    name: str,
    embedding_dim: int,
    units: int,
    dense_units: int,
    dropout: float,
    unroll: bool,
) -> keras.Model:
    check_output(name, output, _OUTPUTS)
    inputs = modality_input(spec, "text")
    x = layers.Embedding(spec.vocab_size, embedding_dim, mask_zero=True, name="embedding")(inputs)
    rnn = cell(units, return_sequences=(output == "sequence"), unroll=unroll, name=kind)
    x = layers.Bidirectional(rnn, name=f"bi{kind}")(x)
    if output == "vector" and dense_units:
        x = layers.Dense(dense_units, activation="relu", name="dense")(x)
        x = layers.Dropout(dropout, name="dropout")(x)
    return encoder_model(inputs, x, "text")


@register_encoder("bigru", modality="text")
def bigru(
    spec: DataSpec,
    output: str = "vector",
    embedding_dim: int = 128,
    units: int = 64,
    dense_units: int = 64,
    dropout: float = 0.5,
    unroll: bool = False,
) -> keras.Model:
    """``Embedding(mask_zero) + Bidirectional(GRU) + Dense + Dropout``, the default text branch.

    The GRU is `mmzoo.layers.FastGRU`: `keras.layers.GRU` weights and results, with the
    input projection hoisted out of the time loop on CPU (cuDNN on GPU). ``unroll=True`` gives a
    loop-free graph (for TFLite export with fixed ``seq_len``).

    Example:
    >>> mmzoo.build("cnn_gru_concat", num_classes=4)  # doctest: +SKIP
    """
    return _recurrent_encoder(spec, output, FastGRU, "gru", "bigru", embedding_dim, units, dense_units, dropout, unroll)


@register_encoder("bilstm", modality="text")
def bilstm(
    spec: DataSpec,
    output: str = "vector",
    embedding_dim: int = 128,
    units: int = 64,
    dense_units: int = 64,
    dropout: float = 0.5,
    unroll: bool = False,
) -> keras.Model:
    """``Embedding(mask_zero) + Bidirectional(LSTM) + Dense + Dropout``.

    Example:
    >>> mmzoo.build(image="resnet", text="bilstm", fusion="gated", num_classes=3)  # doctest: +SKIP
    """
    return _recurrent_encoder(
        spec, output, layers.LSTM, "lstm", "bilstm", embedding_dim, units, dense_units, dropout, unroll
    )


@register_encoder("textcnn", modality="text")
def textcnn(
    spec: DataSpec,
    output: str = "vector",
    embedding_dim: int = 128,
    filters: int = 64,
    kernel_sizes: Sequence[int] = (3, 4, 5),
    dropout: float = 0.5,
) -> keras.Model:
    """Kim-style TextCNN: parallel ``Conv1D`` widths over embeddings, masked max pooling.

    Example:
    >>> mmzoo.build(image="mobilenet", text="textcnn", fusion="concat", num_classes=3)  # doctest: +SKIP
    """
    check_output("textcnn", output, _OUTPUTS)
    inputs = modality_input(spec, "text")
    mask = TokenMask(name="token_mask")(inputs)
    x = layers.Embedding(spec.vocab_size, embedding_dim, name="embedding")(inputs)
    x = layers.Multiply(name="zero_padding")([x, layers.Reshape((spec.seq_len, 1), name="mask_3d")(mask)])
    branches = [
        layers.Conv1D(filters, int(k), padding="same", activation="relu", name=f"conv_k{k}")(x)
        for k in kernel_sizes
    ]
    if output == "sequence":
        seq = branches[0] if len(branches) == 1 else layers.Concatenate(name="concat")(branches)
        return encoder_model(inputs, seq, "text")
    pooled = [MaskedGlobalPooling("max", name=f"maxpool_k{k}")(b, mask) for k, b in zip(kernel_sizes, branches)]
    x = pooled[0] if len(pooled) == 1 else layers.Concatenate(name="concat")(pooled)
    x = layers.Dropout(dropout, name="dropout")(x)
    return encoder_model(inputs, x, "text")


@register_encoder("transformer", modality="text")
def transformer(
    spec: DataSpec,
    output: str = "vector",
    dim: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    ff_dim: int = 128,
    dropout: float = 0.1,
) -> keras.Model:
    """A small transformer encoder: embeddings + positions, ``num_layers`` blocks, masked mean.

    Example:
    >>> mmzoo.build(image="resnet", text="transformer", fusion="attention", num_classes=3)  # doctest: +SKIP
    """
    check_output("transformer", output, _OUTPUTS)
    inputs = modality_input(spec, "text")
    mask = TokenMask(name="token_mask")(inputs)
    x = layers.Embedding(spec.vocab_size, dim, name="embedding")(inputs)
    x = PositionEmbedding(spec.seq_len, name="positions")(x)
    for i in range(1, num_layers + 1):
        x = TransformerEncoderBlock(num_heads, ff_dim, dropout, name=f"block_{i}")(x, mask)
    x = layers.LayerNormalization(name="final_norm")(x)
    if output == "vector":
        x = MaskedGlobalPooling("mean", name="pool")(x, mask)
    return encoder_model(inputs, x, "text")
