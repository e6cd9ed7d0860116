"""The small-data benchmark (benchmarks/bench_small_data.py): its tasks and the script, tiny."""

import collections
import filecmp
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import mmzoo.data
from benchmarks.smalldata import speech, tasks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every task, tiny, seed 0 (the handwritten digits come from scikit-learn, in the test extra)."""
    out = str(tmp_path_factory.mktemp("smalldata"))
    return {name: tasks.build(name, out, "tiny", seed=0) for name in tasks.TASKS}


def test_speech_file_is_compact_and_covers_both_languages():
    clips = speech.load()
    assert os.path.getsize(speech.DEFAULT_PATH) < 3.2e6
    assert len(clips) >= 200
    for lang in ("en", "zh"):
        mine = [c for c in clips if c.language == lang]
        assert sorted(collections.Counter(c.digit for c in mine).values()) == [len(mine) // 10] * 10
        assert len({(c.voice, c.speed, c.pitch) for c in mine}) == len(mine) // 10  # one speaker, ten digits
    assert all(c.samples.dtype.name == "int16" and 0.15 < len(c.samples) / 16000 < 1.1 for c in clips)


def test_manifests_are_valid_for_mmzoo(built):
    for name, info in built.items():
        data = mmzoo.data.from_manifest(info["manifest"])
        assert data.modalities == ("audio", "image", "text"), name
        assert data.class_names == info["labels"], name
        got, want = data.splits, info["rows"]
        assert got.get("test") == want["test"], name
        if want["validation"]:
            assert (got["train"], got["validation"]) == (want["train"], want["validation"]), name
        else:  # the trainer may carve a validation split out of train
            assert got["train"] + got.get("validation", 0) == want["train"], name
        assert not data.report.errors
    assert built["compare"]["rows"]["validation"] == 0  # one task leaves the validation split to the trainer


def test_rows_need_two_modalities_and_test_material_is_held_out(built):
    for name, info in built.items():
        rows = tasks.read_rows(os.path.dirname(info["manifest"]))
        assert {r["language"] for r in rows} == {"en", "zh"}
        assert {r["speech_language"] for r in rows} == {"en", "zh"}
        for r in rows:
            if name == "select":
                assert r["image_digit"] != r["spoken_digit"]
                assert int(r["label"]) == (r["image_digit"] if r["qtype"] == "image" else r["spoken_digit"])
            elif name == "compare":
                w, s = r["image_digit"], r["spoken_digit"]
                holds = {"larger": s > w, "smaller": s < w, "same": s == w}[r["qtype"]]
                assert r["label"] == ("yes" if holds else "no")
            else:
                assert r["left"] != r["right"] and r["spoken_digit"] in (r["left"], r["right"])
                unspoken = r["right"] if r["spoken_digit"] == r["left"] else r["left"]
                assert int(r["label"]) == {"left": r["left"], "right": r["right"], "unspoken": unspoken}[r["qtype"]]
                fonts = tasks.FONTS_TEST if r["split"] == "test" else tasks.FONTS_TRAIN
                assert set(r["fonts"]) <= set(fonts)
        speakers = collections.defaultdict(set)
        for r in rows:
            speakers[r["split"]].add((r["speech_language"], r["speaker"]))
        assert speakers["test"] and not speakers["test"] & (speakers["train"] | speakers["validation"])
        ends = [r["speech_end"] for r in rows]
        assert max(ends) <= tasks.WINDOW_SECONDS and any(e > 1.0 for e in ends)  # some clips end after 1.0 s


def test_labels_are_balanced(built):
    for name, info in built.items():
        rows = tasks.read_rows(os.path.dirname(info["manifest"]))
        for split, n in info["rows"].items():
            if n:
                counts = collections.Counter(r["label"] for r in rows if r["split"] == split)
                assert len(counts) == info["num_classes"] and max(counts.values()) - min(counts.values()) <= 1, (
                    name, split, counts)
    # and every question text gets every answer equally often (here, in a large sample)
    for task in tasks.TASKS.values():
        plan = tasks.plan_split(task, len(task.texts()) * len(task.labels) * 3, np.random.default_rng(0))
        assert set(collections.Counter((p[2], p[3]) for p in plan).values()) == {3}


def test_builders_are_deterministic_under_a_seed(built, tmp_path):
    info = built["glyphs"]
    again = tasks.build("glyphs", str(tmp_path / "a"), "tiny", seed=0)
    other = tasks.build("glyphs", str(tmp_path / "b"), "tiny", seed=1)
    first, second = os.path.dirname(info["manifest"]), os.path.dirname(again["manifest"])
    assert open(info["manifest"], "rb").read() == open(again["manifest"], "rb").read()
    assert tasks.read_rows(first) == tasks.read_rows(second)
    for sub in ("images", "audio"):
        names = sorted(os.listdir(os.path.join(first, sub)))
        match, mismatch, errors = filecmp.cmpfiles(os.path.join(first, sub), os.path.join(second, sub), names,
                                                   shallow=False)
        assert len(match) == len(names) and not mismatch and not errors
    assert tasks.read_rows(os.path.dirname(other["manifest"])) != tasks.read_rows(first)
    assert again["chance_levels"] == info["chance_levels"]


def test_majority_accuracy_and_text_only_chance(built):
    train = [{"text": "a", "label": "x"}, {"text": "a", "label": "x"}, {"text": "a", "label": "y"},
             {"text": "b", "label": "y"}, {"text": "b", "label": "z"}, {"text": "b", "label": "z"}]
    test = [{"text": "a", "label": "x"}, {"text": "a", "label": "y"}, {"text": "b", "label": "z"},
            {"text": "c", "label": "y"}]  # "c": never seen; train's majority label (tie x/y/z: "x") answers
    assert tasks.majority_accuracy(train, test, lambda r: r["text"]) == 2 / 4
    assert tasks.majority_accuracy(train, test, lambda r: None) == 1 / 4  # always "x"
    for name, info in built.items():  # recomputed from the rows written
        rows = tasks.read_rows(os.path.dirname(info["manifest"]))
        by_text = collections.defaultdict(collections.Counter)
        for r in rows:
            if r["split"] == "train":
                by_text[r["text"]][r["label"]] += 1
        overall = collections.Counter(r["label"] for r in rows if r["split"] == "train")
        pick = lambda c: min(c, key=lambda k: (-c[k], k))  # noqa: E731
        test_rows = [r for r in rows if r["split"] == "test"]
        hits = sum(r["label"] == pick(by_text.get(r["text"]) or overall) for r in test_rows)
        assert info["chance_levels"]["text_only"] == pytest.approx(hits / len(test_rows)), name
    for task in tasks.TASKS.values():  # by design the question alone is at chance
        big = tasks.latent_rows(task, 6000, seed=3)
        held = [dict(r, split="test") for r in tasks.latent_rows(task, 3000, seed=4)]
        assert tasks.majority_accuracy(big, held, lambda r: r["text"]) < 1 / len(task.labels) + 0.03


def test_the_benchmark_passes_mmzoo_no_flag_but_data_and_out():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import bench_small_data
    finally:
        sys.path.remove(os.path.join(ROOT, "benchmarks"))
    assert bench_small_data.mmzoo_command("d/m.csv", "r/x") == ["mmzoo", "train", "--data", "d/m.csv", "--out", "r/x"]


def test_script_prints_the_table_and_saves_every_field(tmp_path):
    out = tmp_path / "small_data.json"
    cmd = [sys.executable, os.path.join(ROOT, "benchmarks", "bench_small_data.py"), "--size", "tiny", "--tasks",
           "glyphs", "--out", str(out), "--work", str(tmp_path / "work"), "--seed", "0", "--mmzoo-epochs", "2"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| task | rows (train/val/test) | chance | text-only chance | baseline acc | mmzoo acc" in proc.stdout
    assert "| glyphs | 40/20/20 |" in proc.stdout
    result = json.loads(out.read_text(encoding="utf-8"))
    assert os.path.exists(tmp_path / "small_data.png")
    assert {"date", "size", "seed", "cpu_count", "versions", "git", "results", "tasks"} <= set(result)
    row = result["results"]["glyphs"]
    assert set(row) == {"rows", "chance", "text_only_chance", "baseline_accuracy", "mmzoo_accuracy", "mmzoo_text_only",
                        "baseline_text_only", "baseline_seconds", "mmzoo_seconds", "baseline_epochs", "mmzoo_epochs"}
    assert row["rows"] == "40/20/20" and None not in row.values()
    assert result["size"] == "tiny" and list(result["tasks"]) == ["glyphs"]
    r = result["tasks"]["glyphs"]
    assert r["rows"] == {"train": 40, "validation": 20, "test": 20}
    assert set(r["chance_levels"]) == {"chance", "text_only", "without_image", "without_audio"}
    assert {"accuracy", "text_only", "seconds", "epochs", "params"} <= set(r["baseline"])
    assert "error" not in r["mmzoo"], r["mmzoo"]
    assert {"command", "accuracy", "text_only", "ablation", "seconds", "wall_seconds", "epochs", "preset"} <= set(
        r["mmzoo"])
    assert r["mmzoo"]["command"].startswith("mmzoo train --data ") and r["mmzoo"]["command"].endswith("--epochs 2")
    assert r["mmzoo"]["epochs"] <= 2 and r["baseline"]["epochs"] <= 2
    for v in (r["baseline"]["accuracy"], r["baseline"]["text_only"], r["mmzoo"]["accuracy"], r["mmzoo"]["text_only"]):
        assert 0 <= v <= 1
    assert r["baseline"]["seconds"] > 0 and r["mmzoo"]["seconds"] > 0
