"""Optional inputs: a manifest row may leave an optional input empty; it trains blank, and
`predict` and the SavedModel accept requests without it (an empty string)."""

import csv
import io
import wave

import numpy as np
import pytest
import tensorflow as tf

import mmzoo
from mmzoo.data.preprocess import Preprocessor


def wav_bytes(freq, seconds=0.5, rate=16000):
    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((0.4 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16).tobytes())
    return buf.getvalue()


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """Label = the tone's pitch when there is audio, else the question's word; 1 row in 4 has no audio."""
    root = tmp_path_factory.mktemp("optional")
    rows = []
    for i in range(80):
        label = ["low", "high"][i % 2]
        audio = ""
        if i % 4 != 3:
            (root / f"{i}.wav").write_bytes(wav_bytes(300 if label == "low" else 1200))
            audio = f"{i}.wav"
        text = f"is it {label} ?" if audio == "" else "which pitch ?"
        rows.append({"text": text, "audio": audio, "label": label, "split": "test" if i % 5 == 0 else "train"})
    path = root / "m.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, ["text", "audio", "label", "split"])
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def test_a_required_input_left_empty_is_an_error_naming_the_row(manifest):
    with pytest.raises(mmzoo.data.DataError, match=r"row 4\b.*audio"):
        mmzoo.data.from_manifest(manifest)


def test_optional_input_rows_are_kept_and_counted(manifest):
    data = mmzoo.data.from_manifest(manifest, optional=["audio"])
    assert data.spec.optional == ("audio",) and sum(data.splits.values()) == 80
    assert any("audio is optional: 20 of 80 rows have none" in n for n in data.report.notes)
    features, labels = next(iter(data.dataset("train", batch_size=64, shuffle=False)))
    rows = data.rows("train")[:64]
    silent = np.all(features["audio"].numpy() == 0, axis=1)
    assert np.array_equal(silent, rows % 4 == 0)  # manifest rows 4, 8, ... are the ones without audio
    with pytest.raises(mmzoo.data.DataError, match="tabular cannot be optional"):
        mmzoo.data.from_manifest(manifest, optional=["tabular"])


def test_serving_batch_takes_an_empty_string_as_absent(manifest):
    spec = mmzoo.data.from_manifest(manifest, optional=["audio"]).spec
    pre = Preprocessor(spec)
    out = pre.serve({"text": tf.constant(["which pitch ?", "is it low ?"]),
                     "audio": tf.constant([wav_bytes(300), b""])})
    audio = out["audio"].numpy()
    assert np.abs(audio[0]).max() > 0.3 and np.all(audio[1] == 0)
    required = mmzoo.DataSpec.from_dict({**spec.to_dict(), "optional": []})
    with pytest.raises(tf.errors.InvalidArgumentError, match="audio"):
        Preprocessor(required).serve({"text": tf.constant(["a"]), "audio": tf.constant([b""])})


@pytest.mark.slow
def test_train_with_optional_audio_export_and_serve_without_it(manifest, tmp_path):
    run = mmzoo.train({"text": "bigru", "audio": "melcnn", "fusion": "concat"}, manifest, epochs=30, batch_size=16,
                      out=str(tmp_path / "run"), seed=0, verbose=0, data_kwargs={"optional": ["audio"]})
    assert run.spec.optional == ("audio",)
    assert run.metrics["test"]["accuracy"] >= 0.75  # both kinds of rows are learned
    without = run.predict(text="is it high ?")  # no audio= at all
    blank = run.model.predict(run.model.preprocess({"text": ["is it high ?"], "audio": [b""]}), verbose=0)
    np.testing.assert_allclose(without["probabilities"], blank[0], atol=1e-5)
    assert np.all(run.model.preprocess({"text": ["x"], "audio": [b""]})["audio"].numpy() == 0)
    with pytest.raises(ValueError, match="missing"):
        run.predict(audio=wav_bytes(300))  # text is required

    result = mmzoo.export(run.root, out=str(tmp_path / "export"), formats="saved_model", validate="inline")
    assert result.card["optional_inputs"]["inputs"] == ["audio"]
    assert "empty string" in result.card["optional_inputs"]["how_to_send_absence"]
    loaded = tf.saved_model.load(result.artifacts["saved_model"])
    texts = ["is it high ?", "is it low ?", "which pitch ?"]
    out = loaded.signatures["serving_default"](text=tf.constant(texts),
                                               audio=tf.constant([b"", b"", wav_bytes(1200)]))
    keras_probs = run.model.predict(run.model.preprocess({"text": texts, "audio": [b"", b"", wav_bytes(1200)]}),
                                    verbose=0)
    np.testing.assert_allclose(out["probabilities"].numpy(), keras_probs, atol=1e-4)
