"""Text decoders for captioning: a Transformer decoder (causal self-attention + cross-attention)
and a GRU decoder with attention, each runnable two ways with the same weights:

- ``decoder(tokens, memory)``: teacher forcing over a whole sequence -> logits [batch, steps, vocab];
- ``decoder.init_cache(memory)`` then ``decoder.step(token, index, cache)`` -> (logits [batch, vocab],
  cache): one token a step. The cache (a dict of fixed-shape tensors) holds what earlier steps
  computed (the Transformer's keys / values of every position, the GRU's state) and what the memory
  gives once (cross-attention keys / values), so a step costs one token, not the whole prefix.

Fixed shapes and no slicing by a tensor index (positions are written by one-hot masking), so a
step converts to builtins-only TFLite and runs inside a ``tf.while_loop``.

Example:
>>> decoder = TransformerCaptionDecoder(vocab_size=20, max_length=8, dim=16, num_heads=2)
>>> decoder(np.zeros((2, 8), "int32"), np.zeros((2, 5, 12), "float32")).shape
TensorShape([2, 8, 20])
"""

from __future__ import annotations

import math
from typing import Dict

import keras
from keras import ops

from mmzoo.registry import register_head

Cache = Dict[str, object]


def _split_heads(x, heads: int):
    """[batch, steps, dim] -> [batch, heads, steps, dim / heads]."""
    b, t = ops.shape(x)[0], ops.shape(x)[1]
    return ops.transpose(ops.reshape(x, (b, t, heads, x.shape[-1] // heads)), (0, 2, 1, 3))


def _merge_heads(x):
    """[batch, heads, steps, d] -> [batch, steps, heads * d]."""
    b, t = ops.shape(x)[0], ops.shape(x)[2]
    return ops.reshape(ops.transpose(x, (0, 2, 1, 3)), (b, t, x.shape[1] * x.shape[3]))


def _attend(q, k, v, mask=None):
    """Scaled dot-product attention over heads; ``mask`` broadcasts to the scores (1 = keep).

    Masked positions are dropped after the exponential (``exp(s - max) * mask``, normalised)
    rather than set to a large negative score first: the scores keep their own range, which int8
    quantization needs (a -1e9 in the tensor leaves no resolution for the real scores)."""
    scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / math.sqrt(q.shape[-1])
    if mask is None:
        return ops.matmul(ops.softmax(scores, axis=-1), v)
    keep = ops.cast(mask, scores.dtype)
    floor = ops.min(scores, axis=-1, keepdims=True)  # (the largest kept score, not a masked one)
    top = ops.max(ops.where(mask, scores, floor), axis=-1, keepdims=True)
    weights = ops.exp(ops.minimum(scores - top, 0.0)) * keep
    weights = weights / ops.maximum(ops.sum(weights, axis=-1, keepdims=True), 1e-9)
    return ops.matmul(weights, v)


def _position_mask(index, length: int):
    """One-hot float mask [length] of position ``index`` (a scalar int tensor)."""
    return ops.one_hot(ops.reshape(ops.cast(index, "int32"), (1,)), length, dtype="float32")[0]


class CaptionDecoder(keras.layers.Layer):
    """What both decoders share: the vocabulary, the maximum length and their config."""

    def __init__(self, vocab_size: int, max_length: int, dim: int = 128, dropout: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        if int(vocab_size) < 4:
            raise ValueError(f"vocab_size must be at least 4 (pad, unknown, start, end). Received: {vocab_size}")
        if int(max_length) < 2:
            raise ValueError(f"max_length must be at least 2. Received: {max_length}")
        self.vocab_size = int(vocab_size)
        self.max_length = int(max_length)
        self.dim = int(dim)
        self.dropout = float(dropout)

    def cache_shapes(self, memory_steps: int) -> Dict[str, tuple]:
        """Per-example shape of every cache tensor (the TFLite decode step's inputs)."""
        raise NotImplementedError

    def _build_for(self, memory) -> None:
        """Build on first use from a memory, when decoding starts before any teacher-forced call."""
        if not self.built:
            self.build((None, self.max_length), (None, None, memory.shape[-1]))

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "max_length": self.max_length,
                "dim": self.dim, "dropout": self.dropout}


@register_head("transformer_decoder")
class TransformerCaptionDecoder(CaptionDecoder):
    """Pre-norm Transformer decoder: token + learned position embeddings, ``num_layers`` blocks
    of causal self-attention, cross-attention to the memory and a GELU feed-forward, a final
    normalisation and the vocabulary projection.

    Args:
        vocab_size: output tokens (padding 0, unknown 1, start 2, end 3 included).
        max_length: decoder positions (the start token and the caption's tokens).
        dim: model width; num_heads: attention heads; num_layers: blocks; ff_dim: feed-forward width.
        dropout: after attention, feed-forward and embeddings (training only).

    Example:
    >>> decoder = TransformerCaptionDecoder(vocab_size=20, max_length=8, dim=16, num_heads=2)
    >>> cache = decoder.init_cache(np.zeros((2, 5, 12), "float32"))
    >>> logits, cache = decoder.step(np.array([2, 2]), 0, cache)
    >>> tuple(logits.shape)
    (2, 20)
    """

    def __init__(self, vocab_size: int, max_length: int, dim: int = 128, num_heads: int = 4, num_layers: int = 2,
                 ff_dim: int = 256, dropout: float = 0.1, **kwargs):
        super().__init__(vocab_size, max_length, dim, dropout, **kwargs)
        if self.dim % int(num_heads):
            raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}.")
        self.num_heads = int(num_heads)
        self.num_layers = int(num_layers)
        self.ff_dim = int(ff_dim)
        policy = self.dtype_policy
        dense = lambda units, name, **kw: keras.layers.Dense(units, name=name, dtype=policy, **kw)  # noqa: E731
        self.token_embedding = keras.layers.Embedding(self.vocab_size, self.dim, name="token_embedding",
                                                      dtype=policy)
        self.memory_projection = dense(self.dim, "memory_projection")
        self.blocks = []
        for i in range(self.num_layers):
            self.blocks.append({
                "norm_self": keras.layers.LayerNormalization(name=f"block_{i}_norm_self", dtype=policy),
                "self_query": dense(self.dim, f"block_{i}_self_query"),
                "self_key": dense(self.dim, f"block_{i}_self_key"),
                "self_value": dense(self.dim, f"block_{i}_self_value"),
                "self_output": dense(self.dim, f"block_{i}_self_output"),
                "norm_cross": keras.layers.LayerNormalization(name=f"block_{i}_norm_cross", dtype=policy),
                "cross_query": dense(self.dim, f"block_{i}_cross_query"),
                "cross_key": dense(self.dim, f"block_{i}_cross_key"),
                "cross_value": dense(self.dim, f"block_{i}_cross_value"),
                "cross_output": dense(self.dim, f"block_{i}_cross_output"),
                "norm_ff": keras.layers.LayerNormalization(name=f"block_{i}_norm_ff", dtype=policy),
                "ff_in": dense(self.ff_dim, f"block_{i}_ff_in", activation="gelu"),
                "ff_out": dense(self.dim, f"block_{i}_ff_out"),
            })
        self.final_norm = keras.layers.LayerNormalization(name="final_norm", dtype=policy)
        self.logits_layer = dense(self.vocab_size, "logits")
        self.drop = keras.layers.Dropout(self.dropout, dtype=policy)

    def build(self, tokens_shape, memory_shape=None):
        d = (None, None, self.dim)
        self.token_embedding.build(tokens_shape)
        self.position_embedding = self.add_weight(
            name="position_embedding", shape=(self.max_length, self.dim),
            initializer=keras.initializers.RandomNormal(stddev=0.02))
        self.memory_projection.build(tuple(memory_shape) if memory_shape is not None else d)
        for block in self.blocks:
            for key, layer in block.items():
                layer.build((None, None, self.ff_dim) if key == "ff_out" else d)
        self.final_norm.build(d)
        self.logits_layer.build(d)
        self.built = True

    # ------------------------------------------------------------------ teacher forcing
    def call(self, tokens, memory, training=None):
        steps = tokens.shape[1]
        if steps is not None and steps > self.max_length:
            raise ValueError(f"The decoder has {self.max_length} positions; received {steps} tokens.")
        x = self.token_embedding(tokens) + ops.expand_dims(self.position_embedding[:steps], 0)
        x = self.drop(x, training=training)
        memory = self.memory_projection(memory)
        causal = ops.expand_dims(ops.expand_dims(ops.tril(ops.ones((steps, steps), "bool")), 0), 0)
        for block in self.blocks:
            h = block["norm_self"](x)
            q, k, v = (_split_heads(block[f"self_{n}"](h), self.num_heads) for n in ("query", "key", "value"))
            x = x + self.drop(block["self_output"](_merge_heads(_attend(q, k, v, causal))), training=training)
            x = x + self.drop(self._cross(block, x, _split_heads(block["cross_key"](memory), self.num_heads),
                                          _split_heads(block["cross_value"](memory), self.num_heads)),
                              training=training)
            x = x + self.drop(block["ff_out"](block["ff_in"](block["norm_ff"](x))), training=training)
        return ops.cast(self.logits_layer(self.final_norm(x)), "float32")

    def _cross(self, block, x, keys, values):
        q = _split_heads(block["cross_query"](block["norm_cross"](x)), self.num_heads)
        return block["cross_output"](_merge_heads(_attend(q, keys, values)))

    # ------------------------------------------------------------------ one token a step
    def cache_shapes(self, memory_steps: int) -> Dict[str, tuple]:
        head = self.dim // self.num_heads
        shapes = {}
        for i in range(self.num_layers):
            shapes[f"self_key_{i}"] = shapes[f"self_value_{i}"] = (self.num_heads, self.max_length, head)
            shapes[f"cross_key_{i}"] = shapes[f"cross_value_{i}"] = (self.num_heads, memory_steps, head)
        return shapes

    def init_cache(self, memory) -> Cache:
        """Empty self-attention keys / values and the memory's cross-attention keys / values."""
        self._build_for(memory)
        memory = self.memory_projection(memory)
        batch = ops.shape(memory)[0]
        head = self.dim // self.num_heads
        cache = {}
        for i, block in enumerate(self.blocks):
            empty = ops.zeros((batch, self.num_heads, self.max_length, head), memory.dtype)
            cache[f"self_key_{i}"] = cache[f"self_value_{i}"] = empty
            cache[f"cross_key_{i}"] = _split_heads(block["cross_key"](memory), self.num_heads)
            cache[f"cross_value_{i}"] = _split_heads(block["cross_value"](memory), self.num_heads)
        return cache

    def step(self, token, index, cache: Cache):
        """Logits of the token after ``token`` (int [batch]) at position ``index`` (an int scalar)."""
        onehot = _position_mask(index, self.max_length)  # [T]
        position = ops.matmul(ops.expand_dims(onehot, 0), self.position_embedding)  # [1, dim]
        x = ops.expand_dims(self.token_embedding(token) + position, 1)  # [B, 1, dim]
        keep = ops.reshape(onehot, (1, 1, self.max_length, 1))
        visible = ops.reshape(ops.arange(self.max_length) <= ops.cast(index, "int32"), (1, 1, 1, self.max_length))
        new = dict(cache)
        for i, block in enumerate(self.blocks):
            h = block["norm_self"](x)
            q, k, v = (_split_heads(block[f"self_{n}"](h), self.num_heads) for n in ("query", "key", "value"))
            keys = cache[f"self_key_{i}"] * (1.0 - keep) + k * keep
            values = cache[f"self_value_{i}"] * (1.0 - keep) + v * keep
            new[f"self_key_{i}"], new[f"self_value_{i}"] = keys, values
            x = x + block["self_output"](_merge_heads(_attend(q, keys, values, visible)))
            x = x + self._cross(block, x, cache[f"cross_key_{i}"], cache[f"cross_value_{i}"])
            x = x + block["ff_out"](block["ff_in"](block["norm_ff"](x)))
        logits = self.logits_layer(self.final_norm(x))[:, 0]
        return ops.cast(logits, "float32"), new

    def compute_output_shape(self, tokens_shape, memory_shape=None):
        return tuple(tokens_shape) + (self.vocab_size,)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "num_layers": self.num_layers,
                "ff_dim": self.ff_dim}


@register_head("gru_decoder")
class GRUCaptionDecoder(CaptionDecoder):
    """A GRU decoder with attention (Luong-style): the GRU's state starts from the mean of the
    memory, each output state attends to the memory (scaled dot product over projected keys and
    values), and ``tanh(W [state; context])`` gives the logits.

    Args:
        vocab_size: output tokens (padding 0, unknown 1, start 2, end 3 included).
        max_length: decoder positions. dim: embedding, state and attention width.
        dropout: on the embeddings and before the output (training only).

    Example:
    >>> decoder = GRUCaptionDecoder(vocab_size=20, max_length=8, dim=16)
    >>> decoder(np.zeros((2, 8), "int32"), np.zeros((2, 5, 12), "float32")).shape
    TensorShape([2, 8, 20])
    """

    def __init__(self, vocab_size: int, max_length: int, dim: int = 128, dropout: float = 0.1, **kwargs):
        super().__init__(vocab_size, max_length, dim, dropout, **kwargs)
        from mmzoo.layers.recurrent import FastGRU

        policy = self.dtype_policy
        self.token_embedding = keras.layers.Embedding(self.vocab_size, self.dim, name="token_embedding",
                                                      dtype=policy)
        self.initial_state = keras.layers.Dense(self.dim, activation="tanh", name="initial_state", dtype=policy)
        self.gru = FastGRU(self.dim, return_sequences=True, name="gru", dtype=policy)
        self.attention_query = keras.layers.Dense(self.dim, use_bias=False, name="attention_query", dtype=policy)
        self.attention_key = keras.layers.Dense(self.dim, use_bias=False, name="attention_key", dtype=policy)
        self.attention_value = keras.layers.Dense(self.dim, name="attention_value", dtype=policy)
        self.combine = keras.layers.Dense(self.dim, activation="tanh", name="combine", dtype=policy)
        self.logits_layer = keras.layers.Dense(self.vocab_size, name="logits", dtype=policy)
        self.drop = keras.layers.Dropout(self.dropout, dtype=policy)

    def build(self, tokens_shape, memory_shape=None):
        memory_shape = tuple(memory_shape) if memory_shape is not None else (None, None, self.dim)
        d = (None, None, self.dim)
        self.token_embedding.build(tokens_shape)
        self.initial_state.build((None, memory_shape[-1]))
        self.gru.build(d)
        self.attention_query.build(d)
        self.attention_key.build(memory_shape)
        self.attention_value.build(memory_shape)
        self.combine.build((None, None, 2 * self.dim))
        self.logits_layer.build(d)
        self.built = True

    def _output(self, states, keys, values, training=None):
        q = ops.expand_dims(self.attention_query(states), 1)  # [B, 1, T, d]: one head
        context = _attend(q, ops.expand_dims(keys, 1), ops.expand_dims(values, 1))[:, 0]
        h = self.combine(ops.concatenate([states, context], axis=-1))
        return ops.cast(self.logits_layer(self.drop(h, training=training)), "float32")

    def call(self, tokens, memory, training=None):
        x = self.drop(self.token_embedding(tokens), training=training)
        start = self.initial_state(ops.mean(memory, axis=1))
        states = self.gru(x, initial_state=[start])
        return self._output(states, self.attention_key(memory), self.attention_value(memory), training)

    def cache_shapes(self, memory_steps: int) -> Dict[str, tuple]:
        return {"state": (self.dim,), "memory_key": (memory_steps, self.dim), "memory_value": (memory_steps, self.dim)}

    def init_cache(self, memory) -> Cache:
        self._build_for(memory)
        return {"state": self.initial_state(ops.mean(memory, axis=1)), "memory_key": self.attention_key(memory),
                "memory_value": self.attention_value(memory)}

    def step(self, token, index, cache: Cache):
        """Logits of the token after ``token`` (int [batch]); ``index`` is unused (the state has it)."""
        state, _ = self.gru.cell(self.token_embedding(token), [cache["state"]])
        logits = self._output(ops.expand_dims(state, 1), cache["memory_key"], cache["memory_value"])[:, 0]
        return logits, {**cache, "state": state}

    def compute_output_shape(self, tokens_shape, memory_shape=None):
        return tuple(tokens_shape) + (self.vocab_size,)


#: the decoders by head name (a captioner's ``head=``)
DECODERS = {"transformer_decoder": TransformerCaptionDecoder, "gru_decoder": GRUCaptionDecoder}
