"""Image and audio preprocessing with TF ops on real files."""

import numpy as np
import pytest
import tensorflow as tf

from mmzoo.data import audio as A
from mmzoo.data import image as I
from mmzoo.spec import DataSpec


def _spec(**kw):
    base = dict(
        modalities=("image", "audio"), image_shape=(8, 8, 3), sample_rate=16000, audio_samples=4000
    )
    base.update(kw)
    return DataSpec(**base)


@pytest.mark.parametrize("ext", ["png", "jpg", "bmp", "gif", "gray.png", "rgba.png", "la.png"])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_every_format_and_mode_to_spec_channels(media, ext, channels):
    data = (media / f"red.{ext}").read_bytes()
    out = I.preprocess_image_bytes(tf.constant(data), _spec(image_shape=(8, 10, channels)))
    assert out.shape == (8, 10, channels) and out.dtype == tf.uint8
    center = out.numpy()[4, 5]
    if channels >= 3 and ext not in ("gray.png", "la.png"):
        assert center[0] > 150 and center[1] < 100  # the red disc survives decoding
    if channels == 4:
        expected_alpha = 255
        assert center[3] == expected_alpha


def test_gray_to_rgb_repeats_and_alpha_dropped():
    gray = tf.constant(np.full((4, 4, 1), 77, np.uint8))
    rgb = I.preprocess_image(gray, _spec(image_shape=(4, 4, 3))).numpy()
    assert (rgb == 77).all()
    rgba = tf.constant(
        np.dstack([np.full((4, 4, 3), 10, np.uint8), np.full((4, 4, 1), 3, np.uint8)])
    )
    assert (I.preprocess_image(rgba, _spec(image_shape=(4, 4, 3))).numpy() == 10).all()
    assert (I.preprocess_image(rgba, _spec(image_shape=(4, 4, 4))).numpy()[..., 3] == 3).all()


def test_resize_with_pad_keeps_aspect_ratio_and_float_dtype():
    wide = tf.constant(np.full((10, 40, 3), 200, np.uint8))
    out = I.preprocess_image(wide, _spec(image_shape=(16, 16, 3), image_resize="pad")).numpy()
    assert (out[0] == 0).all() and (out[-1] == 0).all() and (out[8] == 200).all()
    stretched = I.preprocess_image(wide, _spec(image_shape=(16, 16, 3))).numpy()
    assert (stretched == 200).all()
    as_float = I.preprocess_image(wide, _spec(image_shape=(16, 16, 3), image_dtype="float32"))
    assert as_float.dtype == tf.float32 and float(tf.reduce_max(as_float)) == 200.0


def test_image_header_checks(media):
    assert I.check_image_header((media / "red.gif").read_bytes()) is None
    assert "empty" in I.check_image_header(b"")
    assert "not an image" in I.check_image_header(b"hello there")


def test_wav_mono_stereo_and_resampled(media):
    spec = _spec()
    mono = A.preprocess_wav_bytes(tf.constant((media / "red.wav").read_bytes()), spec).numpy()
    stereo = A.preprocess_wav_bytes(
        tf.constant((media / "red.stereo.wav").read_bytes()), spec
    ).numpy()
    low = A.preprocess_wav_bytes(tf.constant((media / "red.8k.wav").read_bytes()), spec).numpy()
    assert mono.shape == stereo.shape == low.shape == (4000,)
    np.testing.assert_allclose(stereo, mono * 0.25, atol=2e-4)  # mean of wave and -wave/2
    # 8 kHz file resampled to 16 kHz: same 300 Hz tone (edges aside)
    np.testing.assert_allclose(low[200:3800], mono[200:3800], atol=0.01)
    with pytest.raises(tf.errors.InvalidArgumentError, match="sample rate"):
        A.preprocess_wav_bytes(
            tf.constant((media / "red.8k.wav").read_bytes()), spec, resample_audio=False
        )


@pytest.mark.parametrize("samples", [4000, 3000, 6000])  # exact, cropped, padded
def test_batch_wav_decoder_takes_canonical_files_and_leaves_the_rest(media, samples):
    spec = _spec(audio_samples=samples)
    mono = (media / "red.wav").read_bytes()
    files = {
        "mono": mono,
        "other mono": (media / "blue.wav").read_bytes(),
        "short mono": mono[:40] + (400).to_bytes(4, "little") + mono[44:444],
        "stereo": (media / "red.stereo.wav").read_bytes(),
        "8 kHz": (media / "red.8k.wav").read_bytes(),
        "chunk after data": mono + b"LIST\x04\x00\x00\x00abcd",
        "truncated": (media / "truncated.wav").read_bytes(),
        "no samples": (media / "zero.wav").read_bytes(),
        "24-bit": (media / "pcm24.wav").read_bytes(),
        "png": (media / "red.png").read_bytes(),
        "empty": b"",
    }
    waves, ok = A.decode_wav_batch(tf.constant(list(files.values())), 16000, samples)
    assert dict(zip(files, ok.numpy().tolist())) == {
        name: name.endswith("mono") for name in files
    }
    for i, name in enumerate(files):
        if ok[i]:
            expected = A.preprocess_wav_bytes(tf.constant(files[name]), spec).numpy()
            np.testing.assert_array_equal(waves[i].numpy(), expected, err_msg=name)
        else:
            assert not np.any(waves[i].numpy())


def test_resampler_is_band_limited():
    rate_in, rate_out = 44100, 16000
    t = np.arange(rate_in) / rate_in
    passband = A.resample(
        np.sin(2 * np.pi * 1000 * t).astype(np.float32), rate_in, rate_out
    ).numpy()
    alias = A.resample(np.sin(2 * np.pi * 12000 * t).astype(np.float32), rate_in, rate_out).numpy()
    assert passband.shape == (16000,)
    ref = np.sin(2 * np.pi * 1000 * np.arange(16000) / rate_out)
    np.testing.assert_allclose(passband[500:-500], ref[500:-500], atol=5e-3)
    assert np.sqrt(np.mean(alias[500:-500] ** 2)) < 1e-3  # 12 kHz > 8 kHz Nyquist: removed


def test_pad_and_crop_and_int16():
    spec = _spec(audio_samples=5)
    out = A.preprocess_audio(tf.constant([16384, -32768], tf.int16), 16000, spec).numpy()
    np.testing.assert_allclose(out, [0.5, -1.0, 0, 0, 0])
    out = A.preprocess_audio(tf.range(10, dtype=tf.float32) / 10, 16000, spec).numpy()
    np.testing.assert_allclose(out, np.arange(5) / 10, atol=1e-7)


def test_wav_header_errors(media):
    assert A.wav_header((media / "red.stereo.wav").read_bytes())["channels"] == 2
    with pytest.raises(ValueError, match="empty"):
        A.wav_header(b"")
    with pytest.raises(ValueError, match="no audio samples"):
        A.wav_header((media / "zero.wav").read_bytes())
    with pytest.raises(ValueError, match="truncated"):
        A.wav_header((media / "truncated.wav").read_bytes())
    with pytest.raises(ValueError, match="24-bit"):
        A.wav_header((media / "pcm24.wav").read_bytes())
    with pytest.raises(ValueError, match="not a WAV"):
        A.wav_header((media / "red.png").read_bytes())


def test_preprocessor_batches_and_saves(media, tmp_path):
    import mmzoo.data as md

    vocab = md.build_vocabulary(["a red circle", "绿色"])
    spec = _spec(
        modalities=("image", "audio", "text"), seq_len=4, vocab_size=len(vocab), vocabulary=vocab
    )
    pre = md.Preprocessor(spec)
    images = [(media / f"red.{e}").read_bytes() for e in ("png", "jpg", "gif")]
    wavs = [(media / n).read_bytes() for n in ("red.wav", "red.8k.wav", "red.stereo.wav")]
    batch = pre(
        {
            "image": tf.constant(images),
            "audio": tf.constant(wavs),
            "text": tf.constant(["a red circle", "绿色", ""]),
        }
    )
    assert batch["image"].shape == (3, 8, 8, 3) and batch["audio"].shape == (3, 4000)
    one = pre({"image": images[1], "audio": wavs[1], "text": "绿色"})
    assert np.array_equal(one["image"], batch["image"][1]) and np.array_equal(
        one["text"], batch["text"][1]
    )
    np.testing.assert_allclose(one["audio"], batch["audio"][1], atol=1e-6)

    class Serve(tf.Module):
        def __init__(self):
            super().__init__()
            self.pre = pre

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def text(self, texts):
            return self.pre({"text": texts})["text"]

    tf.saved_model.save(Serve(), str(tmp_path / "sm"))
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    out = loaded.text(tf.constant(["a red circle", "绿色 zzz"])).numpy()
    assert out.tolist() == [md.tokenize_reference(t, spec) for t in ["a red circle", "绿色 zzz"]]
    with pytest.raises(ValueError, match="Unexpected inputs"):
        pre({"tabular": [1.0]})
