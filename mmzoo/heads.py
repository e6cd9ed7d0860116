"""Task heads: ``classification``, ``multilabel``, ``regression``, ``multitask``.

A head turns the fused feature vector into the model's outputs and knows its default
loss and metrics. It is built as a small functional model named ``head``.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import keras
from keras import layers

from mmzoo.registry import HEADS, register_head

SINGLE_TASKS = ("classification", "multilabel", "regression")


class Head:
    """Base class: hidden ``Dense(relu)`` layers, then the task's output layer.

    Args:
        num_outputs: classes (classification, multilabel) or targets (regression).
        hidden_units: sizes of the hidden layers after fusion.
        dropout: dropout after each hidden layer.
        project: ``False`` when the fusion already produces logits (late fusion).
    """

    activation: Optional[str] = None

    def __init__(
        self,
        num_outputs: int,
        hidden_units: Sequence[int] = (64,),
        dropout: float = 0.0,
        project: bool = True,
    ):
        self.num_outputs = int(num_outputs)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.dropout = float(dropout)
        self.project = bool(project)
        self.check()

    @classmethod
    def from_spec(cls, spec, **options) -> "Head":
        return cls(spec.num_classes, **options)

    def check(self) -> None:
        if self.num_outputs < 1:
            raise ValueError(f"num_classes must be >= 1. Received: num_classes={self.num_outputs}")

    def hidden(self, x, prefix: str = ""):
        if not self.project:
            return x
        for i, units in enumerate(self.hidden_units, start=1):
            x = layers.Dense(units, activation="relu", name=f"{prefix}dense_{i}")(x)
            if self.dropout:
                x = layers.Dropout(self.dropout, name=f"{prefix}dropout_{i}")(x)
        return x

    def output(self, x, prefix: str = ""):
        if self.project:
            x = layers.Dense(self.num_outputs, name=f"{prefix}logits")(x)
        # Outputs stay float32 under mixed precision.
        return layers.Activation(self.activation or "linear", dtype="float32", name=f"{prefix}output")(x)

    def build_head(self, fused) -> keras.Model:
        inputs = keras.Input(shape=fused.shape[1:], name="fused")
        return keras.Model(inputs, self.output(self.hidden(inputs)), name="head")

    def output_size(self) -> int:
        return self.num_outputs

    def loss(self):
        raise NotImplementedError

    def metrics(self):
        raise NotImplementedError


@register_head("classification")
class ClassificationHead(Head):
    """Softmax over ``num_classes >= 2``; sparse categorical cross-entropy, accuracy.

    Example:
    >>> mmzoo.build("cnn_gru_concat", num_classes=10)  # doctest: +SKIP
    """

    activation = "softmax"

    def check(self):
        super().check()
        if self.num_outputs < 2:
            raise ValueError(
                "The classification head (softmax) needs num_classes >= 2. Received: "
                f"num_classes={self.num_outputs}. For one yes/no target use head='multilabel' "
                "(sigmoid); for a number use head='regression'."
            )

    def loss(self):
        return keras.losses.SparseCategoricalCrossentropy()

    def metrics(self):
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]


@register_head("multilabel")
class MultilabelHead(Head):
    """Independent sigmoids, one per class; binary cross-entropy, binary accuracy and AUC.

    Example:
    >>> mmzoo.build("cnn_gru_multilabel", num_classes=6)  # doctest: +SKIP
    """

    activation = "sigmoid"

    def loss(self):
        return keras.losses.BinaryCrossentropy()

    def metrics(self):
        return [
            keras.metrics.BinaryAccuracy(name="accuracy"),
            keras.metrics.AUC(multi_label=True, num_labels=self.num_outputs, name="auc"),
        ]


@register_head("regression")
class RegressionHead(Head):
    """Linear outputs (``num_classes`` targets); mean squared error, MAE.

    Example:
    >>> mmzoo.build("cnn_mlp_regression", num_classes=1)  # doctest: +SKIP
    """

    def check(self):
        if self.num_outputs < 1:
            raise ValueError(
                f"The regression head needs num_classes (targets) >= 1. Received: {self.num_outputs}"
            )

    def loss(self):
        return keras.losses.MeanSquaredError()

    def metrics(self):
        return [keras.metrics.MeanAbsoluteError(name="mae")]


@register_head("multitask")
class MultitaskHead(Head):
    """Several named outputs over shared hidden layers, each with its own loss and metrics.

    ``tasks`` maps an output name to ``{"task": "classification" | "multilabel" |
    "regression", "num_classes": n}``. The model returns a dict keyed by task name.

    Example:
    >>> mmzoo.build("cnn_gru_multitask", tasks={"answer": {"task": "classification",
    ...     "num_classes": 5}, "count": {"task": "regression", "num_classes": 1}})  # doctest: +SKIP
    """

    def __init__(self, tasks: Dict[str, dict], hidden_units=(64,), dropout=0.0, project=True):
        if not tasks:
            raise ValueError("The multitask head needs `tasks={name: {'task': ..., 'num_classes': n}}`.")
        if not project:
            raise ValueError("The multitask head cannot follow a fusion that produces logits (late).")
        self.tasks = {}
        for name, cfg in tasks.items():
            cfg = dict(cfg)
            task = cfg.pop("task", "classification")
            if task not in SINGLE_TASKS:
                raise ValueError(
                    f"tasks[{name!r}] has task={task!r}. Expected one of {list(SINGLE_TASKS)}."
                )
            unknown = set(cfg) - {"num_classes", "class_names"}
            if unknown:
                raise ValueError(
                    f"tasks[{name!r}] has unknown keys {sorted(unknown)}. Accepted: task, num_classes, class_names."
                )
            self.tasks[name] = HEADS.get(task)(int(cfg.get("num_classes", 1)), hidden_units=())
        super().__init__(num_outputs=len(self.tasks), hidden_units=hidden_units, dropout=dropout)

    @classmethod
    def from_spec(cls, spec, **options):
        return cls(spec.tasks, **options)

    def build_head(self, fused) -> keras.Model:
        inputs = keras.Input(shape=fused.shape[1:], name="fused")
        shared = self.hidden(inputs)
        outputs = {name: head.output(shared, prefix=f"{name}_") for name, head in self.tasks.items()}
        return keras.Model(inputs, outputs, name="head")

    def output_size(self) -> int:
        raise ValueError("A multitask head has several outputs; late fusion cannot feed it.")

    def loss(self):
        return {name: head.loss() for name, head in self.tasks.items()}

    def metrics(self):
        return {name: head.metrics() for name, head in self.tasks.items()}
