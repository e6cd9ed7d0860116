# Source of notebooks/06_matching_and_recommendation.ipynb (percent format); build with notebooks/build_notebooks.py.

# %% [markdown]
# # Matching and recommendation: search pictures with words, recommend items
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({COLAB_URL})
#
# A **retriever** embeds a query (a caption) and every candidate (a picture) into one space
# and ranks the candidates by cosine similarity: "show me the pictures with a red circle at the
# top left". In this notebook you:
#
# 1. look at the built-in `shapes_captions` data (pictures, English and Chinese captions);
# 2. train the dual encoder `cnn_gru_clip` (CLIP loss, in-batch negatives);
# 3. read its pool-wide evaluation (recall@K both ways, median rank, chance) and its plots;
# 4. search the test pictures with your own words;
# 5. export it: a SavedModel whose `search` signature ranks a candidate index inside the graph,
#    and LiteRT towers for a phone; then publish a new catalogue with `mmzoo index`;
# 6. train a two-tower recommender on users' purchases and compare it with popularity.
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

SMALL = True  # False: the 4,000-picture config and the full training budget
TEST = os.environ.get("MMZOO_NOTEBOOK_TEST") == "1"  # set by mmzoo's test suite

CONFIG = "image_text_small" if SMALL else "image_text"
MAX_STEPS = 150 if TEST else 2000  # optimizer steps (2,000: mmzoo train's default budget)
OUT = "export/models"
print(mmzoo.list_models(task="retrieval"))

# %% [markdown]
# ## The data: pictures and captions
#
# Every picture has two captions in one **group** (English and Chinese); rows of one group are
# never each other's negatives. The dataset is written as PNG files and a pair manifest, the
# format your own data takes (`image,text,group[,split]`).

# %%
import matplotlib.pyplot as plt
import numpy as np

data = mmzoo.datasets.load("shapes_captions", config=CONFIG)
manifest = data.source["path"]
print(data)
for note in data.report.notes:
    print("-", note)
print(open(manifest, encoding="utf-8").read().splitlines()[:5])

# %%
import csv

rows = list(csv.DictReader(open(manifest, encoding="utf-8")))
folder = os.path.dirname(manifest)
fig, axes = plt.subplots(1, 4, figsize=(12, 3))
for ax, row in zip(axes, rows[0:8:2]):
    ax.imshow(plt.imread(os.path.join(folder, row["image"])))
    ax.set_title(row["text"][:38], fontsize=7)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## Train the dual encoder
#
# `mmzoo train` chooses a retriever by itself for a pair manifest (no label column, two inputs);
# here the preset is named. Text is the query side, the image the candidate side.

# %%
run = mmzoo.train("cnn_gru_clip", data, max_steps=MAX_STEPS, out="runs/clip", overwrite=True)
for line in run.model.summary_lines(run.metrics["test"]):
    print(line)

# %% [markdown]
# The test pool is every test picture and caption, ranked against all of them (not only the
# batch): a random ranking's recall@5 is 1.7% on 300 pictures. A caption names every shape, so
# only pictures of the same scene are confusable; a perfect reader's recall@1 is 0.87 here.

# %%
from IPython.display import Image, Markdown, display

display(Markdown("\n".join(run.model.report_sections(run.metrics["test"]))))
display(Image(os.path.join(run.root, "plots", "recall_at_k.png")))
display(Image(os.path.join(run.root, "plots", "retrieval_examples.png")))

# %% [markdown]
# ## Search with your own words
#
# `model.embed(side, inputs)` embeds one side; the preprocessor turns raw text and image bytes
# into model inputs, as in training.

# %%
import tensorflow as tf

model = run.model
test_rows = [r for r in rows if r["split"] == "test"][::2]  # one row per test picture
pictures = [open(os.path.join(folder, r["image"]), "rb").read() for r in test_rows]
image_inputs = model.preprocess({"image": tf.constant(pictures)})
picture_embeddings = model.embed("candidate", {"image": np.asarray(image_inputs["image"])})

queries = ["a red circle at the top left.", "右下有一个蓝色三角形。"]
text_inputs = model.preprocess({"text": tf.constant(queries)})
query_embeddings = model.embed("query", {"text": np.asarray(text_inputs["text"])})
best = np.argsort(-query_embeddings @ picture_embeddings.T, axis=1)[:, :5]
fig, axes = plt.subplots(len(queries), 5, figsize=(8, 3.6))
for q, query in enumerate(queries):
    for j, i in enumerate(best[q]):
        axes[q][j].imshow(plt.imread(os.path.join(folder, test_rows[i]["image"])))
        axes[q][j].axis("off")
    axes[q][0].set_title(query, fontsize=8, loc="left")
plt.show()

# %% [markdown]
# ## Export: SavedModel with its index, LiteRT towers
#
# The catalogue is every distinct picture of the data. `search` (also `serving_default`) takes a
# caption and returns the 10 best pictures' index rows, ids (file paths), names and scores: a
# matmul and `top_k` inside the graph. `embed_query`, `embed_candidate` and `score` are there too.
# Everything is checked against Keras in a fresh process before the version is published; an
# int8 tower must keep recall@10 within 1 point.

# %%
result = mmzoo.export(run.root, out=OUT, name="clip", quantize="int8" if TEST else "float16,dynamic,int8",
                      num_samples=200 if TEST else 500)
print(result.summary())

# %%
served = tf.saved_model.load(result.path)
print(sorted(served.signatures))
found = served.signatures["search"](text=tf.constant(["a green square at the bottom right."]))
print([v.decode() for v in found["candidate_id"].numpy()[0][:5]], found["score"].numpy()[0][:5].round(3))
card = mmzoo.export.load_model_card(result.path)
print(card["retrieval"])
print(card["rest"]["row"])  # POST /v1/models/clip:predict

# %% [markdown]
# ### A new catalogue without retraining
#
# `mmzoo index` embeds the candidates of a file (their input columns, optional `id` and `name`)
# and publishes the next version. Here: three pictures drawn with numpy.

# %%
from mmzoo.data.samples import encode_image

os.makedirs("catalogue", exist_ok=True)
drawn = {"red-top-left": ((2, 14), (2, 14), (255, 0, 0)), "blue-bottom-right": ((18, 30), (18, 30), (0, 0, 255)),
         "yellow-top-right": ((2, 14), (18, 30), (255, 255, 0))}
with open("catalogue/catalogue.csv", "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(["image", "id", "name"])
    for name, ((y0, y1), (x0, x1), colour) in drawn.items():
        picture = np.zeros((32, 32, 3), np.uint8)
        picture[y0:y1, x0:x1] = colour
        open(f"catalogue/{name}.png", "wb").write(encode_image(picture, "PNG"))
        writer.writerow([f"{name}.png", name, f"a drawn {name.replace('-', ' ')} square"])

# %%
!mmzoo index runs/clip --candidates catalogue/catalogue.csv --out {OUT} --name clip --k 3 --formats saved_model

# %%
second = tf.saved_model.load(os.path.join(OUT, "clip", "2"))
found = second.signatures["search"](text=tf.constant(["a red square at the top left."]))
print([v.decode() for v in found["candidate_name"].numpy()[0]], found["score"].numpy()[0].round(3))

# %% [markdown]
# ### On a phone: LiteRT
#
# The query tower takes token ids (the shipped `tokenizer.py` makes them, the same ids as the
# SavedModel); `candidates.npy` holds the catalogue's embeddings. Rank them by dot product.

# %%
import importlib.util

lite_dir = os.path.join(result.path, "litert")
spec = importlib.util.spec_from_file_location("shipped_tokenizer", os.path.join(lite_dir, "tokenizer.py"))
tokenizer_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tokenizer_module)
tokenizer = tokenizer_module.Tokenizer.load(lite_dir)
ids = np.array([tokenizer("a green square at the bottom right.")], np.int32)
lite = mmzoo.export.TFLiteModel(os.path.join(lite_dir, "query_int8.tflite"))
embedding = lite({"text": ids})["embedding"]
candidates = np.load(os.path.join(lite_dir, "candidates.npy"))
names = [line.split("\t")[1] for line in open(os.path.join(lite_dir, "candidates.tsv"), encoding="utf-8")][1:]
top = np.argsort(-(embedding @ candidates.T)[0])[:5]
print([names[i] for i in top])

# %% [markdown]
# ## Recommendation: two towers over users and items
#
# The same machinery recommends: a **user tower** (the user's id, the items they chose before,
# their features) and an **item tower** (the item's id, picture, description, numbers). The
# built-in `shapes_shop` has users with hidden tastes (a colour, a shape, a budget) buying items
# in time order; each user's last purchase is held out. Ranking by popularity is the baseline a
# recommender must beat, computed in the same run.

# %%
shop = mmzoo.datasets.load("shapes_shop")
for note in shop.report.notes:
    print("-", note)
recommender = mmzoo.train("bag_cnn_gru_twotower", shop, max_steps=100 if TEST else 2000, out="runs/shop",
                          overwrite=True)
display(Markdown("\n".join(recommender.model.report_sections(recommender.metrics["test"]))))

# %% [markdown]
# What one user bought, and what the model recommends next (their earlier items left out):

# %%
ids, names, item_inputs = shop.catalogue_inputs()
item_embeddings = recommender.model.embed("candidate", item_inputs)
test_events = shop.interactions.split_events("test")
event = test_events[0]
user_inputs = recommender.model.preprocess({"user": tf.constant([event.user]),
                                            "history": tf.constant([" ".join(event.history)]),
                                            "profile": tf.constant([np.asarray(shop._columns["test"]["profile"][0])])})
user_embedding = recommender.model.embed("query", {k: np.asarray(v) for k, v in user_inputs.items()})
scores = (user_embedding @ item_embeddings.T)[0]
seen = shop.seen_items("test")[event.user]
top = [ids[i] for i in np.argsort(-scores) if ids[i] not in seen][:5]
items_folder = os.path.dirname(shop.source["paths"]["items"])
fig, axes = plt.subplots(2, 5, figsize=(9, 4))
for ax, item in zip(axes[0], list(event.history)[-5:]):
    ax.imshow(plt.imread(os.path.join(items_folder, shop.interactions.items[item]["image"])))
    ax.set_title("bought", fontsize=8)
for ax, item in zip(axes[1], top):
    ax.imshow(plt.imread(os.path.join(items_folder, shop.interactions.items[item]["image"])))
    ax.set_title("held out!" if item == event.item else "recommended", fontsize=8)
for ax in axes.ravel():
    ax.axis("off")
plt.show()

# %% [markdown]
# `mmzoo export runs/shop` publishes it like the captions model: `search` takes a user's raw
# `user` id, `history` (item ids separated by spaces) and `profile` numbers and returns the 10
# best items of the catalogue (the items table); an unknown user or item id is allowed (id 1:
# the attributes and the history carry it).
#
# <a id="gpu-tpu"></a>
# ## On a GPU or TPU runtime
#
# * `mmzoo.train(..., batch_size=256, precision="mixed_float16", jit=True)`: a contrastive loss
#   gets more negatives from a larger batch; the learned temperature is kept in float32.
# * Export runs on the CPU (the SavedModel has no cuDNN-only kernels) and serves on CPU or GPU
#   TF Serving. Past about a million candidates, build an approximate index beside it:
#   `mmzoo.export.ann.build_approximate_index` (`pip install "mmzoo[ann]"`).
