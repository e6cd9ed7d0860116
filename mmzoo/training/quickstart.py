"""`mmzoo quickstart`: train the default preset on the built-in dataset, evaluate, export."""

from __future__ import annotations

import os
from typing import Optional

from mmzoo import datasets
from mmzoo import export as export_lib
from mmzoo.training.run import RunDirectory
from mmzoo.training.trainer import train

DEFAULT_PRESET = "cnn_gru_melcnn_film"
QUICKSTART_SETTINGS = {
    "full": {"config": "image_text_audio", "epochs": 24},
    "small": {"config": "image_text_audio_small", "epochs": 3},
}


def _export(run) -> Optional[str]:
    result = export_lib.export(run.root, out=os.path.join(run.root, "export"), name="shapes_vqa")
    return result.summary()


def quickstart(
    out: str = "runs/quickstart",
    size: str = "full",
    preset: str = DEFAULT_PRESET,
    epochs: Optional[int] = None,
    data_dir: Optional[str] = None,
    export: bool = True,
    seed: int = 0,
    verbose="auto",
):
    """Train ``preset`` on shapes_vqa (image + text + audio), evaluate, export, report.

    An unfinished earlier quickstart in ``out`` resumes; a finished one is replaced.

    Example:
    >>> run = mmzoo.quickstart(size="small")  # doctest: +SKIP
    """
    if size not in QUICKSTART_SETTINGS:
        raise ValueError(f"size must be one of {list(QUICKSTART_SETTINGS)}. Received: {size!r}")
    settings = QUICKSTART_SETTINGS[size]
    data = datasets.load("shapes_vqa", config=settings["config"], data_dir=data_dir, seq_len=12)
    return train(
        preset,
        data,
        epochs=epochs or settings["epochs"],
        out=out,
        batch_size=64,
        learning_rate=3e-3,
        schedule="cosine",
        seed=seed,
        overwrite=RunDirectory(out).is_finished(),
        after_training=_export if export else None,
        verbose=verbose,
    )
