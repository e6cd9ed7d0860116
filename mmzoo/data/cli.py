"""``mmzoo data ...`` commands: ``check`` (validate a manifest, print the report) and
``to-tfrecord`` (write sharded TFRecords), ``serve`` (a tf.data service for training).

The main CLI wires them in with ``add_data_commands(subparsers)``; each command sets
``func`` to a handler that takes the parsed args and returns the exit code
(0: no errors; 1: errors found; 2: the manifest could not be read at all).

Example:
    $ mmzoo data check data/train.csv --image-size 64 64
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional, Sequence

from mmzoo.tasks.targets import task_names


def _add_pipeline_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("manifest", help="CSV or JSONL manifest")
    p.add_argument("--spec", help="a saved DataSpec JSON to reuse (vocabulary, class names)")
    p.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"))
    p.add_argument("--image-channels", type=int, choices=(1, 3, 4))
    p.add_argument("--image-resize", choices=("stretch", "pad"))
    p.add_argument("--seq-len", type=int)
    p.add_argument("--tokenizer", choices=("auto", "word", "char"))
    p.add_argument("--sample-rate", type=int)
    p.add_argument("--audio-seconds", type=float)
    p.add_argument(
        "--no-resample",
        action="store_true",
        help="reject audio whose rate differs instead of resampling it",
    )
    p.add_argument("--task", choices=task_names())
    p.add_argument("--root", help="folder the manifest's paths are relative to")
    p.add_argument("--allow-absolute-paths", action="store_true")
    p.add_argument(
        "--validate",
        choices=("decode", "header"),
        default="decode",
        help="decode every file with TF (default) or check headers only",
    )
    p.add_argument("--seed", type=int, default=0)


def add_data_commands(subparsers) -> argparse.ArgumentParser:
    """Add ``data check`` and ``data to-tfrecord`` to an argparse subparsers object."""
    data = subparsers.add_parser("data", help="check and convert datasets")
    sub = data.add_subparsers(dest="data_command", metavar="{check,to-tfrecord,serve}")
    sub.required = True

    check = sub.add_parser("check", help="validate a manifest and print the data report")
    _add_pipeline_options(check)
    check.add_argument("--max-errors", type=int, default=20, help="errors to print")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(func=run_check)

    convert = sub.add_parser("to-tfrecord", help="write a manifest as sharded TFRecords")
    _add_pipeline_options(convert)
    convert.add_argument("out_dir")
    convert.add_argument("--shards", type=int, default=4)
    convert.add_argument("--on-error", choices=("raise", "skip"), default="raise")
    convert.set_defaults(func=run_to_tfrecord)

    serve = sub.add_parser("serve", help="start a tf.data service (dispatcher + workers) for mmzoo train "
                                         "--data-service")
    serve.add_argument("--port", type=int, default=0, help="the dispatcher's port (default: a free one)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="the address workers announce (default 127.0.0.1: loopback only)")
    serve.add_argument("--workers", type=int, default=2, help="workers started in this process (default: 2)")
    serve.add_argument("--dispatcher", metavar="grpc://HOST:PORT",
                       help="start workers only, for this existing dispatcher")
    serve.set_defaults(func=run_serve)
    return data


def run_serve(args) -> int:
    from mmzoo.data.service import DataService

    service = DataService(port=args.port, host=args.host, workers=args.workers, dispatcher=args.dispatcher)
    role = "workers" if args.dispatcher else "dispatcher"
    print(f"tf.data service {role} at {service.address} with {len(service.workers)} worker(s). "
          f"Train with: mmzoo train --data-service {service.address} ...  (Ctrl-C stops it)", flush=True)
    try:
        service.join()
    except KeyboardInterrupt:
        service.stop()
    return 0


def _kwargs(args) -> dict:
    from mmzoo.spec import DataSpec  # lazy (here and below): the parser is built without TensorFlow

    kw = dict(
        image_size=args.image_size,
        image_channels=args.image_channels,
        image_resize=args.image_resize,
        seq_len=args.seq_len,
        tokenizer=args.tokenizer,
        sample_rate=args.sample_rate,
        audio_seconds=args.audio_seconds,
        resample=not args.no_resample,
        task=args.task,
        root=args.root,
        allow_absolute_paths=args.allow_absolute_paths,
        validate=args.validate,
        seed=args.seed,
    )
    if args.spec:
        kw["spec"] = DataSpec.load(args.spec)
    return kw


def run_check(args, out=None) -> int:
    """Handler of ``mmzoo data check``: print the report; 1 when any row is bad."""
    from mmzoo.data.pipeline import from_manifest
    from mmzoo.data.validation import DataError

    out = out or sys.stdout
    try:
        data = from_manifest(args.manifest, on_error="skip", **_kwargs(args))
    except (DataError, ValueError, FileNotFoundError) as e:
        report = getattr(e, "report", None)
        if args.json:
            print(
                json.dumps(
                    {"ok": False, "error": str(e), "report": report.to_dict() if report else None},
                    indent=2,
                ),
                file=out,
            )
        else:
            if report is not None:
                print(report.summary(args.max_errors), file=out)
            print(f"error: {e}", file=out)
        return 2
    report = data.report
    if args.json:
        print(
            json.dumps(
                dict(
                    report.to_dict(),
                    ok=report.ok,
                    modalities=list(data.modalities),
                    task=data.task,
                    num_classes=data.num_classes,
                ),
                indent=2,
                ensure_ascii=False,
            ),
            file=out,
        )
    else:
        print(report.summary(args.max_errors), file=out)
        print(
            f"  modalities: {list(data.modalities)}; task: {data.task}; "
            f"classes: {data.num_classes}",
            file=out,
        )
        if data.spec.vocabulary:
            print(f"  vocabulary: {len(data.spec.vocabulary)} tokens", file=out)
        print("OK" if report.ok else f"FAILED: {len(report.errors)} bad row(s)", file=out)
    return 0 if report.ok else 1


def run_to_tfrecord(args, out=None) -> int:
    """Handler of ``mmzoo data to-tfrecord``."""
    from mmzoo.data.pipeline import from_manifest
    from mmzoo.data.tfrecord import to_tfrecord
    from mmzoo.data.validation import DataError

    out = out or sys.stdout
    try:
        data = from_manifest(args.manifest, on_error=args.on_error, **_kwargs(args))
    except (DataError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=out)
        return 2 if not getattr(e, "report", None) else 1
    files = to_tfrecord(data, args.out_dir, shards=args.shards)
    for split, paths in files.items():
        print(f"{split}: {data.splits[split]} examples in {len(paths)} file(s)", file=out)
    if data.report.skipped:
        print(f"skipped {data.report.skipped} bad row(s)", file=out)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Stand-alone entry: ``python -m mmzoo.data.cli check MANIFEST``."""
    parser = argparse.ArgumentParser(prog="mmzoo")
    add_data_commands(parser.add_subparsers(dest="command"))
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] != "data":
        argv = ["data"] + argv
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
