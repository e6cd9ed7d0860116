"""Losses the targets use that Keras lacks: sparse categorical cross-entropy with label smoothing."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mmzoo")
class SparseCategoricalCrossentropy(keras.losses.Loss):
    """Cross-entropy of integer labels and probabilities, with optional label smoothing.

    Keras' own sparse loss has no ``label_smoothing``; this one is the smoothed target
    ``(1 - e) * onehot + e / num_classes`` without building the one-hot tensor:
    ``(1 - e) * CE(label) + e * mean_k(-log p_k)``.

    Example:
    >>> loss = SparseCategoricalCrossentropy(label_smoothing=0.1)
    >>> float(loss([1], [[0.2, 0.8]]))  # doctest: +ELLIPSIS
    0.29...
    """

    def __init__(self, label_smoothing: float = 0.0, name: str = "sparse_categorical_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1). Received: {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        log_p = ops.log(ops.clip(y_pred, keras.config.epsilon(), 1.0))
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        picked = ops.take_along_axis(log_p, ops.expand_dims(labels, -1), axis=-1)[:, 0]
        e = self.label_smoothing
        if not e:
            return -picked
        return -(1.0 - e) * picked - e * ops.mean(log_p, axis=-1)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
