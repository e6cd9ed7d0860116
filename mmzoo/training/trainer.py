"""`mmzoo.train`: a resumable training run that ends with a model, metrics, plots and a report."""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Dict, Optional, Union

import mmzoo.data
from mmzoo import datasets
from mmzoo.spec import DataSpec
from mmzoo.tasks.targets import data_requirements
from mmzoo.training.plan import DEFAULT_STEP_BUDGET, plan_epochs
from mmzoo.training.report import (
    plot_caption_examples,
    plot_confusion,
    plot_history,
    plot_recall_curves,
    plot_retrieval_examples,
    render_report,
)
from mmzoo.training.run import RunDirectory, RunError, package_versions, read_json, write_atomic
from mmzoo.zoo import build as build_model
from mmzoo.zoo import choose_preset, load_model, resolve_config

OPTIMIZERS = ("adamw", "adam", "sgd", "rmsprop")
SCHEDULES = ("cosine", "constant", "exponential")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


class TrainingError(RuntimeError):
    """Training stopped (a NaN loss, ...); the message says why and what was kept."""


# ---------------------------------------------------------------------------- data sources
def describe_source(data) -> dict:
    """How to open the same data again (recorded in config.json)."""
    source = getattr(data, "source", None)
    if isinstance(source, dict):
        return dict(source)
    builder = getattr(data, "builder", None)
    if builder is not None:
        name = builder.info.full_name.rsplit("/", 1)[0]
        return {"kind": "tfds", "name": name, "mapping": dict(data.mapping), "data_dir": str(builder.data_dir_root),
                "description": f"TFDS {name}"}
    root = getattr(data, "root", None)
    if root is not None:
        return {"kind": "tfrecord", "path": root, "description": f"TFRecords in {root}"}
    return {"kind": "object", "description": repr(data)}


def open_data(source: Union[str, dict], spec=None, **kwargs):
    """Open data from a manifest path, ``"shapes_vqa[/config]"`` or a recorded source dict."""
    if isinstance(source, str):
        if source.split("/")[0] in _builtin_datasets():
            name, _, config = source.partition("/")
            # A built-in dataset decides its inputs and targets; `with_inputs` picks the model's.
            kwargs = {k: v for k, v in kwargs.items() if k not in ("modalities", "task", "tasks")}
            data = datasets.load(name, config=config or datasets.DEFAULT_CONFIGS[name], spec=spec, **kwargs)
            return data
        if os.path.isdir(source) and os.path.exists(os.path.join(source, "info.json")):
            return mmzoo.data.from_tfrecord(source)  # (sharded TFRecords: mmzoo data to-tfrecord)
        if not os.path.exists(source):
            raise RunError(f"Data {source!r} is neither a manifest file, a TFRecord folder (mmzoo data to-tfrecord) "
                           f"nor a built-in dataset ({', '.join(_builtin_datasets())}).")
        return mmzoo.data.from_manifest(source, spec=spec, **kwargs)
    kind = source.get("kind")
    if kind == "manifest":
        return open_data(source["path"], spec=spec, **{**source.get("options", {}), **kwargs})
    if kind == "tfds":
        data = mmzoo.data.from_tfds(source["name"], mapping=source["mapping"], data_dir=source.get("data_dir"),
                                    spec=spec, **kwargs)
        return data
    if kind == "tfrecord":
        return mmzoo.data.from_tfrecord(source["path"])
    if kind == "interactions":
        from mmzoo.data.recommender import from_interactions

        return from_interactions(**source["paths"], **source.get("options", {}), spec=spec)
    raise RunError(f"This run's data ({source.get('description')}) cannot be reopened; pass --data.")


def _builtin_datasets():
    return datasets.list_datasets()


# ---------------------------------------------------------------------------- the run
class Run:
    """A finished (or resumable) training run folder.

    Example:
    >>> run = mmzoo.train("cnn_gru_film", data, epochs=5, out="runs/exp1")  # doctest: +SKIP
    >>> run.metrics["test"]["accuracy"]
    >>> run.predict(image="cat.png", text="what colour is the cat?")
    """

    def __init__(self, root: str):
        self.dir = RunDirectory(root)
        if not os.path.exists(self.dir.path("config")):
            raise RunError(f"{root!r} is not an mmzoo run folder (no config.json).")
        self._model = None

    @property
    def root(self) -> str:
        return self.dir.root

    @property
    def config(self) -> dict:
        return read_json(self.dir.path("config"))

    @property
    def spec(self):
        return DataSpec.load(self.dir.path("spec"))

    @property
    def metrics(self) -> dict:
        return read_json(self.dir.path("metrics"))

    @property
    def model(self):
        if self._model is None:
            if not os.path.exists(self.dir.path("model")):
                raise RunError(f"{self.root!r} has no model.keras yet (the run has not finished).")
            self._model = load_model(self.dir.path("model"))
        return self._model

    def evaluate(self, data=None, split: Optional[str] = None, batch_size: int = 256) -> dict:
        """Metrics (and the modality ablation) on the run's test split or on other data.

        ``data`` may be a data object or a manifest path; it is read with this run's data
        spec (same vocabulary, class names and shapes).
        """
        spec = self.spec
        if data is None:
            data = open_data(self.config["data"], spec=spec)
        elif isinstance(data, str):
            data = open_data(data, spec=spec)
        split = split or _eval_split(data)
        result = self.model.evaluate_data(data, split, batch_size)
        self.evaluated_inputs = result.pop("inputs", None)  # (the report's examples show them)
        return {"split": split, **result}

    def predict(self, image=None, text=None, audio=None, tabular=None) -> dict:
        """Predict from raw inputs: file paths or bytes (image, WAV), strings, arrays.

        Returns ``class_name``, ``class_id`` and ``probabilities`` for classification,
        ``scores`` for multilabel, ``values`` for regression; for a retriever the embedding of
        each side given (``query_embedding``, ``candidate_embedding``) and, with both, ``score``.
        """
        # lazy (here and below): `import mmzoo.training` and the CLI parser stay free of TensorFlow
        from mmzoo.training.predict import predict_raw

        return predict_raw(self.model, self.spec, image=image, text=text, audio=audio, tabular=tabular)


def _eval_split(data) -> str:
    for split in ("test", "validation"):
        if data.splits.get(split):
            return split
    return "train"


def _optimizer(name: str, learning_rate: float, schedule: str, total_steps: int, weight_decay: float,
               warmup: float = 0.0):
    import keras

    if name not in OPTIMIZERS:
        raise RunError(f"optimizer must be one of {list(OPTIMIZERS)}. Received: {name!r}")
    if schedule not in SCHEDULES:
        raise RunError(f"schedule must be one of {list(SCHEDULES)}. Received: {schedule!r}")
    lr: Any = learning_rate
    total_steps = max(1, total_steps)
    if schedule == "cosine":
        warm = int(round(warmup * total_steps))
        if warm:  # a linear ramp from 0 to the peak, then the cosine
            lr = keras.optimizers.schedules.CosineDecay(0.0, decay_steps=max(1, total_steps - warm), alpha=0.05,
                                                        warmup_target=learning_rate, warmup_steps=warm)
        else:
            lr = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total_steps, alpha=0.05)
    elif schedule == "exponential":
        lr = keras.optimizers.schedules.ExponentialDecay(learning_rate, decay_steps=max(1, total_steps // 10),
                                                         decay_rate=0.7)
    if name == "adam":
        return keras.optimizers.Adam(lr)
    if name == "adamw":
        opt = keras.optimizers.AdamW(lr, weight_decay=weight_decay)
        opt.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])  # biases and norms
        return opt
    if name == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9)
    return keras.optimizers.RMSprop(lr)


def _front_end_masks(planned: dict, build: dict, on: bool) -> None:
    """Turn the audio encoder's SpecAugment off in ``build`` when augmentation is off."""
    import inspect

    from mmzoo.registry import ENCODERS

    audio = planned["encoders"].get("audio")
    if on or not audio or "spec_augment" not in inspect.signature(ENCODERS.get(audio["name"])).parameters:
        return
    options = build.setdefault("encoder_options", {})
    options["audio"] = {**options.get("audio", {}), "spec_augment": False}


def _check_resume(run_dir: RunDirectory, config: dict) -> None:
    old = read_json(run_dir.path("config"))
    keys = ("preset", "build", "data", "epochs", "batch_size", "seed", "optimizer", "learning_rate", "schedule",
            "warmup", "weight_decay", "label_smoothing", "augment", "shuffle")
    defaults = {"shuffle": True}  # (settings added later: an older run folder had them at these values)
    changed = [k for k in keys if old.get(k, defaults.get(k)) != config.get(k)]
    if changed:
        raise RunError(
            f"{run_dir.root!r} holds an unfinished run with other settings ({', '.join(changed)} differ). "
            "Rerun the same command to resume it, or pass overwrite=True (--overwrite) to start over."
        )


def _datasets(data, dist, val_split, batch_size, shuffle, seed, cache, augmentation, data_service,
              data_service_mode):
    """The training and validation datasets for the run's distribution: ``(train, val, by_file)``.

    ``train`` is a dataset of global batches, or (``by_file``: a multi-worker run on sharded
    TFRecords) a function of an input context giving each worker its own files, repeated.
    Under mmzoo's loop and on a TPU every batch is whole (the dropped validation rest is said).
    """
    from mmzoo.data.augment import augmented

    whole = dist.whole_batches
    train_cache = None if data_service else cache  # (the service's workers decode every epoch)
    by_file = dist.shard_policy(data) == "file"
    if by_file:
        def train_ds(context):
            ds = data.dataset("train", batch_size=context.get_per_replica_batch_size(batch_size),
                              shuffle=shuffle, seed=seed, cache=train_cache, drop_remainder=True, repeat=True,
                              num_shards=context.num_input_pipelines, shard_index=context.input_pipeline_id)
            return augmented(ds, augmentation, seed)
    else:
        train_ds = data.dataset("train", batch_size=batch_size, shuffle=shuffle, seed=seed, cache=train_cache,
                                drop_remainder=whole,
                                splittable=bool(data_service) and data_service_mode == "distributed_epoch")
        if data_service:
            from mmzoo.data.service import distribute

            train_ds = distribute(train_ds, data_service, mode=data_service_mode)
        train_ds = augmented(train_ds, augmentation, seed)
    if not val_split:
        return train_ds, None, by_file
    val_batch = 256
    if whole:  # whole global batches: the largest multiple of the replicas up to 256 examples
        n_val = data.num_examples(val_split)
        val_batch = max(dist.replicas, min(256, n_val) // dist.replicas * dist.replicas)
        left = n_val % val_batch
        if left:
            print(f"Data: the validation loss (early stopping) reads {n_val - left} of {n_val} validation "
                  f"examples each epoch (whole batches of {val_batch} over {dist.replicas} replicas); the "
                  "final evaluation reads all of them.", flush=True)
    val_ds = data.dataset(val_split, batch_size=val_batch, shuffle=False, cache=cache, drop_remainder=whole)
    return train_ds, val_ds, by_file


def train(
    model: Union[str, dict, None] = None,
    data: Any = None,
    *,
    epochs: Optional[int] = None,
    max_steps: int = DEFAULT_STEP_BUDGET,
    out: str = "runs/exp",
    batch_size: int = 64,
    optimizer: str = "adamw",
    learning_rate: float = 1e-3,
    schedule: str = "cosine",
    warmup: float = 0.05,
    weight_decay: float = 1e-4,
    label_smoothing: float = 0.1,
    augment: Union[str, dict, None] = "auto",
    precision: str = "float32",
    jit: bool = False,
    seed: int = 0,
    shuffle: bool = True,
    patience: Union[int, str, None] = "auto",
    overwrite: bool = False,
    cache: Union[bool, str, None] = "memory",
    save_every_batches: Optional[int] = 50,
    build_kwargs: Optional[Dict[str, Any]] = None,
    data_kwargs: Optional[Dict[str, Any]] = None,
    verbose: Union[int, str] = "auto",
    after_training=None,
    devices: Union[int, str, list, None] = None,
    distributed: Optional[str] = None,
    data_service: Optional[str] = None,
    data_service_mode: str = "distributed_epoch",
    steps_per_execution: Union[int, str] = "auto",
) -> Run:
    """Train a preset on data and write a complete run folder; resumes an interrupted run.

    The defaults are made for a few hundred to a few thousand rows: a budget of
    ``max_steps`` optimizer steps (``epochs`` fixes the count instead), early stopping on the
    validation loss with the best epoch's weights restored, AdamW with a warm-up then cosine
    decay, and label smoothing. Everything chosen is recorded in config.json.

    Args:
        model: a preset name (or ``{"preset": name, **build overrides}``); None chooses one
            that fits the data's inputs and target (`mmzoo.zoo.choose_preset`) and says why.
        data: a data object (`mmzoo.data.from_manifest`, `mmzoo.datasets.load`...), a
            manifest path, or a built-in dataset name such as ``"shapes_vqa/image_text_audio"``.
        epochs: planned epochs; None plans them from ``max_steps`` (at least 10, at most 300).
        out: the run folder. batch_size: examples per step.
        optimizer: ``adamw``, ``adam``, ``sgd`` or ``rmsprop``; learning_rate (the peak);
            schedule: ``cosine``, ``constant`` or ``exponential``; warmup: the share of the
            planned steps spent ramping the learning rate up from 0 (cosine only);
            weight_decay: AdamW's (not on biases and normalisation weights).
        label_smoothing: for targets with classes (0 turns it off).
        augment: ``"auto"`` (`mmzoo.data.augment.Augmentation`'s defaults: image shift and
            rotation, audio shift / gain / noise and SpecAugment, modality dropout), ``"off"``,
            or a dict of overrides such as ``{"modality_dropout": 0.0, "text_dropout": 0.05}``.
        precision: ``float32``, ``mixed_float16`` or ``mixed_bfloat16``. jit: XLA-compile.
        seed: seeds weights, shuffling and dropout (with op determinism, a rerun on CPU gives
            the same metrics). shuffle: reshuffle the training data every epoch (False keeps the
            manifest's order).
        patience: early stopping on the validation loss, in epochs; ``"auto"`` scales it with
            the planned epochs (`plan_epochs`), None trains every planned epoch.
        overwrite: replace a folder that holds a finished run.
        cache: cache decoded examples (``"memory"``, a file prefix, or None).
        save_every_batches: how often the resumable state is saved within an epoch.
        devices: train on several devices of this host with ``MirroredStrategy`` (a count or
            names such as ``"GPU:0,GPU:1"``; default: every GPU when there are several).
        distributed: ``"multiworker"`` (several machines, the cluster from ``TF_CONFIG``,
            mmzoo's own loop; only worker 0 writes ``out``), ``"mirrored"`` or ``"tpu"``. See
            `mmzoo.training.distributed`. The batch size is the global batch.
        data_service: ``"grpc://HOST:PORT"`` of a tf.data service dispatcher (`mmzoo data serve`):
            its workers read and decode the training data. data_service_mode:
            ``"distributed_epoch"`` (each example once an epoch across the service's workers) or
            ``"parallel_epochs"`` (each worker a whole epoch).
        steps_per_execution: training steps per call into the compiled function; ``"auto"``:
            32 on a TPU (bounded by the steps of an epoch), else 1.

    Example:
    >>> run = mmzoo.train("cnn_gru_attention", "data/train.csv", out="runs/exp1")  # doctest: +SKIP
    """
    started = time.time()
    if verbose == "auto":  # a progress bar with ETA in a terminal, one line per epoch in logs
        verbose = 1 if sys.stdout.isatty() else 2
    if precision not in PRECISIONS:
        raise RunError(f"precision must be one of {list(PRECISIONS)}. Received: {precision!r}")
    if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
        raise RunError(f"epochs must be a positive integer or None (planned from max_steps). Received: {epochs!r}")
    if not isinstance(max_steps, int) or max_steps < 1:
        raise RunError(f"max_steps must be a positive integer. Received: {max_steps!r}")
    if not 0.0 <= warmup < 1.0:
        raise RunError(f"warmup must be a share of the planned steps in [0, 1). Received: {warmup!r}")
    if not 0.0 <= label_smoothing < 1.0:
        raise RunError(f"label_smoothing must be in [0, 1). Received: {label_smoothing!r}")
    from mmzoo.data.service import check_service_mode
    from mmzoo.training.distributed import DistributionError, distribution_for

    check_service_mode(data_service, data_service_mode)
    if data_service and distributed == "multiworker":
        raise RunError("data_service with distributed='multiworker' is not supported yet: each worker reads its "
                       "own input (sharded by example). Use the data service with one host (devices=...).")
    try:  # first: a strategy must exist before any other TensorFlow work
        dist = distribution_for(devices, distributed)
    except DistributionError as e:
        raise RunError(str(e)) from None
    chief_dir = RunDirectory(out)
    if dist.is_chief:
        run_dir = chief_dir
        resume = run_dir.prepare(overwrite)  # fails now on an unwritable/full/finished --out
    else:  # the other workers write to a folder of their own, and resume from the chief's state
        import tempfile

        run_dir = RunDirectory(tempfile.mkdtemp(prefix=f"mmzoo-worker{dist.task_index}-"))
        resume = not overwrite and os.path.exists(os.path.join(chief_dir.state_dir, "state.json"))

    chosen = None
    if model is None:  # the preset that fits the data, said out loud
        if data is None:
            raise RunError("No data given. Pass a data object, a manifest path or 'shapes_vqa'.")
        if isinstance(data, str):
            data = open_data(data, **(data_kwargs or {}))  # validates the manifest up front
        model, chosen = choose_preset(data.spec)
        name = model if isinstance(model, str) else "a composed model"
        print(f"Training {name}: {chosen}. Pass --model to pick another (mmzoo list).", flush=True)
    build = dict(build_kwargs or {})
    if isinstance(model, dict):
        build.update({k: v for k, v in model.items() if k != "preset"})
        preset = model.get("preset")
    else:
        preset = model
    from mmzoo.data.augment import Augmentation

    try:
        augmentation = Augmentation.from_setting(augment)
    except (TypeError, ValueError) as e:
        raise RunError(str(e)) from None
    model_choices = {k: v for k, v in build.items() if k not in ("seed", "compile", "weights", "name")}
    planned = resolve_config(preset, **model_choices)
    _front_end_masks(planned, build, augmentation.spec_augment)
    from mmzoo.registry import TASKS

    if augmentation.modality_dropout and not TASKS.get(planned["task"]).modality_dropout_applies:
        import dataclasses

        augmentation = dataclasses.replace(augmentation, modality_dropout=0.0)  # (a retriever's pairs)
    needs = list(planned["spec"].modalities)

    if data is None:
        raise RunError("No data given. Pass a data object, a manifest path or 'shapes_vqa'.")
    if isinstance(data, str):
        # Only the model's inputs are read (other columns are named in the report); a missing
        # one fails here, before training. Validates the manifest up front.
        asked = {"modalities": needs, **data_requirements(planned["spec"]), **(data_kwargs or {})}
        data = open_data(data, **asked)
    if hasattr(data, "with_inputs"):  # a duck-typed data object gives the model's inputs itself
        data = data.with_inputs(needs)
    source = describe_source(data)
    for note in getattr(getattr(data, "report", None), "notes", []):
        print(f"Data: {note}", flush=True)
    val_split = "validation" if data.splits.get("validation") else None
    if batch_size % dist.replicas:
        raise RunError(f"batch_size {batch_size} is the global batch: it must split evenly over {dist.replicas} "
                       "replicas. Pass a multiple of the replica count.")
    plan = plan_epochs(data.num_examples("train"), batch_size, epochs=epochs, max_steps=max_steps,
                       patience=patience, has_validation=val_split is not None,
                       whole_batches=dist.whole_batches)

    import keras
    import tensorflow as tf

    config = {
        "task": planned["task"],
        "preset": preset,
        "model_choice": chosen,
        "build": build,
        "data": source,
        "epochs": plan["epochs"],
        "plan": plan,
        "batch_size": batch_size,
        "optimizer": optimizer,
        "learning_rate": learning_rate,
        "schedule": schedule,
        "warmup": warmup,
        "weight_decay": weight_decay,
        "label_smoothing": label_smoothing,
        "augment": augmentation.to_dict(),
        "precision": precision,
        "jit": jit,
        "seed": seed,
        "shuffle": shuffle,
        "patience": plan["patience"],
        "cache": cache,
        "distribution": dist.describe(batch_size, learning_rate, data),
        "data_service": {"address": data_service, "processing_mode": data_service_mode} if data_service else None,
        "out": os.path.abspath(out),
        "versions": package_versions(),
        "command": " ".join(sys.argv),
    }
    if resume:
        _check_resume(chief_dir, config)
    if not (resume and dist.is_chief):  # (a resumed run keeps its config.json)
        write_atomic(run_dir.path("config"), config)
    data.spec.save(run_dir.path("spec"))
    run_dir.set_status("running", started=time.strftime("%Y-%m-%dT%H:%M:%S"))

    from tensorflow.python.framework import config as tf_config  # (Keras reads it the same way)

    keras.utils.set_random_seed(seed)
    was_deterministic = tf_config.is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()  # undone at the end: it turns XLA off process-wide
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        epochs, patience = plan["epochs"], plan["patience"]
        with dist.scope():
            net = build_model(preset, **{**build, **data.model_kwargs()}, seed=seed, compile=False)
            net.compile(
                optimizer=_optimizer(optimizer, learning_rate, schedule, plan["steps_per_epoch"] * epochs,
                                     weight_decay, warmup),
                loss=net.default_loss(label_smoothing=label_smoothing),
                metrics=net.default_metrics(),
                jit_compile=bool(jit),
                steps_per_execution=dist.steps_per_execution(steps_per_execution, plan["steps_per_epoch"]),
            )
        train_ds, val_ds, by_file = _datasets(data, dist, val_split, batch_size, shuffle, seed, cache, augmentation,
                                              data_service, data_service_mode)

        from mmzoo.training.callbacks import RunState

        monitor = "val_loss" if val_ds is not None else "loss"
        state = RunState(run_dir, monitor=monitor, mode="min", save_every_batches=save_every_batches,
                         restore_dir=chief_dir)
        state.set_model(net)
        with dist.scope():  # (the optimizer's variables are built under the strategy)
            initial_epoch = state.restore() if resume else 0
        callbacks = [state, keras.callbacks.TensorBoard(run_dir.logs_dir, write_graph=False)]
        if patience:
            callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=patience,
                                                           start_from_epoch=plan["start_from_epoch"]))
        if dist.is_chief:
            print(f"Plan: {plan['why']}", flush=True)
            if dist.kind != "single":
                print(f"Distribution: {dist.kind} over {dist.replicas} replica(s) on {dist.workers} worker(s), "
                      f"global batch {batch_size} ({batch_size // dist.replicas} a replica).", flush=True)
        if initial_epoch < epochs:
            if resume and dist.is_chief:
                print(f"Resuming {out} at epoch {initial_epoch + 1} of {epochs}.", flush=True)
            if dist.uses_fit:
                net.fit(train_ds, validation_data=val_ds, epochs=epochs, initial_epoch=initial_epoch,
                        shuffle=False, callbacks=callbacks, verbose=verbose)
            else:
                from mmzoo.training.loop import fit_with_strategy

                fit_with_strategy(net, dist.strategy, train_ds, val_ds, epochs=epochs, initial_epoch=initial_epoch,
                                  callbacks=callbacks, verbose=verbose, print_progress=dist.is_chief,
                                  steps_per_epoch=plan["steps_per_epoch"] if by_file else None)
        if state.nan_stop:
            run_dir.set_status("failed", reason=state.nan_stop)
            raise TrainingError(
                f"Training stopped: {state.nan_stop}. The last good state is kept in "
                f"{run_dir.state_dir} (best weights: {run_dir.checkpoint_dir}/best.weights.h5). "
                "Try a lower learning rate (--lr) or check the data for extreme values."
            )
        best = os.path.join(run_dir.checkpoint_dir, "best.weights.h5")
        if os.path.exists(best):
            net.load_weights(best)  # best-weights restore (by validation loss)
        if not dist.is_chief:  # the chief writes the model, the report and the export
            import shutil

            shutil.rmtree(run_dir.root, ignore_errors=True)
            print(f"Worker {dist.task_index} finished; worker 0 (the chief) writes {out}.", flush=True)
            return Run(chief_dir.root)
        tmp_model = os.path.join(run_dir.root, ".tmp-model.keras")
        net.save(tmp_model)
        os.replace(tmp_model, run_dir.path("model"))
        train_seconds = time.time() - started

        run = Run(run_dir.root)
        if dist.kind == "single":
            run._model = net
        # (otherwise Run loads model.keras outside the strategy: evaluation and export run on one device)
        result = run.evaluate(data)
        metrics = {
            "task": net.task_name,
            "target": data.spec.task,
            "split": result["split"],
            "test": result["test"],
            "ablation": result["ablation"],
            "epochs_run": len(state.history),
            "best_epoch": state.best_epoch,
            "monitor": monitor,
            "stopped_early": len(state.history) < epochs,
            "history": state.history,
            "params": int(net.count_params()),
            "data": {"notes": list(getattr(getattr(data, "report", None), "notes", []))},
            "train_seconds": train_seconds,
        }
        if after_training is not None:
            metrics["export"] = after_training(run)
        write_report(run, metrics)
        run_dir.set_status("finished", finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
        return run
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
        if not was_deterministic:
            tf_config.disable_op_determinism()


def write_report(run: Run, metrics: dict) -> None:
    """metrics.json, the PNG plots and report.md of a run."""
    curves = os.path.join(run.dir.plots_dir, "training_curves.png")
    plots = {"Training curves": plot_history(metrics.get("history", []), curves)}
    test = metrics["test"]
    if "confusion_matrix" in test:
        plots["Confusion matrix"] = plot_confusion(test["confusion_matrix"], test["class_names"],
                                                   os.path.join(run.dir.plots_dir, "confusion_matrix.png"))
    curves = {k: v["curve"] for k, v in test.items() if isinstance(v, dict) and "curve" in v}
    if curves:
        plots["Recall@K (test pool)"] = plot_recall_curves(curves, os.path.join(run.dir.plots_dir, "recall_at_k.png"))
    inputs = getattr(run, "evaluated_inputs", None)
    examples = test.get("examples") if isinstance(test.get("examples"), list) and inputs is not None else None
    if examples and getattr(run.model, "sides", None):  # (a retriever's)
        plots["Retrieval examples (test)"] = plot_retrieval_examples(
            examples, inputs, run.model.sides, run.model.spec,
            os.path.join(run.dir.plots_dir, "retrieval_examples.png"))
    elif examples and "generated" in examples[0]:  # (a captioner's)
        plots["Caption examples (test)"] = plot_caption_examples(
            examples, inputs, run.model.spec, os.path.join(run.dir.plots_dir, "caption_examples.png"))
    metrics["plots"] = {k: os.path.relpath(v, run.root) for k, v in plots.items() if v}
    write_atomic(run.dir.path("metrics"), metrics)
    sections = run.model.report_sections(metrics["test"])
    write_atomic(run.dir.path("report"), render_report(run.config, metrics, plots, sections))
