"""Benchmark: is the data pipeline fast enough to keep a model busy?

Writes a realistic manifest of real files (PNG / JPEG images, 1 s 16 kHz WAVs, short English
and Chinese texts) to a temporary folder, then measures

* the pipeline alone: ``data.dataset("train", batch_size=64, shuffle=True)`` with no cache and
  mmzoo.train's default augmentation (``--no-augment`` leaves it out), full passes over the
  files, samples/s (median of several passes after one warm-up pass);
* training: ``mmzoo.build("cnn_gru_concat", **data.model_kwargs())`` with ``train_on_batch``
  at batch 64 on batches already in memory, samples/s (median after warm-up);

and prints their ratio (target: >= 3, so input never stalls training). Results go to
``benchmarks/results/data_pipeline.json`` (and a PNG bar chart).

    python benchmarks/bench_data_pipeline.py [--rows 2048] [--passes 5]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def write_dataset(root: str, rows: int, source_size: int, seed: int = 0) -> str:
    from mmzoo.data.samples import write_sample_dataset

    return write_sample_dataset(
        root,
        n=rows,
        modalities=("image", "text", "audio"),
        image_size=(source_size, source_size),
        sample_rate=16000,
        audio_seconds=1.0,
        formats=("PNG", "JPEG"),
        with_split=False,
        seed=seed,
    )


def time_pipeline(data, batch_size: int, passes: int, augment: bool = True, cache=None) -> list:
    from mmzoo.data.augment import Augmentation, augmented

    rates = []
    base = data.dataset("train", batch_size=batch_size, shuffle=True, seed=0, cache=cache) if cache else None
    for i in range(passes + 1):  # first pass: warm-up (tracing, autotune; fills the cache)
        ds = base if cache else data.dataset("train", batch_size=batch_size, shuffle=True, seed=i, cache=None)
        if augment:  # as mmzoo.train feeds it by default
            ds = augmented(ds, Augmentation(), seed=i)
        n, start = 0, time.perf_counter()
        for _, y in ds:
            n += int(y.shape[0])
        elapsed = time.perf_counter() - start
        if i:
            rates.append(n / elapsed)
    return rates


def time_training(data, batch_size: int, steps: int, warmup: int) -> tuple:
    import mmzoo

    model = mmzoo.build("cnn_gru_concat", **data.model_kwargs())
    names = [t.name.split(":")[0] for t in model.inputs]
    batches = []
    for x, y in data.dataset(
        "train", batch_size=batch_size, shuffle=True, seed=0, drop_remainder=True
    ).take(8):
        batches.append(({k: x[k].numpy() for k in names if k in x}, y.numpy()))
    times = []
    for i in range(warmup + steps):
        x, y = batches[i % len(batches)]
        start = time.perf_counter()
        model.train_on_batch(x, y)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return [batch_size / t for t in times], names


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--source-size", type=int, default=96, help="source image side (px)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "data_pipeline.json"))
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--no-augment", action="store_true",
                        help="time the pipeline without mmzoo.train's default augmentation")
    args = parser.parse_args(argv)

    import tensorflow as tf

    import mmzoo.data

    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        manifest = write_dataset(root, args.rows, args.source_size)
        write_s = time.perf_counter() - start
        start = time.perf_counter()
        data = mmzoo.data.from_manifest(
            manifest,
            image_size=(args.image_size, args.image_size),
            seq_len=32,
            sample_rate=16000,
            audio_seconds=1.0,
            val_fraction=0.0,
            test_fraction=0.0,
        )
        load_s = time.perf_counter() - start
        print(
            f"wrote {args.rows} rows in {write_s:.1f}s; from_manifest (validation incl. full "
            f"decode) {load_s:.1f}s; {data}"
        )
        rates = time_pipeline(data, args.batch_size, args.passes, augment=not args.no_augment)
        pipeline = statistics.median(rates)
        cached = statistics.median(time_pipeline(data, args.batch_size, args.passes, augment=not args.no_augment,
                                                 cache="memory"))
        print(f"pipeline from the memory cache, as mmzoo.train feeds it by default: {cached:,.0f} samples/s")
        print(
            f"pipeline (image+text+audio{'' if args.no_augment else ', augmented'}): {pipeline:,.0f} samples/s "
            f"(passes: {', '.join(f'{r:,.0f}' for r in rates)})"
        )
        result = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "rows": args.rows,
            "batch_size": args.batch_size,
            "source_image": [args.source_size, args.source_size],
            "image_shape": list(data.spec.image_shape),
            "audio_samples": data.spec.audio_samples,
            "modalities": list(data.modalities),
            "cpu_count": os.cpu_count(),
            "tensorflow": tf.__version__,
            "python": platform.python_version(),
            "from_manifest_seconds": round(load_s, 2),
            "pipeline_samples_per_s": round(pipeline, 1),
            "pipeline_passes": [round(r, 1) for r in rates],
            "augmented": not args.no_augment,
            "pipeline_cached_samples_per_s": round(cached, 1),
        }
        if not args.skip_training:
            try:
                train_rates, inputs = time_training(data, args.batch_size, args.steps, warmup=5)
            except (ImportError, AttributeError) as e:
                print(f"training part skipped: mmzoo.build is not available ({e})")
            else:
                # the pipeline reading only the model's inputs (no audio decoding)
                model_data = mmzoo.data.from_manifest(
                    manifest, modalities=inputs, image_size=(args.image_size, args.image_size),
                    seq_len=32, val_fraction=0.0, test_fraction=0.0, validate="header",
                )
                model_rates = time_pipeline(model_data, args.batch_size, max(2, args.passes // 2))
                train = statistics.median(train_rates)
                result.update(
                    model="cnn_gru_concat",
                    model_inputs=inputs,
                    train_samples_per_s=round(train, 1),
                    ratio=round(pipeline / train, 2),
                    ratio_cached=round(cached / train, 2),
                    pipeline_model_inputs_samples_per_s=round(statistics.median(model_rates), 1),
                )
                print(
                    f"training cnn_gru_concat ({'+'.join(inputs)}), batch {args.batch_size}: "
                    f"{train:,.0f} samples/s"
                )
                print(f"ratio pipeline / training: {pipeline / train:.2f} (target >= 3); "
                      f"from the memory cache: {cached / train:.2f}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    print(f"saved {args.out}")
    _chart(result, os.path.splitext(args.out)[0] + ".png")
    return result


def _chart(result: dict, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    labels = ["pipeline\n(image+text+audio)"]
    values = [result["pipeline_samples_per_s"]]
    if "train_samples_per_s" in result:
        labels += ["pipeline\n(model inputs)", "training\ncnn_gru_concat"]
        values += [result["pipeline_model_inputs_samples_per_s"], result["train_samples_per_s"]]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bars = ax.bar(labels, values, color=["#4c72b0", "#55a868", "#c44e52"][: len(values)])
    ax.bar_label(bars, fmt="%.0f")
    ax.set_ylabel("samples / s")
    title = f"mmzoo data pipeline, {result['cpu_count']} CPUs, batch {result['batch_size']}"
    if "ratio" in result:
        title += f"; ratio {result['ratio']:.1f}"
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
