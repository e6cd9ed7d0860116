"""Custom layers: Keras' conformance harness plus numerical checks."""

import numpy as np
import pytest

from mmzoo.layers import (
    BatchNormalization,
    LogMelSpectrogram,
    MaskedGlobalPooling,
    PositionEmbedding,
    TokenMask,
    TransformerEncoderBlock,
)
from mmzoo.layers.audio import mel_filterbank
from tests.helpers import MmzooTestCase


class LayerConformanceTest(MmzooTestCase):
    def test_log_mel_spectrogram(self):
        self.run_layer_test(
            LogMelSpectrogram,
            {"sample_rate": 8000, "n_fft": 256, "hop_length": 128, "n_mels": 16},
            input_shape=(2, 2048),
            expected_output_shape=(2, 15, 16),
            expected_num_trainable_weights=0,
            run_training_check=False,  # no trainable weights
        )

    def test_token_mask(self):
        self.run_layer_test(
            TokenMask, {}, input_data=np.array([[3, 4, 0]], "int32"), expected_output_shape=(1, 3),
            run_training_check=False, run_mixed_precision_check=False,
        )
        np.testing.assert_array_equal(TokenMask()(np.array([[3, 4, 0]], "int32")), [[1.0, 1.0, 0.0]])

    def test_masked_global_pooling(self):
        for mode in ("mean", "max"):
            self.run_layer_test(
                MaskedGlobalPooling, {"mode": mode},
                input_shape={"inputs_shape": (2, 5, 3), "padding_mask_shape": (2, 5)},
                expected_output_shape=(2, 3), run_training_check=False,  # dict inputs: see presets test
            )

    def test_position_embedding(self):
        self.run_layer_test(
            PositionEmbedding, {"max_length": 8}, input_shape=(2, 8, 4),
            expected_output_shape=(2, 8, 4), expected_num_trainable_weights=1,
        )

    def test_batch_normalization(self):
        self.run_layer_test(
            BatchNormalization, {"momentum": 0.9}, input_shape=(4, 5, 6, 3), expected_output_shape=(4, 5, 6, 3),
            expected_num_trainable_weights=2, expected_num_non_trainable_weights=2,
        )

    def test_transformer_block(self):
        self.run_layer_test(
            TransformerEncoderBlock, {"num_heads": 2, "ff_dim": 8, "dropout": 0.0},
            input_shape={"inputs_shape": (2, 6, 4), "padding_mask_shape": (2, 6)},
            expected_output_shape=(2, 6, 4),
            # The harness's training step passes multi-input data as one dict; training of
            # the block is covered by the preset tests (every weight changes).
            run_training_check=False,
        )


def test_log_mel_matches_a_numpy_stft():
    rate, n_fft, hop, mels = 8000, 256, 128, 20
    t = np.arange(4096) / rate
    wave = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 2000 * t)).astype("float32")
    layer = LogMelSpectrogram(rate, n_fft, hop, mels)
    got = np.asarray(layer(wave[None]))[0]
    frames = np.stack([wave[i : i + n_fft] for i in range(0, len(wave) - n_fft + 1, hop)])
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2
    expected = np.log(power @ mel_filterbank(rate, n_fft, mels, 20.0, rate / 2) + 1e-6)
    assert got.shape == expected.shape == (31, mels)
    np.testing.assert_allclose(got, expected, atol=2e-3)
    # The 440 Hz tone lands in the band whose filter peaks nearest to it.
    peak_band = int(np.argmax(got.mean(0)))
    assert abs(peak_band - int(np.argmax(mel_filterbank(rate, n_fft, mels, 20.0, rate / 2)[440 * n_fft // rate]))) <= 1


def test_log_mel_rejects_bad_settings():
    with pytest.raises(ValueError, match="fmin < fmax <= sample_rate / 2"):
        LogMelSpectrogram(8000, fmax=6000)
    with pytest.raises(ValueError, match="at least n_fft=512 samples"):
        LogMelSpectrogram(8000)(np.zeros((1, 100), "float32"))


def test_masked_pooling_ignores_padding():
    seq = np.array([[[1.0, 5.0], [3.0, -1.0], [100.0, 100.0]]], "float32")
    mask = np.array([[1.0, 1.0, 0.0]], "float32")
    np.testing.assert_allclose(MaskedGlobalPooling("mean")(seq, mask), [[2.0, 2.0]])
    np.testing.assert_allclose(MaskedGlobalPooling("max")(seq, mask), [[3.0, 5.0]])
    empty = np.zeros((1, 3), "float32")
    np.testing.assert_allclose(MaskedGlobalPooling("max")(seq, empty), [[0.0, 0.0]])


def test_transformer_block_ignores_padded_tokens():
    rng = np.random.default_rng(0)
    block = TransformerEncoderBlock(num_heads=2, ff_dim=8, dropout=0.0)
    x = rng.standard_normal((1, 5, 4)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0]], "float32")
    y = rng.standard_normal((1, 5, 4)).astype("float32")
    x2 = x.copy()
    x2[:, 3:] = y[:, 3:]  # change only the padded positions
    np.testing.assert_allclose(np.asarray(block(x, mask))[:, :3], np.asarray(block(x2, mask))[:, :3], atol=1e-5)


class FastGRUConformanceTest(MmzooTestCase):
    def test_fast_gru(self):
        from mmzoo.layers import FastGRU

        self.run_layer_test(
            FastGRU, {"units": 3, "return_sequences": True}, input_shape=(2, 4, 5),
            expected_output_shape=(2, 4, 3), expected_num_trainable_weights=3,
        )


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("unroll", [False, True])
@pytest.mark.parametrize("zero_output_for_mask", [False, True])
@pytest.mark.parametrize("initial", [False, True])
def test_fast_gru_matches_keras_gru(return_sequences, go_backwards, unroll, zero_output_for_mask, initial):
    """FastGRU (looped or unrolled) against the stock GRU's looped path, the one training runs,
    with leading, trailing and full padding, from a zero or a given initial state."""
    import keras

    from mmzoo.layers import FastGRU

    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 6, 5)).astype("float32")
    mask = np.ones((5, 6), bool)
    mask[0, 4:] = False
    mask[1, 1:] = False
    mask[2, :2] = False  # leading padding
    mask[4, :] = False  # nothing to read
    call = {"mask": mask}
    if initial:
        call["initial_state"] = [rng.standard_normal((5, 4)).astype("float32")]
    kw = dict(units=4, return_sequences=return_sequences, go_backwards=go_backwards,
              zero_output_for_mask=zero_output_for_mask)
    ref = keras.layers.GRU(**kw)
    ref.build(x.shape)
    fast = FastGRU(**kw, unroll=unroll)
    fast.build(x.shape)
    fast.set_weights(ref.get_weights())
    np.testing.assert_allclose(fast(x, **call), ref(x, **call), atol=1e-6)
    # Gradients agree too.
    import tensorflow as tf

    grads = []
    for layer in (ref, fast):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x, **call) ** 2)
        grads.append(tape.gradient(loss, layer.trainable_variables))
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("shape,center,scale", [((16, 9, 7, 5), True, True), ((16, 9, 7, 5), False, False),
                                                ((32, 6), True, True)])
def test_batch_normalization_trains_as_keras_does(shape, center, scale):
    """The fused training step (feature maps) and the fallback (other ranks): Keras' outputs,
    gradients and moving statistics, from the same weights; inference and saved weights too."""
    import keras
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(0).normal(2.0, 3.0, size=shape).astype("float32"))
    ours = BatchNormalization(momentum=0.9, center=center, scale=scale)
    theirs = keras.layers.BatchNormalization(momentum=0.9, center=center, scale=scale)
    ours.build(x.shape)
    theirs.build(x.shape)
    ours.set_weights(theirs.get_weights())

    def step(layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.sin(y))
        return [y, *tape.gradient(loss, [x, *layer.trainable_weights])]

    for _ in range(2):  # the second step starts from moving statistics the first one updated
        for a, b in zip(step(ours), step(theirs)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(np.abs(b).max()))
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours(x, training=False), theirs(x, training=False), atol=1e-5)
    assert ours.moving_variance.numpy().min() > 1.0  # the inputs' variance (9) is being tracked


def test_batch_normalization_reads_and_writes_keras_weight_files(tmp_path):
    """Keras 3 files weights under the class name: models with Keras' layer and with mmzoo's
    load each other's weights (shipped weights and earlier runs keep loading)."""
    import keras

    def model(norm):
        inputs = keras.Input((4, 4, 2))
        return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(norm(momentum=0.9)(inputs)))

    theirs, ours = model(keras.layers.BatchNormalization), model(BatchNormalization)
    theirs.layers[1].set_weights([np.full(2, v, "float32") for v in (2.0, 0.5, 3.0, 4.0)])
    theirs.save_weights(str(tmp_path / "keras.weights.h5"))
    ours.load_weights(str(tmp_path / "keras.weights.h5"))
    np.testing.assert_array_equal(ours.layers[1].moving_variance.numpy(), [4.0, 4.0])
    ours.save(str(tmp_path / "ours.keras"))
    loaded = keras.saving.load_model(str(tmp_path / "ours.keras"), safe_mode=True)
    assert type(loaded.layers[1]) is BatchNormalization
    np.testing.assert_array_equal(loaded.layers[1].gamma.numpy(), [2.0, 2.0])
