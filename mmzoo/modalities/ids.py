"""A recommender's inputs: ``user`` and ``item`` (an id string -> int32 ``[1]``), ``history``
(the user's earlier item ids, space-separated, most recent last -> int32 ``[spec.history_len]``,
the most recent ones, padding 0) and ``profile`` (the user's features: float32
``[spec.profile_dim]``).

Ids are looked up in the spec's vocabularies (``spec.user_ids``, ``spec.item_ids``: index 0 is
padding, 1 an unknown id, as for text); an unknown id is allowed (a new user or item: id 1).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mmzoo.modalities.base import Modality, reject_positions
from mmzoo.modalities.tabular import TabularModality
from mmzoo.parsing import parse_numbers
from mmzoo.registry import MODALITIES

PAD, UNKNOWN = 0, 1
#: the reserved entries of an id vocabulary
RESERVED = ("<pad>", "<unk>")


class IdLookup(tf.Module):
    """Id strings -> int32 indices of a vocabulary (unknown: 1), a table saved with the model."""

    def __init__(self, vocabulary, name: str):
        super().__init__(name=name)
        keys = tf.constant(list(vocabulary)[len(RESERVED):], tf.string)
        values = tf.range(len(RESERVED), len(vocabulary), dtype=tf.int64)
        self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), UNKNOWN)

    def __call__(self, ids):
        return tf.cast(self.table.lookup(ids), tf.int32)


def _vocabulary(spec, field: str, name: str):
    vocabulary = getattr(spec, field)
    if not vocabulary:
        raise ValueError(f"The data spec has no {field}, so raw {name} ids cannot be looked up. Build the model "
                         "from data (mmzoo.build(..., **data.model_kwargs())) or export a run directory.")
    return vocabulary


class IdModality(Modality):
    """One id per example (``user`` or ``item``)."""

    vocabulary_field = ""

    def make_state(self, spec):
        vocabulary = getattr(spec, self.vocabulary_field)
        return IdLookup(vocabulary, f"{self.name}_ids") if vocabulary else None

    def _lookup(self, spec, state):
        if state is None:
            _vocabulary(spec, self.vocabulary_field, self.name)
        return state

    def preprocess(self, value, spec, state, resample=True):
        value = tf.convert_to_tensor(value, tf.string)
        ids = self._lookup(spec, state)(tf.strings.strip(value))
        return tf.reshape(ids, [1]) if value.shape.rank == 0 else tf.reshape(ids, [-1, 1])

    def preprocess_one(self, value, spec, state, resample=True):
        return tf.reshape(self._lookup(spec, state)(tf.strings.strip(value)), [1])

    def serve(self, batch, spec, state):
        batch = tf.strings.strip(tf.convert_to_tensor(batch, tf.string))
        ids = tf.reshape(self._lookup(spec, state)(batch), [-1, 1])
        empty = tf.where(tf.equal(tf.strings.length(batch), 0))[:, 0]
        return reject_positions(self.name, ids, empty, f"empty {self.name} id")

    def check_cell(self, value, where):
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError(f"the {self.name} id is empty")
        if isinstance(value, float) and value == int(value):
            value = int(value)
        return str(value).strip()

    def random_input(self, spec, n, rng):
        size = len(getattr(spec, self.vocabulary_field) or RESERVED * 2)
        return rng.integers(len(RESERVED), max(len(RESERVED) + 1, size), (n, 1)).astype(np.int32)

    def synthetic(self, spec, rng, i):
        vocabulary = list(getattr(spec, self.vocabulary_field) or [])[len(RESERVED):] or [f"{self.name}{i}"]
        return vocabulary[int(rng.integers(len(vocabulary)))]

    def load_example(self, value, i):
        return self.check_cell(value, {})

    def raw_batch(self, values, spec):
        return np.asarray([str(v).encode("utf-8") for v in values], dtype=object)

    def from_user(self, value, spec, state, resample=True):
        return self.preprocess_one(tf.constant(self.check_cell(value, {})), spec, state)

    def record_feature(self, spec):
        return tf.io.FixedLenFeature([1], tf.int64)

    def record_value(self, value):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=np.asarray(value).reshape(-1).tolist()))

    def from_record(self, value, spec):
        return tf.cast(value, tf.int32)


class UserModality(IdModality):
    name = "user"
    vocabulary_field = "user_ids"


class ItemModality(IdModality):
    name = "item"
    vocabulary_field = "item_ids"


class HistoryModality(Modality):
    """The user's earlier items: ids separated by spaces, most recent last ("" = none yet)."""

    name = "history"

    def make_state(self, spec):
        return IdLookup(spec.item_ids, "history_ids") if spec.item_ids else None

    def _ids(self, value, spec, state):
        if state is None:
            _vocabulary(spec, "item_ids", "history")
        tokens = tf.strings.split(value)  # ragged [batch, n]
        ids = tf.ragged.map_flat_values(state, tokens)
        n = spec.history_len
        recent = ids[:, -n:] if ids.shape.rank is not None else ids
        return recent.to_tensor(default_value=PAD, shape=[None, n])

    def preprocess(self, value, spec, state, resample=True):
        value = tf.convert_to_tensor(value, tf.string)
        if value.shape.rank == 0:
            return self._ids(tf.reshape(value, [1]), spec, state)[0]
        return self._ids(value, spec, state)

    def preprocess_one(self, value, spec, state, resample=True):
        return self._ids(tf.reshape(value, [1]), spec, state)[0]

    def serve(self, batch, spec, state):
        return self._ids(tf.convert_to_tensor(batch, tf.string), spec, state)

    def check_cell(self, value, where):
        if value is None:
            return ""
        if isinstance(value, list):
            return " ".join(str(v) for v in value)
        return str(value).strip()

    def random_input(self, spec, n, rng):
        size = len(spec.item_ids or RESERVED * 2)
        ids = rng.integers(len(RESERVED), max(len(RESERVED) + 1, size), (n, spec.history_len)).astype(np.int32)
        for i in range(n):
            ids[i, int(rng.integers(0, spec.history_len)):] = PAD
        return ids

    def blank(self, array):
        return np.zeros_like(array)

    def synthetic(self, spec, rng, i):
        vocabulary = list(spec.item_ids or [])[len(RESERVED):] or ["a", "b"]
        k = int(rng.integers(0, spec.history_len + 3))
        return " ".join(vocabulary[int(j)] for j in rng.integers(0, len(vocabulary), k))

    def load_example(self, value, i):
        return self.check_cell(value, {})

    def raw_batch(self, values, spec):
        return np.asarray([str(v).encode("utf-8") for v in values], dtype=object)

    def from_user(self, value, spec, state, resample=True):
        return self.preprocess_one(tf.constant(self.check_cell(value, {})), spec, state)

    def record_feature(self, spec):
        return tf.io.FixedLenFeature([spec.history_len], tf.int64)

    def record_value(self, value):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=np.asarray(value).reshape(-1).tolist()))

    def from_record(self, value, spec):
        return tf.cast(value, tf.int32)

    def sequence_mask(self, inputs):
        from mmzoo.layers import TokenMask

        return TokenMask(name="history_mask")(inputs)


class ProfileModality(TabularModality):
    """The user's features: numbers, as ``tabular`` is for the item (``spec.profile_dim``)."""

    name = "profile"

    def _dim(self, spec) -> int:
        return spec.profile_dim

    def raw_signature(self, spec):
        return tf.TensorSpec([None, spec.profile_dim], tf.float32, name=self.name)

    def preprocess_one(self, value, spec, state, resample=True):
        return tf.reshape(tf.cast(value, tf.float32), [spec.profile_dim])

    def check_cell(self, value, where):
        return parse_numbers(value, "profile")

    def column(self, values, spec):
        return np.array(values, np.float32).reshape(len(values), spec.profile_dim)

    def record_feature(self, spec):
        return tf.io.FixedLenFeature([spec.profile_dim], tf.float32)

    def synthetic(self, spec, rng, i):
        return [float(v) for v in rng.standard_normal(spec.profile_dim)]

    def raw_batch(self, values, spec):
        return np.asarray(values, np.float32).reshape(len(values), spec.profile_dim)

    def from_user(self, value, spec, state, resample=True):
        values = np.asarray(value, dtype="float32").reshape(-1)
        if values.shape != (spec.profile_dim,):
            raise ValueError(f"profile must have {spec.profile_dim} numbers. Received {values.shape[0]}.")
        return tf.constant(values)


for _record in (UserModality(), ItemModality(), HistoryModality(), ProfileModality()):
    MODALITIES.add(_record.name, _record)
