"""Publishing: a trained run exported by the CLI, validated in a fresh process, versioned."""

import base64
import glob
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import mmzoo
from mmzoo.data import from_manifest, preprocess_image_bytes
from mmzoo.data.samples import write_sample_dataset
from mmzoo.export.api import ExportValidationError, export
from mmzoo.export.cli import main as export_main
from mmzoo.export.model_card import load_model_card
from mmzoo.export.tflite import TFLiteModel
from mmzoo.export.warmup import read_warmup_requests


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run directory of a briefly trained cnn_gru_concat on real PNG/JPEG/BMP/GIF files."""
    root = tmp_path_factory.mktemp("export_run")
    manifest = write_sample_dataset(str(root / "data"), n=64, modalities=("image", "text"), chinese=True)
    data = from_manifest(manifest, image_size=(32, 32), seq_len=8)
    model = mmzoo.build("cnn_gru_concat", spec=data.spec, seed=0)
    model.fit(data.dataset("train", 16, shuffle=True, seed=0), epochs=8, verbose=0)
    metrics = model.evaluate(data.dataset("test", 16), return_dict=True, verbose=0)
    run_dir = root / "run"
    run_dir.mkdir()
    model.save(str(run_dir / "model.keras"))
    data.spec.save(str(run_dir / "data_spec.json"))
    (run_dir / "metrics.json").write_text(json.dumps({"test": metrics}))
    (run_dir / "config.json").write_text(json.dumps(
        {"preset": "cnn_gru_concat", "data": {"kind": "manifest", "path": manifest}}))
    return {"dir": str(run_dir), "manifest": manifest, "data": data, "out": str(root / "models")}


@pytest.mark.slow
def test_cli_exports_validates_and_publishes_every_format(run, capsys):
    code = export_main(["export", run["dir"], "--out", run["out"], "--name", "shapes",
                        "--formats", "saved_model,tflite", "--quantize", "float16,dynamic,int8",
                        "--data", run["manifest"]])
    printed = capsys.readouterr().out
    assert code == 0, printed
    version = os.path.join(run["out"], "shapes", "1")
    assert "published shapes version 1" in printed and "ok   tflite_int8" in printed
    assert sorted(os.listdir(os.path.join(run["out"], "shapes"))) == [".mmzoo-export.lock", "1"]
    for rel in ("saved_model.pb", "variables", "assets.extra/tf_serving_warmup_requests",
                "assets.extra/mmzoo.json", "litert/model_float32.tflite", "litert/model_float16.tflite",
                "litert/model_dynamic.tflite", "litert/model_int8.tflite", "litert/labels.txt",
                "litert/vocab.txt", "litert/tokenizer.json", "litert/tokenizer.py", "litert/mmzoo.json"):
        assert os.path.exists(os.path.join(version, rel)), rel

    card = load_model_card(version)
    spec = run["data"].spec
    assert card["version"] == 1 and card["preset"] == "cnn_gru_concat"
    assert card["class_names"]["output"] == spec.class_names
    assert card["data_spec"]["vocabulary"] == spec.vocabulary
    assert card["metrics"]["test"]["accuracy"] >= 0.0
    assert card["versions"]["tensorflow"].startswith("2.21")
    serving = card["signatures"]["saved_model"]["serving_default"]
    string_batch = {"dtype": "string", "shape": [-1]}
    assert serving["inputs"] == {"image": string_batch, "text": string_batch}
    assert set(serving["outputs"]) == {"probabilities", "class_id", "class_name"}
    assert card["signatures"]["tflite"]["serving_default"]["inputs"]["text"] == {"dtype": "int32", "shape": [-1, 8]}
    validation = card["validation"]
    assert validation["passed"] and validation["fresh_process"] and validation["process"] != os.getpid()
    assert validation["inputs"]["validation"] == "data"
    checks = {c["check"]: c for c in validation["checks"]}
    assert set(checks) == {"saved_model.serving_default", "saved_model.warmup_requests",
                           "saved_model.predict_preprocessed", "tflite_float32", "tflite_float16",
                           "tflite_dynamic", "tflite_int8"}
    for name in ("saved_model.serving_default", "saved_model.warmup_requests",
                 "saved_model.predict_preprocessed", "tflite_float32"):
        assert checks[name]["max_abs_diff"] <= 1e-4, checks[name]
    assert checks["tflite_int8"]["agreement"] >= 0.98
    assert checks["saved_model.predict_preprocessed"]["examples"] == run["data"].splits["test"]
    sizes = {k: v["bytes"] for k, v in card["artifacts"].items() if "bytes" in v}
    assert sizes["tflite_int8"] < 0.4 * sizes["tflite_float32"]
    assert sizes["tflite_float16"] < 0.6 * sizes["tflite_float32"]
    int8 = card["artifacts"]["tflite_int8"]
    assert int8["int8_mode"] in ("full", "selective")  # no layer here is float by rule: only if the search adds one
    assert (int8["int8_mode"] == "full") == (not int8["float_layers"])
    assert int8["calibration_check"]["agreement"] >= 0.98 and int8["worst_layers"]
    # Figures on the labelled test split beside agreement: the Keras model's and each artifact's.
    assert validation["inputs"]["labelled"] and 0 <= validation["keras_scores"]["accuracy"] <= 1
    assert abs(checks["tflite_int8"]["scores"]["accuracy"] - validation["keras_scores"]["accuracy"]) <= 0.05
    assert checks["saved_model.predict_preprocessed"]["scores"] == validation["keras_scores"]
    assert "test accuracy=" in printed and "Keras test accuracy" in printed
    # The card's variant table: what a person picks a flatbuffer by.
    table = card["variants"]
    assert sorted(table) == ["tflite_dynamic", "tflite_float16", "tflite_float32", "tflite_int8"]
    assert table["tflite_int8"]["agreement"] == checks["tflite_int8"]["agreement"]
    assert table["tflite_int8"]["test_scores"] == checks["tflite_int8"]["scores"]
    assert table["tflite_int8"]["size_vs_float32"] == round(sizes["tflite_int8"] / sizes["tflite_float32"], 3)
    assert table["tflite_dynamic"]["worst_layers"] and table["tflite_float32"]["float_layers"] == []
    assert not [op for a in card["artifacts"].values() for op in a.get("ops", []) if op.startswith("Flex")]

    # Warmup: real PredictionLog records for this model name and signature.
    records = read_warmup_requests(os.path.join(version, "assets.extra", "tf_serving_warmup_requests"))
    assert len(records) == 4 and {r["model_name"] for r in records} == {"shapes"}
    assert records[0]["inputs"]["image"][0][:4] == b"\x89PNG"

    # The card's REST bodies are valid TF Serving requests (b64 binary).
    import tensorflow as tf

    loaded = tf.saved_model.load(version)
    row = card["rest"]["row"]["instances"][0]
    columnar = card["rest"]["columnar"]["inputs"]
    assert columnar["text"] == [row["text"]] and set(row["image"]) == {"b64"}
    image = base64.b64decode(row["image"]["b64"])
    out = loaded.signatures["serving_default"](image=tf.constant([image]), text=tf.constant([row["text"]]))
    assert out["class_name"].numpy()[0].decode() in spec.class_names

    # On device: the shipped tokenizer + decoded pixels into the float32 flatbuffer give the
    # SavedModel's probabilities.
    tokenizer_file = os.path.join(version, "litert", "tokenizer.py")
    module_spec = importlib.util.spec_from_file_location("device_tokenizer", tokenizer_file)
    device_tokenizer = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(device_tokenizer)
    ids = device_tokenizer.Tokenizer.load(os.path.join(version, "litert"))(row["text"])
    pixels = preprocess_image_bytes(tf.constant(image), spec).numpy()
    lite = TFLiteModel(os.path.join(version, "litert", "model_float32.tflite"))
    lite_out = lite({"image": pixels[None], "text": np.array([ids], np.int32)})
    np.testing.assert_allclose(lite_out["probabilities"], out["probabilities"].numpy(), atol=1e-4, rtol=0)


@pytest.mark.slow
def test_next_export_is_a_new_version_and_a_failed_check_publishes_nothing(run):
    out = os.path.join(run["out"], "api")
    first = export(run["dir"], out=out, name="shapes", formats="tflite", validate="inline")
    # The run's config.json names its data: validation used the test split, not samples.
    assert first.version == 1 and first.card["validation"]["inputs"]["validation"] == "data"
    stamp = os.path.getmtime(first.artifacts["tflite_float32"])
    second = export(run["dir"], out=out, name="shapes", formats=["tflite"], validate="inline")
    # TFLite-only versions take non-numeric folders: TF Serving loads every numeric one.
    assert first.path.endswith(os.path.join("shapes", "litert-1"))
    assert second.version == 2 and second.path.endswith(os.path.join("shapes", "litert-2"))
    assert os.path.getmtime(first.artifacts["tflite_float32"]) == stamp
    with pytest.raises(ValueError, match="already exists"):
        export(run["dir"], out=out, name="shapes", formats="tflite", version=1, validate=False)

    with pytest.raises(ExportValidationError) as info:
        export(run["dir"], out=out, name="shapes", formats="tflite", quantize="dynamic",
               min_agreement=1.01, validate="inline")
    message = str(info.value)
    assert "nothing was published" in message
    assert "tflite_dynamic: top-1 agreement" in message and "< 101%" in message
    # What to do about it: where the error enters and the option that publishes the rest.
    assert "layers that lose the most: " in message and "--drop-failed-variants" in message
    assert "test accuracy: " in message
    failed = {c["check"]: c for c in info.value.report["checks"]}
    assert failed["tflite_float32"]["passed"] and not failed["tflite_dynamic"]["passed"]
    assert sorted(os.listdir(os.path.join(out, "shapes"))) == [".mmzoo-export.lock", "litert-1", "litert-2"]

    third = export(run["dir"], out=out, name="shapes", formats="tflite", quantize="dynamic",
                   min_agreement=1.01, validate="inline", drop_failed_variants=True)
    assert third.version == 3 and sorted(third.artifacts) == ["tflite_float32"]
    assert sorted(os.listdir(os.path.join(third.path, "litert"))) == [
        "labels.txt", "mmzoo.json", "model_float32.tflite", "tokenizer.json", "tokenizer.py", "vocab.txt"]
    dropped = load_model_card(third.path)["validation"]["dropped"]
    assert list(dropped) == ["tflite_dynamic"] and dropped["tflite_dynamic"]["agreement"] <= 1.0
    assert dropped["tflite_dynamic"]["worst_layers"] and "< 101%" in dropped["tflite_dynamic"]["failure"]
    assert "dropped tflite_dynamic" in third.summary()
    # A failed float32 artifact is never dropped: it still publishes nothing.
    with pytest.raises(ExportValidationError, match="nothing was published"):
        export(run["dir"], out=out, name="shapes", formats="tflite", tolerance=-1.0, validate="inline",
               drop_failed_variants=True)


def test_bad_arguments_are_refused_before_any_work(run, tmp_path):
    with pytest.raises(ValueError, match=r"Unknown formats \['onnx'\]"):
        export(run["dir"], out=str(tmp_path), formats="saved_model,onnx")
    with pytest.raises(ValueError, match=r"Unknown quantizations \['int4'\]"):
        export(run["dir"], out=str(tmp_path), quantize="int4")
    with pytest.raises(ValueError, match="needs 'tflite' in formats"):
        export(run["dir"], out=str(tmp_path), formats="saved_model", quantize="int8")
    with pytest.raises(ValueError, match=r"name must be"):
        export(run["dir"], out=str(tmp_path), name="../evil")
    empty = tmp_path / "not_a_run"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"not a run directory: \['model.keras', 'data_spec.json'\] missing"):
        export(str(empty), out=str(tmp_path))
    model = mmzoo.build("cnn_gru_concat", compile=False, image_shape=(32, 32, 3), seq_len=8, vocab_size=50)
    with pytest.raises(ValueError, match="no vocabulary"):
        export(model, out=str(tmp_path), formats="tflite")
    assert not glob.glob(str(tmp_path / "**" / "[0-9]*"), recursive=True)


def test_importing_mmzoo_export_does_not_import_tensorflow():
    code = ("import sys, argparse, mmzoo, mmzoo.export; from mmzoo.export.cli import add_export_commands; "
            "p = argparse.ArgumentParser(); add_export_commands(p.add_subparsers()); "
            "assert callable(mmzoo.export); print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


class LabelsFormat(mmzoo.export.formats.ExportFormat):
    """A format written in a test: the class names as JSON, checked against the outputs."""

    name = "labels_json"
    card_dir = "labels"

    def write(self, job):
        os.makedirs(os.path.join(job.staging, self.card_dir), exist_ok=True)
        path = os.path.join(job.staging, self.card_dir, "labels.json")
        with open(path, "w") as f:
            json.dump(job.model.output_plan(), f)
        return mmzoo.export.formats.Written(
            artifacts={self.name: path},
            card={self.name: {"path": "labels/labels.json", "bytes": os.path.getsize(path)}},
            signatures={"plan": "labels.json"}, checks={self.name: {"format": self.name, "path": path}})

    def checks(self, key, entry, ctx):
        def same_plan():
            with open(entry["path"]) as f:
                if json.load(f) != ctx.plan:
                    raise ValueError("labels.json differs from the outputs")
            return {"max_abs_diff": 0.0, "mean_abs_diff": 0.0, "agreement": None, "nrmse": None}

        return [(f"{key}.plan", "exact", 1, same_plan)]


def test_a_new_export_format_is_one_class(run, tmp_path):
    from mmzoo.registry import EXPORT_FORMATS

    mmzoo.export.formats.register_format(LabelsFormat())
    try:
        result = export(run["dir"], out=str(tmp_path), name="with_labels", formats="tflite,labels_json",
                        validate="inline", num_samples=8)
    finally:
        EXPORT_FORMATS.remove("labels_json")
    assert os.path.basename(result.path) == "litert-1"  # nothing TF Serving loads
    assert result.parity["labels_json.plan"]["passed"] and result.parity["tflite_float32"]["passed"]
    assert json.load(open(result.artifacts["labels_json"]))[0]["class_names"] == run["data"].class_names
    card = json.load(open(os.path.join(result.path, "labels", "mmzoo.json")))
    assert card["artifacts"]["labels_json"]["path"] == "labels/labels.json" and card["signatures"]["labels_json"]
