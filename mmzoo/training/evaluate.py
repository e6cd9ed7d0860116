"""Evaluation: metrics from predictions, per-class scores and the modality ablation."""

from __future__ import annotations

from typing import Dict, List, Optional

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


def classification_metrics(y_true, probs, class_names: Optional[List[str]] = None) -> dict:
    """Accuracy, cross-entropy, per-class precision/recall/F1, macro F1, confusion matrix."""
    y_true = np.asarray(y_true).astype(int).reshape(-1)
    k = probs.shape[-1]
    y_pred = probs.argmax(-1)
    names = list(class_names) if class_names else [str(i) for i in range(k)]
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (y_true, y_pred), 1)
    per_class = {}
    f1s = []
    for i, name in enumerate(names):
        tp = confusion[i, i]
        precision = tp / confusion[:, i].sum() if confusion[:, i].sum() else 0.0
        recall = tp / confusion[i, :].sum() if confusion[i, :].sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": float(precision), "recall": float(recall), "f1": float(f1),
                           "support": int(confusion[i, :].sum())}
        if confusion[i, :].sum():
            f1s.append(f1)
    eps = 1e-7
    loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(y_true)), y_true], eps, 1.0))))
    return {
        "accuracy": float(np.mean(y_pred == y_true)),
        "loss": loss,
        "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
        "per_class": per_class,
        "confusion_matrix": confusion.tolist(),
        "class_names": names,
        "examples": int(len(y_true)),
    }


def multilabel_metrics(y_true, probs, class_names=None, threshold: float = 0.5) -> dict:
    y_true = np.asarray(y_true) > 0.5
    y_pred = probs >= threshold
    names = list(class_names) if class_names else [str(i) for i in range(probs.shape[-1])]
    per_class = {}
    for i, name in enumerate(names):
        tp = np.sum(y_true[:, i] & y_pred[:, i])
        fp = np.sum(~y_true[:, i] & y_pred[:, i])
        fn = np.sum(y_true[:, i] & ~y_pred[:, i])
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        per_class[name] = {"precision": float(p), "recall": float(r),
                           "f1": float(2 * p * r / (p + r)) if p + r else 0.0, "support": int(y_true[:, i].sum())}
    tp, fp, fn = np.sum(y_true & y_pred), np.sum(~y_true & y_pred), np.sum(y_true & ~y_pred)
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "exact_match": float(np.mean(np.all(y_true == y_pred, axis=-1))),
        "micro_f1": float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 0.0,
        "macro_f1": float(np.mean([c["f1"] for c in per_class.values()])),
        "per_class": per_class,
        "examples": int(len(y_true)),
    }


def regression_metrics(y_true, pred) -> dict:
    y_true = np.asarray(y_true, dtype=float).reshape(pred.shape)
    err = pred - y_true
    var = np.var(y_true)
    return {
        "mse": float(np.mean(err**2)),
        "mae": float(np.mean(np.abs(err))),
        "r2": float(1 - np.mean(err**2) / var) if var > 0 else 0.0,
        "examples": int(len(y_true)),
    }


def task_metrics(spec, y_true, pred) -> dict:
    """Metrics for the spec's task (a dict per output for multitask)."""
    if spec.task == "multitask":
        out = {}
        for name, cfg in spec.tasks.items():
            sub = spec.replace(task=cfg["task"], num_classes=cfg.get("num_classes", 1),
                               class_names=cfg.get("class_names"), tasks=None)
            out[name] = task_metrics(sub, y_true[name], pred[name])
        return out
    if spec.task == "classification":
        return classification_metrics(y_true, pred, spec.class_names)
    if spec.task == "multilabel":
        return multilabel_metrics(y_true, pred, spec.class_names)
    return regression_metrics(y_true, pred)


def headline(spec, metrics: dict) -> float:
    """The one number a table shows: accuracy, or -MAE for regression."""
    if spec.task == "multitask":
        first = next(iter(spec.tasks))
        sub = spec.replace(task=spec.tasks[first]["task"], tasks=None,
                           num_classes=spec.tasks[first].get("num_classes", 1), class_names=None)
        return headline(sub, metrics[first])
    return metrics["accuracy"] if "accuracy" in metrics else -metrics["mae"]


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


def modality_ablation(model, spec, inputs: dict, y_true) -> dict:
    """The headline metric with each modality masked out, and with only one kept.

    ``without`` shows what each modality contributes; ``only`` shows what one modality
    alone achieves (a text-only model on shapes_vqa should sit at its chance level).
    """
    result = {"full": headline(spec, task_metrics(spec, y_true, predict_arrays(model, inputs))),
              "without": {}, "only": {}}
    modalities = list(spec.modalities)
    for m in modalities:
        masked = blank_modality(inputs, m)
        result["without"][m] = headline(spec, task_metrics(spec, y_true, predict_arrays(model, masked)))
        only = inputs
        for other in modalities:
            if other != m:
                only = blank_modality(only, other)
        result["only"][m] = headline(spec, task_metrics(spec, y_true, predict_arrays(model, only)))
    return result
