"""`Preprocessor`: raw inputs -> model inputs with TF ops, for one example or a batch.

It is what `MultimodalData.dataset` maps over examples, and what export embeds in a serving
graph (a ``tf.Module``, so its vocabulary table is saved with the SavedModel).
"""

from __future__ import annotations

import tensorflow as tf

from mmzoo.data import audio as audio_lib
from mmzoo.data import image as image_lib
from mmzoo.data import text as text_lib
from mmzoo.registry import keras_serializable
from mmzoo.spec import DataSpec


@keras_serializable
class Preprocessor(tf.Module):
    """Raw features -> the model inputs of ``spec``.

    Raw features: ``image`` encoded bytes (JPEG / PNG / BMP / GIF / WebP), ``audio`` WAV
    bytes, ``text`` UTF-8 strings, ``tabular`` floats. Scalars give one example; 1-D string
    tensors (and [N, d] tabular) give a batch.

    Args:
        spec: the `DataSpec` (vocabulary included when ``text`` is an input).
        resample: resample audio at another rate (else it is an error).

    Example:
    >>> pre = Preprocessor(data.spec)                                   # doctest: +SKIP
    >>> inputs = pre({"image": tf.io.read_file("cat.png"), "text": tf.constant("a cat")})
    >>> model(pre({"image": image_bytes_batch, "text": questions}))
    """

    def __init__(self, spec, resample: bool = True, name: str = "mmzoo_preprocessor"):
        super().__init__(name=name)
        spec = DataSpec.from_dict(spec) if isinstance(spec, dict) else spec
        self.spec = spec
        self.resample = resample
        self.tokenizer = (
            text_lib.TextTokenizer.from_spec(spec) if "text" in spec.modalities else None
        )
        if self.tokenizer is not None:
            self.table = self.tokenizer.table  # tracked by tf.Module -> saved with the model

    def image(self, data):
        data = tf.convert_to_tensor(data, tf.string)
        one = lambda b: image_lib.preprocess_image_bytes(b, self.spec)  # noqa: E731
        if data.shape.rank == 0:
            return one(data)
        dtype = tf.float32 if self.spec.image_dtype == "float32" else tf.uint8
        return tf.map_fn(one, data, fn_output_signature=tf.TensorSpec(self.spec.image_shape, dtype))

    def audio(self, data):
        data = tf.convert_to_tensor(data, tf.string)
        one = lambda b: audio_lib.preprocess_wav_bytes(b, self.spec, self.resample)  # noqa: E731
        if data.shape.rank == 0:
            return one(data)
        return tf.map_fn(
            one, data, fn_output_signature=tf.TensorSpec([self.spec.audio_samples], tf.float32)
        )

    def text(self, data):
        return self.tokenizer(data)

    def __call__(self, features: dict) -> dict:
        unknown = sorted(set(features) - set(self.spec.modalities))
        if unknown:
            raise ValueError(
                f"Unexpected inputs {unknown}. This spec's inputs: {list(self.spec.modalities)}"
            )
        out = {}
        for name, value in features.items():
            if name == "tabular":
                out[name] = tf.cast(value, tf.float32)
            else:
                out[name] = getattr(self, name)(value)
        return out

    # A task saves its preprocessor in its ``.keras`` config: the spec, vocabulary included.
    def get_config(self) -> dict:
        return {"spec": self.spec.to_dict(), "resample": self.resample, "name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> "Preprocessor":
        return cls(**config)
