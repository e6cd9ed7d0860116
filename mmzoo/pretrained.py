"""Pretrained zoo weights: small weight files shipped in the package, hash-checked.

Each ``mmzoo/weights/<preset>.<tag>.json`` describes one weights file: its sha256, the data
spec it was trained with (shapes, vocabulary, class names), the dataset and the test
accuracy reached, and (``build``) the options the preset had then where it has changed since
(``{"fusion_options": {"coordinates": false}}``: FiLM without position maps).
``mmzoo.build(preset, weights="shapes_vqa")`` builds the preset for that spec and loads the
weights. Reading the descriptions does not import TensorFlow.

To (re)make them: ``python -m mmzoo.training.ship_weights cnn_gru_film image_text 12``.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from typing import Dict, Optional

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def available(preset: Optional[str] = None) -> Dict[str, Dict[str, dict]]:
    """``{preset: {tag: description}}`` of the shipped weights (optionally for one preset)."""
    found: Dict[str, Dict[str, dict]] = {}
    for path in sorted(glob.glob(os.path.join(WEIGHTS_DIR, "*.json"))):
        name, tag = os.path.basename(path)[: -len(".json")].rsplit(".", 1)
        if preset is None or name == preset:
            with open(path, encoding="utf-8") as f:
                found.setdefault(name, {})[tag] = json.load(f)
    return found


def resolve(preset: Optional[str], weights: str) -> dict:
    """Find and verify a weights file: a shipped tag (``"shapes_vqa"``) or a file path.

    Returns ``{"path": ..., "spec": {...} or None, ...}``; raises ValueError with the
    available tags when the tag is unknown, and when the file's hash does not match.
    """
    if os.path.sep in weights or weights.endswith((".h5", ".keras")) or os.path.exists(weights):
        if not os.path.isfile(weights):
            raise ValueError(f"weights file not found: {weights!r}")
        return {"path": weights, "spec": None}
    shipped = available(preset).get(preset or "", {})
    if weights not in shipped:
        tags = sorted(shipped)
        raise ValueError(
            f"No pretrained weights {weights!r} for preset {preset!r}. "
            + (f"Available: {tags}." if tags else "This preset ships no weights; presets with weights: "
               f"{sorted(available())}.")
        )
    info = dict(shipped[weights])
    path = os.path.join(WEIGHTS_DIR, info["file"])
    if not os.path.isfile(path):
        raise ValueError(f"The weights file {path!r} is missing from the installed package.")
    actual = sha256(path)
    if actual != info["sha256"]:
        raise ValueError(
            f"The weights file {path!r} is corrupt: sha256 {actual} does not match the recorded {info['sha256']}."
        )
    info["path"] = path
    return info
