"""Layers used only in export wrappers (never saved in a model)."""

from __future__ import annotations

import keras
import tensorflow as tf


class ArgMax(keras.layers.Layer):
    """``tf.argmax`` as a layer (int32 ids): ``keras.ops.argmax`` adds a -0.0 fix-up
    (BitwiseAnd) that has no TFLite builtin. Used in the TFLite conversion wrapper."""

    def call(self, x):
        return tf.argmax(x, axis=-1, output_type=tf.int32)

    def compute_output_shape(self, shape):
        return tuple(shape[:-1])

    def compute_output_spec(self, x):
        return keras.KerasTensor(x.shape[:-1], dtype="int32")
