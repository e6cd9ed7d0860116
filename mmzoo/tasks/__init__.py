"""mmzoo's tasks: `Task` (the base class) and its registered kinds, e.g. `Classifier`.

``mmzoo.tasks.targets`` (what a model predicts) is plain Python; the Keras classes load on
first use, so that ``import mmzoo`` stays free of TensorFlow.

Example:
>>> mmzoo.tasks.Classifier                      # doctest: +SKIP
"""

from __future__ import annotations

import importlib

_LAZY = {
    "Task": "mmzoo.tasks.base",
    "Classifier": "mmzoo.tasks.classifier",
    "Retriever": "mmzoo.tasks.retriever",
    "Captioner": "mmzoo.tasks.captioner",
    "ranking": "mmzoo.tasks.ranking",
    "heads": "mmzoo.tasks.heads",
    "targets": "mmzoo.tasks.targets",
}

__all__ = sorted(_LAZY)


def ensure_tasks_registered() -> None:
    """Import the built-in tasks (they register themselves)."""
    import mmzoo.tasks.captioner  # noqa: F401
    import mmzoo.tasks.classifier  # noqa: F401
    import mmzoo.tasks.retriever  # noqa: F401


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        value = module if module.__name__.endswith(name) else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mmzoo.tasks' has no attribute {name!r}")
