"""Facts about the machine mmzoo runs on (no TensorFlow import)."""

from __future__ import annotations

import os


def cpu_parallelism() -> int:
    """CPU cores this process may run on: the parallel calls of an input pipeline without
    tf.data's autotuner and the LiteRT interpreter's threads.

    Example:
    >>> mmzoo.host.cpu_parallelism() >= 1
    True
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)
