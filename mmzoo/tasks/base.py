"""`Task`: the base class of mmzoo's jobs (a ``keras.Model`` subclass).

A task owns its backbone (`mmzoo.backbone.Backbone`), its preprocessor (raw inputs -> model
inputs, saved with it), its head(s), its default loss, metrics and optimizer (``compile()``
with no arguments does the right thing), its evaluation (metrics, headline number, the
report's sections), prediction on raw inputs, and its serving outputs (exporters ask the task
for them). Subclasses register with `mmzoo.registry.register_task`.

Example:
>>> model = mmzoo.build("cnn_gru_concat", num_classes=3, compile=False)
>>> model.compile()                      # the task's own optimizer, loss and metrics
>>> isinstance(model, mmzoo.tasks.Task)
True
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

import keras

from mmzoo.spec import DataSpec
from mmzoo.tasks import losses  # noqa: F401  (registers the losses a saved task was compiled with)


class Task(keras.Model):
    """Base class: a backbone, a preprocessor and what the task adds on top.

    Subclasses call ``super().__init__(inputs=..., outputs=..., preprocessor=...)`` (a
    Functional model) and set ``self.backbone``.
    """

    #: registered name (set by `mmzoo.registry.register_task`)
    task_name: str = ""
    #: training's modality ablation (`mmzoo.training.evaluate.modality_ablation`) applies
    ablation_applies: bool = True
    #: training's augmentation may blank one input of an example
    modality_dropout_applies: bool = True

    def __init__(self, *args, preprocessor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.preprocessor = preprocessor

    # ------------------------------------------------------------------ what it is
    @property
    def spec(self) -> DataSpec:
        """The data spec: the preprocessor's (with the vocabulary) or the backbone's."""
        if self.preprocessor is not None:
            return self.preprocessor.spec
        return self.backbone.spec

    @staticmethod
    def task_choices(base: dict, overrides: dict, spec: DataSpec) -> dict:
        """Choices of this kind of task beyond encoders, fusion and head (a retriever's sides),
        from the preset ``base`` and the build overrides; passed on to ``from_parts``."""
        return {}

    # ------------------------------------------------------------------ training defaults
    def default_optimizer(self):
        return keras.optimizers.Adam(1e-3)

    def default_loss(self, label_smoothing: float = 0.0):
        raise NotImplementedError

    def default_metrics(self):
        raise NotImplementedError

    def compile(self, optimizer="auto", loss="auto", metrics="auto", **kwargs):
        """Keras ``compile`` where ``"auto"`` (the default) means the task's own choice."""
        super().compile(
            optimizer=self.default_optimizer() if optimizer == "auto" else optimizer,
            loss=self.default_loss() if loss == "auto" else loss,
            metrics=self.default_metrics() if metrics == "auto" else metrics,
            **kwargs,
        )

    def compile_from_config(self, config: dict) -> None:
        """Restore the saved compile settings (Keras skips models that override ``compile``)."""
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built and getattr(self, "optimizer", None) is not None:
            self.optimizer.build(self.trainable_variables)

    # ------------------------------------------------------------------ evaluation
    def evaluate_data(self, data, split: str, batch_size: int = 256) -> dict:
        """Evaluate on one split of a data object: ``{"test": metrics, "ablation": ..., "inputs":
        the model inputs it ran on (the report's examples)}``. By default the model runs over the
        split, `evaluate_predictions` scores it and, where it applies, the modality ablation."""
        from mmzoo.training.evaluate import collect, modality_ablation

        inputs, y, pred = collect(self, data.dataset(split, batch_size=batch_size, shuffle=False))
        return {"test": self.evaluate_predictions(y, pred),
                "ablation": modality_ablation(self, inputs, y) if self.ablation_applies else None,
                "inputs": inputs}

    def evaluate_predictions(self, y_true, predictions) -> dict:
        """Metrics of predictions against targets (numpy), as saved in metrics.json."""
        raise NotImplementedError

    def headline(self, metrics: dict) -> float:
        """The one number a table shows (higher is better)."""
        raise NotImplementedError

    def report_sections(self, metrics: dict) -> List[str]:
        """Markdown lines of the run report's test-metrics section."""
        raise NotImplementedError

    def summary_lines(self, metrics: dict) -> List[str]:
        """What the command line prints after training or evaluation."""
        raise NotImplementedError

    # ------------------------------------------------------------------ raw inputs
    def preprocess(self, features: Dict[str, Any]) -> dict:
        """Raw inputs (bytes, strings, floats) -> model inputs, as in training."""
        if self.preprocessor is None:
            raise ValueError(f"{self.name} has no preprocessor; build it from data (mmzoo.build(..., "
                             "**data.model_kwargs())) or load a trained run's model.keras.")
        return self.preprocessor(features)

    def describe_prediction(self, output) -> dict:
        """One example's output as a readable dict."""
        raise NotImplementedError

    def predict_raw(self, features: Dict[str, Any], batch_size: int = 64) -> List[dict]:
        """Predictions on raw inputs (encoded image / WAV bytes, strings, numbers): one readable
        dict per example, preprocessed exactly as in training.

        Example:
        >>> model.predict_raw({"image": [png_bytes], "text": ["what colour is it?"]})  # doctest: +SKIP
        [{'class_name': 'red', 'class_id': 2, 'probabilities': [...]}]
        """
        outputs = self.predict(self.preprocess(features), batch_size=batch_size, verbose=0)
        n = len(next(iter(keras.tree.flatten(outputs))))
        return [self.describe_prediction(keras.tree.map_structure(lambda o, i=i: o[i:i + 1], outputs))
                for i in range(n)]

    # ------------------------------------------------------------------ serving
    def output_plan(self) -> List[dict]:
        """JSON description of the outputs every exporter writes (model card, validation)."""
        raise NotImplementedError

    def serving_outputs(self, output) -> dict:
        """TF graph: the model's output -> the SavedModel signature's named outputs."""
        raise NotImplementedError

    def lite_outputs(self, output) -> dict:
        """Keras symbolic: the model's output -> the TFLite flatbuffer's named outputs."""
        raise NotImplementedError

    # ------------------------------------------------------------------ config
    #: the config keys that hold Keras layers (serialized by ``get_config``, rebuilt by ``from_config``)
    layer_keys: tuple = ()

    def copy_with(self, edit=None, spec: Optional[DataSpec] = None) -> "Task":
        """A copy rebuilt from the config (``edit(config)`` changes it first: export's loop-free
        encoders), with the same weights and, given ``spec``, a preprocessor for that spec."""
        from mmzoo.data.preprocess import Preprocessor

        config = self.get_config()
        if spec is not None:
            config["preprocessor"] = keras.saving.serialize_keras_object(Preprocessor(spec))
        if edit is not None:
            edit(config)
        copy = type(self).from_config(config)
        copy.set_weights(self.get_weights())
        return copy

    @classmethod
    def from_config(cls, config: dict, custom_objects=None) -> "Task":
        config = dict(config)
        for key in cls.layer_keys:
            if config.get(key) is not None:
                config[key] = keras.layers.deserialize(config[key], custom_objects=custom_objects)
        config["preprocessor"] = cls._deserialize_preprocessor(config.get("preprocessor"))
        return cls(**config)

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "preprocessor": None if self.preprocessor is None
            else json.loads(json.dumps(keras.saving.serialize_keras_object(self.preprocessor))),
        }

    @staticmethod
    def _deserialize_preprocessor(config: Optional[dict]):
        if config is None:
            return None
        return keras.saving.deserialize_keras_object(config)
