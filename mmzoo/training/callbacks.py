"""Callbacks that make a run survive a crash and stop cleanly on a NaN loss."""

from __future__ import annotations

import csv
import io
import math
import os
from typing import List, Optional

import keras

from mmzoo.training.run import RunDirectory, read_json, write_atomic


class RunState(keras.callbacks.Callback):
    """Saves the whole training state (weights + optimizer, epoch, history) atomically.

    Saves every ``save_every_batches`` batches and at each epoch end into ``state/``
    (a numbered weights file, then ``state.json`` pointing at it, replaced atomically), so a
    SIGKILL at any moment leaves a loadable state. On resume the interrupted epoch is run
    again from its start with the saved weights. Also writes ``history.csv`` and keeps the
    best weights (by ``monitor``) in ``checkpoints/best.weights.h5``. ``restore_dir``: the
    folder resumed from when it is not the one written (a multi-worker run's other workers
    write to their own folders and resume from the chief's).
    """

    def __init__(self, run_dir: RunDirectory, monitor: str = "val_loss", mode: str = "min",
                 save_every_batches: Optional[int] = 50, restore_dir: Optional[RunDirectory] = None):
        super().__init__()
        self.run_dir = run_dir
        self.restore_dir = restore_dir or run_dir
        self.monitor = monitor
        self.mode = mode
        self.save_every_batches = save_every_batches
        self.history: List[dict] = []
        self.best: Optional[float] = None
        self.best_epoch: Optional[int] = None  # 1-based: the epoch whose weights best.weights.h5 holds
        self.epoch = 0
        self.counter = 0
        self.nan_stop: Optional[str] = None

    # ---------------------------------------------------------------- resume
    def restore(self) -> int:
        """Load the saved state into the model; returns the epoch to start from."""
        state_path = os.path.join(self.restore_dir.state_dir, "state.json")
        if not os.path.exists(state_path):
            return 0
        state = read_json(state_path)
        weights = os.path.join(self.restore_dir.state_dir, state["weights"])
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(weights)
        self.history = state["history"]
        self.best = state.get("best")
        self.best_epoch = state.get("best_epoch")
        self.counter = state.get("counter", 0)
        self.epoch = state["epoch"]
        return self.epoch

    def _save_state(self) -> None:
        if self.nan_stop:
            return
        self.counter += 1
        name = f"state-{self.counter:06d}.weights.h5"
        os.makedirs(self.run_dir.state_dir, exist_ok=True)
        tmp = os.path.join(self.run_dir.state_dir, f".tmp-{name}")
        self.model.save_weights(tmp)
        os.replace(tmp, os.path.join(self.run_dir.state_dir, name))
        write_atomic(
            os.path.join(self.run_dir.state_dir, "state.json"),
            {"weights": name, "epoch": self.epoch, "history": self.history, "best": self.best,
             "best_epoch": self.best_epoch, "counter": self.counter},
        )
        for old in os.listdir(self.run_dir.state_dir):
            if old.startswith("state-") and old != name:
                os.remove(os.path.join(self.run_dir.state_dir, old))

    # ---------------------------------------------------------------- hooks
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.nan_stop = f"the training loss became {float(loss)} at epoch {self.epoch + 1}, batch {batch + 1}"
            self.model.stop_training = True
            return
        if self.save_every_batches and (batch + 1) % self.save_every_batches == 0:
            self._save_state()

    def on_epoch_end(self, epoch, logs=None):
        if self.nan_stop:
            return
        logs = {k: float(v) for k, v in (logs or {}).items()}
        bad = [k for k, v in logs.items() if not math.isfinite(v)]
        if bad:
            self.nan_stop = f"{', '.join(bad)} became NaN/inf at the end of epoch {epoch + 1}"
            self.model.stop_training = True
            return
        self.history.append({"epoch": epoch + 1, **logs})
        write_atomic(self.run_dir.path("history"), history_csv(self.history))
        value = logs.get(self.monitor)
        better = self.best is None or (value < self.best if self.mode == "min" else value > self.best)
        if value is not None and better:
            self.best, self.best_epoch = value, epoch + 1
            os.makedirs(self.run_dir.checkpoint_dir, exist_ok=True)
            tmp = os.path.join(self.run_dir.checkpoint_dir, ".tmp-best.weights.h5")
            self.model.save_weights(tmp)
            os.replace(tmp, os.path.join(self.run_dir.checkpoint_dir, "best.weights.h5"))
        self.epoch = epoch + 1
        self._save_state()


def history_csv(history: List[dict]) -> str:
    keys: List[str] = []
    for row in history:
        keys += [k for k in row if k not in keys]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return out.getvalue()

