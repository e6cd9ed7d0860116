"""Recommender data: the interactions reader's checks, the time split and histories, the
popularity baseline, and the shapes_shop generator against its taste oracle."""

import numpy as np
import pytest
from conftest import write_manifest

from mmzoo.data.interactions import read_interactions
from mmzoo.data.validation import DataError
from mmzoo.datasets import shapes_shop


def _files(tmp_path, events, users=None, items=None):
    paths = {"interactions": write_manifest(tmp_path, events, "events.csv")}
    if users is not None:
        paths["users"] = write_manifest(tmp_path, users, "users.csv")
    if items is not None:
        paths["items"] = write_manifest(tmp_path, items, "items.jsonl")
    return paths


def test_time_split_histories_and_the_popularity_baseline(tmp_path):
    events = [{"user": "a", "item": i, "timestamp": t} for i, t in (("x", 3), ("y", 1), ("z", 2), ("w", 4))]
    events += [{"user": "b", "item": i, "timestamp": f"2026-01-0{t}T10:00:00"} for i, t in (("x", 1), ("x", 2),
                                                                                              ("z", 3))]
    items = [{"item": i} for i in ("w", "x", "y", "z")]
    data = read_interactions(**_files(tmp_path, events, items=items))
    a = [e for e in data.events if e.user == "a"]
    assert [(e.item, e.split) for e in a] == [("y", "train"), ("z", "train"), ("x", "validation"), ("w", "test")]
    assert a[-1].history == ("y", "z", "x") and a[0].history == ()
    assert data.splits == {"train": 3, "validation": 2, "test": 2}
    assert data.popularity() == {"y": 1.0, "z": 1.0, "x": 1.0}
    # test: a's seen items {y, z, x} leave w (a hit at 1); b's seen {x} leave y, z, w (ties in table
    # order): b's z is second
    baseline = data.popularity_baseline(ks=(1, 2))
    assert baseline["recall@1"] == pytest.approx(0.5) and baseline["recall@2"] == pytest.approx(1.0)


def test_bad_rows_are_named_with_file_row_and_column(tmp_path):
    users = [{"user": "a", "tabular": "1 2"}, {"user": "b", "tabular": "3 4"}, {"user": "a", "tabular": "5 6"},
             {"user": "c", "tabular": "0 0"}]
    items = [{"item": "x"}, {"item": "y"}, {"item": "z"}]
    events = [{"user": "a", "item": "x", "timestamp": 1}, {"user": "a", "item": "y", "timestamp": 2},
              {"user": "a", "item": "z", "timestamp": 3}, {"user": "b", "item": "x", "timestamp": 1},
              {"user": "b", "item": "q", "timestamp": 2}, {"user": "zz", "item": "x", "timestamp": 3},
              {"user": "b", "item": "y", "timestamp": "yesterday"}, {"user": "c", "item": "x", "timestamp": 1,
                                                                      "weight": -1}]
    with pytest.raises(DataError) as e:
        read_interactions(**_files(tmp_path, events, users, items))
    message = str(e.value)
    for expected in ("users.csv row 3: user 'a': duplicate user id (first in row 1)",
                     "events.csv row 5 (line 6): item 'q': item 'q' is not in items.jsonl",
                     "events.csv row 6 (line 7): user 'zz': user 'zz' is not in users.csv",
                     "events.csv row 7 (line 8): timestamp 'yesterday': the timestamp is neither",
                     "events.csv row 8 (line 9): weight", "the weight must be a positive number",
                     "users.csv row 2: user 'b': has 1 interaction(s); a user needs 3"):
        assert expected in message, (expected, message)
    skipped = read_interactions(**_files(tmp_path, events, users, items), on_error="skip")
    assert {e.user for e in skipped.events} == {"a"} and skipped.report.skipped == 6
    assert any("no interaction" in n for n in skipped.report.notes)


def test_shapes_shop_popularity_is_beaten_by_knowing_the_tastes(tmp_path):
    paths = shapes_shop.write_dataset("small", str(tmp_path))
    data = read_interactions(**paths)
    assert data.splits["test"] == data.splits["validation"] == 300 and len(data.items) == 240
    baseline, oracle = data.popularity_baseline(), shapes_shop.taste_oracle("small")
    assert oracle["queries"] == baseline["queries"] == 300
    assert oracle["recall@10"] > 2 * baseline["recall@10"] and oracle["ndcg@10"] > 2 * baseline["ndcg@10"]
    again = shapes_shop.write_dataset("small", str(tmp_path / "again"))
    assert open(again["interactions"]).read() == open(paths["interactions"]).read()
    assert np.isclose(float(open(paths["items"]).readlines()[1].split(",")[-1].split()[0]),
                      np.log(float(open(paths["items"]).readlines()[1].split('"')[1].split(", ")[1].split()[0])),
                      atol=0.05)


def test_the_two_tower_recommender_beats_popularity_and_serves_its_items(tmp_path, monkeypatch, capsys):
    import os

    import tensorflow as tf

    import mmzoo
    from mmzoo.cli import main

    monkeypatch.setenv("MMZOO_DATA_DIR", str(tmp_path / "data"))
    out = str(tmp_path / "run")
    assert main(["train", "--data", "shapes_shop", "--out", out, "--max-steps", "200"]) == 0
    printed = capsys.readouterr().out
    assert "Training bag_cnn_gru_twotower" in printed and "(popularity:" in printed
    run = mmzoo.open_run(out)
    test = run.metrics["test"]
    assert test["items"] == 240 and test["recommender"]["queries"] == 300
    # popularity reaches 0.09 here; knowing the hidden tastes 0.26
    assert test["recommender"]["recall@10"] > 1.5 * test["popularity"]["recall@10"]
    assert test["recommender"]["ndcg@10"] > test["popularity"]["ndcg@10"]
    assert "| recommender |" in open(os.path.join(out, "report.md"), encoding="utf-8").read()

    result = mmzoo.export(out, out=str(tmp_path / "models"), name="shop", num_samples=200, warmup_requests=2)
    assert all(v["passed"] for v in result.parity.values()), result.parity
    served = tf.saved_model.load(result.path)
    user = run.spec.user_ids[2]
    found = served.signatures["search"](user=tf.constant([user, "someone new"]),
                                        history=tf.constant(["item0001 item0002", ""]),
                                        profile=tf.constant([[3.0, 0.0], [2.5, 1.0]]))
    ids = found["candidate_id"].numpy()
    assert ids.shape == (2, 10) and all(v.decode().startswith("item") for v in ids.ravel())
    assert len(set(ids[0])) == 10


def test_the_gru_recommender_trains_on_interactions_and_exports(tmp_path):
    import mmzoo

    data = mmzoo.datasets.load("shapes_shop", data_dir=str(tmp_path / "data"), history_len=8)
    run = mmzoo.train("gru_cnn_gru_twotower", data, epochs=1, out=str(tmp_path / "run"), verbose=0)
    test = run.metrics["test"]
    assert run.spec.history_len == 8 and test["recommender"]["queries"] == 300
    assert 0.0 <= test["recommender"]["recall@10"] <= test["recommender"]["recall@50"] <= 1.0
    again = mmzoo.open_run(run.root).evaluate()  # reopens the three files with the run's spec
    assert again["test"]["recommender"] == test["recommender"]
    result = mmzoo.export(run.root, out=str(tmp_path / "models"), validate="inline", num_samples=64)
    assert all(v["passed"] for v in result.parity.values()), result.parity
    assert {"tflite_query_float32", "tflite_candidate_float32"} <= set(result.artifacts)
