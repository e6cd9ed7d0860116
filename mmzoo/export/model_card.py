"""The model card ``assets.extra/mmzoo.json``: what a version is and how to call it.

Keys: ``name``, ``version``, ``created``, ``preset``, ``description``, ``data_spec`` (with the
vocabulary), ``class_names``, ``metrics`` (of the run), ``versions`` (mmzoo, TensorFlow,
Keras, LiteRT, ...), ``signatures`` (SavedModel and TFLite inputs / outputs), ``artifacts``
(path, bytes, quantization, ops), ``validation`` (every parity check with its figures),
``warmup``, ``rest`` (example REST bodies: row ``instances`` and columnar ``inputs``, binary
as ``{"b64": ...}``), ``options``.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from importlib import metadata
from typing import List, Optional

import numpy as np

import mmzoo
from mmzoo.export.outputs import output_plan
from mmzoo.modalities import records
from mmzoo.tasks.targets import targets_of

CARD_FILE = "mmzoo.json"


def package_versions() -> dict:
    versions = {"mmzoo": mmzoo.__version__, "python": platform.python_version()}
    for dist in ("tensorflow", "keras", "numpy", "ai-edge-litert", "tensorflow-serving-api", "protobuf"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def rest_examples(name: str, rows: List[dict], spec) -> dict:
    """Example REST bodies for ``POST /v1/models/<name>:predict`` (TF Serving)."""
    instances = [{m.name: m.rest_value(r[m.name]) for m in records(spec)} for r in rows]
    columns = {m: [inst[m] for inst in instances] for m in spec.modalities}
    return {
        "url": f"http://localhost:8501/v1/models/{name}:predict",
        "row": {"signature_name": "serving_default", "instances": instances},
        "columnar": {"signature_name": "serving_default", "inputs": columns},
        "notes": "Binary inputs (image, audio) travel as {\"b64\": ...}; a row-format response "
                 "is {\"predictions\": [...]}, a columnar one {\"outputs\": {...}}.",
    }


def build_model_card(*, name: str, version: Optional[int], source, spec, signatures: dict,
                     artifacts: dict, validation: Optional[dict], warmup: Optional[dict],
                     rest_rows: List[dict], options: dict, rest_spec=None) -> dict:
    preset = source.preset
    description = None
    if preset:
        try:
            description = mmzoo.describe(preset)["summary"]
        except ValueError:
            description = None
    return {
        "format": "mmzoo-model-card/1",
        "name": name,
        "version": version,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "preset": preset,
        "description": description,
        "source": {"run_dir": source.run_dir, "model_name": getattr(source.model, "name", None)},
        "data_spec": spec.to_dict(),
        "class_names": {(t.key or "output"): t.names() for t in targets_of(spec) if t.labels_file()},
        "outputs": output_plan(spec),
        "optional_inputs": {
            "inputs": list(spec.optional),
            "how_to_send_absence": ("an empty string for that input (REST: \"\" or {\"b64\": \"\"}); "
                                    "the example is then predicted without it. LiteRT: pass the blank input "
                                    "(zeros; text: all padding ids)") if spec.optional else None,
        },
        "metrics": source.metrics,
        "training_config": source.config,
        "versions": package_versions(),
        "signatures": signatures,
        "artifacts": artifacts,
        "validation": validation,
        "warmup": warmup,
        "rest": (rest_examples(name, rest_rows, rest_spec or spec)
                 if {"saved_model", "retrieval_saved_model"} & set(signatures) else None),
        "options": options,
    }


def write_model_card(path: str, card: dict) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(card, f, indent=1, ensure_ascii=False, default=_json_default)
    return path


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def load_model_card(version_dir: str) -> dict:
    """Read the card of a published version (``<out>/<name>/<version>``).

    Example:
    >>> card = mmzoo.export.load_model_card("export/models/shapes/1")  # doctest: +SKIP
    >>> card["validation"]["checks"][0]["max_abs_diff"]
    """
    for rel in (os.path.join("assets.extra", CARD_FILE), os.path.join("litert", CARD_FILE)):
        path = os.path.join(version_dir, rel)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                return json.load(f)
    raise FileNotFoundError(f"No {CARD_FILE} in {version_dir}/assets.extra or {version_dir}/litert.")
