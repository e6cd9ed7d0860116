"""Evaluation helpers: run a model over a dataset, and the modality ablation. The metrics
themselves belong to the task (``model.evaluate_predictions``)."""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np


def collect(model, dataset, max_batches: Optional[int] = None):
    """Run the model over a dataset; returns (inputs dict, labels, predictions) as numpy."""
    xs: Dict[str, list] = {}
    ys, ps = [], []
    for i, (x, y) in enumerate(dataset):
        if max_batches is not None and i >= max_batches:
            break
        for k, v in x.items():
            xs.setdefault(k, []).append(v.numpy())
        ys.append(_to_numpy(y))
        ps.append(_to_numpy(model(x, training=False)))
    if not ys:
        raise ValueError("The evaluation split has no examples.")
    inputs = {k: np.concatenate(v) for k, v in xs.items()}
    return inputs, _concat(ys), _concat(ps)


def _to_numpy(value):
    if isinstance(value, dict):
        return {k: np.asarray(v) for k, v in value.items()}
    return np.asarray(value)


def _concat(parts):
    if isinstance(parts[0], dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return np.concatenate(parts)


def blank_modality(inputs: dict, modality: str) -> dict:
    """The inputs with one modality masked out: zeros (text: all padding)."""
    out = dict(inputs)
    out[modality] = np.zeros_like(inputs[modality])
    return out


def predict_arrays(model, inputs: dict, batch_size: int = 256):
    n = len(next(iter(inputs.values())))
    parts = []
    for start in range(0, n, batch_size):
        parts.append(_to_numpy(model({k: v[start : start + batch_size] for k, v in inputs.items()}, training=False)))
    return _concat(parts)


def modality_ablation(model, inputs: dict, y_true) -> dict:
    """The task's headline metric with each modality masked out, and with only one kept.

    ``without`` shows what each modality contributes; ``only`` shows what one modality
    alone achieves (a text-only model on shapes_vqa should sit at its chance level).
    """

    def score(x):
        return model.headline(model.evaluate_predictions(y_true, predict_arrays(model, x)))

    result = {"full": score(inputs), "without": {}, "only": {}}
    modalities = list(model.spec.modalities)
    for m in modalities:
        result["without"][m] = score(blank_modality(inputs, m))
        only = inputs
        for other in modalities:
            if other != m:
                only = blank_modality(only, other)
        result["only"][m] = score(only)
    return result
