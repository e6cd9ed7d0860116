"""`Classifier`: a backbone's fused vector -> a head: classification, multilabel, regression
or several named outputs (multitask). Every classification-type preset is one.

Everything that depends on the kind of target (loss, metrics, evaluation, one prediction's
reading, serving outputs) comes from the spec's targets (`mmzoo.tasks.targets`).

Example:
>>> model = mmzoo.build("cnn_gru_concat", num_classes=3)
>>> type(model).__name__, model.head.kind
('Classifier', 'classification')
"""

from __future__ import annotations

from typing import List, Optional

import keras
import numpy as np
import tensorflow as tf

from mmzoo.backbone import FUSED, Backbone, ensure_parts_registered, part_config, plain, resolve_backbone_parts
from mmzoo.data.preprocess import Preprocessor
from mmzoo.registry import HEADS, register_task
from mmzoo.spec import DataSpec
from mmzoo.tasks import heads as _heads  # noqa: F401  (registers the heads)
from mmzoo.tasks.base import Task
from mmzoo.tasks.targets import Target, spec_fields_for, targets_of


def resolve_head(spec: DataSpec, head: dict):
    """The head class for ``head``; its kind must match the spec's task."""
    head_cls = HEADS.get(head["name"])
    if head_cls.kind != spec.task:
        raise ValueError(f"head={head['name']!r} does not match the data spec's task={spec.task!r}.")
    return head_cls


def make_head(spec: DataSpec, head: dict, fusion_cls):
    """The head layer, and the fusion options it implies (late fusion makes the logits)."""
    head_cls = resolve_head(spec, head)
    options = dict(head["options"])
    if getattr(fusion_cls, "produces_logits", False):
        options["project"] = False
    return head_cls.from_spec(spec, **options)


@register_task("classifier")
class Classifier(Task):
    """A multimodal classifier (or regressor): ``{modality: encoder}`` -> fusion -> head.

    Usually made with `mmzoo.build`. Inputs are a dict keyed by modality (``image``,
    ``text``, ``audio``, ``tabular``) shaped by ``spec``; the sub-models are ``backbone``
    (the encoders ``<modality>_encoder`` and the ``fusion``) and the ``head`` layer.

    Args:
        backbone: a `mmzoo.backbone.Backbone` with a fusion.
        head: a `mmzoo.tasks.heads.Head` layer.
        preprocessor: the `mmzoo.data.Preprocessor` of the data (vocabulary, class names).
        preset: the preset name it came from, if any.

    Example:
    >>> model = mmzoo.build("cnn_gru_concat", num_classes=4)
    >>> model.spec.modalities
    ('image', 'text')
    """

    layer_keys = ("backbone", "head")

    def __init__(self, backbone: Backbone, head, preprocessor: Optional[Preprocessor] = None,
                 preset: Optional[str] = None, name: Optional[str] = None, **kwargs):
        if FUSED not in backbone.output:
            raise ValueError("A Classifier needs a backbone with a fusion (its 'fused' output).")
        inputs = backbone.input
        features = backbone(inputs)
        outputs = head(features[FUSED])
        super().__init__(inputs=inputs, outputs=outputs, name=name or preset or "mmzoo_model",
                         preprocessor=preprocessor, **kwargs)
        self.backbone = backbone
        self.head = head
        self.preset = preset

    @classmethod
    def from_parts(cls, spec: DataSpec, encoders: dict, fusion, head, preset: Optional[str] = None,
                   name: Optional[str] = None) -> "Classifier":
        """Build from the resolved choices (`mmzoo.zoo.resolve_config`)."""
        encoders = {m: part_config(p) for m, p in encoders.items() if p}
        fusion, head = part_config(fusion), part_config(head)
        _, fusion_cls = resolve_backbone_parts(spec, encoders, fusion)
        head_layer = make_head(spec, head, fusion_cls)
        if getattr(fusion_cls, "produces_logits", False):
            fusion = {"name": fusion["name"], "options": {**fusion["options"], "units": head_layer.output_size()}}
        backbone = Backbone(spec, encoders, fusion)
        return cls(backbone, head_layer, preprocessor=Preprocessor(spec), preset=preset, name=name)

    # ------------------------------------------------------------------ config resolution
    @staticmethod
    def spec_fields(head: Optional[str], spec_fields: dict) -> tuple:
        """The head and spec fields a choice implies: the head defaults to the spec's task,
        the task to the head's kind."""
        ensure_parts_registered()
        task = spec_fields.get("task")
        if head is None:
            head = task or "classification"
        kind = HEADS.get(head).kind if head in HEADS else None
        return head, spec_fields_for(kind, spec_fields)

    @staticmethod
    def check_choices(spec: DataSpec, head: dict) -> None:
        resolve_head(spec, head)

    # ------------------------------------------------------------------ training defaults
    @property
    def targets(self) -> List[Target]:
        return targets_of(self.spec)

    def default_loss(self, label_smoothing: float = 0.0):
        """The targets' losses (a dict for several outputs); ``label_smoothing`` for classes."""
        targets = self.targets
        if targets[0].key is None:
            return targets[0].loss(label_smoothing)
        return {t.key: t.loss(label_smoothing) for t in targets}

    def default_metrics(self):
        """The targets' metrics (a dict for several outputs)."""
        targets = self.targets
        if targets[0].key is None:
            return targets[0].keras_metrics()
        return {t.key: t.keras_metrics() for t in targets}

    # ------------------------------------------------------------------ evaluation
    def evaluate_predictions(self, y_true, predictions) -> dict:
        return evaluate_predictions(self.spec, y_true, predictions)

    def headline(self, metrics: dict) -> float:
        return headline(self.spec, metrics)

    def describe_prediction(self, output) -> dict:
        return describe_prediction(self.spec, output)

    def report_sections(self, metrics: dict) -> List[str]:
        return report_sections(self.spec, metrics)

    def summary_lines(self, metrics: dict) -> List[str]:
        return summary_lines(self.spec, metrics)

    # ------------------------------------------------------------------ serving
    def output_plan(self) -> List[dict]:
        return output_plan(self.spec)

    def serving_outputs(self, output) -> dict:
        return serving_outputs(self.spec, output)

    def lite_outputs(self, output) -> dict:
        named = {}
        for target, x in zip(self.targets, split_output(output, self.targets)):
            named.update(target.lite_outputs(x))
        return named

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict:
        config = super().get_config()
        config.update({
            "backbone": plain(keras.layers.serialize(self.backbone)),
            "head": plain(keras.layers.serialize(self.head)),
            "preset": self.preset,
        })
        return config

    def rebuilt(self, encoder_options: Optional[dict] = None, fusion_options: Optional[dict] = None,
                spec: Optional[DataSpec] = None):
        """A copy rebuilt from the config with some encoder / fusion options changed (export
        uses it for loop-free recurrent layers), the same weights and, with ``spec``, a
        preprocessor for that spec (the export's: vocabulary and class names)."""

        def edit(config):
            backbone = config["backbone"]["config"]
            for m, options in (encoder_options or {}).items():
                backbone["encoders"][m].setdefault("options", {}).update(options)
            if fusion_options:
                backbone["fusion"].setdefault("options", {}).update(fusion_options)
            config["backbone"]["config"] = plain(backbone)

        return self.copy_with(edit, spec)


# ---------------------------------------------------------------------- spec-level helpers
def split_output(output, targets: List[Target]) -> list:
    """The model's output (tensor or dict by output name) as one array per target."""
    if targets[0].key is None:
        return [output]
    return [output[t.key] for t in targets]


def evaluate_predictions(spec: DataSpec, y_true, predictions) -> dict:
    """Metrics per target (a dict per output name for several outputs)."""
    targets = targets_of(spec)
    if targets[0].key is None:
        return targets[0].evaluate(y_true, predictions)
    return {t.key: t.evaluate(y_true[t.key], predictions[t.key]) for t in targets}


def headline(spec: DataSpec, metrics: dict) -> float:
    """The headline number of the first target."""
    first = targets_of(spec)[0]
    return first.headline(metrics if first.key is None else metrics[first.key])


def per_target_metrics(spec: DataSpec, metrics: dict) -> list:
    """``[(target, its metrics)]`` of a metrics dict."""
    return [(t, metrics if t.key is None else metrics[t.key]) for t in targets_of(spec)]


def describe_prediction(spec: DataSpec, output) -> dict:
    """One example's output (batch of one) as a readable dict."""
    targets = targets_of(spec)
    described = {}
    for target, x in zip(targets, split_output(output, targets)):
        described[target.key] = target.describe(np.asarray(x)[0])
    return described[None] if targets[0].key is None else described


def output_plan(spec: DataSpec) -> List[dict]:
    """One JSON entry per target: ``prefix``, ``task``, ``num_classes``, ``class_names``, ``key``."""
    return [t.to_plan() for t in targets_of(spec)]


def serving_outputs(spec: DataSpec, output) -> dict:
    """TF graph: the model's output -> the named serving outputs of every target."""
    targets = targets_of(spec)
    named = {}
    for target, x in zip(targets, split_output(output, targets)):
        named.update(target.serving_outputs(tf.cast(x, tf.float32)))
    return named


def report_sections(spec: DataSpec, metrics: dict) -> List[str]:
    """The report's test-metrics tables (one per output for several outputs)."""
    lines: List[str] = []
    for target, m in per_target_metrics(spec, metrics):
        if target.key is not None:
            lines += [f"### {target.key}", ""]
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in m.items() if not isinstance(v, (dict, list))]
        if "per_class" in m:
            lines += ["", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
            for name, c in m["per_class"].items():
                lines.append(f"| {name} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} |")
        lines.append("")
    return lines


def summary_lines(spec: DataSpec, metrics: dict) -> List[str]:
    """One line per output for the command line."""
    return [("" if t.key is None else f"{t.key}: ") + t.summary_line(m) for t, m in per_target_metrics(spec, metrics)]


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)
