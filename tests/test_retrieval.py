"""Retrieval: the losses, pool-wide ranking metrics, pair manifests, the shapes_captions built-in,
and each retrieval preset through `mmzoo train`, evaluation, export (SavedModel + LiteRT towers)
with fresh-process validation, and `mmzoo index`."""

import csv
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import write_manifest
from keras import ops

import mmzoo
from mmzoo.cli import main
from mmzoo.data.samples import encode_image, write_wav
from mmzoo.data.validation import DataError
from mmzoo.datasets import shapes_captions
from mmzoo.tasks import ranking
from mmzoo.tasks.losses import contrastive_loss, sigmoid_loss


# ----------------------------------------------------------------------------- losses
def _log_softmax(x):
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def test_contrastive_loss_leaves_rows_of_one_group_out_of_the_negatives():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 4)).astype("float32") * 3
    groups = np.array([7, 7, 1, 2])  # rows 0 and 1: two captions of one image
    masked = logits.copy()
    masked[0, 1] = masked[1, 0] = -1e9
    expected = 0.5 * (-np.mean(np.diag(_log_softmax(masked))) - np.mean(np.diag(_log_softmax(masked.T))))
    got = float(contrastive_loss(ops.array(logits), ops.array(groups)))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # without groups the same logits give the plain CLIP loss, which differs
    plain = 0.5 * (-np.mean(np.diag(_log_softmax(logits))) - np.mean(np.diag(_log_softmax(logits.T))))
    np.testing.assert_allclose(float(contrastive_loss(ops.array(logits), ops.array([0, 1, 2, 3]))), plain, rtol=1e-5)
    assert abs(plain - expected) > 1e-3


def test_sigmoid_loss_treats_a_group_as_positives():
    logits = np.array([[2.0, 1.0, -1.0], [0.5, 3.0, -2.0], [-1.0, 0.0, 4.0]], "float32")
    groups = np.array([0, 0, 1])
    sign = np.where(groups[:, None] == groups[None, :], 1.0, -1.0)
    expected = -np.mean(np.sum(np.log(1 / (1 + np.exp(-sign * logits))), axis=1))
    np.testing.assert_allclose(float(sigmoid_loss(ops.array(logits), ops.array(groups))), expected, rtol=1e-5)


# ----------------------------------------------------------------------------- ranking
def test_rank_metrics_over_the_pool_with_groups_and_repeated_candidates():
    # candidates: rows 0 and 1 are one image (same embedding, same group) -> one pool entry
    c = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], "float32")
    q = np.array([[0.9, 0.1, 0], [0.1, 0.9, 0], [0, 0.8, 0.6], [0.7, 0, 0.71]], "float32")
    groups = np.array([0, 0, 1, 2])
    m = ranking.rank_metrics(q, groups, c, groups, ks=(1, 2))
    # ranks: q0 -> cand 0 first (1); q1 (group 0) -> cand 0 second (2); q2 (group 1) -> first (1);
    # q3 (group 2) -> cand 2 first (1)
    assert m["pool"] == 3 and m["queries"] == 4
    assert m["recall@1"] == 0.75 and m["recall@2"] == 1.0
    assert m["median_rank"] == 1.0 and m["mrr"] == pytest.approx((1 + 0.5 + 1 + 1) / 4)
    assert m["chance_recall@1"] == pytest.approx(1 / 3)
    # a tie counts against the query
    assert list(ranking.first_hit_ranks(np.array([[1.0, 1.0]]), np.array([[False, True]]))) == [2]


@pytest.mark.parametrize("m,k", [(6, 6), (1001, 10), (4096, 10), (37, 3)])
def test_block_top_k_is_exactly_top_k(m, k):
    from mmzoo.export.retrieval import block_top_k

    scores = np.random.default_rng(m).normal(size=(5, m)).astype("float32")
    scores[0, :40] = 1.0  # ties count as equal scores
    values, index = block_top_k(tf.constant(scores), k)
    expected_values, expected_index = tf.math.top_k(scores, k)
    np.testing.assert_array_equal(values.numpy(), expected_values.numpy())
    np.testing.assert_array_equal(index.numpy()[1:], expected_index.numpy()[1:])
    np.testing.assert_array_equal(np.take_along_axis(scores, index.numpy(), axis=1), values.numpy())


def test_approximate_index_reaches_its_recall_against_brute_force(tmp_path):
    from mmzoo.export.ann import INDEX_FILE, build_approximate_index, exact_top_k, recall_at_k

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(50, 32)).astype("float32")
    x = centres[rng.integers(0, 50, 5000)] + 0.3 * rng.normal(size=(5000, 32)).astype("float32")
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[rng.integers(0, 5000, 200)] + 0.1 * rng.normal(size=(200, 32)).astype("float32")
    ann = build_approximate_index(x, q, k=10, target_recall=0.9)
    assert ann.recall >= 0.9 and 1 <= ann.nprobe <= ann.nlist
    found, scores = ann.search(q)
    assert recall_at_k(found, exact_top_k(q, x, 10)) == pytest.approx(ann.recall)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first
    if ann.nprobe > 1:  # the smallest nprobe that reaches the target
        ann.index.nprobe = ann.nprobe - 1
        assert recall_at_k(ann.index.search(q, 10)[1], exact_top_k(q, x, 10)) < 0.9
    assert INDEX_FILE in ann.save(str(tmp_path))


# ----------------------------------------------------------------------------- data
def _pair_files(root, n=12):
    rows = []
    for i in range(n):
        image = np.zeros((16, 16, 3), np.uint8)
        image[i % 16, :, i % 3] = 255
        name = f"img{i}.png"
        (root / name).write_bytes(encode_image(image, "PNG"))
        rows.append({"image": name, "text": f"picture number {i}", "group": f"g{i // 2}"})
    return rows


def test_pair_manifest_groups_splits_and_clear_errors(tmp_path):
    rows = _pair_files(tmp_path, 40)
    data = mmzoo.data.from_manifest(write_manifest(tmp_path, rows), val_fraction=0.2, test_fraction=0.2)
    assert data.spec.task == "retrieval" and data.modalities == ("image", "text")
    assert any("pairs to match" in n and "20 groups" in n for n in data.report.notes)
    by_split = {}
    for split in ("train", "validation", "test"):
        for row in data.rows(split):
            by_split[rows[row - 1]["group"]] = by_split.get(rows[row - 1]["group"], set()) | {split}
    assert all(len(s) == 1 for s in by_split.values()), "a group was split across splits"
    _, groups = next(iter(data.dataset("train", batch_size=64, shuffle=False)))
    assert np.asarray(groups).dtype == np.int32 and len(set(np.asarray(groups).tolist())) == data.splits["train"] // 2

    bad = [dict(r) for r in rows]
    bad[3]["text"] = "   "
    bad[5]["image"] = "missing.png"
    with pytest.raises(DataError) as e:
        mmzoo.data.from_manifest(write_manifest(tmp_path, bad, "bad.csv"))
    message = str(e.value)
    assert "row 4" in message and "text" in message and "row 6" in message and "missing.png" in message

    split = [{**r, "split": "train" if i not in (1, 3) else "test"} for i, r in enumerate(rows)]
    notes = mmzoo.data.from_manifest(write_manifest(tmp_path, split, "split.csv")).report.notes
    assert any(n.startswith("2 of 20 groups have rows in more than one split") and "row 1 (train) and row 2 (test)" in n
               for n in notes), notes

    no_group = [{k: v for k, v in r.items() if k != "group"} for r in rows]
    data = mmzoo.data.from_manifest(write_manifest(tmp_path, no_group, "nogroup.jsonl"))
    assert any("every row is its own group" in n for n in data.report.notes)
    _, groups = next(iter(data.dataset("train", batch_size=64, shuffle=False)))
    assert len(set(np.asarray(groups).tolist())) == data.splits["train"]


def test_shapes_captions_is_deterministic_and_describes_every_object(tmp_path):
    a, b = shapes_captions.make_example(3, 11, ("en", "zh")), shapes_captions.make_example(3, 11, ("en", "zh"))
    assert a["captions"] == b["captions"] and np.array_equal(a["image"], b["image"])
    for i in range(30):
        example = shapes_captions.make_example(i, shapes_captions.SPLIT_SEEDS["test"], ("en", "zh"))
        en, zh = example["captions"]
        objects = [g for g in example["grid"] if g >= 0]
        assert sum(en.count(p) for p in shapes_captions.POSITIONS_EN) == len(objects)
        assert sum(zh.count(p) for p in shapes_captions.POSITIONS_ZH) == len(objects)
        for obj in example["grid"]:
            if obj >= 0:
                colour, shape = mmzoo.datasets.shapes_vqa_generate.object_name(obj).split()
                assert f"{colour} {shape}" in en and shapes_captions.COLOURS_ZH[colour] in zh
    facts = shapes_captions.chance_levels("image_text_small", "test")
    assert facts["images"] == 300 and 0.8 < facts["ceiling_recall@1"] < 1.0
    assert facts["chance_recall@5"] == pytest.approx(5 / 300)


# ----------------------------------------------------------------------------- end to end
def _candidates_file(root, images):
    with open(root / "catalogue.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["image", "id", "name"])
        writer.writeheader()
        for i, image in enumerate(images):
            (root / f"c{i}.png").write_bytes(encode_image(image, "PNG"))
            writer.writerow({"image": f"c{i}.png", "id": f"item-{i}", "name": f"catalogue item {i}"})
    return str(root / "catalogue.csv")


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype("float32")


@pytest.mark.parametrize("m,k", [(20000, 10), (3000, 5), (300, 10), (50, 48), (50, 49)])
def test_bfloat16_index_answers_as_float32_brute_force(m, k):
    from mmzoo.export.retrieval import BF16_UNIT, Bfloat16Index, block_top_k

    rng = np.random.default_rng(m + k)
    spread = _unit(rng.normal(size=(m // 2, 64)))
    # half the candidates in tight clusters: top-k gaps far below bfloat16's error, no certificate
    centres = _unit(rng.normal(size=(20, 64)))
    clustered = _unit(centres[rng.integers(0, 20, m - m // 2)] + 0.003 * rng.normal(size=(m - m // 2, 64)))
    candidates = np.concatenate([spread, clustered])
    queries = np.concatenate([_unit(rng.normal(size=(24, 64))), _unit(centres[:8] + 0.01 * rng.normal(size=(8, 64)))])
    index = Bfloat16Index(candidates)
    scores, rows, certified = index.search(tf.constant(queries), k)
    expected_scores, expected_rows = block_top_k(tf.constant(queries @ candidates.T), k)
    np.testing.assert_allclose(scores.numpy(), expected_scores.numpy(), atol=1e-6)
    assert (np.sort(rows.numpy(), 1) == np.sort(expected_rows.numpy(), 1)).all()
    certified = certified.numpy()
    if m >= 3000:  # spread-out candidates: the shortlist mostly proves the top k; near-duplicates need float32
        assert certified[:24].mean() >= 0.75 and not certified[24:].all()
    # the bound the certificate relies on holds for every score
    rough = tf.matmul(tf.cast(queries, tf.bfloat16), tf.cast(candidates, tf.bfloat16), transpose_b=True)
    eps = (3 * BF16_UNIT + 64 * 2.0 ** -23) * index.max_norm
    assert np.abs(tf.cast(rough, tf.float32).numpy() - queries @ candidates.T).max() <= eps


def test_cnn_gru_clip_trains_evaluates_exports_and_reindexes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MMZOO_DATA_DIR", str(tmp_path / "data"))
    out = str(tmp_path / "run")
    assert main(["train", "--data", "shapes_captions", "--model", "cnn_gru_clip", "--out", out,
                 "--max-steps", "200", "--seed", "0"]) == 0
    printed = capsys.readouterr().out
    assert "test text_to_image: R@1" in printed and "chance R@5 0.017" in printed
    run = mmzoo.open_run(out)
    test = run.metrics["test"]
    t2i, i2t = test["text_to_image"], test["image_to_text"]
    assert t2i["pool"] == 300 and t2i["queries"] == 600 and i2t["pool"] == 600
    # well above chance after 200 steps (chance R@5 = 1.7%; a perfect reader's R@1 ceiling is 87%)
    assert t2i["recall@5"] > 8 * t2i["chance_recall@5"] and i2t["recall@5"] > 8 * i2t["chance_recall@5"]
    assert t2i["recall@1"] <= t2i["recall@5"] <= t2i["recall@10"] and t2i["median_rank"] < 20
    assert run.metrics["ablation"] is None and run.config["augment"]["modality_dropout"] == 0.0
    for png in ("recall_at_k.png", "retrieval_examples.png"):
        with open(os.path.join(out, "plots", png), "rb") as f:
            assert f.read(4) == b"\x89PNG"
    report = open(os.path.join(out, "report.md"), encoding="utf-8").read()
    assert "| text_to_image |" in report and "retrieval_examples.png" in report
    picture = os.path.join(str(tmp_path / "data"), "shapes_captions", "image_text_small", "1.0.0", "images",
                           "test_00000.png")
    both = run.predict(image=picture, text="a red circle at the top left.")
    assert len(both["query_embedding"]) == 128 and -1.0 <= both["score"] <= 1.0
    assert set(run.predict(text="a blue square.")) == {"query_embedding"}
    with pytest.raises(ValueError, match="takes"):
        run.predict(audio=picture)

    # (the int8 towers and their recall gate: notebook 06, which exports the same model with int8)
    result = mmzoo.export(out, out=str(tmp_path / "models"), name="clip", num_samples=300, warmup_requests=2,
                          approximate=True, index_precision="bfloat16")
    assert {c for c, v in result.parity.items() if not v["passed"]} == set()
    assert {"saved_model.search", "saved_model.embed_query", "saved_model.embed_candidate", "saved_model.score",
            "tflite_query_float32", "tflite_candidate_float32"} <= set(result.parity)
    assert result.parity["tflite_query_float32"]["recall_drop"] <= 0.01
    assert result.card["validation"]["fresh_process"] is True
    assert result.card["retrieval"]["index_precision"] == "bfloat16"  # the search check held it to Keras' float32
    assert 0.0 <= result.card["artifacts"]["saved_model"]["index"]["bfloat16_certified"] <= 1.0
    loaded = tf.saved_model.load(result.path)
    assert {"search", "embed_query", "embed_candidate", "score", "serving_default"} <= set(loaded.signatures)
    found = loaded.signatures["search"](text=tf.constant(["a red circle at the top left.", "左上是红色圆形。"]))
    assert found["candidate_id"].shape == (2, 10) and found["score"].numpy()[:, 0].min() > found["score"].numpy()[
        :, -1].max() - 1.0
    approximate = result.card["artifacts"]["approximate_index"]
    assert approximate["recall@10_vs_brute_force"] >= 0.95 and approximate["nprobe"] <= approximate["nlist"]
    assert os.path.getsize(os.path.join(result.path, "approximate_index", "candidates.faiss")) > 0
    lite = os.path.join(result.path, "litert")
    assert np.load(os.path.join(lite, "candidates.npy")).shape == (1700, 128)
    assert open(os.path.join(lite, "candidates.tsv"), encoding="utf-8").readline().strip() == "row\tid\tname"

    # a new catalogue, no retraining: the next version searches only these candidates
    images = [np.zeros((32, 32, 3), np.uint8) for _ in range(3)]
    images[0][2:14, 2:14] = (255, 0, 0)      # a red square at the top left
    images[1][18:30, 18:30] = (0, 0, 255)    # a blue square at the bottom right
    images[2][2:14, 18:30] = (255, 255, 0)   # a yellow square at the top right
    assert main(["index", out, "--candidates", _candidates_file(tmp_path, images), "--out", str(tmp_path / "models"),
                 "--name", "clip", "--k", "3", "--formats", "saved_model"]) == 0
    second = tf.saved_model.load(str(tmp_path / "models" / "clip" / "2"))
    found = second.signatures["search"](text=tf.constant(["a red square at the top left."]))
    assert sorted(v.decode() for v in found["candidate_id"].numpy()[0]) == ["item-0", "item-1", "item-2"]
    card = json.load(open(tmp_path / "models" / "clip" / "2" / "assets.extra" / "mmzoo.json", encoding="utf-8"))
    assert card["retrieval"]["candidates"] == 3 and card["retrieval"]["k"] == 3
    assert card["retrieval"]["index_precision"] == "float32"


def _audio_captions(root, n=96):
    """Clips of one to three beeps, low or high, captioned; clips with one caption form a group."""
    rows = []
    rng = np.random.default_rng(0)
    for i in range(n):
        count, high = 1 + i % 3, (i // 3) % 2 == 1
        t = np.arange(8000) / 8000
        wave = 0.01 * rng.standard_normal(8000)
        for b in range(count):
            start = int(rng.integers(0, 600)) + b * 2400
            tone = np.sin(2 * np.pi * (1200 if high else 300) * t[:1200])
            wave[start:start + 1200] += 0.5 * tone
        write_wav(str(root / f"clip{i}.wav"), wave, 8000)
        words = ["one", "two", "three"][count - 1]
        rows.append({"audio": f"clip{i}.wav", "text": f"{words} {'high' if high else 'low'} beep{'s' * (count > 1)}",
                     "group": f"{count}-{high}"})
    return rows


@pytest.mark.parametrize("preset", ["melcnn_gru_clip", "cnn_gru_siglip"])
def test_other_retrieval_presets_train_and_export(preset, tmp_path):
    rows = _audio_captions(tmp_path) if preset == "melcnn_gru_clip" else _pair_files(tmp_path, 48)
    manifest = write_manifest(tmp_path, rows, "pairs.csv")
    run = mmzoo.train(preset, manifest, epochs=1, out=str(tmp_path / "run"), verbose=0, seed=0)
    first = run.model.directions()[0][0]
    metrics = run.metrics["test"][first]
    assert 0 < metrics["pool"] and 0.0 <= metrics["recall@1"] <= metrics["recall@10"] <= 1.0
    result = mmzoo.export(run.root, out=str(tmp_path / "models"), validate="inline", num_samples=64)
    assert all(v["passed"] for v in result.parity.values()), result.parity
    side = run.model.sides["candidate"][0]
    assert "saved_model.embed_candidate" in result.parity and side in run.spec.modalities
    for path in ("litert/query_float32.tflite", "litert/candidate_float32.tflite"):
        assert os.path.getsize(os.path.join(result.path, path)) > 0
