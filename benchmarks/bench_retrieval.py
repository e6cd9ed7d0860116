"""Retrieval benchmark: brute-force search throughput, the approximate index, training speed.

    python benchmarks/bench_retrieval.py                     # pip install -e ".[ann]" for FAISS
    python benchmarks/bench_retrieval.py --catalogue 1000000 --rounds 5

Prints, in one run:

1. Brute-force search, as the exported ``search`` signature computes it (a matmul of the query
   embeddings with the index, then the exact `block_top_k`, one TF graph): queries/s over 100,000 candidates
   of dimension 256 at batch 1 and 64, as GFLOP/s (2 * batch * candidates * dim per call) and as
   a share of this machine's float32 matmul peak, measured in the same run (a 2048^2 matmul);
   and the matmul alone, without the top-k. Beside it, the same search scored in bfloat16
   (``mmzoo export --index-precision bfloat16``, `mmzoo.export.retrieval.Bfloat16Index`: AMX /
   AVX512-BF16 here), whose answers must equal float32's: its float32-equivalent GFLOP/s (the
   same 2 * batch * candidates * dim) against the float32 peak, the bfloat16 matmul peak, and
   the share of queries its certificate proves (the rest are searched again in float32), on the
   random index and on the real catalogue of part 2.
2. The approximate index (`mmzoo.export.ann`, FAISS IVF-Flat) at the largest catalogue that fits
   in memory with its exact and approximate copies (``--catalogue``, 1,000,000 candidates), tuned
   to recall@10 >= 0.95 against brute force: its speed-up over mmzoo's brute force and over
   FAISS' own exact index, at batch 64. The catalogue is real model output: a trained
   ``cnn_gru_clip``'s image embeddings (128-d) of a million shapes_captions scenes, searched with
   its embeddings of captions of other scenes (``--run`` reuses a trained run, else one is
   trained with ``mmzoo train``'s defaults, ~2 min). Random or isotropic-noise vectors are no
   stand-in: their intrinsic dimension is the full 256, where no inverted index can skip much.
3. Training samples/s of ``cnn_gru_clip`` on shapes_captions (batch 64, the memory cache, as
   ``mmzoo train`` feeds it) against a hand-written plain-Keras dual encoder with the same
   layers (Conv2D 32 / 64 + Flatten, Embedding 128 + BiGRU 64, 128-d projections, CLIP loss),
   fit on numpy arrays of the same data, epochs interleaved.

Contenders are measured in turn, ``--rounds`` times; figures are medians over rounds. Results go
to benchmarks/results/retrieval.json and retrieval.png.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
RESULTS = os.path.join(HERE, "results")

from bench_export import matmul_peak, timed  # noqa: E402  (this folder's helpers)


def unit(x):
    import numpy as np

    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype("float32")


def brute_force_fn(index, k: int):
    """The ``search`` signature's tail: scores = queries @ index^T, then top_k (one TF graph)."""
    import tensorflow as tf

    from mmzoo.export.retrieval import block_top_k

    table = tf.constant(index.T.copy())  # [dim, candidates], as the SavedModel stores it

    @tf.function(input_signature=[tf.TensorSpec([None, index.shape[1]], tf.float32)], autograph=False)
    def search(q):
        return block_top_k(tf.matmul(q, table), k)

    search.matmul_only = tf.function(lambda q: tf.matmul(q, table), autograph=False)
    return search


def bfloat16_fn(index, k: int):
    """The ``search`` signature's tail with ``--index-precision bfloat16``: (scores, rows, certified)."""
    import tensorflow as tf

    from mmzoo.export.retrieval import Bfloat16Index

    holder = Bfloat16Index(index)
    return tf.function(lambda q: holder.search(q, k), input_signature=[tf.TensorSpec([None, index.shape[1]],
                                                                                      tf.float32)], autograph=False)


def same_answers(got_rows, got_scores, ref_rows, ref_scores) -> float:
    """Share of queries whose k answers are float32's (as sets; ties within 1e-6 count as equal)."""
    import numpy as np

    same = (np.sort(got_rows, 1) == np.sort(ref_rows, 1)).all(1)
    tied = np.abs(np.asarray(got_scores) - np.asarray(ref_scores)).max(1) <= 1e-6
    return float(np.mean(same | tied))


def bench_brute_force(args, peak: float, bf16_peak: float) -> dict:
    import numpy as np

    index = unit(np.random.default_rng(1).normal(size=(args.candidates, args.dim)).astype("float32"))
    search = brute_force_fn(index, 10)
    search_bf16 = bfloat16_fn(index, 10)
    out = {}
    for batch, repeats in ((1, args.repeats), (64, max(3, args.repeats // 4))):
        q = unit(np.random.default_rng(2).normal(size=(batch, args.dim)).astype("float32"))
        flop = 2 * batch * args.candidates * args.dim
        times, times_bf16, matmul = [], [], []
        for _ in range(args.rounds):  # the three in turn, each round
            times.append(timed(lambda q=q: search(q)[1].numpy(), repeats))
            times_bf16.append(timed(lambda q=q: search_bf16(q)[1].numpy(), repeats))
            matmul.append(timed(lambda q=q: search.matmul_only(q).numpy(), repeats))
        t, t16, tm = (statistics.median(v) for v in (times, times_bf16, matmul))
        gflops, gflops16 = flop / t / 1e9, flop / t16 / 1e9
        ref, got = search(q), search_bf16(q)
        row = {"queries_per_s": batch / t, "ms_per_call": 1e3 * t, "gflop_per_s": gflops,
               "share_of_peak": gflops / peak, "matmul_alone_share_of_peak": flop / tm / 1e9 / peak,
               "bfloat16": {"queries_per_s": batch / t16, "ms_per_call": 1e3 * t16,
                            "float32_equivalent_gflop_per_s": gflops16, "share_of_float32_peak": gflops16 / peak,
                            "share_of_bfloat16_peak": gflops16 / bf16_peak, "speedup_vs_float32": t / t16,
                            "certified": float(np.mean(got[2].numpy())),
                            "same_answers_as_float32": same_answers(got[1].numpy(), got[0].numpy(),
                                                                    ref[1].numpy(), ref[0].numpy())}}
        out[f"batch {batch}"] = row
        b = row["bfloat16"]
        print(f"brute force, {args.candidates:,} x {args.dim}, batch {batch}: {batch / t:,.0f} queries/s, "
              f"{gflops:.0f} GFLOP/s = {gflops / peak:.0%} of the matmul peak (the matmul alone: "
              f"{row['matmul_alone_share_of_peak']:.0%}); scored in bfloat16: {batch / t16:,.0f} queries/s, "
              f"{gflops16:.0f} float32-equivalent GFLOP/s = {gflops16 / peak:.0%} of the float32 peak "
              f"({gflops16 / bf16_peak:.0%} of bfloat16's), {t / t16:.2f}x float32, certified "
              f"{b['certified']:.0%}, same answers {b['same_answers_as_float32']:.0%}")
    return out


def trained_retriever(args):
    """A trained cnn_gru_clip: ``--run``, or one trained now with mmzoo train's defaults."""
    import tempfile

    import mmzoo

    if args.run:
        return mmzoo.open_run(args.run).model
    out = os.path.join(tempfile.mkdtemp(prefix="bench-retrieval-"), "clip")
    data = mmzoo.datasets.load("shapes_captions", config="image_text_small", data_dir=args.data_dir)
    print("training cnn_gru_clip on shapes_captions for the catalogue's embeddings (pass --run to reuse one)")
    return mmzoo.train("cnn_gru_clip", data, out=out, verbose=0).model


def real_catalogue(model, n: int, queries: int):
    """Embeddings of ``n`` shapes_captions scenes (the candidate tower) and of ``2 * queries``
    English captions of other scenes (the query tower): a catalogue the model really made."""
    import numpy as np
    import tensorflow as tf

    from mmzoo.datasets.shapes_captions import make_example

    parts, batch = [], 8192
    for s in range(0, n, batch):
        images = np.stack([make_example(i, 4001, ())["image"] for i in range(s, min(n, s + batch))])
        parts.append(model.embed("candidate", {"image": images}, batch_size=1024))
    captions = [make_example(i, 4002, ("en",))["captions"][0] for i in range(2 * queries)]
    ids = np.asarray(model.preprocess({"text": tf.constant(captions)})["text"])
    return np.concatenate(parts), model.embed("query", {"text": ids})


def bench_ann(args) -> dict:
    import faiss
    import numpy as np

    from mmzoo.export.ann import build_approximate_index, exact_top_k, recall_at_k

    model = trained_retriever(args)
    started = time.perf_counter()
    catalogue, queries = real_catalogue(model, args.catalogue, args.queries)
    print(f"\napproximate index: {args.catalogue:,} candidates of dimension {catalogue.shape[1]}, the trained "
          f"image tower's embeddings of shapes_captions scenes ({time.perf_counter() - started:.0f} s to embed); "
          f"queries: captions of other scenes")
    tune, test = queries[:args.queries], queries[args.queries:]
    started = time.perf_counter()
    # tuned one point above the target, so that held-out queries keep it
    ann = build_approximate_index(catalogue, tune, k=10, target_recall=0.96)
    build_s = time.perf_counter() - started
    exact = exact_top_k(test, catalogue, 10)
    found, _ = ann.search(test)
    recall = recall_at_k(found, exact)
    flat = faiss.IndexFlatIP(catalogue.shape[1])
    flat.add(catalogue)
    search = brute_force_fn(catalogue, 10)
    search_bf16 = bfloat16_fn(catalogue, 10)
    ref, got = search(test), search_bf16(test)
    bf16 = {"certified": float(np.mean(got[2].numpy())),
            "same_answers_as_float32": same_answers(got[1].numpy(), got[0].numpy(), ref[1].numpy(), ref[0].numpy())}
    batch = test[:64]
    contenders = {"mmzoo brute force (TF graph)": lambda: search(batch)[1].numpy(),
                  "mmzoo brute force, bfloat16 scoring": lambda: search_bf16(batch)[1].numpy(),
                  "faiss exact (IndexFlatIP)": lambda: flat.search(batch, 10),
                  "faiss IVF-Flat": lambda: ann.search(batch)}
    times = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, fn in contenders.items():
            times[name].append(timed(fn, 3, 1))
    t = {name: statistics.median(v) for name, v in times.items()}
    for name, v in t.items():
        print(f"  {name}: {64 / v:,.0f} queries/s (batch 64)")
    speedup = t["mmzoo brute force (TF graph)"] / t["faiss IVF-Flat"]
    print(f"  IVF nlist {ann.nlist}, nprobe {ann.nprobe}: recall@10 vs brute force {recall:.3f} on held-out "
          f"queries ({ann.recall:.3f} on the tuning ones); {speedup:.1f}x mmzoo's brute force, "
          f"{t['faiss exact (IndexFlatIP)'] / t['faiss IVF-Flat']:.1f}x FAISS exact; built in {build_s:.0f} s")
    bf16["speedup_vs_float32"] = t["mmzoo brute force (TF graph)"] / t["mmzoo brute force, bfloat16 scoring"]
    print(f"  bfloat16 scoring on this catalogue: {bf16['speedup_vs_float32']:.2f}x float32, certificate for "
          f"{bf16['certified']:.1%} of the held-out queries, the same answers as float32 for "
          f"{bf16['same_answers_as_float32']:.1%}")
    return {"bfloat16_index": bf16,
            "catalogue": args.catalogue, "dim": int(catalogue.shape[1]), "nlist": ann.nlist, "nprobe": ann.nprobe,
            "recall_at_10": recall, "speedup_vs_brute_force": speedup,
            "speedup_vs_faiss_exact": t["faiss exact (IndexFlatIP)"] / t["faiss IVF-Flat"], "build_seconds": build_s,
            "queries_per_s_batch64": {name: 64 / v for name, v in t.items()}}


def bench_training(args) -> dict:
    import numpy as np

    import mmzoo
    from mmzoo.tasks.losses import contrastive_loss

    data = mmzoo.datasets.load("shapes_captions", config="image_text_small", data_dir=args.data_dir)
    ds = data.dataset("train", batch_size=64, shuffle=True, seed=0, cache="memory")
    n = data.num_examples("train")
    mm = mmzoo.build("cnn_gru_clip", seed=0, **data.model_kwargs())
    xs, ys = [], []
    for x, y in data.dataset("train", batch_size=None, shuffle=False):
        xs.append({k: v.numpy() for k, v in x.items()})
        ys.append(int(y))
    arrays = {k: np.stack([x[k] for x in xs]) for k in xs[0]}
    groups = np.array(ys, "int32")
    plain = plain_keras_clip(data.spec, contrastive_loss)
    epochs = {"mmzoo (cnn_gru_clip, fit on the cached pipeline)": lambda: mm.fit(ds, epochs=1, verbose=0),
              "plain Keras dual encoder (fit on numpy)": lambda: plain.fit(arrays, groups, batch_size=64, epochs=1,
                                                                          shuffle=True, verbose=0)}
    for fn in epochs.values():
        fn()  # warm-up: tracing, the cache
    times = {name: [] for name in epochs}
    for _ in range(args.rounds):
        for name, fn in epochs.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    out = {name: {"samples_per_s": n / statistics.median(v), "params": int(model.count_params())}
           for (name, v), model in zip(times.items(), (mm, plain))}
    for name, v in out.items():
        print(f"training {name}: {v['samples_per_s']:,.0f} samples/s ({v['params']:,} params)")
    return out


def plain_keras_clip(spec, loss_fn):
    """What a user writes by hand: two towers, projections, the CLIP loss in train_step."""
    import keras
    import tensorflow as tf

    image = keras.Input(spec.image_shape, dtype="uint8", name="image")
    text = keras.Input((spec.seq_len,), dtype="int32", name="text")
    x = keras.layers.Rescaling(1 / 255)(image)
    x = keras.layers.MaxPooling2D()(keras.layers.Conv2D(32, 3, activation="relu")(x))
    x = keras.layers.MaxPooling2D()(keras.layers.Conv2D(64, 3, activation="relu")(x))
    x = keras.layers.Flatten()(x)
    t = keras.layers.Embedding(spec.vocab_size, 128, mask_zero=True)(text)
    t = keras.layers.Bidirectional(keras.layers.GRU(64))(t)
    t = keras.layers.Dropout(0.5)(keras.layers.Dense(64, activation="relu")(t))

    def norm(v):
        return keras.layers.UnitNormalization()(v)

    class Clip(keras.Model):
        def __init__(self):
            super().__init__(inputs={"image": image, "text": text},
                             outputs={"query": norm(keras.layers.Dense(128)(t)),
                                      "candidate": norm(keras.layers.Dense(128)(x))})
            self.log_scale = tf.Variable(2.659, trainable=True)

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            logits = tf.exp(tf.minimum(self.log_scale, 4.605)) * tf.matmul(y_pred["query"], y_pred["candidate"],
                                                                            transpose_b=True)
            return loss_fn(logits, y)

    model = Clip()
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    return model


def plot(results: dict, path: str) -> None:
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.6))
    axes = fig.subplots(1, 3)
    bf = results["brute_force"]
    names = list(bf)
    x = np.arange(len(names))
    axes[0].bar(x - 0.2, [v["share_of_peak"] for v in bf.values()], 0.4, color="tab:blue", label="float32")
    axes[0].bar(x + 0.2, [v["bfloat16"]["share_of_float32_peak"] for v in bf.values()], 0.4, color="tab:cyan",
                label="bfloat16 scoring")
    axes[0].set_xticks(x, names)
    axes[0].axhline(0.7, color="tab:red", linestyle="--", label="target at batch 64")
    axes[0].set_title("brute force: share of float32 matmul peak")
    axes[0].legend(fontsize=7)
    if results.get("approximate_index"):
        q = results["approximate_index"]["queries_per_s_batch64"]
        axes[1].barh([k.split(" (")[0] for k in q], list(q.values()), color="tab:green")
        axes[1].set_xscale("log")
        axes[1].set_title(f"{results['approximate_index']['catalogue']:,} candidates: queries/s")
    tr = results["training"]
    axes[2].barh([k.split(" (")[0] for k in tr], [v["samples_per_s"] for v in tr.values()], color="tab:orange")
    axes[2].set_title("training samples/s")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", type=int, default=100_000, help="brute-force index size")
    parser.add_argument("--dim", type=int, default=256, help="embedding dimension")
    parser.add_argument("--catalogue", type=int, default=1_000_000, help="the approximate index's catalogue")
    parser.add_argument("--run", default=None, help="a trained cnn_gru_clip run for the catalogue (default: train one)")
    parser.add_argument("--queries", type=int, default=500, help="tuning queries (and as many held out)")
    parser.add_argument("--repeats", type=int, default=40, help="calls per brute-force measurement (batch 1)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--data-dir", default=None, help="where shapes_captions is written")
    parser.add_argument("--no-ann", action="store_true", help="skip the approximate index")
    args = parser.parse_args(argv)

    peak, bf16_peak = matmul_peak(), matmul_peak(dtype="bfloat16")
    print(f"this machine's float32 matmul peak (measured, {os.cpu_count()} cores): {peak:.0f} GFLOP/s; "
          f"bfloat16: {bf16_peak:.0f} GFLOP/s\n")
    results = {"date": time.strftime("%Y-%m-%d"), "rounds": args.rounds, "matmul_peak_gflops": peak,
               "bf16_matmul_peak_gflops": bf16_peak, "brute_force": bench_brute_force(args, peak, bf16_peak)}
    if not args.no_ann:
        try:
            results["approximate_index"] = bench_ann(args)
        except ImportError as e:
            print(f"\napproximate index skipped: {e}")
    print()
    results["training"] = bench_training(args)
    names = list(results["training"])
    results["training_ratio_mmzoo_vs_plain_keras"] = (results["training"][names[0]]["samples_per_s"]
                                                     / results["training"][names[1]]["samples_per_s"])
    b64 = results["brute_force"]["batch 64"]["share_of_peak"]
    b64_bf16 = results["brute_force"]["batch 64"]["bfloat16"]
    exact_bf16 = b64_bf16["same_answers_as_float32"] == 1.0 and (
        results.get("approximate_index") or {}).get("bfloat16_index", {}).get("same_answers_as_float32", 1.0) == 1.0
    results["targets"] = {
        "brute force batch 64 >= 70% of peak (float32 scoring)": {"measured": b64, "met": b64 >= 0.7},
        "brute force batch 64 >= 70% of peak (bfloat16 scoring, float32's answers)": {
            "measured": b64_bf16["share_of_float32_peak"],
            "met": b64_bf16["share_of_float32_peak"] >= 0.7 and exact_bf16},
    }
    if results.get("approximate_index"):
        ai = results["approximate_index"]
        results["targets"]["approximate index >= 10x at recall@10 >= 0.95"] = {
            "measured": ai["speedup_vs_brute_force"], "met": ai["speedup_vs_brute_force"] >= 10
            and ai["recall_at_10"] >= 0.95}
    print("\ntargets:")
    for name, t in results["targets"].items():
        print(f"  {name}: {t['measured']:.3g} ({'met' if t['met'] else 'missed'})")
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "retrieval.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
    plot(results, os.path.join(RESULTS, "retrieval.png"))
    print(f"\nsaved {os.path.join(RESULTS, 'retrieval.json')} and retrieval.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
