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
    """Preprocess raw inputs with the spec and let the task describe its prediction (a
    retriever: the embedding of each side given, and their ``score`` when both are)."""
    if getattr(model, "sides", None):
        return embed_raw(model, spec, **raw)
    if hasattr(model, "generate"):  # a captioner: its greedy caption
        given = {m: v for m, v in raw.items() if v is not None}
        x = prepare_inputs(spec, **given)
        import numpy as np

        ids, scores = model.generate_ids({m: np.asarray(v) for m, v in x.items()})
        return model.describe_ids(ids[0], scores[0])
    x = prepare_inputs(spec, **raw)
    return model.describe_prediction(model(x, training=False))


def embed_raw(model, spec, **raw) -> dict:
    """A retriever's ``{"<side>_embedding": [...], "score": cosine}`` for the sides given."""
    import numpy as np

    from mmzoo.tasks.retriever import side_spec

    given = {m: v for m, v in raw.items() if v is not None}
    extra = sorted(set(given) - set(spec.modalities))
    if extra:
        raise ValueError(f"This retriever takes {list(spec.modalities)}; it has no input for {extra}.")
    out = {}
    for side, names in model.sides.items():
        if all(m in given for m in names):
            x = prepare_inputs(side_spec(spec, names), **{m: given[m] for m in names})
            out[f"{side}_embedding"] = model.embed(side, {m: np.asarray(v) for m, v in x.items()})[0].tolist()
    if not out:
        raise ValueError(f"Give every input of one side at least: query {model.sides['query']}, "
                         f"candidate {model.sides['candidate']}.")
    if len(out) == 2:
        out["score"] = float(np.dot(out["query_embedding"], out["candidate_embedding"]))
    return out
