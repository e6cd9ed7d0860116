"""Audio front end: a log-mel spectrogram computed inside the model."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Triangular HTK-style mel filters, shape ``[n_fft // 2 + 1, n_mels]``."""
    bins = n_fft // 2 + 1
    fft_freqs = np.linspace(0.0, sample_rate / 2.0, bins)
    mel_points = np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2)
    hz_points = mel_to_hz(mel_points)
    weights = np.zeros((bins, n_mels), dtype=np.float64)
    for m in range(n_mels):
        lower, center, upper = hz_points[m], hz_points[m + 1], hz_points[m + 2]
        rising = (fft_freqs - lower) / max(center - lower, 1e-9)
        falling = (upper - fft_freqs) / max(upper - center, 1e-9)
        weights[:, m] = np.maximum(0.0, np.minimum(rising, falling))
    return weights.astype(np.float32)


def dft_kernel(n_fft: int) -> np.ndarray:
    """Hann-windowed real DFT as a Conv1D kernel ``[n_fft, 1, 2 * bins]`` (cos | sin)."""
    bins = n_fft // 2 + 1
    n = np.arange(n_fft)[:, None]
    k = np.arange(bins)[None, :]
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)
    angle = 2.0 * np.pi * n * k / n_fft
    real = np.cos(angle) * window[:, None]
    imag = -np.sin(angle) * window[:, None]
    return np.concatenate([real, imag], axis=1)[:, None, :].astype(np.float32)


@keras.saving.register_keras_serializable(package="mmzoo")
class LogMelSpectrogram(keras.layers.Layer):
    """Waveform ``[batch, samples]`` to log-mel frames ``[batch, frames, n_mels]``.

    The short-time Fourier transform is a Conv1D with a fixed, windowed DFT kernel and the
    mel projection a fixed matmul, so the layer converts to TFLite builtin ops only
    (no RFFT, no Flex ops) and runs under XLA. It has no trainable weights.

    Args:
        sample_rate: samples per second of the input.
        n_fft: frame length in samples (window size).
        hop_length: samples between frame starts.
        n_mels: mel bands.
        fmin, fmax: frequency range of the mel filters (fmax defaults to Nyquist).
        log_offset: added before the log to avoid log(0).

    Example:
    >>> layer = mmzoo.layers.LogMelSpectrogram(sample_rate=16000, n_mels=40)
    >>> layer(np.zeros((2, 16000), "float32")).shape
    TensorShape([2, 61, 40])
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 512,
        hop_length: int = 256,
        n_mels: int = 40,
        fmin: float = 20.0,
        fmax: float | None = None,
        log_offset: float = 1e-6,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if n_fft < 2 or hop_length < 1 or n_mels < 1:
            raise ValueError(
                "n_fft >= 2, hop_length >= 1 and n_mels >= 1 are required. Received: "
                f"n_fft={n_fft}, hop_length={hop_length}, n_mels={n_mels}"
            )
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.n_mels = int(n_mels)
        self.fmin = float(fmin)
        self.fmax = None if fmax is None else float(fmax)
        self.log_offset = float(log_offset)
        top = self.fmax if self.fmax is not None else self.sample_rate / 2.0
        if not 0 <= self.fmin < top <= self.sample_rate / 2.0:
            raise ValueError(
                f"Need 0 <= fmin < fmax <= sample_rate / 2. Received: fmin={self.fmin}, "
                f"fmax={top}, sample_rate={self.sample_rate}"
            )
        self._kernel = dft_kernel(self.n_fft)
        self._mel = mel_filterbank(self.sample_rate, self.n_fft, self.n_mels, self.fmin, top)
        self._bins = self.n_fft // 2 + 1

    def num_frames(self, samples: int) -> int:
        return (samples - self.n_fft) // self.hop_length + 1

    def build(self, input_shape):
        samples = input_shape[-1]
        if samples is not None and samples < self.n_fft:
            raise ValueError(
                f"LogMelSpectrogram needs at least n_fft={self.n_fft} samples. "
                f"Received input shape {tuple(input_shape)}."
            )

    def call(self, inputs):
        # Always float32 inside: squared magnitudes overflow float16.
        x = ops.expand_dims(ops.cast(inputs, "float32"), -1)
        spec = ops.conv(x, ops.convert_to_tensor(self._kernel), strides=self.hop_length)
        real, imag = spec[..., : self._bins], spec[..., self._bins :]
        power = real * real + imag * imag
        mel = ops.matmul(power, ops.convert_to_tensor(self._mel))
        return ops.cast(ops.log(mel + self.log_offset), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        samples = input_shape[-1]
        frames = None if samples is None else self.num_frames(samples)
        return (input_shape[0], frames, self.n_mels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sample_rate": self.sample_rate,
                "n_fft": self.n_fft,
                "hop_length": self.hop_length,
                "n_mels": self.n_mels,
                "fmin": self.fmin,
                "fmax": self.fmax,
                "log_offset": self.log_offset,
            }
        )
        return config
