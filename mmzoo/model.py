"""`MultimodalModel`: encoders per modality, a fusion layer and a head, as one Functional model.

The model is rebuilt from its config (the resolved encoder/fusion/head choices and the
data spec), so it saves to ``.keras`` and loads with ``safe_mode=True``, and it carries
its data spec as ``model.spec``.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional, Union

import keras

from mmzoo.registry import ENCODERS, FUSIONS, HEADS
from mmzoo.spec import DataSpec


def _plain(value: Any) -> Any:
    """A JSON-plain deep copy (Keras wraps dict attributes in tracked containers)."""
    return json.loads(json.dumps(value))


def _part(config: Union[str, dict, None]) -> Optional[dict]:
    if config is None:
        return None
    if isinstance(config, str):
        return {"name": config, "options": {}}
    config = dict(config)
    return {"name": config["name"], "options": dict(config.get("options") or {})}


def ensure_parts_registered() -> None:
    """Import the built-in encoders, fusions and heads (they register themselves)."""
    import mmzoo.encoders  # noqa: F401
    import mmzoo.fusion  # noqa: F401
    import mmzoo.heads  # noqa: F401


def resolve_parts(spec: DataSpec, encoders: dict, fusion: dict, head: dict):
    """Check every choice before any layer is built; return the part classes/builders."""
    ensure_parts_registered()
    for modality in spec.modalities:
        if not encoders.get(modality):
            raise ValueError(
                f"The data spec has modality {modality!r} but no {modality} encoder was chosen. "
                f"Pass {modality}=<one of {ENCODERS.names(modality=modality)}>."
            )
    extra = sorted(set(encoders) - set(spec.modalities))
    if extra:
        raise ValueError(
            f"Encoders were given for {extra}, which the data spec does not have. "
            f"Spec modalities: {list(spec.modalities)}"
        )
    builders = {}
    for modality, part in encoders.items():
        builder = ENCODERS.get(part["name"])
        registered_for = ENCODERS.meta(part["name"])["modality"]
        if registered_for != modality:
            raise ValueError(
                f"Encoder {part['name']!r} is a {registered_for} encoder; it cannot encode "
                f"{modality!r}. {modality.capitalize()} encoders: {ENCODERS.names(modality=modality)}."
            )
        builders[modality] = builder
    fusion_cls = FUSIONS.get(fusion["name"])
    fusion_cls.check_modalities(list(spec.modalities))
    head_cls = HEADS.get(head["name"])
    expected_task = head["name"] if head["name"] in ("classification", "multilabel", "regression", "multitask") else None
    if expected_task and spec.task != expected_task:
        raise ValueError(
            f"head={head['name']!r} does not match the data spec's task={spec.task!r}."
        )
    return builders, fusion_cls, head_cls


@keras.saving.register_keras_serializable(package="mmzoo")
class MultimodalModel(keras.Model):
    """A multimodal Keras model: ``{modality: encoder}`` -> fusion -> head.

    Usually made with `mmzoo.build`. Inputs are a dict keyed by modality (``image``,
    ``text``, ``audio``, ``tabular``) shaped by ``spec``; sub-models are named
    ``<modality>_encoder``, ``fusion`` and ``head``.

    Args:
        spec: the `DataSpec` (or its dict) the model is built for.
        encoders: ``{modality: {"name": encoder, "options": {...}}}``.
        fusion: ``{"name": fusion, "options": {...}}``.
        head: ``{"name": head, "options": {...}}``.
        preset: the preset name it came from, if any.

    Example:
    >>> model = mmzoo.build("cnn_gru_concat", num_classes=4)
    >>> model.spec.modalities
    ('image', 'text')
    """

    def __init__(
        self,
        spec: Union[DataSpec, dict],
        encoders: Dict[str, Any],
        fusion: Union[str, dict],
        head: Union[str, dict],
        preset: Optional[str] = None,
        name: Optional[str] = None,
        **kwargs,
    ):
        spec = DataSpec.from_dict(spec) if isinstance(spec, dict) else spec
        encoders = {m: _part(p) for m, p in encoders.items() if p}
        fusion, head = _part(fusion), _part(head)
        builders, fusion_cls, head_cls = resolve_parts(spec, encoders, fusion, head)

        # Layers: the head first (late fusion needs its size), then encoders and fusion.
        head_options = dict(head["options"])
        fusion_options = dict(fusion["options"])
        if getattr(fusion_cls, "produces_logits", False):
            head_options["project"] = False
        head_obj = head_cls.from_spec(spec, **head_options)
        if getattr(fusion_cls, "produces_logits", False):
            fusion_options["units"] = head_obj.output_size()
        kinds = fusion_cls.input_kinds(list(spec.modalities))
        encoder_models = {}
        for m in spec.modalities:
            # The scope puts the branch in every weight path: image_encoder/conv_1/kernel.
            with keras.name_scope(f"{m}_encoder"):
                encoder_models[m] = builders[m](spec, output=kinds[m], **encoders[m]["options"])
        fusion_layer = fusion_cls(name="fusion", **fusion_options)

        # Functional wiring.
        inputs = {
            m: keras.Input(shape=shape, dtype=spec.input_dtypes()[m], name=m)
            for m, shape in spec.input_shapes().items()
        }
        features = {m: encoder_models[m](inputs[m]) for m in spec.modalities}
        if "text" in spec.modalities and kinds.get("text") == "sequence":
            from mmzoo.layers import TokenMask

            features["text_mask"] = TokenMask(name="text_mask")(inputs["text"])
        fused = fusion_layer(features)
        with keras.name_scope("head"):
            head_model = head_obj.build_head(fused)
        outputs = head_model(fused)
        super().__init__(inputs=inputs, outputs=outputs, name=name or preset or "mmzoo_model", **kwargs)

        # Config.
        self.spec = spec
        self.preset = preset
        self.encoder_config = encoders
        self.fusion_config = fusion
        self.head_config = head
        self.task_head = head_obj

    def default_loss(self):
        """The head's loss (a dict for multitask)."""
        return self.task_head.loss()

    def default_metrics(self):
        """The head's metrics (a dict for multitask)."""
        return self.task_head.metrics()

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "spec": self.spec.to_dict(include_vocabulary=False),
            "encoders": _plain(self.encoder_config),
            "fusion": _plain(self.fusion_config),
            "head": _plain(self.head_config),
            "preset": self.preset,
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects=None) -> "MultimodalModel":
        return cls(**config)
