"""Examples for warmup, calibration and validation: raw (encoded files, strings) and
preprocessed (the model's inputs).

A raw example is a dict keyed by input name: ``image`` encoded bytes (or a file path),
``text`` a string, ``audio`` WAV bytes (or a file path), ``tabular`` a list of floats.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

import numpy as np


def _vocab_words(spec) -> List[str]:
    words = [w for w in (spec.vocabulary or [])[2:] if w.strip()]
    return words or ["hello", "world"]


def synthetic_examples(spec, n: int = 8, seed: int = 0) -> List[dict]:
    """``n`` raw examples for ``spec``: PNG and JPEG images (of another size than the
    model's, so resizing runs), texts from the vocabulary, 16-bit WAVs at the spec's rate.

    Example:
    >>> rows = mmzoo.export.synthetic_examples(model.spec, n=4)  # doctest: +SKIP
    >>> sorted(rows[0])
    ['image', 'text']
    """
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    words = _vocab_words(spec)
    rows = []
    for i in range(n):
        row: Dict[str, object] = {}
        if "image" in spec.modalities:
            h, w, c = spec.image_shape
            hh, ww = h + 7 * (i % 3), w + 5 * (i % 2)
            img = rng.integers(0, 60, (hh, ww, c)).astype(np.uint8)
            yy, xx = np.mgrid[:hh, :ww]
            r = min(hh, ww) / 3
            disc = (yy - hh / 2) ** 2 + (xx - ww / 2) ** 2 < r * r
            img[disc] = rng.integers(100, 256, c).astype(np.uint8)
            if c == 4:
                img[..., 3] = 255
            use_jpeg = i % 2 == 1 and c != 4
            encoded = tf.io.encode_jpeg(img, quality=95) if use_jpeg else tf.io.encode_png(img)
            row["image"] = bytes(encoded.numpy())
        if "text" in spec.modalities:
            k = int(rng.integers(2, max(3, spec.seq_len) + 2))
            picked = [words[int(j)] for j in rng.integers(0, len(words), k)]
            text = " ".join(picked)
            row["text"] = text.capitalize() + ("." if i % 2 else "")
        if "audio" in spec.modalities:
            rate = spec.sample_rate
            length = spec.audio_samples if i % 3 else max(1, spec.audio_samples // 2)
            t = np.arange(length) / rate
            freq = 200.0 + 150.0 * (i % 5)
            wave = 0.4 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(length)
            row["audio"] = bytes(tf.audio.encode_wav(wave.astype(np.float32)[:, None], rate).numpy())
        if "tabular" in spec.modalities:
            row["tabular"] = [float(v) for v in rng.standard_normal(spec.tabular_dim)]
        rows.append(row)
    return rows


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
        row = {}
        for m in spec.modalities:
            v = ex[m]
            if m in ("image", "audio"):
                if isinstance(v, (str, os.PathLike)):
                    with open(os.fspath(v), "rb") as f:
                        v = f.read()
                if not isinstance(v, (bytes, bytearray)):
                    raise ValueError(
                        f"Sample {i}: {m} must be encoded file bytes or a file path. "
                        f"Received: {type(v).__name__}"
                    )
                row[m] = bytes(v)
            elif m == "text":
                if not isinstance(v, str):
                    raise ValueError(f"Sample {i}: text must be a string. Received: {type(v).__name__}")
                row[m] = v
            else:
                row[m] = [float(x) for x in np.asarray(v, np.float32).reshape(-1)]
        rows.append(row)
    return rows


def raw_batch(rows: Sequence[dict], spec) -> dict:
    """Raw examples as a batch for the ``serving_default`` signature (numpy arrays)."""
    batch = {}
    for m in spec.modalities:
        if m == "tabular":
            batch[m] = np.asarray([r[m] for r in rows], np.float32).reshape(len(rows), spec.tabular_dim)
        elif m == "text":
            batch[m] = np.asarray([r[m].encode("utf-8") for r in rows], dtype=object)
        else:
            batch[m] = np.asarray([r[m] for r in rows], dtype=object)
    return batch


def preprocess_examples(rows: Sequence[dict], spec) -> dict:
    """Raw examples -> the model's inputs, with `mmzoo.data`'s own preprocessing (eager)."""
    import tensorflow as tf

    from mmzoo.data import TextTokenizer, preprocess_image_bytes, preprocess_wav_bytes

    out = {}
    for m in spec.modalities:
        if m == "image":
            out[m] = np.stack([preprocess_image_bytes(tf.constant(r[m]), spec).numpy() for r in rows])
        elif m == "audio":
            out[m] = np.stack([preprocess_wav_bytes(tf.constant(r[m]), spec).numpy() for r in rows])
        elif m == "text":
            tok = TextTokenizer.from_spec(spec)
            out[m] = tok(tf.constant([r[m] for r in rows])).numpy().astype(np.int32)
        else:
            out[m] = np.asarray([r[m] for r in rows], np.float32).reshape(len(rows), spec.tabular_dim)
    return out


def data_examples(data, split: str, n: int) -> Optional[dict]:
    """Up to ``n`` preprocessed examples of a `MultimodalData` split (None if it is empty)."""
    if not data.splits.get(split):
        return None
    ds = data.dataset(split, batch_size=None, shuffle=False)
    feats: Dict[str, list] = {}
    for features, _ in ds.take(n).as_numpy_iterator():
        for k, v in features.items():
            feats.setdefault(k, []).append(v)
    if not feats:
        return None
    return {k: np.stack(v) for k, v in feats.items()}


def random_inputs(spec, n: int, seed: int = 0) -> dict:
    """Random model inputs (for calibration when nothing else is given)."""
    rng = np.random.default_rng(seed)
    out = {}
    for m, shape in spec.input_shapes().items():
        if m == "image":
            out[m] = rng.integers(0, 256, (n,) + tuple(shape)).astype(spec.image_dtype)
        elif m == "text":
            ids = rng.integers(2, spec.vocab_size, (n,) + tuple(shape)).astype(np.int32)
            for i in range(n):
                ids[i, int(rng.integers(1, shape[0] + 1)):] = 0
            out[m] = ids
        elif m == "audio":
            out[m] = (0.3 * rng.standard_normal((n,) + tuple(shape))).astype(np.float32)
        else:
            out[m] = rng.standard_normal((n,) + tuple(shape)).astype(np.float32)
    return out


def concat_inputs(*batches: Optional[dict]) -> dict:
    batches = [b for b in batches if b]
    return {k: np.concatenate([b[k] for b in batches], axis=0) for k in batches[0]}
