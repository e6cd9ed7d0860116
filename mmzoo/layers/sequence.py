"""Layers for token sequences: padding masks, masked pooling, position embeddings."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mmzoo")
class TokenMask(keras.layers.Layer):
    """Token ids ``[batch, seq_len]`` to a float mask, 1 for real tokens, 0 for padding.

    Args:
        padding_id: the id used for padding (0 in mmzoo).

    Example:
    >>> mmzoo.layers.TokenMask()(np.array([[5, 3, 0]]))
    <tf.Tensor: ... numpy=array([[1., 1., 0.]], dtype=float32)>
    """

    def __init__(self, padding_id: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.padding_id = int(padding_id)

    def call(self, inputs):
        return ops.cast(ops.not_equal(inputs, self.padding_id), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "padding_id": self.padding_id}


@keras.saving.register_keras_serializable(package="mmzoo")
class MaskedGlobalPooling(keras.layers.Layer):
    """Pool ``[batch, steps, features]`` over steps, ignoring masked (0) steps.

    Call with ``layer(sequence, padding_mask)``; the mask is ``[batch, steps]`` of 0/1. A row whose
    mask is all zeros (an empty text) pools to zeros for ``mean`` and ``max``.

    Args:
        mode: ``"mean"`` or ``"max"``.

    Example:
    >>> pool = mmzoo.layers.MaskedGlobalPooling("mean")
    >>> pool(np.ones((1, 3, 2)), np.array([[1., 1., 0.]])).shape
    TensorShape([1, 2])
    """

    def __init__(self, mode: str = "mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("mean", "max"):
            raise ValueError(f"mode must be 'mean' or 'max'. Received: mode={mode!r}")
        self.mode = mode

    def build(self, inputs_shape, padding_mask_shape=None):
        pass

    def call(self, inputs, padding_mask=None):
        sequence, mask = inputs, padding_mask
        if mask is None:
            return ops.mean(sequence, axis=1) if self.mode == "mean" else ops.max(sequence, axis=1)
        mask = ops.expand_dims(ops.cast(mask, sequence.dtype), -1)
        if self.mode == "mean":
            total = ops.sum(sequence * mask, axis=1)
            count = ops.maximum(ops.sum(mask, axis=1), 1.0)
            return total / count
        # Large negative for padding, then zero rows that had no token at all.
        lowest = ops.cast(-1e4 if sequence.dtype == "float16" else -1e9, sequence.dtype)
        pooled = ops.max(sequence * mask + (1.0 - mask) * lowest, axis=1)
        any_token = ops.cast(ops.sum(mask, axis=1) > 0, sequence.dtype)
        return pooled * any_token

    def compute_output_shape(self, inputs_shape, padding_mask_shape=None):
        return (inputs_shape[0], inputs_shape[-1])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="mmzoo")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned position embedding to ``[batch, steps, features]``.

    Args:
        max_length: the largest number of steps.

    Example:
    >>> mmzoo.layers.PositionEmbedding(max_length=32)(np.zeros((2, 32, 8))).shape
    TensorShape([2, 32, 8])
    """

    def __init__(self, max_length: int, **kwargs):
        super().__init__(**kwargs)
        if int(max_length) < 1:
            raise ValueError(f"max_length must be >= 1. Received: max_length={max_length}")
        self.max_length = int(max_length)

    def build(self, input_shape):
        steps = input_shape[-2]
        if steps is not None and steps > self.max_length:
            raise ValueError(
                f"PositionEmbedding(max_length={self.max_length}) got {steps} steps "
                f"(input shape {tuple(input_shape)})."
            )
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.max_length, input_shape[-1]),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
        )

    def call(self, inputs):
        steps = ops.shape(inputs)[-2]
        positions = ops.cast(self.embeddings[:steps], inputs.dtype)
        return inputs + ops.expand_dims(positions, 0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "max_length": self.max_length}
