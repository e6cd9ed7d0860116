"""Pretrained zoo weights: small weight files shipped in the package, hash-checked.

Each ``mmzoo/weights/<preset>.<tag>.json`` describes one weights file: its sha256, the data
spec it was trained with (shapes, vocabulary, class names), the dataset and the test
accuracy reached. ``mmzoo.build(preset, weights="shapes_vqa")`` builds the preset for that
spec and loads the weights. Reading the descriptions does not import TensorFlow.

To (re)make them: ``python -m mmzoo.pretrained cnn_gru_film image_text 12``.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import sys
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


def make(preset: str, config: str, epochs: int, tag: str = "shapes_vqa", data_dir: Optional[str] = None) -> dict:
    """Train ``preset`` on the built-in dataset and write its weights + description here."""
    import tempfile

    from mmzoo import datasets
    from mmzoo.training.trainer import train

    data = datasets.load("shapes_vqa", config=config, data_dir=data_dir, seq_len=12)
    out = tempfile.mkdtemp(prefix=f"mmzoo-weights-{preset}-")
    run = train(preset, data, epochs=epochs, out=out, learning_rate=3e-3, schedule="cosine", seed=0, verbose=2)
    return from_run(run.root, tag)


def from_run(run_dir: str, tag: str = "shapes_vqa") -> dict:
    """Package a finished shapes_vqa run's weights as shipped zoo weights."""
    from mmzoo.training.run import write_atomic
    from mmzoo.training.trainer import Run

    run = Run(run_dir)
    config = run.config
    preset = config["preset"]
    from mmzoo.zoo import resolve_config

    if config["build"] and resolve_config(preset, **config["build"]) != resolve_config(preset):
        raise ValueError(f"Only runs of the preset as it is can ship; this one has overrides {config['build']}.")
    dataset = config["data"]["name"]
    if not dataset.startswith("shapes_vqa/"):
        raise ValueError(f"Zoo weights are trained on shapes_vqa; this run used {dataset!r}.")
    os.makedirs(WEIGHTS_DIR, exist_ok=True)
    file = f"{preset}.{tag}.weights.h5"
    tmp = os.path.join(WEIGHTS_DIR, f".tmp-{file}")
    # An uncompiled copy: the file holds the model's weights only, no optimizer state.
    from mmzoo.zoo import build

    plain = build(preset, spec=run.spec, compile=False)
    plain.set_weights(run.model.get_weights())
    plain.save_weights(tmp)
    os.replace(tmp, os.path.join(WEIGHTS_DIR, file))
    m = run.metrics
    info = {
        "file": file,
        "sha256": sha256(os.path.join(WEIGHTS_DIR, file)),
        "preset": preset,
        "dataset": dataset,
        "epochs": m["epochs_run"],
        "training": {k: config[k] for k in ("batch_size", "optimizer", "learning_rate", "schedule", "seed")},
        "accuracy": round(m["test"]["accuracy"], 4),
        "ablation": m["ablation"],
        "spec": run.spec.to_dict(),
    }
    write_atomic(os.path.join(WEIGHTS_DIR, f"{preset}.{tag}.json"), info)
    return info


if __name__ == "__main__":
    if len(sys.argv) < 4:
        print("usage: python -m mmzoo.pretrained PRESET SHAPES_VQA_CONFIG EPOCHS", file=sys.stderr)
        sys.exit(2)
    result = make(sys.argv[1], sys.argv[2], int(sys.argv[3]))
    print(json.dumps({k: v for k, v in result.items() if k != "spec"}, indent=2))
