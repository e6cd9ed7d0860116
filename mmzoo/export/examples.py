"""Examples for warmup, calibration and validation: raw (encoded files, strings) and
preprocessed (the model's inputs).

A raw example is a dict keyed by input name: ``image`` encoded bytes (or a file path),
``text`` a string, ``audio`` WAV bytes (or a file path), ``tabular`` a list of floats.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from mmzoo.data.preprocess import Preprocessor
from mmzoo.modalities import records


def synthetic_examples(spec, n: int = 8, seed: int = 0) -> List[dict]:
    """``n`` raw examples for ``spec``: PNG and JPEG images (of another size than the
    model's, so resizing runs), texts from the vocabulary, 16-bit WAVs at the spec's rate.

    Example:
    >>> rows = mmzoo.export.synthetic_examples(model.spec, n=4)  # doctest: +SKIP
    >>> sorted(rows[0])
    ['image', 'text']
    """
    rng = np.random.default_rng(seed)
    return [{m.name: m.synthetic(spec, rng, i) for m in records(spec)} for i in range(n)]


def load_examples(examples: Sequence[dict], spec) -> List[dict]:
    """Normalise user-given raw examples: read file paths, check every input is there."""
    rows = []
    for i, ex in enumerate(examples):
        missing = [m for m in spec.modalities if m not in ex]
        if missing:
            raise ValueError(
                f"Sample {i} has no {missing}. Each sample needs the model's inputs "
                f"{list(spec.modalities)}. Received keys: {sorted(ex)}"
            )
        rows.append({m.name: m.load_example(ex[m.name], i) for m in records(spec)})
    return rows


def raw_batch(rows: Sequence[dict], spec) -> dict:
    """Raw examples as a batch for the ``serving_default`` signature (numpy arrays)."""
    return {m.name: m.raw_batch([r[m.name] for r in rows], spec) for m in records(spec)}


def preprocess_examples(rows: Sequence[dict], spec) -> dict:
    """Raw examples -> the model's inputs, with the training preprocessor (eager)."""
    batch = {k: tf.constant(v) for k, v in raw_batch(rows, spec).items()}
    return {k: v.numpy() for k, v in Preprocessor(spec)(batch).items()}


def _take(ds, n: int):
    """The first ``n`` ``(features, label)`` elements of ``ds`` stacked: (examples, labels),
    labels an array or a dict by task; (None, None) when there are none."""
    feats: Dict[str, list] = {}
    labels: list = []
    for features, label in ds.take(n).as_numpy_iterator():
        for k, v in features.items():
            feats.setdefault(k, []).append(v)
        labels.append(label)
    if not feats:
        return None, None
    examples = {k: np.stack(v) for k, v in feats.items()}
    if isinstance(labels[0], dict):
        return examples, {k: np.stack([y[k] for y in labels]) for k in labels[0]}
    return examples, np.stack(labels)


def data_examples(data, split: str, n: int, with_labels: bool = False):
    """Up to ``n`` preprocessed examples of a `MultimodalData` split (None if it is empty);
    ``with_labels``: ``(examples, labels)``, labels an array or a dict by task."""
    examples, labels = (None, None)
    if data.splits.get(split):
        examples, labels = _take(data.dataset(split, batch_size=None, shuffle=False), n)
    return (examples, labels) if with_labels else examples


#: int8 calibration examples drawn from the training split by default (TFLite's guide: a
#: few hundred cover the activation ranges; the first rows of a sorted manifest would not)
CALIBRATION_EXAMPLES = 256


def calibration_examples(data, n: int = CALIBRATION_EXAMPLES, seed: int = 0) -> Optional[dict]:
    """Up to ``n`` preprocessed training examples for int8 calibration, drawn in a seeded
    shuffle of the whole split (so every class and input kind is in them), or None.

    Example:
    >>> x = mmzoo.export.calibration_examples(data, 256)  # doctest: +SKIP
    """
    if not data.splits.get("train"):
        return None
    return _take(data.dataset("train", batch_size=None, shuffle=True, seed=seed), n)[0]


def random_inputs(spec, n: int, seed: int = 0) -> dict:
    """Random model inputs (for calibration when nothing else is given)."""
    rng = np.random.default_rng(seed)
    return {m.name: m.random_input(spec, n, rng) for m in records(spec)}


def concat_inputs(*batches: Optional[dict]) -> dict:
    batches = [b for b in batches if b]
    return {k: np.concatenate([b[k] for b in batches], axis=0) for k in batches[0]}
