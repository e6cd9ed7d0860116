"""Input kinds as records: ``image``, ``text``, ``audio``, ``tabular``, and a recommender's
``user``, ``item``, ``history``, ``profile`` (`Modality`).

A new input kind is one module here that adds its record to `mmzoo.registry.MODALITIES`
(and its name to `mmzoo.registry.MODALITY_NAMES`, its settings to `mmzoo.spec.DataSpec`).

Example:
>>> [m.name for m in mmzoo.modalities.records(mmzoo.DataSpec())]
['image', 'text']
"""

from __future__ import annotations

from typing import List

from mmzoo.modalities import audio, ids, image, tabular, text  # noqa: F401  (each adds its record)
from mmzoo.modalities.base import Modality, checked_map, reject_positions
from mmzoo.registry import MODALITIES

__all__ = ["Modality", "checked_map", "get_modality", "records", "reject_positions"]


def get_modality(name: str) -> Modality:
    """The record of one input kind; unknown names list the known ones."""
    return MODALITIES.get(name)


def records(spec) -> List[Modality]:
    """The records of a spec's inputs, in the spec's (sorted) order."""
    return [MODALITIES.get(m) for m in spec.modalities]
