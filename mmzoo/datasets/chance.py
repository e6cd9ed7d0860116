"""Single-modality chance levels of `shapes_vqa`, computed from the prepared data.

See `mmzoo.datasets.chance_levels` for what each number means.
"""

from __future__ import annotations

import collections
from typing import Callable, Iterable

import tensorflow_datasets as tfds


def read_metadata(tfds_builder, split: str) -> list:
    """Every example of `split` as a dict of its light features (no image or audio)."""
    features = tfds_builder.info.features
    decoders = {"image": tfds.decode.SkipDecoding()}
    if "audio" in features:
        decoders["audio"] = tfds.decode.SkipDecoding()
    ds = tfds_builder.as_dataset(split=split, decoders=decoders, shuffle_files=False)
    wanted = ("question", "answer", "question_type", "grid", "num_beeps")
    keys = [k for k in wanted if k in features]
    ds = ds.map(lambda ex: {k: ex[k] for k in keys}).batch(4096)
    rows = []
    for batch in tfds.as_numpy(ds):
        for i in range(len(batch["answer"])):
            rows.append({k: batch[k][i] for k in keys})
    return rows


def scene_key(row: dict) -> tuple:
    """What the image shows about the answer: the sorted object ids drawn."""
    return tuple(sorted(int(o) for o in row["grid"] if o >= 0))


def lookup_accuracy(train: Iterable[dict], test: Iterable[dict], key: Callable) -> float:
    """Accuracy on `test` of "most frequent train answer for key(example)"."""
    train, test = list(train), list(test)
    overall = collections.Counter(r["answer"] for r in train)
    majority = _argmax(overall)
    by_key = collections.defaultdict(collections.Counter)
    for r in train:
        by_key[key(r)][r["answer"]] += 1
    table = {k: _argmax(counts) for k, counts in by_key.items()}
    hits = sum(table.get(key(r), majority) == r["answer"] for r in test)
    return float(hits / len(test))


def _argmax(counts: collections.Counter):
    # Ties go to the smallest class id, so the result never depends on dict order.
    return max(sorted(counts), key=lambda a: counts[a])


def shapes_vqa_chance_levels(tfds_builder, split: str = "test") -> dict:
    train = read_metadata(tfds_builder, "train")
    test = train if split == "train" else read_metadata(tfds_builder, split)
    levels = {
        "majority": lookup_accuracy(train, test, lambda r: None),
        "text": lookup_accuracy(train, test, lambda r: bytes(r["question"])),
        "image": lookup_accuracy(train, test, scene_key),
    }
    if "num_beeps" in tfds_builder.info.features:
        levels["audio"] = lookup_accuracy(train, test, lambda r: int(r["num_beeps"]))
    return levels
