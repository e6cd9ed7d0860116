"""Fusion layers: Keras layers that join a dict of modality features into one tensor.

Registered names: ``concat``, ``weighted_sum``, ``gated``, ``attention``, ``film``,
``tensor``, ``low_rank``, ``late``, ``conv``, ``recurrent`` (`mmzoo.list_parts("fusion")`).
"""

from mmzoo.fusion.base import FusionLayer
from mmzoo.fusion.cross import CrossAttentionFusion, FiLMFusion
from mmzoo.fusion.pooled import (
    ConcatFusion,
    ConvFusion,
    GatedFusion,
    LateFusion,
    LowRankFusion,
    RecurrentFusion,
    TensorFusion,
    WeightedSumFusion,
)

__all__ = [
    "FusionLayer",
    "ConcatFusion",
    "ConvFusion",
    "CrossAttentionFusion",
    "FiLMFusion",
    "GatedFusion",
    "LateFusion",
    "LowRankFusion",
    "RecurrentFusion",
    "TensorFusion",
    "WeightedSumFusion",
]
