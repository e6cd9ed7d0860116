"""``mmzoo quickstart``, ``mmzoo train``, ``mmzoo evaluate``, ``mmzoo predict``."""

from __future__ import annotations

import argparse
import json
import os
import sys


def _print_summary(run) -> None:
    m = run.metrics
    test = m["test"]
    print("")
    print(f"run folder: {run.root}")
    for line in run.model.summary_lines(test):
        print(f"{m['split']} {line}")
    ab = m.get("ablation")
    if ab:
        print("modality ablation (headline metric): " + ", ".join(
            f"{mod} alone {ab['only'][mod]:.3f} / without {ab['without'][mod]:.3f}" for mod in ab["only"]))
    print(f"training time: {m['train_seconds']:.0f} s over {m['epochs_run']} epochs; params {m['params']:,}")
    if m.get("export"):
        print(f"export: {m['export']}")
    print(f"report: {os.path.join(run.root, 'report.md')}  plots: {os.path.join(run.root, 'plots')}")


def run_quickstart(args) -> int:
    from mmzoo.training.quickstart import quickstart  # lazy (here and below): the parser stays light

    run = quickstart(out=args.out, size=args.size, preset=args.model, epochs=args.epochs,
                     data_dir=args.data_dir, export=not args.no_export, seed=args.seed)
    _print_summary(run)
    return 0


def _data_kwargs(args) -> dict:
    kw = {}
    if args.image_size:
        kw["image_size"] = tuple(args.image_size)
    if args.seq_len:
        kw["seq_len"] = args.seq_len
    if args.sample_rate:
        kw["sample_rate"] = args.sample_rate
    if args.audio_seconds:
        kw["audio_seconds"] = args.audio_seconds
    if getattr(args, "optional", None):
        kw["optional"] = list(args.optional)
    return kw


def run_train(args) -> int:
    from mmzoo.training.trainer import train

    run = train(
        args.model, args.data, epochs=args.epochs, max_steps=args.max_steps, out=args.out,
        batch_size=args.batch_size, optimizer=args.optimizer, learning_rate=args.lr, schedule=args.schedule,
        warmup=args.warmup, weight_decay=args.weight_decay, label_smoothing=args.label_smoothing,
        augment=args.augment,
        precision=args.precision, jit=args.jit, seed=args.seed, shuffle=not args.no_shuffle, patience=args.patience,
        overwrite=args.overwrite, data_kwargs=_data_kwargs(args), devices=args.devices,
        distributed=args.distributed, data_service=args.data_service, data_service_mode=args.data_service_mode,
        cache=None if args.cache == "off" else args.cache,
    )
    if os.path.exists(os.path.join(run.root, "metrics.json")) and run.dir.is_finished():
        _print_summary(run)  # (a multi-worker run's other workers leave the summary to the chief)
    return 0


def run_evaluate(args) -> int:
    from mmzoo.training.trainer import Run

    run = Run(args.run)
    result = run.evaluate(args.data)
    test = result["test"]
    figures = {k: v for k, v in test.items() if not isinstance(v, (dict, list))}
    for k, v in test.items():  # a retriever's directions: {"text_to_image": {"recall@1": ...}}
        if isinstance(v, dict) and k != "headline":
            scalars = {name: x for name, x in v.items() if isinstance(x, (int, float))}
            if scalars and not isinstance(next(iter(v.values())), dict):
                figures[k] = scalars
    print(json.dumps({"split": result["split"], **figures, "ablation": result["ablation"]}, indent=2))
    return 0


def run_predict(args) -> int:
    from mmzoo.training.trainer import Run

    run = Run(args.run)
    tabular = [float(v) for v in args.tabular.replace(",", " ").split()] if args.tabular else None
    result = run.predict(image=args.image, text=args.text, audio=args.audio, tabular=tabular)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def _augment(value: str):
    if value in ("auto", "on", "off"):
        return value
    out = {}
    for item in value.split(","):
        key, sep, number = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"expected 'auto', 'off' or key=value pairs, got {item!r}")
        key, low = key.strip(), number.strip().lower()
        if low in ("on", "true", "yes", "off", "false", "no"):
            out[key] = low in ("on", "true", "yes")
            continue
        try:
            out[key] = float(number)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{key}: expected a number or on/off, got {number!r}") from None
    return out


def _patience(value: str):
    if value in ("auto", "off"):
        return None if value == "off" else value
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of epochs, 'auto' or 'off', got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"patience must be at least 1 epoch (or 'off'), got {n}")
    return n


def add_training_commands(subparsers) -> None:
    from mmzoo.training.plan import DEFAULT_STEP_BUDGET
    from mmzoo.training.quickstart import DEFAULT_PRESET
    from mmzoo.training.trainer import OPTIMIZERS, PRECISIONS, SCHEDULES

    p = subparsers.add_parser("quickstart", help="train the default preset on the built-in dataset, evaluate, export")
    p.add_argument("--out", default="runs/quickstart", help="run folder (default: runs/quickstart)")
    p.add_argument("--size", choices=("full", "small"), default="full",
                   help="full: 8000 training examples, 24 epochs; small: 512 examples, 3 epochs")
    p.add_argument("--model", default=DEFAULT_PRESET, help=f"preset to train (default: {DEFAULT_PRESET})")
    p.add_argument("--epochs", type=int, help="override the number of epochs")
    p.add_argument("--data-dir", help="TFDS data dir (default: the usual TFDS folder)")
    p.add_argument("--seed", type=int, default=0, help="seeds weights, shuffling and dropout")
    p.add_argument("--no-export", action="store_true", help="skip the SavedModel/TFLite export at the end")
    p.set_defaults(func=run_quickstart)

    p = subparsers.add_parser("train", help="train a preset on a manifest or built-in dataset")
    p.add_argument("--model", default=None,
                   help="preset name (mmzoo list); default: one that fits the data's inputs and target")
    p.add_argument("--data", required=True, help="manifest (CSV/JSONL) or shapes_vqa[/config]")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--epochs", type=int, help="planned epochs (default: planned from --max-steps)")
    p.add_argument("--max-steps", type=int, default=DEFAULT_STEP_BUDGET,
                   help=f"step budget planning the epochs when --epochs is not given (default: {DEFAULT_STEP_BUDGET})")
    p.add_argument("--batch-size", type=int, default=64, help="examples per step (default: 64)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw", help="default: adamw")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default: 0.001)")
    p.add_argument("--schedule", choices=SCHEDULES, default="cosine", help="learning-rate schedule (default: cosine)")
    p.add_argument("--warmup", type=float, default=0.05,
                   help="share of the planned steps ramping the learning rate up (cosine; default: 0.05)")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="AdamW weight decay (default: 0.0001)")
    p.add_argument("--label-smoothing", type=float, default=0.1,
                   help="label smoothing for targets with classes (default: 0.1; 0 turns it off)")
    p.add_argument("--precision", choices=PRECISIONS, default="float32", help="mixed precision policy")
    p.add_argument("--jit", action="store_true", help="XLA-compile the training step")
    p.add_argument("--seed", type=int, default=0, help="seed; a seeded rerun on CPU gives the same metrics")
    p.add_argument("--no-shuffle", action="store_true", help="keep the training data in the manifest's order")
    p.add_argument("--augment", type=_augment, default="auto",
                   help="training augmentation: 'auto' (image shift/rotation, audio shift/gain/noise + SpecAugment, "
                        "modality dropout), 'off', or overrides like "
                        "'modality_dropout=0,image_rotate=0'")
    p.add_argument("--patience", type=_patience, default="auto",
                   help="early stopping patience in epochs, 'auto' (a tenth of the planned epochs, 5-20) or 'off'")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    p.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"), help="resize images to H x W")
    p.add_argument("--seq-len", type=int, help="token ids per text (pad / truncate)")
    p.add_argument("--sample-rate", type=int, help="audio sample rate (others are resampled)")
    p.add_argument("--audio-seconds", type=float, help="audio duration (pad / crop)")
    p.add_argument("--optional", nargs="+", choices=("image", "text", "audio"), metavar="INPUT",
                   help="inputs a manifest row may leave empty (trained blank; requests send an empty string)")
    p.add_argument("--cache", default="memory",
                   help="cache decoded examples: 'memory' (default), 'off' (decode every epoch: data larger than "
                        "memory), or a file prefix")
    p.add_argument("--devices", default=None,
                   help="train on several devices of this host (MirroredStrategy): a count or names like "
                        "'GPU:0,GPU:1' (default: every GPU when there are several; on a CPU-only host a count "
                        "splits the CPU into logical devices, for testing)")
    p.add_argument("--distributed", choices=("mirrored", "multiworker", "tpu"), default=None,
                   help="multiworker: several machines, the cluster from TF_CONFIG (worker 0 writes --out); "
                        "tpu: TPUStrategy")
    p.add_argument("--data-service", metavar="grpc://HOST:PORT",
                   help="read and decode the training data on a tf.data service (mmzoo data serve)")
    p.add_argument("--data-service-mode", choices=("distributed_epoch", "parallel_epochs"),
                   default="distributed_epoch",
                   help="distributed_epoch: each example once an epoch over the service's workers (default); "
                        "parallel_epochs: each service worker a whole epoch")
    p.set_defaults(func=run_train)

    p = subparsers.add_parser("evaluate", help="evaluate a run on its test split or on --data")
    p.add_argument("run", help="run folder")
    p.add_argument("--data", help="another manifest, read with the run's data spec")
    p.set_defaults(func=run_evaluate)

    p = subparsers.add_parser("predict", help="predict from raw files and text with a run's model")
    p.add_argument("run", help="run folder")
    p.add_argument("--image", help="image file (JPEG/PNG/BMP/GIF)")
    p.add_argument("--text", help="the text input (question, caption)")
    p.add_argument("--audio", help="WAV file")
    p.add_argument("--tabular", help="numbers separated by spaces or commas")
    p.set_defaults(func=run_predict)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="mmzoo")
    add_training_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
