"""Plots (PNG) and the Markdown report of a run."""

from __future__ import annotations

import os
from typing import List, Optional

import numpy as np
from matplotlib.figure import Figure


def _figure(nrows: int = 1, ncols: int = 1, **kwargs):
    """A Matplotlib figure and its axes, drawn without pyplot (a notebook's inline
    backend is left alone)."""
    fig = Figure(figsize=kwargs.pop("figsize", None))
    return fig, fig.subplots(nrows, ncols, **kwargs)


def plot_history(history: List[dict], path: str) -> Optional[str]:
    """Training curves: each metric per epoch, train and validation side by side."""
    if not history:
        return None
    metrics = [k for k in history[0] if k != "epoch" and not k.startswith("val_") and k != "learning_rate"]
    fig, axes = _figure(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    epochs = [row["epoch"] for row in history]
    for ax, m in zip(axes[0], metrics):
        ax.plot(epochs, [row.get(m) for row in history], marker="o", label=f"train {m}")
        if f"val_{m}" in history[0]:
            ax.plot(epochs, [row.get(f"val_{m}") for row in history], marker="o", label=f"validation {m}")
        ax.set_xlabel("epoch")
        ax.set_title(m)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def plot_confusion(confusion, class_names, path: str) -> str:
    """A confusion matrix heat map with counts (rows: true class, columns: predicted)."""
    confusion = np.asarray(confusion)
    k = len(class_names)
    size = max(4.0, 0.45 * k + 2)
    fig, ax = _figure(figsize=(size, size))
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(k), class_names, rotation=60, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = confusion.max() or 1
    for i in range(k):
        for j in range(k):
            if confusion[i, j]:
                ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if confusion[i, j] > top / 2 else "black")
    ax.set_title("confusion matrix (test)")
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _plan_lines(config: dict, metrics: dict) -> list:
    """How long the run trained and which epoch's weights it keeps (older runs lack these keys)."""
    lines = []
    plan = config.get("plan")
    if plan:
        lines.append(f"- plan: {plan['why']}")
    if config.get("optimizer"):
        lines.append(
            f"- optimizer: {config['optimizer']}, learning rate {config.get('learning_rate')} "
            f"({config.get('schedule')} schedule, warm-up {config.get('warmup', 0):.0%} of the steps), "
            f"weight decay {config.get('weight_decay')}, label smoothing {config.get('label_smoothing', 0)}")
    augment = config.get("augment")
    if augment is not None:
        on = [f"{k}={v:g}" if not isinstance(v, bool) else k for k, v in augment.items() if v]
        lines.append(f"- augmentation (training only): {', '.join(on) if on else 'off'}")
    if metrics.get("best_epoch"):
        stopped = " (stopped early)" if metrics.get("stopped_early") else ""
        lines.append(f"- kept weights: epoch {metrics['best_epoch']} of {metrics.get('epochs_run')}{stopped}, "
                     f"the lowest {metrics.get('monitor', 'val_loss')}; the metrics below are that epoch's")
    return lines


def render_report(config: dict, metrics: dict, plots: dict, sections: list) -> str:
    """The run's report.md; ``sections``: the task's test-metrics lines (`Task.report_sections`)."""
    lines = [f"# mmzoo run: {config.get('preset') or 'custom model'}", ""]
    lines += [
        f"- data: {config['data'].get('description', config['data'])}",
        f"- epochs run: {metrics.get('epochs_run')} of {config['epochs']} (batch {config['batch_size']}, "
        f"seed {config['seed']}, precision {config['precision']}, jit {config['jit']})",
        *_plan_lines(config, metrics),
        f"- training time: {metrics.get('train_seconds', 0):.1f} s",
        f"- parameters: {metrics.get('params'):,}",
        *[f"- data: {note}" for note in metrics.get("data", {}).get("notes", [])],
        "",
        "## Test metrics",
        "",
    ]
    lines += sections
    ablation = metrics.get("ablation")
    if ablation:
        lines += [
            "## Modality ablation (test)",
            "",
            "The headline metric with one modality masked out (zeros; text: all padding), and with",
            "only one modality kept. A large drop means the model relies on that modality.",
            "",
            "| modality | without it | it alone |",
            "|---|---|---|",
        ]
        lines += [f"| {m} | {ablation['without'][m]:.4f} | {ablation['only'][m]:.4f} |" for m in ablation["without"]]
        lines += [f"| (all) | {ablation['full']:.4f} | |", ""]
    for title, path in plots.items():
        if path:
            lines += [f"## {title}", "", f"![{title}]({os.path.relpath(path, config['out'])})", ""]
    export = metrics.get("export")
    if export:
        lines += ["## Export", "", f"```\n{export}\n```", ""]
    return "\n".join(lines)


def plot_recall_curves(curves: dict, path: str) -> str:
    """Recall@K against K (log scale) per retrieval direction, with a random ranking's."""
    fig, ax = _figure(figsize=(5.5, 3.8))
    for name, points in curves.items():
        ks, values = zip(*points)
        ax.plot(ks, values, marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("K")
    ax.set_ylabel("recall@K")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    ax.set_title("recall@K over the test pool")
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _text_of(ids, vocabulary) -> str:
    words = [vocabulary[i] if vocabulary and i < len(vocabulary) else str(i) for i in ids if i > 0]
    text, previous_wide = "", False
    for w in words:  # CJK characters join without spaces
        wide = len(w) == 1 and ord(w) > 0x2E80
        text += w if (wide and previous_wide) or not text else " " + w
        previous_wide = wide
    return text


def _draw_item(ax, inputs: dict, side: list, row: int, spec) -> str:
    """Draw one example's side into ``ax``; returns its text (for a title) when it has one."""
    ax.set_xticks([])
    ax.set_yticks([])
    text = _text_of(inputs["text"][row], spec.vocabulary) if "text" in side else ""
    if "image" in side:
        image = np.asarray(inputs["image"][row])
        ax.imshow(image.astype("uint8") if image.shape[-1] != 1 else image[..., 0], cmap=None if image.shape[-1] != 1
                  else "gray", interpolation="nearest")
    elif "audio" in side:
        ax.plot(np.asarray(inputs["audio"][row]), linewidth=0.4)
    elif text:
        import textwrap

        ax.text(0.5, 0.5, textwrap.fill(text, 26), ha="center", va="center", fontsize=6, transform=ax.transAxes)
        text = ""
    return text


def plot_retrieval_examples(examples: list, inputs: dict, sides: dict, spec, path: str) -> str:
    """Each example query (left) and its top-5 candidates, a hit framed green, a miss red."""
    import warnings

    rows, top = len(examples), max(len(e["top_rows"]) for e in examples)
    fig, axes = _figure(rows, top + 1, figsize=(1.6 * (top + 1), 1.7 * rows), squeeze=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (fonts without CJK glyphs)
        for r, example in enumerate(examples):
            title = _draw_item(axes[r][0], inputs, sides["query"], example["query_row"], spec)
            axes[r][0].set_title("query" + (f": {title[:40]}" if title else ""), fontsize=6, loc="left")
            for j, (row, hit, score) in enumerate(zip(example["top_rows"], example["hits"], example["scores"])):
                ax = axes[r][j + 1]
                _draw_item(ax, inputs, sides["candidate"], row, spec)
                for spine in ax.spines.values():
                    spine.set_edgecolor("tab:green" if hit else "tab:red")
                    spine.set_linewidth(2.5)
                ax.set_title(f"#{j + 1} {score:.2f}", fontsize=6)
        fig.tight_layout()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fig.savefig(path, dpi=110)
    return path


def plot_caption_examples(examples: list, inputs: dict, spec, path: str) -> str:
    """Each example input (a thumbnail, or the waveform) beside its generated caption and a
    reference, the generated one green when it equals a reference."""
    import textwrap
    import warnings

    fig, axes = _figure(len(examples), 2, figsize=(8.0, 1.3 * len(examples)), squeeze=False,
                        gridspec_kw={"width_ratios": [1, 5]})
    side = [m for m in ("image", "audio") if m in inputs][:1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (fonts without CJK glyphs)
        for r, example in enumerate(examples):
            _draw_item(axes[r][0], inputs, side, example["input_index"], spec)
            ax = axes[r][1]
            ax.axis("off")
            same = example["generated"] in example["references"]
            ax.text(0, 0.95, "generated: " + textwrap.fill(example["generated"], 90), va="top", fontsize=7,
                    color="tab:green" if same else "black", transform=ax.transAxes)
            ax.text(0, 0.4, "reference: " + textwrap.fill(example["references"][0], 90), va="top", fontsize=7,
                    color="dimgray", transform=ax.transAxes)
        fig.tight_layout()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fig.savefig(path, dpi=110)
    return path
