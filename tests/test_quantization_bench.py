"""The quantization benchmark's own parts (benchmarks/bench_quantization.py): the synthetic
multilabel / multitask / tabular tasks it trains those presets on, and its gate."""

import csv
import os
import sys

import numpy as np
import pytest

import mmzoo.data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import bench_quantization as bench  # noqa: E402


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    return bench.write_task_manifests(str(tmp_path_factory.mktemp("tasks")), seed=0, rows=(40, 10, 10))


def _rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_task_manifests_load_as_the_tasks_their_presets_need(manifests):
    small = dict(image_size=(32, 32), seq_len=8)
    kinds = {}
    for kind, path in manifests.items():
        data = mmzoo.data.from_manifest(path, **small)
        kinds[kind] = data.spec.task
        assert sum(1 for _ in data.dataset("train", batch_size=None, shuffle=False)) == 40
        assert sum(1 for _ in data.dataset("test", batch_size=None, shuffle=False)) == 10
    assert kinds == {"multilabel": "multilabel", "multitask": "multitask", "regression": "regression",
                     "tabular": "classification"}
    # every preset without built-in data gets one of them
    assert bench.data_for("cnn_gru_multilabel", os.path.dirname(os.path.dirname(manifests["tabular"])), 0) \
        .endswith("multilabel.csv")
    assert bench.data_for("cnn_gru_concat", "/unused", 0) == "shapes_vqa/image_text"


def test_task_labels_follow_from_the_inputs(manifests):
    for row in _rows(manifests["tabular"]):
        numbers = np.array([float(x) for x in row["tabular"].split()])
        pick = numbers.argmax() if "largest" in row["text"] else numbers.argmin()
        assert row["label"] == "abcd"[pick]
    regression, multilabel = _rows(manifests["regression"]), _rows(manifests["multilabel"])
    assert len({r["image"] for r in regression}) == 60 and all(float(r["label"]) > 0 for r in regression)
    colours = {"red", "green", "blue", "yellow"}
    for row in multilabel:
        names = set(row["label"].split("|"))
        assert names <= colours if "colours" in row["text"] else not names & colours
    # seeded: the same files again
    again = bench.write_task_manifests(os.path.dirname(manifests["tabular"]) + "_again", seed=0, rows=(40, 10, 10))
    assert _rows(again["multitask"]) == _rows(manifests["multitask"])


def test_the_gate_checks_agreement_nrmse_accuracy_and_mae():
    keras = {"answer_accuracy": 0.9, "score_mae": 0.10}
    good = {"agreement": 0.99, "nrmse": 0.01, "scores": {"answer_accuracy": 0.895, "score_mae": 0.104}}
    assert bench.passes(good, keras)
    for change in ({"agreement": 0.97}, {"nrmse": 0.06}, {"scores": {"answer_accuracy": 0.88, "score_mae": 0.1}},
                   {"scores": {"answer_accuracy": 0.9, "score_mae": 0.106}}, {"agreement": None, "nrmse": None}):
        assert not bench.passes({**good, **change}, keras), change
