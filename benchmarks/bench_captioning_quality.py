"""Captioning quality on material mmzoo did not generate: mmzoo's defaults vs a hand-written Keras captioner.

Two caption manifests (each input captioned twice, in English and in Chinese):

- ``numbers`` (image -> text): a picture of a two-digit number, two of scikit-learn's bundled
  handwritten digits side by side (test pictures from held-out handwriting samples), captioned
  "seven three" and "七三" (the retrieval-quality benchmark's pictures).
- ``spoken`` (audio -> text): a 1.2 s clip of one digit spoken by espeak-ng in English or
  Mandarin (``benchmarks/data/speech_digits.npz``, held-out speakers in the test split; speed,
  level, offset and noise varied), captioned "seven" and "七".

Per task: ``mmzoo train --data captions.csv`` with no other flag (it picks the captioner and its
defaults), in a subprocess; then what a user writes by hand in plain Keras: a Conv2D (or log-mel
Conv1D) encoder whose pooled output starts a GRU decoder, teacher forcing with a masked
cross-entropy, Adam, early stopping on the validation loss with the best weights restored, and a
greedy loop in Python. Both are scored the same way on the test split: **number accuracy** (the
caption names the right number, in either language), exact match against either reference, and
the share of captions in one language (not a mix).

    python benchmarks/bench_captioning_quality.py [--tasks numbers,spoken] [--work runs/captioning_quality]
        (pip install -e ".[bench,captioning]": scikit-learn, sacrebleu, pycocoevalcap)

Results: benchmarks/results/captioning_quality.json and .png.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import bench_retrieval_quality as pairs  # noqa: E402  (after the path setup)

EN, ZH = pairs.EN, pairs.ZH
INPUT = {"numbers": "image", "spoken": "audio"}


# ---------------------------------------------------------------------------- the data
def write_captions(task: str, folder: str, seed: int = 0) -> str:
    """The retrieval benchmark's files, as a caption manifest: both languages for every input."""
    pair_manifest = pairs.write_numbers(folder, seed) if task == "numbers" else pairs.write_spoken(folder, seed)
    rows = list(csv.DictReader(open(pair_manifest, encoding="utf-8")))
    column = INPUT[task]
    out, seen = [], set()
    for r in rows:
        if r[column] in seen:
            continue
        seen.add(r[column])
        words = (r["group"][0], r["group"][1]) if task == "numbers" else (r["group"],)
        digits = [int(d) for d in words]
        for caption in (" ".join(EN[d] for d in digits), "".join(ZH[d] for d in digits)):
            out.append({column: r[column], "caption": caption, "split": r["split"]})
    path = os.path.join(folder, "captions.csv")
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[column, "caption", "split"])
        writer.writeheader()
        writer.writerows(out)
    return path


def tokens(text: str) -> list:
    """What a user writes: words split on spaces, each Chinese character a token."""
    out = []
    for word in text.split():
        out += list(word) if any(ord(c) > 0x2E80 for c in word) else [word]
    return out


def number_of(caption: str):
    """The digits a caption names, in either language (None if it names something else)."""
    digits = []
    for token in tokens(caption):
        if token in EN:
            digits.append(EN.index(token))
        elif token in ZH:
            digits.append(ZH.index(token))
        else:
            return None
    return tuple(digits) or None


def scores(generated: list, references: list) -> dict:
    """number accuracy, exact match (either reference), one language; ``references[i]`` lists
    the input's captions."""
    n = len(generated)
    pairs_ = list(zip(generated, references))
    right = sum(number_of(g) is not None and number_of(g) == number_of(refs[0]) for g, refs in pairs_)
    exact = sum(g.replace(" ", "") in {r.replace(" ", "") for r in refs} for g, refs in pairs_)
    one_language = sum(all(t in EN for t in tokens(g)) or all(t in ZH for t in tokens(g)) for g in generated)
    return {"number_accuracy": right / n, "exact_match": exact / n, "one_language": one_language / n, "inputs": n}


def test_inputs(manifest: str, column: str):
    rows = [r for r in csv.DictReader(open(manifest, encoding="utf-8")) if r["split"] == "test"]
    refs = {}
    for r in rows:
        refs.setdefault(r[column], []).append(r["caption"])
    return list(refs), list(refs.values())


# ---------------------------------------------------------------------------- mmzoo
def mmzoo_defaults(manifest: str, column: str, work: str) -> dict:
    """``mmzoo train --data MANIFEST --out RUN`` with no other flag, in its own process; then the
    run's model captions the test inputs."""
    import mmzoo

    run_dir = os.path.join(work, "run")
    started = time.time()
    proc = subprocess.run([sys.executable, "-m", "mmzoo.cli", "train", "--data", manifest, "--out", run_dir,
                           "--overwrite"], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT})
    if proc.returncode != 0:
        raise RuntimeError(f"mmzoo train failed:\n{proc.stderr[-3000:]}")
    seconds = time.time() - started
    run = mmzoo.open_run(run_dir)
    files, references = test_inputs(manifest, column)
    root = os.path.dirname(manifest)
    generated = []
    for i in range(0, len(files), 64):
        batch = [open(os.path.join(root, f), "rb").read() for f in files[i:i + 64]]
        generated += [g["caption"] for g in run.model.generate({column: batch})]
    test = run.metrics["test"]
    return {"preset": run.config["preset"] or run.config.get("model_choice"), **scores(generated, references),
            "bleu4": test["bleu4"], "cider_d": test["cider_d"], "seconds": seconds,
            "train_seconds": run.metrics["train_seconds"], "epochs": run.metrics["epochs_run"],
            "params": run.metrics["params"], "examples": list(zip(files[:5], generated[:5]))}


# ---------------------------------------------------------------------------- the baseline
def baseline(manifest: str, column: str, seed: int = 0, epochs: int = 60, patience: int = 5) -> dict:
    """A hand-written Keras captioner: encoder -> GRU decoder started from it, teacher forcing."""
    import wave

    import keras
    import numpy as np
    from keras import layers
    from PIL import Image

    keras.utils.set_random_seed(seed)
    started = time.time()
    root = os.path.dirname(manifest)
    rows = list(csv.DictReader(open(manifest, encoding="utf-8")))
    vocab = ["<pad>", "<start>", "<end>"] + sorted({t for r in rows if r["split"] == "train"
                                                    for t in tokens(r["caption"])})
    index = {t: i for i, t in enumerate(vocab)}
    length = max(len(tokens(r["caption"])) for r in rows) + 1

    def load_input(name):
        if column == "image":
            return np.asarray(Image.open(os.path.join(root, name)).convert("RGB"), np.float32) / 255
        with wave.open(os.path.join(root, name)) as w:
            return (np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768).astype(np.float32)

    def load(split):
        rs = [r for r in rows if r["split"] == split]
        x = np.stack([load_input(r[column]) for r in rs])
        ids = [[index[t] for t in tokens(r["caption"])] for r in rs]
        dec_in = np.array([[1] + s + [0] * (length - 1 - len(s)) for s in ids])
        dec_out = np.array([s + [2] + [0] * (length - 1 - len(s)) for s in ids])
        return {column: x, "tokens": dec_in}, dec_out

    data = {s: load(s) for s in ("train", "validation")}
    source = keras.Input(data["train"][0][column].shape[1:], name=column)
    if column == "image":
        x = source
        for filters in (32, 64):
            x = layers.MaxPooling2D()(layers.Conv2D(filters, 3, activation="relu")(x))
        x = layers.Flatten()(x)
    else:
        x = layers.MelSpectrogram(fft_length=512, sequence_stride=160, num_mel_bins=64)(source)
        x = layers.BatchNormalization()(layers.Permute((2, 1))(x))
        for filters in (64, 128):
            x = layers.MaxPooling1D()(layers.Conv1D(filters, 5, padding="same", activation="relu")(x))
        x = layers.GlobalMaxPooling1D()(x)
    state = layers.Dense(256, activation="tanh")(layers.Dropout(0.3)(x))
    words = keras.Input((length,), dtype="int32", name="tokens")
    h = layers.GRU(256, return_sequences=True)(layers.Embedding(len(vocab), 64, mask_zero=True)(words),
                                              initial_state=state)
    logits = layers.Dense(len(vocab))(h)
    model = keras.Model({column: source, "tokens": words}, logits)

    def masked_loss(y_true, y_pred):
        loss = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        mask = keras.ops.cast(keras.ops.not_equal(y_true, 0), "float32")
        return keras.ops.sum(loss * mask) / keras.ops.maximum(keras.ops.sum(mask), 1.0)

    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=masked_loss)
    stop = keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)
    history = model.fit(data["train"][0], data["train"][1], batch_size=64, epochs=epochs, verbose=0,
                        validation_data=data["validation"], callbacks=[stop])
    seconds = time.time() - started

    files, references = test_inputs(manifest, column)
    x = np.stack([load_input(f) for f in files])
    ids = np.zeros((len(files), length), np.int32)
    ids[:, 0] = 1
    done = np.zeros(len(files), bool)
    for step in range(length - 1):  # greedy: the whole prefix again each step (what a user writes first)
        best = model.predict({column: x, "tokens": ids}, batch_size=256, verbose=0)[:, step].argmax(-1)
        ids[:, step + 1] = np.where(done, 0, best)
        done |= best == 2
    generated = []
    for row in ids[:, 1:]:
        out = []
        for i in row:
            if i in (0, 2):
                break
            out.append(vocab[i])
        generated.append("".join(out) if out and all(t in ZH for t in out) else " ".join(out))
    return {**scores(generated, references), "seconds": seconds, "epochs": len(history.history["loss"]),
            "params": int(model.count_params()), "examples": list(zip(files[:5], generated[:5]))}


# ---------------------------------------------------------------------------- report
def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(results)
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.35
    for k, who in enumerate(("baseline", "mmzoo")):
        ax.bar([i + (k - 0.5) * width for i in range(len(tasks))],
               [results[t][who]["number_accuracy"] for t in tasks], width, label=who)
    ax.set_xticks(range(len(tasks)), [f"{t} ({INPUT[t]} -> text)" for t in tasks])
    ax.set(ylabel="names the right number (test)", ylim=(0, 1.05),
           title="Captioning on outside material: mmzoo defaults vs hand-written Keras")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary(results: dict) -> dict:
    """One row per task and contender (the guide's table)."""
    return {f"{task}, {who}": {k: r[who][k] for k in ("number_accuracy", "exact_match", "one_language", "seconds",
                                                      "epochs", "params")}
            for task, r in results.items() for who in ("baseline", "mmzoo")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="numbers,spoken")
    parser.add_argument("--work", default=os.path.join(ROOT, "runs", "captioning_quality"))
    args = parser.parse_args(argv)
    results = {}
    for task in args.tasks.split(","):
        folder = os.path.join(args.work, task)
        os.makedirs(folder, exist_ok=True)
        manifest = write_captions(task, folder)
        print(f"{task}: training mmzoo (no flag) ...", flush=True)
        ours = mmzoo_defaults(manifest, INPUT[task], folder)
        print(f"{task}: training the hand-written Keras captioner ...", flush=True)
        theirs = baseline(manifest, INPUT[task])
        results[task] = {"mmzoo": ours, "baseline": theirs}
        print(f"{task}: number accuracy mmzoo {ours['number_accuracy']:.3f} ({ours['preset']}, "
              f"{ours['seconds']:.0f} s) vs Keras {theirs['number_accuracy']:.3f} ({theirs['seconds']:.0f} s)",
              flush=True)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "captioning_quality.json"), "w", encoding="utf-8") as f:
        json.dump({"date": time.strftime("%Y-%m-%d"), "summary": summary(results), "results": results}, f, indent=2,
                  ensure_ascii=False)
    plot(results, os.path.join(HERE, "results", "captioning_quality.png"))
    print("")
    print("| task | who | names the number | exact | one language | BLEU-4 | time |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for task, r in results.items():
        for who in ("baseline", "mmzoo"):
            x = r[who]
            bleu = f"{x['bleu4']:.1f}" if "bleu4" in x else "-"
            print(f"| {task} | {who} | {x['number_accuracy']:.3f} | {x['exact_match']:.3f} | {x['one_language']:.3f} "
                  f"| {bleu} | {x['seconds']:.0f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
