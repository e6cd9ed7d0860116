"""Fusions that look inside the modalities: cross-modal attention and FiLM."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from mmzoo.fusion.base import FusionLayer
from mmzoo.layers.sequence import PositionEmbedding
from mmzoo.registry import register_fusion


@register_fusion("attention")
class CrossAttentionFusion(FusionLayer):
    """Cross-modal multi-head attention over the modalities' token sequences.

    Every modality's tokens (text tokens, image patches, audio frames, a tabular token)
    are projected to ``units`` and tagged with a learned modality embedding. Each modality
    then attends to the tokens of all the others (text tokens attend to image patches and
    image patches to text tokens), with a residual and layer norm, and is mean-pooled over
    its own (unpadded) tokens. The pooled vectors are concatenated: ``M * units`` features.

    With ``positions=True`` each token also gets a learned embedding of its place in its
    sequence (an image's patch grid, an audio clip's frames): attention by itself is blind to
    order, and a convolution's patches say what is there, not where.

    Args:
        units: token size inside the fusion (divisible by ``num_heads``).
        num_heads: attention heads.
        dropout: attention dropout.
        positions: add learned position embeddings to every modality's tokens.

    Example:
    >>> mmzoo.build("cnn_gru_attention", num_classes=4, seq_len=48)  # doctest: +SKIP
    """

    reference = (
        "Tsai et al., 2019, Multimodal Transformer for Unaligned Multimodal Language "
        "Sequences; Lu et al., 2019, ViLBERT (co-attention)."
    )

    input_kind = "sequence"

    def __init__(self, units: int = 64, num_heads: int = 4, dropout: float = 0.1, positions: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        if int(units) % int(num_heads):
            raise ValueError(
                f"units must be divisible by num_heads. Received: units={units}, num_heads={num_heads}"
            )
        self.units = int(units)
        self.num_heads = int(num_heads)
        self.dropout = float(dropout)
        self.positions = bool(positions)

    def build_fusion(self, shapes):
        self.project = self.projections(shapes, self.units)
        self.modality_embedding = self.add_weight(
            name="modality_embedding",
            shape=(len(self.modalities), self.units),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
        )
        self.position_embedding = {}
        if self.positions:
            for m in self.modalities:
                if shapes[m][1] is None:
                    raise ValueError(f"attention fusion with positions needs a fixed number of {m} tokens; "
                                     f"got the shape {tuple(shapes[m])}.")
                self.position_embedding[m] = self.sublayer(PositionEmbedding, int(shapes[m][1]), name=f"{m}_positions")
                self.position_embedding[m].build((None, shapes[m][1], self.units))
        self.attend, self.norm = {}, {}
        for m in self.modalities:
            self.attend[m] = self.sublayer(
                keras.layers.MultiHeadAttention,
                self.num_heads,
                self.units // self.num_heads,
                dropout=self.dropout,
                name=f"{m}_attends",
            )
            query = (None, shapes[m][1], self.units)
            others = sum(shapes[o][1] for o in self.modalities if o != m)
            self.attend[m].build(query, (None, others, self.units))
            self.norm[m] = self.sublayer(keras.layers.LayerNormalization, name=f"{m}_norm")
            self.norm[m].build(query)

    def fuse(self, features, masks, training=None):
        tokens, token_masks = {}, {}
        for i, m in enumerate(self.modalities):
            x = self.project[m](features[m]) + ops.cast(self.modality_embedding[i], self.compute_dtype)
            if self.positions:
                x = self.position_embedding[m](x)
            tokens[m] = x
            mask = masks.get(m)
            token_masks[m] = ops.ones(ops.shape(x)[:2], dtype="bool") if mask is None else ops.cast(mask, "bool")
        pooled = []
        for m in self.modalities:
            others = [o for o in self.modalities if o != m]
            keys = ops.concatenate([tokens[o] for o in others], axis=1)
            key_mask = ops.concatenate([token_masks[o] for o in others], axis=1)
            attention_mask = ops.logical_and(
                ops.expand_dims(token_masks[m], 2), ops.expand_dims(key_mask, 1)
            )
            attended = self.attend[m](tokens[m], keys, attention_mask=attention_mask, training=training)
            x = self.norm[m](tokens[m] + attended)
            weight = ops.expand_dims(ops.cast(token_masks[m], x.dtype), -1)
            count = ops.maximum(ops.sum(weight, axis=1), 1.0)
            pooled.append(ops.sum(x * weight, axis=1) / count)
        return ops.concatenate(pooled, axis=-1)

    def fused_shape(self, shapes):
        return (next(iter(shapes.values()))[0], self.units * len(shapes))

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "num_heads": self.num_heads, "dropout": self.dropout,
                       "positions": self.positions})
        return config


@register_fusion("film")
class FiLMFusion(FusionLayer):
    """Feature-wise linear modulation (Perez et al., 2018) of the image feature map.

    The conditioning vector (text, plus audio/tabular when present) predicts a scale and
    shift per channel for each of ``num_blocks`` residual blocks
    ``x + relu((1 + gamma) * conv(x) + beta)`` over the image map. The modulated map is
    average- and max-pooled and concatenated with the conditioning vectors.

    With ``coordinates=True`` each block's convolution also reads two maps of the cells' x and
    y positions (from -1 to 1), as in the paper: a convolution's features say what is there,
    not where, and the pooling after the blocks forgets where; with the positions a question
    such as "the left one" can select features by place.

    Args:
        num_blocks: FiLM'd residual blocks.
        filters: channels inside the blocks (defaults to the map's channels).
        coordinates: give the blocks the x / y position maps.

    Example:
    >>> mmzoo.build("cnn_gru_film", num_classes=4)  # doctest: +SKIP
    """

    reference = "Perez et al., 2018, FiLM: Visual Reasoning with a General Conditioning Layer."

    required_modalities = ("image", "text")

    def __init__(self, num_blocks: int = 2, filters: int | None = None, coordinates: bool = False, **kwargs):
        super().__init__(**kwargs)
        if int(num_blocks) < 1:
            raise ValueError(f"num_blocks must be >= 1. Received: num_blocks={num_blocks}")
        self.num_blocks = int(num_blocks)
        self.filters = None if filters is None else int(filters)
        self.coordinates = bool(coordinates)

    @classmethod
    def input_kinds(cls, modalities):
        return {m: ("map" if m == "image" else "vector") for m in modalities}

    def _conditions(self):
        return [m for m in self.modalities if m != "image"]

    def build_fusion(self, shapes):
        channels = self.filters or shapes["image"][-1]
        self._channels = channels
        cond_dim = sum(shapes[m][-1] for m in self._conditions())
        map_shape = shapes["image"]
        if self.filters and self.filters != map_shape[-1]:
            self.map_projection = self.sublayer(keras.layers.Conv2D, channels, 1, name="map_projection")
            self.map_projection.build(map_shape)
        else:
            self.map_projection = None
        block_shape = tuple(map_shape[:-1]) + (channels + (2 if self.coordinates else 0),)
        if self.coordinates:
            height, width = int(map_shape[1]), int(map_shape[2])
            ys, xs = np.meshgrid(np.linspace(-1, 1, height), np.linspace(-1, 1, width), indexing="ij")
            self._positions = np.stack([xs, ys], axis=-1)[None].astype("float32")  # [1, H, W, 2]
        self.convs, self.films = [], []
        for b in range(1, self.num_blocks + 1):
            conv = self.sublayer(keras.layers.Conv2D, channels, 3, padding="same", name=f"block{b}_conv")
            conv.build(block_shape)
            film = self.sublayer(
                keras.layers.Dense, 2 * channels, kernel_initializer="zeros", name=f"block{b}_film"
            )
            film.build((None, cond_dim))
            self.convs.append(conv)
            self.films.append(film)

    def fuse(self, features, masks, training=None):
        conditions = [features[m] for m in self._conditions()]
        cond = conditions[0] if len(conditions) == 1 else ops.concatenate(conditions, axis=-1)
        x = features["image"]
        if self.map_projection is not None:
            x = self.map_projection(x)
        maps = self._position_maps(x) if self.coordinates else None  # the same for every block
        for conv, film in zip(self.convs, self.films):
            gamma_beta = film(cond)
            gamma = ops.reshape(gamma_beta[:, : self._channels], (-1, 1, 1, self._channels))
            beta = ops.reshape(gamma_beta[:, self._channels :], (-1, 1, 1, self._channels))
            x = x + ops.relu((1.0 + gamma) * conv(self._with_positions(x, maps)) + beta)
        pooled = [ops.mean(x, axis=(1, 2)), ops.max(x, axis=(1, 2))]
        return ops.concatenate(pooled + conditions, axis=-1)

    def _position_maps(self, x):
        """The x / y maps, one per example of ``x`` [batch, H, W, 2]."""
        positions = ops.cast(ops.convert_to_tensor(self._positions), x.dtype)
        return ops.tile(positions, (ops.shape(x)[0], 1, 1, 1))

    def _with_positions(self, x, maps=None):
        if not self.coordinates:
            return x
        return ops.concatenate([x, self._position_maps(x) if maps is None else maps], axis=-1)

    def fused_shape(self, shapes):
        channels = self.filters or shapes["image"][-1]
        cond_dim = sum(shapes[m][-1] for m in shapes if m != "image")
        return (shapes["image"][0], 2 * channels + cond_dim)

    def get_config(self):
        return {**super().get_config(), "num_blocks": self.num_blocks, "filters": self.filters,
                "coordinates": self.coordinates}
