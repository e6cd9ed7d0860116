"""Readable output names per head, shared by the SavedModel, TFLite and validation.

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

MULTILABEL_THRESHOLD = 0.5


def output_plan(spec) -> List[dict]:
    """One entry per task: ``prefix``, ``task``, ``num_classes``, ``class_names``, ``key``
    (the Keras output dict key, None for single-output models)."""
    if spec.task == "multitask":
        plan = []
        for name, cfg in spec.tasks.items():
            num = int(cfg.get("num_classes", 1))
            names = cfg.get("class_names") or [str(i) for i in range(num)]
            plan.append({"prefix": f"{name}_", "task": cfg.get("task", "classification"),
                         "num_classes": num, "class_names": [str(n) for n in names], "key": name})
        return plan
    names = spec.class_names or [str(i) for i in range(spec.num_classes)]
    return [{"prefix": "", "task": spec.task, "num_classes": spec.num_classes,
             "class_names": list(names), "key": None}]


def primary_name(entry: dict) -> str:
    """``probabilities`` (classification, multilabel) or ``value`` (regression), prefixed."""
    return entry["prefix"] + ("value" if entry["task"] == "regression" else "probabilities")


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


def serving_outputs(output, plan: List[dict]) -> dict:
    """TF graph: the model's output -> the SavedModel's named outputs (strings included)."""
    import tensorflow as tf

    named = {}
    primaries = split_model_output(output, plan)
    for e in plan:
        p = e["prefix"]
        x = tf.cast(primaries[primary_name(e)], tf.float32)
        if e["task"] == "classification":
            class_id = tf.argmax(x, axis=-1, output_type=tf.int64)
            named[p + "probabilities"] = x
            named[p + "class_id"] = class_id
            named[p + "class_name"] = tf.gather(tf.constant(e["class_names"]), class_id)
        elif e["task"] == "multilabel":
            on = x >= MULTILABEL_THRESHOLD
            names = tf.broadcast_to(tf.constant(e["class_names"]), tf.shape(x))
            joined = tf.strings.reduce_join(tf.ragged.boolean_mask(names, on), axis=-1, separator=",")
            named[p + "probabilities"] = x
            named[p + "predicted"] = tf.cast(on, tf.int64)
            named[p + "predicted_names"] = joined
        else:
            named[p + "value"] = x
    return named


def lite_outputs(model, plan: List[dict]) -> dict:
    """Keras symbolic outputs for the TFLite wrapper: numeric outputs under readable names."""
    named = {}
    primaries = split_model_output(model.output, plan)
    for e in plan:
        x = primaries[primary_name(e)]
        named[primary_name(e)] = x
        if e["task"] == "classification":
            named[e["prefix"] + "class_id"] = _arg_max_layer()(x)
    return named


def _arg_max_layer():
    """``tf.argmax`` as a layer: ``keras.ops.argmax`` adds a -0.0 fix-up (BitwiseAnd) that
    has no TFLite builtin. Used only in the conversion wrapper, never saved."""
    import keras
    import tensorflow as tf

    class ArgMax(keras.layers.Layer):
        def call(self, x):
            return tf.argmax(x, axis=-1, output_type=tf.int32)

        def compute_output_shape(self, shape):
            return tuple(shape[:-1])

        def compute_output_spec(self, x):
            return keras.KerasTensor(x.shape[:-1], dtype="int32")

    return ArgMax(name="class_id")
