"""Shared test helpers for the zoo core: tiny settings, fake inputs, a shared test case."""

from __future__ import annotations

import json
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
    num_users=22,
    num_items=22,
    history_len=6,
    profile_dim=3,
)


def tiny_overrides(name: str) -> dict:
    """Tiny settings for a preset, keeping its head's own output sizes."""
    described = mmzoo.describe(name)
    extra = {} if described["head"] in ("regression", "multitask") else {"num_classes": 3}
    if described["task"] == "captioner":  # (a decoder's vocabulary: pad, unknown, start, end and four tokens;
        extra = {"num_classes": 8, "caption_len": 5, "audio_samples": 8000,  # audio: 3 memory frames, not 1)
                 "class_names": ["<pad>", "<unk>", "<start>", "<end>", "a", "red", "circle", "."]}
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
        elif m in ("tabular", "profile"):
            x[m] = rng.standard_normal((batch,) + shape).astype("float32")
        else:  # ids (user, item, history)
            from mmzoo.modalities import get_modality

            x[m] = get_modality(m).random_input(spec, batch, rng)
    return x


def fake_labels(spec, batch: int = 4, seed: int = 1):
    rng = np.random.default_rng(seed)

    def one(task, k):
        if task == "classification":
            return rng.integers(0, k, (batch,)).astype("int32")
        if task == "multilabel":
            return rng.integers(0, 2, (batch, k)).astype("float32")
        return rng.standard_normal((batch, k)).astype("float32")

    if spec.task == "retrieval":  # group ids: rows 1 and 2 show the same thing
        return ((np.arange(batch) + 1) // 2).astype("int32")
    if spec.task == "captioning":  # start, tokens, end, padding
        ids = rng.integers(4, spec.num_classes, (batch, spec.caption_len + 2)).astype("int32")
        ids[:, 0], ids[:, -2], ids[:, -1] = 2, 3, 0
        return ids
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
            if loss_fn is None:  # the task's own loss (a retriever's in-batch loss)
                loss = model.compute_loss(x=x, y=y, y_pred=out)
            elif isinstance(loss_fn, dict):
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


# ----------------------------------------------------------------------------- task contract
VOCABULARY = ["<pad>", "<unk>"] + [f"w{i}" for i in range(TINY["vocab_size"] - 2)]


USER_IDS = ["<pad>", "<unk>"] + [f"user{i}" for i in range(TINY["num_users"] - 2)]
ITEM_IDS = ["<pad>", "<unk>"] + [f"item{i}" for i in range(TINY["num_items"] - 2)]


def tiny_task(name: str, seed: int = 0):
    """A preset at tiny shapes, with vocabularies (so its preprocessor tokenizes and looks ids up)."""
    return mmzoo.build(name, seed=seed, compile=False, vocabulary=VOCABULARY, user_ids=USER_IDS, item_ids=ITEM_IDS,
                       **tiny_overrides(name))


class TaskContract:
    """What every registered task and preset must do (keras-hub's ``run_task_test`` idea):
    call the runners from a test that walks the registry."""

    @staticmethod
    def raw_batch(task, n: int = 4) -> dict:
        from mmzoo.export.examples import raw_batch, synthetic_examples

        return raw_batch(synthetic_examples(task.spec, n, seed=0), task.spec)

    @staticmethod
    def model_pair(task, x, y):
        """``(model inputs, target)`` as ``fit`` reads them (a captioner's decoder also reads its target)."""
        targets = task.spec.targets
        return targets[0].model_pair(dict(x), y) if len(targets) == 1 else (x, y)

    def run_preprocessor_test(self, task):
        """The preprocessor turns raw inputs into exactly the model's inputs (of its data)."""
        x = task.preprocess({k: tf.constant(v) for k, v in self.raw_batch(task).items()})
        assert set(x) == set(task.spec.modalities), (sorted(x), sorted(task.input))
        x = {k: np.asarray(v) for k, v in x.items()}
        for name, value in x.items():
            expected = task.input[name]
            assert tuple(value.shape[1:]) == tuple(expected.shape[1:]), (name, value.shape, expected.shape)
            assert value.dtype.name == expected.dtype, (name, value.dtype, expected.dtype)
        model_x, _ = self.model_pair(task, x, fake_labels(task.spec, len(next(iter(x.values())))))
        assert set(model_x) == set(task.input), (sorted(model_x), sorted(task.input))
        out = task(model_x, training=False)
        assert all(np.all(np.isfinite(o)) for o in flat_outputs(out))
        return x

    def run_fit_test(self, task, x, y):
        """``compile()`` with no arguments, then ``fit`` changes every trainable weight."""
        x, y = self.model_pair(task, x, y)
        task.compile(optimizer=keras.optimizers.Adam(1e-2))
        before = [v.numpy().copy() for v in task.trainable_variables]
        history = task.fit(x, y, epochs=2, batch_size=len(next(iter(x.values()))), verbose=0)
        assert all(np.isfinite(history.history["loss"]))
        unchanged = [v.path for v, b in zip(task.trainable_variables, before) if np.array_equal(v.numpy(), b)]
        assert not unchanged, f"weights that fit did not change: {unchanged}"

    def run_round_trip_test(self, task, x):
        """``.keras`` with ``safe_mode=True``: same class, config, spec (vocabulary) and outputs."""
        x, _ = self.model_pair(task, x, fake_labels(task.spec, len(next(iter(x.values())))))
        loaded = MmzooTestCase().assert_keras_round_trip(task, x)
        assert type(loaded) is type(task) and loaded.get_config() == task.get_config()
        assert loaded.spec == task.spec and loaded.spec.vocabulary == task.spec.vocabulary
        return loaded

    def run_export_test(self, task, out_dir):
        """Every exporter's artifacts pass validation (published only then); a retriever searches
        a catalogue of synthetic candidates written as files."""
        extra = {"candidates": self.candidates_file(task, out_dir)} if getattr(task, "sides", None) else {}
        result = mmzoo.export(task, out=str(out_dir), name="contract", formats=mmzoo.export.FORMATS,
                              num_samples=8, warmup_requests=2, validate="inline", **extra)
        failed = [k for k, check in result.parity.items() if not check["passed"]]
        assert not failed, failed
        lite = {"tflite_query_float32", "tflite_candidate_float32"} if extra else {"tflite_float32"}
        assert {"saved_model", *lite} <= set(result.artifacts)
        return result

    @staticmethod
    def candidates_file(task, folder, n: int = 6) -> str:
        from mmzoo.export.examples import synthetic_examples

        side = task.sides["candidate"]
        rows = []
        for i, example in enumerate(synthetic_examples(task.spec, n, seed=1)):
            row = {"id": f"c{i}"}
            for m in side:
                if isinstance(example[m], bytes):
                    name = f"candidate{i}.{m}"
                    with open(os.path.join(str(folder), name), "wb") as f:
                        f.write(example[m])
                    row[m] = name
                else:
                    row[m] = example[m]
            rows.append(row)
        path = os.path.join(str(folder), "candidates.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            f.write("".join(json.dumps(r) + "\n" for r in rows))
        return path
