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

The built-in data has no multilabel, multitask or tabular task, so for those presets the script
writes one set of small synthetic tasks (`write_task_manifests`, seeded; shapes_vqa's drawings)
as manifests and trains on them with `mmzoo.train`, as a user's run does: which colours / shapes a
picture holds (multilabel), how many things of a named colour and how full the picture is
(multitask: a class and a number), the summed price of the things shown with each colour's price
in the tabular columns (image + tabular regression), and which of four numbers a question asks for
(tabular + text). A regression output's gate is the exporter's (NRMSE <= 0.05) and its test MAE
within 5% of float32's.
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


MAX_MAE_INCREASE, MAX_NRMSE = 0.05, 0.05
#: the synthetic tasks of `write_task_manifests`: (train, validation, test) rows
TASK_ROWS = (2000, 300, 500)


def write_task_manifests(folder: str, seed: int = 0, rows: tuple = TASK_ROWS) -> dict:
    """Manifests (CSV) of four small tasks over one set of seeded pictures of 1-4 coloured shapes
    (shapes_vqa's drawing), each row with an ``image``, a ``text`` and a ``tabular`` cell:
    ``{"multilabel" | "multitask" | "regression" | "tabular": path}``. Written once, reused.

    Example:
    >>> write_task_manifests("/tmp/tasks")["multilabel"]          # doctest: +SKIP
    '/tmp/tasks/multilabel.csv'
    """
    import csv

    import numpy as np

    from mmzoo.datasets import shapes_vqa_generate as scenes
    from mmzoo.datasets.shapes_captions import png_bytes

    kinds = ("multilabel", "multitask", "regression", "tabular")
    paths = {k: os.path.join(folder, f"{k}.csv") for k in kinds}
    if all(os.path.exists(p) for p in paths.values()):
        return paths
    os.makedirs(os.path.join(folder, "images"), exist_ok=True)
    rng = np.random.default_rng(seed)
    words = ("zero", "one", "two", "three", "four")
    out = {k: [] for k in kinds}
    splits = ["train"] * rows[0] + ["validation"] * rows[1] + ["test"] * rows[2]
    for i, split in enumerate(splits):
        objects = [int(o) for o in rng.integers(scenes.NUM_PAIRS, size=int(rng.integers(1, 5)))]
        image, _ = scenes.draw_image(rng, objects)
        name = f"images/{i:05d}.png"
        with open(os.path.join(folder, name), "wb") as f:
            f.write(png_bytes(image))
        colours = [scenes.COLOURS[o % len(scenes.COLOURS)] for o in objects]
        shapes = [scenes.SHAPES[o // len(scenes.COLOURS)] for o in objects]
        numbers = np.round(rng.uniform(0.0, 1.0, len(scenes.COLOURS)), 3)
        tabular = " ".join(f"{x:.3f}" for x in numbers)
        base = {"image": name, "tabular": tabular, "split": split}
        asked = ("colours", "shapes")[int(rng.integers(2))]
        present = sorted(set(colours if asked == "colours" else shapes))
        out["multilabel"].append({**base, "text": f"which {asked} are there?", "label": "|".join(present)})
        colour = scenes.COLOURS[int(rng.integers(len(scenes.COLOURS)))]
        out["multitask"].append({**base, "text": f"how many {colour} things?",
                                 "label_answer": words[colours.count(colour)],
                                 "label_score": f"{len(objects) / 4 + 0.001:.3f}"})
        price = {c: x for c, x in zip(scenes.COLOURS, numbers)}
        out["regression"].append({**base, "text": "what do they cost?",
                                  "label": f"{sum(price[c] for c in colours) + 0.001:.3f}"})
        question = ("largest", "smallest")[int(rng.integers(2))]
        pick = int(numbers.argmax() if question == "largest" else numbers.argmin())
        out["tabular"].append({**base, "text": f"which number is the {question}?", "label": "abcd"[pick]})
    for kind, table in out.items():
        tmp = paths[kind] + ".tmp"
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(table[0]))
            writer.writeheader()
            writer.writerows(table)
        os.replace(tmp, paths[kind])
    return paths


def data_for(preset: str, work: str, seed: int) -> str:
    """The data a preset trains on here: shapes_vqa for classifiers of its inputs, one of
    `write_task_manifests`' tasks for the multilabel / multitask / tabular presets."""
    import mmzoo

    about = mmzoo.describe(preset)
    head, modalities = about.get("head", "classification"), about["modalities"]
    if "tabular" in modalities or head in ("multilabel", "multitask", "regression"):
        kind = head if head in ("multilabel", "multitask", "regression") else "tabular"
        return write_task_manifests(os.path.join(work, "tasks"), seed)[kind]
    return "shapes_vqa/image_text_audio" if "audio" in modalities else "shapes_vqa/image_text"


def train_preset(preset: str, work: str, max_steps: int, seed: int) -> str:
    """A run folder of ``preset`` trained with `mmzoo.train` (reused when it is already there)."""
    import mmzoo

    run_dir = os.path.join(work, preset)
    if os.path.exists(os.path.join(run_dir, "model.keras")):
        return run_dir
    data = data_for(preset, work, seed)
    mmzoo.train(preset, data=data, max_steps=max_steps, out=run_dir, overwrite=True, seed=seed, verbose=0)
    return run_dir


def measure(run_dir: str, test_examples: int, calibration_examples: int) -> dict:
    """Every variant of a trained run against its Keras model on the test split."""
    import numpy as np

    from mmzoo.export import examples as ex
    from mmzoo.export.outputs import keras_reference, output_plan
    from mmzoo.export.parity import compare, test_scores
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
    keras_scores = test_scores(reference, labels, plan)
    near_ties = None
    if target.kind == "classification":
        top2 = np.sort(np.asarray(reference[target.primary]), axis=-1)[:, -2:]
        near_ties = round(float(np.mean(top2[:, 1] - top2[:, 0] < NEAR_TIE)), 4)  # answers rounding may flip
    row = {"preset": src.preset, "run": run_dir, "examples": len(test[next(iter(test))]),
           "task": spec.task, "keras_scores": keras_scores, "keras_accuracy": _accuracy_of(keras_scores),
           "near_ties": near_ties, "variants": {}}
    with LiteSource(model, spec) as source:
        for q in ("float32",) + VARIANTS:
            started = time.perf_counter()
            converted = convert_tflite(model, spec, q, representative=calibration, source=source, check_inputs=check)
            seconds = time.perf_counter() - started
            out = TFLiteModel(converted["content"]).predict(test)
            figures = compare(out, reference, plan)
            scores = test_scores(out, labels, plan)
            entry = {"bytes": len(converted["content"]), "agreement": figures["agreement"],
                     "nrmse": figures["nrmse"], "scores": scores, "accuracy": _accuracy_of(scores),
                     "seconds": round(seconds, 1), "int8_mode": converted.get("int8_mode")}
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
        e["passed"] = passes(e, keras_scores)
    return row


def passes(entry: dict, keras_scores: dict) -> bool:
    """The gate: top-1 / decision agreement >= 98% and NRMSE <= 0.05 where the outputs have them,
    every accuracy within 1 point of float32's and every MAE within 5% of it."""
    if entry["agreement"] is None and entry["nrmse"] is None:
        return False
    if entry["agreement"] is not None and entry["agreement"] < MIN_AGREEMENT:
        return False
    if entry["nrmse"] is not None and entry["nrmse"] > MAX_NRMSE:
        return False
    for name, reference in keras_scores.items():
        value = entry["scores"][name]
        if name.endswith("mae") and value > reference * (1 + MAX_MAE_INCREASE) + 1e-9:
            return False
        if name.endswith("accuracy") and value < reference - MAX_ACCURACY_DROP:
            return False
    return True


def _accuracy_of(scores: dict):
    """The first accuracy among a model's test scores (None for a regression model)."""
    return next((v for k, v in scores.items() if k.endswith("accuracy")), None)


def _labels(data, n: int):
    """The test split's first ``n`` labels: an array, or ``{output: array}`` for a multitask model."""
    import numpy as np

    ys = [y for _, y in data.dataset("test", batch_size=None, shuffle=False).take(n).as_numpy_iterator()]
    if ys and isinstance(ys[0], dict):
        return {k: np.asarray([y[k] for y in ys]) for k in ys[0]}
    return np.asarray(ys)


def _score_text(scores: dict) -> str:
    return ", ".join(f"{v:.1%}" if k.endswith("accuracy") else f"MAE {v:.3f}" for k, v in scores.items())


def table(rows: list) -> str:
    lines = ["| model | Keras score | " + " | ".join(f"{q} agree / score / size" for q in VARIANTS)
             + " | int8 kept in float |", "|---" * (3 + len(VARIANTS)) + "|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['name']} | not measured: {r['error']} |" + " |" * (len(VARIANTS) + 1))
            continue
        cells = []
        for q in VARIANTS:
            e = r["variants"][q]
            mark = "" if e["passed"] else " **(fails)**"
            agree = [f"{e['agreement']:.1%}"] if e["agreement"] is not None else []
            agree += [f"NRMSE {e['nrmse']:.3f}"] if e.get("nrmse") is not None else []
            cells.append(f"{', '.join(agree)} / {_score_text(e['scores'])} / {e['size_vs_float32']:.0%}{mark}")
        kept = ", ".join(p.split("/")[-1] for p in r["variants"]["int8"].get("float_layers", [])) or "-"
        lines.append(f"| {r['name']} | {_score_text(r['keras_scores'])} | " + " | ".join(cells) + f" | {kept} |")
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
        try:
            run_dir = run_dir or train_preset(name, args.work, args.max_steps, args.seed)
            row = measure(run_dir, args.test, args.calibration)
        except Exception as error:  # noqa: BLE001  (a failure is a result: it goes in the table)
            row = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
        row["name"] = name if run_dir is None or name in presets else f"{name} ({row.get('preset', '?')})"
        rows.append(row)
        print(f"[{name}] {time.perf_counter() - started:.0f}s "
              + json.dumps({q: {k: v for k, v in e.items() if k in ('agreement', 'nrmse', 'scores')}
                            for q, e in row.get("variants", {}).items()} or row.get("error")), flush=True)
        save(rows, args, final=False)  # after every model: a long run that stops keeps what it measured
    save(rows, args, final=True)
    return 0


def save(rows: list, args, final: bool) -> None:
    """Write the results (json, details, chart); ``final``: print the table and the verdict too."""
    measured = [r for r in rows if "variants" in r]
    passed = sum(all(r["variants"][q]["passed"] for q in VARIANTS) for r in measured)
    if final:
        print("\n" + table(rows))
        print(f"\n{passed} of {len(measured)} models keep >= {MIN_AGREEMENT:.0%} agreement and accuracy within "
              f"{MAX_ACCURACY_DROP:.0%} of Keras in every quantized variant (target: all).")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    record = {"date": stamp, "python": platform.python_version(), "cpu_count": os.cpu_count(),
              "max_steps": args.max_steps, "test_examples": args.test, "passed": f"{passed} of {len(measured)}",
              "min_agreement": MIN_AGREEMENT, "max_accuracy_drop": MAX_ACCURACY_DROP,
              "max_mae_increase": MAX_MAE_INCREASE, "max_nrmse": MAX_NRMSE, "results": summary(rows)}
    details = os.path.join(os.path.splitext(args.out)[0], "details.json")  # everything, per variant
    os.makedirs(os.path.dirname(details), exist_ok=True)
    for path, content in ((args.out, record), (details, {"date": stamp, "args": vars(args), "results": rows})):
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(content, f, indent=1)
        os.replace(path + ".tmp", path)
    plot(rows, os.path.splitext(args.out)[0] + ".png")
    if final:
        print(f"saved {args.out}, {details} and the chart")


def summary(rows: list) -> dict:
    """One flat row per model (the guide renders it as a table)."""
    out = {}
    for r in rows:
        if "variants" not in r:
            out[r["name"]] = {"error": r.get("error")}
            continue
        row = {"keras accuracy": r["keras_accuracy"], "near ties": r.get("near_ties")}
        maes = {k: v for k, v in r.get("keras_scores", {}).items() if k.endswith("mae")}
        row.update({f"keras {k}": v for k, v in maes.items()})
        for q in VARIANTS:
            e = r["variants"][q]
            row[f"{q} agreement"] = e["agreement"]
            row[f"{q} accuracy"] = e["accuracy"]
            row.update({f"{q} {k}": e["scores"][k] for k in maes})
            if e.get("nrmse") is not None:
                row[f"{q} nrmse"] = round(e["nrmse"], 4)
        row["int8 size vs float32"] = r["variants"]["int8"]["size_vs_float32"]
        row["int8 kept in float"] = ", ".join(r["variants"]["int8"].get("float_layers", [])) or "-"
        row["passed"] = all(r["variants"][q]["passed"] for q in VARIANTS)
        out[r["name"]] = row
    return out


def plot(rows: list, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [r for r in rows if "variants" in r and r["variants"]["int8"]["agreement"] is not None]
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
