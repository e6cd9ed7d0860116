"""Export benchmark: latency, throughput and size of every artifact of the default preset.

    python benchmarks/bench_export.py                 # the quickstart's preset, default shapes
    python benchmarks/bench_export.py --preset cnn_gru_concat --repeats 20

Prints, on the same inputs: batch-1 latency (median ms) and batch-64 throughput (examples/s)
of the Keras model call, the SavedModel signatures (raw-input ``serving_default``,
``predict_preprocessed``, the ``--xla`` variant, and a plain ``model.export`` on decoded
inputs), TFLite float32 / float16 / dynamic / int8 in LiteRT (XNNPACK), and ONNX Runtime via
tf2onnx when the ``bench`` extra is installed; then every artifact's size and the targets.
All contenders are measured in turn, --rounds times, in a shuffled order, so a slow phase of
the machine hits them alike: figures are medians over rounds, target ratios medians of
per-round ratios. Results go to benchmarks/results/export.json and export.png
(export_<preset>.* for another preset). LiteRT runs with one thread per core (mmzoo's default;
LiteRT's own default is one thread). Presets with shipped weights use them (calibrated on
shapes_vqa as ``mmzoo export --data`` does): what int8 keeps in float, and so its speed and
size, depends on the trained weights; others run untrained.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def timed(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default=None, help="default: the quickstart's preset")
    parser.add_argument("--repeats", type=int, default=30, help="calls per measurement (batch 1)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds over all contenders")
    parser.add_argument("--threads", type=int, default=None, help="LiteRT threads (default: all cores)")
    args = parser.parse_args(argv)

    import numpy as np
    import tensorflow as tf

    import mmzoo
    from mmzoo.training.quickstart import DEFAULT_PRESET

    args.preset = args.preset or DEFAULT_PRESET
    from mmzoo import pretrained
    from mmzoo.export.examples import preprocess_examples, random_inputs, raw_batch, synthetic_examples
    from mmzoo.export.saved_model import directory_size, write_saved_model
    from mmzoo.export.source import serving_model
    from mmzoo.export.tflite import LiteSource, TFLiteModel, convert_tflite

    trained = "shapes_vqa" in pretrained.available().get(args.preset, {})
    if trained:  # quantized variants depend on the weights: take the shipped ones when there are
        model = mmzoo.build(args.preset, weights="shapes_vqa")
    else:
        vocab = ["<pad>", "<unk>"] + [f"word{i}" for i in range(5000)]
        model = mmzoo.build(args.preset, compile=False, seed=0, vocabulary=vocab, vocab_size=len(vocab))
    spec = model.spec
    rows = synthetic_examples(spec, 64, seed=0)
    raw64, pre64 = raw_batch(rows, spec), preprocess_examples(rows, spec)
    raw1 = {k: v[:1] for k, v in raw64.items()}
    pre1 = {k: v[:1] for k, v in pre64.items()}
    work = tempfile.mkdtemp(prefix="mmzoo-bench-")
    sizes = {}

    contenders = []  # (name, batch-1 call, batch-64 call), measured in rounds below

    def bench(name, fn, arg1, arg64, fn64=None):
        """Register ``fn(arg1)`` and ``(fn64 or fn)(arg64)``. Callables and arguments are bound
        here, not in lambdas of the caller's loop (which would all see its last iteration)."""
        fn64 = fn64 or fn

        def call1():
            return fn(arg1)

        def call64():
            return fn64(arg64)

        call1(), call64()  # trace / allocate once
        contenders.append((name, call1, call64))

    flops = model_flops(model, spec)
    print(f"preset {args.preset}: inputs {spec.input_shapes()}, {model.count_params():,} params, "
          f"{flops / 1e6:.0f} MFLOP per example; preparing...")
    keras_fn = tf.function(lambda x: model(x, training=False))
    bench("keras model call (tf.function)", keras_fn, pre1, pre64)

    tensors = lambda d: {k: tf.constant(v) for k, v in d.items()}  # noqa: E731

    def signature_caller(fn):
        return lambda inputs: fn(**inputs)

    for xla in (False, True):
        path = os.path.join(work, f"sm_xla{int(xla)}")
        write_saved_model(model, spec, path, xla=xla)
        loaded = tf.saved_model.load(path)
        raw_fn, pre_fn = loaded.signatures["serving_default"], loaded.signatures["predict_preprocessed"]
        r1, r64, p1, p64 = tensors(raw1), tensors(raw64), tensors(pre1), tensors(pre64)
        tag = " (xla)" if xla else ""
        bench(f"SavedModel serving_default{tag}", signature_caller(raw_fn), r1, r64)
        bench(f"SavedModel predict_preprocessed{tag}", signature_caller(pre_fn), p1, p64)
        if not xla:  # decoding alone: what the raw signature adds to the model
            bench("SavedModel preprocess (decoding only)", signature_caller(loaded.signatures["preprocess"]), r1, r64)
            sizes["saved_model"] = directory_size(path)

    plain = os.path.join(work, "plain")
    with contextlib.redirect_stdout(io.StringIO()):
        serving_model(model).export(plain, format="tf_saved_model", verbose=False)
    plain_fn = tf.saved_model.load(plain).signatures["serving_default"]
    p1, p64 = tensors(pre1), tensors(pre64)
    bench("plain model.export (decoded inputs)", signature_caller(plain_fn), p1, p64)

    check = None
    if trained:  # calibrate and check as `mmzoo export --data` does
        import mmzoo.datasets
        from mmzoo.export.examples import calibration_examples, data_examples

        config = "image_text_audio_small" if "audio" in spec.modalities else "image_text_small"
        data = mmzoo.datasets.load("shapes_vqa", config=config, spec=spec)
        calibration, check = calibration_examples(data), data_examples(data, "validation", 256)
    else:
        calibration = {k: np.concatenate([v, random_inputs(spec, 64, 1)[k]]) for k, v in pre64.items()}
    float_layers = []
    with LiteSource(model, spec) as source:
        for q in ("float32", "float16", "dynamic", "int8"):
            converted = convert_tflite(model, spec, q, representative=calibration, source=source, check_inputs=check)
            if q == "int8":
                float_layers = [f["layer"] for f in converted["float_layers"]]
            path = os.path.join(work, f"model_{q}.tflite")
            with open(path, "wb") as f:
                f.write(converted["content"])
            sizes[f"tflite_{q}"] = len(converted["content"])
            lite1, lite64 = TFLiteModel(path, args.threads), TFLiteModel(path, args.threads)
            lite1(pre1), lite64(pre64)  # allocate once per batch size
            bench(f"TFLite {q} (LiteRT, XNNPACK)", lite1, pre1, pre64, fn64=lite64)

    try:
        import onnxruntime
        import tf2onnx

        shapes = spec.input_shapes()
        specs = [tf.TensorSpec([None] + list(shapes[m]), spec.input_dtypes()[m], name=m) for m in spec.modalities]
        copy = serving_model(model, unroll=True)
        from mmzoo.export.source import _all_layers
        from mmzoo.layers.audio import LogMelSpectrogram

        for layer in _all_layers(copy):
            if isinstance(layer, LogMelSpectrogram):
                layer.use_dft_conv()  # tf2onnx converts no FFT with a dynamic batch
        fn = tf.function(lambda *xs: copy(dict(zip(spec.modalities, xs)), training=False))
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            proto, _ = tf2onnx.convert.from_function(fn, input_signature=specs, opset=17)
        session = onnxruntime.InferenceSession(proto.SerializeToString())
        names = {i.name.split(":")[0]: i.name for i in session.get_inputs()}
        feed = lambda d: {names[m]: d[m] for m in spec.modalities}  # noqa: E731
        f1, f64 = feed(pre1), feed(pre64)
        sizes["onnx"] = len(proto.SerializeToString())
        bench("ONNX Runtime (tf2onnx)", functools.partial(session.run, None), f1, f64)
    except ImportError:
        print("  ONNX Runtime                         skipped: pip install -e '.[bench]' (tf2onnx, onnxruntime)")
    except Exception as e:  # noqa: BLE001
        print(f"  ONNX Runtime                         failed: {type(e).__name__}: {str(e)[:200]}")

    # Interleaved rounds: every contender once per round, so a slow phase of the machine hits
    # them alike; figures are medians over rounds, targets medians of per-round ratios. Each
    # round measures batch 1 for all, then batch 64 for all, each pass in a fresh random
    # order: batch-1 latency depends on what ran just before (warm, spinning thread pools),
    # so no contender may always follow the same one.
    per_round = []
    for r in range(args.rounds):
        order = random.Random(r)
        latency, throughput = {}, {}
        for name, fn1, _ in order.sample(contenders, len(contenders)):
            latency[name] = timed(fn1, args.repeats) * 1e3
        for name, _, fn64 in order.sample(contenders, len(contenders)):
            throughput[name] = 64 / timed(fn64, max(3, args.repeats // 5))
        per_round.append({name: (latency[name], throughput[name]) for name in latency})
        print(f"  round {r + 1}/{args.rounds} done", flush=True)
    results = [(name, statistics.median(row[name][0] for row in per_round),
                statistics.median(row[name][1] for row in per_round)) for name, _, _ in contenders]
    print(f"\n  {'':<36} {'batch 1':>12} {'batch 64':>15} {'(GFLOP/s)':>10}")
    for name, latency, throughput in results:
        print(f"  {name:<36} {latency:9.2f} ms {throughput:10.0f} ex/s {throughput * flops / 1e9:8.0f}")

    print("\nsizes")
    for key, value in sizes.items():
        print(f"  {key:<20} {value / 1e6:9.3f} MB")

    def ratio(fn):  # median over rounds of a per-round ratio
        return statistics.median(fn(row) for row in per_round)

    SM, LITE = "SavedModel predict_preprocessed", "TFLite float32 (LiteRT, XNNPACK)"
    INT8, ONNX = "TFLite int8 (LiteRT, XNNPACK)", "ONNX Runtime (tf2onnx)"
    RAW, PLAIN = "SavedModel serving_default", "plain model.export (decoded inputs)"
    XLA, DECODE = "SavedModel serving_default (xla)", "SavedModel preprocess (decoding only)"
    peak = matmul_peak()
    print(f"\nthis machine's float32 matmul peak (measured, {os.cpu_count()} cores): {peak:.0f} GFLOP/s")
    print("targets (medians of per-round ratios)")
    checks = [
        ("int8 batch-64 throughput >= 2x float32 LiteRT", ratio(lambda r: r[INT8][1] / r[LITE][1]), ">=", 2.0),
        ("int8 batch-1 latency below float32's", ratio(lambda r: r[INT8][0] / r[LITE][0]), "<", 1.0),
        ("int8 size <= 30% of float32", sizes["tflite_int8"] / sizes["tflite_float32"], "<=", 0.30),
        ("float32 LiteRT batch-64 share of the matmul peak", ratio(lambda r: r[LITE][1]) * flops / 1e9 / peak,
         ">=", 0.85),
        ("model part (predict_preprocessed) batch-1 vs plain export", ratio(lambda r: r[SM][0] / r[PLAIN][0]),
         "<=", 1.05),
        ("model part batch-64 time vs plain export", ratio(lambda r: r[PLAIN][1] / r[SM][1]), "<=", 1.05),
    ]
    if ONNX in per_round[0]:
        checks.insert(3, ("float32 LiteRT batch-64 >= ONNX Runtime", ratio(lambda r: r[LITE][1] / r[ONNX][1]),
                          ">=", 1.0))

    def met(value, op, target):
        return {">=": value >= target, "<=": value <= target, "<": value < target}[op]

    for label, value, op, target in checks:
        print(f"  {'met ' if met(value, op, target) else 'MISS'} {label:<58} {value:6.2f} (target {op} {target:.2f})")
    print(f"  int8 keeps in float: {', '.join(float_layers) or 'nothing'} "
          f"({'shipped shapes_vqa weights' if trained else 'untrained weights, random calibration'})")
    print("\nalso (earlier targets, for the record)")
    model_part = ratio(lambda r: r[SM][0] / r[PLAIN][0])
    decode_share = ratio(lambda r: (r[RAW][0] - r[SM][0]) / r[RAW][0])
    decode_us = ratio(lambda r: 1e6 / r[DECODE][1])
    print(f"  raw-input signature: decoding costs {decode_us:.0f} us per example at batch 64 "
          f"({decode_share:.0%} of the raw signature's batch-1 latency)")
    print(f"  TFLite f32 batch-64 / SavedModel {ratio(lambda r: r[LITE][1] / r[SM][1]):.2f}x, batch-1 latency "
          f"{ratio(lambda r: r[LITE][0] / r[SM][0]):.2f}x; --xla batch-1 / plain signature "
          f"{ratio(lambda r: r[XLA][0] / r[RAW][0]):.2f}x (the XLA target is on the GPU check list)")
    decode_cost = ratio(lambda r: r[PLAIN][1] / r[DECODE][1])

    record = {
        "preset": args.preset, "rounds": args.rounds, "repeats": args.repeats, "date": time.strftime("%Y-%m-%d"),
        "latency_ms_batch1": {name: lat for name, lat, _ in results},
        "examples_per_s_batch64": {name: thr for name, _, thr in results},
        "sizes_bytes": sizes,
        "targets": {label: {"value": value, "target": f"{op} {target:.2f}", "met": met(value, op, target)}
                    for label, value, op, target in checks},
        "weights": "shapes_vqa" if trained else "untrained", "int8_float_layers": float_layers,
        "matmul_peak_gflops": peak, "decode_us_per_example_batch64": decode_us,
        "model_part_ratio": model_part, "decode_share_batch1": decode_share,
        "model_mflop_per_example": flops / 1e6, "decode_cost_batch64": decode_cost,
    }
    os.makedirs(RESULTS, exist_ok=True)
    stem = "export" if args.preset == DEFAULT_PRESET else f"export_{args.preset}"
    with open(os.path.join(RESULTS, f"{stem}.json"), "w") as f:
        json.dump(record, f, indent=2)
    plot(results, args.preset, os.path.join(RESULTS, f"{stem}.png"))
    print(f"saved {os.path.join(RESULTS, stem + '.json')} and {stem}.png")
    return 0


def matmul_peak(n: int = 2048, repeats: int = 5, dtype: str = "float32") -> float:
    """GFLOP/s of a large ``dtype`` matmul on every core (TensorFlow's oneDNN, the best of
    ``repeats``): what this CPU's FMA units (or, in bfloat16, its AMX / AVX512-BF16 units)
    deliver in practice."""
    import tensorflow as tf

    a = tf.cast(tf.random.normal((n, n)), dtype)
    fn = tf.function(lambda x: tf.linalg.matmul(x, x))
    fn(a).numpy()
    best = min(timed(lambda: fn(a).numpy(), 1, 0) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def model_flops(model, spec) -> int:
    """Floating-point operations of one example through the model (TF's graph profiler on the
    frozen, loop-free graph at batch 1): convolutions and matmuls, the bulk of the work."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from mmzoo.export.source import serving_model

    shapes, dtypes = spec.input_shapes(), spec.input_dtypes()
    specs = {m: tf.TensorSpec([1] + list(shapes[m]), dtypes[m], name=m) for m in spec.modalities}
    copy = serving_model(model, unroll=True)
    frozen = convert_variables_to_constants_v2(
        tf.function(lambda x: copy(x, training=False)).get_concrete_function(specs))
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    level = tf.get_logger().level
    tf.get_logger().setLevel("ERROR")  # the v1 profiler's deprecation notices
    try:
        return int(tf.compat.v1.profiler.profile(graph=frozen.graph, options=options).total_float_ops)
    finally:
        tf.get_logger().setLevel(level)


def plot(results: list, preset: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, _, _ in results]
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.45 * len(names) + 1.5), sharey=True)
    for ax, values, label in ((axes[0], [r[1] for r in results], "batch-1 latency (ms, lower is better)"),
                              (axes[1], [r[2] for r in results], "batch-64 throughput (examples/s)")):
        colors = ["#c64" if "TFLite" in n else "#2a7" if "ONNX" not in n else "#888" for n in names]
        ax.barh(names, values, color=colors)
        ax.set_xlabel(label)
        for i, v in enumerate(values):
            ax.text(v, i, f" {v:.2f}" if v < 100 else f" {v:.0f}", va="center", fontsize=8)
    axes[0].invert_yaxis()
    fig.suptitle(f"{preset}: serving speed on this CPU")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
