# Source of notebooks/01_quickstart.ipynb (percent format); build with notebooks/build_notebooks.py.

# %% [markdown]
# # mmzoo quickstart
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({COLAB_URL})
#
# mmzoo is a Keras 3 / TensorFlow model zoo for **multimodal** models: image, text, audio and
# tabular inputs each go through their own encoder branch, a fusion layer joins them, and a
# task head predicts. In this notebook you:
#
# 1. install mmzoo and list the zoo;
# 2. build `cnn_gru_concat` (a small CNN for the image, a bidirectional GRU for the text,
#    concatenated);
# 3. train it on **shapes_vqa**, the built-in visual question answering dataset (generated
#    on your machine, nothing is downloaded);
# 4. evaluate it: metrics, training curves, the confusion matrix and the modality ablation;
# 5. predict from a raw PNG file and a question you type.
#
# With the default settings it runs on a CPU runtime in about two minutes. For a GPU or TPU
# runtime, see [the last section](#gpu-tpu).

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
#
# `SMALL = True` keeps everything CPU-sized: the `image_text_small` config of shapes_vqa
# (512 training examples of 32x32 images) and 8 epochs. `SMALL = False` switches to the
# `image_text` config (8,000 examples) and more epochs: use a GPU runtime for that.

# %%
import os

SMALL = True  # False: the full-size dataset and more epochs (use a GPU runtime)
TEST = os.environ.get("MMZOO_NOTEBOOK_TEST") == "1"  # set by mmzoo's test suite: smaller still

CONFIG = "image_text_small" if SMALL else "image_text"
EPOCHS = 1 if TEST else (8 if SMALL else 15)
PRESET = "cnn_gru_concat"
RUN_DIR = "runs/quickstart_concat"
DATA_DIR = os.environ.get("TFDS_DATA_DIR")  # where shapes_vqa is generated; None: ~/tensorflow_datasets

# %% [markdown]
# ## 1. The zoo
#
# Presets are named `<image encoder>_<text encoder>[_<audio encoder>]_<fusion>`. Listing and
# describing them does not build anything (and does not even import TensorFlow).

# %%
mmzoo.list_models()

# %%
mmzoo.list_models("*film*")  # fnmatch wildcards

# %% [markdown]
# The same table from the command line (`!` runs a shell command in a notebook):

# %%
!mmzoo list

# %%
mmzoo.describe(PRESET)

# %% [markdown]
# ## 2. Build a model
#
# `mmzoo.build` returns a compiled `keras.Model`. Data settings (number of classes, image
# size, sequence length, vocabulary size...) are overrides; the model carries them in
# `model.spec`, its **data spec**. Here we build it with made-up sizes just to look at it;
# training below builds it again with the sizes of the data.

# %%
model = mmzoo.build(PRESET, num_classes=14, image_shape=(32, 32, 3), seq_len=12, vocab_size=40)
model.summary()
model.spec

# %% [markdown]
# Inputs are a dict keyed by modality: `image` is uint8 pixels `[batch, H, W, 3]` (rescaled
# inside the model), `text` is int32 token ids `[batch, seq_len]` (0 = padding, 1 = unknown).

# %%
import numpy as np

x = {
    "image": np.random.randint(0, 256, (2, 32, 32, 3), dtype="uint8"),
    "text": np.array([[5, 7, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0]] * 2, dtype="int32"),
}
model(x).shape  # [batch, num_classes] probabilities

# %% [markdown]
# ## 3. The built-in dataset: shapes_vqa
#
# Each example is a 32x32 picture of up to four coloured shapes and a question about it
# ("what colour is the circle?", "how many red shapes are there?", "is there a blue
# square?"). The answer is in **neither input alone**: the question says what is asked, the
# picture holds the fact. So a model has to fuse the two to do well.
#
# `mmzoo.datasets.load` generates the config on first use (about a second for the small
# ones) and returns an mmzoo data object: it tokenizes the questions with a vocabulary
# learned on the train split and decodes the images inside a `tf.data` pipeline.

# %%
import mmzoo.datasets

data = mmzoo.datasets.load("shapes_vqa", config=CONFIG, data_dir=DATA_DIR, seq_len=12)
print(data)
print("modalities:", data.modalities)
print("examples:", data.splits)
print("answers:", data.class_names)
print("vocabulary:", data.vocabulary[:12], "...")

# %% [markdown]
# A few test examples, straight from the TFDS builder:

# %%
import textwrap

import matplotlib.pyplot as plt

from mmzoo.datasets import ANSWERS

builder = mmzoo.datasets.builder("shapes_vqa", config=CONFIG, data_dir=DATA_DIR)
examples = list(builder.as_dataset(split="test").take(6).as_numpy_iterator())

fig, axes = plt.subplots(1, 6, figsize=(15, 3.4))
for ax, ex in zip(axes, examples):
    ax.imshow(ex["image"])
    question = textwrap.fill(ex["question"].decode(), 24)
    ax.set_title(f"{question}\n→ {ANSWERS[ex['answer']]}", fontsize=8)
    ax.axis("off")
plt.show()

# %% [markdown]
# How far can one modality alone get? `chance_levels` fits a lookup table on the train split
# for each modality (the question string alone, or the set of shapes in the picture alone)
# and scores it on the test split. A model that really fuses image and text should beat them.

# %%
mmzoo.datasets.chance_levels(CONFIG, split="test", data_dir=DATA_DIR)

# %% [markdown]
# ## 4. Train
#
# `mmzoo.train` builds the preset with the data's settings, trains it, restores the best
# weights (by validation loss), evaluates it on the test split and writes a **run folder**.
# An interrupted run resumes when you run the same call again; `overwrite=True` replaces a
# finished one.

# %%
run = mmzoo.train(PRESET, data, epochs=EPOCHS, out=RUN_DIR, learning_rate=2e-3, seed=0, overwrite=True)

# %% [markdown]
# The run folder holds everything: the model (`model.keras`), the data spec with the
# vocabulary and class names (`data_spec.json`), the settings (`config.json`), the per-epoch
# history, the metrics, PNG plots, TensorBoard logs and a Markdown report.

# %%
sorted(os.listdir(RUN_DIR))

# %% [markdown]
# ## 5. Evaluate

# %%
m = run.metrics
print(f"test accuracy {m['test']['accuracy']:.3f}   macro F1 {m['test']['macro_f1']:.3f}   "
      f"({m['test']['examples']} examples, {m['epochs_run']} epochs, {m['train_seconds']:.0f} s, "
      f"{m['params']:,} parameters)")

# %%
from IPython.display import Image, display

display(Image(os.path.join(RUN_DIR, "plots", "training_curves.png")))
display(Image(os.path.join(RUN_DIR, "plots", "confusion_matrix.png")))

# %% [markdown]
# **The modality ablation** scores the model again with one modality blanked out (zeros for
# the image, all padding for the text), and with only one kept. If the model fuses both
# inputs, removing either should cost accuracy; "text alone" should sit near the text chance
# level above. (After one or two epochs the model is barely trained: set `EPOCHS` higher.)

# %%
ablation = m["ablation"]
print(f"both inputs: {ablation['full']:.3f}")
for modality in data.modalities:
    print(f"{modality:>6} alone: {ablation['only'][modality]:.3f}   without {modality}: {ablation['without'][modality]:.3f}")

# %% [markdown]
# What a well-trained model's ablation looks like: mmzoo ships weights for `cnn_gru_film`
# trained for 12 epochs on the full `image_text` config (`mmzoo.build("cnn_gru_film",
# weights="shapes_vqa")` loads them). Without the image it falls to the text-only chance
# level; without the question it falls to about the majority answer.

# %%
shipped = mmzoo.pretrained.available("cnn_gru_film")["cnn_gru_film"]["shapes_vqa"]
print(f"cnn_gru_film on {shipped['dataset']}: test accuracy {shipped['accuracy']:.3f}")
for modality in ("image", "text"):
    print(f"{modality:>6} alone: {shipped['ablation']['only'][modality]:.3f}   "
          f"without {modality}: {shipped['ablation']['without'][modality]:.3f}")

# %% [markdown]
# `run.evaluate()` recomputes all of this (on the run's test split, or on another manifest
# read with the run's data spec); `mmzoo.open_run(path)` opens a finished run folder later.

# %%
run = mmzoo.open_run(RUN_DIR)
again = run.evaluate()
again["split"], round(again["test"]["accuracy"], 4)

# %% [markdown]
# ## 6. Predict from a raw image and a question
#
# `run.predict` takes file paths (or bytes) and strings and preprocesses them exactly as in
# training: decode and resize the image, tokenize the question with the run's vocabulary.
# First a test picture saved as a PNG file:

# %%
from PIL import Image as PILImage

example = examples[0]
PILImage.fromarray(example["image"]).save("test_picture.png")
question = example["question"].decode()
result = run.predict(image="test_picture.png", text=question)
print(f"Q: {question}\nmodel: {result['class_name']}   (true answer: {ANSWERS[example['answer']]})")

# %% [markdown]
# Now draw your own picture and ask your own questions (words the model never saw become
# the unknown token):

# %%
from PIL import ImageDraw

picture = PILImage.new("RGB", (32, 32), "black")
draw = ImageDraw.Draw(picture)
draw.ellipse([2, 2, 14, 14], fill=(255, 0, 0))  # a red circle, top left
draw.rectangle([19, 19, 29, 29], fill=(0, 0, 255))  # a blue square, bottom right
picture.save("my_picture.png")

for q in ["what colour is the circle?", "what shape is the blue one?", "how many red shapes are there?",
          "is there a green triangle?"]:
    answer = run.predict(image="my_picture.png", text=q)
    print(f"{q:<35} {answer['class_name']:<8} (p={max(answer['probabilities']):.2f})")

# %% [markdown]
# The same from the command line:

# %%
!mmzoo predict {RUN_DIR} --image my_picture.png --text "what colour is the circle?"

# %% [markdown]
# ## Next
#
# * `mmzoo.build("cnn_gru_film", weights="shapes_vqa")` skips training: the shipped weights
#   (see the `pretrained` column of `mmzoo list`); notebook 04 exports that model.
# * `mmzoo quickstart --size small` does all of the above in one command with the default
#   preset (`cnn_gru_melcnn_film`: image + text + **audio**, FiLM fusion), and exports it.
# * [02_your_own_data](02_your_own_data.ipynb): train on your own files from a manifest.
# * [03_compare_fusions](03_compare_fusions.ipynb): which fusion works best here?
# * [04_export_and_serve](04_export_and_serve.ipynb): TF Serving and LiteRT.
# * [05_extend_the_zoo](05_extend_the_zoo.ipynb): your own encoder and fusion layer.
#
# <a id="gpu-tpu"></a>
# ## On a GPU or TPU runtime
#
# * **GPU** (Runtime → Change runtime type → GPU): set `SMALL = False` (8,000 training
#   examples, 15 epochs) and pass `precision="mixed_float16"` (float16 compute with float32
#   weights; T4, L4, A100) and `jit=True` (XLA) to `mmzoo.train`, with a larger
#   `batch_size=256`. On an A100 or L4, `precision="mixed_bfloat16"` works too. The
#   preprocessing runs on the CPU inside `tf.data`, so nothing else changes.
# * **TPU**: see the next cell. **Several GPUs** are used by `mmzoo.train` by default
#   (MirroredStrategy); several machines, TF_CONFIG and the tf.data service: the guide's
#   "Scale out" chapter (docs/distributed.md).
#
# ## On a Colab TPU
#
# Runtime → Change runtime type → TPU, then run this cell: `distributed="tpu"` trains under
# `TPUStrategy` with whole batches (a TPU compiles for one static shape), 32 steps a call into
# the TPU, and the decoding and tokenising left on the host in `tf.data`. Where there is no TPU
# (here, or in the tests) the cell says so and trains nothing.

# %%
import tensorflow as tf

try:
    tf.distribute.cluster_resolver.TPUClusterResolver()  # finds Colab's TPU; raises without one
    has_tpu = True
except ValueError:
    has_tpu = False
if has_tpu:
    tpu_run = mmzoo.train(PRESET, data, epochs=EPOCHS, out="runs/quickstart_tpu", distributed="tpu",
                          batch_size=1024, learning_rate=4e-3, precision="mixed_bfloat16", overwrite=True)
    print(tpu_run.metrics["test"]["accuracy"], tpu_run.config["distribution"])
else:
    print("No TPU in this runtime: the cell above trained on", tf.config.list_logical_devices()[0].device_type)
