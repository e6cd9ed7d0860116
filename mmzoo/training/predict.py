"""Prediction from raw inputs (file paths, bytes, strings, arrays) with a run's data spec."""

from __future__ import annotations

import os
from typing import Any, Optional

import numpy as np


def _read_bytes(value: Any, what: str) -> Optional[bytes]:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
        if not os.path.isfile(path):
            raise ValueError(f"{what} file not found: {path!r}")
        with open(path, "rb") as f:
            return f.read()
    return None


def _decode(preprocess, raw: bytes, spec, name: str, given: Any):
    """Run a TF decoder on file bytes; a decode failure names the input and the file."""
    import tensorflow as tf

    try:
        return preprocess(tf.constant(raw), spec)
    except tf.errors.InvalidArgumentError as e:
        what = given if isinstance(given, str) else "the bytes"
        raise ValueError(f"{name}: cannot decode {what}: {e.message.splitlines()[0]}") from None


def prepare_inputs(spec, image=None, text=None, audio=None, tabular=None) -> dict:
    """One example's model inputs (batch of 1), preprocessed exactly as in training."""
    import tensorflow as tf

    from mmzoo.data import audio as audio_lib
    from mmzoo.data import image as image_lib
    from mmzoo.data.text import tokenize

    given = {"image": image, "text": text, "audio": audio, "tabular": tabular}
    missing = [m for m in spec.modalities if given[m] is None]
    if missing:
        raise ValueError(f"This model needs {list(spec.modalities)}; missing: {missing}.")
    extra = [m for m, v in given.items() if v is not None and m not in spec.modalities]
    if extra:
        raise ValueError(f"This model takes {list(spec.modalities)}; it has no input for {extra}.")
    x = {}
    if image is not None:
        raw = _read_bytes(image, "image")
        if raw is not None:
            x["image"] = _decode(image_lib.preprocess_image_bytes, raw, spec, "image", image)
        else:
            x["image"] = image_lib.preprocess_image(np.asarray(image), spec)
    if text is not None:
        if not isinstance(text, str):
            raise ValueError(f"text must be a string. Received: {type(text).__name__}")
        x["text"] = tokenize(tf.constant(text), spec)
    if audio is not None:
        raw = _read_bytes(audio, "audio")
        if raw is not None:
            x["audio"] = _decode(audio_lib.preprocess_wav_bytes, raw, spec, "audio", audio)
        else:
            x["audio"] = audio_lib.preprocess_audio(np.asarray(audio, dtype="float32"), spec.sample_rate, spec)
    if tabular is not None:
        values = np.asarray(tabular, dtype="float32").reshape(-1)
        if values.shape != (spec.tabular_dim,):
            raise ValueError(f"tabular must have {spec.tabular_dim} numbers. Received {values.shape[0]}.")
        x["tabular"] = tf.constant(values)
    return {k: tf.expand_dims(v, 0) for k, v in x.items()}


def predict_raw(model, spec, **raw) -> dict:
    """Preprocess raw inputs with the spec and let the task describe its prediction."""
    x = prepare_inputs(spec, **raw)
    return model.describe_prediction(model(x, training=False))
