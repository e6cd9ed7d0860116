"""The table of export formats: importing this module registers every built-in format.

A new format is a module with an `mmzoo.export.formats.ExportFormat` that calls
``register_format``, imported here, and its name in ``FORMATS`` of `mmzoo.export`.
"""

from __future__ import annotations

from mmzoo.export import captioning, retrieval, saved_model, tflite  # noqa: F401  (each registers its format)
from mmzoo.export.formats import ExportFormat
from mmzoo.registry import EXPORT_FORMATS

#: the formats a retriever writes in place of the user-facing ones
RETRIEVAL_FORMATS = {"saved_model": "retrieval_saved_model", "tflite": "retrieval_tflite"}
#: the formats a captioner writes in place of the user-facing ones
CAPTION_FORMATS = {"saved_model": "caption_saved_model", "tflite": "caption_tflite"}


def user_formats() -> list:
    """The format names `mmzoo.export.export` accepts (a retriever's are chosen for it)."""
    taken = set(RETRIEVAL_FORMATS.values()) | set(CAPTION_FORMATS.values())
    return [n for n in EXPORT_FORMATS.names() if n not in taken]


def get_format(name: str) -> ExportFormat:
    """The registered format ``name`` (``saved_model``, ``tflite``)."""
    return EXPORT_FORMATS.get(name)
