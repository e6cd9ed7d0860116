"""Make the zoo's shipped weights: train a preset on the built-in data, then write its
weights file and description into ``mmzoo/weights`` (see `mmzoo.pretrained`).

Usage: ``python -m mmzoo.training.ship_weights cnn_gru_film image_text 12``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Optional

from mmzoo import datasets
from mmzoo.pretrained import WEIGHTS_DIR, sha256
from mmzoo.training.run import write_atomic
from mmzoo.training.trainer import Run, train
from mmzoo.zoo import build, resolve_config


def make(preset: str, config: str, epochs: int, tag: str = "shapes_vqa", data_dir: Optional[str] = None) -> dict:
    """Train ``preset`` on the built-in dataset and write its weights + description here."""
    data = datasets.load("shapes_vqa", config=config, data_dir=data_dir, seq_len=12)
    out = tempfile.mkdtemp(prefix=f"mmzoo-weights-{preset}-")
    run = train(preset, data, epochs=epochs, out=out, learning_rate=3e-3, schedule="cosine", seed=0, verbose=2)
    return from_run(run.root, tag)


def from_run(run_dir: str, tag: str = "shapes_vqa") -> dict:
    """Package a finished shapes_vqa run's weights as shipped zoo weights."""
    run = Run(run_dir)
    config = run.config
    preset = config["preset"]
    if config["build"] and resolve_config(preset, **config["build"]) != resolve_config(preset):
        raise ValueError(f"Only runs of the preset as it is can ship; this one has overrides {config['build']}.")
    dataset = config["data"]["name"]
    if not dataset.startswith("shapes_vqa/"):
        raise ValueError(f"Zoo weights are trained on shapes_vqa; this run used {dataset!r}.")
    os.makedirs(WEIGHTS_DIR, exist_ok=True)
    file = f"{preset}.{tag}.weights.h5"
    tmp = os.path.join(WEIGHTS_DIR, f".tmp-{file}")
    # An uncompiled copy: the file holds the model's weights only, no optimizer state.
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
        print("usage: python -m mmzoo.training.ship_weights PRESET SHAPES_VQA_CONFIG EPOCHS", file=sys.stderr)
        sys.exit(2)
    result = make(sys.argv[1], sys.argv[2], int(sys.argv[3]))
    print(json.dumps({k: v for k, v in result.items() if k != "spec"}, indent=2))
