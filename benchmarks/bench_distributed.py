"""Scale-out benchmark: the multi-worker loop's per-step overhead, all-reduce time and a scaling
estimate, the tf.data service against the in-process pipeline, and the memory ceiling of a
cache-off run on 50,000 files.

    python benchmarks/bench_distributed.py                 # pip install -e .
    python benchmarks/bench_distributed.py --files 50000 --steps 60

1. Per-step time of ``cnn_gru_concat`` at batch 64 on shapes_vqa (image + text, 512 training
   examples): Keras ``fit`` on one device against mmzoo's multi-worker loop
   (`mmzoo.training.loop`, MultiWorkerMirroredStrategy with a one-worker ``TF_CONFIG``: the
   loop's own cost, no network), and two workers on loopback at the same global batch (32 a
   worker). Each runs in a process of its own (a strategy must come first in a process); step
   times are medians over the steps after the first epoch.
2. The all-reduce of a gradient-sized float32 tensor between the two loopback workers (median
   of 30 after a warm-up), and from it a scaling estimate for W machines with the per-worker
   batch kept at 64 (weak scaling): ``T(W) = t_step + 2 (W-1)/W * S / B``, a ring all-reduce of
   S bytes at bandwidth B, for the loopback bandwidth measured here and for 10 / 100 Gb/s
   networks. This machine cannot show more than one host; the estimate states its model.
3. Examples/s of the training pipeline read cold (cache off: decoding PNG and WAV every epoch,
   shapes_vqa image + text + audio) in this process against a tf.data service with two local
   workers (`mmzoo.data.service.DataService`, loopback), medians of ``--rounds`` epochs.
4. Peak resident memory of ``mmzoo.train`` with ``cache=None`` over one epoch of a manifest of
   ``--files`` small PNG files (and of a tenth of them), each in a fresh process: streaming
   keeps the ceiling flat in the number of files.

Results go to benchmarks/results/distributed.json and distributed.png.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
RESULTS = os.path.join(HERE, "results")

STEP_SCRIPT = r"""
import json, os, sys, time
mode, data_dir, epochs, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
import tensorflow as tf
strategy = tf.distribute.MultiWorkerMirroredStrategy() if mode != "fit" else None
import keras, numpy as np, mmzoo
from mmzoo.training.loop import fit_with_strategy
data = mmzoo.datasets.load(config="image_text_small", data_dir=data_dir)
class Clock(keras.callbacks.Callback):
    def __init__(self): super().__init__(); self.times = []; self.epoch = 0
    def on_epoch_begin(self, epoch, logs=None): self.epoch = epoch; self.last = time.perf_counter()
    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if self.epoch > 0: self.times.append(now - self.last)
        self.last = now
clock = Clock()
keras.utils.set_random_seed(0)
scope = strategy.scope() if strategy else tf.distribute.get_strategy().scope()
with scope:
    net = mmzoo.build("cnn_gru_concat", **data.model_kwargs(), seed=0, compile=False)
    net.compile(optimizer="adam", loss=net.default_loss(), metrics=net.default_metrics())
ds = data.dataset("train", batch_size=64, shuffle=True, seed=0, cache="memory", drop_remainder=True)
if strategy is None:
    net.fit(ds, epochs=epochs, callbacks=[clock], verbose=0)
else:
    fit_with_strategy(net, strategy, ds, epochs=epochs, callbacks=[clock], verbose=0)
result = {"step_s": float(np.median(clock.times)), "steps": len(clock.times),
          "params": int(net.count_params())}
if mode == "loop2":
    grads = tf.ones([int(net.count_params())], tf.float32)
    @tf.function
    def all_reduce(x):
        return strategy.reduce("SUM", strategy.run(lambda: tf.identity(x)), axis=None)
    for _ in range(5): all_reduce(grads)
    times = []
    for _ in range(30):
        t = time.perf_counter(); all_reduce(grads).numpy()
        times.append(time.perf_counter() - t)
    result["all_reduce_s"] = float(np.median(times)); result["all_reduce_bytes"] = int(net.count_params()) * 4
if json.loads(os.environ.get("TF_CONFIG", '{"task": {"index": 0}}'))["task"]["index"] == 0:
    with open(out, "w") as f: json.dump(result, f)
"""

MEMORY_SCRIPT = r"""
import json, resource, sys, time
import mmzoo
manifest, out = sys.argv[1], sys.argv[2]
t = time.time()
run = mmzoo.train("cnn_gru_concat", manifest, out=out, epochs=1, cache=None, overwrite=True, verbose=0,
                  data_kwargs={"validate": "header"}, patience=None)
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "seconds": time.time() - t, "test_accuracy": run.metrics["test"]["accuracy"]}))
"""


def free_port():
    from mmzoo.data.service import free_port as port

    return port()


def step_times(data_dir: str, epochs: int) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode, workers in (("fit", 1), ("loop1", 1), ("loop2", 2)):
            ports = [free_port() for _ in range(workers)]
            out = os.path.join(tmp, f"{mode}.json")
            procs = []
            for i in range(workers):
                env = dict(os.environ)
                if mode != "fit":
                    env["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                                   "task": {"type": "worker", "index": i}})
                procs.append(subprocess.Popen([sys.executable, "-c", STEP_SCRIPT, mode, data_dir, str(epochs), out],
                                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
            try:
                for p in procs:
                    _, err = p.communicate(timeout=900)
                    if p.returncode:
                        raise RuntimeError(f"{mode} failed:\n{err[-3000:]}")
            finally:
                for p in procs:
                    if p.poll() is None:
                        p.kill()
            with open(out) as f:
                results[mode] = json.load(f)
            print(f"  {mode}: {results[mode]['step_s'] * 1000:.1f} ms a step", flush=True)
    return results


def scaling(steps: dict) -> dict:
    t1 = steps["fit"]["step_s"]
    size = steps["loop2"]["all_reduce_bytes"]
    measured = steps["loop2"]["all_reduce_s"]
    loopback_bw = size / measured  # bytes/s (2 workers: the ring moves S bytes each way once)
    out = {"model": "T(W) = t_step(batch 64) + 2 (W-1)/W * S / B (ring all-reduce, weak scaling)",
           "S_bytes": size, "t_step_s": t1, "bandwidths_Bps": {"loopback (measured)": loopback_bw,
                                                               "10 Gb/s": 10e9 / 8, "100 Gb/s": 100e9 / 8}}
    table = {}
    for name, bw in out["bandwidths_Bps"].items():
        table[name] = {w: w * t1 / (t1 + 2 * (w - 1) / w * size / bw) for w in (1, 2, 4, 8, 16)}
    out["speedup"] = table
    return out


def service_throughput(data_dir: str, rounds: int) -> dict:
    import mmzoo
    from mmzoo.data.service import DataService, distribute

    data = mmzoo.datasets.load(config="image_text_audio_small", data_dir=data_dir)
    ds = data.dataset("train", batch_size=64, shuffle=True, seed=0, cache=None)
    split_ds = data.dataset("train", batch_size=64, shuffle=True, seed=0, cache=None, splittable=True)
    n = data.num_examples("train")

    def epoch(d):
        t = time.perf_counter()
        count = sum(int(b[1].shape[0]) for b in d)
        assert count == n, (count, n)
        return n / (time.perf_counter() - t)

    local, served = [], []
    with DataService(workers=2) as service:
        remote = distribute(split_ds, service.address)
        epoch(ds), epoch(remote)  # warm-up
        for _ in range(rounds):
            local.append(epoch(ds))
            served.append(epoch(remote))
    local_rate, served_rate = statistics.median(local), statistics.median(served)
    return {"in_process_examples_s": local_rate, "service_2_workers_examples_s": served_rate,
            "ratio": served_rate / local_rate, "examples": n, "rounds": rounds}


def write_many_files(folder: str, count: int) -> str:
    import numpy as np

    from mmzoo.data.samples import encode_image

    os.makedirs(os.path.join(folder, "img"), exist_ok=True)
    rng = np.random.default_rng(0)
    colors = ["red", "green", "blue", "yellow"]
    palette = np.array([[220, 30, 30], [30, 200, 30], [30, 30, 220], [230, 220, 30]], np.uint8)
    lines = ["image,text,label,split"]
    for i in range(count):
        c = i % 4
        path = os.path.join("img", f"{i:06d}.png")
        full = os.path.join(folder, path)
        if not os.path.exists(full):
            arr = np.clip(palette[c] + rng.integers(-20, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
            with open(full, "wb") as f:
                f.write(encode_image(arr, "PNG"))
        split = "train" if i % 10 < 8 else ("validation" if i % 10 == 8 else "test")
        lines.append(f"{path},what colour is it {i % 13},{colors[c]},{split}")
    manifest = os.path.join(folder, f"m{count}.csv")
    with open(manifest, "w") as f:
        f.write("\n".join(lines) + "\n")
    return manifest


def memory_ceiling(files: int) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for count in (files // 10, files):
            manifest = write_many_files(tmp, count)
            run = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, manifest, os.path.join(tmp, f"run{count}")],
                                 capture_output=True, text=True, timeout=3600)
            if run.returncode:
                raise RuntimeError(f"memory run on {count} files failed:\n{run.stderr[-3000:]}")
            out[count] = json.loads(run.stdout.strip().splitlines()[-1])
            print(f"  {count:,} files: peak RSS {out[count]['peak_rss_mb']:,.0f} MB, "
                  f"{out[count]['seconds']:.0f} s", flush=True)
    return out


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, table in result["scaling"]["speedup"].items():
        axes[0].plot(list(table), list(table.values()), marker="o", label=name)
    axes[0].plot([1, 16], [1, 16], "k:", label="linear")
    axes[0].set(xlabel="machines (batch 64 each)", ylabel="estimated speed-up", title="Scaling estimate")
    axes[0].legend()
    steps = result["steps"]
    names = ["fit\n1 device", "mmzoo loop\n1 worker", "mmzoo loop\n2 workers (loopback)"]
    axes[1].bar(names, [steps[m]["step_s"] * 1000 for m in ("fit", "loop1", "loop2")])
    axes[1].set(ylabel="ms a step (global batch 64)", title="Step time")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6, help="epochs of 8 steps for the step times")
    parser.add_argument("--rounds", type=int, default=5, help="epochs for the data service throughput")
    parser.add_argument("--files", type=int, default=50_000, help="files in the memory-ceiling manifest")
    parser.add_argument("--data-dir", help="TFDS data dir for shapes_vqa (default: a temporary one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or tmp
        import mmzoo

        for config in ("image_text_small", "image_text_audio_small"):
            mmzoo.datasets.builder("shapes_vqa", config, data_dir).download_and_prepare()
        print("step times (cnn_gru_concat, global batch 64):", flush=True)
        steps = step_times(data_dir, args.epochs)
        print("tf.data service (shapes_vqa image + text + audio, cache off):", flush=True)
        service = service_throughput(data_dir, args.rounds)
    print("memory ceiling (cache off, one epoch of mmzoo.train):", flush=True)
    memory = memory_ceiling(args.files)
    result = {"date": time.strftime("%Y-%m-%d"), "steps": steps, "scaling": scaling(steps), "service": service,
              "memory": memory,
              "loop_overhead": steps["loop1"]["step_s"] / steps["fit"]["step_s"] - 1}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "distributed.json"), "w") as f:
        json.dump(result, f, indent=2)
    plot(result, os.path.join(RESULTS, "distributed.png"))

    print("")
    print(f"multi-worker loop (1 worker) vs fit: {result['loop_overhead']:+.1%} a step (target <= +10%)")
    print(f"two workers on loopback: {steps['loop2']['step_s'] * 1000:.1f} ms a step at global batch 64; all-reduce "
          f"of {steps['loop2']['all_reduce_bytes'] / 1e6:.1f} MB: {steps['loop2']['all_reduce_s'] * 1000:.1f} ms")
    print(f"scaling estimate ({result['scaling']['model']}):")
    for name, table in result["scaling"]["speedup"].items():
        print(f"  {name:>20}: " + ", ".join(f"{w} -> {s:.2f}x" for w, s in table.items()))
    print(f"tf.data service, 2 local workers: {service['service_2_workers_examples_s']:,.0f} examples/s vs in-process "
          f"{service['in_process_examples_s']:,.0f} ({service['ratio']:.2f}x)")
    small, large = sorted(memory, key=int)
    print(f"peak RSS, cache off: {memory[small]['peak_rss_mb']:,.0f} MB on {int(small):,} files, "
          f"{memory[large]['peak_rss_mb']:,.0f} MB on {int(large):,} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
