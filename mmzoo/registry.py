"""Name registries for encoders, fusion layers, heads and presets.

One decorator does both jobs: it adds the object to its table (refusing a duplicate name
loudly) and, for Keras classes, registers them as serializable under package ``mmzoo``.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from typing import Any, Callable, Dict, Iterator, List, Optional


def natural_key(name: str) -> list:
    """Sort key where ``net2`` comes before ``net10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


class Registry:
    """A named table of things with wildcard listing and helpful lookup errors.

    Example:
    >>> fusions = Registry("fusion")
    >>> @fusions.register("sum")
    ... def make_sum(): ...
    >>> fusions.names("s*")
    ['sum']
    """

    def __init__(self, kind: str, aliases: Optional[Dict[str, str]] = None):
        self.kind = kind
        self._items: Dict[str, Any] = {}
        self._meta: Dict[str, dict] = {}
        self.aliases: Dict[str, str] = dict(aliases or {})

    def register(self, name: str, **meta: Any) -> Callable[[Any], Any]:
        """Decorator adding ``obj`` under ``name`` (with optional metadata)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"A {self.kind} name must be a non-empty string. Received: {name!r}")

        def decorator(obj: Any) -> Any:
            self.add(name, obj, **meta)
            return obj

        return decorator

    def add(self, name: str, obj: Any, **meta: Any) -> None:
        if name in self._items and self._items[name] is not obj:
            raise ValueError(
                f"The name {name!r} is already registered as a {self.kind} "
                f"({_describe(self._items[name])}). Pick another name."
            )
        self._items[name] = obj
        self._meta[name] = dict(meta)

    def remove(self, name: str) -> None:
        """Take ``name`` out of the table (a part registered for a while, e.g. in a test)."""
        self.get(name)
        del self._items[name], self._meta[name]

    def resolve(self, name: str) -> str:
        return self.aliases.get(name, name)

    def get(self, name: str) -> Any:
        """The object registered as ``name``; unknown names list the closest ones."""
        key = self.resolve(name)
        if key not in self._items:
            raise ValueError(self.unknown_message(name))
        return self._items[key]

    def meta(self, name: str) -> dict:
        self.get(name)
        return self._meta[self.resolve(name)]

    def unknown_message(self, name: Any) -> str:
        close = difflib.get_close_matches(str(name), list(self._items), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        return (
            f"Unknown {self.kind} {name!r}.{hint} "
            f"Available {self.kind}s: {', '.join(self.names())}."
        )

    def names(self, pattern: str = "*", **meta_filter: Any) -> List[str]:
        """Registered names matching an fnmatch ``pattern``, naturally sorted."""
        found = [
            n
            for n in self._items
            if fnmatch.fnmatchcase(n, pattern)
            and all(self._meta[n].get(k) == v for k, v in meta_filter.items())
        ]
        return sorted(found, key=natural_key)

    def __contains__(self, name: str) -> bool:
        return self.resolve(name) in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)


def _describe(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or type(obj).__name__


#: the input kinds a model can take (one encoder registry per kind)
MODALITY_NAMES = ("audio", "image", "tabular", "text", "user", "item", "history", "profile")

ENCODERS = Registry("encoder")
FUSIONS = Registry("fusion")
HEADS = Registry("head")
PRESETS = Registry("preset")
TARGETS = Registry("target kind")
MODALITIES = Registry("modality")
EXPORT_FORMATS = Registry("export format")
TASKS = Registry("task")


def keras_serializable(cls: Any) -> Any:
    """Register a Keras class under package ``mmzoo`` (imported lazily: this module is
    imported by ``import mmzoo``, which stays free of TensorFlow)."""
    import keras

    return keras.saving.register_keras_serializable(package="mmzoo")(cls)


def register_encoder(name: str, modality: str) -> Callable[[Any], Any]:
    """Register an encoder builder for one modality.

    The decorated callable takes ``(spec, output, **options)`` and returns a
    ``keras.Model`` mapping the modality's input to features (see `mmzoo.encoders`).

    Example:
    >>> @mmzoo.register_encoder("tiny_cnn", modality="image")  # doctest: +SKIP
    ... def tiny_cnn(spec, output="vector", filters=8): ...
    """
    if modality not in MODALITY_NAMES:
        raise ValueError(f"modality must be one of {list(MODALITY_NAMES)}. Received: {modality!r}")
    return ENCODERS.register(name, modality=modality)


def _serializable_class(table: Registry, attribute: str) -> Callable[[str], Callable[[Any], Any]]:
    def register(name: str) -> Callable[[Any], Any]:
        def decorator(cls: Any) -> Any:
            cls = keras_serializable(cls)
            setattr(cls, attribute, name)
            table.add(name, cls)
            return cls

        return decorator

    return register


register_fusion = _serializable_class(FUSIONS, "fusion_name")
register_fusion.__doc__ = """Register a fusion layer class (a `mmzoo.fusion.FusionLayer` subclass).

    Example:
    >>> @mmzoo.register_fusion("my_sum")  # doctest: +SKIP
    ... class MySum(mmzoo.fusion.FusionLayer): ...
    """
register_head = _serializable_class(HEADS, "head_name")
register_head.__doc__ = """Register a head layer class (a `mmzoo.tasks.heads.Head` subclass).

    Example:
    >>> @mmzoo.register_head("ordinal")  # doctest: +SKIP
    ... class OrdinalHead(mmzoo.tasks.heads.Head): ...
    """
register_task = _serializable_class(TASKS, "task_name")
register_task.__doc__ = """Register a task class (a `mmzoo.tasks.Task` subclass).

    Example:
    >>> @mmzoo.register_task("classifier")  # doctest: +SKIP
    ... class Classifier(mmzoo.tasks.Task): ...
    """


def register_target(kind: str) -> Callable[[Any], Any]:
    """Register a target kind (a `mmzoo.tasks.targets.Target` subclass; plain Python)."""
    return TARGETS.register(kind)


# ---------------------------------------------------------------------------- presets
#: the preset keys that choose parts (`mmzoo.build` takes them as overrides too)
PART_KEYS = (*MODALITY_NAMES, "fusion", "head", "encoder_options", "fusion_options", "head_options",
             "query", "candidate")  # (query / candidate: a retriever's sides)
PRESET_KEYS = {"description", "reference", "task", "defaults", "params", *PART_KEYS}
DEFAULT_TASK = "classifier"


def normalize_preset(name: str, config: Dict[str, Any]) -> Dict[str, Any]:
    """Validate a preset's keys and fill the optional ones (no TensorFlow needed)."""
    unknown = sorted(set(config) - PRESET_KEYS)
    if unknown:
        raise ValueError(
            f"Preset {name!r} has unknown keys {unknown}. Accepted keys: {sorted(PRESET_KEYS)}."
        )
    preset = {k: config.get(k) for k in PRESET_KEYS}
    preset["name"] = name
    preset["task"] = preset["task"] or DEFAULT_TASK
    preset["head"] = preset["head"] or "classification"
    preset["fusion"] = preset["fusion"] or "concat"
    for key in ("encoder_options", "fusion_options", "head_options", "defaults"):
        preset[key] = dict(preset[key] or {})
    preset["reference"] = preset["reference"] or ""  # default: the fusion's (`mmzoo.zoo.describe`)
    preset["description"] = preset["description"] or ""
    for side in ("query", "candidate"):
        if preset[side] is not None:
            preset[side] = [preset[side]] if isinstance(preset[side], str) else list(preset[side])
    preset["modalities"] = [m for m in MODALITY_NAMES if preset.get(m)]
    if not preset["modalities"]:
        raise ValueError(f"Preset {name!r} names no encoder (image/text/audio/tabular).")
    return preset
