"""Facts about the machine mmzoo runs on, and the native log lines it prints there (no
TensorFlow import)."""

from __future__ import annotations

import os
import re
import sys
from typing import Optional


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


# ---------------------------------------------------------------- TensorFlow's stderr chatter
# A C++ log line: absl's "I0000 00:00:1796124217.241035   15526 port.cc:153] ..." or the older
# "2025-08-01 13:52:25.403654: E tensorflow/core/util/util.cc:131] ...".
_LOG = rb"(?:[IWEF]\d{4} [\d:.]+ +\d+ |\d{4}-\d\d-\d\d [\d:.]+: [IWEF] (?:\S+/)?)"

#: Lines TensorFlow 2.21 prints on every CPU-only run that say nothing a user can act on, each
#: matched in full by its source file and text, so that any other line, every other ERROR
#: included, still shows.
QUIET_LINES = (
    # Each of TensorFlow's shared objects with a copy of absl (libtensorflow_framework, the
    # profiler plugin) logs from its static initializers before logging is set up: absl says so
    # once per copy, and these lines ignore TF_CPP_MIN_LOG_LEVEL, which is read later.
    rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    _LOG + rb"port\.cc:\d+\] oneDNN custom operations are on\. ",
    _LOG + rb"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine, GPU will not be used\.",
    # ERROR-level, yet no error: tf.data's make_deterministic rewrite (applied whenever op
    # determinism is on, as in mmzoo.train) turns a ParallelMapDatasetV2 whose function holds a
    # stateful op (a vocabulary lookup) into a MapDataset and keeps the V2 op's
    # use_unbounded_threadpool attribute, which MapDataset's op does not have (ignored).
    _LOG + rb"node_def_util\.cc:\d+\] NodeDef mentions attribute use_unbounded_threadpool which is not in "
    rb"the op definition: Op<name=MapDataset;",
    # ERROR-level, logged once: oneDNN has no bool kernels, and a bool op (a Keras mask) runs on
    # Eigen, as it would without oneDNN; the message claims AVX-512 would help (it does not).
    _LOG + rb"util\.cc:\d+\] oneDNN supports DT_BOOL only on platforms with AVX-512\. ",
)
#: Dropped only after TensorFlow said there is no CUDA driver (then it is that fact again);
#: on a machine with a GPU, a failed cuInit is a real error and shows.
NO_DRIVER = QUIET_LINES[2]
AFTER_NO_DRIVER = _LOG + rb"cuda_platform\.cc:\d+\] failed call to cuInit: "


class LineFilter:
    """Drops `QUIET_LINES` from a byte stream and passes everything else on at once.

    A partial line is held back only while it may become a TensorFlow log line; anything
    else (a progress bar redrawn with ``\\r``) goes out unchanged.

    Example:
    >>> LineFilter().feed(b"WARNING: All log messages before absl::InitializeLog() is called are "
    ...                   b"written to STDERR\\nTraceback (most recent call last):\\n")
    b'Traceback (most recent call last):\\n'
    """

    def __init__(self):
        self._quiet = re.compile(b"|".join(QUIET_LINES))
        self._no_driver = re.compile(NO_DRIVER)
        self._after_no_driver = re.compile(AFTER_NO_DRIVER)
        self._held = b""
        self.no_driver_seen = False

    def _keep(self, line: bytes) -> bool:
        if self._no_driver.match(line):
            self.no_driver_seen = True
        if self._quiet.match(line):
            return False
        return not (self.no_driver_seen and self._after_no_driver.match(line))

    def feed(self, chunk: bytes) -> bytes:
        """The part of the stream so far that can be written out."""
        *lines, self._held = (self._held + chunk).split(b"\n")
        out = b"".join(line + b"\n" for line in lines if self._keep(line))
        if self._held and not (len(self._held) < 4096 and re.match(rb"[IWEF\d]", self._held)):
            out, self._held = out + self._held, b""
        return out

    def close(self) -> bytes:
        """What is left at the end of the stream."""
        held, self._held = self._held, b""
        return held if held and self._keep(held) else b""


def _pump(src: int, dst: int) -> None:
    """Copy ``src`` to ``dst`` through a `LineFilter` until ``src`` ends; if ``dst`` goes away,
    keep reading (and dropping) so that the writer never blocks or sees a broken pipe."""
    line_filter, alive = LineFilter(), True
    while True:
        chunk = os.read(src, 65536)
        out = line_filter.feed(chunk) if chunk else line_filter.close()
        while alive and out:
            try:
                out = out[os.write(dst, out):]
            except OSError:
                alive = False
        if not chunk:
            return


_filter_process = None


def quiet_native_stderr() -> bool:
    """Route this process's file descriptor 2 through a small filter process that drops
    `QUIET_LINES` (TensorFlow's native start-up chatter) and passes every other line on.

    Native code writes to the descriptor directly, so a Python-level filter cannot catch these
    lines. Everything else reaches the real stderr unchanged and in order, also when the
    process crashes (the filter empties the pipe before it ends), and child processes inherit
    the filter. For the ``mmzoo`` program only: call it before TensorFlow is imported. Returns
    whether the filter is on (not on Windows, nor without a Python executable).

    Example:
    >>> mmzoo.host.quiet_native_stderr()  # doctest: +SKIP
    True
    """
    global _filter_process
    if _filter_process is not None:
        return True
    if os.name != "posix" or not sys.executable:
        return False
    import atexit
    import subprocess  # here: only the commands that load TensorFlow pay for it

    try:
        sys.stderr.flush()
    except (AttributeError, ValueError, OSError):
        pass
    real = os.dup(2)
    try:
        # Its own session: a Ctrl-C meant for mmzoo does not end the filter first.
        process = subprocess.Popen([sys.executable, "-I", "-S", os.path.abspath(__file__)], stdin=subprocess.PIPE,
                                   stdout=real, stderr=real, start_new_session=True)
    except OSError:
        os.close(real)
        return False
    os.dup2(process.stdin.fileno(), 2)
    process.stdin.close()
    _filter_process = process
    atexit.register(_restore_stderr, real)
    return True


def _restore_stderr(real: int, timeout: Optional[float] = 10.0) -> None:
    """At exit: give fd 2 back to the real stderr and wait until the filter has written all."""
    global _filter_process
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError, OSError):
        pass
    os.dup2(real, 2)
    os.close(real)
    process, _filter_process = _filter_process, None
    if process is not None:
        import subprocess

        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:  # a child process still holds the pipe: it ends with it
            pass


if __name__ == "__main__":  # the filter process of `quiet_native_stderr`
    _pump(0, 1)
