"""The ``text`` input: UTF-8 strings in, int32 token ids ``[spec.seq_len]`` out (padding 0),
tokenized with the spec's vocabulary and CJK-aware rules (`mmzoo.data.text`)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mmzoo.data import text as text_lib
from mmzoo.layers import TokenMask
from mmzoo.modalities.base import Modality, reject_positions
from mmzoo.registry import MODALITIES


class TextModality(Modality):
    """Text: a string per example; the preprocessor holds the tokenizer."""

    name = "text"

    def make_state(self, spec):
        return text_lib.TextTokenizer.from_spec(spec) if spec.vocabulary else None

    def _tokenizer(self, state):
        if state is None:
            raise ValueError(
                "The data spec has no vocabulary, so raw text cannot be tokenized. Build the model from "
                "data (mmzoo.build(..., **data.model_kwargs())), export a run directory (its "
                "data_spec.json has the vocabulary) or pass spec=data.spec."
            )
        return state

    def preprocess(self, value, spec, state, resample=True):
        return self._tokenizer(state)(value)

    def preprocess_one(self, value, spec, state, resample=True):
        return self._tokenizer(state)(value)

    def serve(self, batch, spec, state):
        ids = self._tokenizer(state)(batch)
        empty = tf.where(tf.equal(ids[:, 0], 0))[:, 0]
        return reject_positions(self.name, ids, empty, "empty text (no tokens after tokenization)")

    def check_cell(self, value, where):
        if value is None:
            raise ValueError("the text is missing")
        if not isinstance(value, str):
            raise ValueError("the text must be a string")
        if not value.strip():
            raise ValueError("the text is empty (the model needs it; fix the row or drop it with on_error='skip')")
        return value

    def record_feature(self, spec):
        return tf.io.FixedLenFeature([spec.seq_len], tf.int64)

    def record_value(self, value):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=np.asarray(value).reshape(-1).tolist()))

    def from_record(self, value, spec):
        return tf.cast(value, tf.int32)

    def random_input(self, spec, n, rng):
        ids = rng.integers(2, spec.vocab_size, (n, *self.input_shape(spec))).astype(np.int32)
        for i in range(n):
            ids[i, int(rng.integers(1, spec.seq_len + 1)):] = 0
        return ids

    def absent_raw(self, spec) -> bytes:
        """The empty text (tokenizes to all padding)."""
        return b""

    def synthetic(self, spec, rng, i):
        words = [w for w in (spec.vocabulary or [])[2:] if w.strip()] or ["hello", "world"]
        k = int(rng.integers(2, max(3, spec.seq_len) + 2))
        text = " ".join(words[int(j)] for j in rng.integers(0, len(words), k))
        return text.capitalize() + ("." if i % 2 else "")

    def load_example(self, value, i):
        if not isinstance(value, str):
            raise ValueError(f"Sample {i}: text must be a string. Received: {type(value).__name__}")
        return value

    def raw_batch(self, values, spec):
        return np.asarray([v.encode("utf-8") for v in values], dtype=object)

    def from_user(self, value, spec, state, resample=True):
        if not isinstance(value, str):
            raise ValueError(f"text must be a string. Received: {type(value).__name__}")
        return self._tokenizer(state)(tf.constant(value))

    def sequence_mask(self, inputs):
        return TokenMask(name="text_mask")(inputs)


MODALITIES.add("text", TextModality())
