"""The table of export formats: importing this module registers every built-in format.

A new format is a module with an `mmzoo.export.formats.ExportFormat` that calls
``register_format``, imported here, and its name in ``FORMATS`` of `mmzoo.export`.
"""

from __future__ import annotations

from mmzoo.export import saved_model, tflite  # noqa: F401  (each registers its format)
from mmzoo.export.formats import ExportFormat
from mmzoo.registry import EXPORT_FORMATS


def get_format(name: str) -> ExportFormat:
    """The registered format ``name`` (``saved_model``, ``tflite``)."""
    return EXPORT_FORMATS.get(name)
