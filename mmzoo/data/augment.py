"""Training-time augmentation of batches in the tf.data pipeline, per modality, seeded.

On by default where it is safe (`Augmentation()`): images get a small random shift and
rotation (no colour change: colour can be the answer), audio a time shift, a gain and light
noise, and modality dropout blanks one whole input of an example now and then (zeros; text:
all padding, as the ablation does), so a model does not lean on one branch. Text token
dropout (a token becomes ``<unk>``) is opt-in: in a short question one word can decide the
answer ("written" or "spoken"), and dropping it makes the label a guess. SpecAugment-style
masks live in the audio encoders' front end (`mmzoo.layers.SpecAugment`), active in training
only. Validation, test, export and serving never see any of it.

Example:
>>> aug = Augmentation(image_rotate=0.0, modality_dropout=0.2)
>>> ds = augmented(data.dataset("train", batch_size=64, seed=0), aug, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Union

import tensorflow as tf

OOV_ID = 1  # mmzoo.data.text.RESERVED: <pad> = 0, <unk> = 1
SHIFT_BLOCK = 160  # audio shifts move whole blocks of samples (10 ms at 16 kHz)


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """What the training pipeline changes in each batch (0 turns an item off).

    Args:
        image_shift: random translation, a fraction of height / width (edges repeated).
        image_rotate: random rotation up to this many degrees.
        audio_shift: random time shift, a fraction of the clip (zeros come in).
        audio_gain_db: random gain within +- this many dB (then clipped to -1..1).
        audio_noise: Gaussian noise with a standard deviation up to this (full scale 1).
        text_dropout: probability that a token becomes ``<unk>``.
        modality_dropout: probability that an example loses one of its inputs (2+ inputs).
        spec_augment: SpecAugment masks in the audio front end (an encoder option).
    """

    image_shift: float = 0.06
    image_rotate: float = 8.0
    audio_shift: float = 0.05
    audio_gain_db: float = 6.0
    audio_noise: float = 0.003
    text_dropout: float = 0.0
    modality_dropout: float = 0.05
    spec_augment: bool = True

    @classmethod
    def off(cls) -> "Augmentation":
        return cls(**{k: (False if isinstance(v, bool) else 0.0) for k, v in cls().to_dict().items()})

    @classmethod
    def from_setting(cls, setting: Union[None, bool, str, dict, "Augmentation"]) -> "Augmentation":
        """``"auto"``/True/None -> the defaults, ``"off"``/False -> nothing, a dict -> overrides."""
        if isinstance(setting, Augmentation):
            return setting
        if setting in (None, True, "auto", "on"):
            return cls()
        if setting in (False, "off"):
            return cls.off()
        if isinstance(setting, dict):
            names = {f.name for f in dataclasses.fields(cls)}
            unknown = sorted(set(setting) - names)
            if unknown:
                raise ValueError(f"Unknown augmentation settings {unknown}. Known: {sorted(names)}")
            return cls(**setting)
        raise ValueError(f"augment must be 'auto', 'off', a dict or an Augmentation. Received: {setting!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def active(self) -> bool:
        return any(v for k, v in self.to_dict().items() if k != "spec_augment")

    def apply(self, features: dict, seed) -> dict:
        """Augment one batch (a dict of model inputs); ``seed``: an int64 pair tensor."""
        out = dict(features)
        seeds = tf.random.experimental.stateless_split(seed, num=5)
        if "image" in out and (self.image_shift or self.image_rotate):
            out["image"] = _image(out["image"], self.image_shift, self.image_rotate, seeds[0])
        if "audio" in out and (self.audio_shift or self.audio_gain_db or self.audio_noise):
            out["audio"] = _audio(out["audio"], self.audio_shift, self.audio_gain_db, self.audio_noise, seeds[1])
        if "text" in out and self.text_dropout:
            ids = out["text"]
            drop = tf.random.stateless_uniform(tf.shape(ids), seeds[2]) < self.text_dropout
            out["text"] = tf.where(drop & (ids > 0), tf.cast(OOV_ID, ids.dtype), ids)
        names = sorted(k for k in out if k in ("image", "text", "audio", "tabular"))
        if self.modality_dropout and len(names) > 1:
            out = _modality_dropout(out, names, self.modality_dropout, seeds[3], seeds[4])
        return out


def _batch_size(x):
    return tf.shape(x)[0]


def _image(images, shift: float, degrees: float, seed):
    x = images
    n = _batch_size(x)
    h, w = tf.cast(tf.shape(x)[1], tf.float32), tf.cast(tf.shape(x)[2], tf.float32)
    s = tf.random.experimental.stateless_split(seed, 3)
    angle = tf.random.stateless_uniform([n], s[0], -1.0, 1.0) * (degrees * math.pi / 180.0)
    dx = tf.random.stateless_uniform([n], s[1], -1.0, 1.0) * shift * w
    dy = tf.random.stateless_uniform([n], s[2], -1.0, 1.0) * shift * h
    cos, sin = tf.cos(angle), tf.sin(angle)
    cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
    # output (x, y) samples input (a0 x + a1 y + a2, b0 x + b1 y + b2): rotate about the centre, shift
    a2 = cx - cos * cx + sin * cy - dx
    b2 = cy - sin * cx - cos * cy - dy
    zeros = tf.zeros_like(cos)
    transforms = tf.stack([cos, -sin, a2, sin, cos, b2, zeros, zeros], axis=1)
    # nearest-neighbour sampling on the stored dtype (uint8): no casts, and no new colours
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=x, transforms=transforms, output_shape=tf.shape(x)[1:3], fill_value=0.0,
        interpolation="NEAREST", fill_mode="NEAREST")


def _audio(audio, shift: float, gain_db: float, noise: float, seed):
    n, length = _batch_size(audio), tf.shape(audio)[1]
    s = tf.random.experimental.stateless_split(seed, 4)
    x = audio
    if shift:  # whole 10 ms blocks (a gather of blocks, not of samples: 100x cheaper)
        block = SHIFT_BLOCK
        blocks = (length + block - 1) // block
        padded = tf.pad(x, [[0, 0], [0, blocks * block - length]])
        most = tf.cast(tf.round(shift * tf.cast(blocks, tf.float32)), tf.int32)
        offset = tf.random.stateless_uniform([n, 1], s[0], -most, most + 1, dtype=tf.int32)
        index = tf.range(blocks)[None, :] - offset
        valid = (index >= 0) & (index < blocks)
        moved = tf.gather(tf.reshape(padded, [n, blocks, block]), tf.clip_by_value(index, 0, blocks - 1),
                          batch_dims=1)
        moved = tf.where(valid[:, :, None], moved, 0.0)
        x = tf.reshape(moved, [n, blocks * block])[:, :length]
    if gain_db:
        db = tf.random.stateless_uniform([n, 1], s[1], -gain_db, gain_db)
        x = x * tf.pow(10.0, db / 20.0)
    if noise:  # one noise clip a batch, each example its own level
        level = tf.random.stateless_uniform([n, 1], s[2], 0.0, noise)
        x = x + level * tf.random.stateless_normal([1, length], s[3])
    return tf.clip_by_value(x, -1.0, 1.0)


def _modality_dropout(features: dict, names, probability: float, seed_drop, seed_pick) -> dict:
    n = _batch_size(features[names[0]])
    drop = tf.random.stateless_uniform([n], seed_drop) < probability
    pick = tf.random.stateless_uniform([n], seed_pick, 0, len(names), dtype=tf.int32)
    out = dict(features)
    for i, name in enumerate(names):
        x = features[name]
        blank = drop & tf.equal(pick, i)
        shape = tf.concat([[n], tf.ones([tf.rank(x) - 1], tf.int32)], axis=0)
        out[name] = tf.where(tf.reshape(blank, shape), tf.zeros_like(x), x)
    return out


def augmented(ds: tf.data.Dataset, augmentation: Augmentation, seed: Optional[int]) -> tf.data.Dataset:
    """Map a batched ``(features, label)`` dataset through ``augmentation``; other draws each epoch,
    the same draws for the same seed."""
    if not augmentation.active:
        return ds
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def fn(batch, pair):
        features, label = batch
        return augmentation.apply(features, pair), label

    from mmzoo.data.options import pipeline_options
    from mmzoo.host import cpu_parallelism

    # parallel and still deterministic: each batch's draws come from its own seed pair, in order
    out = tf.data.Dataset.zip((ds, seeds)).map(fn, num_parallel_calls=cpu_parallelism(), deterministic=True)
    out = out.prefetch(2)
    return out.with_options(pipeline_options(deterministic=True))
