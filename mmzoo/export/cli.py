"""``mmzoo export``: the command line of `mmzoo.export.export`.

    mmzoo export runs/exp1 --out export/models --name shapes \\
        --formats saved_model,tflite --quantize float16,dynamic,int8

Wired into ``mmzoo`` through ``mmzoo.cli.FEATURE_COMMANDS``:
``"export": ("mmzoo.export.cli", "add_export_commands", "export a run for TF Serving and LiteRT")``.
Building the parser does not import TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def add_export_commands(subparsers) -> argparse.ArgumentParser:
    """Add the ``export`` command to an argparse ``subparsers`` object."""
    from mmzoo.export import FORMATS, QUANTIZATIONS  # lazy (here and below): the parser stays light

    p = subparsers.add_parser(
        "export",
        help="export a run for TF Serving (SavedModel) and LiteRT (TFLite), validated",
        description="Write <out>/<name>/<version>/ (the next integer version): a SavedModel with "
        "preprocessing inside, warmup requests and a model card, plus TFLite flatbuffers. Every "
        "artifact is checked against the Keras model in a fresh process before the version is "
        "published; on a failed check nothing is published.",
    )
    p.add_argument("run_dir", help="a run directory (model.keras + data_spec.json) or a .keras file")
    p.add_argument("--out", default=os.path.join("export", "models"), help="artifact root (default: export/models)")
    p.add_argument("--name", default=None, help="model name (default: the preset's name)")
    p.add_argument("--formats", default=",".join(FORMATS), help=f"comma-separated: {','.join(FORMATS)}")
    p.add_argument("--quantize", default="",
                   help=f"extra TFLite variants, comma-separated: {','.join(QUANTIZATIONS[1:])}")
    p.add_argument("--spec", default=None, help="a data_spec.json to use instead of the run's")
    p.add_argument("--data", default=None,
                   help="manifest for int8 calibration (train split) and validation (test split)")
    p.add_argument("--samples", default=None,
                   help="JSONL of raw examples ({'image': path, 'text': ..., 'audio': path, 'tabular': [...]})")
    p.add_argument("--num-samples", type=int, default=500,
                   help="validation examples (default 500); int8 calibration draws at least 256 from the train split")
    p.add_argument("--version", type=int, default=None, help="publish as this version (must not exist)")
    p.add_argument("--xla", action="store_true", help="jit-compile the SavedModel's model call (XLA)")
    p.add_argument("--no-validate", action="store_true", help="publish without the parity checks (not recommended)")
    p.add_argument("--tolerance", type=float, default=1e-4, help="float32 max abs difference (default 1e-4)")
    p.add_argument("--min-agreement", type=float, default=0.98, help="quantized top-1 agreement (default 0.98)")
    p.add_argument("--drop-failed-variants", action="store_true",
                   help="when only quantized TFLite variants fail validation, publish the rest and record "
                        "the failed ones in the model card (default: any failure publishes nothing)")
    p.add_argument("--candidates", default=None,
                   help="a retriever's catalogue: a CSV/JSONL of candidates (their input columns, optional id and "
                        "name); default: every distinct candidate of the run's data")
    p.add_argument("--k", type=int, default=10, help="candidates a retriever's search signature returns (default 10)")
    p.add_argument("--approximate", action="store_true",
                   help="a retriever: also write a FAISS approximate index (pip install 'mmzoo[ann]')")
    _add_index_precision(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_export)
    return p


def _add_index_precision(p) -> None:
    """``--index-precision`` (export and index): the choices of `mmzoo.export.retrieval.INDEX_PRECISIONS`,
    written out so that ``--help`` does not import TensorFlow."""
    p.add_argument("--index-precision", choices=["float32", "bfloat16"], default="float32",
                   help="how a retriever's search scores its index: float32 (default), or bfloat16 for serving "
                        "machines with bfloat16 matrix units (AMX CPUs, GPUs, TPUs): the same answers, "
                        "rescored in float32")


def add_index_commands(subparsers) -> argparse.ArgumentParser:
    """Add the ``index`` command: a retriever's new catalogue, published as a new version."""
    p = subparsers.add_parser(
        "index",
        help="publish a retriever with a new candidate index (no retraining)",
        description="Embed the candidates of a file with a trained retriever's candidate tower and publish "
        "the next version of <out>/<name>/: its search signature ranks them (a matmul and top_k in the graph), "
        "and litert/candidates.npy + candidates.tsv carry them for apps. Validated like every export.",
    )
    p.add_argument("run_dir", help="the retriever's run directory (or .keras file)")
    p.add_argument("--candidates", required=True,
                   help="CSV/JSONL: the candidate side's input columns (paths relative to the file), optional id, name")
    p.add_argument("--out", default=os.path.join("export", "models"), help="artifact root (default: export/models)")
    p.add_argument("--name", default=None, help="model name (default: the preset's name)")
    p.add_argument("--k", type=int, default=10, help="candidates search returns (default 10)")
    p.add_argument("--formats", default="saved_model,tflite", help="comma-separated: saved_model,tflite")
    p.add_argument("--quantize", default="", help="extra TFLite variants of the towers (float16,dynamic,int8)")
    p.add_argument("--num-samples", type=int, default=500, help="validation examples (default 500)")
    p.add_argument("--approximate", action="store_true",
                   help="also write a FAISS approximate index, for catalogues past one graph "
                        "(pip install 'mmzoo[ann]')")
    _add_index_precision(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_index)
    return p


def cmd_index(args) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from mmzoo.export.api import ExportValidationError, export
    from mmzoo.export.retrieval import is_retriever
    from mmzoo.export.source import load_source

    source = load_source(args.run_dir)
    if not is_retriever(source.model):
        raise ValueError(f"{args.run_dir} holds a {type(source.model).__name__}; mmzoo index is for retrievers "
                         "(mmzoo list --task retrieval).")
    try:
        result = export((source.model, source.spec) if source.run_dir is None else args.run_dir, out=args.out,
                        name=args.name, formats=args.formats, quantize=args.quantize, candidates=args.candidates,
                        k=args.k, num_samples=args.num_samples, approximate=args.approximate,
                        index_precision=args.index_precision, verbose=not args.json)
    except ExportValidationError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    _print_result(result, args.json)
    return 0


def _print_result(result, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"name": result.name, "version": result.version, "path": result.path,
                          "artifacts": result.artifacts, "sizes": result.sizes, "parity": result.parity},
                         indent=1))
    else:
        print(result.summary())


def _read_samples(path: str) -> list:
    folder = os.path.dirname(os.path.abspath(path))
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            for key in ("image", "audio"):
                if isinstance(row.get(key), str) and not os.path.isabs(row[key]):
                    row[key] = os.path.join(folder, row[key])
            rows.append(row)
    return rows


def cmd_export(args) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from mmzoo.export.api import ExportValidationError, export

    try:
        result = export(
            args.run_dir, out=args.out, name=args.name, spec=args.spec, formats=args.formats,
            quantize=args.quantize, data=args.data,
            samples=_read_samples(args.samples) if args.samples else None,
            num_samples=args.num_samples, version=args.version, xla=args.xla,
            validate=not args.no_validate, tolerance=args.tolerance,
            min_agreement=args.min_agreement, drop_failed_variants=args.drop_failed_variants,
            verbose=not args.json, candidates=args.candidates, k=args.k, approximate=args.approximate,
            index_precision=args.index_precision,
        )
    except ExportValidationError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    _print_result(result, args.json)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="mmzoo")
    sub = parser.add_subparsers(dest="command", required=True)
    add_export_commands(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
