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


def mel_groups(mel: np.ndarray, limit: int = 1024) -> list:
    """Split a mel filterbank ``[bins, n_mels]`` into groups of consecutive bands with the
    bin range they cover, ``[(first_band, last_band, low_bin, high_bin), ...]``, each block
    ``mel[low:high, first:last]`` under ``limit`` elements (TFLite's quantizers leave smaller
    weights in float32). Together the blocks hold every nonzero weight.

    Example:
    >>> mel_groups(mel_filterbank(16000, 512, 40, 20.0, 8000.0))[0]
    (0, 18, 1, 51)
    """
    bins, n_mels = mel.shape
    spans = []
    for m in range(n_mels):
        nonzero = np.nonzero(mel[:, m])[0]
        spans.append((int(nonzero.min()), int(nonzero.max()) + 1) if len(nonzero) else (0, 1))
    groups, first = [], 0
    while first < n_mels:
        (low, high), last = spans[first], first + 1
        while last < n_mels:
            lo, hi = min(low, spans[last][0]), max(high, spans[last][1])
            if (hi - lo) * (last + 1 - first) >= limit:
                break
            low, high, last = lo, hi, last + 1
        groups.append((first, last, low, high))
        first = last
    return groups


@keras.saving.register_keras_serializable(package="mmzoo")
class LogMelSpectrogram(keras.layers.Layer):
    """Waveform ``[batch, samples]`` to log-mel frames ``[batch, frames, n_mels]``.

    The short-time Fourier transform is a real FFT of Hann-windowed frames (TFLite's builtin
    ``RFFT2D``) and the mel projection a few small matmuls over the bins each group of bands
    covers (the filters are sparse). Both matter for quantized LiteRT: an FFT has no weights
    and matrices under 1,024 elements are left in float32, so dynamic-range quantization
    leaves the whole front end in float (a DFT stored as a conv kernel was quantized to int8,
    and with it the waveform: the log then magnified the noise floor into errors of several
    nats, see docs/export.md). When ``n_fft`` is not a power of two (TFLite's FFT needs one)
    the frames go through a Conv1D with a fixed DFT kernel instead. No trainable weights;
    builtin ops only; runs under XLA.

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
        self._mel = mel_filterbank(self.sample_rate, self.n_fft, self.n_mels, self.fmin, top)
        self._bins = self.n_fft // 2 + 1
        self._use_fft = self.n_fft & (self.n_fft - 1) == 0
        self._kernel = None if self._use_fft else dft_kernel(self.n_fft)
        self._window = np.asarray(0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(self.n_fft) / self.n_fft), "float32")
        self._mel_groups = mel_groups(self._mel)

    def use_dft_conv(self) -> None:
        """Compute the STFT as a Conv1D with a fixed DFT kernel from now on (same numbers to
        ~1e-4): for converters without FFT support, e.g. tf2onnx. Before the layer is traced."""
        self._use_fft = False
        self._kernel = dft_kernel(self.n_fft)

    def num_frames(self, samples: int) -> int:
        return (samples - self.n_fft) // self.hop_length + 1

    def build(self, input_shape):
        samples = input_shape[-1]
        if samples is not None and samples < self.n_fft:
            raise ValueError(
                f"LogMelSpectrogram needs at least n_fft={self.n_fft} samples. "
                f"Received input shape {tuple(input_shape)}."
            )

    def _frames(self, x):
        """``[batch, samples]`` -> ``[batch, frames, n_fft]`` (reshapes and slices when the hop
        divides the frame length, a gather otherwise)."""
        frames = self.num_frames(x.shape[-1])
        hop, n_fft = self.hop_length, self.n_fft
        if n_fft % hop == 0:
            r = n_fft // hop
            chunks = ops.reshape(x[:, : (frames + r - 1) * hop], (-1, frames + r - 1, hop))
            return ops.concatenate([chunks[:, i:i + frames] for i in range(r)], axis=-1)
        index = np.arange(frames)[:, None] * hop + np.arange(n_fft)[None, :]
        return ops.take(x, ops.convert_to_tensor(index.astype("int32")), axis=1)

    def _power(self, x):
        if self._use_fft:
            frames = self._frames(x) * ops.convert_to_tensor(self._window)
            if keras.backend.backend() == "tensorflow":
                # |rfft|: ComplexAbs, the one consumer of an FFT that tf2onnx converts (Real
                # and Imag are not); TFLite's COMPLEX_ABS is a builtin.
                import tensorflow as tf

                return ops.square(tf.abs(tf.signal.rfft(frames)))
            real, imag = ops.rfft(frames)
        else:
            spec = ops.conv(ops.expand_dims(x, -1), ops.convert_to_tensor(self._kernel), strides=self.hop_length)
            real, imag = spec[..., : self._bins], spec[..., self._bins :]
        return real * real + imag * imag

    def call(self, inputs):
        # Always float32 inside: squared magnitudes overflow float16.
        power = self._power(ops.cast(inputs, "float32"))
        frames = power.shape[1]
        power = ops.reshape(power, (-1, self._bins))  # 2-D matmuls: no shape ops in the flatbuffer
        bands = [ops.matmul(power[:, lo:hi], ops.convert_to_tensor(self._mel[lo:hi, first:last]))
                 for first, last, lo, hi in self._mel_groups]
        mel = bands[0] if len(bands) == 1 else ops.concatenate(bands, axis=-1)
        mel = ops.reshape(mel, (-1, frames, self.n_mels))
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


@keras.saving.register_keras_serializable(package="mmzoo")
class SpecAugment(keras.layers.Layer):
    """SpecAugment-style masks on log-mel frames ``[batch, frames, n_mels]``, in training only.

    Each example gets ``time_masks`` spans of up to ``time_width`` of its frames and
    ``freq_masks`` bands of up to ``freq_width`` of its mel bands set to its own mean (Park et
    al., 2019, without time warping). At inference the layer returns its input unchanged, so
    exported models hold no random op. No weights.

    Example:
    >>> layer = mmzoo.layers.SpecAugment()
    >>> x = np.random.rand(2, 61, 40).astype("float32")
    >>> bool(np.all(layer(x, training=False) == x))
    True
    """

    def __init__(self, time_masks: int = 2, time_width: float = 0.05, freq_masks: int = 2,
                 freq_width: float = 0.1, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if time_masks < 0 or freq_masks < 0 or not (0 <= time_width < 1 and 0 <= freq_width < 1):
            raise ValueError(
                "time_masks, freq_masks >= 0 and widths in [0, 1) are required. Received: "
                f"time_masks={time_masks}, time_width={time_width}, freq_masks={freq_masks}, freq_width={freq_width}")
        self.time_masks, self.time_width = int(time_masks), float(time_width)
        self.freq_masks, self.freq_width = int(freq_masks), float(freq_width)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _masks(self, batch, size: int, count: int, width: float):
        """``[batch, size]`` booleans: ``count`` random spans of up to ``width * size``."""
        most = max(1, int(round(width * size)))
        positions = ops.arange(size)[None, :]
        masked = ops.zeros((batch, size), "bool")
        for _ in range(count):
            length = ops.floor(keras.random.uniform((batch, 1), 0.0, most + 1.0, seed=self.seed_generator))
            where = keras.random.uniform((batch, 1), 0.0, 1.0, seed=self.seed_generator)
            start = ops.floor(where * (size - length + 1))
            pos = ops.cast(positions, "float32")
            masked = ops.logical_or(masked, ops.logical_and(pos >= start, pos < start + length))
        return masked

    def call(self, inputs, training=None):
        if not training or (not self.time_masks and not self.freq_masks):
            return inputs
        batch = ops.shape(inputs)[0]
        frames, mels = inputs.shape[1], inputs.shape[2]
        mask = ops.zeros(ops.shape(inputs), "bool")
        if self.time_masks and self.time_width:
            mask = ops.logical_or(mask, self._masks(batch, frames, self.time_masks, self.time_width)[:, :, None])
        if self.freq_masks and self.freq_width:
            mask = ops.logical_or(mask, self._masks(batch, mels, self.freq_masks, self.freq_width)[:, None, :])
        fill = ops.mean(inputs, axis=(1, 2), keepdims=True)
        return ops.where(mask, ops.broadcast_to(fill, ops.shape(inputs)), inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"time_masks": self.time_masks, "time_width": self.time_width,
                       "freq_masks": self.freq_masks, "freq_width": self.freq_width, "seed": self.seed})
        return config
