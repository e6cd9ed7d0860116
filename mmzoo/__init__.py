"""mmzoo: a Keras 3 / TensorFlow model zoo for multimodal models.

>>> import mmzoo
>>> "cnn_gru_concat" in mmzoo.list_models()
True

Importing mmzoo is light: listing and describing presets does not import TensorFlow.
Sub-packages (``mmzoo.data``, ``mmzoo.datasets``, ``mmzoo.layers``, ``mmzoo.fusion``,
``mmzoo.encoders``, ``mmzoo.tasks``, ``mmzoo.backbone``) load on first use.
"""

from __future__ import annotations

import importlib

from mmzoo.presets import register_preset  # (fills the preset registry; no TF)
from mmzoo.registry import register_encoder, register_fusion, register_head, register_task
from mmzoo.spec import DataSpec
from mmzoo.zoo import build, describe, get_preset, list_models, list_parts, load_model

__version__ = "0.1.0"

_LAZY_SUBMODULES = (
    "data", "datasets", "layers", "fusion", "encoders", "tasks", "backbone", "cli", "training", "export",
    "pretrained",
)


def train(*args, **kwargs):
    """Train a preset and write a run folder (see `mmzoo.training.train`).

    Example:
    >>> run = mmzoo.train("cnn_gru_film", "data/train.csv", epochs=5, out="runs/exp1")  # doctest: +SKIP
    """
    from mmzoo.training import train as _train  # lazy (here and below): `import mmzoo` stays light

    return _train(*args, **kwargs)


def open_run(path: str):
    """Open a run folder: ``run.evaluate()``, ``run.predict(...)``, ``run.metrics``.

    Example:
    >>> run = mmzoo.open_run("runs/exp1")  # doctest: +SKIP
    """
    from mmzoo.training import Run

    return Run(path)


def quickstart(**kwargs):
    """Train the default preset on the built-in dataset (see `mmzoo.training.quickstart`)."""
    from mmzoo.training import quickstart as _quickstart

    return _quickstart(**kwargs)

__all__ = [
    "DataSpec",
    "build",
    "describe",
    "get_preset",
    "list_models",
    "list_parts",
    "load_model",
    "open_run",
    "quickstart",
    "train",
    "register_encoder",
    "register_fusion",
    "register_head",
    "register_preset",
    "register_task",
    "__version__",
]


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        module = importlib.import_module(f"mmzoo.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'mmzoo' has no attribute {name!r}")
