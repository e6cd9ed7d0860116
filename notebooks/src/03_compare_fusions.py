# Source of notebooks/03_compare_fusions.ipynb (percent format); build with notebooks/build_notebooks.py.

# %% [markdown]
# # Compare fusion methods
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({COLAB_URL})
#
# How should two modalities be joined? This notebook trains several presets that share the
# same encoders (a CNN for the image, a bidirectional GRU for the question) and differ only
# in the **fusion layer**, on the same data with the same budget (epochs, batch size,
# learning rate, seed). Then it compares test accuracy, parameters, training time and
# prediction latency in a table and a bar chart, and runs the **modality ablation** for each
# preset: how much each one really uses the image and the question.
#
# The data is shapes_vqa, where the answer needs both inputs: a fusion that lets the question
# steer what the model looks for in the picture (FiLM, cross-modal attention) should beat one
# that only puts the two summaries side by side (concatenation, late fusion), given enough
# training. With the CPU-sized default budget the gaps are rough; see the last section for a
# GPU run.

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
# Each entry of `MODELS` is a preset name, or a preset with overrides such as
# `{"preset": "cnn_gru_concat", "fusion": "gated"}` (same encoders, another fusion).

# %%
import os

SMALL = True  # False: the 8,000-example config and a longer budget (use a GPU runtime)
TEST = os.environ.get("MMZOO_NOTEBOOK_TEST") == "1"  # set by mmzoo's test suite: smaller still

CONFIG = "image_text_small" if SMALL else "image_text"
if TEST:
    MODELS = ["cnn_gru_concat", "cnn_gru_film"]
else:
    MODELS = ["cnn_gru_concat", "cnn_gru_late", {"preset": "cnn_gru_concat", "fusion": "gated"},
              "cnn_gru_film", "cnn_gru_attention"]
EPOCHS = 1 if TEST else (6 if SMALL else 20)
BUDGET = dict(epochs=EPOCHS, batch_size=64, learning_rate=2e-3, schedule="cosine", seed=0)
DATA_DIR = os.environ.get("TFDS_DATA_DIR")  # None: ~/tensorflow_datasets

# %%
for preset in mmzoo.list_models("cnn_gru_*"):
    d = mmzoo.describe(preset)
    if d["modalities"] == ["image", "text"] and d["head"] == "classification":
        print(f"{preset:<18} fusion={d['fusion']:<10} {d['reference']}")

# %% [markdown]
# ## The data, once for every model

# %%
import mmzoo.datasets

data = mmzoo.datasets.load("shapes_vqa", config=CONFIG, data_dir=DATA_DIR, seq_len=12)
chance = mmzoo.datasets.chance_levels(CONFIG, split="test", data_dir=DATA_DIR)
print(data)
print("one modality alone can reach (test):", chance)

# %% [markdown]
# ## Train every model with the same budget
#
# Latency is the median time of one prediction for a single example (batch of 1) through
# a compiled `tf.function`, on this runtime's hardware.

# %%
import statistics
import time

import tensorflow as tf


def label(model):
    return model if isinstance(model, str) else f"{model['preset']}+{model['fusion']}"


def latency_ms(model, inputs, repeats=50):
    predict = tf.function(lambda x: model(x, training=False))
    predict(inputs)  # trace once
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(inputs)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


one_example, _ = next(iter(data.dataset("test", batch_size=1)))
results = []
for model in MODELS:
    run = mmzoo.train(model, data, out=f"runs/compare/{label(model)}", overwrite=True, verbose=0, **BUDGET)
    m = run.metrics
    results.append({
        "model": label(model),
        "fusion": run.config["build"].get("fusion") or mmzoo.describe(run.config["preset"])["fusion"],
        "accuracy": m["test"]["accuracy"],
        "macro_f1": m["test"]["macro_f1"],
        "params": m["params"],
        "train_seconds": m["train_seconds"],
        "latency_ms": latency_ms(run.model, one_example),
        "ablation": m["ablation"],
    })
    print(f"{label(model):<28} accuracy {m['test']['accuracy']:.3f}  ({m['train_seconds']:.0f} s)")

# %% [markdown]
# ## The table

# %%
import json

from IPython.display import Image, Markdown, display

with open("compare_fusions.json", "w") as f:
    json.dump({"config": CONFIG, "budget": BUDGET, "chance": chance, "results": results}, f, indent=1)

lines = ["| model | fusion | test accuracy | macro F1 | parameters | training time (s) | latency (ms, batch 1) |",
         "|---|---|---:|---:|---:|---:|---:|"]
for r in sorted(results, key=lambda r: -r["accuracy"]):
    lines.append(f"| `{r['model']}` | {r['fusion']} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | {r['params']:,} | "
                 f"{r['train_seconds']:.1f} | {r['latency_ms']:.2f} |")
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## The bar chart

# %%
import matplotlib.pyplot as plt

names = [r["model"] for r in results]
panels = [("accuracy", "test accuracy"), ("params", "parameters"), ("train_seconds", "training time (s)"),
          ("latency_ms", "latency, batch 1 (ms)")]
fig, axes = plt.subplots(1, 4, figsize=(18, 4))
for ax, (key, title) in zip(axes, panels):
    ax.bar(range(len(results)), [r[key] for r in results], color=plt.cm.tab10.colors[: len(results)])
    ax.set_xticks(range(len(results)), names, rotation=35, ha="right", fontsize=8)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
axes[0].axhline(chance["text"], color="gray", linestyle="--", label="text alone (chance)")
axes[0].legend(fontsize=8)
fig.suptitle(f"shapes_vqa/{CONFIG}, {EPOCHS} epoch(s) each")
fig.tight_layout()
fig.savefig("compare_fusions.png", dpi=100)
plt.close(fig)
display(Image("compare_fusions.png"))

# %% [markdown]
# ## Modality ablation per model
#
# For each model: test accuracy with both inputs, with the image only (the question blanked
# to padding) and with the question only (the image blanked to zeros). The dashed lines are
# what a perfect single-modality lookup table reaches (`chance_levels`). A model that relies
# on both inputs drops to about those lines when either is removed.

# %%
import numpy as np

fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(results)) + 2, 4))
width = 0.27
x = np.arange(len(results))
ax.bar(x - width, [r["ablation"]["full"] for r in results], width, label="image + text")
ax.bar(x, [r["ablation"]["only"]["image"] for r in results], width, label="image only")
ax.bar(x + width, [r["ablation"]["only"]["text"] for r in results], width, label="text only")
ax.axhline(chance["text"], color="gray", linestyle="--", linewidth=1, label="text-only chance")
ax.axhline(chance["image"], color="gray", linestyle=":", linewidth=1, label="image-only chance")
ax.set_xticks(x, names, rotation=25, ha="right", fontsize=8)
ax.set_ylabel("test accuracy")
ax.set_title("modality ablation (test split)")
ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
fig.tight_layout()
fig.savefig("compare_fusions_ablation.png", dpi=100)
plt.close(fig)
display(Image("compare_fusions_ablation.png"))

lines = ["| model | both | image only | text only | without image | without text |", "|---|---:|---:|---:|---:|---:|"]
for r in results:
    a = r["ablation"]
    lines.append(f"| `{r['model']}` | {a['full']:.3f} | {a['only']['image']:.3f} | {a['only']['text']:.3f} | "
                 f"{a['without']['image']:.3f} | {a['without']['text']:.3f} |")
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## What to read from it, and a bigger run
#
# * With a few CPU epochs on 512 examples every model is still learning; the ranking can
#   change with more training. Treat this as the method, then run it with a real budget.
# * **GPU runtime**: set `SMALL = False` (8,000 training examples, 20 epochs each) and add
#   `precision="mixed_float16"` and `jit=True` to `BUDGET`; note that latency then measures the
#   GPU (batch 1 on a GPU mostly measures kernel launch overhead). Compare the whole zoo with
#   `MODELS = [m for m in mmzoo.list_models() if mmzoo.describe(m)["modalities"] == ["image", "text"]
#   and mmzoo.describe(m)["head"] == "classification"]`.
# * **TPU**: `mmzoo.train` does not take a distribution strategy; see the TPU note in
#   [01_quickstart](01_quickstart.ipynb).
# * The three-modality presets (`cnn_gru_melcnn_*`: concat, film, attention, tensor, low_rank)
#   compare the same way on `CONFIG = "image_text_audio_small"`.
