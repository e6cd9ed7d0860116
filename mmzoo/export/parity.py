"""How two artifacts' outputs are compared (the validation gate's figures), per target."""

from __future__ import annotations

from typing import Dict, List

import numpy as np

from mmzoo.tasks.targets import Target


def test_scores(outputs: Dict[str, np.ndarray], labels, plan: List[dict]) -> Dict[str, float]:
    """The headline figure of each task on labelled examples: ``accuracy`` (classification,
    multilabel) or ``mae`` (regression), keyed ``accuracy`` / ``<task>_accuracy``.

    Example:
    >>> test_scores({"probabilities": p}, y, output_plan(spec))  # doctest: +SKIP
    {'accuracy': 0.98}
    """
    scores = {}
    for e in plan:
        target = Target.from_plan(e)
        y = labels[target.key] if isinstance(labels, dict) else labels
        metrics = target.evaluate(y, np.asarray(outputs[target.primary]))
        name = "accuracy" if "accuracy" in metrics else "mae"
        scores[target.prefix + name] = round(float(metrics[name]), 6)
    return scores


def compare(outputs: Dict[str, np.ndarray], reference: Dict[str, np.ndarray], plan: List[dict],
            labels=None) -> dict:
    """Max/mean abs difference, top-1 (or decision) agreement and NRMSE over the primary
    outputs of every task; with ``labels`` also their `test_scores` (``scores``)."""
    max_diff, mean_diffs, agreements, nrmses = 0.0, [], [], []
    for e in plan:
        target = Target.from_plan(e)
        key = target.primary
        if key not in outputs:
            raise KeyError(f"output {key!r} missing; the artifact returned {sorted(outputs)}")
        got = np.asarray(outputs[key], np.float64).reshape(reference[key].shape)
        ref = np.asarray(reference[key], np.float64)
        diff = np.abs(got - ref)
        max_diff = max(max_diff, float(diff.max()) if diff.size else 0.0)
        mean_diffs.append(float(diff.mean()) if diff.size else 0.0)
        if not np.all(np.isfinite(got)):
            max_diff = float("inf")
        figures = target.compare(got, ref)
        if "agreement" in figures:
            agreements.append(figures["agreement"])
        if "nrmse" in figures:
            nrmses.append(figures["nrmse"])
    figures = {
        "max_abs_diff": max_diff,
        "mean_abs_diff": float(np.mean(mean_diffs)),
        "agreement": min(agreements) if agreements else None,
        "nrmse": max(nrmses) if nrmses else None,
    }
    if labels is not None:
        figures["scores"] = test_scores(outputs, labels, plan)
    return figures


def check_serving_names(out: dict, plan: List[dict]) -> None:
    """String outputs are part of the contract: e.g. class_name must be class_names[class_id]."""
    for e in plan:
        Target.from_plan(e).check_serving(out)
