"""Benchmark: mmzoo's defaults vs a hand-written Keras baseline on small image + text + audio tasks.

The tasks (`benchmarks/smalldata/tasks.py`) are built from material mmzoo did not generate:
scikit-learn's bundled handwritten digits, digits printed in matplotlib's bundled fonts, and
spoken digits in English and Mandarin synthesized by espeak-ng (stored once in
``benchmarks/data/speech_digits.npz``), with templated English and Chinese questions. Each
one needs the question and at least one other modality; the question alone is at chance.

Per task: the hand-written Keras baseline (`benchmarks/smalldata/baseline.py`), then
``mmzoo train --data <manifest> --out <run>`` in a subprocess with no other flag (its
defaults), read back from the run's ``metrics.json``. Prints one markdown table (test
accuracy, the text-only ablation, chance levels, training seconds) and saves the results in
``benchmarks/results/small_data.json`` (and a PNG chart beside it).

    python benchmarks/bench_small_data.py [--size small|full] [--tasks select,compare,glyphs]
        [--out benchmarks/results/small_data.json] [--work runs/small_data] [--seed 0]

``--size small`` (240 training rows a task) checks the whole thing in a few minutes; the
figures are from ``--size full`` (2,000 training rows a task).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from benchmarks.smalldata import tasks as tasks_lib  # noqa: E402  (after the path setup)

#: the baseline's epoch cap per size (early stopping usually ends it sooner)
BASELINE_EPOCHS = {"tiny": 2, "small": 40, "full": 40}
COLUMNS = ["task", "rows (train/val/test)", "chance", "text-only chance", "baseline acc", "mmzoo acc",
           "mmzoo text-only", "baseline s", "mmzoo s"]


def mmzoo_command(manifest: str, run_dir: str, epochs=None) -> list:
    """``mmzoo train --data MANIFEST --out RUN``: no other flag (``epochs``: for the tests only)."""
    flags = ["--epochs", str(epochs)] if epochs else []
    return ["mmzoo", "train", "--data", manifest, "--out", run_dir] + flags


def run_mmzoo(manifest: str, run_dir: str, epochs=None) -> dict:
    """Train with mmzoo's defaults in a subprocess; its metrics, or its error."""
    if os.path.exists(run_dir):  # a finished run would refuse the same --out without --overwrite
        shutil.rmtree(run_dir)
    os.makedirs(os.path.dirname(run_dir), exist_ok=True)
    args = mmzoo_command(manifest, run_dir, epochs)
    cmd, shown = [sys.executable, "-m", "mmzoo.cli"] + args[1:], " ".join(args)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
    started = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.time() - started
    with open(run_dir + ".log", "w", encoding="utf-8") as f:
        f.write(proc.stdout + "\n--- stderr ---\n" + proc.stderr)
    metrics_path = os.path.join(run_dir, "metrics.json")
    if proc.returncode != 0 or not os.path.exists(metrics_path):
        return {"command": shown, "error": f"exit code {proc.returncode}", "stderr_tail": proc.stderr[-3000:],
                "wall_seconds": wall}
    with open(metrics_path, encoding="utf-8") as f:
        m = json.load(f)
    with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    notes = [line for line in proc.stdout.splitlines() if line.startswith("Training ")]
    return {
        "command": shown,
        "accuracy": m["test"]["accuracy"],
        "text_only": m["ablation"]["only"].get("text"),
        "ablation": m["ablation"],
        "seconds": m["train_seconds"],
        "wall_seconds": wall,
        "epochs": m["epochs_run"],
        "params": m["params"],
        "split": m["split"],
        "preset": config.get("preset"),
        "model_choice": config.get("model_choice") or (notes[0] if notes else None),
        "data_notes": m.get("data", {}).get("notes", []),
        "git": _git(),  # (per task: the tree may change during a long run)
    }


def _fmt(v, kind="acc"):
    if v is None:
        return "error"
    return f"{v:.3f}" if kind == "acc" else f"{v:.0f}"


def summary_row(info: dict) -> dict:
    """One task's figures, flat (the table's row; ``None`` where a run failed)."""
    b, m, c = info["baseline"], info["mmzoo"], info["chance_levels"]
    r = lambda v, nd=3: None if v is None else round(v, nd)  # noqa: E731
    return {
        "rows": "/".join(str(info["rows"][s]) for s in ("train", "validation", "test")),
        "chance": r(c["chance"]),
        "text_only_chance": r(c["text_only"]),
        "baseline_accuracy": r(b.get("accuracy")),
        "mmzoo_accuracy": r(m.get("accuracy")),
        "mmzoo_text_only": r(m.get("text_only")),
        "baseline_text_only": r(b.get("text_only")),
        "baseline_seconds": r(b.get("seconds"), 1),
        "mmzoo_seconds": r(m.get("seconds"), 1),
        "baseline_epochs": b.get("epochs"),
        "mmzoo_epochs": m.get("epochs"),
    }


def table(results: dict) -> str:
    """The markdown table of a results record."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for name, r in results["results"].items():
        lines.append("| " + " | ".join([
            name, r["rows"], _fmt(r["chance"]), _fmt(r["text_only_chance"]), _fmt(r["baseline_accuracy"]),
            _fmt(r["mmzoo_accuracy"]), _fmt(r["mmzoo_text_only"]), _fmt(r["baseline_seconds"], "s"),
            _fmt(r["mmzoo_seconds"], "s")]) + " |")
    return "\n".join(lines)


def _versions() -> dict:
    import keras
    import tensorflow as tf

    import mmzoo

    return {"mmzoo": mmzoo.__version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "python": platform.python_version()}


def _git() -> dict:
    """The commit measured, and the mmzoo files changed since (uncommitted work)."""
    run = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()  # noqa: E731
    try:
        return {"commit": run("rev-parse", "HEAD"),
                "mmzoo_uncommitted": [line[3:] for line in run("status", "--porcelain", "mmzoo").splitlines()]}
    except OSError:  # no git
        return {}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=("small", "full", "tiny"), default="small",
                        help="rows per task: small 240/60/100, full 2000/300/500 (tiny 40/20/20: for the tests)")
    parser.add_argument("--tasks", default=",".join(tasks_lib.TASKS), help="comma-separated task names")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "small_data.json"), help="results JSON")
    parser.add_argument("--work", default=os.path.join(ROOT, "runs", "small_data"),
                        help="folder for the tasks' data and the runs (replaced)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the data, the baseline and nothing in mmzoo")
    parser.add_argument("--mmzoo-epochs", type=int, help=argparse.SUPPRESS)  # the tests' time limit; not a benchmark
    args = parser.parse_args(argv)
    names = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in names if t not in tasks_lib.TASKS]
    if unknown:
        parser.error(f"unknown tasks {unknown}; choose among {list(tasks_lib.TASKS)}")

    from benchmarks.smalldata import baseline  # (imports Keras)

    work = os.path.abspath(os.path.join(args.work, args.size))
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "size": args.size,
        "seed": args.seed,
        "cpu_count": os.cpu_count(),
        "versions": _versions(),
        "git": _git(),
        "results": {},  # per task, flat: what the table shows
        "tasks": {},  # per task: its description, chance levels, and both runs in full
    }
    for name in names:
        started = time.time()
        info = tasks_lib.build(name, os.path.join(work, "data"), args.size, args.seed)
        info["build_seconds"] = time.time() - started
        print(f"{name}: {info['summary']}; rows {info['rows']}, chance levels {info['chance_levels']}", flush=True)
        info["baseline"] = baseline.run(info["manifest"], seed=args.seed, epochs=BASELINE_EPOCHS[args.size])
        print(f"  baseline: {info['baseline']}", flush=True)
        info["mmzoo"] = run_mmzoo(info["manifest"], os.path.join(work, "runs", name), args.mmzoo_epochs)
        shown = {k: v for k, v in info["mmzoo"].items() if k not in ("ablation", "stderr_tail", "data_notes")}
        print(f"  mmzoo: {shown}", flush=True)
        if "error" in info["mmzoo"]:
            print(info["mmzoo"]["stderr_tail"], file=sys.stderr)
        info["manifest"] = os.path.relpath(info["manifest"], ROOT) if info["manifest"].startswith(ROOT) \
            else info["manifest"]
        for k in ("name", "size", "seed"):  # (the record's own)
            info.pop(k, None)
        results["tasks"][name] = info
        results["results"][name] = summary_row(info)
    print("")
    print(table(results))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2, ensure_ascii=False)
    print(f"saved {args.out}")
    _chart(results, os.path.splitext(args.out)[0] + ".png")
    return results


def _chart(results: dict, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    names = list(results["tasks"])
    series = [("chance", lambda r: r["chance_levels"]["chance"], "#bbbbbb"),
              ("text-only chance", lambda r: r["chance_levels"]["text_only"], "#888888"),
              ("baseline", lambda r: r["baseline"].get("accuracy"), "#4c72b0"),
              ("mmzoo", lambda r: r["mmzoo"].get("accuracy"), "#c44e52"),
              ("mmzoo text-only", lambda r: r["mmzoo"].get("text_only"), "#e8a0a0")]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / len(series)
    for i, (label, get, color) in enumerate(series):
        values = [get(results["tasks"][n]) or 0 for n in names]
        ax.bar([j + (i - len(series) / 2 + 0.5) * width for j in range(len(names))], values, width,
               label=label, color=color)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylim(0, 1)
    ax.set_ylabel("test accuracy")
    ax.set_title(f"small data ({results['size']}), {results['cpu_count']} CPUs", fontsize=10)
    ax.legend(fontsize=7, ncol=3, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
