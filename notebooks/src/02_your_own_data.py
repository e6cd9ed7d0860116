# Source of notebooks/02_your_own_data.ipynb (percent format); build with notebooks/build_notebooks.py.

# %% [markdown]
# # Train on your own data
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({COLAB_URL})
#
# Your data is a folder of files: pictures, a caption or question for each, maybe a sound
# clip, and a label. mmzoo reads it through a **manifest**, a CSV (or JSON Lines) file with
# one example a row. In this notebook you:
#
# 1. make a manifest from a folder of images + captions + audio clips;
# 2. run the data check (every file is decoded up front, before any training);
# 3. train an image + text + audio model on it;
# 4. read the run's report and predict on one of your files;
# 5. handle bad files: a truncated image, a missing file, a 24-bit WAV.
#
# The folder is written by the notebook itself (small synthetic pictures and beeps), so it
# runs anywhere; point `DATA` at your own folder to use yours. The manifest format is
# described in full in [docs/data.md](https://github.com/mmzoo-dev/mmzoo/blob/main/docs/data.md).
# GPU / TPU: see [the last section](#gpu-tpu).

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

SMALL = True  # False: more examples per class and more epochs (use a GPU runtime)
TEST = os.environ.get("MMZOO_NOTEBOOK_TEST") == "1"  # set by mmzoo's test suite: smaller still

DATA = "my_data"  # the folder of files (written below; use your own instead)
PER_CLASS = 6 if TEST else (24 if SMALL else 250)  # examples per class written below
EPOCHS = 1 if TEST else (6 if SMALL else 20)
PRESET = "cnn_gru_melcnn_concat"  # image + text + audio, concatenated
# How the files become model inputs (saved in the run's data spec and reused at serving time):
PIPELINE = dict(image_size=(32, 32), seq_len=16, sample_rate=8000, audio_seconds=0.25)

# %% [markdown]
# ## 1. A folder of files
#
# A common layout: one sub-folder per class, and for each example an image, a text file and a
# WAV file with the same name. Here the pictures are coloured discs (PNG and JPEG, some
# grayscale or with an alpha channel), the captions mix English and Chinese, and the clips
# are tones whose pitch depends on the colour (some stereo, some at 16 kHz instead of 8 kHz:
# mmzoo mixes down and resamples them).

# %%
import numpy as np

from mmzoo.data.samples import encode_image, image_array, write_wav

COLOURS = ["red", "green", "blue", "yellow"]
CAPTIONS = {
    "red": ["a bright round thing", "something warm on a dark background", "红色的圆形"],
    "green": ["a round shape in the middle", "the colour of grass", "绿色的圆形"],
    "blue": ["a disc on a dark background", "the colour of the sea", "蓝色的圆形"],
    "yellow": ["a round shape, quite bright", "the colour of the sun", "黄色的圆形"],
}
rng = np.random.default_rng(0)
for c, colour in enumerate(COLOURS):
    os.makedirs(os.path.join(DATA, colour), exist_ok=True)
    for i in range(PER_CLASS):
        stem = os.path.join(DATA, colour, f"{i:04d}")
        picture = image_array(colour, size=(48, 64), seed=100 * c + i)
        if i % 3 == 2:
            with open(stem + ".jpg", "wb") as f:
                f.write(encode_image(picture, "JPEG"))
        else:
            with open(stem + ".png", "wb") as f:
                f.write(encode_image(picture, "PNG", mode=[None, "L", "RGBA"][i % 3]))
        with open(stem + ".txt", "w", encoding="utf-8") as f:
            f.write(CAPTIONS[colour][i % 3])
        rate = 16000 if i % 4 == 3 else 8000
        t = np.arange(int(0.25 * rate)) / rate
        tone = 0.4 * np.sin(2 * np.pi * 300 * (c + 1) * t) + 0.05 * rng.standard_normal(len(t))
        write_wav(stem + ".wav", np.stack([tone, tone], 1) if i % 5 == 1 else tone, rate)

sorted(os.listdir(os.path.join(DATA, "red")))[:9]

# %% [markdown]
# ## 2. The manifest
#
# Columns: `image` and `audio` are paths **relative to the manifest's folder**, `text` is the
# text itself, `label` the class name. An optional `split` column (`train` / `validation` /
# `test`) fixes the split; without it mmzoo makes a seeded split (80/10/10, stratified by
# class), the same every time.

# %%
import csv
import glob

rows = []
for image in sorted(glob.glob(os.path.join(DATA, "*", "*.png")) + glob.glob(os.path.join(DATA, "*", "*.jpg"))):
    stem = os.path.splitext(image)[0]
    with open(stem + ".txt", encoding="utf-8") as f:
        caption = f.read().strip()
    rows.append({
        "image": os.path.relpath(image, DATA),
        "text": caption,
        "audio": os.path.relpath(stem + ".wav", DATA),
        "label": os.path.basename(os.path.dirname(image)),  # the folder name is the class
    })

MANIFEST = os.path.join(DATA, "manifest.csv")
with open(MANIFEST, "w", newline="", encoding="utf-8") as f:
    writer = csv.DictWriter(f, fieldnames=["image", "text", "audio", "label"])
    writer.writeheader()
    writer.writerows(rows)

print(open(MANIFEST, encoding="utf-8").read()[:400])

# %% [markdown]
# ## 3. The data check
#
# `mmzoo data check` reads the manifest exactly as training will: every row is parsed, every
# path checked, and every file decoded with the same TensorFlow functions as the training
# pipeline. Exit code 0 means clean.

# %%
!mmzoo data check {MANIFEST} --image-size 32 32 --sample-rate 8000 --audio-seconds 0.25

# %% [markdown]
# In Python, `mmzoo.data.from_manifest` does the same check and returns a data object: what it
# found (modalities, task, classes, splits), the report, and `tf.data` pipelines whose
# examples match a model's inputs. Its **data spec** records every preprocessing choice
# (sizes, vocabulary, class names) and travels with the trained model.

# %%
import mmzoo.data

data = mmzoo.data.from_manifest(MANIFEST, **PIPELINE)
print(data.report)
print("modalities:", data.modalities, " task:", data.task, " classes:", data.class_names)
print("splits:", data.splits)
print("vocabulary:", data.vocabulary)

# %%
features, labels = next(iter(data.dataset("train", batch_size=4)))
{name: (tuple(value.shape), value.dtype.name) for name, value in features.items()}, labels.numpy()

# %% [markdown]
# ## 4. Train
#
# Pass the manifest path (and the pipeline settings) to `mmzoo.train`: the run records where
# its data came from, so `run.evaluate()` and `mmzoo export` can find it again later.
#
# With nothing but the data (`mmzoo.train(None, MANIFEST)`, or `mmzoo train --data my.csv`)
# mmzoo picks a preset that fits the inputs, reads the audio and text lengths off the files,
# holds out a validation split when there is none, and trains for a budget of 2,000 steps with
# early stopping (the best epoch's weights are kept), AdamW with warm-up and cosine decay,
# label smoothing, and augmentation (image shift / rotation, audio shift / gain / noise and
# SpecAugment, modality dropout). Here the epochs are fixed so that the
# notebook runs in a few minutes on a CPU; leave `epochs` out on your own data.

# %%
RUN_DIR = "runs/own_data"
run = mmzoo.train(PRESET, MANIFEST, epochs=EPOCHS, out=RUN_DIR, batch_size=16, seed=0,
                  overwrite=True, data_kwargs=PIPELINE)

# %% [markdown]
# What the run chose, from `config.json` and `metrics.json` (the report says the same):

# %%
print(run.config["plan"]["why"])
print("augmentation:", run.config["augment"])
print("kept epoch:", run.metrics["best_epoch"], "of", run.metrics["epochs_run"])

# %% [markdown]
# ## 5. Read the report
#
# `report.md` in the run folder: settings, test metrics per class, the modality ablation
# (here each of image, text and audio alone carries the colour, so each should do well on
# its own once trained), and the plots.

# %%
from IPython.display import Image, Markdown, display

report = open(os.path.join(RUN_DIR, "report.md"), encoding="utf-8").read()
display(Markdown("\n".join(line for line in report.splitlines() if not line.startswith("!["))))
for png in sorted(os.listdir(os.path.join(RUN_DIR, "plots"))):
    display(Image(os.path.join(RUN_DIR, "plots", png)))

# %% [markdown]
# Predict on one of your files (paths or bytes; preprocessed with the run's data spec):

# %%
run.predict(image=os.path.join(DATA, "blue", "0000.png"), text="a disc on a dark background",
            audio=os.path.join(DATA, "blue", "0000.wav"))["class_name"]

# %% [markdown]
# ## 6. Bad files
#
# Real folders have broken files. The next cell adds three bad rows to a copy of the
# manifest: a truncated PNG, a path to a file that does not exist, and a 24-bit WAV
# (TensorFlow reads 16-bit PCM only).

# %%
import shutil

shutil.copy(os.path.join(DATA, "red", "0000.png"), os.path.join(DATA, "red", "broken.png"))
with open(os.path.join(DATA, "red", "broken.png"), "r+b") as f:
    f.truncate(60)  # cut the file short, as an interrupted copy would
write_wav(os.path.join(DATA, "green", "24bit.wav"), np.zeros(2000), 8000, sample_width=3)

bad_rows = rows + [
    {"image": "red/broken.png", "text": "a truncated file", "audio": "red/0000.wav", "label": "red"},
    {"image": "blue/missing.png", "text": "this file is not there", "audio": "blue/0000.wav", "label": "blue"},
    {"image": "green/0000.png", "text": "a 24-bit wav", "audio": "green/24bit.wav", "label": "green"},
]
BAD_MANIFEST = os.path.join(DATA, "manifest_with_problems.csv")
with open(BAD_MANIFEST, "w", newline="", encoding="utf-8") as f:
    writer = csv.DictWriter(f, fieldnames=["image", "text", "audio", "label"])
    writer.writeheader()
    writer.writerows(bad_rows)

# %% [markdown]
# The default is `on_error="raise"`: one `DataError` after checking everything, before any
# training starts. It names **every** problem at once (row, line, column, file and why);
# `err.errors` lists them. (`mmzoo data check` prints the same list
# and exits with code 1, so it can guard a data pipeline.)

# %%
try:
    mmzoo.data.from_manifest(BAD_MANIFEST, **PIPELINE)
except mmzoo.data.DataError as err:
    print(err)
    problems = err.errors
len(problems)

# %% [markdown]
# Fix the files (re-export the image, convert the WAV with
# `ffmpeg -i in.wav -c:a pcm_s16le out.wav` or `sox in.wav -b 16 out.wav`), or drop the bad
# rows with `on_error="skip"`: they are counted in `data.report` and a warning names them.
# `mmzoo.train(PRESET, BAD_MANIFEST, data_kwargs={**PIPELINE, "on_error": "skip"})` trains on
# the rows that are left.

# %%
cleaned = mmzoo.data.from_manifest(BAD_MANIFEST, on_error="skip", **PIPELINE)
print(f"kept {sum(cleaned.splits.values())} rows, skipped {cleaned.report.skipped}")
for problem in cleaned.report.errors:
    print(" -", problem)

# %% [markdown]
# <a id="gpu-tpu"></a>
# ## On a GPU or TPU runtime, and with bigger data
#
# * Bigger pictures: `image_size=(128, 128)` or more, and an image encoder that fits them
#   (`mmzoo.list_models("resnet*")`); longer texts: `seq_len=64`; longer clips:
#   `audio_seconds=2`. Everything is recorded in the data spec.
# * **GPU**: `mmzoo.train(..., batch_size=128, precision="mixed_float16", jit=True)`. Decoding
#   runs on the CPU in `tf.data`; decoded examples are cached in memory by default
#   (`cache="memory"`); for data larger than memory pass `cache="/content/cache/own"` (files),
#   or convert once to TFRecords with `mmzoo data to-tfrecord MANIFEST OUT_DIR`.
# * **TPU**: see the TPU note at the end of [01_quickstart](01_quickstart.ipynb); use
#   `data.dataset("train", batch_size=..., drop_remainder=True)` for fixed batch shapes and
#   `data.dataset_fn(...)` with `strategy.distribute_datasets_from_function` for per-replica input.
