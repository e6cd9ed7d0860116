"""Training throughput of cnn_gru_concat: mmzoo vs plain Keras vs a PyTorch twin.

    python benchmarks/bench_training.py [--examples 1024] [--cycles 8] [--autotune]

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

Each framework runs in a process of its own, set up once; after a warm-up epoch each, the
processes train one epoch each in turn (--cycles times, the order rotated from cycle to cycle),
so a busy or slow phase of the machine hits them alike: the headline samples/s are the medians
of those epochs and the ratios the medians of the per-cycle ratios. The table also gives
samples per CPU-second of each process (all its threads): that leaves out time spent waiting,
for a CPU that other jobs hold or idle (as in the autotuner stall below). Results are printed
and saved to benchmarks/results/training.json and training.png.

TensorFlow and torch never share a process: a CUDA build of torch imports triton (`torch.optim`
does, through torch._dynamo), whose LLVM then binds to the LLVM symbols that TensorFlow's
libtensorflow_framework.so.2 exports, and triton's static initializers crash (SIGSEGV in
`llvm::DebugCounter`) when TensorFlow was loaded first. The `bench` extra pins torch's CPU
build where pip finds one, which has no triton; the separate processes make either build safe.

Each epoch is one `fit` call, so each makes and tears down a tf.data iterator. With tf.data's
autotuner on (Keras' own pipeline for numpy arrays, or `dataset(autotune=True)`), TF 2.21 can
hold the teardown until the autotuner's current sleep ends (10 ms doubling up to 60 s): a
1.5 s epoch then takes 2.55 s, at random. mmzoo's pipelines run without the autotuner;
`--autotune` adds mmzoo with it on (`mmzoo_autotune`) to show the difference.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
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
    # mmzoo.train's default augmentation (image shift / rotation, text token dropout, modality dropout)
    # rides along: it must not starve the trainer
    from mmzoo.data.augment import Augmentation, augmented

    ds = augmented(ds, Augmentation(), seed=0)
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
#: with --autotune: mmzoo's pipeline with tf.data's autotuner on
EXTRA = {"mmzoo_autotune": setup_mmzoo_autotune}
TARGETS = {"torch": 1.5, "keras": 1.3}  # mmzoo's training throughput / the other's


def serve(name: str, n: int) -> None:
    """Worker process: set one framework up, then answer the controller on stdin/stdout:
    ``epoch`` (train one epoch: its wall-clock and CPU seconds) and ``stats`` (params, peak RSS,
    modules loaded)."""
    reply_to = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything else printed goes to the worker's log, not into the replies

    def reply(message: dict) -> None:
        reply_to.write(json.dumps(message) + "\n")
        reply_to.flush()

    run_epoch, params = {**SETUPS, **EXTRA}[name](n)
    reply({"params": params})
    for line in sys.stdin:
        if line.strip() == "epoch":
            start, cpu = time.perf_counter(), time.process_time()
            run_epoch()
            reply({"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu})
        elif line.strip() == "stats":
            reply({"params": params, "peak_rss_mib": peak_rss_mib(),
                   "frameworks_loaded": [m for m in ("tensorflow", "torch") if m in sys.modules]})


class Worker:
    """A framework in a process of its own (`serve`), driven one epoch at a time."""

    ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE",
           "TF_NUM_INTRAOP_THREADS": "2", "TF_NUM_INTEROP_THREADS": "2"}

    def __init__(self, name: str, n: int):
        self.name, self.error = name, None
        self._log = tempfile.TemporaryFile("w+")
        self._process = subprocess.Popen([sys.executable, __file__, "--serve", name, "--examples", str(n)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                         text=True, env={**os.environ, **self.ENV})
        self.params = (self._reply() or {}).get("params")

    def _reply(self) -> Optional[dict]:
        line = self._process.stdout.readline()
        if line:
            return json.loads(line)
        code = self._process.wait()
        self._log.seek(0)
        lines = self._log.read().strip().splitlines()
        self.error = f"killed by {signal.Signals(-code).name}" if code < 0 else (lines[-1] if lines else f"exit {code}")
        return None

    def ask(self, command: str) -> Optional[dict]:
        if self.error:
            return None
        try:
            self._process.stdin.write(command + "\n")
            self._process.stdin.flush()
        except BrokenPipeError:
            pass  # it ended: _reply says why
        return self._reply()

    def epoch(self) -> Optional[dict]:
        """Wall-clock and CPU seconds of one training epoch, or None once the worker has failed."""
        return self.ask("epoch")

    def close(self) -> dict:
        stats = self.ask("stats") or {"error": self.error}
        if self._process.poll() is None:
            self._process.stdin.close()
            self._process.wait()
        self._log.close()
        return stats


def interleaved(names: list, n: int, cycles: int) -> dict:
    """Every framework in its own process; after a warm-up epoch each, one epoch each in turn,
    the order rotated each cycle. Returns each one's epoch throughputs (per second and per CPU
    second, None for a failed epoch), stats and errors."""
    workers = []
    for name in names:  # set up one after the other, so that they do not compete
        worker = Worker(name, n)
        print(f"{name}: {'unavailable: ' + worker.error if worker.error else 'ready'}", flush=True)
        workers.append(worker)
    live = [w for w in workers if not w.error]
    for worker in live:
        worker.epoch()  # warm-up (tracing, allocation)
    rates = {w.name: [] for w in live}
    cpu_rates = {w.name: [] for w in live}
    for cycle in range(cycles):
        shift = cycle % max(1, len(live))
        for worker in live[shift:] + live[:shift]:
            timing = worker.epoch()
            rates[worker.name].append(n / timing["seconds"] if timing else None)
            cpu_rates[worker.name].append(n / timing["cpu_seconds"] if timing else None)
        print(f"cycle {cycle + 1}: " + ", ".join(f"{k} {v[-1]:.0f}" if v[-1] else f"{k} failed"
                                               for k, v in rates.items()), flush=True)
    return {"samples_per_s": rates, "samples_per_cpu_s": cpu_rates, "stats": {w.name: w.close() for w in workers}}


def per_cycle_ratios(rates: dict, base: str = "mmzoo") -> dict:
    """{other: [base / other in each cycle where both trained]}."""
    return {other: [b / o for b, o in zip(rates[base], rates[other]) if b and o] for other in rates if other != base}


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
    parser.add_argument("--cycles", type=int, default=8, help="interleaved epochs per framework (after a warm-up)")
    parser.add_argument("--serve", choices=sorted({**SETUPS, **EXTRA}), help=argparse.SUPPRESS)
    parser.add_argument("--autotune", action="store_true",
                        help="also run mmzoo's pipeline with tf.data's autotuner on (mmzoo_autotune)")
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.examples)
        return 0

    names = list(SETUPS) + list(EXTRA) * args.autotune
    run = interleaved(names, args.examples, args.cycles)
    rates = {k: [r for r in v if r] for k, v in run["samples_per_s"].items()}
    if not rates.get("mmzoo"):
        print(f"mmzoo failed: {run['stats']['mmzoo'].get('error')}")
        return 1
    ratios_per_cycle = {k: v for k, v in per_cycle_ratios(run["samples_per_s"]).items() if v}
    ratios = {k: statistics.median(v) for k, v in ratios_per_cycle.items()}
    cpu_ratios = {k: statistics.median(v) for k, v in per_cycle_ratios(run["samples_per_cpu_s"]).items() if v}
    summary = {}
    for name in names:
        summary[name] = dict(run["stats"][name])
        if rates.get(name):
            summary[name]["median_samples_per_s"] = statistics.median(rates[name])
            summary[name]["median_samples_per_cpu_s"] = statistics.median(
                [r for r in run["samples_per_cpu_s"][name] if r])
            summary[name]["interleaved_samples_per_s"] = rates[name]

    print(f"\ninterleaved ({args.cycles} cycles; each framework in its own process, one epoch each in turn):")
    print(f"{'':15s} {'samples/s':>10s} {'min-max':>10s} {'per CPU-s':>10s} {'params':>10s} {'peak RSS':>9s}"
          "  process loaded")
    for name, s in summary.items():
        if "median_samples_per_s" not in s:
            print(f"{name:15s} unavailable: {s.get('error')}")
            continue
        spread = f"{min(rates[name]):.0f}-{max(rates[name]):.0f}"
        rss = s.get("peak_rss_mib")
        print(f"{name:15s} {s['median_samples_per_s']:10.1f} {spread:>10s} {s['median_samples_per_cpu_s']:10.1f} "
              f"{s.get('params', 0):>10,d} "
              f"{f'{rss:.0f} MiB' if rss else '-':>9s}  {'+'.join(s.get('frameworks_loaded', [])) or '-'}")
    for other, r in ratios.items():
        target = TARGETS.get(other)
        verdict = f"; target >= {target}x: {'met' if r >= target else 'MISSED'}" if target else ""
        by_cpu = f"; per CPU second {cpu_ratios[other]:.2f}x" if other in cpu_ratios else ""
        print(f"mmzoo / {other}: {r:.2f}x (median of per-cycle ratios, "
              f"{min(ratios_per_cycle[other]):.2f}-{max(ratios_per_cycle[other]):.2f}{by_cpu}){verdict}")
    for other in ("torch", "keras"):
        if other in ratios:
            summary["mmzoo"][f"vs_{other}"] = ratios[other]
    os.makedirs(RESULTS, exist_ok=True)
    record = {"examples": args.examples, "cycles": args.cycles, "batch_size": BATCH,
              "processes": "one per framework, one epoch each in turn", "mmzoo_ratio": ratios,
              "mmzoo_ratio_per_cpu_s": cpu_ratios,
              "mmzoo_ratio_per_cycle": ratios_per_cycle, "results": summary, "date": time.strftime("%Y-%m-%d")}
    with open(os.path.join(RESULTS, "training.json"), "w") as f:
        json.dump(record, f, indent=2)
    plot(summary, os.path.join(RESULTS, "training.png"))
    print(f"saved {os.path.join(RESULTS, 'training.json')} and training.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
