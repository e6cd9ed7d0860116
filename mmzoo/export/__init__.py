"""mmzoo.export: SavedModel (TF Serving) and TFLite / LiteRT (edge) artifacts, validated
before they are published.

>>> import mmzoo.export
>>> result = mmzoo.export.export("runs/exp1", out="export/models", name="shapes",
...                              formats=("saved_model", "tflite"),
...                              quantize=("float16", "dynamic", "int8"))  # doctest: +SKIP
>>> result.path, result.version, result.parity["tflite_float32"]["max_abs_diff"]  # doctest: +SKIP

``export`` takes a run directory (``model.keras`` + ``data_spec.json``), a task (`mmzoo.build`),
or a ``(model, spec)`` pair. Every artifact of a version is written into a hidden staging
folder next to ``<out>/<name>/``, checked in a fresh process against the Keras model, and
only then renamed to ``<out>/<name>/<version>/`` (the next integer), so TF Serving never sees
half a model and a failed check publishes nothing.

Importing this package does not import TensorFlow; the heavy modules load on first use.
The module itself is callable: ``mmzoo.export(...)`` is ``mmzoo.export.export(...)``.
"""

from __future__ import annotations

import importlib
import sys
import types

_LAZY = {
    "export": ("mmzoo.export.api", "export"),
    "ExportResult": ("mmzoo.export.api", "ExportResult"),
    "ExportError": ("mmzoo.export.api", "ExportError"),
    "ExportValidationError": ("mmzoo.export.api", "ExportValidationError"),
    "load_source": ("mmzoo.export.source", "load_source"),
    "serving_model": ("mmzoo.export.source", "serving_model"),
    "write_saved_model": ("mmzoo.export.saved_model", "write_saved_model"),
    "convert_tflite": ("mmzoo.export.tflite", "convert_tflite"),
    "TFLiteModel": ("mmzoo.export.tflite", "TFLiteModel"),
    "strip_tensor_names": ("mmzoo.export.tflite", "strip_tensor_names"),
    "write_warmup_requests": ("mmzoo.export.warmup", "write_warmup_requests"),
    "read_warmup_requests": ("mmzoo.export.warmup", "read_warmup_requests"),
    "synthetic_examples": ("mmzoo.export.examples", "synthetic_examples"),
    "calibration_examples": ("mmzoo.export.examples", "calibration_examples"),
    "layer_errors": ("mmzoo.export.quantize", "layer_errors"),
    "FLOAT_LAYERS": ("mmzoo.export.quantize", "FLOAT_LAYERS"),
    "load_model_card": ("mmzoo.export.model_card", "load_model_card"),
    "add_export_commands": ("mmzoo.export.cli", "add_export_commands"),
}

FORMATS = ("saved_model", "tflite")
QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")

__all__ = ["FORMATS", "QUANTIZATIONS"] + sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        module_name, attr = _LAZY[name]
        value = getattr(importlib.import_module(module_name), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mmzoo.export' has no attribute {name!r}")


class _CallableModule(types.ModuleType):
    """Lets ``mmzoo.export(...)`` call `mmzoo.export.export` (the package is also a module)."""

    def __call__(self, *args, **kwargs):
        return self.export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
