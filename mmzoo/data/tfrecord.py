"""Sharded TFRecords of preprocessed examples, plus the spec, for large or multi-worker data.

Layout of ``out_dir``::

    spec.json                          the DataSpec (vocabulary and class names included)
    info.json                          {"format": "mmzoo-tfrecord", "version": 1, "splits": {...}}
    train-00000-of-00004.tfrecord ...  tf.train.Example records

Each record holds the model inputs after preprocessing: ``image`` as PNG bytes (lossless,
already resized), ``text`` token ids (int64), ``audio`` float samples, ``tabular`` floats,
and ``label`` (int64 class id, or floats for multilabel / regression).
"""

from __future__ import annotations

import json
import os
from typing import Dict, Optional

import tensorflow as tf

from mmzoo.data.pipeline import MultimodalData
from mmzoo.data.validation import DataReport
from mmzoo.host import cpu_parallelism
from mmzoo.modalities import records
from mmzoo.spec import DataSpec

FORMAT = "mmzoo-tfrecord"
VERSION = 1


def _feature_spec(spec: DataSpec) -> dict:
    out = {m.name: m.record_feature(spec) for m in records(spec)}
    for target in spec.targets:
        out[target.column] = target.record_feature()
    return out


def _example(features: dict, label, spec: DataSpec) -> bytes:
    feats = {m.name: m.record_value(features[m.name]) for m in records(spec)}
    for target in spec.targets:
        feats[target.column] = target.record_value(label if target.key is None else label[target.key])
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


def to_tfrecord(data: MultimodalData, out_dir: str, shards: int = 4) -> Dict[str, list]:
    """Write every split of ``data`` as ``shards`` TFRecord files each, plus ``spec.json``.

    Returns ``{split: [file paths]}``.

    Example:
    >>> mmzoo.data.to_tfrecord(data, "records/", shards=8)       # doctest: +SKIP
    >>> data2 = mmzoo.data.from_tfrecord("records/")
    """
    if not isinstance(shards, int) or shards < 1:
        raise ValueError(f"shards must be a positive integer. Received: shards={shards!r}")
    spec = data.spec
    os.makedirs(out_dir, exist_ok=True)
    written: Dict[str, list] = {}
    counts = {}
    for split, n in data.splits.items():
        if not n:
            continue
        ds = data.dataset(split, batch_size=None, shuffle=False)

        def encode(f, y):
            return {m.name: m.encode_for_record(f[m.name]) for m in records(spec)}, y

        ds = ds.map(encode, num_parallel_calls=cpu_parallelism())
        n_files = min(shards, n)
        paths = [
            os.path.join(out_dir, f"{split}-{i:05d}-of-{n_files:05d}.tfrecord")
            for i in range(n_files)
        ]
        bounds = [round(i * n / n_files) for i in range(n_files + 1)]
        writers = [tf.io.TFRecordWriter(p) for p in paths]
        try:
            shard = 0
            for i, (features, label) in enumerate(ds.as_numpy_iterator()):
                while i >= bounds[shard + 1]:
                    shard += 1
                writers[shard].write(_example(features, label, spec))
        finally:
            for w in writers:
                w.close()
        written[split] = paths
        counts[split] = n
    spec.save(os.path.join(out_dir, "spec.json"))
    info = {
        "format": FORMAT,
        "version": VERSION,
        "splits": counts,
        "files": {s: [os.path.basename(p) for p in ps] for s, ps in written.items()},
    }
    with open(os.path.join(out_dir, "info.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
    return written


class TFRecordData(MultimodalData):
    """Data read from `to_tfrecord` output (see `from_tfrecord`)."""

    raw_shuffle_buffer = 4096

    def __init__(self, spec, report, root: str, info: dict):
        super().__init__(spec, report)
        self.root = root
        self._info = info

    def _set_spec(self, spec) -> None:
        super()._set_spec(spec)
        self._parse_spec = _feature_spec(spec)

    @property
    def splits(self) -> Dict[str, int]:
        out = {"train": 0, "validation": 0, "test": 0}
        out.update(self._info["splits"])
        return out

    def files(self, split: str) -> list:
        return [os.path.join(self.root, f) for f in self._info["files"].get(split, [])]

    def _raw(self, split, num_shards, shard_index):
        files = self.files(split)
        if num_shards > 1 and len(files) >= num_shards:
            return tf.data.TFRecordDataset(files[shard_index::num_shards])
        ds = tf.data.TFRecordDataset(files)
        return ds.shard(num_shards, shard_index) if num_shards > 1 else ds

    def _preprocess(self, record):
        spec = self.spec
        ex = tf.io.parse_single_example(record, self._parse_spec)
        feats = {m.name: m.from_record(ex[m.name], spec) for m in records(spec)}
        labels = {t.key: t.from_record(ex[t.column]) for t in spec.targets}
        return feats, (labels[None] if None in labels else labels)


def from_tfrecord(path: str, spec: Optional[DataSpec] = None) -> TFRecordData:
    """Read a folder written by `to_tfrecord` (its ``spec.json`` unless ``spec`` is given).

    Example:
    >>> data = mmzoo.data.from_tfrecord("records/")                  # doctest: +SKIP
    >>> ds = data.dataset("train", batch_size=64, num_shards=2, shard_index=0)
    """
    info_path = os.path.join(path, "info.json")
    if not os.path.isfile(info_path):
        raise FileNotFoundError(
            f"{path!r} is not a to_tfrecord folder: no info.json. Write one with "
            "mmzoo.data.to_tfrecord(data, out_dir)."
        )
    with open(info_path, encoding="utf-8") as f:
        info = json.load(f)
    if info.get("format") != FORMAT or info.get("version") != VERSION:
        raise ValueError(
            f"{info_path}: expected format {FORMAT!r} version {VERSION}. "
            f"Received: {info.get('format')!r} version {info.get('version')!r}"
        )
    if spec is None:
        spec = DataSpec.load(os.path.join(path, "spec.json"))
    report = DataReport(source=path, total_rows=sum(info["splits"].values()))
    report.kept = dict(info["splits"])
    return TFRecordData(spec, report, path, info)
