"""Retrieval quality on material mmzoo did not generate: mmzoo's defaults vs a hand-written Keras dual encoder.

Two pair manifests, written from scikit-learn's bundled handwritten digits and from spoken digits
synthesized by espeak-ng in English and Mandarin (stored once in ``benchmarks/data/speech_digits.npz``,
held-out speakers in the test split):

- ``numbers`` (text -> image): a picture of a two-digit number, two handwritten digits side by side
  (test pictures drawn from held-out handwriting samples), captioned "seven three" and "七三"; the
  100 numbers are the groups (every picture of 73 answers "seven three"). Chance recall@1: 0.01.
- ``spoken`` (text -> audio): a 1.2 s clip of one spoken digit (speed, level, offset and noise
  varied), captioned with the written word ("seven", "七"); the 10 digits are the groups. Chance
  recall@1: 0.1, from either language.

Per task: ``mmzoo train --data pairs.csv`` with no other flag (it picks the retriever and its
defaults), in a subprocess, read back from ``metrics.json``; then what a user writes by hand in
plain Keras: the same kind of towers (Conv2D / log-mel Conv1D, a character-level BiGRU), 128-d
normalised projections, the CLIP loss with ``labels = arange(batch)`` (no groups), Adam, early
stopping on the validation loss with the best weights restored. Both are scored by the same
pool-wide ranking (`mmzoo.tasks.ranking`) on the test split.

    python benchmarks/bench_retrieval_quality.py [--tasks numbers,spoken] [--work runs/retrieval_quality]
        (pip install -e ".[bench]": scikit-learn)

Results: benchmarks/results/retrieval_quality.json and .png.
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

from benchmarks.smalldata import tasks as tasks_lib  # noqa: E402  (after the path setup)

EN = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ZH = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"]
SIZES = {"numbers": {"train": 2000, "validation": 300, "test": 500},
         "spoken": {"train": 1500, "validation": 250, "test": 400}}


# ---------------------------------------------------------------------------- the data
def write_numbers(folder: str, seed: int = 0) -> str:
    import numpy as np
    from PIL import Image

    pools = tasks_lib.handwritten_pools(seed)
    rng = np.random.default_rng([seed, 73])
    os.makedirs(os.path.join(folder, "images"), exist_ok=True)
    rows = []
    for split, n in SIZES["numbers"].items():
        for i in range(n):
            number = int(rng.integers(0, 100))
            canvas = Image.new("L", (64, 32), 0)
            for place, digit in enumerate(divmod(number, 10)):
                pool = pools[split][digit]
                canvas.paste(tasks_lib.render_handwritten(pool[int(rng.integers(len(pool)))], rng), (place * 32, 0))
            name = f"images/{split}_{i:05d}.png"
            canvas.convert("RGB").save(os.path.join(folder, name))
            tens, units = divmod(number, 10)
            for text in (f"{EN[tens]} {EN[units]}", ZH[tens] + ZH[units]):
                rows.append({"image": name, "text": text, "group": f"{number:02d}", "split": split})
    return _write(folder, rows)


def write_spoken(folder: str, seed: int = 0) -> str:
    import numpy as np

    pools = tasks_lib.speech_pools()
    rng = np.random.default_rng([seed, 7])
    os.makedirs(os.path.join(folder, "audio"), exist_ok=True)
    rows = []
    for split, n in SIZES["spoken"].items():
        keys = sorted(pools[split])
        for i in range(n):
            language, digit = keys[int(rng.integers(len(keys)))]
            clips = pools[split][(language, digit)]
            wave, _, _ = tasks_lib.place_clip(clips[int(rng.integers(len(clips)))], rng)
            name = f"audio/{split}_{i:05d}.wav"
            tasks_lib.write_wav(os.path.join(folder, name), wave)
            text = EN[digit] if rng.random() < 0.5 else ZH[digit]
            rows.append({"audio": name, "text": text, "group": str(digit), "split": split})
    return _write(folder, rows)


def _write(folder: str, rows: list) -> str:
    path = os.path.join(folder, "pairs.csv")
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


# ---------------------------------------------------------------------------- the baseline
def baseline(manifest: str, candidate: str, seed: int = 0, epochs: int = 60, patience: int = 5) -> dict:
    """A hand-written Keras dual encoder (character-level text), CLIP loss without groups."""
    import wave

    import keras
    import numpy as np
    import tensorflow as tf
    from keras import layers
    from PIL import Image

    from mmzoo.tasks import ranking

    keras.utils.set_random_seed(seed)
    started = time.time()
    root = os.path.dirname(manifest)
    rows = list(csv.DictReader(open(manifest, encoding="utf-8")))
    split = {s: [r for r in rows if r["split"] == s] for s in ("train", "validation", "test")}
    chars = {c: i + 2 for i, c in enumerate(sorted({c for r in split["train"] for c in r["text"]}))}
    text_len = max(len(r["text"]) for r in rows)

    def load(rs):
        text = np.array([[chars.get(c, 1) for c in r["text"]] + [0] * (text_len - len(r["text"])) for r in rs])
        if candidate == "image":
            x = np.stack([np.asarray(Image.open(os.path.join(root, r["image"])).convert("RGB"), np.float32) / 255
                          for r in rs])
        else:
            x = []
            for r in rs:
                with wave.open(os.path.join(root, r["audio"])) as w:
                    x.append(np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768)
            x = np.stack(x).astype(np.float32)
        groups = {g: i for i, g in enumerate(dict.fromkeys(r["group"] for r in rs))}
        return {"text": text, candidate: x}, np.array([groups[r["group"]] for r in rs])

    data = {s: load(rs) for s, rs in split.items()}
    text = keras.Input((text_len,), dtype="int32", name="text")
    t = layers.Bidirectional(layers.GRU(64))(layers.Embedding(len(chars) + 2, 64, mask_zero=True)(text))
    shape = data["train"][0][candidate].shape[1:]
    other = keras.Input(shape, name=candidate)
    if candidate == "image":
        x = other
        for filters in (32, 64):
            x = layers.MaxPooling2D()(layers.Conv2D(filters, 3, activation="relu")(x))
        x = layers.Flatten()(x)
    else:
        x = layers.MelSpectrogram(fft_length=512, sequence_stride=160, num_mel_bins=64)(other)
        x = layers.BatchNormalization()(layers.Permute((2, 1))(x))
        for filters in (64, 128):
            x = layers.MaxPooling1D()(layers.Conv1D(filters, 5, padding="same", activation="relu")(x))
        x = layers.GlobalMaxPooling1D()(x)
    query = layers.UnitNormalization()(layers.Dense(128)(t))
    cand = layers.UnitNormalization()(layers.Dense(128)(x))

    class DualEncoder(keras.Model):
        def __init__(self):
            super().__init__(inputs={"text": text, candidate: other}, outputs={"query": query, "candidate": cand})
            self.log_scale = tf.Variable(2.659)

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            logits = tf.exp(self.log_scale) * tf.matmul(y_pred["query"], y_pred["candidate"], transpose_b=True)
            labels = tf.range(tf.shape(logits)[0])
            return 0.5 * (tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
                          + tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                              labels, tf.transpose(logits), from_logits=True)))

    model = DualEncoder()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    stop = keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)
    history = model.fit(data["train"][0], data["train"][1], batch_size=64, epochs=epochs, verbose=0,
                        validation_data=data["validation"], callbacks=[stop])
    seconds = time.time() - started
    out = model.predict(data["test"][0], batch_size=256, verbose=0)
    groups = data["test"][1]
    return {"query_to_candidate": ranking.rank_metrics(out["query"], groups, out["candidate"], groups),
            "candidate_to_query": ranking.rank_metrics(out["candidate"], groups, out["query"], groups),
            "seconds": seconds, "epochs": len(history.history["loss"]), "params": int(model.count_params())}


def mmzoo_defaults(manifest: str, work: str) -> dict:
    """``mmzoo train --data MANIFEST --out RUN`` with no other flag, in its own process."""
    run = os.path.join(work, "run")
    started = time.time()
    proc = subprocess.run([sys.executable, "-m", "mmzoo.cli", "train", "--data", manifest, "--out", run,
                           "--overwrite"], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT})
    if proc.returncode != 0:
        raise RuntimeError(f"mmzoo train failed:\n{proc.stderr[-3000:]}")
    metrics = json.load(open(os.path.join(run, "metrics.json"), encoding="utf-8"))
    config = json.load(open(os.path.join(run, "config.json"), encoding="utf-8"))
    test = metrics["test"]
    first, second = [k for k in test if k not in ("examples", "headline")]
    return {"preset": config["preset"] or config.get("model_choice"), "query_to_candidate": test[first],
            "candidate_to_query": test[second], "seconds": time.time() - started,
            "train_seconds": metrics["train_seconds"], "epochs": metrics["epochs_run"], "params": metrics["params"]}


def row(result: dict) -> dict:
    q, c = result["query_to_candidate"], result["candidate_to_query"]
    return {"R@1": q["recall@1"], "R@5": q["recall@5"], "R@10": q["recall@10"], "median_rank": q["median_rank"],
            "reverse_R@5": c["recall@5"], "chance_R@1": q["chance_recall@1"], "pool": q["pool"],
            "seconds": result["seconds"], "epochs": result["epochs"]}


def plot(results: dict, path: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4 * len(results), 3.4))
    axes = fig.subplots(1, len(results), squeeze=False)[0]
    for ax, (task, contenders) in zip(axes, results.items()):
        names = list(contenders)
        for j, k in enumerate(("R@1", "R@5", "R@10")):
            ax.bar([i + 0.27 * j for i in range(len(names))], [contenders[n][k] for n in names], width=0.27, label=k)
        ax.axhline(contenders[names[0]]["chance_R@1"], color="grey", linestyle=":", label="chance R@1")
        ax.set_xticks([i + 0.27 for i in range(len(names))], names, fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{task}: query -> candidate (test pool)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="numbers,spoken")
    parser.add_argument("--work", default=os.path.join("runs", "retrieval_quality"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "retrieval_quality.json"))
    args = parser.parse_args(argv)
    results, raw = {}, {}
    for task in args.tasks.split(","):
        folder = os.path.join(args.work, task, "data")
        os.makedirs(folder, exist_ok=True)
        manifest = write_numbers(folder, args.seed) if task == "numbers" else write_spoken(folder, args.seed)
        candidate = "image" if task == "numbers" else "audio"
        print(f"{task}: {manifest}", flush=True)
        base = baseline(manifest, candidate, args.seed)
        print(f"  plain Keras: R@1 {base['query_to_candidate']['recall@1']:.3f} in {base['seconds']:.0f} s", flush=True)
        ours = mmzoo_defaults(manifest, os.path.join(args.work, task))
        print(f"  mmzoo ({ours['preset']}): R@1 {ours['query_to_candidate']['recall@1']:.3f} in "
              f"{ours['seconds']:.0f} s", flush=True)
        results[task] = {"plain Keras": row(base), f"mmzoo train ({ours['preset']})": row(ours)}
        raw[task] = {"baseline": base, "mmzoo": ours}
    print("\n| task | contender | R@1 | R@5 | R@10 | median rank | reverse R@5 | chance R@1 | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for task, contenders in results.items():
        for name, r in contenders.items():
            print(f"| {task} | {name} | {r['R@1']:.3f} | {r['R@5']:.3f} | {r['R@10']:.3f} | {r['median_rank']:g} | "
                  f"{r['reverse_R@5']:.3f} | {r['chance_R@1']:.3f} | {r['seconds']:.0f} |")
    record = {"date": time.strftime("%Y-%m-%d"), "seed": args.seed, **{f"{t}": v for t, v in results.items()}}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1, ensure_ascii=False)
    with open(os.path.join(args.work, "details.json"), "w", encoding="utf-8") as f:
        json.dump(raw, f, indent=1, ensure_ascii=False)
    plot(results, args.out[:-5] + ".png")
    print(f"\nsaved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
