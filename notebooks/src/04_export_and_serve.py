# Source of notebooks/04_export_and_serve.ipynb (percent format); build with notebooks/build_notebooks.py.

# %% [markdown]
# # Export and serve: TF Serving and LiteRT
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({COLAB_URL})
#
# A trained mmzoo run becomes two deployable artifacts with one call:
#
# * a **SavedModel** for TF Serving whose default signature takes **raw inputs** (PNG/JPEG
#   bytes, question strings, WAV bytes): decoding, resizing and tokenization run inside the
#   model, exactly as in training, so clients send files and text, not tensors;
# * **TFLite flatbuffers** for LiteRT (float32, and quantized float16 / dynamic / int8), with
#   the tokenizer, vocabulary and labels beside them for a device app.
#
# Every artifact is checked against the Keras model in a fresh process before the version is
# published. In this notebook you:
#
# 1. train a small model and export it (SavedModel + TFLite, int8 included);
# 2. inspect the signatures and the model card;
# 3. call the raw-input signature;
# 4. build the TF Serving REST request bodies (row and columnar, binary as base64);
# 5. replay the warmup requests shipped with the model;
# 6. run the int8 TFLite model through LiteRT with the shipped tokenizer, and compare it with
#    the float32 model and with Keras.
#
# CPU runtime: a few minutes. GPU / TPU: see [the end](#gpu-tpu).

# %%
# Install mmzoo when it is missing (Colab). Locally, from a clone: pip install -e ".[notebooks]"
try:
    import mmzoo
except ImportError:
    %pip install -q "mmzoo[lite] @ git+https://github.com/mmzoo-dev/mmzoo.git"
    import importlib

    importlib.invalidate_caches()
    import mmzoo
print("mmzoo", mmzoo.__version__)

# %% [markdown]
# ## Settings

# %%
import os

SMALL = True  # False: validate on all 1,000 test examples instead of 500
TEST = os.environ.get("MMZOO_NOTEBOOK_TEST") == "1"  # set by mmzoo's test suite

# The full config's test split judges the quantized models (generated offline in ~10 s): on the
# small config's 128 examples one changed answer is 0.8 points of the 98% gate.
CONFIG = "image_text"
VALIDATION_EXAMPLES = 500 if SMALL else 1000
PRESET = "cnn_gru_film"
QUANTIZE = "int8" if TEST else "float16,dynamic,int8"  # TFLite variants beside float32
NAME = "shapes"  # the model name TF Serving serves it under
OUT = "export/models"
DATA_DIR = os.environ.get("TFDS_DATA_DIR")  # None: ~/tensorflow_datasets

# %% [markdown]
# ## 1. A trained model, and its export
#
# mmzoo ships weights for a few presets, trained on the full shapes_vqa config
# (`mmzoo list` shows them in the `pretrained` column). `cnn_gru_film` reaches about 97% on
# its test split, so we export a model that actually works. The data spec (image size,
# vocabulary, class names) comes with the weights: load the data with it.

# %%
import mmzoo.datasets

model = mmzoo.build(PRESET, weights="shapes_vqa")
spec = model.spec
data = mmzoo.datasets.load("shapes_vqa", config=CONFIG, data_dir=DATA_DIR, spec=spec)
keras_accuracy = model.evaluate(data.dataset("test", batch_size=128), verbose=0, return_dict=True)["accuracy"]
print(f"{PRESET} with shapes_vqa weights: test accuracy {keras_accuracy:.3f} on {data.splits['test']} examples")

# %% [markdown]
# `mmzoo.export` takes a **run folder** (`mmzoo.export("runs/exp1", ...)`, or
# `mmzoo export runs/exp1 --out export/models --name shapes --quantize int8` on the command
# line; see [05_extend_the_zoo](05_extend_the_zoo.ipynb)) or, as here, a model. It writes the
# next integer version, `export/models/shapes/1/`. `data=` gives the int8 calibration
# examples (its train split) and the validation examples (its test split).
#
# A quantized flatbuffer is published only if its top-1 answer agrees with the Keras model's
# on at least 98% of the validation examples. Full int8 keeps the layers that quantize badly
# in float (attention, layer norm, the audio front end; for this FiLM model the search also
# keeps its conditioning in float) and says so in the summary below. A failed check raises
# `mmzoo.export.ExportValidationError` naming the variant, the figures and the layers that
# lose the most, and publishes nothing (`drop_failed_variants=True` publishes the rest).

# %%
import mmzoo.export

result = mmzoo.export(model, out=OUT, name=NAME, formats="saved_model,tflite", quantize=QUANTIZE,
                      data=data, num_samples=VALIDATION_EXAMPLES)
print(result.summary())

# %%
for folder, _, files in sorted(os.walk(result.path)):
    depth = os.path.relpath(folder, result.path).count(os.sep) + (folder != result.path)
    print("    " * depth + os.path.basename(folder) + "/")
    for f in sorted(files):
        print("    " * (depth + 1) + f"{f}  ({os.path.getsize(os.path.join(folder, f)) / 1e3:,.0f} kB)")

# %% [markdown]
# ## 2. Signatures and the model card
#
# Three signatures: `serving_default` (raw inputs), `predict_preprocessed` (the model's own
# tensors) and `preprocess` (raw inputs → model tensors, to debug a client).
# `saved_model_cli` (installed with TensorFlow) shows them as TF Serving sees them:

# %%
!saved_model_cli show --dir {result.path} --tag_set serve --signature_def serving_default

# %%
import tensorflow as tf

loaded = tf.saved_model.load(result.path)
for name, fn in loaded.signatures.items():
    inputs = {k: f"{v.dtype.name}{v.shape.as_list()}" for k, v in fn.structured_input_signature[1].items()}
    outputs = {k: f"{v.dtype.name}{v.shape.as_list()}" for k, v in fn.structured_outputs.items()}
    print(f"{name}\n  inputs:  {inputs}\n  outputs: {outputs}")

# %% [markdown]
# The model card, `assets.extra/mmzoo.json`, says what the version is (preset, data spec with
# the vocabulary, class names, the run's metrics, package versions) and how well each
# artifact matched the Keras model:

# %%
card = mmzoo.export.load_model_card(result.path)
print(card["name"], card["version"], card["preset"], card["versions"]["tensorflow"])
for check in card["validation"]["checks"]:
    print(f"{'ok  ' if check['passed'] else 'FAIL'} {check['check']:<34} max|diff|={check['max_abs_diff']:.2e}  "
          f"top-1 agreement={check['agreement']:.1%}  ({check['examples']} examples)")

# %% [markdown]
# ## 3. Call the raw-input signature
#
# Test pictures as PNG bytes and their questions as strings: what a client sends.

# %%
import numpy as np
from PIL import Image

from mmzoo.datasets import ANSWERS

builder = mmzoo.datasets.builder("shapes_vqa", config=CONFIG, data_dir=DATA_DIR)
test = list(builder.as_dataset(split="test").as_numpy_iterator())
pngs = [tf.io.encode_png(ex["image"]).numpy() for ex in test]
questions = [ex["question"].decode() for ex in test]
truth = np.array([ex["answer"] for ex in test])

serving_default = loaded.signatures["serving_default"]
out = serving_default(image=tf.constant(pngs[:4]), text=tf.constant(questions[:4]))
for q, name, p, t in zip(questions, out["class_name"].numpy(), out["probabilities"].numpy(), truth):
    print(f"{q:<45} → {name.decode():<8} p={p.max():.2f}   (true: {ANSWERS[t]})")

# %% [markdown]
# The whole test split through the SavedModel gives the Keras model's test accuracy: the
# preprocessing inside the SavedModel is the training pipeline's.

# %%
served = serving_default(image=tf.constant(pngs), text=tf.constant(questions))
saved_model_probs = served["probabilities"].numpy()
print(f"SavedModel accuracy on {len(test)} raw test examples: {np.mean(saved_model_probs.argmax(1) == truth):.3f}; "
      f"Keras on the data pipeline: {keras_accuracy:.3f}")

# %% [markdown]
# ## 4. TF Serving REST request bodies
#
# TF Serving's REST API (`POST /v1/models/shapes:predict`) takes JSON in one of two layouts.
# Binary inputs (images, WAV files) travel base64-encoded as `{"b64": "..."}`:
#
# * **row** (`instances`): a list of examples, each a dict of inputs; the response is
#   `{"predictions": [{output: value, ...}, ...]}`;
# * **columnar** (`inputs`): a dict of inputs, each a list over the batch; the response is
#   `{"outputs": {output: [...], ...}}`.

# %%
import base64
import json


def b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode("ascii")}


row_body = {"signature_name": "serving_default",
            "instances": [{"image": b64(p), "text": q} for p, q in zip(pngs[:2], questions[:2])]}
columnar_body = {"signature_name": "serving_default",
                 "inputs": {"image": [b64(p) for p in pngs[:2]], "text": questions[:2]}}
for path, body in [("rest_request_row.json", row_body), ("rest_request_columnar.json", columnar_body)]:
    with open(path, "w") as f:
        json.dump(body, f)
print(json.dumps(row_body)[:300], "...")

# %% [markdown]
# The model card carries an example of both bodies (`card["rest"]`), which
# `export/clients/predict.sh` posts with curl. With TF Serving running (Docker; see
# `export/README.md` in the repository):
#
# ```bash
# docker run --rm -p 8501:8501 -v "$PWD/export/models/shapes:/models/shapes" -e MODEL_NAME=shapes tensorflow/serving:2.21.0
# curl -s -X POST -d @rest_request_row.json http://localhost:8501/v1/models/shapes:predict
# ```
#
# TF Serving cannot run inside this notebook, so here is what it does with such a body: decode
# the base64 fields, stack the examples into tensors, call the signature, and lay out the
# response. Running it checks that the bodies are right:

# %%
def what_tf_serving_does(body):
    decode = lambda v: base64.b64decode(v["b64"]) if isinstance(v, dict) else v  # noqa: E731
    if "instances" in body:
        columns = {k: [decode(inst[k]) for inst in body["instances"]] for k in body["instances"][0]}
    else:
        columns = {k: [decode(v) for v in values] for k, values in body["inputs"].items()}
    fn = loaded.signatures[body.get("signature_name", "serving_default")]
    outputs = {k: v.numpy().tolist() for k, v in fn(**{k: tf.constant(v) for k, v in columns.items()}).items()}
    outputs = {k: [x.decode() if isinstance(x, bytes) else x for x in v] for k, v in outputs.items()}
    if "instances" in body:
        return {"predictions": [dict(zip(outputs, values)) for values in zip(*outputs.values())]}
    return {"outputs": outputs}


row_response = what_tf_serving_does(row_body)
columnar_response = what_tf_serving_does(columnar_body)
print([p["class_name"] for p in row_response["predictions"]], columnar_response["outputs"]["class_name"])
assert [p["class_name"] for p in row_response["predictions"]] == columnar_response["outputs"]["class_name"]
assert sorted(card["rest"]["row"]["instances"][0]) == sorted(row_body["instances"][0])

# %% [markdown]
# ## 5. Replay the warmup requests
#
# `assets.extra/tf_serving_warmup_requests` holds real requests (`PredictionLog` records);
# TF Serving replays them when it loads the version, so the first client does not pay for
# graph warm-up. `read_warmup_requests` parses them; replaying them through the signature
# must match the Keras model on the same raw inputs, preprocessed by `mmzoo.data` as in
# training.

# %%
import mmzoo.data


def keras_probabilities(images, texts):
    """The Keras model on raw inputs (encoded image bytes, strings)."""
    x = {"image": tf.stack([mmzoo.data.preprocess_image_bytes(tf.constant(b), spec) for b in images]),
         "text": mmzoo.data.tokenize(tf.constant(list(texts)), spec)}
    return model(x, training=False).numpy()


warmup_path = os.path.join(result.path, "assets.extra", "tf_serving_warmup_requests")
requests = mmzoo.export.read_warmup_requests(warmup_path)
print(f"{len(requests)} warmup requests for model {requests[0]['model_name']!r}, "
      f"signature {requests[0]['signature_name']!r}")
for request in requests:
    inputs = request["inputs"]
    reply = loaded.signatures[request["signature_name"]](**{k: tf.constant(v) for k, v in inputs.items()})
    keras_says = keras_probabilities(inputs["image"], inputs["text"])
    difference = np.abs(reply["probabilities"].numpy() - keras_says).max()
    print(f"{inputs['text'][0].decode()!r:<50} SavedModel: {reply['class_name'].numpy()[0].decode():<8} "
          f"Keras: {spec.class_names[keras_says[0].argmax()]:<8} max|diff|={difference:.1e}")
    assert difference < 1e-4

# %% [markdown]
# ## 6. The int8 model in LiteRT, with the shipped tokenizer
#
# A device app gets `litert/`: the flatbuffers, `labels.txt`, `vocab.txt`, `tokenizer.json`
# (the rules, to port to Kotlin or Swift) and `tokenizer.py` (the same rules in plain
# Python). The flatbuffer takes the model's own tensors, so the app decodes the picture to
# uint8 pixels at the model's size and turns the question into token ids with the tokenizer.

# %%
import importlib.util

lite_dir = os.path.join(result.path, "litert")
print(sorted(os.listdir(lite_dir)))

module_spec = importlib.util.spec_from_file_location("shipped_tokenizer", os.path.join(lite_dir, "tokenizer.py"))
shipped_tokenizer = importlib.util.module_from_spec(module_spec)
module_spec.loader.exec_module(shipped_tokenizer)
tokenizer = shipped_tokenizer.Tokenizer.load(lite_dir)
labels = open(os.path.join(lite_dir, "labels.txt"), encoding="utf-8").read().split("\n")[:-1]

print(questions[0], "→", tokenizer(questions[0]))
in_graph = loaded.signatures["preprocess"](image=tf.constant(pngs[:1]), text=tf.constant(questions[:1]))["text"]
print("the SavedModel's own tokenizer:", in_graph.numpy()[0].tolist())
assert all(tokenizer(q) == ids for q, ids in zip(questions, loaded.signatures["preprocess"](
    image=tf.constant(pngs), text=tf.constant(questions))["text"].numpy().tolist()))

# %% [markdown]
# Run the flatbuffers through LiteRT's interpreter (`ai_edge_litert`, the successor of
# `tf.lite.Interpreter`), with the pictures decoded from the same PNG bytes:

# %%
import io

from ai_edge_litert.interpreter import Interpreter

height, width = card["data_spec"]["image_shape"][:2]
pixels = np.stack([np.asarray(Image.open(io.BytesIO(p)).convert("RGB").resize((width, height)))
                   for p in pngs]).astype("uint8")
ids = np.array([tokenizer(q) for q in questions], dtype="int32")


def run_litert(path):
    runner = Interpreter(model_path=path).get_signature_runner("serving_default")
    return runner(image=pixels, text=ids)


int8_runner = Interpreter(model_path=os.path.join(lite_dir, "model_int8.tflite")).get_signature_runner("serving_default")
print({k: (v["dtype"].__name__, v["shape_signature"].tolist()) for k, v in int8_runner.get_input_details().items()})
lite = {q: run_litert(os.path.join(lite_dir, f"model_{q}.tflite"))
        for q in ["float32"] + [v for v in QUANTIZE.split(",") if v]}
print("int8 answers:", [labels[i] for i in lite["int8"]["class_id"][:4]])

# %% [markdown]
# Compare every variant with the SavedModel (= Keras) on the whole test split: top-1
# agreement, the largest probability difference, accuracy, and size on disk.

# %%
from IPython.display import Markdown, display

rows = ["| artifact | size (kB) | accuracy | top-1 agreement with Keras | max abs prob. difference |",
        "|---|---:|---:|---:|---:|"]
rows.append(f"| SavedModel | {result.sizes['saved_model'] / 1e3:,.0f} | {np.mean(saved_model_probs.argmax(1) == truth):.3f} "
            f"| 100% | 0 |")
for q, out in lite.items():
    probs = out["probabilities"]
    rows.append(f"| TFLite {q} | {result.sizes['tflite_' + q] / 1e3:,.0f} | {np.mean(probs.argmax(1) == truth):.3f} | "
                f"{np.mean(probs.argmax(1) == saved_model_probs.argmax(1)):.1%} | "
                f"{np.abs(probs - saved_model_probs).max():.4f} |")
display(Markdown("\n".join(rows)))
assert np.abs(lite["float32"]["probabilities"] - saved_model_probs).max() < 1e-4

# %% [markdown]
# Which answers does int8 change, and how sure was Keras of them? (The margin: Keras' top
# probability minus its second one.)

# %%
top2 = np.sort(saved_model_probs, axis=1)[:, -2:]
margin = top2[:, 1] - top2[:, 0]
flipped = lite["int8"]["probabilities"].argmax(1) != saved_model_probs.argmax(1)
print(f"{flipped.sum()} of {len(flipped)} int8 answers differ from Keras'; median Keras margin elsewhere: "
      f"{np.median(margin[~flipped]):.3f}")
for i in np.flatnonzero(flipped):
    print(f"  {questions[i]!r}: Keras {ANSWERS[saved_model_probs[i].argmax()]} (margin {margin[i]:.3f}), "
          f"int8 {labels[lite['int8']['class_id'][i]]}, true {ANSWERS[truth[i]]}")

# %% [markdown]
# `mmzoo.export.TFLiteModel(path)` wraps the same interpreter (call it with a dict of inputs,
# `.predict` for batches, `.signature()`). For Android, iOS and a Raspberry Pi, see
# `export/litert/README.md` in the repository.
#
# <a id="gpu-tpu"></a>
# ## On a GPU or TPU runtime
#
# * Train on the GPU as in the other notebooks (`precision="mixed_float16"`, `jit=True`) and
#   export the run folder; the export rebuilds the model on the CPU without cuDNN-only kernels, so
#   the same SavedModel serves on CPU (`tensorflow/serving:2.21.0`) or GPU
#   (`tensorflow/serving:2.21.0-gpu`). `mmzoo.export(..., xla=True)` jit-compiles the model
#   part of the signatures.
# * A model trained with mixed precision exports the same way; the TFLite variants are
#   float32 / float16 / dynamic / int8 whatever the training precision.
# * TPU: export from the trained run folder on the CPU; nothing TPU-specific is saved.
