"""How long a run trains: epochs planned from a step budget, and early stopping's patience."""

from __future__ import annotations

import math
from typing import Optional, Union

DEFAULT_STEP_BUDGET = 2000  # optimizer steps; about 4 min of the default preset on 2 CPU cores
MIN_EPOCHS, MAX_EPOCHS = 10, 300


def plan_epochs(
    train_examples: int,
    batch_size: int,
    *,
    epochs: Optional[int] = None,
    max_steps: int = DEFAULT_STEP_BUDGET,
    patience: Union[int, str, None] = "auto",
    has_validation: bool = True,
    whole_batches: bool = False,
) -> dict:
    """The run's plan: ``epochs``, ``steps_per_epoch``, ``patience`` and a sentence ``why``.

    Without ``epochs``, a run gets ``max_steps`` optimizer steps, so 300 rows and 30,000 rows
    both train long enough (clamped to 10..300 epochs). ``patience="auto"`` is a tenth of the
    planned epochs (5 to 20): on small data one epoch is a few steps and the validation loss
    is noisy. Without a validation split early stopping watches nothing useful and is off.
    ``whole_batches`` counts only whole batches (a multi-worker run drops the last partial one).

    Example:
    >>> plan_epochs(900, 64)["epochs"], plan_epochs(900, 64)["patience"]
    (134, 13)
    """
    if train_examples < 1:
        raise ValueError(f"No training examples (train_examples={train_examples}).")
    if whole_batches and train_examples < batch_size:
        raise ValueError(f"{train_examples} training examples make no whole batch of {batch_size}.")
    steps_per_epoch = (train_examples // batch_size) if whole_batches else math.ceil(train_examples / batch_size)
    if epochs is None:
        planned = min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(max_steps / steps_per_epoch)))
        how = (f"{planned} epochs of {steps_per_epoch} steps (a budget of {max_steps} steps over "
               f"{train_examples} training examples, batch {batch_size}, kept within {MIN_EPOCHS}-{MAX_EPOCHS})")
    else:
        planned = int(epochs)
        how = f"{planned} epoch{'s' if planned != 1 else ''} of {steps_per_epoch} steps (epochs given)"
    if patience == "auto":
        patience = min(20, max(5, planned // 10)) if planned > 5 else None
    elif patience is not None and (not isinstance(patience, int) or patience < 1):
        raise ValueError(f"patience must be a positive integer, 'auto' or None. Received: {patience!r}")
    # no stopping in the first half of the schedule: small data often sits at chance for a while
    # before it learns, and while the learning rate is high its validation loss jumps about (a run
    # stopped at epoch 26 of 63 by six noisy epochs, at 0.85 instead of 0.98)
    start = planned // 2
    if not has_validation:
        patience = None
        stop = ("no early stopping: the data has no validation split, so the epoch with the lowest "
                "training loss is kept")
    elif patience:
        stop = (f"early stopping when the validation loss has not improved for {patience} epochs, counted from "
                f"epoch {start + 1} (the first half of the schedule, a slow start and a noisy validation loss "
                f"are no reason to stop); the best epoch's weights are kept")
    else:
        stop = "every planned epoch runs; the weights of the epoch with the lowest validation loss are kept"
    return {"epochs": planned, "steps_per_epoch": steps_per_epoch, "patience": patience, "start_from_epoch": start,
            "max_steps": max_steps if epochs is None else None, "why": f"{how}; {stop}."}
