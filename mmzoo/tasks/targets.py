"""What a model predicts, one record per kind of target: ``classification``, ``multilabel``,
``regression``.

A target kind knows everything that depends on it outside the Keras graph: how a manifest
cell parses into a label, how labels encode into arrays (and TFRecord features), its loss and
Keras metrics, its evaluation metrics and headline number, how one prediction reads, the
SavedModel's named outputs, the TFLite outputs and how validation compares two artifacts.
The rest of mmzoo loops over ``targets_of(spec)`` instead of switching on a task name.

A spec has one target (``label``) or, for ``task="multitask"``, one per entry of
``spec.tasks`` (the model then returns a dict keyed by those names).
Importing this module does not import TensorFlow.

Example:
>>> from mmzoo.tasks.targets import targets_of
>>> [t.kind for t in targets_of(mmzoo.DataSpec(num_classes=3))]
['classification']
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar, List, Optional, Sequence

import numpy as np

from mmzoo.parsing import parse_numbers
from mmzoo.registry import TARGETS, register_target

MULTITASK = "multitask"
#: manifest column of the single target, and the prefix of one column per multitask output
LABEL_COLUMN = "label"
MULTILABEL_THRESHOLD = 0.5


def task_names() -> List[str]:
    """Every accepted ``DataSpec.task``: the target kinds and ``multitask``."""
    return TARGETS.names() + [MULTITASK]


def is_multitask(task: str) -> bool:
    return task == MULTITASK


@dataclasses.dataclass
class Target:
    """One output of a model: its kind, size and class names.

    Args:
        name: ``label`` for a single-output model, else the output's name (``answer``).
        num_classes: classes (classification, multilabel) or values (regression).
        class_names: names of the classes (index = class id), when the kind has classes.
        key: the Keras output dict key (None for a single-output model).
    """

    name: str = LABEL_COLUMN
    num_classes: int = 1
    class_names: Optional[List[str]] = None
    key: Optional[str] = None

    kind: ClassVar[str] = ""
    activation: ClassVar[str] = "linear"
    primary_output: ClassVar[str] = "probabilities"
    has_classes: ClassVar[bool] = True
    #: a label holds values whose count must match num_classes (regression)
    has_values: ClassVar[bool] = True

    # ------------------------------------------------------------------ identity
    @property
    def prefix(self) -> str:
        """Prefix of this target's serving outputs: ``""`` or ``"<name>_"``."""
        return "" if self.key is None else f"{self.key}_"

    @property
    def primary(self) -> str:
        """The numeric output every artifact returns: ``probabilities`` or ``value``."""
        return self.prefix + self.primary_output

    @property
    def column(self) -> str:
        """The manifest column holding this target: ``label`` or ``label_<name>``."""
        return LABEL_COLUMN if self.key is None else f"{LABEL_COLUMN}_{self.key}"

    def names(self) -> List[str]:
        return [str(n) for n in (self.class_names or range(self.num_classes))]

    def to_plan(self) -> dict:
        """The JSON entry export, validation and the model card read."""
        return {"prefix": self.prefix, "task": self.kind, "num_classes": int(self.num_classes),
                "class_names": self.names(), "key": self.key}

    @staticmethod
    def from_plan(entry: dict) -> "Target":
        cls = TARGETS.get(entry["task"])
        return cls(name=entry["key"] or LABEL_COLUMN, num_classes=int(entry["num_classes"]),
                   class_names=list(entry["class_names"]), key=entry["key"])

    # ------------------------------------------------------------------ checks and data
    def check(self, where: str = "") -> None:
        if not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise ValueError(
                f"{where}num_classes must be a positive integer. Received: num_classes={self.num_classes!r}"
            )
        if self.class_names is not None and self.has_classes and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"{where}class_names has {len(self.class_names)} names but num_classes={self.num_classes}."
            )

    def check_head(self, where: str = "") -> None:
        """What a model's head needs beyond what data may hold (a softmax needs 2 classes)."""

    def parse(self, value: Any):
        """A manifest cell -> a parsed label (raises ValueError saying what is wrong)."""
        raise NotImplementedError

    def label_values(self, parsed) -> list:
        """The class names a parsed label mentions (checked against the known classes)."""
        return []

    def encode(self, parsed: list) -> np.ndarray:
        """Parsed labels -> the array the model trains on."""
        raise NotImplementedError

    def record_feature(self):
        """``tf.io.FixedLenFeature`` of this target in an mmzoo TFRecord."""
        # TensorFlow and Keras are imported in the methods that use them (here and below):
        # `mmzoo.spec`, and so `import mmzoo`, import this module and stay free of them.
        import tensorflow as tf

        return tf.io.FixedLenFeature([self.num_classes], tf.float32)

    def record_value(self, label):
        import tensorflow as tf

        return tf.train.Feature(float_list=tf.train.FloatList(value=np.asarray(label).reshape(-1).tolist()))

    def from_record(self, value):
        return value

    def model_pair(self, features: dict, label):
        """A preprocessed example -> what ``fit`` reads: ``(model inputs, target)`` (as given,
        except where the model also reads its target, as a captioner's decoder does)."""
        return features, label

    # ------------------------------------------------------------------ training
    def loss(self, label_smoothing: float = 0.0):
        """The Keras loss; ``label_smoothing`` applies where the target has classes."""
        raise NotImplementedError

    def keras_metrics(self) -> list:
        raise NotImplementedError

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, y_true, pred) -> dict:
        raise NotImplementedError

    def headline(self, metrics: dict) -> float:
        """The one number a table shows (higher is better)."""
        return float(metrics["accuracy"])

    def describe(self, values) -> dict:
        """One example's prediction as a readable dict."""
        raise NotImplementedError

    def summary_line(self, metrics: dict) -> str:
        figures = {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}
        return "metrics: " + json.dumps(figures)

    # ------------------------------------------------------------------ serving
    def serving_outputs(self, x) -> dict:
        """TF graph: this target's primary output -> the SavedModel's named outputs."""
        return {self.primary: x}

    def lite_outputs(self, x) -> dict:
        """Keras symbolic: the numeric outputs of the TFLite flatbuffer."""
        return {self.primary: x}

    def check_serving(self, out: dict) -> None:
        """Check the non-numeric serving outputs (raises ValueError)."""

    def compare(self, got: np.ndarray, ref: np.ndarray) -> dict:
        """``{"agreement": ...}`` or ``{"nrmse": ...}`` of a quantized artifact."""
        raise NotImplementedError

    def labels_file(self) -> Optional[str]:
        """Name of the ``labels.txt`` shipped beside a TFLite model (None: no classes)."""
        return f"{self.prefix}labels.txt"


def _empty(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


@register_target("classification")
class ClassificationTarget(Target):
    """One class per example: softmax, sparse categorical cross-entropy, accuracy."""

    kind = "classification"
    activation = "softmax"

    def check_head(self, where: str = "") -> None:
        if self.num_classes < 2:
            raise ValueError(
                "The classification head (softmax) needs num_classes >= 2. Received: "
                f"num_classes={self.num_classes}. For one yes/no target use head='multilabel' "
                "(sigmoid); for a number use head='regression'."
            )

    def parse(self, value):
        if _empty(value):
            raise ValueError("the label is empty")
        if isinstance(value, (list, dict)):
            raise ValueError("a classification label must be one class name")
        if isinstance(value, float) and value == int(value):
            value = int(value)
        return str(value).strip()

    def label_values(self, parsed) -> list:
        return [parsed]

    def encode(self, parsed: list) -> np.ndarray:
        index = {n: i for i, n in enumerate(self.names())}
        return np.array([index[x] for x in parsed], np.int32)

    def record_feature(self):
        import tensorflow as tf

        return tf.io.FixedLenFeature([], tf.int64)

    def record_value(self, label):
        import tensorflow as tf

        return tf.train.Feature(int64_list=tf.train.Int64List(value=np.asarray(label).reshape(-1).tolist()))

    def from_record(self, value):
        import tensorflow as tf

        return tf.cast(value, tf.int32)

    def loss(self, label_smoothing: float = 0.0):
        from mmzoo.tasks.losses import SparseCategoricalCrossentropy

        return SparseCategoricalCrossentropy(label_smoothing=label_smoothing)

    def keras_metrics(self) -> list:
        import keras

        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def evaluate(self, y_true, probs) -> dict:
        """Accuracy, cross-entropy, per-class precision/recall/F1, macro F1, confusion matrix."""
        y_true = np.asarray(y_true).astype(int).reshape(-1)
        probs = np.asarray(probs)
        k = probs.shape[-1]
        y_pred = probs.argmax(-1)
        names = self.names() if len(self.names()) == k else [str(i) for i in range(k)]
        confusion = np.zeros((k, k), dtype=int)
        np.add.at(confusion, (y_true, y_pred), 1)
        per_class, f1s = {}, []
        for i, name in enumerate(names):
            tp = confusion[i, i]
            precision = tp / confusion[:, i].sum() if confusion[:, i].sum() else 0.0
            recall = tp / confusion[i, :].sum() if confusion[i, :].sum() else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            per_class[name] = {"precision": float(precision), "recall": float(recall), "f1": float(f1),
                               "support": int(confusion[i, :].sum())}
            if confusion[i, :].sum():
                f1s.append(f1)
        loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(y_true)), y_true], 1e-7, 1.0))))
        return {
            "accuracy": float(np.mean(y_pred == y_true)),
            "loss": loss,
            "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
            "per_class": per_class,
            "confusion_matrix": confusion.tolist(),
            "class_names": names,
            "examples": int(len(y_true)),
        }

    def summary_line(self, metrics: dict) -> str:
        return (f"accuracy: {metrics['accuracy']:.4f}   macro F1: {metrics['macro_f1']:.4f}   "
                f"({metrics['examples']} examples)")

    def describe(self, values) -> dict:
        values = np.asarray(values)
        class_id = int(values.argmax())
        return {"class_name": self.names()[class_id], "class_id": class_id, "probabilities": values.tolist()}

    def serving_outputs(self, x) -> dict:
        import tensorflow as tf

        class_id = tf.argmax(x, axis=-1, output_type=tf.int64)
        return {self.prefix + "probabilities": x, self.prefix + "class_id": class_id,
                self.prefix + "class_name": tf.gather(tf.constant(self.names()), class_id)}

    def lite_outputs(self, x) -> dict:
        from mmzoo.layers.export import ArgMax

        return {self.primary: x, self.prefix + "class_id": ArgMax(name=self.prefix + "class_id")(x)}

    def check_serving(self, out: dict) -> None:
        ids = out[self.prefix + "class_id"]
        names = [v.decode("utf-8") for v in out[self.prefix + "class_name"]]
        expected = [self.names()[int(i)] for i in ids]
        if names != expected:
            raise ValueError(f"{self.prefix}class_name {names} does not match class_id {list(ids)}")

    def compare(self, got, ref) -> dict:
        return {"agreement": float(np.mean(got.argmax(-1) == ref.argmax(-1)))}


@register_target("multilabel")
class MultilabelTarget(Target):
    """Any number of classes per example: independent sigmoids, binary cross-entropy."""

    kind = "multilabel"
    activation = "sigmoid"

    def parse(self, value):
        if _empty(value):
            raise ValueError("the label is empty")
        names = [str(v).strip() for v in value] if isinstance(value, list) else [
            p.strip() for p in str(value).split("|")]
        if not names or any(not n for n in names):
            raise ValueError("the label has an empty class name (check the '|' separators)")
        return sorted(set(names), key=names.index)

    def label_values(self, parsed) -> list:
        return list(parsed)

    def encode(self, parsed: list) -> np.ndarray:
        index = {n: i for i, n in enumerate(self.names())}
        out = np.zeros((len(parsed), self.num_classes), np.float32)
        for i, names in enumerate(parsed):
            out[i, [index[n] for n in names]] = 1.0
        return out

    def loss(self, label_smoothing: float = 0.0):
        import keras

        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing)

    def keras_metrics(self) -> list:
        import keras

        return [keras.metrics.BinaryAccuracy(name="accuracy"),
                keras.metrics.AUC(multi_label=True, num_labels=self.num_classes, name="auc")]

    def evaluate(self, y_true, probs, threshold: float = MULTILABEL_THRESHOLD) -> dict:
        y_true = np.asarray(y_true) > 0.5
        probs = np.asarray(probs)
        y_pred = probs >= threshold
        per_class = {}
        for i, name in enumerate(self.names()):
            tp = np.sum(y_true[:, i] & y_pred[:, i])
            fp = np.sum(~y_true[:, i] & y_pred[:, i])
            fn = np.sum(y_true[:, i] & ~y_pred[:, i])
            p = tp / (tp + fp) if tp + fp else 0.0
            r = tp / (tp + fn) if tp + fn else 0.0
            per_class[name] = {"precision": float(p), "recall": float(r),
                               "f1": float(2 * p * r / (p + r)) if p + r else 0.0,
                               "support": int(y_true[:, i].sum())}
        tp, fp, fn = np.sum(y_true & y_pred), np.sum(~y_true & y_pred), np.sum(y_true & ~y_pred)
        return {
            "accuracy": float(np.mean(y_true == y_pred)),
            "exact_match": float(np.mean(np.all(y_true == y_pred, axis=-1))),
            "micro_f1": float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 0.0,
            "macro_f1": float(np.mean([c["f1"] for c in per_class.values()])),
            "per_class": per_class,
            "examples": int(len(y_true)),
        }

    def describe(self, values) -> dict:
        values = np.asarray(values)
        names = self.names()
        return {"scores": dict(zip(names, values.tolist())),
                "labels": [n for n, v in zip(names, values) if v >= MULTILABEL_THRESHOLD]}

    def serving_outputs(self, x) -> dict:
        import tensorflow as tf

        on = x >= MULTILABEL_THRESHOLD
        names = tf.broadcast_to(tf.constant(self.names()), tf.shape(x))
        joined = tf.strings.reduce_join(tf.ragged.boolean_mask(names, on), axis=-1, separator=",")
        return {self.prefix + "probabilities": x, self.prefix + "predicted": tf.cast(on, tf.int64),
                self.prefix + "predicted_names": joined}

    def compare(self, got, ref) -> dict:
        return {"agreement": float(np.mean((got >= MULTILABEL_THRESHOLD) == (ref >= MULTILABEL_THRESHOLD)))}


@register_target("regression")
class RegressionTarget(Target):
    """``num_classes`` real values per example: linear outputs, mean squared error, MAE."""

    kind = "regression"
    primary_output = "value"
    has_classes = False

    def check(self, where: str = "") -> None:
        if not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise ValueError(
                f"{where}The regression head needs num_classes (targets) >= 1. Received: {self.num_classes}"
            )

    def names(self) -> List[str]:
        return [str(i) for i in range(self.num_classes)]

    def parse(self, value):
        return parse_numbers(value, "the regression label")

    def encode(self, parsed: list) -> np.ndarray:
        return np.array(parsed, np.float32).reshape(len(parsed), self.num_classes)

    def loss(self, label_smoothing: float = 0.0):
        import keras

        return keras.losses.MeanSquaredError()  # (no classes to smooth)

    def keras_metrics(self) -> list:
        import keras

        return [keras.metrics.MeanAbsoluteError(name="mae")]

    def evaluate(self, y_true, pred) -> dict:
        pred = np.asarray(pred)
        y_true = np.asarray(y_true, dtype=float).reshape(pred.shape)
        err = pred - y_true
        var = np.var(y_true)
        return {
            "mse": float(np.mean(err**2)),
            "mae": float(np.mean(np.abs(err))),
            "r2": float(1 - np.mean(err**2) / var) if var > 0 else 0.0,
            "examples": int(len(y_true)),
        }

    def headline(self, metrics: dict) -> float:
        return -float(metrics["mae"])

    def describe(self, values) -> dict:
        return {"values": np.asarray(values).tolist()}

    def serving_outputs(self, x) -> dict:
        return {self.prefix + "value": x}

    def compare(self, got, ref) -> dict:
        span = float(ref.max() - ref.min()) if ref.size else 0.0
        rmse = float(np.sqrt(np.mean((got - ref) ** 2))) if ref.size else 0.0
        return {"nrmse": rmse / (span + 1e-6)}

    def labels_file(self) -> Optional[str]:
        return None


@register_target("retrieval")
class MatchTarget(Target):
    """Pairs to match (a retriever): the optional ``group`` column says which rows show the same
    thing (several captions of one image); without it every row is its own group. Labels are
    int32 group ids, unique within a split; the loss and metrics are the retriever's.
    """

    kind = "retrieval"
    primary_output = "embedding"
    has_classes = False
    has_values = False
    #: the manifest column (optional)
    group_column: ClassVar[str] = "group"

    @property
    def column(self) -> str:
        return self.group_column

    def names(self) -> List[str]:
        return []

    def parse(self, value):
        if _empty(value):
            raise ValueError("the group is empty (leave the column out to make every row its own group)")
        if isinstance(value, (list, dict)):
            raise ValueError("a group must be one name or number")
        if isinstance(value, float) and value == int(value):
            value = int(value)
        return str(value).strip()

    def encode(self, parsed: list) -> np.ndarray:
        index: dict = {}
        return np.array([index.setdefault(g, len(index)) for g in parsed], np.int32)

    # group ids are stored in TFRecords as class ids are
    record_feature = ClassificationTarget.record_feature
    record_value = ClassificationTarget.record_value
    from_record = ClassificationTarget.from_record

    def compare(self, got, ref) -> dict:
        """Embeddings of a quantized tower against float32: RMSE over the value range (a
        converter's figure; the validation gate is the retriever's recall)."""
        span = float(ref.max() - ref.min()) if ref.size else 0.0
        rmse = float(np.sqrt(np.mean((got - ref) ** 2))) if ref.size else 0.0
        return {"nrmse": rmse / (span + 1e-6)}

    def loss(self, label_smoothing: float = 0.0):
        return None  # the retriever's in-batch loss

    def keras_metrics(self) -> list:
        return []

    def labels_file(self) -> Optional[str]:
        return None


@register_target("captioning")
@dataclasses.dataclass
class CaptionTarget(Target):
    """A caption to generate (a captioner): the manifest's ``caption`` column. The class names
    are the caption vocabulary (``<pad>``, ``<unk>``, ``<start>``, ``<end>``, then the tokens of
    the train split's captions, most frequent first) and ``num_classes`` its size; a label is
    ``caption_len + 2`` int32 ids (start, at most ``caption_len`` tokens, end, padding).
    """

    caption_len: int = 24
    tokenizer: Optional[dict] = None

    kind = "captioning"
    primary_output = "caption"
    has_classes = False
    has_values = False
    caption_column: ClassVar[str] = "caption"

    @property
    def column(self) -> str:
        return self.caption_column

    def check(self, where: str = "") -> None:
        super().check(where)
        if not isinstance(self.caption_len, int) or self.caption_len < 1:
            raise ValueError(f"{where}caption_len must be a positive integer. Received: {self.caption_len!r}")
        if self.class_names is not None:
            from mmzoo.data.text import CAPTION_RESERVED

            if tuple(self.class_names[:4]) != CAPTION_RESERVED:
                raise ValueError(f"{where}a caption vocabulary starts with {list(CAPTION_RESERVED)}. "
                                 f"Received: {list(self.class_names[:4])}")
            if len(self.class_names) != self.num_classes:
                raise ValueError(f"{where}the caption vocabulary has {len(self.class_names)} tokens but "
                                 f"num_classes={self.num_classes}.")

    def parse(self, value):
        if _empty(value):
            raise ValueError("the caption is empty")
        if isinstance(value, (list, dict)):
            raise ValueError("a caption must be one string")
        return str(value).strip()

    def encode(self, parsed: list) -> np.ndarray:
        from mmzoo.data.text import caption_ids

        if not self.class_names:
            raise ValueError("The caption vocabulary is not known yet (class_names).")
        out = np.zeros((len(parsed), self.caption_len + 2), np.int32)
        for i, caption in enumerate(parsed):
            out[i] = caption_ids(caption, self.class_names, self.caption_len, self.tokenizer)
        return out

    def record_feature(self):
        import tensorflow as tf

        return tf.io.FixedLenFeature([self.caption_len + 2], tf.int64)

    # token ids are stored in TFRecords as class ids are (a fixed-length list)
    record_value = ClassificationTarget.record_value
    from_record = ClassificationTarget.from_record

    def model_pair(self, features: dict, label):
        """Teacher forcing: the decoder reads ``label[:-1]`` (``caption_ids``) and predicts ``label[1:]``."""
        return {**features, DECODER_INPUT: label[..., :-1]}, label[..., 1:]

    def loss(self, label_smoothing: float = 0.0):
        from mmzoo.tasks.losses import MaskedTokenLoss

        return MaskedTokenLoss(label_smoothing=label_smoothing)

    def keras_metrics(self) -> list:
        from mmzoo.tasks.losses import MaskedTokenAccuracy

        return [MaskedTokenAccuracy()]

    def labels_file(self) -> Optional[str]:
        return "vocabulary.txt"


#: the model input that holds a captioner's previous tokens in training (teacher forcing)
DECODER_INPUT = "caption_ids"


# ---------------------------------------------------------------------- a spec's targets
def make_target(kind: str, *, name: str = LABEL_COLUMN, num_classes: Optional[int] = None,
                class_names: Optional[Sequence[str]] = None, key: Optional[str] = None) -> Target:
    cls = TARGETS.get(kind)
    names = [str(c) for c in class_names] if class_names is not None else None
    if num_classes is None:
        num_classes = len(names) if names else 1
    return cls(name=name, num_classes=int(num_classes), class_names=names, key=key)


def targets_of(spec) -> List[Target]:
    """The targets of a `DataSpec`, in output order (one unless ``task="multitask"``)."""
    if spec.task == "captioning":
        return [CaptionTarget(num_classes=spec.num_classes, class_names=spec.class_names,
                              caption_len=spec.caption_len, tokenizer=spec.tokenizer)]
    if is_multitask(spec.task):
        return [
            make_target(cfg.get("task", "classification"), name=name, key=name,
                        num_classes=cfg.get("num_classes", 1), class_names=cfg.get("class_names"))
            for name, cfg in spec.tasks.items()
        ]
    return [make_target(spec.task, num_classes=spec.num_classes, class_names=spec.class_names)]


def check_spec(spec) -> None:
    """Raise ValueError naming the first impossible target setting of a spec."""
    if spec.task not in task_names():
        raise ValueError(f"Unknown task {spec.task!r}. Expected one of {task_names()}.")
    if is_multitask(spec.task):
        if not spec.tasks:
            raise ValueError("task='multitask' needs `tasks={name: {...}}`. Received none.")
        for name, cfg in spec.tasks.items():
            cfg = dict(cfg)
            kind = cfg.get("task", "classification")
            if kind not in TARGETS:
                raise ValueError(f"tasks[{name!r}] has task={kind!r}. Expected one of {TARGETS.names()}.")
            unknown = set(cfg) - {"task", "num_classes", "class_names"}
            if unknown:
                raise ValueError(
                    f"tasks[{name!r}] has unknown keys {sorted(unknown)}. Accepted: task, num_classes, class_names."
                )
    elif spec.tasks:
        raise ValueError(f"tasks= is for task='multitask' only. Received task={spec.task!r}.")
    multi = len(targets_of(spec)) > 1 or is_multitask(spec.task)
    for target in targets_of(spec):
        target.check(f"tasks[{target.name!r}]: " if multi else "")


def spec_fields_for(task: Optional[str], spec_fields: dict) -> dict:
    """Fill the spec fields a task implies (regression: one value unless told otherwise)."""
    fields = dict(spec_fields)
    if task is not None and fields.get("task") is None:
        fields["task"] = task
    if fields.get("task") in TARGETS and not TARGETS.get(fields["task"]).has_classes:
        fields.setdefault("num_classes", 1)
    if fields.get("class_names") and "num_classes" not in fields:
        fields["num_classes"] = len(fields["class_names"])
    return fields


# ---------------------------------------------------------------------- manifest labels
def _is_number_like(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    if isinstance(value, list):
        return bool(value) and all(_is_number_like(v) and not isinstance(v, list) for v in value)
    if isinstance(value, str):
        try:
            parse_numbers(value, "label")
            return True
        except ValueError:
            return False
    return False


def infer_kind(labels: Sequence[object]) -> str:
    """multilabel if any label is a list of names or has '|'; regression if every label is
    numeric and some are fractional or vectors; classification otherwise (so 0/1/2 are
    class names)."""
    values = [v for v in labels if v not in (None, "")]
    if any(isinstance(v, list) and v and all(isinstance(x, str) for x in v) for v in values):
        return "multilabel"
    if any(isinstance(v, str) and "|" in v for v in values):
        return "multilabel"
    if values and all(_is_number_like(v) for v in values):
        for v in values:
            nums = parse_numbers(v, "label")
            if len(nums) > 1 or any(x != int(x) for x in nums):
                return "regression"
    return "classification"


def stratify_by(target: Target) -> bool:
    """Whether a seeded split stratifies on this target (single-class labels only)."""
    return isinstance(target, ClassificationTarget)


def manifest_targets(label_columns: Sequence[str], *, task: Optional[str] = None, tasks: Optional[dict] = None,
                     spec=None, values_of=None, source: str = "") -> List[Target]:
    """The targets a manifest holds, from its label columns (``label``, or one
    ``label_<output>`` per output of a multitask model), the given ``task`` / ``tasks`` or
    ``spec``, and the values themselves (``values_of(column)``) for what is not given.

    Class names are filled in later from the train split (unless the spec has them).
    Raises ValueError naming a missing column.
    """
    present = list(label_columns)
    if spec is not None:
        targets = targets_of(spec)
        if spec.task == "retrieval":
            return targets
    elif task == "captioning" or (task is None and present == [CaptionTarget.caption_column]):
        targets = [CaptionTarget()]
    elif is_multitask(task or "") or (task is None and LABEL_COLUMN not in present and present):
        names = [c[len(LABEL_COLUMN) + 1:] for c in present if c != LABEL_COLUMN]
        if tasks:
            names = list(tasks)
        if not names:
            raise ValueError(f"{source}: task='multitask' needs one 'label_<output>' column per output. "
                             f"Label columns found: {present}")
        targets = []
        for name in names:
            column = f"{LABEL_COLUMN}_{name}"
            kind = (tasks or {}).get(name, {}).get("task") if column in present else None
            if column in present and kind is None:
                kind = infer_kind(values_of(column))
            targets.append(make_target(kind or "classification", name=name, key=name))
    elif task == "retrieval" or (task is None and not present):
        return [MatchTarget()]  # its group column is optional
    else:
        if task is not None and task not in TARGETS:
            raise ValueError(f"{source}: task must be one of {task_names()}. Received: task={task!r}")
        kind = task or (infer_kind(values_of(LABEL_COLUMN)) if LABEL_COLUMN in present else "classification")
        targets = [make_target(kind)]
    missing = [t.column for t in targets if t.column not in present]
    if missing:
        raise ValueError(
            f"{source}: the model predicts {[t.name for t in targets]} but the manifest has no column "
            f"{missing}. Label columns found: {present}"
        )
    return targets


def spec_fields_of(targets: List[Target]) -> dict:
    """The `DataSpec` fields that describe these targets."""
    if len(targets) == 1 and targets[0].key is None:
        t = targets[0]
        return {"task": t.kind, "num_classes": t.num_classes, "class_names": t.class_names, "tasks": None}
    tasks = {}
    for t in targets:
        tasks[t.key] = {"task": t.kind, "num_classes": t.num_classes}
        if t.class_names is not None:
            tasks[t.key]["class_names"] = list(t.class_names)
    return {"task": MULTITASK, "num_classes": len(targets), "class_names": None, "tasks": tasks}


def data_requirements(spec) -> dict:
    """What a model built for ``spec`` asks of its data (`from_manifest` keyword arguments):
    the task and, for several outputs, their kinds."""
    if is_multitask(spec.task):
        return {"task": MULTITASK, "tasks": {t.key: {"task": t.kind} for t in targets_of(spec)}}
    return {"task": spec.task}
