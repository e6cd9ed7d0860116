"""The ``mmzoo`` command line.

    mmzoo quickstart                     train the default preset on the built-in data
    mmzoo train / evaluate / predict     runs on your own data (see mmzoo train --help)
    mmzoo list [PATTERN] [--markdown]    the preset table (--write README.md updates the README)
    mmzoo describe NAME                  one preset, without building it
    mmzoo summary NAME [--num-classes N] build a preset and print model.summary()
    mmzoo parts                          registered encoders, fusions and heads
    mmzoo data check MANIFEST            validate a manifest (see docs/data.md)
    mmzoo export RUN_DIR                 SavedModel + TFLite, validated, published atomically
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from mmzoo.zoo import describe, list_models

TABLE_COLUMNS = ("name", "task", "modalities", "encoders", "fusion", "head", "params", "pretrained")


def preset_rows(pattern: str = "*", task: Optional[str] = None) -> List[dict]:
    rows = []
    for name in list_models(pattern, task=task):
        d = describe(name)
        sides = d.get("sides")
        rows.append(
            {
                "name": name,
                "task": d["task"],
                # a retriever: query -> candidate, fused only where a side has several inputs
                "modalities": " -> ".join("+".join(sides[s]) for s in ("query", "candidate")) if sides
                else "+".join(d["modalities"]),
                "encoders": ", ".join(f"{m}={e}" for m, e in d["encoders"].items()),
                "fusion": d["fusion"] if not sides or max(len(v) for v in sides.values()) > 1 else "-",
                "head": f"{d['head']} ({d['head_options'].get('loss', 'clip')})" if sides else d["head"],
                "params": f"{d['params']:,}" if d["params"] else "?",
                "pretrained": ", ".join(
                    f"{tag} ({w['dataset'].split('/')[-1]}: {w['accuracy']:.1%})" for tag, w in d["weights"].items()
                ) or "-",
            }
        )
    return rows


def format_table(rows: List[dict], markdown: bool = False) -> str:
    """The preset table as aligned text, or as a Markdown table (for the README)."""
    if markdown:
        lines = ["| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
        for r in rows:
            lines.append("| " + " | ".join(f"`{r[c]}`" if c == "name" else str(r[c]) for c in TABLE_COLUMNS) + " |")
        return "\n".join(lines)
    widths = {c: max([len(c)] + [len(str(r[c])) for r in rows]) for c in TABLE_COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in TABLE_COLUMNS)]
    lines.append("  ".join("-" * widths[c] for c in TABLE_COLUMNS))
    for r in rows:
        lines.append("  ".join(str(r[c]).ljust(widths[c]) for c in TABLE_COLUMNS))
    return "\n".join(lines)


def _quiet_tensorflow(args=None) -> None:
    """Before TensorFlow loads: its INFO and WARNING log lines off (TF_CPP_MIN_LOG_LEVEL=2) and,
    when this is the ``mmzoo`` program, the start-up lines that setting cannot reach and the
    ERROR-level lines that are no error filtered out of stderr (`mmzoo.host.QUIET_LINES`);
    every other line, real errors included, still shows. A TF_CPP_MIN_LOG_LEVEL the user set
    is kept, and then nothing is filtered.
    """
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if getattr(args, "owns_stderr", False):
        import logging

        from mmzoo import host

        host.quiet_native_stderr()
        # tensorflow_datasets' reader reads its own deprecated FeatureConnector.dtype (tfds 4.9).
        logging.getLogger("absl").addFilter(
            lambda record: not str(record.msg).startswith("`FeatureConnector.dtype` is deprecated."))


README_MARKERS = ("<!-- presets:start -->", "<!-- presets:end -->")


def write_table_into(path: str, table: str) -> None:
    """Replace the text between the preset markers of a Markdown file (atomically)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    start, end = README_MARKERS
    if start not in text or end not in text:
        raise ValueError(f"{path} has no {start} ... {end} markers to put the table between.")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(f"{head}{start}\n{table}\n{end}{tail}")
    os.replace(tmp, path)


def cmd_list(args) -> int:
    rows = preset_rows(args.pattern, task=args.task)
    if not rows:
        print(f"No preset matches {args.pattern!r}.", file=sys.stderr)
        return 1
    table = format_table(rows, markdown=args.markdown or bool(args.write))
    if args.write:
        write_table_into(args.write, table)
        print(f"wrote the preset table ({len(rows)} presets) into {args.write}")
    else:
        print(table)
    return 0


def cmd_describe(args) -> int:
    print(json.dumps(describe(args.name), indent=2))
    return 0


def cmd_summary(args) -> int:
    _quiet_tensorflow(args)
    from mmzoo.zoo import build  # lazy (here and below): `mmzoo list` stays free of TensorFlow

    kwargs = {} if args.num_classes is None else {"num_classes": args.num_classes}
    model = build(args.name, compile=False, **kwargs)
    if not args.expand:
        model.backbone.summary()
    model.summary(expand_nested=args.expand)
    print(f"inputs: { {m: list(s) for m, s in model.spec.input_shapes().items()} }")
    return 0


def cmd_parts(args) -> int:
    from mmzoo.zoo import list_parts

    for m in ("image", "text", "audio", "tabular"):
        print(f"{m} encoders: {', '.join(list_parts('encoder', modality=m))}")
    print(f"fusions: {', '.join(list_parts('fusion'))}")
    print(f"heads: {', '.join(list_parts('head'))}")
    print(f"tasks: {', '.join(list_parts('task'))}")
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmzoo", description="A Keras 3 model zoo for multimodal models.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="print the preset table")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. '*attention*'")
    p.add_argument("--task", help="only the presets of one task, e.g. 'classifier' or 'retrieval'")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument("--write", metavar="FILE",
                   help="put the Markdown table between the preset markers of FILE (README.md)")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("describe", help="describe one preset (no model is built)")
    p.add_argument("name")
    p.set_defaults(func=cmd_describe)

    p = sub.add_parser("summary", help="build a preset and print its Keras summary")
    p.add_argument("name")
    p.add_argument("--num-classes", type=int, default=None)
    p.add_argument("--expand", action="store_true", help="expand the encoder/head sub-models")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("parts", help="list registered encoders, fusions and heads")
    p.set_defaults(func=cmd_parts)

    _add_optional_commands(sub)
    return parser


# Commands that live with their feature; their modules import TensorFlow, so they are
# loaded only when their command is used (``mmzoo list`` stays fast).
_TRAINING = ("mmzoo.training.cli", "add_training_commands")
FEATURE_COMMANDS = {
    "quickstart": _TRAINING + ("train the default preset on the built-in dataset, evaluate, export",),
    "train": _TRAINING + ("train a preset on a manifest or built-in dataset into a run folder",),
    "evaluate": _TRAINING + ("evaluate a run (metrics, per-class scores, modality ablation)",),
    "predict": _TRAINING + ("predict from raw files and text with a run's model",),
    "data": ("mmzoo.data.cli", "add_data_commands", "check and convert datasets (mmzoo data check MANIFEST)"),
    "export": ("mmzoo.export.cli", "add_export_commands",
               "export a run for TF Serving (SavedModel) and LiteRT (TFLite)"),
    "index": ("mmzoo.export.cli", "add_index_commands",
              "publish a retriever with a new candidate index (no retraining)"),
}


def _add_optional_commands(sub) -> None:
    for name, (_, _, help_text) in FEATURE_COMMANDS.items():
        p = sub.add_parser(name, help=help_text, add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(func=_run_feature_command, feature=name)


def _run_feature_command(args) -> int:
    import importlib

    _quiet_tensorflow(args)
    module_name, adder, _ = FEATURE_COMMANDS[args.feature]
    parser = argparse.ArgumentParser(prog="mmzoo")
    sub = parser.add_subparsers(dest="command", required=True)
    getattr(importlib.import_module(module_name), adder)(sub)
    inner = parser.parse_args([args.feature] + list(args.rest))
    return inner.func(inner)


def main(argv: Optional[List[str]] = None) -> int:
    parser = make_parser()
    args, unknown = parser.parse_known_args(argv)
    args.owns_stderr = argv is None  # run as the `mmzoo` program, not called from Python
    if getattr(args, "feature", None):
        args.rest = unknown + list(args.rest)
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args.func(args) or 0)
    except (ValueError, RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
