"""The ``audio`` input: WAV bytes in (any rate and channel count: mixed down and resampled),
float32 waveform ``[spec.audio_samples]`` at ``spec.sample_rate`` out (cropped or padded)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mmzoo.data import audio as audio_lib
from mmzoo.data import manifest as manifest_lib
from mmzoo.modalities.base import Modality, checked_map, decode_user_file, read_user_file
from mmzoo.modalities.image import _check_file
from mmzoo.registry import MODALITIES

REASON = "not a decodable WAV file (16-bit PCM with at least one sample expected)"


class AudioModality(Modality):
    """Sound clips: a WAV file per example (manifest path, bytes, or a waveform array)."""

    name = "audio"
    is_file = True

    def preprocess_one(self, value, spec, state, resample=True):
        return audio_lib.preprocess_wav_bytes(value, spec, resample)

    def from_decoded(self, value, spec, state, sample_rate=None, resample=True):
        return audio_lib.preprocess_audio(value, sample_rate, spec, resample)

    def serve(self, batch, spec, state):
        """Canonical mono WAVs at the spec's rate are decoded for the whole batch at once; any
        other file one by one (resampled, mixed down, or rejected with its position)."""

        def one_by_one(b):
            wav, _ = tf.audio.decode_wav(b)
            has_samples = tf.debugging.assert_greater(tf.shape(wav)[0], 0, message="the WAV file has no samples")
            with tf.control_dependencies([has_samples]):
                return audio_lib.preprocess_wav_bytes(b, spec)

        waves, ok = audio_lib.decode_wav_batch(batch, spec.sample_rate, spec.audio_samples)
        rest = tf.where(tf.logical_not(ok))[:, 0]

        def merge_the_rest():
            others = checked_map(self.name, tf.gather(batch, rest), one_by_one, [spec.audio_samples],
                                 tf.float32, REASON, positions=rest)
            return tf.tensor_scatter_nd_update(waves, rest[:, tf.newaxis], others)

        waves = tf.cond(tf.size(rest) > 0, merge_the_rest, lambda: waves)
        return tf.identity(waves, name=self.name)

    def check_cell(self, value, where):
        full = manifest_lib.resolve_path(value, where["root"], where["allow_absolute_paths"])
        _check_file(full)
        with open(full, "rb") as f:
            info = audio_lib.wav_header(f.read())
        if not where["resample"] and info["sample_rate"] != int(where["sample_rate"]):
            raise ValueError(f"sample rate {info['sample_rate']} Hz differs from the spec's "
                             f"{where['sample_rate']} Hz (resample=False)")
        return full

    def decode_check(self, spec, resample):
        return lambda b: audio_lib.preprocess_wav_bytes(b, spec, resample)

    def record_feature(self, spec):
        return tf.io.FixedLenFeature([spec.audio_samples], tf.float32)

    def random_input(self, spec, n, rng):
        return (0.3 * rng.standard_normal((n, *self.input_shape(spec)))).astype(np.float32)

    def synthetic(self, spec, rng, i):
        """A 16-bit WAV at the spec's rate: a tone (some clips half as long) with a little noise."""
        rate = spec.sample_rate
        length = spec.audio_samples if i % 3 else max(1, spec.audio_samples // 2)
        t = np.arange(length) / rate
        freq = 200.0 + 150.0 * (i % 5)
        wave = 0.4 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(length)
        return bytes(tf.audio.encode_wav(wave.astype(np.float32)[:, None], rate).numpy())

    def absent_raw(self, spec) -> bytes:
        """A silent WAV of the input's length at its rate (decodes to zeros)."""
        silence = np.zeros((spec.audio_samples, 1), np.float32)
        return bytes(tf.audio.encode_wav(silence, spec.sample_rate).numpy())

    def from_user(self, value, spec, state, resample=True):
        raw = read_user_file(value, self.name)
        if raw is not None:
            return decode_user_file(lambda b: audio_lib.preprocess_wav_bytes(b, spec, resample), raw, self.name,
                                    value)
        return audio_lib.preprocess_audio(np.asarray(value, dtype="float32"), spec.sample_rate, spec, resample)


MODALITIES.add("audio", AudioModality())
