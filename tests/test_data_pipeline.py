"""tf.data pipelines: determinism, sharding, distribution, cache, TFRecord, TFDS, CLI."""

import io
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from conftest import rows_for, write_manifest
from etils import epath

import mmzoo.data as md
from mmzoo.data import cli

KW = dict(image_size=(8, 8), seq_len=6, audio_seconds=0.05)


@pytest.fixture(scope="module")
def data(media):
    rows = rows_for(24, ("image", "text", "audio", "tabular"))
    for i, r in enumerate(rows):  # tabular[0] = row index, to follow examples around
        r["tabular"] = f"{i} 0"
        r["split"] = "train" if i < 16 else ("validation" if i < 20 else "test")
    return md.from_manifest(write_manifest(media, rows, "pipe.csv"), **KW)


def _ids(ds):
    return [int(v) for x, _ in ds.as_numpy_iterator() for v in np.atleast_2d(x["tabular"])[:, 0]]


def test_seeded_shuffle_is_deterministic(data):
    a = data.dataset("train", batch_size=4, seed=7, repeat=True).take(8)
    b = data.dataset("train", batch_size=4, seed=7, repeat=True).take(8)
    c = data.dataset("train", batch_size=4, seed=8).take(4)
    ids_a, ids_b = _ids(a), _ids(b)
    assert ids_a == ids_b
    assert sorted(ids_a[:16]) == list(range(16)) and sorted(ids_a[16:]) == list(range(16))
    assert ids_a[:16] != ids_a[16:]  # reshuffled each epoch
    assert _ids(c) != ids_a[:16]
    assert _ids(data.dataset("train", shuffle=False)) == list(range(16))
    cached = [_ids(data.dataset("train", batch_size=4, seed=7, cache="memory")) for _ in range(2)]
    assert sorted(cached[0]) == list(range(16)) and cached[0] == cached[1]


@pytest.mark.parametrize("num_shards", [2, 3])
def test_shards_are_disjoint_and_complete(data, num_shards):
    shards = [
        set(
            _ids(
                data.dataset(
                    "train",
                    batch_size=2,
                    shuffle=True,
                    seed=1,
                    num_shards=num_shards,
                    shard_index=i,
                )
            )
        )
        for i in range(num_shards)
    ]
    assert sum(len(s) for s in shards) == 16 and set().union(*shards) == set(range(16))
    with pytest.raises(ValueError, match="shard_index"):
        data.dataset("train", num_shards=2, shard_index=2)


def test_dataset_fn_uses_input_context(data):
    fn = data.dataset_fn("train", global_batch_size=8, shuffle=False)
    ctx = tf.distribute.InputContext(
        num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=2
    )
    ds = fn(ctx)
    x, y = next(iter(ds))
    assert y.shape == (4,)
    assert _ids(ds) == list(range(1, 16, 2))


def test_file_cache_and_features(data, tmp_path):
    plain = list(data.dataset("validation", batch_size=None, shuffle=False).as_numpy_iterator())
    cached = data.dataset(
        "validation", batch_size=None, shuffle=False, cache=str(tmp_path / "c" / "cache")
    )
    first = list(cached.as_numpy_iterator())
    assert os.listdir(tmp_path / "c")
    again = list(cached.as_numpy_iterator())
    for (x1, y1), (x2, y2), (x3, y3) in zip(plain, first, again):
        assert y1 == y2 == y3 and all(
            np.array_equal(x1[k], x2[k]) and np.array_equal(x1[k], x3[k]) for k in x1
        )
    with pytest.raises(ValueError, match="No examples in split 'tset'"):
        data.dataset("tset")


def test_tfrecord_round_trip_and_shards(data, tmp_path):
    files = md.to_tfrecord(data, str(tmp_path / "rec"), shards=4)
    assert len(files["train"]) == 4 and os.path.isfile(tmp_path / "rec" / "spec.json")
    back = md.from_tfrecord(str(tmp_path / "rec"))
    assert back.spec == data.spec and back.splits == data.splits
    for split in ("train", "test"):
        a = list(data.dataset(split, batch_size=None, shuffle=False).as_numpy_iterator())
        b = list(back.dataset(split, batch_size=None, shuffle=False).as_numpy_iterator())
        assert len(a) == len(b) > 0
        for (x1, y1), (x2, y2) in zip(a, b):
            assert y1 == y2 and set(x1) == set(x2)
            assert all(np.array_equal(x1[k], x2[k]) and x1[k].dtype == x2[k].dtype for k in x1)
    for n in (2, 3, 8):  # file-level and record-level sharding
        parts = [
            set(_ids(back.dataset("train", num_shards=n, shard_index=i, seed=0))) for i in range(n)
        ]
        assert sum(map(len, parts)) == 16 and set().union(*parts) == set(range(16))
    with pytest.raises(FileNotFoundError, match="not a to_tfrecord folder"):
        md.from_tfrecord(str(tmp_path))


# ---------------------------------------------------------------- TFDS
class TinyMmTest(tfds.core.GeneratorBasedBuilder):
    """A tiny multimodal TFDS dataset, generated offline."""

    VERSION = tfds.core.Version("1.0.0")
    code_path = epath.Path(__file__)

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(12, 16, 3)),
                    "question": tfds.features.Text(),
                    "audio": tfds.features.Audio(shape=(400,), dtype=np.int16, sample_rate=8000),
                    "answer": tfds.features.ClassLabel(names=["no", "yes"]),
                    "answer_text": tfds.features.Text(),
                    "tags": tfds.features.Sequence(tfds.features.ClassLabel(names=["a", "b", "c"])),
                    "score": tfds.features.Tensor(shape=(), dtype=np.float32),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(10, 0), "test": self._generate_examples(4, 1)}

    def _generate_examples(self, n, seed):
        rng = np.random.default_rng(seed)
        for i in range(n):
            yes = i % 2
            yield (
                f"{seed}-{i}",
                {
                    "image": rng.integers(0, 255, (12, 16, 3)).astype(np.uint8),
                    "question": ["is it red?", "这是红色吗？"][i % 2] + f" q{i}",
                    "audio": (rng.standard_normal(400) * 3000).astype(np.int16),
                    "answer": yes,
                    "answer_text": ["no", "yes"][yes],
                    "tags": [j for j in range(3) if (i >> j) & 1],
                    "score": float(i) / 2,
                },
            )


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tfds"))
    TinyMmTest(data_dir=path).download_and_prepare()
    return path


def test_from_tfds_maps_features(tfds_dir):
    mapping = {"image": "image", "text": "question", "audio": "audio", "label": "answer"}
    data = md.from_tfds(
        "tiny_mm_test",
        mapping=mapping,
        data_dir=tfds_dir,
        seq_len=5,
        sample_rate=16000,
        val_fraction=0.2,
    )
    assert data.modalities == ("audio", "image", "text") and data.class_names == ["no", "yes"]
    assert data.splits == {"train": 8, "validation": 2, "test": 4}
    assert data.spec.image_shape == (12, 16, 3) and data.spec.audio_samples == 800

    def questions(split):
        ds = tfds.load("tiny_mm_test", split=split, data_dir=tfds_dir, shuffle_files=False)
        return [q.decode("utf-8") for q in tfds.as_numpy(ds.map(lambda ex: ex["question"]))]

    assert data.spec.vocabulary == md.build_vocabulary(questions("train[:80%]"))  # train part only
    held_out = {t for q in questions("train[80%:]") for t in md.split_tokens(q)}
    assert "红" in data.spec.vocabulary and held_out - set(data.spec.vocabulary)
    x, y = next(iter(data.dataset("test", batch_size=4, shuffle=False)))
    assert x["image"].dtype == tf.uint8 and x["image"].shape == (4, 12, 16, 3)
    assert x["audio"].dtype == tf.float32 and x["audio"].shape == (4, 800)
    assert float(tf.reduce_max(tf.abs(x["audio"]))) <= 1.0
    raw = _raw_test(tfds_dir)
    assert x["text"].shape == (4, 5) and y.numpy().tolist() == [int(r["answer"]) for r in raw]
    for ids, r in zip(x["text"].numpy(), raw):  # TF ids == reference ids on TFDS strings
        assert ids.tolist() == md.tokenize_reference(r["question"].decode("utf-8"), data.spec)
    # int16 -> float, 8 kHz -> 16 kHz: the original samples are (band-limited) kept
    corr = np.corrcoef(x["audio"][1, ::2], raw[1]["audio"][:400] / 32768.0)[0, 1]
    assert corr > 0.98
    n = [
        sum(
            int(y.shape[0])
            for _, y in data.dataset("train", batch_size=3, num_shards=2, shard_index=i)
        )
        for i in range(2)
    ]
    assert n == [4, 4]
    # a saved spec rebuilds the same pipeline
    again = md.from_tfds(
        "tiny_mm_test", mapping=mapping, data_dir=tfds_dir, spec=data.spec, val_fraction=0.2
    )
    x2, _ = next(iter(again.dataset("test", batch_size=4, shuffle=False)))
    assert all(np.array_equal(x[k], x2[k]) for k in x)


def _raw_test(tfds_dir):
    ds = tfds.load("tiny_mm_test", split="test", data_dir=tfds_dir, shuffle_files=False)
    return list(tfds.as_numpy(ds))


def test_from_tfds_label_kinds(tfds_dir):
    raw = _raw_test(tfds_dir)
    text_label = md.from_tfds(
        "tiny_mm_test",
        {"image": "image", "label": "answer_text"},
        data_dir=tfds_dir,
        val_fraction=0,
    )
    assert text_label.class_names == ["no", "yes"] and text_label.task == "classification"
    _, y = next(iter(text_label.dataset("test", batch_size=4, shuffle=False)))
    assert y.numpy().tolist() == [int(r["answer"]) for r in raw]
    multi = md.from_tfds(
        "tiny_mm_test", {"image": "image", "label": "tags"}, data_dir=tfds_dir, val_fraction=0
    )
    assert multi.task == "multilabel"
    _, y = next(iter(multi.dataset("test", batch_size=4, shuffle=False)))
    assert y.numpy().tolist() == [[float(j in r["tags"]) for j in range(3)] for r in raw]
    reg = md.from_tfds(
        "tiny_mm_test", {"image": "image", "label": "score"}, data_dir=tfds_dir, val_fraction=0
    )
    _, y = next(iter(reg.dataset("test", batch_size=4, shuffle=False)))
    assert reg.task == "regression" and y.numpy().ravel().tolist() == [r["score"] for r in raw]
    with pytest.raises(ValueError, match="feature 'nope'.*Features: "):
        md.from_tfds("tiny_mm_test", {"image": "nope", "label": "answer"}, data_dir=tfds_dir)


# ---------------------------------------------------------------- CLI and imports
def test_cli_check_reports_and_exit_codes(media, tmp_path):
    good = write_manifest(media, rows_for(8, ("image", "text")), "cli_good.csv")
    out = io.StringIO()
    assert cli.run_check(cli_args(["check", good, "--image-size", "8", "8"]), out) == 0
    assert "OK" in out.getvalue() and "rows kept: 8" in out.getvalue()
    rows = rows_for(8, ("image", "text"))
    rows[2]["image"] = "../../etc/passwd"
    bad = write_manifest(media, rows, "cli_bad.csv")
    out = io.StringIO()
    assert cli.run_check(cli_args(["check", bad]), out) == 1
    assert (
        "cli_bad.csv row 3 (line 4): image '../../etc/passwd': the path escapes" in out.getvalue()
    )
    out = io.StringIO()
    assert (
        cli.run_check(cli_args(["check", str(media / "no_such_manifest.csv"), "--json"]), out) == 2
    )
    assert '"ok": false' in out.getvalue()
    assert cli.main(["to-tfrecord", good, str(tmp_path / "rec"), "--shards", "2"]) == 0
    assert md.from_tfrecord(str(tmp_path / "rec")).splits["train"] == 4


def cli_args(argv):
    import argparse

    parser = argparse.ArgumentParser()
    cli.add_data_commands(parser.add_subparsers(dest="command"))
    return parser.parse_args(["data"] + argv)


def test_import_mmzoo_does_not_import_data():
    code = "import sys, mmzoo; print('mmzoo.data' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert out.stdout.strip() == "False", out.stderr[-2000:]
