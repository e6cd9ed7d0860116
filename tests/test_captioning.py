"""Captioning: caption text helpers (Python and TF), caption manifests, the two decoders (one
step at a time = teacher forcing), the decoding loops, the metrics, the shapes_captions caption
configs, and every captioning preset through `mmzoo train`, evaluation and export (SavedModel
with the decoding loop inside, LiteRT encode / decode_step) with validation."""

import json
import os
import wave

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import write_manifest

import mmzoo
from mmzoo.cli import main
from mmzoo.data import text as text_lib
from mmzoo.data.samples import encode_image
from mmzoo.data.validation import DataError
from mmzoo.datasets import shapes_captions
from mmzoo.export.captioning import tf_captions
from mmzoo.layers.decoders import GRUCaptionDecoder, TransformerCaptionDecoder
from mmzoo.tasks import caption_metrics, decoding

VOCAB = ["<pad>", "<unk>", "<start>", "<end>", "a", "red", "circle", ".", ",", "左", "上", "是", "红", "色", "。", "("]


# ----------------------------------------------------------------------------- text
def test_caption_ids_tokens_and_joined_text_round_trip():
    ids = text_lib.caption_ids("A red circle, a RED circle.", VOCAB, caption_len=8)
    assert ids == [2, 4, 5, 6, 8, 4, 5, 6, 7, 3]
    assert text_lib.caption_ids("a red circle.", VOCAB, caption_len=2) == [2, 4, 5, 3]  # cut to caption_len
    assert text_lib.caption_ids("a blue circle", VOCAB, 4) == [2, 4, 1, 6, 3, 0]  # unknown token -> 1
    assert text_lib.caption_tokens([4, 5, 6, 7, 3, 5, 5], VOCAB) == ["a", "red", "circle", "."]
    assert text_lib.join_tokens(["a", "red", "circle", ",", "a", "circle", "."]) == "a red circle, a circle."
    assert text_lib.join_tokens(text_lib.split_tokens("左上是红色圆形，右下有一个蓝色三角形。")) == \
        "左上是红色圆形，右下有一个蓝色三角形。"
    assert text_lib.join_tokens(["a", "(", "左", "a"]) == "a (左a"
    vocab = text_lib.build_caption_vocabulary(["b a a.", "c"])
    assert vocab[:4] == list(text_lib.CAPTION_RESERVED) and vocab[4] == "a"


def test_captions_joined_in_the_graph_match_python():
    rng = np.random.default_rng(0)
    rows = rng.integers(0, len(VOCAB), size=(64, 12)).astype("int32")
    rows[:, 0] = rng.integers(4, len(VOCAB), size=64)  # every row has a first token
    got = [t.decode("utf-8") for t in tf_captions(rows, VOCAB).numpy()]
    expected = [text_lib.join_tokens(text_lib.caption_tokens(r, VOCAB)) for r in rows]
    assert got == expected
    assert any("。" in t for t in got) and any(" " in t for t in got)


# ----------------------------------------------------------------------------- manifests
def _caption_rows(root, n=30):
    rows = []
    for i in range(n):
        image = np.zeros((16, 16, 3), np.uint8)
        image[2:8, 2:8] = (255, 0, 0) if i % 2 else (0, 0, 255)
        name = f"img{i}.png"
        (root / name).write_bytes(encode_image(image, "PNG"))
        colour = "blue" if i % 2 == 0 else "red"
        rows += [{"image": name, "caption": f"a {colour} square."},
                 {"image": name, "caption": f"one {colour} square at the top left."}]
    return rows


def test_caption_manifest_learns_its_vocabulary_cuts_long_captions_and_names_bad_rows(tmp_path):
    rows = _caption_rows(tmp_path)
    rows[5]["caption"] = "a red square " + "and a red square " * 10 + "."
    data = mmzoo.data.from_manifest(write_manifest(tmp_path, rows), caption_len=12, seed=0)
    spec = data.spec
    assert spec.task == "captioning" and spec.caption_len == 12 and data.modalities == ("image",)
    assert spec.class_names[:4] == list(text_lib.CAPTION_RESERVED) and spec.num_classes == len(spec.class_names)
    cut = "1 captions are longer than caption_len=12 tokens and are cut (rows [6])"
    assert any(cut in n for n in data.report.notes)
    # the captions of one image stay in one split
    keys = {s: set(data.input_keys(s)) for s in ("train", "validation", "test")}
    assert not (keys["train"] & keys["test"]) and not (keys["train"] & keys["validation"])
    x, y = next(iter(data.dataset("train", batch_size=4, shuffle=False)))
    assert x["caption_ids"].shape == (4, 13) and y.shape == (4, 13)
    np.testing.assert_array_equal(x["caption_ids"][:, 1:], y[:, :-1])  # teacher forcing: shifted by one
    assert int(x["caption_ids"][0, 0]) == text_lib.START_ID
    # the default caption_len is the longest train caption
    plain = mmzoo.data.from_manifest(write_manifest(tmp_path, _caption_rows(tmp_path), "b.csv"), seed=0)
    assert plain.spec.caption_len == 8
    # reopened with the spec: the same vocabulary and length
    again = mmzoo.data.from_manifest(write_manifest(tmp_path, rows, "c.csv"), spec=spec)
    assert again.spec.class_names == spec.class_names and again.spec.caption_len == 12
    # an empty caption is an error naming the row and the column
    rows[3]["caption"] = "  "
    with pytest.raises(DataError, match=r"row 4.*caption.*the caption is empty"):
        mmzoo.data.from_manifest(write_manifest(tmp_path, rows, "bad.csv"))


# ----------------------------------------------------------------------------- decoders
@pytest.mark.parametrize("cls", [TransformerCaptionDecoder, GRUCaptionDecoder])
def test_decoder_one_step_at_a_time_matches_teacher_forcing(cls):
    rng = np.random.default_rng(1)
    decoder = cls(vocab_size=30, max_length=7, dim=16, **({"num_heads": 2} if cls is TransformerCaptionDecoder else {}))
    tokens = rng.integers(0, 30, (3, 7)).astype("int32")
    memory = rng.normal(size=(3, 5, 12)).astype("float32")
    full = np.asarray(decoder(tokens, memory))
    cache = decoder.init_cache(memory)
    steps = []
    for i in range(7):
        logits, cache = decoder.step(tokens[:, i], i, cache)
        steps.append(np.asarray(logits))
    np.testing.assert_allclose(np.stack(steps, 1), full, atol=1e-5)
    assert set(cache) == set(decoder.cache_shapes(5))
    for name, shape in decoder.cache_shapes(5).items():
        assert tuple(cache[name].shape[1:]) == shape
    copy = cls.from_config(decoder.get_config())
    assert copy.get_config() == decoder.get_config()
    with pytest.raises(ValueError, match="at least 4"):
        cls(vocab_size=3, max_length=5)


def test_greedy_beam_and_uncached_decoding_agree():
    rng = np.random.default_rng(2)
    keras.utils.set_random_seed(2)  # the weights too: the beam-vs-greedy check below holds for these, not for all
    decoder = TransformerCaptionDecoder(vocab_size=12, max_length=6, dim=16, num_heads=2)
    memory = tf.constant(rng.normal(size=(4, 5, 8)).astype("float32"))
    greedy, score = decoding.greedy_search(decoder.step, decoder.init_cache(memory), 4, 6)
    uncached, score2 = decoding.greedy_search_uncached(lambda t: decoder(t, memory), 4, 6)
    np.testing.assert_array_equal(greedy.numpy(), uncached.numpy())
    np.testing.assert_allclose(score.numpy(), score2.numpy(), atol=1e-5)
    one, _ = decoding.beam_search(decoder.step, decoder.init_cache(memory), 4, 6, beam_width=1, length_penalty=0.0)
    np.testing.assert_array_equal(one.numpy(), greedy.numpy())
    beam, beam_score = decoding.beam_search(decoder.step, decoder.init_cache(decoding.tile_beams(memory, 3)), 4, 6,
                                            beam_width=3, length_penalty=0.0)
    # with no length penalty a wider beam finds sequences at least as likely as greedy's here
    assert np.all(beam_score.numpy() >= score.numpy() - 1e-4)
    # after the end token only padding follows
    for row in np.concatenate([greedy.numpy(), beam.numpy()]):
        ends = np.flatnonzero(row == text_lib.END_ID)
        if len(ends):
            assert np.all(row[ends[0] + 1:] == 0)


class _ScriptedCaptioner:
    """A stand-in for `LiteCaptioner`: each example's logits per step come from a table (the
    example's index travels in the cache), given the previous token and the step."""

    class _Encode:
        def get_input_details(self):
            return {"image": {"dtype": np.uint8}}

        def __call__(self, image):
            return {"cache_row": np.array([int(image.flat[0])], np.int32)}

    def __init__(self, table, max_length=6):
        self.table, self.max_length, self.encode = table, max_length, self._Encode()

    def decode_step(self, token, index, cache_row):
        logits = np.asarray(self.table[int(cache_row[0])](int(token[0]), int(index[0])), np.float32)[None]
        return {"logits": logits, "cache_row": cache_row}


def test_next_token_agreement_costs_a_flipped_near_tie_one_step_not_the_caption():
    from mmzoo.export.captioning import LiteCaptioner, caption_figures, next_token_agreement

    vocab = VOCAB[:8]
    end = text_lib.END_ID

    def reference(token, index):  # "a red circle ." (or, starting with "red", "red circle .")
        row = np.full(8, -5.0)
        if index == 0:
            row[4], row[5] = 0.51, 0.49  # a near tie between two ways to start
        else:
            row[{4: 5, 5: 6, 6: 7}.get(token, end)] = 5.0
        return row

    def flipped(token, index):  # the same model, its near tie resolved the other way
        row = reference(token, index)
        if index == 0:
            row[4], row[5] = 0.49, 0.51
        return row

    images = np.arange(4, dtype=np.uint8).reshape(4, 1, 1, 1) * np.ones((4, 2, 2, 3), np.uint8)
    base = _ScriptedCaptioner([reference] * 4)
    other = _ScriptedCaptioner([flipped, reference, reference, reference])
    ids = LiteCaptioner.generate_ids(base, {"image": images})
    assert caption_tokens_of(ids[0], vocab) == ["a", "red", "circle", "."]
    got = LiteCaptioner.generate_ids(other, {"image": images})
    assert caption_tokens_of(got[0], vocab) == ["red", "circle", "."]
    free_running = caption_figures(got, ids, vocab)
    assert free_running["identical_captions"] == 0.75 and free_running["token_agreement"] < 0.85
    # after the same prefix the flipped model differs at the first step only: 19 of 20 steps agree
    assert next_token_agreement(other, {"image": images}, ids) == pytest.approx(19 / 20)
    assert next_token_agreement(base, {"image": images}, ids) == 1.0


def caption_tokens_of(row, vocab):
    return text_lib.caption_tokens(row, vocab)


# ----------------------------------------------------------------------------- metrics
def test_caption_metrics():
    refs = [[["a", "red", "circle", "at", "the", "top"], ["one", "red", "circle"]],
            [["two", "blue", "squares", "side", "by", "side"]], [["a", "green", "triangle", "at", "the", "left"]]]
    perfect = [r[0] for r in refs]
    scores = caption_metrics.caption_scores(perfect, refs)
    assert scores["bleu4"] == pytest.approx(100.0) and scores["exact_match"] == 1.0 and scores["cider_d"] > 1.0
    wrong = [["a", "blue", "square"], ["two", "red", "circles"], ["a", "green", "square", "at", "the", "top"]]
    worse = caption_metrics.caption_scores(wrong, refs)
    assert worse["bleu4"] < 30 and worse["cider_d"] < scores["cider_d"] / 3 and worse["exact_match"] == 0.0
    import sacrebleu

    expected = sacrebleu.corpus_bleu([" ".join(w) for w in wrong], [[" ".join(r[0]) for r in refs],
                                     [" ".join(r[-1]) for r in refs]], tokenize="none", force=True).score
    assert caption_metrics.bleu4(wrong, refs) == pytest.approx(expected)


# ----------------------------------------------------------------------------- built-in data
def test_shapes_captions_caption_configs(tmp_path):
    manifest = shapes_captions.write_dataset("caption_en_small", str(tmp_path), progress=False)
    again = shapes_captions.write_dataset("caption_en_small", str(tmp_path), progress=False)
    assert manifest == again and manifest.endswith("captions.csv")
    example = shapes_captions.make_caption_example(3, shapes_captions.SPLIT_SEEDS["test"],
                                                   shapes_captions.CONFIGS["caption_small"])
    en, zh = example["captions"]
    assert shapes_captions.named_objects(en) == shapes_captions.named_objects(zh) != []
    count = sum(g >= 0 for g in example["grid"])
    assert en.split()[0 if en.split()[0] != "there" else 2] == shapes_captions.COUNT_EN[count - 1]
    assert shapes_captions.content_accuracy([en, zh], [[zh], [en]]) == 1.0
    assert shapes_captions.content_accuracy(["one shape: a red circle."], [[en]]) == 0.0 or count == 1
    beeps = shapes_captions.write_dataset("beeps_caption_small", str(tmp_path), progress=False)
    import csv

    rows = list(csv.DictReader(open(beeps, encoding="utf-8")))
    assert len(rows) == 2 * 1700 and set(rows[0]) == {"audio", "caption", "split"}
    with wave.open(os.path.join(os.path.dirname(beeps), rows[0]["audio"])) as w:
        assert w.getframerate() == 8000 and w.getnframes() == 8000
        samples = np.frombuffer(w.readframes(8000), "<i2").astype(float) / 32767
    # as many beeps in the clip as its caption names (energy above the noise, in 10 ms frames)
    loud = np.abs(samples).reshape(-1, 80).max(axis=1) > 0.2
    onsets = int(loud[0]) + int(np.sum(loud[1:] & ~loud[:-1]))
    assert onsets == len(shapes_captions.named_beeps(rows[0]["caption"])) >= 1


# ----------------------------------------------------------------------------- presets end to end
def test_cnn_transformer_captioner_trains_evaluates_exports_and_serves(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MMZOO_DATA_DIR", str(tmp_path / "data"))
    out = str(tmp_path / "run")
    assert main(["train", "--data", "shapes_captions/caption_en_small", "--model", "cnn_transformer_captioner",
                 "--out", out, "--max-steps", "200", "--seed", "0"]) == 0
    printed = capsys.readouterr().out
    assert "test BLEU-4" in printed and "names the right things" in printed
    run = mmzoo.open_run(out)
    test = run.metrics["test"]
    assert test["inputs"] == 300 and test["captions"] == 600
    # well above the text prior (the image blanked: one caption for every image)
    assert test["bleu4"] > 60 and test["cider_d"] > 3 * test["blanked"]["cider_d"]
    # (names every shape and colour right: 0.93 after the default 2,000 steps, the dataset card's figure)
    assert test["content_accuracy"] > max(0.08, 4 * test["blanked"]["content_accuracy"])
    assert test["blanked"]["exact_match"] < 0.05  # (one caption for every image matches a few one-shape scenes)
    report = open(os.path.join(out, "report.md"), encoding="utf-8").read()
    assert "| image blanked (text prior) |" in report and "caption_examples.png" in report
    with open(os.path.join(out, "plots", "caption_examples.png"), "rb") as f:
        assert f.read(4) == b"\x89PNG"
    picture = os.path.join(str(tmp_path / "data"), "shapes_captions", "caption_en_small", "1.0.0", "images",
                           "test_00000.png")
    predicted = run.predict(image=picture)
    assert predicted["caption"] == text_lib.join_tokens(predicted["tokens"]) and predicted["score"] < 0
    generated = run.model.generate({"image": [open(picture, "rb").read()] * 2}, beam_width=3)
    assert len(generated) == 2 and generated[0] == generated[1] and generated[0]["tokens"]

    result = mmzoo.export(out, out=str(tmp_path / "models"), name="captions", quantize="dynamic,int8",
                          num_samples=80, warmup_requests=2)
    assert all(v["passed"] for v in result.parity.values()), result.parity
    assert result.card["validation"]["fresh_process"] is True
    for check in ("saved_model.serving_default", "saved_model.beam_search", "saved_model.generate_preprocessed",
                  "tflite_float32"):
        assert result.parity[check]["identical_captions"] == 1.0, check
    for q in ("dynamic", "int8"):  # next tokens after Keras' prefix; BLEU-4 of the free-running captions
        assert result.parity[f"tflite_{q}"]["next_token_agreement"] >= 0.98, result.parity[f"tflite_{q}"]
        assert result.parity[f"tflite_{q}"]["bleu_drop"] <= 1.0
    loaded = tf.saved_model.load(result.path)
    assert {"serving_default", "beam_search", "generate_preprocessed", "preprocess"} <= set(loaded.signatures)
    png = open(picture, "rb").read()
    served = loaded.signatures["serving_default"](image=tf.constant([png]))
    assert served["caption"].numpy()[0].decode() == predicted["caption"]
    assert served["token_ids"].shape == (1, run.spec.caption_len + 1)
    beam = loaded.signatures["beam_search"](image=tf.constant([png]))
    assert beam["caption"].numpy()[0].decode() == run.model.generate({"image": [png]}, beam_width=4)[0]["caption"]
    # the phone path: the shipped loop over encode / decode_step
    lite = os.path.join(result.path, "litert")
    vocabulary = open(os.path.join(lite, "vocabulary.txt"), encoding="utf-8").read().split("\n")[:-1]
    assert vocabulary == run.spec.class_names
    from ai_edge_litert.interpreter import Interpreter

    namespace = {}
    exec(open(os.path.join(lite, "caption_loop.py"), encoding="utf-8").read(), namespace)
    interpreter = Interpreter(model_path=os.path.join(lite, "captioner_float32.tflite"))
    pixels = run.model.preprocess({"image": tf.constant([png])})["image"].numpy()
    ids, _ = namespace["greedy_caption"](interpreter.get_signature_runner("encode"),
                                         interpreter.get_signature_runner("decode_step"), {"image": pixels},
                                         run.spec.caption_len + 1)
    assert text_lib.join_tokens(text_lib.caption_tokens(ids, vocabulary)) == predicted["caption"]
    card = json.load(open(os.path.join(result.path, "assets.extra", "mmzoo.json"), encoding="utf-8"))
    assert card["artifacts"]["saved_model"]["decoding"]["beam_width"] == 4
    assert {"BUILTIN"} != set(card["artifacts"]["tflite_float32"]["ops"]) and "FlexDelegate" not in str(card)
    int8 = card["artifacts"]["tflite_int8"]  # int8 weights where they live, the attention arithmetic in float
    assert int8["int8_mode"] == "selective" and int8["bytes"] < 0.5 * card["artifacts"]["tflite_float32"]["bytes"]
    assert int8["float_layers"][0]["layer"] == "decoder arithmetic outside layers"
    assert any(f["layer"].endswith("block_0_norm_self") for f in int8["float_layers"])


def _beep_rows(root, n=48):
    rows = []
    rng = np.random.default_rng(0)
    for i in range(n):
        pitches = ["high" if b else "low" for b in rng.integers(0, 2, size=1 + i % 3)]
        clip = shapes_captions.scenes.beep_clip(rng, len(pitches),
                                                [rng.uniform(*shapes_captions.PITCH_HZ[p]) for p in pitches])
        shapes_captions.write_pcm_wav(str(root / f"clip{i}.wav"), clip, 8000)
        rows.append({"audio": f"clip{i}.wav", "caption": shapes_captions.caption_beeps(pitches, "en", i % 2)})
    return rows


@pytest.mark.parametrize("preset", ["cnn_gru_captioner", "melcnn_transformer_captioner"])
def test_other_captioning_presets_train_and_export(preset, tmp_path):
    rows = _beep_rows(tmp_path) if preset.startswith("melcnn") else _caption_rows(tmp_path, 24)
    run = mmzoo.train(preset, write_manifest(tmp_path, rows, "captions.csv"), epochs=1, out=str(tmp_path / "run"),
                      verbose=0, seed=0)
    test = run.metrics["test"]
    assert test["inputs"] > 0 and 0.0 <= test["bleu4"] <= 100.0 and "blanked" in test
    result = mmzoo.export(run.root, out=str(tmp_path / "models"), validate="inline", num_samples=24,
                          quantize="int8", drop_failed_variants=True)  # (a one-epoch model: near ties everywhere)
    assert all(v["passed"] for k, v in result.parity.items() if k != "tflite_int8"), result.parity
    assert result.parity["tflite_float32"]["identical_captions"] == 1.0
    assert result.parity["saved_model.beam_search"]["identical_captions"] == 1.0
    # int8 converts, runs the reference loop and is judged on next tokens (published or dropped)
    int8 = result.card["artifacts"].get("tflite_int8") or result.card["validation"]["dropped"]["tflite_int8"]
    check = next(c for c in result.card["validation"]["checks"] if c["check"] == "tflite_int8")
    assert 0.0 <= check["next_token_agreement"] <= 1.0
    assert check["passed"] == ("tflite_int8" in result.card["artifacts"])
    assert int8["int8_mode"] == "selective" and int8["search"][0]["float_layers"] == []
    assert os.path.getsize(os.path.join(result.path, "litert", "captioner_float32.tflite")) > 0
