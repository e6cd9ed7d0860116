"""Prediction from raw inputs (file paths, bytes, strings, arrays) with a run's data spec."""

from __future__ import annotations

import tensorflow as tf

from mmzoo.data.preprocess import Preprocessor
from mmzoo.modalities import records


def prepare_inputs(spec, image=None, text=None, audio=None, tabular=None) -> dict:
    """One example's model inputs (batch of 1), preprocessed exactly as in training."""
    given = {"image": image, "text": text, "audio": audio, "tabular": tabular}
    missing = [m for m in spec.modalities if given[m] is None]
    if missing:
        raise ValueError(f"This model needs {list(spec.modalities)}; missing: {missing}.")
    extra = [m for m, v in given.items() if v is not None and m not in spec.modalities]
    if extra:
        raise ValueError(f"This model takes {list(spec.modalities)}; it has no input for {extra}.")
    states = Preprocessor(spec).states()
    x = {m.name: m.from_user(given[m.name], spec, states[m.name]) for m in records(spec)}
    return {k: tf.expand_dims(v, 0) for k, v in x.items()}


def predict_raw(model, spec, **raw) -> dict:
    """Preprocess raw inputs with the spec and let the task describe its prediction."""
    x = prepare_inputs(spec, **raw)
    return model.describe_prediction(model(x, training=False))
