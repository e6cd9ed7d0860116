"""The classifier's heads, as Keras layers: ``classification``, ``multilabel``,
``regression``, ``multitask``.

A head turns the fused feature vector into the model's outputs: hidden ``Dense(relu)``
layers (with dropout), then one ``Dense`` per output and its activation (float32 under mixed
precision). Its loss and metrics belong to its targets (`mmzoo.tasks.targets`).

Example:
>>> head = mmzoo.tasks.heads.ClassificationHead(num_outputs=3)   # doctest: +SKIP
>>> head(keras.ops.zeros((2, 16))).shape
(2, 3)
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import keras

from mmzoo.registry import TARGETS, register_head


class Head(keras.layers.Layer):
    """Base class: hidden ``Dense(relu)`` layers, then the target kind's output layer.

    Args:
        num_outputs: classes (classification, multilabel) or values (regression).
        hidden_units: sizes of the hidden layers after fusion.
        dropout: dropout after each hidden layer.
        project: ``False`` when the fusion already produces logits (late fusion).
    """

    #: the target kind (`mmzoo.tasks.targets`) this head predicts
    kind: str = ""

    def __init__(
        self,
        num_outputs: int = 1,
        hidden_units: Sequence[int] = (64,),
        dropout: float = 0.0,
        project: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_outputs = int(num_outputs)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.dropout = float(dropout)
        self.project = bool(project)
        self.check()

    @classmethod
    def from_spec(cls, spec, **options) -> "Head":
        return cls(num_outputs=spec.num_classes, name="head", **options)

    def check(self) -> None:
        target = TARGETS.get(self.kind)(num_classes=self.num_outputs)
        target.check()
        target.check_head()

    def output_size(self) -> int:
        """Units of the (single) output, for a fusion that produces logits itself."""
        return self.num_outputs

    def outputs(self) -> Dict[Optional[str], tuple]:
        """``{output key: (units, activation)}``; key None for a single output."""
        return {None: (self.num_outputs, TARGETS.get(self.kind).activation)}

    # ------------------------------------------------------------------ Keras API
    def build(self, input_shape):
        shape = tuple(input_shape)
        self.hidden_layers = []
        if self.project:
            for i, units in enumerate(self.hidden_units, start=1):
                dense = keras.layers.Dense(units, activation="relu", name=f"dense_{i}", dtype=self.dtype_policy)
                dense.build(shape)
                shape = dense.compute_output_shape(shape)
                self.hidden_layers.append(dense)
                if self.dropout:
                    self.hidden_layers.append(
                        keras.layers.Dropout(self.dropout, name=f"dropout_{i}", dtype=self.dtype_policy))
        self.logit_layers, self.activation_layers = {}, {}
        for key, (units, activation) in self.outputs().items():
            key = key or ""
            prefix = f"{key}_" if key else ""
            if self.project:
                self.logit_layers[key] = keras.layers.Dense(units, name=f"{prefix}logits", dtype=self.dtype_policy)
                self.logit_layers[key].build(shape)
            # Outputs stay float32 under mixed precision.
            self.activation_layers[key] = keras.layers.Activation(activation, dtype="float32", name=f"{prefix}output")

    def call(self, x, training=None):
        for layer in self.hidden_layers:
            x = layer(x, training=training)
        out = {}
        for key, activation in self.activation_layers.items():
            out[key] = activation(self.logit_layers[key](x) if self.project else x)
        return out[""] if list(out) == [""] else out

    def compute_output_spec(self, x, training=None):
        batch = x.shape[0]
        specs = {key or "": keras.KerasTensor((batch, units), dtype="float32")
                 for key, (units, _) in self.outputs().items()}
        return specs[""] if list(specs) == [""] else specs

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"num_outputs": self.num_outputs, "hidden_units": list(self.hidden_units),
                       "dropout": self.dropout, "project": self.project})
        return config


@register_head("classification")
class ClassificationHead(Head):
    """Softmax over ``num_classes >= 2``; sparse categorical cross-entropy, accuracy.

    Example:
    >>> mmzoo.build("cnn_gru_concat", num_classes=10)  # doctest: +SKIP
    """

    kind = "classification"


@register_head("multilabel")
class MultilabelHead(Head):
    """Independent sigmoids, one per class; binary cross-entropy, binary accuracy and AUC.

    Example:
    >>> mmzoo.build("cnn_gru_multilabel", num_classes=6)  # doctest: +SKIP
    """

    kind = "multilabel"


@register_head("regression")
class RegressionHead(Head):
    """Linear outputs (``num_classes`` values); mean squared error, MAE.

    Example:
    >>> mmzoo.build("cnn_mlp_regression", num_classes=1)  # doctest: +SKIP
    """

    kind = "regression"


@register_head("multitask")
class MultitaskHead(Head):
    """Several named outputs over shared hidden layers, each with its own loss and metrics.

    ``tasks`` maps an output name to ``{"task": "classification" | "multilabel" |
    "regression", "num_classes": n}``. The model returns a dict keyed by output name.

    Example:
    >>> mmzoo.build("cnn_gru_multitask", tasks={"answer": {"task": "classification",
    ...     "num_classes": 5}, "count": {"task": "regression", "num_classes": 1}})  # doctest: +SKIP
    """

    kind = "multitask"

    def __init__(self, tasks: Dict[str, dict], hidden_units=(64,), dropout=0.0, project=True, **kwargs):
        if not tasks:
            raise ValueError("The multitask head needs `tasks={name: {'task': ..., 'num_classes': n}}`.")
        if not project:
            raise ValueError("The multitask head cannot follow a fusion that produces logits (late).")
        self.tasks = {name: {"task": cfg.get("task", "classification"), "num_classes": int(cfg.get("num_classes", 1))}
                      for name, cfg in tasks.items()}
        super().__init__(num_outputs=len(self.tasks), hidden_units=hidden_units, dropout=dropout,
                         project=project, **kwargs)

    @classmethod
    def from_spec(cls, spec, **options) -> "MultitaskHead":
        return cls(spec.tasks, name="head", **options)

    def check(self) -> None:
        for name, cfg in self.tasks.items():
            target = TARGETS.get(cfg["task"])(name=name, num_classes=cfg["num_classes"])
            target.check(f"tasks[{name!r}]: ")
            target.check_head(f"tasks[{name!r}]: ")

    def output_size(self) -> int:
        raise ValueError("A multitask head has several outputs; late fusion cannot feed it.")

    def outputs(self) -> Dict[Optional[str], tuple]:
        return {name: (cfg["num_classes"], TARGETS.get(cfg["task"]).activation) for name, cfg in self.tasks.items()}

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("num_outputs")
        config["tasks"] = {k: dict(v) for k, v in self.tasks.items()}
        return config
