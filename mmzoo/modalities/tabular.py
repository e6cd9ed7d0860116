"""The ``tabular`` input: a float32 vector ``[spec.tabular_dim]`` per example (numbers in a
manifest cell: a JSON list, or floats separated by spaces, ``;`` or ``,``)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mmzoo.modalities.base import Modality, reject_positions
from mmzoo.parsing import parse_numbers
from mmzoo.registry import MODALITIES


class TabularModality(Modality):
    """Numbers: the raw value is the input itself (finite floats)."""

    name = "tabular"
    raw_dtype = "float32"

    def raw_signature(self, spec):
        return tf.TensorSpec([None, spec.tabular_dim], tf.float32, name=self.name)

    def preprocess(self, value, spec, state, resample=True):
        return tf.cast(value, tf.float32)

    def preprocess_one(self, value, spec, state, resample=True):
        return tf.reshape(tf.cast(value, tf.float32), [spec.tabular_dim])

    def serve(self, batch, spec, state):
        x = tf.convert_to_tensor(batch, tf.float32)
        bad_rows = tf.where(tf.logical_not(tf.reduce_all(tf.math.is_finite(x), axis=-1)))[:, 0]
        return reject_positions(self.name, x, bad_rows, "values must be finite numbers (no NaN or Inf)")

    def check_cell(self, value, where):
        return parse_numbers(value, "tabular")

    def column(self, values, spec):
        return np.array(values, np.float32).reshape(len(values), spec.tabular_dim)

    def record_feature(self, spec):
        return tf.io.FixedLenFeature([spec.tabular_dim], tf.float32)

    def synthetic(self, spec, rng, i):
        return [float(v) for v in rng.standard_normal(spec.tabular_dim)]

    def load_example(self, value, i):
        return [float(x) for x in np.asarray(value, np.float32).reshape(-1)]

    def raw_batch(self, values, spec):
        return np.asarray(values, np.float32).reshape(len(values), spec.tabular_dim)

    def from_user(self, value, spec, state, resample=True):
        values = np.asarray(value, dtype="float32").reshape(-1)
        if values.shape != (spec.tabular_dim,):
            raise ValueError(f"tabular must have {spec.tabular_dim} numbers. Received {values.shape[0]}.")
        return tf.constant(values)


MODALITIES.add("tabular", TabularModality())
