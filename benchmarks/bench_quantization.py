"""Benchmark: do quantized LiteRT flatbuffers keep trained models' answers?

For every classifier preset (or ``--presets``), a model is trained with `mmzoo.train` on the built-in
``shapes_vqa`` data (the audio config for presets with audio), and for ``--runs`` (e.g. the
small-data benchmark's runs, trained on material mmzoo did not generate) the trained model is
taken as it is. Each is converted to float32 / float16 / dynamic / int8 LiteRT exactly as
``mmzoo export`` does (int8 calibrated on shuffled training examples), and on the test split
the script measures each variant's top-1 agreement with the Keras model, its test accuracy
next to float32's, its size, and for int8 the layers kept in float. Prints one markdown table
with the targets (agreement >= 98%, accuracy within 1 point of float32) and each model's share
of near ties (test answers whose top-1 probability leads the second by < 0.05: rounding of
any kind may flip those) and saves ``benchmarks/results/quantization.json``.

    python benchmarks/bench_quantization.py [--presets a,b] [--runs runs/small_data/full/runs/select,...]
        [--max-steps 2000] [--test 500] [--work runs/bench_quantization]

Presets with a tabular input have no built-in data with that input: they are listed as
not measured.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
RESULTS = os.path.join(HERE, "results")
VARIANTS = ("float16", "dynamic", "int8")
MIN_AGREEMENT, MAX_ACCURACY_DROP = 0.98, 0.01
#: a Keras answer whose top-1 probability leads the second by less than this is a near tie
NEAR_TIE = 0.05


def train_preset(preset: str, work: str, max_steps: int, seed: int) -> str:
    """A run folder of ``preset`` trained on shapes_vqa (reused when it is already there)."""
    import mmzoo

    run_dir = os.path.join(work, preset)
    if os.path.exists(os.path.join(run_dir, "model.keras")):
        return run_dir
    modalities = mmzoo.describe(preset)["modalities"]
    data = "shapes_vqa/image_text_audio" if "audio" in modalities else "shapes_vqa/image_text"
    mmzoo.train(preset, data=data, max_steps=max_steps, out=run_dir, overwrite=True, seed=seed, verbose=0)
    return run_dir


def measure(run_dir: str, test_examples: int, calibration_examples: int) -> dict:
    """Every variant of a trained run against its Keras model on the test split."""
    import numpy as np

    from mmzoo.export import examples as ex
    from mmzoo.export.outputs import keras_reference, output_plan
    from mmzoo.export.parity import compare
    from mmzoo.export.source import load_source
    from mmzoo.export.tflite import QUANTIZATION_CHECK_EXAMPLES, LiteSource, TFLiteModel, convert_tflite
    from mmzoo.tasks.targets import Target
    from mmzoo.training.trainer import open_data

    src = load_source(run_dir)
    model, spec = src.model, src.spec
    data = open_data(src.config["data"], spec=spec)
    calibration = ex.calibration_examples(data, calibration_examples)
    check = ex.data_examples(data, "validation", QUANTIZATION_CHECK_EXAMPLES)  # as `mmzoo export` does
    test = ex.data_examples(data, "test", test_examples)
    labels = _labels(data, test_examples)
    plan = output_plan(spec)
    reference = keras_reference(model, test, plan)
    target = Target.from_plan(plan[0])
    keras_accuracy = _accuracy(reference[target.primary], labels)
    top2 = np.sort(np.asarray(reference[target.primary]), axis=-1)[:, -2:]
    near_ties = float(np.mean(top2[:, 1] - top2[:, 0] < NEAR_TIE))  # answers any rounding may flip
    row = {"preset": src.preset, "run": run_dir, "examples": len(labels), "keras_accuracy": keras_accuracy,
           "near_ties": round(near_ties, 4), "variants": {}}
    with LiteSource(model, spec) as source:
        for q in ("float32",) + VARIANTS:
            started = time.perf_counter()
            converted = convert_tflite(model, spec, q, representative=calibration, source=source, check_inputs=check)
            seconds = time.perf_counter() - started
            out = TFLiteModel(converted["content"]).predict(test)
            figures = compare(out, reference, plan)
            entry = {"bytes": len(converted["content"]), "agreement": figures["agreement"],
                     "accuracy": _accuracy(out[target.primary], labels), "seconds": round(seconds, 1),
                     "int8_mode": converted.get("int8_mode")}
            if q == "int8":
                entry["float_layers"] = [f["layer"] for f in converted["float_layers"]]
                entry["search"] = converted.get("search")  # agreement on the check examples, each round
                entry["check_examples"] = len(next(iter(check.values()))) if check else 0
            if q != "float32":
                entry["worst_layers"] = converted.get("worst_layers", [])[:3]
            row["variants"][q] = entry
    f32 = row["variants"]["float32"]
    for q in VARIANTS:
        e = row["variants"][q]
        e["size_vs_float32"] = round(e["bytes"] / f32["bytes"], 3)
        e["passed"] = bool(e["agreement"] is not None and e["agreement"] >= MIN_AGREEMENT
                           and e["accuracy"] >= keras_accuracy - MAX_ACCURACY_DROP)
    return row


def _labels(data, n: int):
    import numpy as np

    ys = []
    for _, y in data.dataset("test", batch_size=None, shuffle=False).take(n).as_numpy_iterator():
        ys.append(y if not isinstance(y, dict) else next(iter(y.values())))
    return np.asarray(ys)


def _accuracy(scores, labels) -> float:
    import numpy as np

    scores = np.asarray(scores)
    if scores.ndim == 2 and scores.shape[-1] > 1 and labels.ndim == 1:
        return round(float(np.mean(scores.argmax(-1) == labels)), 4)
    return float("nan")


def table(rows: list) -> str:
    lines = ["| model | Keras acc | " + " | ".join(f"{q} agree / acc / size" for q in VARIANTS)
             + " | int8 kept in float |", "|---" * (3 + len(VARIANTS)) + "|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['name']} | not measured: {r['error']} |" + " |" * (len(VARIANTS) + 1))
            continue
        cells = []
        for q in VARIANTS:
            e = r["variants"][q]
            mark = "" if e["passed"] else " **(fails)**"
            cells.append(f"{e['agreement']:.1%} / {e['accuracy']:.1%} / {e['size_vs_float32']:.0%}{mark}")
        kept = ", ".join(p.split("/")[-1] for p in r["variants"]["int8"].get("float_layers", [])) or "-"
        lines.append(f"| {r['name']} | {r['keras_accuracy']:.1%} | " + " | ".join(cells) + f" | {kept} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", default="all", help="comma-separated presets, 'all' or 'none'")
    parser.add_argument("--runs", default="", help="comma-separated trained run folders to measure as they are")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="training step budget per preset (default: mmzoo train's, as a user's run gets)")
    parser.add_argument("--test", type=int, default=500, help="test examples compared")
    parser.add_argument("--calibration", type=int, default=256, help="int8 calibration examples")
    parser.add_argument("--work", default=os.path.join("runs", "bench_quantization"))
    parser.add_argument("--out", default=os.path.join(RESULTS, "quantization.json"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import mmzoo
    from mmzoo.training.plan import DEFAULT_STEP_BUDGET

    args.max_steps = args.max_steps or DEFAULT_STEP_BUDGET
    presets = (mmzoo.list_models(task="classifier") if args.presets == "all" else
               [] if args.presets == "none" else args.presets.split(","))
    targets = [(p, None) for p in presets] + [(os.path.basename(r.rstrip("/")), r) for r in args.runs.split(",") if r]
    rows = []
    for name, run_dir in targets:
        started = time.perf_counter()
        if run_dir is None and "tabular" in mmzoo.describe(name)["modalities"]:
            rows.append({"name": name, "error": "no built-in data with a tabular input"})
            continue
        try:
            run_dir = run_dir or train_preset(name, args.work, args.max_steps, args.seed)
            row = measure(run_dir, args.test, args.calibration)
        except Exception as error:  # noqa: BLE001  (a failure is a result: it goes in the table)
            row = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
        row["name"] = name if run_dir is None or name in presets else f"{name} ({row.get('preset', '?')})"
        rows.append(row)
        print(f"[{name}] {time.perf_counter() - started:.0f}s "
              + json.dumps({q: {k: v for k, v in e.items() if k in ('agreement', 'accuracy')}
                            for q, e in row.get("variants", {}).items()} or row.get("error")), flush=True)
    text = table(rows)
    print("\n" + text)
    measured = [r for r in rows if "variants" in r]
    passed = sum(all(r["variants"][q]["passed"] for q in VARIANTS) for r in measured)
    print(f"\n{passed} of {len(measured)} models keep >= {MIN_AGREEMENT:.0%} agreement and accuracy within "
          f"{MAX_ACCURACY_DROP:.0%} of Keras in every quantized variant (target: all).")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"date": stamp, "python": platform.python_version(), "cpu_count": os.cpu_count(),
                   "max_steps": args.max_steps, "test_examples": args.test, "passed": f"{passed} of {len(measured)}",
                   "min_agreement": MIN_AGREEMENT, "max_accuracy_drop": MAX_ACCURACY_DROP,
                   "results": summary(rows)}, f, indent=1)
    details = os.path.join(os.path.splitext(args.out)[0], "details.json")  # everything, per variant
    os.makedirs(os.path.dirname(details), exist_ok=True)
    with open(details, "w", encoding="utf-8") as f:
        json.dump({"date": stamp, "args": vars(args), "results": rows}, f, indent=1)
    plot(rows, os.path.splitext(args.out)[0] + ".png")
    print(f"saved {args.out}, {details} and the chart")
    return 0


def summary(rows: list) -> dict:
    """One flat row per model (the guide renders it as a table)."""
    out = {}
    for r in rows:
        if "variants" not in r:
            out[r["name"]] = {"error": r.get("error")}
            continue
        row = {"keras accuracy": r["keras_accuracy"], "near ties": r.get("near_ties")}
        for q in VARIANTS:
            e = r["variants"][q]
            row[f"{q} agreement"] = e["agreement"]
            row[f"{q} accuracy"] = e["accuracy"]
        row["int8 size vs float32"] = r["variants"]["int8"]["size_vs_float32"]
        row["int8 kept in float"] = ", ".join(r["variants"]["int8"].get("float_layers", [])) or "-"
        row["passed"] = all(r["variants"][q]["passed"] for q in VARIANTS)
        out[r["name"]] = row
    return out


def plot(rows: list, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [r for r in rows if "variants" in r]
    if not measured:
        return
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(measured) * len(VARIANTS) / 2 + 2))
    height = 0.8 / len(VARIANTS)
    for j, q in enumerate(VARIANTS):
        values = [100 * r["variants"][q]["agreement"] for r in measured]
        ax.barh([i + j * height for i in range(len(measured))], values, height, label=q)
    ax.axvline(100 * MIN_AGREEMENT, color="k", linestyle="--", linewidth=1, label="gate (98%)")
    ax.set_yticks([i + height for i in range(len(measured))])
    ax.set_yticklabels([r["name"] for r in measured], fontsize=8)
    ax.set_xlim(min(90.0, min(100 * r["variants"][q]["agreement"] for r in measured for q in VARIANTS) - 1), 100.5)
    ax.invert_yaxis()
    ax.set_xlabel("top-1 agreement with the Keras model on the test split (%)")
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("quantized LiteRT vs Keras, models trained with mmzoo.train")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
