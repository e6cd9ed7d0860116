"""Captioning benchmark: decoding speed of Keras ``generate()``, the SavedModel's signature and
the LiteRT loop, and what the cache saves.

    python benchmarks/bench_captioning.py                  # pip install -e ".[captioning]"
    python benchmarks/bench_captioning.py --rounds 7 --presets cnn_transformer_captioner

For each captioning preset on shapes_captions' 32x32 images, with a 20-position decoder
(``caption_len=19``) whose end token is made unreachable (its logit bias at -30), so that every
caption is exactly 20 tokens and runs compare the same work:

1. tokens/s at batch 1 and batch 64 of Keras ``generate_ids`` (the cached greedy loop, one
   ``tf.while_loop`` graph compiled with XLA, as by default; and the same graph without XLA,
   as the SavedModel holds it), of the exported SavedModel's ``serving_default`` (raw PNG bytes in,
   caption strings out: decoding the PNG and joining the text included) and
   ``generate_preprocessed`` (pixels in), and of the LiteRT float32 flatbuffer driven by the shipped
   loop (`mmzoo.export.lite_caption_loop`, one example at a time, as a phone runs it);
2. cached decoding against recomputing the whole prefix every step (the same greedy search,
   the decoder rerun over positions 0..i at step i; both with XLA) at 20 tokens: the speed-up
   (target >= 3x) of the decoding loop alone, on the encoder's memory computed once (what the
   cache changes), and of the whole ``generate_ids`` call (the encoder and the host's work
   included, the same in both);
3. caption latency at batch 1 (milliseconds per caption) of the three.

The model's weights are random (speed does not depend on them). Contenders are measured in turn,
``--rounds`` times after a warm-up; figures are medians. Results go to
benchmarks/results/captioning.json and captioning.png.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
RESULTS = os.path.join(HERE, "results")
TOKENS = 20

from bench_export import timed  # noqa: E402  (this folder's helpers: median seconds after a warm-up)


def build(preset: str):
    import numpy as np

    import mmzoo
    from mmzoo.data.text import CAPTION_RESERVED, END_ID

    words = ["a", "red", "green", "blue", "yellow", "circle", "square", "triangle", "at", "the", "top", "bottom",
             "left", "right", "and", ",", ".", ":", "one", "two", "three", "four", "shape", "shapes"]
    vocab = list(CAPTION_RESERVED) + words
    model = mmzoo.build(preset, image_shape=(32, 32, 3), class_names=vocab, num_classes=len(vocab),
                        caption_len=TOKENS - 1, seed=0)
    bias = model.decoder.logits_layer.bias
    value = np.asarray(bias).copy()
    value[END_ID] = -30.0  # never ends: every caption is TOKENS tokens
    bias.assign(value)
    return model


def images(n: int, seed: int = 0):
    import numpy as np

    from mmzoo.datasets import shapes_captions

    pixels, pngs = [], []
    for i in range(n):
        example = shapes_captions.make_caption_example(i, seed, shapes_captions.CONFIGS["caption_en_small"])
        pixels.append(example["image"])
        pngs.append(shapes_captions.png_bytes(example["image"]))
    return np.stack(pixels), pngs


def bench_preset(preset: str, rounds: int, folder: str) -> dict:
    import numpy as np
    import tensorflow as tf

    from mmzoo.export import captioning
    from mmzoo.export.saved_model import write_archive
    from mmzoo.export.source import serving_model
    from mmzoo.export.tflite import _convert

    model = build(preset)
    copy = serving_model(model, spec=model.spec)
    pixels, pngs = images(64)
    sm = os.path.join(folder, f"{preset}_saved_model")
    captioning.write_caption_saved_model(copy, model.spec, sm)
    loaded = tf.saved_model.load(sm)
    lite_src = os.path.join(folder, f"{preset}_lite")
    write_archive(lite_src, [copy], captioning.lite_functions(copy))
    lite_path = os.path.join(folder, f"{preset}.tflite")
    with open(lite_path, "wb") as f:
        f.write(_convert(lite_src, "float32", None, [tf.lite.OpsSet.TFLITE_BUILTINS],
                         signature_keys=list(captioning.LITE_SIGNATURES)))
    lite = captioning.LiteCaptioner(lite_path, TOKENS)

    # the same captions everywhere (a check that the contenders do the same work)
    keras_ids, _ = model.generate_ids({"image": pixels[:4]})
    assert (keras_ids != 0).all(), "every caption should be TOKENS tokens"
    served = loaded.signatures["serving_default"](image=tf.constant(pngs[:4]))["token_ids"].numpy()
    np.testing.assert_array_equal(served, keras_ids)
    np.testing.assert_array_equal(lite.generate_ids({"image": pixels[:4]}), keras_ids)

    decode_cached, decode_recompute, memories = decoding_alone(model, pixels)
    np.testing.assert_array_equal(decode_cached(memories[4])[0].numpy(), keras_ids)
    np.testing.assert_array_equal(decode_recompute(memories[4])[0].numpy(), keras_ids)

    contenders = {
        "decoding alone (cached)": lambda b: decode_cached(memories[b])[0].numpy(),
        "decoding alone (recompute prefix)": lambda b: decode_recompute(memories[b])[0].numpy(),
        "keras generate (cached)": lambda b: model.generate_ids({"image": pixels[:b]}, batch_size=b),
        "keras generate (recompute prefix)": lambda b: model.generate_ids({"image": pixels[:b]}, batch_size=b,
                                                                          use_cache=False),
        "keras generate (cached, no XLA)": lambda b: model.generate_ids({"image": pixels[:b]}, batch_size=b,
                                                                        jit_compile=False),
        "SavedModel serving_default (PNG bytes)": lambda b: loaded.signatures["serving_default"](
            image=tf.constant(pngs[:b])),
        "SavedModel generate_preprocessed": lambda b: loaded.signatures["generate_preprocessed"](
            image=tf.constant(pixels[:b])),
        "LiteRT loop (float32)": lambda b: lite.generate_ids({"image": pixels[:b]}),
    }
    seconds = {(name, b): [] for name in contenders for b in (1, 64)}
    for _ in range(rounds):
        for (name, b) in seconds:
            seconds[(name, b)].append(timed(lambda name=name, b=b: contenders[name](b), 3 if b == 64 else 10, warmup=1))
    out = {"params": int(model.count_params()), "tokens": TOKENS, "contenders": {}}
    for name in contenders:
        entry = {}
        for b in (1, 64):
            s = statistics.median(seconds[(name, b)])
            entry[f"batch {b}"] = {"seconds": s, "tokens_per_s": b * TOKENS / s}
        entry["latency_ms_batch1"] = 1000 * entry["batch 1"]["seconds"]
        out["contenders"][name] = entry
    c = out["contenders"]
    out["cache_speedup"] = {f"batch {b}": c["decoding alone (recompute prefix)"][f"batch {b}"]["seconds"]
                            / c["decoding alone (cached)"][f"batch {b}"]["seconds"] for b in (1, 64)}
    out["cache_speedup_whole_caption"] = {
        f"batch {b}": c["keras generate (recompute prefix)"][f"batch {b}"]["seconds"]
        / c["keras generate (cached)"][f"batch {b}"]["seconds"] for b in (1, 64)}
    return out


def decoding_alone(model, pixels):
    """The greedy loop of ``generate_ids`` without the encoder (the part the cache changes), on
    memories computed once, cached and recomputing the prefix, both compiled with XLA as
    ``generate_ids`` compiles them: ``(cached, recompute, {batch: memory})``."""
    import tensorflow as tf

    from mmzoo.tasks import decoding

    decoder, length = model.decoder, model.decoder.max_length
    encoder = model.encoder_model()
    memories = {b: tf.constant(encoder({"image": pixels[:b]}, training=False)) for b in (1, 4, 64)}

    @tf.function(jit_compile=True, autograph=False)
    def cached(memory):
        return decoding.greedy_search(decoder.step, decoder.init_cache(memory), tf.shape(memory)[0], length)

    @tf.function(jit_compile=True, autograph=False)
    def recompute(memory):
        return decoding.greedy_search_uncached(lambda tokens: decoder(tokens, memory, training=False),
                                               tf.shape(memory)[0], length)
    return cached, recompute, memories


def plot(results: dict, path: str) -> None:
    from matplotlib.figure import Figure

    presets = list(results["presets"])
    fig = Figure(figsize=(6 * len(presets), 4))
    axes = fig.subplots(1, len(presets), squeeze=False)[0]
    for ax, preset in zip(axes, presets):
        contenders = results["presets"][preset]["contenders"]
        names = list(contenders)
        for j, b in enumerate((1, 64)):
            speeds = [contenders[n][f"batch {b}"]["tokens_per_s"] for n in names]
            ax.barh([i + 0.4 * j for i in range(len(names))], speeds, height=0.4, label=f"batch {b}")
        ax.set_yticks([i + 0.2 for i in range(len(names))])
        ax.set_yticklabels(names, fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel("tokens/s")
        ax.set_title(f"{preset}: {TOKENS}-token captions", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", default="cnn_transformer_captioner,cnn_gru_captioner")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    args = parser.parse_args(argv)
    folder = tempfile.mkdtemp(prefix="mmzoo-bench-caption-")
    try:
        results = {"date": time.strftime("%Y-%m-%d"), "rounds": args.rounds, "presets": {}}
        for preset in args.presets.split(","):
            results["presets"][preset] = bench_preset(preset, args.rounds, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    results["targets"] = {f"{p}: cached >= 3x recomputing the prefix at {TOKENS} tokens, batch 1":
                          r["cache_speedup"]["batch 1"] >= 3.0 for p, r in results["presets"].items()}
    for preset, r in results["presets"].items():
        print(f"\n{preset} ({r['params']:,} parameters), {TOKENS}-token captions, medians of {args.rounds} rounds")
        print(f"  {'contender':<40} {'tokens/s b1':>12} {'tokens/s b64':>13} {'ms/caption b1':>14}")
        for name, c in r["contenders"].items():
            print(f"  {name:<40} {c['batch 1']['tokens_per_s']:>12,.0f} {c['batch 64']['tokens_per_s']:>13,.0f} "
                  f"{c['latency_ms_batch1']:>14.1f}")
        print(f"  cache speed-up, decoding alone: {r['cache_speedup']['batch 1']:.2f}x at batch 1, "
              f"{r['cache_speedup']['batch 64']:.2f}x at batch 64 (target >= 3x); the whole caption (the "
              f"encoder's share is the same in both): {r['cache_speedup_whole_caption']['batch 1']:.2f}x / "
              f"{r['cache_speedup_whole_caption']['batch 64']:.2f}x")
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "captioning.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    plot(results, os.path.join(RESULTS, "captioning.png"))
    print(f"\nresults: {os.path.join(RESULTS, 'captioning.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
