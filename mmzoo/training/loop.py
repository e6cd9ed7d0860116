"""A training loop with Keras ``fit``'s contract for strategies where ``fit`` fails.

Keras 3's ``fit`` fails under ``MultiWorkerMirroredStrategy`` in its per-replica reduction of
the scalar logs (keras-team/keras#20585, tensorflow/tensorflow#72388). This loop runs the
model's own ``train_step`` / ``test_step`` (so the losses, their scaling by the global batch,
the gradient all-reduce and the metrics are Keras's) under ``strategy.run``, reduces the logs
itself with ``strategy.reduce(MEAN)``, and drives the same callbacks as ``fit`` (the run
state, early stopping, TensorBoard): history, the NaN stop, best weights and resuming work as
in a single-device run.

Every batch must be whole on every replica (an empty per-replica batch would give a NaN
loss): the trainer builds the datasets with ``drop_remainder=True`` and says how many
examples that leaves out.

Example:
>>> history = fit_with_strategy(net, strategy, train_ds, val_ds, epochs=10)  # doctest: +SKIP
"""

from __future__ import annotations

import sys
import time
from typing import List, Optional

import keras
import tensorflow as tf


def _mean_logs(strategy, logs):
    return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in logs.items()}


def _line(logs: dict) -> str:
    return " - ".join(f"{k}: {float(v):.4f}" for k, v in logs.items())


def fit_with_strategy(
    net: keras.Model,
    strategy: tf.distribute.Strategy,
    train_ds: tf.data.Dataset,
    val_ds: Optional[tf.data.Dataset] = None,
    *,
    epochs: int,
    initial_epoch: int = 0,
    callbacks: Optional[List[keras.callbacks.Callback]] = None,
    verbose: int = 2,
    print_progress: bool = True,
    steps_per_epoch: Optional[int] = None,
) -> List[dict]:
    """Train ``net`` (built and compiled under ``strategy.scope()``) like ``net.fit``.

    Args:
        net: a compiled Keras model whose variables live under ``strategy``.
        strategy: the tf.distribute strategy (any; made for MultiWorkerMirroredStrategy).
        train_ds, val_ds: batched datasets of global batches, every batch whole: every worker
            reads the whole input and keeps its part of each global batch (the batches one
            device would see). ``train_ds`` may instead be a function of a
            ``tf.distribute.InputContext`` giving that input pipeline's own shard in per-replica
            batches (`MultimodalData.dataset_fn`: each worker reads only its TFRecord files).
        epochs, initial_epoch: as in ``fit``. callbacks: Keras callbacks, called as ``fit`` does.
        verbose: 1 a progress bar, 2 one line an epoch, 0 silent. print_progress: False on the
            workers other than the chief (their lines would repeat the chief's).
        steps_per_epoch: with a repeated ``train_ds``, the steps an epoch runs (one iterator
            for the whole run): workers whose files hold unequal counts still run the same
            number of steps (a worker that ran dry would hand empty batches to the all-reduce).

    Returns the epoch logs (``loss``, metrics, ``val_*``), one dict an epoch run.

    Example:
    >>> fit_with_strategy(net, strategy, train_ds, epochs=2)  # doctest: +SKIP
    """
    def by_data(ds):
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return strategy.experimental_distribute_dataset(ds.with_options(options))

    if callable(train_ds):
        dist_train = strategy.distribute_datasets_from_function(train_ds)
    else:
        dist_train = by_data(train_ds)
    dist_val = by_data(val_ds) if val_ds is not None else None

    @tf.function
    def train_step(batch):
        return _mean_logs(strategy, strategy.run(net.train_step, args=(batch,)))

    @tf.function
    def test_step(batch):
        return _mean_logs(strategy, strategy.run(net.test_step, args=(batch,)))

    callback_list = keras.callbacks.CallbackList(callbacks or [], model=net, epochs=epochs, verbose=0)
    net.stop_training = False
    history: List[dict] = []
    iterator = None
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        if net.stop_training:
            break
        net.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        started = time.time()
        show = print_progress and verbose
        if show:
            print(f"Epoch {epoch + 1}/{epochs}", flush=True)
        bar = keras.utils.Progbar(None, verbose=1) if show == 1 and sys.stdout.isatty() else None
        logs: dict = {}
        step = 0
        if steps_per_epoch is not None:
            if iterator is None:
                iterator = iter(dist_train)
            batches = (next(iterator) for _ in range(steps_per_epoch))
        else:
            batches = dist_train
        for step, batch in enumerate(batches):
            callback_list.on_train_batch_begin(step)
            logs = {k: float(v) for k, v in train_step(batch).items()}
            callback_list.on_train_batch_end(step, logs)
            if bar is not None:
                bar.update(step + 1, list(logs.items()))
            if net.stop_training:
                break
        if not logs:
            raise RuntimeError("The training dataset gave no whole batch: it holds fewer examples than one global "
                               "batch. Lower the batch size.")
        steps = step + 1
        if dist_val is not None and not net.stop_training:
            net.reset_metrics()
            val_logs: dict = {}
            for batch in dist_val:
                val_logs = {k: float(v) for k, v in test_step(batch).items()}
            logs.update({f"val_{k}": v for k, v in val_logs.items()})
        callback_list.on_epoch_end(epoch, logs)
        history.append(dict(logs))
        if show:
            print(f"{steps}/{steps} - {time.time() - started:.0f}s - {_line(logs)}", flush=True)
    callback_list.on_train_end(history[-1] if history else None)
    return history
