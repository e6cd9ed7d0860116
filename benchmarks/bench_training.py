"""Training throughput of cnn_gru_concat: mmzoo vs plain Keras vs a PyTorch twin.

    python benchmarks/bench_training.py [--examples 1024] [--epochs 4] [--rounds 2]

All three train the same architecture (image Conv2D(32)+MaxPool+Conv2D(64)+MaxPool+Flatten;
text Embedding(10000, 128) + Bidirectional GRU(64) + Dense(64) + Dropout(0.5);
concatenate; Dense(64); Dense(10)) at batch 64 on the same data, on the CPU with 2 threads:

- mmzoo: real PNG files and texts through `mmzoo.data.from_manifest` (decoded once, cached
  in memory) and `mmzoo.build("cnn_gru_concat")` (FastGRU: the GRU input projection hoisted
  out of the time loop), `model.fit`;
- keras: the naive seed-style way: the same network from plain `keras.layers` (stock GRU),
  `model.fit` on numpy arrays;
- torch: the same network in PyTorch eager (`nn.GRU(bidirectional=True)`, Adam), needs the
  `bench` extra (`pip install -e ".[bench]"`).

First each runs alone in its own process (--rounds times, for its peak RSS and an isolated
speed); then all three run in one process, one epoch each in turn (--cycles times), so the
machine's state hits them alike: the headline samples/s are the medians of those interleaved
epochs and the ratio is the median of the per-cycle ratios. Results are printed and saved to
benchmarks/results/training.json and training.png.

Each epoch is one `fit` call, so each makes and tears down a tf.data iterator. With tf.data's
autotuner on (Keras' own pipeline for numpy arrays, or `dataset(autotune=True)`), TF 2.21 can
hold the teardown until the autotuner's current sleep ends (10 ms doubling up to 60 s): a
1.5 s epoch then takes 2.55 s, at random. mmzoo's pipelines run without the autotuner;
`--autotune` adds mmzoo with it on to the interleaved run to show the difference.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
BATCH, SEQ_LEN, VOCAB, CLASSES, SIZE = 64, 32, 10000, 10, 64


def make_arrays(n: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)
    lengths = rng.integers(5, SEQ_LEN + 1, n)
    text = np.zeros((n, SEQ_LEN), np.int32)
    for i, length in enumerate(lengths):
        text[i, :length] = rng.integers(2, VOCAB, length)
    labels = rng.integers(0, CLASSES, n).astype(np.int32)
    return images, text, labels


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_epochs(run_epoch, n: int, epochs: int) -> list:
    run_epoch()  # warm-up (tracing, allocation)
    rates = []
    for _ in range(epochs):
        start = time.perf_counter()
        run_epoch()
        rates.append(n / (time.perf_counter() - start))
    return rates


# --------------------------------------------------------------------------- workers
def setup_mmzoo(n: int, autotune: bool = False):

    import mmzoo
    from mmzoo.data.samples import encode_image

    images, text, labels = make_arrays(n)
    words = [f"w{i}" for i in range(VOCAB)]
    folder = tempfile.mkdtemp(prefix="mmzoo-bench-")
    with open(os.path.join(folder, "train.csv"), "w", encoding="utf-8") as f:
        f.write("image,text,label,split\n")
        for i in range(n):
            name = f"img{i}.png"
            with open(os.path.join(folder, name), "wb") as img:
                img.write(encode_image(images[i], "png"))
            sentence = " ".join(words[t] for t in text[i] if t)
            f.write(f"{name},{sentence},c{labels[i]},train\n")
    data = mmzoo.data.from_manifest(os.path.join(folder, "train.csv"), image_size=(SIZE, SIZE), seq_len=SEQ_LEN,
                                    max_vocab_size=VOCAB - 2)  # + padding and OOV ids
    model = mmzoo.build("cnn_gru_concat", **{**data.model_kwargs(), "vocab_size": VOCAB}, seed=0)
    ds = data.dataset("train", batch_size=BATCH, shuffle=True, seed=0, cache="memory", autotune=autotune)
    return (lambda: model.fit(ds, epochs=1, verbose=0)), int(model.count_params())


def setup_mmzoo_autotune(n: int):
    return setup_mmzoo(n, autotune=True)


def setup_keras(n: int):
    import keras
    from keras import layers

    images, text, labels = make_arrays(n)
    keras.utils.set_random_seed(0)
    image_in = keras.Input((SIZE, SIZE, 3), name="image")
    x = layers.Rescaling(1 / 255)(image_in)
    x = layers.MaxPooling2D()(layers.Conv2D(32, 3, activation="relu")(x))
    x = layers.MaxPooling2D()(layers.Conv2D(64, 3, activation="relu")(x))
    x = layers.Flatten()(x)
    text_in = keras.Input((SEQ_LEN,), dtype="int32", name="text")
    t = layers.Embedding(VOCAB, 128, mask_zero=True)(text_in)
    t = layers.Bidirectional(layers.GRU(64))(t)
    t = layers.Dropout(0.5)(layers.Dense(64, activation="relu")(t))
    h = layers.Dense(64, activation="relu")(layers.Concatenate()([x, t]))
    out = layers.Dense(CLASSES, activation="softmax")(h)
    model = keras.Model({"image": image_in, "text": text_in}, out)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x_np = {"image": images.astype("float32"), "text": text}
    return (lambda: model.fit(x_np, labels, batch_size=BATCH, epochs=1, verbose=0)), int(model.count_params())


def setup_torch(n: int):
    import torch
    from torch import nn

    torch.set_num_threads(2)
    torch.manual_seed(0)
    images, text, labels = make_arrays(n)

    class Twin(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
            self.embedding = nn.Embedding(VOCAB, 128, padding_idx=0)
            self.gru = nn.GRU(128, 64, batch_first=True, bidirectional=True)
            self.text_dense = nn.Sequential(nn.Linear(128, 64), nn.ReLU(), nn.Dropout(0.5))
            self.head = nn.Sequential(nn.Linear(14 * 14 * 64 + 64, 64), nn.ReLU(), nn.Linear(64, CLASSES))

        def forward(self, image, ids):
            x = self.conv(image.permute(0, 3, 1, 2) / 255.0)
            _, h = self.gru(self.embedding(ids))
            t = self.text_dense(torch.cat([h[0], h[1]], dim=-1))
            return self.head(torch.cat([x, t], dim=-1))

    model = Twin()
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    loss_fn = nn.CrossEntropyLoss()
    img_t = torch.from_numpy(images).float()
    txt_t = torch.from_numpy(text).long()
    lab_t = torch.from_numpy(labels).long()

    def epoch():
        model.train()
        order = torch.randperm(n)
        for start in range(0, n, BATCH):
            idx = order[start : start + BATCH]
            optimizer.zero_grad()
            loss = loss_fn(model(img_t[idx], txt_t[idx]), lab_t[idx])
            loss.backward()
            optimizer.step()

    return epoch, int(sum(p.numel() for p in model.parameters()))


SETUPS = {"mmzoo": setup_mmzoo, "keras": setup_keras, "torch": setup_torch}
#: with --autotune: mmzoo's pipeline with tf.data's autotuner on (interleaved run only)
EXTRA = {"mmzoo_autotune": setup_mmzoo_autotune}


def isolated_worker(name: str, n: int, epochs: int) -> dict:
    """One framework alone in this process: epoch throughputs and peak memory."""
    run_epoch, params = SETUPS[name](n)
    return {"samples_per_s": time_epochs(run_epoch, n, epochs), "params": params, "peak_rss_mib": peak_rss_mib()}


def interleaved(n: int, cycles: int, autotune: bool = False) -> dict:
    """All three in one process, one epoch each in turn, so a busy or slow phase of the
    machine hits them alike.

    Returns per-framework epoch throughputs and, per cycle, mmzoo's ratio to each.
    """
    trainers = {}
    for name, setup in {**SETUPS, **(EXTRA if autotune else {})}.items():
        try:
            trainers[name] = setup(n)
        except ImportError as e:
            print(f"{name}: unavailable ({e})", flush=True)
    for run_epoch, _ in trainers.values():
        run_epoch()  # warm-up
    rates = {name: [] for name in trainers}
    for _ in range(cycles):
        for name, (run_epoch, _) in trainers.items():
            start = time.perf_counter()
            run_epoch()
            rates[name].append(n / (time.perf_counter() - start))
    ratios = {
        other: [m / o for m, o in zip(rates["mmzoo"], rates[other])] for other in rates if other != "mmzoo"
    }
    return {"samples_per_s": rates, "mmzoo_ratio_per_cycle": ratios,
            "params": {name: params for name, (_, params) in trainers.items()}}


def run_worker(name: Optional[str], n: int, epochs: int, cycles: int = 0, autotune: bool = False) -> dict:
    """Run a benchmark process: one framework alone, or (name None) all three interleaved."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE",
           "TF_NUM_INTRAOP_THREADS": "2", "TF_NUM_INTEROP_THREADS": "2"}
    mode = ["--worker", name] if name else ["--interleaved", "--cycles", str(cycles)] + ["--autotune"] * autotune
    out = subprocess.run([sys.executable, __file__, *mode, "--examples", str(n), "--epochs", str(epochs)],
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def plot(summary: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [k for k in summary if "median_samples_per_s" in summary[k]]
    values = [summary[k]["median_samples_per_s"] for k in names]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    bars = ax.bar(names, values, color=["#2a7", "#888", "#c64", "#8c8"][: len(names)])
    for bar, v in zip(bars, values):
        ax.text(bar.get_x() + bar.get_width() / 2, v, f"{v:.0f}", ha="center", va="bottom")
    ax.set_ylabel("training samples/s (batch 64)")
    ax.set_title("cnn_gru_concat training throughput, 2 CPU threads")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=4, help="timed epochs per round (after one warm-up)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--worker", choices=sorted(SETUPS))
    parser.add_argument("--interleaved", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cycles", type=int, default=6, help="interleaved epochs per framework")
    parser.add_argument("--autotune", action="store_true",
                        help="also run mmzoo's pipeline with tf.data's autotuner on (interleaved)")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(isolated_worker(args.worker, args.examples, args.epochs)))
        return 0

    if args.interleaved:
        print(json.dumps(interleaved(args.examples, args.cycles, args.autotune)))
        return 0

    samples = {name: [] for name in SETUPS}
    info = {name: {} for name in SETUPS}
    for r in range(args.rounds):
        for name in SETUPS:
            result = run_worker(name, args.examples, args.epochs)
            if "error" in result:
                info[name]["error"] = result["error"]
                continue
            samples[name] += result["samples_per_s"]
            info[name]["params"] = result["params"]
            info[name]["peak_rss_mib"] = max(info[name].get("peak_rss_mib", 0), result["peak_rss_mib"])
            print(f"round {r + 1}: {name:6s} median {statistics.median(result['samples_per_s']):7.1f} samples/s",
                  flush=True)
    summary = {}
    for name in SETUPS:
        summary[name] = dict(info[name])
        if samples[name]:
            summary[name]["isolated_median_samples_per_s"] = statistics.median(samples[name])

    # The headline: all three in one process, an epoch each in turn (see `interleaved`).
    inter = run_worker(None, args.examples, 0, cycles=args.cycles, autotune=args.autotune)
    if "error" in inter:
        print(f"interleaved run failed: {inter['error']}")
        return 1
    for name, rates in inter["samples_per_s"].items():
        summary.setdefault(name, {"params": inter["params"][name]})
        summary[name]["median_samples_per_s"] = statistics.median(rates)
        summary[name]["interleaved_samples_per_s"] = rates
    ratios = {k: statistics.median(v) for k, v in inter["mmzoo_ratio_per_cycle"].items()}
    print(f"\ninterleaved ({args.cycles} cycles):")
    print(f"{'':15s} {'samples/s':>10s} {'isolated':>9s} {'params':>10s} {'peak RSS':>10s}")
    for name, s in summary.items():
        if "median_samples_per_s" not in s:
            print(f"{name:15s} unavailable: {s.get('error')}")
            continue
        isolated = s.get("isolated_median_samples_per_s")
        rss = s.get("peak_rss_mib")
        print(f"{name:15s} {s['median_samples_per_s']:10.1f} {f'{isolated:.1f}' if isolated else '-':>9s} "
              f"{s.get('params', 0):>10,d} {f'{rss:.0f} MiB' if rss else '-':>10s}")
    for other, r in ratios.items():
        print(f"mmzoo / {other}: {r:.2f}x (median of per-cycle ratios)")
    if "torch" in ratios:
        summary["mmzoo"]["vs_torch"] = ratios["torch"]
    os.makedirs(RESULTS, exist_ok=True)
    record = {"examples": args.examples, "epochs": args.epochs, "rounds": args.rounds, "cycles": args.cycles,
              "batch_size": BATCH, "mmzoo_ratio": ratios, "results": summary, "date": time.strftime("%Y-%m-%d")}
    with open(os.path.join(RESULTS, "training.json"), "w") as f:
        json.dump(record, f, indent=2)
    plot(summary, os.path.join(RESULTS, "training.png"))
    print(f"saved {os.path.join(RESULTS, 'training.json')} and training.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
