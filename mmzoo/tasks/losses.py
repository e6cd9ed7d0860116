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


# ---------------------------------------------------------------------- retrieval (in-batch)
def same_group(groups):
    """[B, B] bool: rows i and j belong to the same group (several captions of one image)."""
    groups = ops.reshape(groups, (-1,))
    return ops.equal(ops.expand_dims(groups, 1), ops.expand_dims(groups, 0))


def contrastive_loss(logits, groups):
    """Symmetric InfoNCE (the CLIP loss) over in-batch negatives: row i's positive is
    column i; other rows of its group are left out of the softmax (never negatives).

    Example:
    >>> float(contrastive_loss(ops.eye(2) * 10.0, ops.array([0, 1]))) < 1e-3
    True
    """
    logits = ops.cast(logits, "float32")
    n = ops.shape(logits)[0]
    eye = ops.eye(n, dtype="bool")
    hide = ops.logical_and(same_group(groups), ops.logical_not(eye))
    masked = ops.where(hide, ops.cast(-1e9, logits.dtype), logits)
    labels = ops.arange(n)
    rows = keras.losses.sparse_categorical_crossentropy(labels, masked, from_logits=True)
    cols = keras.losses.sparse_categorical_crossentropy(labels, ops.transpose(masked), from_logits=True)
    return 0.5 * (ops.mean(rows) + ops.mean(cols))


def sigmoid_loss(logits, groups):
    """The SigLIP loss: every (query, candidate) pair of the batch is a binary decision,
    positive when they share a group; summed over candidates, averaged over queries.

    Example:
    >>> float(sigmoid_loss(ops.array([[10.0, -10.0], [-10.0, 10.0]]), ops.array([0, 1]))) < 1e-3
    True
    """
    logits = ops.cast(logits, "float32")
    sign = 2.0 * ops.cast(same_group(groups), "float32") - 1.0
    return -ops.mean(ops.sum(ops.log_sigmoid(sign * logits), axis=1))


RETRIEVAL_LOSSES = {"clip": contrastive_loss, "siglip": sigmoid_loss}


@keras.saving.register_keras_serializable(package="mmzoo")
class MaskedTokenLoss(keras.losses.Loss):
    """Token cross-entropy of a decoder (logits [batch, steps, vocab], ids [batch, steps]),
    averaged over the real tokens: padding (id 0) counts for nothing. Optional label smoothing.

    Example:
    >>> loss = MaskedTokenLoss()
    >>> float(loss(np.array([[4, 0]]), np.zeros((1, 2, 5))))  # doctest: +ELLIPSIS
    1.609...
    """

    def __init__(self, label_smoothing: float = 0.0, name: str = "masked_token_loss", **kwargs):
        kwargs.pop("reduction", None)
        super().__init__(name=name, reduction=None, **kwargs)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1). Received: {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        log_p = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        labels = ops.cast(y_true, "int32")
        picked = ops.take_along_axis(log_p, ops.expand_dims(labels, -1), axis=-1)[..., 0]
        e = self.label_smoothing
        per_token = -(1.0 - e) * picked - e * ops.mean(log_p, axis=-1) if e else -picked
        mask = ops.cast(ops.not_equal(labels, 0), "float32")
        return ops.sum(per_token * mask) / ops.maximum(ops.sum(mask), 1.0)

    def get_config(self):
        config = super().get_config()
        config.pop("reduction", None)
        return {**config, "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="mmzoo")
class MaskedTokenAccuracy(keras.metrics.Mean):
    """Share of real tokens (not padding) whose most likely id is the target (teacher forcing).

    Example:
    >>> metric = MaskedTokenAccuracy()
    >>> metric.update_state(np.array([[1, 0]]), np.array([[[0.0, 1.0], [1.0, 0.0]]]))
    >>> float(metric.result())
    1.0
    """

    def __init__(self, name: str = "token_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.cast(y_true, "int32")
        hit = ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), labels), "float32")
        mask = ops.cast(ops.not_equal(labels, 0), "float32")
        return super().update_state(ops.reshape(hit, (-1,)), sample_weight=ops.reshape(mask, (-1,)))
