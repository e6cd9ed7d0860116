"""The fusion base class: owns the shape bookkeeping, leaves subclasses the fusion math."""

from __future__ import annotations

from typing import Dict, List, Optional

import keras

MASK_SUFFIX = "_mask"


def _shape_dict(input_shape, shapes) -> dict:
    """Accept ``build({"image": s, ...})`` and ``build(image_shape=s, ...)`` alike."""
    if input_shape is None:
        input_shape = {k[: -len("_shape")]: v for k, v in shapes.items()}
    if not isinstance(input_shape, dict):
        raise ValueError(
            "A fusion layer takes a dict of modality features, e.g. "
            f"{{'image': x, 'text': y}}. Received: {type(input_shape).__name__} {input_shape!r}"
        )
    return {k: tuple(v) for k, v in input_shape.items()}


class FusionLayer(keras.layers.Layer):
    """Base class of fusion layers: a dict of modality features in, one tensor out.

    Subclasses set ``input_kind`` (what each encoder must produce: ``"vector"``
    ``[batch, dim]``, ``"sequence"`` ``[batch, steps, dim]`` or, for the image in FiLM,
    ``"map"``), and implement ``build_fusion(shapes)``, ``fuse(features, masks)`` and
    ``fused_shape(shapes)``. Modalities are fused in sorted order; a key ending in
    ``_mask`` (e.g. ``text_mask``, ``[batch, steps]`` of 0/1) is a padding mask.

    Example:
    >>> @mmzoo.register_fusion("sum")  # doctest: +SKIP
    ... class SumFusion(mmzoo.fusion.FusionLayer):
    ...     def fuse(self, features, masks, training=None):
    ...         return sum(features.values())
    ...     def fused_shape(self, shapes):
    ...         return next(iter(shapes.values()))
    """

    fusion_name: str = ""
    #: the paper (or idea) the fusion follows, shown by `mmzoo.describe`
    reference: str = ""
    input_kind: str = "vector"
    min_modalities: int = 2
    required_modalities: tuple = ()

    # ------------------------------------------------------------- class-level checks
    @classmethod
    def input_kinds(cls, modalities: List[str]) -> Dict[str, str]:
        """What feature kind each modality's encoder must output."""
        return {m: cls.input_kind for m in modalities}

    @classmethod
    def check_modalities(cls, modalities: List[str]) -> None:
        """Raise a ValueError when this fusion cannot fuse these modalities."""
        name = cls.fusion_name or cls.__name__
        missing = [m for m in cls.required_modalities if m not in modalities]
        if missing:
            raise ValueError(
                f"fusion={name!r} needs {' and '.join(repr(m) for m in cls.required_modalities)} "
                f"branches. Received modalities: {sorted(modalities)}"
            )
        if len(modalities) < cls.min_modalities:
            raise ValueError(
                f"fusion={name!r} needs at least {cls.min_modalities} modalities. "
                f"Received modalities: {sorted(modalities)}"
            )

    # ------------------------------------------------------------------ Keras API
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Padding masks arrive explicitly as ``<modality>_mask`` entries; Keras' implicit
        # masks from encoders are accepted and dropped here (the output has no steps).
        self.supports_masking = True

    def compute_mask(self, inputs, mask=None):
        return None

    def build(self, input_shape=None, **shapes):
        shapes = _shape_dict(input_shape, shapes)
        self.modalities = sorted(k for k in shapes if not k.endswith(MASK_SUFFIX))
        self.check_modalities(self.modalities)
        kinds = self.input_kinds(self.modalities)
        ranks = {"vector": 2, "sequence": 3, "map": 4}
        for m in self.modalities:
            if len(shapes[m]) != ranks[kinds[m]]:
                raise ValueError(
                    f"{type(self).__name__} expects {m!r} as a {kinds[m]} of rank "
                    f"{ranks[kinds[m]]}. Received shape {shapes[m]}."
                )
        self.build_fusion({m: shapes[m] for m in self.modalities})

    def call(self, inputs: Optional[dict] = None, training=None, **features):
        inputs = features if inputs is None else inputs
        feats = {m: inputs[m] for m in self.modalities}
        masks = {m: inputs.get(m + MASK_SUFFIX) for m in self.modalities}
        return self.fuse(feats, masks, training=training)

    def compute_output_shape(self, input_shape=None, **shapes):
        shapes = _shape_dict(input_shape, shapes)
        return self.fused_shape({k: v for k, v in shapes.items() if not k.endswith(MASK_SUFFIX)})

    # --------------------------------------------------------------- for subclasses
    def build_fusion(self, shapes: Dict[str, tuple]) -> None:
        """Create and build sublayers/weights; ``shapes`` has one entry per modality."""

    def fuse(self, features: dict, masks: dict, training=None):
        raise NotImplementedError

    def fused_shape(self, shapes: Dict[str, tuple]) -> tuple:
        raise NotImplementedError

    def sublayer(self, layer_cls, *args, **kwargs):
        """A sublayer sharing this layer's dtype policy (mixed precision)."""
        return layer_cls(*args, dtype=self.dtype_policy, **kwargs)

    def projections(self, shapes: Dict[str, tuple], units: int, activation=None) -> dict:
        """One built ``Dense(units)`` per modality, named ``project_<modality>``."""
        proj = {}
        for m in self.modalities:
            proj[m] = self.sublayer(keras.layers.Dense, units, activation=activation, name=f"project_{m}")
            proj[m].build(shapes[m])
        return proj
