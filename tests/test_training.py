"""Training runs end to end on the small built-in dataset: files, metrics, resume, NaN, errors."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import mmzoo
from mmzoo.training import Run, RunError, TrainingError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="module")
def small_data(tfds_dir):
    return mmzoo.datasets.load("shapes_vqa", config="image_text_small", data_dir=tfds_dir, seq_len=12)


@pytest.fixture(scope="module")
def finished_run(small_data, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("runs") / "exp1")
    return mmzoo.train("cnn_gru_film", small_data, epochs=2, out=out, seed=1, verbose=0)


def test_run_folder_holds_everything(finished_run, small_data):
    root = finished_run.root
    for name in ("model.keras", "data_spec.json", "config.json", "history.csv", "metrics.json", "report.md",
                 "status.json", "checkpoints/best.weights.h5", "plots/training_curves.png",
                 "plots/confusion_matrix.png"):
        assert os.path.exists(os.path.join(root, name)), name
    for png in ("plots/training_curves.png", "plots/confusion_matrix.png"):
        with open(os.path.join(root, png), "rb") as f:
            assert f.read(8) == PNG_MAGIC
    assert os.listdir(os.path.join(root, "logs")), "TensorBoard logs"
    config = finished_run.config
    assert config["seed"] == 1 and config["epochs"] == 2 and config["preset"] == "cnn_gru_film"
    assert config["versions"]["tensorflow"].startswith("2.21") and config["versions"]["keras"].startswith("3.")
    assert config["data"]["kind"] == "tfds"
    spec = finished_run.spec
    assert spec.vocabulary == small_data.spec.vocabulary and spec.class_names == small_data.class_names
    rows = list(csv.DictReader(open(os.path.join(root, "history.csv"))))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(rows[0])
    assert finished_run.dir.is_finished()


def test_metrics_are_real(finished_run, small_data):
    m = finished_run.metrics
    test = m["test"]
    assert test["examples"] == small_data.num_examples("test") == 128
    confusion = np.array(test["confusion_matrix"])
    assert confusion.sum() == 128
    assert test["accuracy"] == pytest.approx(np.trace(confusion) / 128)
    assert set(test["per_class"]) == set(small_data.class_names)
    for name, c in test["per_class"].items():
        i = small_data.class_names.index(name)
        assert c["support"] == confusion[i].sum()
        if confusion[:, i].sum():
            assert c["precision"] == pytest.approx(confusion[i, i] / confusion[:, i].sum())
    ab = m["ablation"]
    assert ab["full"] == pytest.approx(test["accuracy"])
    assert set(ab["without"]) == set(ab["only"]) == {"image", "text"}
    assert m["params"] == finished_run.model.count_params()
    report = open(os.path.join(finished_run.root, "report.md")).read()
    for section in ("## Test metrics", "## Modality ablation", "![Training curves](plots/training_curves.png)",
                    "![Confusion matrix](plots/confusion_matrix.png)"):
        assert section in report
    # Evaluating again gives the same numbers.
    again = finished_run.evaluate()
    assert again["test"]["accuracy"] == pytest.approx(test["accuracy"])


def test_seeded_rerun_gives_the_same_metrics(finished_run, small_data, tmp_path):
    rerun = mmzoo.train("cnn_gru_film", small_data, epochs=2, out=str(tmp_path / "again"), seed=1, verbose=0)
    assert rerun.metrics["test"]["loss"] == finished_run.metrics["test"]["loss"]
    assert rerun.metrics["history"] == finished_run.metrics["history"]


def test_predict_from_raw_inputs(finished_run, tmp_path):
    from mmzoo.data.samples import encode_image, image_array

    path = tmp_path / "shapes.png"
    path.write_bytes(encode_image(image_array("red", (30, 40)), "png"))
    result = finished_run.predict(image=str(path), text="what colour is the circle?")
    spec = finished_run.spec
    assert result["class_name"] in spec.class_names
    assert len(result["probabilities"]) == spec.num_classes
    assert sum(result["probabilities"]) == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(ValueError, match="missing: \\['text'\\]"):
        finished_run.predict(image=str(path))
    with pytest.raises(ValueError, match="image file not found"):
        finished_run.predict(image=str(tmp_path / "nope.png"), text="hi")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="image: cannot decode"):
        finished_run.predict(image=str(bad), text="hi")


def test_cli_evaluate_and_predict(finished_run, tmp_path):
    out = subprocess.run([sys.executable, "-m", "mmzoo.cli", "evaluate", finished_run.root],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    printed = json.loads(out.stdout)
    assert printed["accuracy"] == pytest.approx(finished_run.metrics["test"]["accuracy"])
    assert set(printed["ablation"]["only"]) == {"image", "text"}


# ------------------------------------------------------------------- failing early and safely
def test_finished_run_is_not_overwritten_silently(finished_run, small_data):
    with pytest.raises(RunError, match="already holds a finished run. Pass overwrite=True"):
        mmzoo.train("cnn_gru_film", small_data, epochs=1, out=finished_run.root)


def test_unwritable_out_fails_at_the_start(small_data, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    started = time.time()
    with pytest.raises(RunError, match="Cannot write to the run folder"):
        mmzoo.train("cnn_gru_film", small_data, epochs=1, out=str(blocker / "run"))
    assert time.time() - started < 5


def test_bad_manifest_fails_before_training(tmp_path):
    manifest = tmp_path / "train.csv"
    manifest.write_text("image,text,label\nmissing.png,hello,cat\n")
    with pytest.raises(Exception, match="missing.png"):
        mmzoo.train("cnn_gru_concat", str(manifest), epochs=1, out=str(tmp_path / "run"))
    assert not os.path.exists(tmp_path / "run" / "config.json")


class DataWithNaN:
    """A minimal regression data object whose 4th training batch holds a NaN target."""

    def __init__(self):
        from mmzoo.spec import DataSpec

        self.spec = DataSpec(modalities=("tabular", "text"), tabular_dim=4, seq_len=6, vocab_size=20,
                             task="regression", num_classes=1)
        self.splits = {"train": 256, "validation": 64}

    def num_examples(self, split):
        return self.splits[split]

    def model_kwargs(self):
        return self.spec.model_kwargs()

    def dataset(self, split, batch_size=32, **kwargs):
        import tensorflow as tf

        n = self.splits[split]
        rng = np.random.default_rng(0)
        x = {"tabular": rng.standard_normal((n, 4)).astype("float32"),
             "text": rng.integers(1, 20, (n, 6)).astype("int32")}
        y = rng.standard_normal((n, 1)).astype("float32")
        if split == "train":
            y[200] = np.nan
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_state(tmp_path):
    out = str(tmp_path / "nan")
    with pytest.raises(TrainingError, match=r"the training loss became nan at epoch 1, batch 4") as info:
        mmzoo.train({"preset": "mlp_gru_concat", "head": "regression"}, DataWithNaN(), epochs=2, out=out,
                    save_every_batches=1, verbose=0)
    assert "last good state is kept" in str(info.value)
    state = json.load(open(os.path.join(out, "state", "state.json")))
    assert state["weights"] == "state-000003.weights.h5"  # saved after batches 1, 2, 3
    model = mmzoo.build("mlp_gru_concat", head="regression", **DataWithNaN().model_kwargs(), compile=False)
    model.load_weights(os.path.join(out, "state", state["weights"]))
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    assert json.load(open(os.path.join(out, "status.json")))["state"] == "failed"
    assert not os.path.exists(os.path.join(out, "model.keras"))


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_resumes_and_finishes(tfds_dir, tmp_path):
    out = str(tmp_path / "killed")
    cmd = [sys.executable, "-m", "mmzoo.cli", "train", "--model", "cnn_gru_film", "--data",
           "shapes_vqa/image_text_small", "--epochs", "4", "--out", out, "--seq-len", "12"]
    env = {**os.environ, "TFDS_DATA_DIR": tfds_dir}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_path = os.path.join(out, "state", "state.json")
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(state_path) and json.load(open(state_path))["epoch"] >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.load(open(state_path))["epoch"]
    assert 2 <= killed_at < 4
    assert not os.path.exists(os.path.join(out, "model.keras"))

    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"Resuming {out} at epoch {killed_at + 1} of 4" in again.stdout
    run = Run(out)
    assert run.dir.is_finished()
    assert [row["epoch"] for row in run.metrics["history"]] == [1, 2, 3, 4]


def test_mixed_precision_option(small_data, tmp_path):
    # (XLA: `jit=True` compiles the same train step; the jit tests in test_models.py cover
    # every custom layer under jit_compile, at a fraction of this test's cost.)
    run = mmzoo.train("cnn_gru_concat", small_data, epochs=1, out=str(tmp_path / "bf16"), precision="mixed_bfloat16",
                      batch_size=128, verbose=0)
    model = run.model
    assert model.backbone.get_layer("fusion").dtype_policy.name == "mixed_bfloat16"
    assert run.config["precision"] == "mixed_bfloat16"
    assert np.isfinite(run.metrics["test"]["loss"])
    import keras

    assert keras.mixed_precision.global_policy().name == "float32", "the global policy is restored"


@pytest.mark.slow
def test_quickstart_small_end_to_end(tfds_dir, tmp_path, capsys):
    from mmzoo.training.cli import main

    out = str(tmp_path / "qs")
    assert main(["quickstart", "--size", "small", "--epochs", "1", "--out", out, "--data-dir", tfds_dir]) == 0
    printed = capsys.readouterr().out
    assert "test accuracy:" in printed and "modality ablation" in printed
    assert "published shapes_vqa version 1" in printed
    run = Run(out)
    assert run.spec.modalities == ("audio", "image", "text")
    assert os.path.exists(os.path.join(out, "export", "shapes_vqa", "1", "saved_model.pb"))
    assert run.config["preset"] == "cnn_gru_melcnn_film"
