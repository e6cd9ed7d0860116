"""`Preprocessor`: raw inputs -> model inputs with TF ops, for one example or a batch.

It is what `MultimodalData.dataset` maps over examples, and what export embeds in a serving
graph (a ``tf.Module``, so its vocabulary table is saved with the SavedModel).
"""

from __future__ import annotations

import tensorflow as tf

from mmzoo.modalities import get_modality
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
        self._records = {m: get_modality(m) for m in spec.modalities}
        self._states = {m: r.make_state(spec) for m, r in self._records.items()}
        # an absent optional input arrives as "" and is swapped for a raw value that preprocesses blank
        self._absent = {m: self._records[m].absent_raw(spec) for m in spec.optional}
        self.tokenizer = self._states.get("text")
        if self.tokenizer is not None:
            self.table = self.tokenizer.table  # tracked by tf.Module -> saved with the model

    def _check_names(self, features: dict) -> None:
        unknown = sorted(set(features) - set(self.spec.modalities))
        if unknown:
            raise ValueError(
                f"Unexpected inputs {unknown}. This spec's inputs: {list(self.spec.modalities)}"
            )

    def fill_absent(self, name: str, value):
        """An optional input's empty strings -> its stand-in (`Modality.absent_raw`); others unchanged."""
        if name not in self._absent:
            return value
        value = tf.convert_to_tensor(value, tf.string)
        return tf.where(tf.equal(value, ""), tf.constant(self._absent[name]), value)

    def __call__(self, features: dict) -> dict:
        self._check_names(features)
        return {name: self._records[name].preprocess(self.fill_absent(name, value), self.spec, self._states[name],
                                                     self.resample)
                for name, value in features.items()}

    def serve(self, inputs: dict) -> dict:
        """A serving batch (every input present, one row per example) -> model inputs, checked:
        a bad example raises InvalidArgument naming the input and its positions in the batch.
        An optional input (``spec.optional``) may be an empty string: that example goes without it."""
        spec = self.spec
        missing = [m for m in spec.modalities if m not in inputs]
        if missing:
            raise ValueError(f"Missing inputs {missing}. This spec's inputs: {list(spec.modalities)}")
        counts = {m: tf.shape(inputs[m])[0] for m in spec.modalities}
        first = spec.modalities[0]
        same = tf.reduce_all(tf.stack([tf.equal(counts[m], counts[first]) for m in spec.modalities]))
        parts = ["Invalid inputs: every input needs the same number of examples. Received:"]
        for m in spec.modalities:
            parts += [f"{m}:", counts[m]]
        checks = [tf.debugging.Assert(same, parts, name="check_batch")]
        with tf.control_dependencies(checks):
            return {m: r.serve(self.fill_absent(m, inputs[m]), spec, self._states[m]) for m, r in self._records.items()}

    def states(self) -> dict:
        """Per-input state (the text tokenizer), for code that takes one input at a time."""
        return dict(self._states)

    # A task saves its preprocessor in its ``.keras`` config: the spec, vocabulary included.
    def get_config(self) -> dict:
        return {"spec": self.spec.to_dict(), "resample": self.resample, "name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> "Preprocessor":
        return cls(**config)
