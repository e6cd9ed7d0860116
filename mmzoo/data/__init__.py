"""mmzoo.data: manifests, TFDS and TFRecords -> tf.data pipelines that match a `DataSpec`.

Names load on first use (so ``mmzoo.data.cli`` can build its argparse parser without
importing TensorFlow); see docs/data.md.

Example:
>>> import mmzoo.data
>>> data = mmzoo.data.from_manifest("data/train.csv", image_size=(64, 64))  # doctest: +SKIP
>>> train = data.dataset("train", batch_size=64, shuffle=True, seed=0)
>>> model = mmzoo.build("cnn_gru_concat", **data.model_kwargs())
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "audio": (
        "preprocess_audio",
        "preprocess_wav_bytes",
        "resample",
    ),
    "image": ("preprocess_image", "preprocess_image_bytes"),
    "interactions": ("Interactions", "read_interactions"),
    "pipeline": ("ManifestData", "MultimodalData", "from_manifest", "pipeline_options"),
    "preprocess": ("Preprocessor",),
    "text": (
        "ReferenceTokenizer",
        "TextTokenizer",
        "build_vocabulary",
        "split_tokens",
        "tokenize",
        "tokenize_reference",
    ),
    "tfds_source": ("TFDSData", "from_tfds"),
    "tfrecord": ("TFRecordData", "from_tfrecord", "to_tfrecord"),
    "validation": ("DataError", "DataReport", "RowError"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mmzoo.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mmzoo.data.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
