"""A small pre-norm transformer encoder block with a padding mask."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mmzoo")
class TransformerEncoderBlock(keras.layers.Layer):
    """Self-attention + feed-forward block over ``[batch, steps, dim]``.

    Call with ``block(x, padding_mask)`` where ``padding_mask`` is ``[batch, steps]`` of 0/1 (1 = token).

    Args:
        num_heads: attention heads.
        ff_dim: hidden size of the feed-forward part.
        dropout: dropout rate after attention and feed-forward.

    Example:
    >>> block = mmzoo.layers.TransformerEncoderBlock(num_heads=2, ff_dim=32)
    >>> block(np.zeros((2, 8, 16)), np.ones((2, 8))).shape
    TensorShape([2, 8, 16])
    """

    def __init__(self, num_heads: int = 2, ff_dim: int = 128, dropout: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.ff_dim = int(ff_dim)
        self.dropout = float(dropout)

    def build(self, inputs_shape, padding_mask_shape=None):
        input_shape = inputs_shape
        dim = input_shape[-1]
        if dim % self.num_heads:
            raise ValueError(
                f"Feature size {dim} must be divisible by num_heads={self.num_heads}."
            )
        policy = self.dtype_policy
        self.norm_attention = keras.layers.LayerNormalization(name="norm_attention", dtype=policy)
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads, dim // self.num_heads, name="attention", dtype=policy
        )
        self.norm_ff = keras.layers.LayerNormalization(name="norm_ff", dtype=policy)
        self.ff_in = keras.layers.Dense(self.ff_dim, activation="gelu", name="ff_in", dtype=policy)
        self.ff_out = keras.layers.Dense(dim, name="ff_out", dtype=policy)
        self.drop = keras.layers.Dropout(self.dropout, dtype=policy)
        self.norm_attention.build(input_shape)
        self.attention.build(input_shape, input_shape)
        self.norm_ff.build(input_shape)
        self.ff_in.build(input_shape)
        self.ff_out.build(tuple(input_shape[:-1]) + (self.ff_dim,))

    def call(self, inputs, padding_mask=None, training=None):
        attention_mask = None
        if padding_mask is not None:
            m = ops.cast(padding_mask, "bool")
            attention_mask = ops.logical_and(ops.expand_dims(m, 1), ops.expand_dims(m, 2))
        h = self.norm_attention(inputs)
        h = self.attention(h, h, attention_mask=attention_mask, training=training)
        x = inputs + self.drop(h, training=training)
        h = self.ff_out(self.ff_in(self.norm_ff(x)))
        return x + self.drop(h, training=training)

    def compute_output_shape(self, inputs_shape, padding_mask_shape=None):
        return tuple(inputs_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"num_heads": self.num_heads, "ff_dim": self.ff_dim, "dropout": self.dropout})
        return config
