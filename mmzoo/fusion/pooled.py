"""Fusions of pooled feature vectors: concat, weighted_sum, gated, late, tensor, low_rank,
conv, recurrent."""

from __future__ import annotations

import math

import keras
from keras import ops

from mmzoo.fusion.base import FusionLayer
from mmzoo.layers.recurrent import FastGRU
from mmzoo.registry import register_fusion


def _batch(shapes: dict):
    return next(iter(shapes.values()))[0]


@register_fusion("concat")
class ConcatFusion(FusionLayer):
    """Concatenates the modality vectors (sorted by modality name). No weights.

    Example:
    >>> model = mmzoo.build("cnn_gru_concat", num_classes=10)  # doctest: +SKIP
    """

    reference = "Early/intermediate fusion by concatenation (Ngiam et al., 2011, Multimodal Deep Learning)."

    min_modalities = 1

    def fuse(self, features, masks, training=None):
        parts = [features[m] for m in self.modalities]
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1)

    def fused_shape(self, shapes):
        dims = [shapes[m][-1] for m in sorted(shapes)]
        total = None if None in dims else sum(dims)
        return (_batch(shapes), total)


class _ProjectedFusion(FusionLayer):
    """A fusion that first projects every modality to ``units``."""

    def __init__(self, units: int = 64, **kwargs):
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"units must be >= 1. Received: units={units}")
        self.units = int(units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}

    def fused_shape(self, shapes):
        return (_batch(shapes), self.units)


@register_fusion("weighted_sum")
class WeightedSumFusion(_ProjectedFusion):
    """Projects each modality to ``units`` and sums them with learned softmax weights.

    Args:
        units: size of the projected (and fused) features.

    Example:
    >>> mmzoo.build(image="cnn", text="bigru", fusion="weighted_sum", num_classes=3)  # doctest: +SKIP
    """

    reference = "Learned softmax-weighted sum of projected modality features."

    def build_fusion(self, shapes):
        self.project = self.projections(shapes, self.units, activation="relu")
        self.modality_logits = self.add_weight(
            name="modality_logits", shape=(len(self.modalities),), initializer="zeros"
        )

    def modality_weights(self):
        """The softmax weights, one per modality (sorted names)."""
        return ops.softmax(self.modality_logits)

    def fuse(self, features, masks, training=None):
        weights = ops.cast(self.modality_weights(), self.compute_dtype)
        stacked = ops.stack([self.project[m](features[m]) for m in self.modalities], axis=1)
        return ops.sum(stacked * ops.reshape(weights, (1, -1, 1)), axis=1)


@register_fusion("gated")
class GatedFusion(_ProjectedFusion):
    """Gated multimodal unit (Arevalo et al., 2017), generalised to any number of modalities.

    ``h_m = tanh(W_m x_m)``; gates ``z = softmax_m(W_z [x_1; ...; x_M])`` per unit;
    output ``sum_m z_m * h_m``. With two modalities this is the GMU's sigmoid gate.

    Example:
    >>> mmzoo.build("resnet_bilstm_gated", num_classes=3)  # doctest: +SKIP
    """

    reference = "Arevalo et al., 2017, Gated Multimodal Units for Information Fusion."

    def build_fusion(self, shapes):
        self.project = self.projections(shapes, self.units, activation="tanh")
        total = sum(shapes[m][-1] for m in self.modalities)
        self.gate = self.sublayer(keras.layers.Dense, self.units * len(self.modalities), name="gate")
        self.gate.build((None, total))

    def fuse(self, features, masks, training=None):
        hidden = ops.stack([self.project[m](features[m]) for m in self.modalities], axis=1)
        logits = self.gate(ops.concatenate([features[m] for m in self.modalities], axis=-1))
        gates = ops.softmax(ops.reshape(logits, (-1, len(self.modalities), self.units)), axis=1)
        return ops.sum(gates * hidden, axis=1)


@register_fusion("late")
class LateFusion(_ProjectedFusion):
    """Late fusion: a small head per modality; their outputs (logits) are averaged.

    ``units`` is the number of outputs; the builder sets it to the head's size, and the
    head then only applies its activation.

    Args:
        units: outputs of each per-modality head.
        hidden_units: hidden size of each per-modality head (0 for linear heads).

    Example:
    >>> mmzoo.build("cnn_gru_late", num_classes=5)  # doctest: +SKIP
    """

    reference = (
        "Late fusion / decision averaging (Snoek et al., 2005, Early versus Late Fusion "
        "in Semantic Video Analysis)."
    )

    produces_logits = True

    def __init__(self, units: int = 2, hidden_units: int = 64, **kwargs):
        super().__init__(units=units, **kwargs)
        self.hidden_units = int(hidden_units)

    def build_fusion(self, shapes):
        self.hidden = {}
        self.out = {}
        for m in self.modalities:
            dim = shapes[m]
            if self.hidden_units:
                self.hidden[m] = self.sublayer(
                    keras.layers.Dense, self.hidden_units, activation="relu", name=f"hidden_{m}"
                )
                self.hidden[m].build(dim)
                dim = (None, self.hidden_units)
            self.out[m] = self.sublayer(keras.layers.Dense, self.units, name=f"logits_{m}")
            self.out[m].build(dim)

    def per_modality_outputs(self, features):
        outs = {}
        for m in self.modalities:
            x = features[m]
            if self.hidden_units:
                x = self.hidden[m](x)
            outs[m] = self.out[m](x)
        return outs

    def fuse(self, features, masks, training=None):
        outs = self.per_modality_outputs(features)
        return ops.mean(ops.stack([outs[m] for m in self.modalities], axis=1), axis=1)

    def get_config(self):
        return {**super().get_config(), "hidden_units": self.hidden_units}


@register_fusion("tensor")
class TensorFusion(_ProjectedFusion):
    """Tensor fusion (Zadeh et al., 2017): the outer product of ``[h_m, 1]`` over modalities.

    Each modality is projected to ``units`` first; the output has ``(units + 1) ** M``
    features and holds every unimodal, bimodal and trimodal interaction.

    Example:
    >>> mmzoo.build("cnn_gru_melcnn_tensor", num_classes=3)  # doctest: +SKIP
    """

    reference = "Zadeh et al., 2017, Tensor Fusion Network for Multimodal Sentiment Analysis."

    def __init__(self, units: int = 16, **kwargs):
        super().__init__(units=units, **kwargs)

    def build_fusion(self, shapes):
        self.project = self.projections(shapes, self.units, activation="relu")

    def fuse(self, features, masks, training=None):
        fused = None
        for m in self.modalities:
            h = self.project[m](features[m])
            h = ops.concatenate([h, ops.ones_like(h[:, :1])], axis=-1)
            if fused is None:
                fused = h
            else:
                outer = ops.expand_dims(fused, 2) * ops.expand_dims(h, 1)
                fused = ops.reshape(outer, (-1, outer.shape[1] * outer.shape[2]))
        return fused

    def fused_shape(self, shapes):
        return (_batch(shapes), (self.units + 1) ** len(shapes))


@register_fusion("low_rank")
class LowRankFusion(_ProjectedFusion):
    """Low-rank multimodal fusion (Liu et al., 2018): tensor fusion with the weight tensor
    factorised into ``rank`` modality-specific factors, linear in the number of modalities.

    ``out = sum_r prod_m ([x_m, 1] W_m^(r)) + b``.

    Args:
        units: output size. rank: number of factors.

    Example:
    >>> mmzoo.build("cnn_gru_melcnn_lowrank", num_classes=3)  # doctest: +SKIP
    """

    reference = "Liu et al., 2018, Efficient Low-rank Multimodal Fusion with Modality-Specific Factors."

    def __init__(self, units: int = 64, rank: int = 4, **kwargs):
        super().__init__(units=units, **kwargs)
        self.rank = int(rank)

    def build_fusion(self, shapes):
        self.factors = {}
        for m in self.modalities:
            dim = shapes[m][-1] + 1
            self.factors[m] = self.add_weight(
                name=f"factor_{m}",
                shape=(dim, self.rank * self.units),
                initializer=keras.initializers.RandomNormal(stddev=1.0 / math.sqrt(dim)),
            )
        self.rank_weights = self.add_weight(name="rank_weights", shape=(self.rank,), initializer="ones")
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def fuse(self, features, masks, training=None):
        product = None
        for m in self.modalities:
            x = features[m]
            x = ops.concatenate([x, ops.ones_like(x[:, :1])], axis=-1)
            z = ops.reshape(ops.matmul(x, self.factors[m]), (-1, self.rank, self.units))
            product = z if product is None else product * z
        weights = ops.reshape(self.rank_weights, (1, self.rank, 1))
        return ops.sum(product * weights, axis=1) + self.bias

    def get_config(self):
        return {**super().get_config(), "rank": self.rank}


@register_fusion("conv")
class ConvFusion(_ProjectedFusion):
    """Projects each modality to ``units``, stacks them as a sequence ``[batch, M, units]``
    (sorted order) and convolves across modalities (``Conv1D``), then flattens.

    Example:
    >>> mmzoo.build("cnn_transformer_conv", num_classes=3)  # doctest: +SKIP
    """

    reference = (
        "Convolution across stacked modality features (as in CentralNet-style and 1D-conv fusion "
        "baselines)."
    )

    def __init__(self, units: int = 64, filters: int = 64, kernel_size: int = 2, **kwargs):
        super().__init__(units=units, **kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)

    def build_fusion(self, shapes):
        self.project = self.projections(shapes, self.units, activation="relu")
        self.conv = self.sublayer(
            keras.layers.Conv1D, self.filters, self.kernel_size, padding="same", activation="relu", name="conv"
        )
        self.conv.build((None, len(self.modalities), self.units))

    def fuse(self, features, masks, training=None):
        stacked = ops.stack([self.project[m](features[m]) for m in self.modalities], axis=1)
        x = self.conv(stacked)
        return ops.reshape(x, (-1, len(self.modalities) * self.filters))

    def fused_shape(self, shapes):
        return (_batch(shapes), len(shapes) * self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size}


@register_fusion("recurrent")
class RecurrentFusion(_ProjectedFusion):
    """Projects each modality to ``units`` and runs a GRU over the modality sequence
    (sorted order); the final state is the fused feature.

    Args:
        units: projection and GRU size. unroll: loop-free graph (for TFLite).

    Example:
    >>> mmzoo.build("cnn_gru_crnn_recurrent", num_classes=3)  # doctest: +SKIP
    """

    reference = "Recurrent fusion over the modality sequence (cf. Memory Fusion Network, Zadeh et al., 2018)."

    def __init__(self, units: int = 64, unroll: bool = True, **kwargs):
        super().__init__(units=units, **kwargs)
        self.unroll = bool(unroll)

    def build_fusion(self, shapes):
        self.project = self.projections(shapes, self.units, activation="relu")
        self.gru = self.sublayer(FastGRU, self.units, unroll=self.unroll, name="gru")
        self.gru.build((None, len(self.modalities), self.units))

    def fuse(self, features, masks, training=None):
        stacked = ops.stack([self.project[m](features[m]) for m in self.modalities], axis=1)
        return self.gru(stacked, training=training)

    def get_config(self):
        return {**super().get_config(), "unroll": self.unroll}
