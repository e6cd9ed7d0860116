# Source of notebooks/07_captioning.ipynb (percent format); build with notebooks/build_notebooks.py.

# %% [markdown]
# # Captioning: describe a picture (or a sound) in words, on a server and on a phone
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({COLAB_URL})
#
# A **captioner** encodes a picture into a sequence of patch features and lets a text decoder
# attend to them while it writes a caption one token at a time. In this notebook you:
#
# 1. look at the built-in `shapes_captions` captioning data (a picture, two captions);
# 2. train `cnn_transformer_captioner` (a CNN and a 2-layer Transformer decoder);
# 3. read its evaluation: BLEU-4, CIDEr-D, exact match, whether it names the right shapes, and
#    the same with the picture blanked (what the decoder writes from habit alone);
# 4. caption a picture you draw, greedily and with beam search;
# 5. export it: a SavedModel whose signatures run the whole decoding loop inside the graph
#    (TF Serving), and a LiteRT flatbuffer with `encode` and `decode_step` that a phone loops over.
#
# CPU runtime: a few minutes. GPU / TPU: see [the end](#gpu-tpu).

# %%
# Install mmzoo when it is missing (Colab). Locally, from a clone: pip install -e ".[notebooks,captioning]"
try:
    import mmzoo
except ImportError:
    %pip install -q "mmzoo[lite,captioning] @ git+https://github.com/mmzoo-dev/mmzoo.git"
    import importlib

    importlib.invalidate_caches()
    import mmzoo
print("mmzoo", mmzoo.__version__)

# %% [markdown]
# ## Settings

# %%
import os

SMALL = True  # False: the 4,000-picture bilingual config and the full training budget
TEST = os.environ.get("MMZOO_NOTEBOOK_TEST") == "1"  # set by mmzoo's test suite

CONFIG = "caption_en_small" if SMALL else "caption"
MAX_STEPS = 120 if TEST else 2000  # optimizer steps (2,000: mmzoo train's default budget)
OUT = "export/models"
print(mmzoo.list_models(task="captioning"))

# %% [markdown]
# ## The data: pictures and their captions
#
# Each picture has two captions (two phrasings; the `caption` config adds Chinese): how many
# shapes there are, then each shape with its colour and place, in reading order. The manifest
# is the format your own data takes: `image,caption[,split]`, one row per caption; the rows of
# one picture are kept in one split and scored together.

# %%
import matplotlib.pyplot as plt
import numpy as np

data = mmzoo.datasets.load("shapes_captions", config=CONFIG)
manifest = data.source["path"]
print(open(manifest, encoding="utf-8").read().splitlines()[:3])
print(data)
for note in data.report.notes:
    print("-", note)

# %% [markdown]
# ## Train the captioner
#
# Teacher forcing: the decoder reads the caption so far and predicts the next token; the loss
# ignores padding. `mmzoo train --data shapes_captions/caption_en_small --model
# cnn_transformer_captioner` is the same run on the command line.

# %%
run = mmzoo.train("cnn_transformer_captioner", data, out="runs/captions", max_steps=MAX_STEPS, overwrite=True)
test = run.metrics["test"]
print(f"BLEU-4 {test['bleu4']:.1f}  CIDEr-D {test['cider_d']:.2f}  exact match {test['exact_match']:.3f}  "
      f"names the right shapes {test['content_accuracy']:.3f}")
blank = test["blanked"]
print(f"picture blanked: BLEU-4 {blank['bleu4']:.1f}  CIDEr-D {blank['cider_d']:.2f}  -> {blank['caption']!r}")

# %% [markdown]
# The report (`runs/captions/report.md`) has these tables, the training curves and examples:

# %%
plt.figure(figsize=(9, 9))
plt.imshow(plt.imread("runs/captions/plots/caption_examples.png"))
plt.axis("off")
plt.show()

# %% [markdown]
# ## Caption your own picture
#
# `generate` takes raw inputs (encoded image bytes), preprocesses them as in training and runs
# the decoding loop: greedy (`beam_width=1`) or beam search, over a cache so that each step costs
# one token.

# %%
from mmzoo.data.samples import encode_image

picture = np.zeros((32, 32, 3), np.uint8)
picture[3:13, 3:13] = (220, 30, 30)       # a red square at the top left
picture[19:29, 19:29] = (30, 60, 220)     # a blue square at the bottom right
png = encode_image(picture, "PNG")
for beam in (1, 4):
    out = run.model.generate({"image": [png]}, beam_width=beam)[0]
    print(f"beam {beam}: {out['caption']}  (log p {out['score']:.2f})")

# %% [markdown]
# ## Export: the decoding loop inside the SavedModel, and LiteRT for a phone
#
# `mmzoo export` writes the SavedModel and the LiteRT flatbuffers and checks them in a fresh
# process: the SavedModel's captions must be the Keras model's, token for token, on the test
# split; a quantized flatbuffer must pick the same next token as Keras after the same prefix at
# 98% of the steps and keep BLEU-4 within a point. (Free-running captions are reported too, but
# they are no gate: the data has two ways to begin a caption, equally likely, and a flipped
# first word changes the whole caption, not its content.) int8 keeps the decoder's attention
# arithmetic and layer norms in float (the model card says which and why).
# `drop_failed_variants=True` publishes the variants that pass and records the others (with
# their figures) in the model card: a short run's decoder may lose a little more than that
# when quantized (the quick test run trains 120 steps).

# %%
result = mmzoo.export(run.root, out=OUT, name="captions", quantize="dynamic" if TEST else "float16,dynamic,int8",
                      num_samples=60 if TEST else 500, drop_failed_variants=True)
print(result.summary())

# %%
import tensorflow as tf

served = tf.saved_model.load(result.path)
print(list(served.signatures))
reply = served.signatures["serving_default"](image=tf.constant([png]))
print(reply["caption"].numpy()[0].decode(), reply["token_ids"].numpy()[0][:12])
print(served.signatures["beam_search"](image=tf.constant([png]))["caption"].numpy()[0].decode())

# %% [markdown]
# TF Serving takes the same request as JSON: `{"instances": [{"image": {"b64": "..."}}]}` to
# `/v1/models/captions:predict`.
#
# ### On a phone: LiteRT
#
# The flatbuffer has two signatures: `encode` (pixels -> the decoder's cache) and `decode_step`
# (the previous token, its position and the cache -> the next token's logits and the new cache).
# The app runs the loop; `litert/caption_loop.py` is the reference loop (numpy only) and
# `litert/vocabulary.txt` turns ids into words.

# %%
import sys

from ai_edge_litert.interpreter import Interpreter

lite_dir = os.path.join(result.path, "litert")
sys.path.insert(0, lite_dir)
from caption_loop import greedy_caption  # noqa: E402

vocabulary = open(os.path.join(lite_dir, "vocabulary.txt"), encoding="utf-8").read().splitlines()
interpreter = Interpreter(model_path=os.path.join(lite_dir, "captioner_float32.tflite"))
encode, decode_step = interpreter.get_signature_runner("encode"), interpreter.get_signature_runner("decode_step")
print({k: v["shape"] for k, v in decode_step.get_input_details().items()})
ids, score = greedy_caption(encode, decode_step, {"image": picture[None]}, max_length=run.spec.caption_len + 1)
print(" ".join(vocabulary[i] for i in ids if i > 3))

# %% [markdown]
# <a id="gpu-tpu"></a>
# ## On a GPU or TPU runtime
#
# * `mmzoo.train(..., batch_size=256, precision="mixed_float16")` trains faster; set
#   `SMALL = False` for the 4,000-picture bilingual config (`caption`).
# * Export runs on the CPU (the SavedModel has no cuDNN-only kernels) and serves on CPU or GPU
#   TF Serving. On a TPU, decoding with a fixed maximum length is what XLA needs; the
#   signature's `tf.while_loop` stops early once every caption has ended.
