"""`Backbone`: the encoders of every input (and the fusion, when one is chosen) as one Keras
model that returns named features and knows no task.

Outputs (a dict): ``<modality>_<kind>`` for each input, where kind is what its encoder was
asked for (``vector`` [batch, dim], ``sequence`` [batch, steps, dim], ``map`` [batch, h, w, c]),
``text_mask`` [batch, seq_len] when the text gives a sequence, and ``fused`` when there is a
fusion. Weight paths read ``image_encoder/conv_1/kernel``, ``fusion/...``.

Example:
>>> backbone = mmzoo.build("cnn_gru_concat", num_classes=3).backbone
>>> sorted(backbone.output)
['fused', 'image_vector', 'text_vector']
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional, Union

import keras

from mmzoo import encoders as _encoders  # noqa: F401  (registers the built-in encoders)
from mmzoo import fusion as _fusion  # noqa: F401  (registers the built-in fusions)
from mmzoo.modalities import get_modality
from mmzoo.registry import ENCODERS, FUSIONS, keras_serializable
from mmzoo.spec import DataSpec

MASK_SUFFIX = "_mask"
FUSED = "fused"


def plain(value: Any) -> Any:
    """A JSON-plain deep copy (Keras wraps dict attributes in tracked containers)."""
    return json.loads(json.dumps(value))


def part_config(config: Union[str, dict, None]) -> Optional[dict]:
    """``"cnn"`` or ``{"name": "cnn", "options": {...}}`` -> the dict form."""
    if config is None:
        return None
    if isinstance(config, str):
        return {"name": config, "options": {}}
    config = dict(config)
    return {"name": config["name"], "options": dict(config.get("options") or {})}


def ensure_parts_registered() -> None:
    """The built-in encoders and fusions are registered (importing this module does it)."""
    assert ENCODERS.names() and FUSIONS.names()


def resolve_backbone_parts(spec: DataSpec, encoders: dict, fusion: Optional[dict]):
    """Check every choice before any layer is built; return the encoder builders and the
    fusion class (None without a fusion)."""
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
    fusion_cls = None
    if fusion is not None:
        fusion_cls = FUSIONS.get(fusion["name"])
        fusion_cls.check_modalities(list(spec.modalities))
    return builders, fusion_cls


@keras_serializable
class Backbone(keras.Model):
    """Encoders per input (+ a fusion) -> a dict of named features.

    Args:
        spec: the `DataSpec` (or its dict) of the inputs.
        encoders: ``{modality: {"name": encoder, "options": {...}}}``.
        fusion: ``{"name": fusion, "options": {...}}``, or None for per-input features only.
        feature_kinds: ``{modality: kind}`` without a fusion (default ``vector``).

    Example:
    >>> backbone = mmzoo.build("cnn_gru_attention", num_classes=3).backbone
    >>> backbone.output["text_sequence"].shape[-1] > 0
    True
    """

    def __init__(
        self,
        spec: Union[DataSpec, dict],
        encoders: Dict[str, Any],
        fusion: Union[str, dict, None] = None,
        feature_kinds: Optional[Dict[str, str]] = None,
        name: str = "backbone",
        **kwargs,
    ):
        spec = DataSpec.from_dict(spec) if isinstance(spec, dict) else spec
        encoders = {m: part_config(p) for m, p in encoders.items() if p}
        fusion = part_config(fusion)
        builders, fusion_cls = resolve_backbone_parts(spec, encoders, fusion)
        modalities = list(spec.modalities)
        if fusion_cls is not None:
            kinds = fusion_cls.input_kinds(modalities)
        else:
            kinds = {m: (feature_kinds or {}).get(m, "vector") for m in modalities}

        # Layers. The name scope puts the branch in every weight path: image_encoder/conv_1/kernel.
        encoder_models = {}
        for m in modalities:
            with keras.name_scope(f"{m}_encoder"):
                encoder_models[m] = builders[m](spec, output=kinds[m], **encoders[m]["options"])
        fusion_layer = fusion_cls(name="fusion", **fusion["options"]) if fusion_cls is not None else None

        # Functional wiring.
        inputs = {
            m: keras.Input(shape=shape, dtype=spec.input_dtypes()[m], name=m)
            for m, shape in spec.input_shapes().items()
        }
        features = {m: encoder_models[m](inputs[m]) for m in modalities}
        for m in modalities:
            mask = get_modality(m).sequence_mask(inputs[m]) if kinds[m] == "sequence" else None
            if mask is not None:
                features[m + MASK_SUFFIX] = mask
        outputs = {(k if k.endswith(MASK_SUFFIX) else f"{k}_{kinds[k]}"): v for k, v in features.items()}
        if fusion_layer is not None:
            outputs[FUSED] = fusion_layer(features)
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)

        # Config.
        self.spec = spec
        self.encoder_config = encoders
        self.fusion_config = fusion
        self.feature_kinds = dict(kinds)
        self._explicit_kinds = dict(feature_kinds) if feature_kinds else None

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "spec": self.spec.to_dict(include_vocabulary=False),
            "encoders": plain(self.encoder_config),
            "fusion": plain(self.fusion_config),
            "feature_kinds": self._explicit_kinds,
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects=None) -> "Backbone":
        return cls(**config)
