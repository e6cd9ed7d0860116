"""tf.data options shared by every mmzoo pipeline (and the in-graph checks of serving)."""

from __future__ import annotations

import tensorflow as tf


def pipeline_options(*, autotune: bool = False, deterministic: bool = True) -> tf.data.Options:
    """``tf.data.Options`` for mmzoo pipelines: the tf.data autotuner off by default.

    With the autotuner on, tearing down an iterator (Keras does it after every epoch, for the
    training and the validation data) can wait for the autotuner's current sleep, which doubles
    from 10 ms up to 60 s: on TF 2.21 a 1.5 s epoch ended up to 1 s late, at random
    (`benchmarks/bench_training.py --autotune` shows it). Without it, parallel stages use one
    call per core, which is what the autotuner converges to for decoding on a CPU host.

    Example:
    >>> ds = tf.data.Dataset.range(8).with_options(pipeline_options())  # doctest: +SKIP
    """
    options = tf.data.Options()
    options.autotune.enabled = autotune
    options.deterministic = deterministic
    return options
