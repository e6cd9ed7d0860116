"""Run directories: what a training run writes, atomically, and the checks made up front."""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from importlib import metadata
from typing import Any, Optional

RUN_FILES = {
    "config": "config.json",
    "spec": "data_spec.json",
    "model": "model.keras",
    "history": "history.csv",
    "metrics": "metrics.json",
    "report": "report.md",
    "status": "status.json",
}
MIN_FREE_BYTES = 64 * 1024 * 1024


class RunError(RuntimeError):
    """A run cannot start or go on; the message says why and what to do."""


def write_atomic(path: str, data: Any, mode: str = "w") -> str:
    """Write ``data`` (str, bytes or a JSON-able object) to ``path`` via a temp file + rename."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        if isinstance(data, (bytes, bytearray)):
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data if isinstance(data, str) else json.dumps(data, indent=2, ensure_ascii=False, default=str))
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def package_versions() -> dict:
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("mmzoo", "tensorflow", "keras", "numpy", "tensorflow-datasets"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


class RunDirectory:
    """Paths and state of one run folder (``runs/exp1``).

    Example:
    >>> run_dir = RunDirectory("runs/exp1")  # doctest: +SKIP
    >>> run_dir.path("model")
    'runs/exp1/model.keras'
    """

    def __init__(self, root: str):
        self.root = str(root)

    def path(self, key: str) -> str:
        return os.path.join(self.root, RUN_FILES.get(key, key))

    @property
    def state_dir(self) -> str:
        return os.path.join(self.root, "state")

    @property
    def checkpoint_dir(self) -> str:
        return os.path.join(self.root, "checkpoints")

    @property
    def plots_dir(self) -> str:
        return os.path.join(self.root, "plots")

    @property
    def logs_dir(self) -> str:
        return os.path.join(self.root, "logs")

    def status(self) -> Optional[dict]:
        path = self.path("status")
        return read_json(path) if os.path.exists(path) else None

    def is_finished(self) -> bool:
        status = self.status()
        return bool(status and status.get("state") == "finished")

    def set_status(self, state: str, **info: Any) -> None:
        write_atomic(self.path("status"), {"state": state, **info})

    def prepare(self, overwrite: bool) -> bool:
        """Check the folder before any work; returns True when an unfinished run can resume.

        Fails at once (not after an hour) when the folder is not writable, the disk is
        nearly full, or it holds a finished run and ``overwrite`` is False.
        """
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise RunError(f"--out {self.root!r} exists and is not a folder.")
        if overwrite and os.path.isdir(self.root):
            shutil.rmtree(self.root)
        if self.is_finished():
            raise RunError(
                f"{self.root!r} already holds a finished run. Pass overwrite=True "
                "(--overwrite) to replace it, or choose another --out."
            )
        try:
            os.makedirs(self.root, exist_ok=True)
            probe = write_atomic(os.path.join(self.root, ".write-probe"), "ok")
            os.remove(probe)
        except OSError as e:
            raise RunError(f"Cannot write to the run folder {self.root!r}: {e.strerror or e}.") from e
        free = shutil.disk_usage(self.root).free
        if free < MIN_FREE_BYTES:
            raise RunError(
                f"Only {free / 2**20:.0f} MiB free where {self.root!r} lives; a run needs at "
                f"least {MIN_FREE_BYTES / 2**20:.0f} MiB for checkpoints and the model."
            )
        return os.path.exists(os.path.join(self.state_dir, "state.json"))
