"""Encoders: one small functional model per modality.

An encoder is a callable registered with `mmzoo.register_encoder(name, modality=...)`:
``encoder(spec, output="vector", **options) -> keras.Model`` named ``<modality>_encoder``.
``output`` picks the feature kind a fusion layer asks for:

- ``"vector"``: pooled features ``[batch, dim]``;
- ``"sequence"``: tokens ``[batch, steps, dim]`` (text tokens, image patches, audio frames);
- ``"map"``: the image feature map ``[batch, height, width, channels]`` (image encoders).
"""

from mmzoo.encoders import audio, ids, image, tabular, text  # noqa: F401  (registers encoders)
from mmzoo.encoders.base import OUTPUT_KINDS, encoder_model

__all__ = ["OUTPUT_KINDS", "encoder_model"]
