"""Shared test helpers for the zoo core: tiny settings, fake inputs, a shared test case."""

from __future__ import annotations

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf
from keras.src.testing import TestCase

import mmzoo

# Small shapes so every preset builds and trains in seconds on 2 CPU cores.
TINY = dict(
    image_shape=(32, 32, 3),
    seq_len=8,
    vocab_size=50,
    sample_rate=8000,
    audio_samples=2048,
    tabular_dim=5,
)


def tiny_overrides(name: str) -> dict:
    """Tiny settings for a preset, keeping its head's own output sizes."""
    head = mmzoo.describe(name)["head"]
    extra = {} if head in ("regression", "multitask") else {"num_classes": 3}
    return {**TINY, **extra}


def fake_inputs(spec, batch: int = 4, seed: int = 0) -> dict:
    """Random inputs matching a spec; text rows end in padding (id 0)."""
    rng = np.random.default_rng(seed)
    x = {}
    for m, shape in spec.input_shapes().items():
        if m == "image":
            x[m] = rng.integers(0, 256, (batch,) + shape).astype(spec.image_dtype)
        elif m == "text":
            ids = rng.integers(2, spec.vocab_size, (batch,) + shape).astype("int32")
            ids[:, -2:] = 0
            x[m] = ids
        elif m == "audio":
            x[m] = (0.3 * rng.standard_normal((batch,) + shape)).astype("float32")
        else:
            x[m] = rng.standard_normal((batch,) + shape).astype("float32")
    return x


def fake_labels(spec, batch: int = 4, seed: int = 1):
    rng = np.random.default_rng(seed)

    def one(task, k):
        if task == "classification":
            return rng.integers(0, k, (batch,)).astype("int32")
        if task == "multilabel":
            return rng.integers(0, 2, (batch, k)).astype("float32")
        return rng.standard_normal((batch, k)).astype("float32")

    if spec.task == "multitask":
        return {t: one(c["task"], c.get("num_classes", 1)) for t, c in spec.tasks.items()}
    return one(spec.task, spec.num_classes)


def train_steps(model, x, y, steps: int = 2, learning_rate: float = 1e-2) -> list:
    """A few eager training steps with the model's own loss; returns the losses."""
    optimizer = keras.optimizers.Adam(learning_rate)
    loss_fn = model.default_loss()
    losses = []
    for _ in range(steps):
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            if isinstance(loss_fn, dict):
                loss = tf.add_n([loss_fn[k](y[k], out[k]) for k in loss_fn])
            else:
                loss = loss_fn(y, out)
        grads = tape.gradient(loss, model.trainable_variables)
        missing = [v.path for v, g in zip(model.trainable_variables, grads) if g is None]
        assert not missing, f"no gradient reaches {missing}"
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        losses.append(float(loss))
    return losses


def flat_outputs(out) -> list:
    return [np.asarray(o) for o in keras.tree.flatten(out)]


class MmzooTestCase(TestCase):
    """Keras' own layer test harness plus mmzoo round trips."""

    def assert_keras_round_trip(self, model, x, atol: float = 0.0):
        """Save to ``.keras``, load with ``safe_mode=True``, compare outputs exactly."""
        path = os.path.join(tempfile.mkdtemp(), "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        for a, b in zip(flat_outputs(model(x, training=False)), flat_outputs(loaded(x, training=False))):
            np.testing.assert_allclose(a, b, atol=atol, rtol=0)
        return loaded
