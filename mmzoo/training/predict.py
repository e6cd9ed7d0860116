"""Prediction from raw inputs (file paths, bytes, strings, arrays) with a run's data spec."""

from __future__ import annotations

import tensorflow as tf

from mmzoo.data.preprocess import Preprocessor
from mmzoo.modalities import get_modality, records


def prepare_inputs(spec, image=None, text=None, audio=None, tabular=None) -> dict:
    """One example's model inputs (batch of 1), preprocessed exactly as in training; an optional
    input (``spec.optional``) may be left out (None)."""
    given = {"image": image, "text": text, "audio": audio, "tabular": tabular}
    missing = [m for m in spec.modalities if given[m] is None and m not in spec.optional]
    if missing:
        optional = f" ({list(spec.optional)} may be left out)" if spec.optional else ""
        raise ValueError(f"This model needs {list(spec.modalities)}{optional}; missing: {missing}.")
    extra = [m for m, v in given.items() if v is not None and m not in spec.modalities]
    if extra:
        raise ValueError(f"This model takes {list(spec.modalities)}; it has no input for {extra}.")
    states = Preprocessor(spec).states()
    for m in spec.optional:
        if given[m] is None:
            given[m] = get_modality(m).absent_raw(spec)
    x = {m.name: m.from_user(given[m.name], spec, states[m.name]) for m in records(spec)}
    return {k: tf.expand_dims(v, 0) for k, v in x.items()}


def predict_raw(model, spec, **raw) -> dict:
    """Preprocess raw inputs with the spec and let the task describe its prediction."""
    x = prepare_inputs(spec, **raw)
    return model.describe_prediction(model(x, training=False))
