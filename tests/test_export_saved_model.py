"""SavedModel export: raw-input signature with preprocessing inside, named errors, warmup."""

import io
import wave

import numpy as np
import pytest
import tensorflow as tf
from helpers import tiny_overrides

import mmzoo
from mmzoo.export import warmup
from mmzoo.export.examples import preprocess_examples, raw_batch, synthetic_examples
from mmzoo.export.outputs import keras_reference, output_plan, primary_name
from mmzoo.export.saved_model import write_saved_model
from mmzoo.export.source import serving_model

VOCAB = ["<pad>", "<unk>"] + [f"w{i}" for i in range(30)] + ["红", "色", ",", "."]

# One of each modality and head kind: audio+image+text classification, tabular+text,
# image+tabular regression, multilabel, multitask.
SUBSET = ["cnn_gru_melcnn_concat", "mlp_gru_concat", "cnn_mlp_regression", "cnn_gru_multilabel",
          "cnn_gru_multitask"]


def tiny(name):
    return mmzoo.build(name, compile=False, seed=0, vocabulary=VOCAB, **tiny_overrides(name))


def call(loaded, signature, batch):
    out = loaded.signatures[signature](**{k: tf.constant(v) for k, v in batch.items()})
    return {k: v.numpy() for k, v in out.items()}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """SavedModels of the subset, written once: {name: (model, loaded, signatures, path)}."""
    root = tmp_path_factory.mktemp("saved_models")
    out = {}
    for name in SUBSET:
        model = tiny(name)
        path = str(root / name)
        signatures = write_saved_model(model, model.spec, path)
        out[name] = (model, tf.saved_model.load(path), signatures, path)
    return out


@pytest.mark.parametrize("name", SUBSET)
def test_raw_signature_matches_keras_on_real_files(exported, name):
    model, loaded, signatures, _ = exported[name]
    spec = model.spec
    rows = synthetic_examples(spec, n=6, seed=2)  # real PNG / JPEG / WAV bytes, other sizes
    if "image" in spec.modalities:
        assert rows[0]["image"][:4] == b"\x89PNG" and rows[1]["image"][:3] == b"\xff\xd8\xff"
    if "audio" in spec.modalities:
        assert rows[0]["audio"][:4] == b"RIFF"
    plan = output_plan(spec)
    reference = keras_reference(model, preprocess_examples(rows, spec), plan)
    out = call(loaded, "serving_default", raw_batch(rows, spec))
    for e in plan:
        key = primary_name(e)
        np.testing.assert_allclose(out[key], reference[key], atol=1e-4, rtol=0)
        if e["task"] == "classification":
            ids = out[e["prefix"] + "class_id"]
            np.testing.assert_array_equal(ids, reference[key].argmax(-1))
            assert [n.decode() for n in out[e["prefix"] + "class_name"]] == [e["class_names"][i] for i in ids]
        if e["task"] == "multilabel":
            np.testing.assert_array_equal(out[e["prefix"] + "predicted"], (reference[key] >= 0.5).astype(int))
            names = [n.decode() for n in out[e["prefix"] + "predicted_names"]]
            expected = [",".join(c for c, on in zip(e["class_names"], row >= 0.5) if on) for row in reference[key]]
            assert names == expected
    # The second signature takes the preprocessed tensors and agrees.
    pre = call(loaded, "predict_preprocessed", preprocess_examples(rows, spec))
    for e in plan:
        np.testing.assert_allclose(pre[primary_name(e)], reference[primary_name(e)], atol=1e-4, rtol=0)
    # Readable, stable names.
    sig = signatures["serving_default"]
    assert sorted(sig["inputs"]) == sorted(spec.modalities)
    assert {"image": "string", "text": "string", "audio": "string", "tabular": "float32"}.items() >= {
        k: v["dtype"] for k, v in sig["inputs"].items()}.items()
    assert set(signatures) == {"serving_default", "predict_preprocessed", "preprocess"}


def expected_outputs(name):
    return {
        "cnn_gru_melcnn_concat": {"probabilities", "class_id", "class_name"},
        "mlp_gru_concat": {"probabilities", "class_id", "class_name"},
        "cnn_mlp_regression": {"value"},
        "cnn_gru_multilabel": {"probabilities", "predicted", "predicted_names"},
        "cnn_gru_multitask": {"answer_probabilities", "answer_class_id", "answer_class_name", "score_value"},
    }[name]


@pytest.mark.parametrize("name", SUBSET)
def test_output_names_per_head(exported, name):
    assert set(exported[name][2]["serving_default"]["outputs"]) == expected_outputs(name)


def _empty_wav():
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"")
    return buf.getvalue()


def _bad(loaded, batch, **changes):
    batch = dict(batch)
    for key, (position, value) in changes.items():
        column = batch[key].copy()
        column[position] = value
        batch[key] = column
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        call(loaded, "serving_default", batch)
    return str(info.value)


def test_bad_inputs_fail_with_invalid_argument_naming_the_input(exported):
    model, loaded, _, _ = exported["cnn_gru_melcnn_concat"]
    spec = model.spec
    rows = synthetic_examples(spec, n=4, seed=1)
    batch = raw_batch(rows, spec)
    png, jpeg = rows[0]["image"], rows[1]["image"]
    message = _bad(loaded, batch, image=(1, b"hello, I am not an image"))
    assert "Invalid input <image>" in message and "Positions in the batch:] [1]" in message
    assert "Invalid input <image>" in _bad(loaded, batch, image=(2, png[: len(png) // 2]))  # truncated PNG
    assert "Invalid input <image>" in _bad(loaded, batch, image=(3, jpeg[: len(jpeg) // 2]))  # truncated JPEG
    assert "Invalid input <image>" in _bad(loaded, batch, image=(0, b""))
    message = _bad(loaded, batch, text=(2, b"  \t "))
    assert "Invalid input <text>: empty text" in message and "[2]" in message
    # The other files of the batch take the batch WAV decoder; positions are the batch's.
    assert "Invalid input <audio>" in _bad(loaded, batch, audio=(0, png))  # a PNG is not a WAV
    message = _bad(loaded, batch, audio=(1, b"RIFF\x10\x00\x00\x00WAVEjunk"))
    assert "Invalid input <audio>" in message and "Positions in the batch:] [1]" in message
    message = _bad(loaded, batch, audio=(3, _empty_wav()))
    assert "Invalid input <audio>" in message and "Positions in the batch:] [3]" in message
    one = {k: v[:1] for k, v in batch.items()}  # one example takes a sequential decode
    message = _bad(loaded, one, image=(0, png[:100]))
    assert "Invalid input <image>" in message and "Positions in the batch:] [0]" in message
    short = dict(batch, text=batch["text"][:2])
    with pytest.raises(tf.errors.InvalidArgumentError, match="same number of examples"):
        call(loaded, "serving_default", short)
    # The good batch still works, and no garbage comes out of a partly bad one.
    assert call(loaded, "serving_default", batch)["probabilities"].shape == (4, 3)


def test_non_finite_tabular_is_rejected(exported):
    model, loaded, _, _ = exported["mlp_gru_concat"]
    batch = raw_batch(synthetic_examples(model.spec, n=3), model.spec)
    batch["tabular"][1, 2] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Invalid input <tabular>.*\[1\]"):
        call(loaded, "serving_default", batch)


def test_preprocess_signature_matches_data_pipeline_tokenizer_and_decoders(exported):
    from mmzoo.data import ReferenceTokenizer

    model, loaded, _, _ = exported["cnn_gru_melcnn_concat"]
    spec = model.spec
    rows = synthetic_examples(spec, n=3, seed=4)
    rows[0]["text"] = "W1, w2 红色. W3!"
    rows[1]["text"] = "w7\u3000w8\tw9 UNKNOWN"
    rows[2]["audio"] += b"LIST\x04\x00\x00\x00abcd"  # decoded one by one, the others at once
    out = call(loaded, "preprocess", raw_batch(rows, spec))
    expected = preprocess_examples(rows, spec)
    for m in spec.modalities:
        np.testing.assert_array_equal(out[m], expected[m])
    tok = ReferenceTokenizer.from_spec(spec)
    assert out["text"].tolist() == [tok(r["text"]) for r in rows]


def test_gpu_trained_model_exports_without_cudnn_kernels(monkeypatch):
    # Pretend a GPU is visible while tracing: Keras then bakes CudnnRNN ops into the graph.
    import importlib

    tf_rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")
    recurrent = importlib.import_module("mmzoo.layers.recurrent")

    monkeypatch.setattr(tf_rnn, "_is_gpu_available", lambda: True)
    monkeypatch.setattr(recurrent, "_gpu_visible", lambda: True)  # mmzoo's FastGRU
    model = tiny("cnn_gru_crnn_recurrent")  # the CRNN's BiGRU (no mask) takes the cuDNN path
    spec = model.spec
    specs = {m: tf.TensorSpec([None] + list(s), spec.input_dtypes()[m]) for m, s in spec.input_shapes().items()}

    def op_types(m):
        graph = tf.function(lambda x: m(x, training=False)).get_concrete_function(specs).graph.as_graph_def()
        ops = {n.op for n in graph.node}
        for f in graph.library.function:
            ops |= {n.op for n in f.node_def}
        return ops

    assert any(op.startswith("CudnnRNN") for op in op_types(model))  # the trap is real
    assert not any(op.startswith("CudnnRNN") for op in op_types(serving_model(model)))


def test_warmup_records_use_the_serving_protos(tmp_path):
    batch = {"image": np.array([b"\x89PNG\r\n\x1a\n\x00"], dtype=object),
             "text": np.array(["红色 circle".encode()], dtype=object),
             "tabular": np.ones((1, 3), np.float32)}
    path = str(tmp_path / "tf_serving_warmup_requests")
    assert warmup.write_warmup_requests(path, [batch, batch], "shapes") == 2
    records = warmup.read_warmup_requests(path)
    assert [r["model_name"] for r in records] == ["shapes", "shapes"]
    assert records[0]["signature_name"] == "serving_default"
    assert records[0]["inputs"]["image"].tolist() == [b"\x89PNG\r\n\x1a\n\x00"]
    np.testing.assert_array_equal(records[1]["inputs"]["tabular"], batch["tabular"])
    # The fallback definitions give the same bytes as the official tensorflow-serving-api protos.
    PredictionLog, PredictLog, PredictRequest = warmup._fallback_protos()
    request = PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = "shapes", "serving_default"
    for k, v in batch.items():
        request.inputs[k].ParseFromString(tf.make_tensor_proto(v).SerializeToString())
    fallback = PredictionLog(predict_log=PredictLog(request=request)).SerializeToString(deterministic=True)
    official = warmup.make_prediction_logs([batch], "shapes")[0].SerializeToString(deterministic=True)
    assert fallback == official
    if warmup.protos_source() == "tensorflow-serving-api":
        from tensorflow_serving.apis import prediction_log_pb2

        log = prediction_log_pb2.PredictionLog.FromString(official)
        assert log.predict_log.request.model_spec.name == "shapes"
