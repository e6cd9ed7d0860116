"""Tasks as objects: a model is a task with its backbone, head and preprocessor; manifests with
more columns than a model uses, multitask manifests, and the task-name / import-graph rules."""

import ast
import json
import os
import re

import numpy as np
import pytest

import mmzoo
from mmzoo.data.samples import encode_image, image_array, write_wav
from mmzoo.tasks.targets import targets_of

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "mmzoo")
SMALL = {"image_size": (24, 24), "seq_len": 8, "sample_rate": 8000, "audio_seconds": 0.25}
TINY_BUILD = {"encoder_options": {"text": {"embedding_dim": 16, "units": 8}}}


def write_manifest(root, n=30, audio=True, multitask=False, name="m.csv"):
    """A manifest over real PNG / WAV files: the colour of the image is the answer."""
    import csv

    colors = ["red", "green", "blue"]
    rows = []
    for i in range(n):
        color = colors[i % 3]
        image = f"img{i}.png"
        (root / image).write_bytes(encode_image(image_array(color, (20, 28), seed=i), "PNG"))
        row = {"image": image, "text": ["which colour?", "what is the colour", "colour of it"][i % 3]}
        if audio:
            t = np.arange(2000) / 8000
            write_wav(str(root / f"a{i}.wav"), 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t), 8000)
            row["audio"] = f"a{i}.wav"
        if multitask:
            row["label_answer"] = color
            row["label_score"] = f"{(i % 3) / 2 + 0.01 * i:.3f}"
        else:
            row["label"] = color
        row["split"] = "train" if i < n - 9 else ("validation" if i % 2 else "test")
        rows.append(row)
    path = root / name
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


# ----------------------------------------------------------------------------- task objects
def test_a_model_is_a_task_with_backbone_head_and_preprocessor():
    from mmzoo.backbone import Backbone
    from mmzoo.tasks import Classifier, Task
    from mmzoo.tasks.heads import Head

    vocab = ["<pad>", "<unk>", "red", "what"]
    model = mmzoo.build("cnn_gru_attention", num_classes=3, image_shape=(24, 24, 3), seq_len=6,
                        vocab_size=4, vocabulary=vocab, class_names=["a", "b", "c"])
    assert isinstance(model, Classifier) and isinstance(model, Task)
    assert isinstance(model.backbone, Backbone) and isinstance(model.head, Head)
    assert {"image_sequence", "text_sequence", "text_mask", "fused"} == set(model.backbone.output)
    assert model.preprocessor.spec.vocabulary == vocab
    # compile() with no arguments: the task's loss and metrics
    assert model.loss.__class__.__name__ == "SparseCategoricalCrossentropy"


def test_the_keras_file_carries_the_preprocessor(tmp_path):
    vocab = ["<pad>", "<unk>", "red", "what"]
    model = mmzoo.build("cnn_gru_concat", num_classes=2, image_shape=(24, 24, 3), seq_len=6, vocab_size=4,
                        vocabulary=vocab, class_names=["no", "yes"], seed=0, compile=False)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = mmzoo.load_model(path)
    assert loaded.spec.vocabulary == vocab and loaded.spec.class_names == ["no", "yes"]
    image = encode_image(image_array("red", (10, 12)), "PNG")
    x = loaded.preprocess({"image": image, "text": "what red"})
    assert x["text"].numpy().tolist() == [3, 2, 0, 0, 0, 0]
    batch = {k: v[None] for k, v in x.items()}
    np.testing.assert_array_equal(loaded(batch), model(batch))
    described = loaded.describe_prediction(loaded(batch))
    assert described["class_name"] in ("no", "yes")
    many = loaded.predict_raw({"image": [image, image], "text": ["what red", "red"]})
    assert [d["class_name"] for d in many][:1] == [described["class_name"]] and len(many) == 2
    np.testing.assert_allclose(many[0]["probabilities"], described["probabilities"], atol=1e-6)
    model.compile(optimizer="sgd")
    model.save(path)
    compiled = mmzoo.load_model(path)  # the saved compile settings come back, not the defaults
    assert compiled.optimizer.__class__.__name__ == "SGD"
    assert compiled.loss.__class__.__name__ == "SparseCategoricalCrossentropy"


def test_list_models_by_task(capsys):
    from mmzoo.cli import main

    classifiers, retrievers = mmzoo.list_models(task="classifier"), mmzoo.list_models(task="retrieval")
    captioners = mmzoo.list_models(task="captioning")
    assert captioners == mmzoo.list_models(task="captioner") == [
        "cnn_gru_captioner", "cnn_transformer_captioner", "melcnn_transformer_captioner"]
    assert sorted(classifiers + retrievers + captioners) == sorted(mmzoo.list_models())
    assert not set(classifiers) & set(retrievers)
    assert mmzoo.list_models(task="retriever") == ["cnn_gru_clip", "cnn_gru_siglip", "melcnn_gru_clip"]
    assert mmzoo.list_models(task="recommender") == ["bag_cnn_gru_twotower", "gru_cnn_gru_twotower"]
    assert sorted(retrievers) == sorted(mmzoo.list_models(task="retriever") + mmzoo.list_models(task="recommender"))
    assert all(mmzoo.describe(n)["task"] == "classifier" for n in classifiers)
    with pytest.raises(ValueError, match=r"Unknown task 'ranker'. Tasks with presets: \['captioner', 'classifier', "
                       r"'recommender', 'retriever'\]"):
        mmzoo.list_models(task="ranker")
    assert main(["list", "--task", "classifier"]) == 0
    out = capsys.readouterr().out
    assert "cnn_gru_multitask" in out and "cnn_gru_clip" not in out
    assert main(["list", "--task", "retrieval"]) == 0
    out = capsys.readouterr().out
    assert "cnn_gru_clip" in out and "cnn_gru_multitask" not in out
    assert {"classifier", "retriever", "recommender"} <= set(mmzoo.list_parts("task"))


# ----------------------------------------------------------------------------- manifests
def test_an_image_text_preset_ignores_an_audio_column_and_names_it(tmp_path):
    manifest = write_manifest(tmp_path)
    run = mmzoo.train("cnn_gru_concat", manifest, epochs=1, out=str(tmp_path / "run"), verbose=0,
                      data_kwargs=SMALL, build_kwargs=TINY_BUILD)
    assert run.spec.modalities == ("image", "text")
    report = open(os.path.join(run.root, "report.md"), encoding="utf-8").read()
    assert "columns this model does not use (ignored): ['audio']" in report
    assert run.metrics["data"]["notes"] == ["columns this model does not use (ignored): ['audio']"]
    result = mmzoo.export(run.root, out=str(tmp_path / "models"), formats="saved_model,tflite",
                          num_samples=8, warmup_requests=2)
    assert all(check["passed"] for check in result.parity.values())
    assert {"saved_model", "tflite_float32"} <= set(result.artifacts)


def test_an_audio_preset_on_a_manifest_without_audio_fails_before_training(tmp_path):
    manifest = write_manifest(tmp_path, audio=False)
    out = tmp_path / "run"
    with pytest.raises(mmzoo.data.DataError, match=r"m.csv: the model needs input columns \['audio'\]"):
        mmzoo.train("cnn_gru_melcnn_concat", manifest, epochs=1, out=str(out), verbose=0, data_kwargs=SMALL)
    assert not os.path.exists(out / "model.keras") and not os.path.exists(out / "history.csv")


def test_multitask_trains_from_two_label_columns_and_exports_both_outputs(tmp_path):
    import tensorflow as tf

    manifest = write_manifest(tmp_path, audio=False, multitask=True)
    data = mmzoo.data.from_manifest(manifest, task="multitask", tasks={"answer": {"task": "classification"},
                                                                       "score": {"task": "regression"}}, **SMALL)
    assert data.spec.task == "multitask"
    assert [(t.name, t.kind, t.num_classes) for t in targets_of(data.spec)] == [
        ("answer", "classification", 3), ("score", "regression", 1)]
    _, labels = next(iter(data.dataset("train", batch_size=4, shuffle=False)))
    assert labels["answer"].dtype == tf.int32 and labels["score"].shape == (4, 1)

    run = mmzoo.train("cnn_gru_multitask", manifest, epochs=1, out=str(tmp_path / "run"), verbose=0,
                      data_kwargs=SMALL, build_kwargs=TINY_BUILD)
    assert run.spec.tasks["answer"]["class_names"] == ["blue", "green", "red"]
    assert set(run.metrics["test"]) == {"answer", "score"}
    assert "accuracy" in run.metrics["test"]["answer"] and "mae" in run.metrics["test"]["score"]
    report = open(os.path.join(run.root, "report.md"), encoding="utf-8").read()
    assert "### answer" in report and "### score" in report

    result = mmzoo.export(run.root, out=str(tmp_path / "models"), formats="saved_model", num_samples=8,
                          warmup_requests=2)
    outputs = result.card["signatures"]["saved_model"]["serving_default"]["outputs"]
    assert {"answer_probabilities", "answer_class_id", "answer_class_name", "score_value"} == set(outputs)
    loaded = tf.saved_model.load(result.artifacts["saved_model"])
    image = encode_image(image_array("green", (20, 28)), "PNG")
    out = loaded.signatures["serving_default"](image=tf.constant([image]), text=tf.constant(["which colour?"]))
    assert out["answer_class_name"].numpy()[0].decode() in ("blue", "green", "red")
    assert out["score_value"].shape == (1, 1)


def test_multitask_manifest_errors_name_the_column(tmp_path):
    manifest = write_manifest(tmp_path, audio=False, multitask=True)
    with pytest.raises(mmzoo.data.DataError, match=r"the model predicts \['answer', 'count'\] but the manifest "
                                                   r"has no column \['label_count'\]"):
        mmzoo.data.from_manifest(manifest, task="multitask", tasks={"answer": {"task": "classification"},
                                                                    "count": {"task": "regression"}}, **SMALL)
    data = mmzoo.data.from_manifest(manifest, **SMALL)  # label_* columns only: multitask, kinds inferred
    assert {t.name: t.kind for t in targets_of(data.spec)} == {"answer": "classification", "score": "regression"}


# ----------------------------------------------------------------------------- the rules
TASK_NAMES = r"(classification|multilabel|regression|multitask)"
COMPARISON = re.compile(
    rf"""(==|!=|\bnot in\b|\bin\b)\s*[\(\[\{{]?\s*["']{TASK_NAMES}["']|["']{TASK_NAMES}["']\s*(==|!=)"""
)


def _package_files():
    for folder, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith(".py"):
                yield os.path.join(folder, f)


def test_no_task_name_comparison_outside_the_task_modules():
    found = []
    for path in _package_files():
        rel = os.path.relpath(path, ROOT)
        if rel.startswith(os.path.join("mmzoo", "tasks") + os.sep):
            continue
        for number, line in enumerate(open(path, encoding="utf-8"), start=1):
            if COMPARISON.search(line.split("#")[0]):
                found.append(f"{rel}:{number}: {line.strip()}")
    assert not found, "task names compared outside mmzoo/tasks:\n" + "\n".join(found)
    # The rule can fail: it sees a comparison like the ones it forbids.
    assert COMPARISON.search('if spec.task == "regression":') and COMPARISON.search("x in ('multilabel',)")


def _module_name(path):
    rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
    return rel[: -len(".__init__")] if rel.endswith(".__init__") else rel


def _import_graph(top_level_only):
    """``{module: {imported mmzoo modules}}`` from the source (no imports executed)."""
    modules = {_module_name(p): p for p in _package_files()}
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(open(path, encoding="utf-8").read())
        nodes = tree.body if top_level_only else list(ast.walk(tree))
        deps = set()
        for node in nodes:
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for t in targets:
                if t in modules and t != name:
                    deps.add(t)
                    break
        package = name.rsplit(".", 1)[0] if not path.endswith("__init__.py") else None
        graph[name] = {d for d in deps if d != package}
    return graph


def _cycles(graph):
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


@pytest.mark.parametrize("top_level_only", [True, False], ids=["module-level", "all-imports"])
def test_the_package_has_no_import_cycle(top_level_only):
    cycles = _cycles(_import_graph(top_level_only))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
    assert _cycles({"a": {"b"}, "b": {"a"}})  # the check finds a cycle when there is one


def test_the_report_and_config_record_the_task(tmp_path):
    manifest = write_manifest(tmp_path, audio=False)
    run = mmzoo.train("cnn_gru_concat", manifest, epochs=1, out=str(tmp_path / "run"), verbose=0,
                      data_kwargs=SMALL, build_kwargs=TINY_BUILD)
    assert run.metrics["task"] == "classifier" and run.metrics["target"] == "classification"
    assert json.load(open(os.path.join(run.root, "config.json")))["task"] == "classifier"


def test_mmzoo_train_multitask_from_the_command_line_then_export(tmp_path, capsys):
    import tensorflow as tf

    from mmzoo.cli import main

    manifest = write_manifest(tmp_path, audio=False, multitask=True)
    run_dir, models = str(tmp_path / "run"), str(tmp_path / "models")
    assert main(["train", "--model", "cnn_gru_multitask", "--data", manifest, "--epochs", "1", "--out", run_dir,
                 "--image-size", "24", "24", "--seq-len", "8", "--batch-size", "8"]) == 0
    printed = capsys.readouterr().out
    assert "test answer: accuracy:" in printed and "test score: metrics:" in printed
    assert main(["export", run_dir, "--out", models, "--name", "multi", "--formats", "saved_model"]) == 0
    loaded = tf.saved_model.load(os.path.join(models, "multi", "1"))
    outputs = loaded.signatures["serving_default"].structured_outputs
    assert {"answer_class_name", "answer_probabilities", "score_value"} <= set(outputs)
