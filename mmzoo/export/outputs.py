"""Readable output names per target. The task names them (``Task.serving_outputs`` and
``Task.lite_outputs``, from `mmzoo.tasks.targets`); this module holds the JSON plan that
validation and the model card read, and the Keras reference outputs.

================  =====================================================================
head              outputs (multitask: each name prefixed with ``<task>_``)
================  =====================================================================
classification    ``probabilities`` float32 [N, C], ``class_id`` int64 [N],
                  ``class_name`` string [N]
multilabel        ``probabilities`` float32 [N, C], ``predicted`` int64 [N, C] (0/1, at
                  ``probabilities >= 0.5``), ``predicted_names`` string [N] (the predicted
                  class names joined with ``,``)
regression        ``value`` float32 [N, K]
================  =====================================================================

TFLite flatbuffers carry the numeric outputs only (``probabilities`` / ``value`` and, for
classification, ``class_id`` as int32); class names ship beside them in ``labels.txt``.
"""

from __future__ import annotations

from typing import Dict, List

import numpy as np

from mmzoo.tasks.targets import Target, targets_of


def output_plan(spec) -> List[dict]:
    """One entry per target: ``prefix``, ``task``, ``num_classes``, ``class_names``, ``key``
    (the Keras output dict key, None for single-output models)."""
    return [t.to_plan() for t in targets_of(spec)]


def primary_name(entry: dict) -> str:
    """``probabilities`` (classification, multilabel) or ``value`` (regression), prefixed."""
    return Target.from_plan(entry).primary


def split_model_output(output, plan: List[dict]) -> dict:
    """The model's raw output (tensor or dict by task) as ``{primary_name: tensor}``."""
    if plan[0]["key"] is None:
        return {primary_name(plan[0]): output}
    return {primary_name(e): output[e["key"]] for e in plan}


def keras_reference(model, inputs: dict, plan: List[dict], batch_size: int = 64) -> Dict[str, np.ndarray]:
    """Run the Keras model (inference mode) in batches; ``{primary_name: array}``."""
    n = len(next(iter(inputs.values())))
    chunks: Dict[str, list] = {primary_name(e): [] for e in plan}
    for start in range(0, n, batch_size):
        batch = {k: v[start:start + batch_size] for k, v in inputs.items()}
        out = split_model_output(model(batch, training=False), plan)
        for k, v in out.items():
            chunks[k].append(np.asarray(v, np.float32))
    return {k: np.concatenate(v, axis=0) for k, v in chunks.items()}
