"""Custom Keras layers used by mmzoo encoders (all registered under package ``mmzoo``)."""

from mmzoo.layers.audio import LogMelSpectrogram, SpecAugment
from mmzoo.layers.normalization import BatchNormalization
from mmzoo.layers.recurrent import FastGRU
from mmzoo.layers.sequence import MaskedGlobalPooling, PositionEmbedding, TokenMask
from mmzoo.layers.transformer import TransformerEncoderBlock

__all__ = [
    "BatchNormalization",
    "FastGRU",
    "LogMelSpectrogram",
    "SpecAugment",
    "MaskedGlobalPooling",
    "PositionEmbedding",
    "TokenMask",
    "TransformerEncoderBlock",
]
