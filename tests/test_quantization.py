"""Quantized LiteRT keeps the answers: where the error entered and what stays in float."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import fake_inputs, tiny_overrides

import mmzoo
import mmzoo.datasets
from mmzoo.export import quantize
from mmzoo.export.tflite import LiteSource, TFLiteModel, _convert, convert_tflite
from mmzoo.layers.audio import LogMelSpectrogram, mel_filterbank, mel_groups


def speech(n=24, samples=16000, seed=0):
    """Spoken digits (espeak-ng, committed with the small-data benchmark), at random offsets
    and levels: a real spectrum with quiet bands, where an 8-bit front end fails."""
    data = np.load("benchmarks/data/speech_digits.npz")
    offsets = np.concatenate([[0], np.cumsum(data["lengths"])])
    rng = np.random.default_rng(seed)
    wave = np.zeros((n, samples), "float32")
    for i in range(n):
        j = rng.integers(len(data["lengths"]))
        clip = data["samples"][offsets[j]:offsets[j + 1]][:samples] / 32768.0
        start = rng.integers(0, samples - len(clip) + 1)
        wave[i, start:start + len(clip)] = clip * rng.uniform(0.2, 1.0)
    return wave


def test_mel_blocks_hold_the_whole_filterbank_in_small_matrices():
    for rate, n_fft, mels in [(16000, 512, 40), (8000, 256, 20), (16000, 1024, 64), (22050, 2048, 128)]:
        mel = mel_filterbank(rate, n_fft, mels, 20.0, rate / 2)
        rebuilt = np.zeros_like(mel)
        for first, last, lo, hi in mel_groups(mel):
            assert (hi - lo) * (last - first) < 1024 or last - first == 1
            rebuilt[lo:hi, first:last] = mel[lo:hi, first:last]
        np.testing.assert_array_equal(rebuilt, mel)


def test_dynamic_range_leaves_the_log_mel_front_end_in_float():
    inputs = keras.Input((16000,), name="audio")
    model = keras.Model(inputs, LogMelSpectrogram(16000, n_mels=40)(inputs))
    with _Saved(model) as path:
        f32 = TFLiteModel(_convert(path, "float32", None, [tf.lite.OpsSet.TFLITE_BUILTINS]))
        dyn = TFLiteModel(_convert(path, "dynamic", None, [tf.lite.OpsSet.TFLITE_BUILTINS]))
    wave = speech()
    ref = model.predict(wave, verbose=0)
    # No weight-bearing op is quantized: the same numbers as float32 (the old DFT-as-conv
    # front end was off by up to 14.8 nats here, a third of the spectrum's norm).
    assert np.abs(dyn.predict({"audio": wave})["output_0"] - ref).max() < 1e-3
    assert np.abs(f32.predict({"audio": wave})["output_0"] - ref).max() < 1e-3


class _Saved:
    def __init__(self, model):
        import tempfile
        self.model, self.dir = model, tempfile.mkdtemp()

    def __enter__(self):
        import os
        path = os.path.join(self.dir, "sm")
        self.model.export(path, format="tf_saved_model", verbose=False)
        return path

    def __exit__(self, *exc):
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)


def test_layer_errors_point_at_where_int8_error_enters():
    model = mmzoo.build("cnn_gru_melcnn_attention", compile=False, seed=0, **tiny_overrides("cnn_gru_melcnn_attention"))
    spec = model.spec
    x = fake_inputs(spec, batch=32, seed=2)
    x["audio"] = speech(32, spec.audio_samples, seed=1)
    with LiteSource(model, spec) as source:
        assert set(source.float_layers) == {
            ("backbone", "audio_encoder", "log_mel"), ("backbone", "fusion", "audio_attends"),
            ("backbone", "fusion", "image_attends"), ("backbone", "fusion", "text_attends"),
            ("backbone", "fusion", "audio_norm"), ("backbone", "fusion", "image_norm"),
            ("backbone", "fusion", "text_norm"), ("head", "logits")}
        assert source.float_layers[("head", "logits")] == quantize.LOGITS_REASON
        quantizer = quantize.Int8Quantizer(source.path, x)
        everything = quantizer.quantize(keep_float=[])
        rows = quantize.layer_errors(source.float32_content(), everything, x, source.layer_paths, top=50)
        # With every op in int8, the front end is where the spectrum is lost.
        by_layer = {r["layer"]: r for r in rows}
        assert by_layer["backbone/audio_encoder/log_mel"]["relative_error"] > 0.2
        front = quantizer.quantize(keep_float=[("backbone", "audio_encoder", "log_mel")])
        rows = quantize.layer_errors(source.float32_content(), front, x, source.layer_paths, top=50)
        assert "backbone/audio_encoder/log_mel" not in {r["layer"] for r in rows} or \
            {r["layer"]: r for r in rows}["backbone/audio_encoder/log_mel"]["relative_error"] < 1e-3
        converted = convert_tflite(model, spec, "int8", representative=x, source=source, strip_names=False)
    lite = TFLiteModel(converted["content"])
    details = lite.interpreter.get_tensor_details()
    dtypes = {}
    for d in details:
        layer = quantize.layer_of(d["name"], list(source.float_layers))
        if layer:
            dtypes.setdefault(layer, set()).add(d["dtype"].__name__)
    assert all("float32" in kinds for kinds in dtypes.values()) and len(dtypes) == 8
    assert converted["int8_mode"] == "selective" and converted["search"][0]["float_layers"]


def test_the_search_keeps_the_candidate_that_brings_the_outputs_closest_until_the_check_passes():
    made, tried = [], []

    def make(keep):
        made.append(list(keep))
        return "+".join("/".join(p) for p in keep).encode()

    # the outputs' error with each set kept in float: "c" alone helps most, then "d" on top of it
    errors = {b"a/b": 0.5, b"c": 0.2, b"d": 0.4, b"c+a/b": 0.15, b"c+d": 0.05}

    def error(content):
        tried.append(content)
        return errors[content]

    def proposals(content, keep):  # a/b/c is under a/b, "c" comes twice: each is tried once
        return [("a", "b"), ("c",), ("d",), ("c",)] if not keep else [("d",), ("a", "b")]

    pick = quantize.trial_candidate(make, error, proposals)
    assert pick(b"", []) == ("c",) and tried == [b"a/b", b"c", b"d"]
    # under a kept layer, or kept already: not tried
    assert quantize.trial_candidate(make, error, lambda c, k: [("a", "b", "c"), ("a", "b")])(b"", [("a", "b")]) is None

    agreement = {b"": 0.5, b"c": 0.9, b"c+d": 0.99}
    content, keep, value, history = quantize.choose_float_layers(
        make, lambda c: (agreement[c], agreement[c] >= 0.98), [], pick)
    assert keep == [("c",), ("d",)] and value == 0.99 and content == b"c+d" and len(history) == 3
    assert history[-1] == {"float_layers": ["c", "d"], "agreement": 0.99}
    # a memoized make converts each set once, whatever its order
    made.clear()
    once = quantize.memoized(make)
    assert once([("c",), ("d",)]) == b"c+d" and once([("d",), ("c",)]) == b"c+d" and made == [[("c",), ("d",)]]


def test_a_failed_search_returns_the_closest_flatbuffer_not_the_last():
    scores = {0: 0.5, 1: 0.9, 2: 0.8, 3: 0.7}
    content, keep, value, history = quantize.choose_float_layers(
        lambda keep: str(len(keep)).encode(), lambda c: (scores[int(c)], False), [],
        lambda c, kept: ("x", str(len(kept))), rounds=3,
        describe=lambda c: {"size": len(c)})
    assert content == b"1" and keep == [("x", "0")] and value == 0.9
    assert [h["agreement"] for h in history] == [0.5, 0.9, 0.8, 0.7] and history[0]["size"] == 1
    # it stops when no candidate is left
    _, keep, _, history = quantize.choose_float_layers(
        lambda keep: str(len(keep)).encode(), lambda c: (scores[int(c)], False), [], lambda c, kept: None)
    assert keep == [] and len(history) == 1


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["cnn_gru_attention", "cnn_gru_film"])
def test_shipped_models_keep_their_answers_quantized(preset, tmp_path, tfds_full):
    """The shipped shapes_vqa weights, exported as users do: every quantized variant passes
    the 98% gate on the 1,000-example test split and keeps test accuracy within a point."""
    model = mmzoo.build(preset, weights="shapes_vqa")
    data = mmzoo.datasets.load("shapes_vqa", config="image_text", data_dir=tfds_full, spec=model.spec)
    result = mmzoo.export(model, out=str(tmp_path), formats="tflite", quantize="float16,dynamic,int8",
                          data=data, num_samples=1000, validate="inline")
    validation = result.card["validation"]
    keras_accuracy = validation["keras_scores"]["accuracy"]
    assert keras_accuracy > 0.9 and validation["inputs"]["examples"] == 1000
    for check in validation["checks"]:
        assert check["agreement"] >= 0.98, check
        assert check["scores"]["accuracy"] >= keras_accuracy - 0.01, check
    sizes = {k: v["bytes"] for k, v in result.card["artifacts"].items() if "bytes" in v}
    assert sizes["tflite_int8"] < 0.8 * sizes["tflite_float32"]  # the layers kept in float keep float weights


@pytest.fixture(scope="module")
def tfds_full(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds_full"))


def test_a_flatbuffer_that_does_not_run_is_caught_in_another_process():
    inputs = keras.Input((16000,), name="audio")
    model = keras.Model(inputs, LogMelSpectrogram(16000, n_mels=40)(inputs))
    with _Saved(model) as path:
        content = _convert(path, "float32", None, [tf.lite.OpsSet.TFLITE_BUILTINS])
    x = {"audio": speech(2)}
    assert quantize.runs_safely(content, x) is None
    # A broken file (an int8 LSTM crashed the interpreter outright: a double free) is reported,
    # and the exporting process lives on.
    problem = quantize.runs_safely(content[: len(content) // 2], x)
    assert problem and "exited with code" in problem
