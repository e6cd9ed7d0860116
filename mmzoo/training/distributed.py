"""Which tf.distribute strategy a run trains under, and each process's role in it.

`mmzoo.train(devices=..., distributed=...)` (``mmzoo train --devices / --distributed``):

- one device (the default on a machine with at most one GPU);
- ``MirroredStrategy`` over several devices of one host, trained with Keras ``fit``: every
  GPU by default when there are several, or ``devices=["GPU:0", "GPU:1"]`` / ``devices=2``.
  On a host without GPUs ``devices=N`` splits the CPU into N logical devices: no faster, but
  the same code path as N GPUs (how the tests check it);
- ``MultiWorkerMirroredStrategy`` over several machines (``distributed="multiworker"``,
  the cluster from ``TF_CONFIG``), trained with mmzoo's own loop (`mmzoo.training.loop`):
  Keras 3's ``fit`` fails under it (keras-team/keras#20585);
- ``TPUStrategy`` (``distributed="tpu"``).

The batch size is the global batch (split across replicas), the learning rate is used as
given for that global batch (no implicit scaling), and the seed is the same on every replica;
all three are recorded in config.json's ``distribution``.

Example:
>>> dist = distribution_for(devices=None, distributed=None)  # doctest: +SKIP
>>> dist.kind, dist.replicas
('single', 1)
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import List, Optional, Sequence, Union

KINDS = ("single", "mirrored", "multiworker", "tpu")


class DistributionError(ValueError):
    """A device list, strategy name or TF_CONFIG that cannot be used, with what to change."""


@dataclasses.dataclass
class Distribution:
    """The strategy of a run and this process's place in it."""

    kind: str
    strategy: object
    replicas: int = 1
    workers: int = 1
    task_index: int = 0  # this process's rank: 0 is the chief
    devices: List[str] = dataclasses.field(default_factory=list)

    @property
    def is_chief(self) -> bool:
        """True for the process that writes the run folder, checkpoints and the export."""
        return self.task_index == 0

    @property
    def uses_fit(self) -> bool:
        """Keras ``fit`` works under one device, Mirrored and TPU; multi-worker needs mmzoo's loop."""
        return self.kind != "multiworker"

    @property
    def whole_batches(self) -> bool:
        """Every batch whole (the last partial one dropped): mmzoo's loop needs it on every replica,
        and a TPU compiles for one static batch shape."""
        return self.kind in ("multiworker", "tpu")

    def steps_per_execution(self, asked: Union[int, str], steps_per_epoch: int) -> int:
        """Steps per call into the compiled train function: ``"auto"`` is 32 on a TPU (each call
        is a round trip from the host), bounded by an epoch's steps, and 1 elsewhere."""
        if asked == "auto":
            return max(1, min(32, steps_per_epoch)) if self.kind == "tpu" else 1
        if not isinstance(asked, int) or asked < 1:
            raise DistributionError(f"steps_per_execution must be a positive integer or 'auto'. Received: {asked!r}")
        return asked

    def scope(self):
        return self.strategy.scope()

    def shard_policy(self, data=None) -> Optional[str]:
        """How a multi-worker run splits its input: ``"file"`` for sharded TFRecords with at least
        a file a worker (each reads only its files), else ``"data"`` (each keeps its part of every
        global batch: the batches of a one-device run)."""
        if self.kind != "multiworker":
            return None
        files = data.files("train") if hasattr(data, "files") else []
        return "file" if len(files) >= self.workers else "data"

    def describe(self, batch_size: int, learning_rate: float, data=None) -> dict:
        """What config.json records about the distribution."""
        return {
            "shard_policy": self.shard_policy(data),
            "kind": self.kind,
            "strategy": type(self.strategy).__name__,
            "replicas": self.replicas,
            "workers": self.workers,
            "devices": self.devices,
            "global_batch_size": batch_size,
            "per_replica_batch_size": batch_size // self.replicas,
            "learning_rate": learning_rate,
            "learning_rate_scaling": "none: the learning rate is the one given, for the global batch",
            "seed": "the run's seed on every replica (same initial weights, same shuffling)",
            "training_loop": "keras fit" if self.uses_fit else "mmzoo.training.loop (custom, strategy.run)",
            "whole_batches": self.whole_batches,
        }


def _tf_config() -> Optional[dict]:
    """The cluster from ``TF_CONFIG``: its tasks in order (a ``chief`` first where there is one, as
    Vertex AI writes it) and this task's rank among them (rank 0 is the chief)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        config = json.loads(raw)
        cluster, task = config["cluster"], config["task"]
        chiefs, workers = list(cluster.get("chief", [])), list(cluster.get("worker", []))
        if not workers and not chiefs:
            raise KeyError("cluster.worker")
        kind, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as e:
        raise DistributionError(
            f"TF_CONFIG is not a valid cluster description ({e}): expected "
            '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}'
        ) from None
    if kind not in ("worker", "chief"):
        raise DistributionError(f"TF_CONFIG task type {kind!r}: mmzoo's multi-worker runs use 'chief' and 'worker' "
                                "tasks only (the chief, or worker 0 where there is none, writes the run folder).")
    rank = index if kind == "chief" else len(chiefs) + index
    return {"tasks": chiefs + workers, "rank": rank}


def split_cpu(count: int) -> None:
    """Split this host's CPU into ``count`` logical devices (call it before any TensorFlow work).

    A CPU-only stand-in for ``count`` GPUs: `distribution_for(devices=count)` then mirrors over
    them. Calling it again with the same count is a no-op.

    Example:
    >>> split_cpu(2)  # doctest: +SKIP
    """
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        logical = len(tf.config.list_logical_devices("CPU"))
        if logical != count:
            raise DistributionError(
                f"devices={count} on a host without GPUs splits the CPU into {count} logical devices, which must "
                f"happen before TensorFlow starts; it already runs with {logical}. Call "
                f"mmzoo.training.distributed.split_cpu({count}) first thing in the process (the `mmzoo train "
                "--devices` command does)."
            ) from None


def _device_list(devices: Union[int, str, Sequence[str], None]) -> Optional[List[str]]:
    """Device names for MirroredStrategy, or None for the default choice."""
    import tensorflow as tf

    if devices is None or devices == "auto":
        return None
    if isinstance(devices, str):
        devices = int(devices) if devices.strip().isdigit() else [d.strip() for d in devices.split(",") if d.strip()]
    gpus = tf.config.list_physical_devices("GPU")
    if isinstance(devices, int):
        if devices < 1:
            raise DistributionError(f"devices must be at least 1. Received: {devices}")
        if gpus:
            if devices > len(gpus):
                raise DistributionError(f"devices={devices}, but this host has {len(gpus)} GPU(s).")
            return [f"/gpu:{i}" for i in range(devices)]
        if devices > 1:
            split_cpu(devices)
        return [f"/cpu:{i}" for i in range(devices)]
    names = []
    for d in devices:
        kind, _, index = d.lower().lstrip("/").replace("device:", "").partition(":")
        if kind not in ("gpu", "cpu") or not index.isdigit():
            raise DistributionError(f"Device {d!r} is not a device name; expected e.g. 'GPU:0' or 'CPU:0'.")
        names.append(f"/{kind}:{index}")
    cpu_indices = [int(n.split(":")[1]) for n in names if n.startswith("/cpu")]
    if cpu_indices and max(cpu_indices) > 0:
        split_cpu(max(cpu_indices) + 1)
    known = {f"/{d.device_type.lower()}:{i}" for t in ("CPU", "GPU")
             for i, d in enumerate(tf.config.list_logical_devices(t))}
    missing = [n for n in names if n not in known]
    if missing:
        raise DistributionError(f"No such device(s): {missing}. This host has: {sorted(known)}.")
    return names


def distribution_for(
    devices: Union[int, str, Sequence[str], None] = None,
    distributed: Optional[str] = None,
    tpu: Optional[str] = None,
) -> Distribution:
    """The run's `Distribution`; create it before any other TensorFlow work.

    Args:
        devices: None (every GPU when there are several, else one device), a count, or names
            such as ``["GPU:0", "GPU:1"]`` / ``"GPU:0,GPU:1"``.
        distributed: None, ``"mirrored"``, ``"multiworker"`` (cluster from ``TF_CONFIG``) or
            ``"tpu"``.
        tpu: the TPU address for ``"tpu"`` ('' or None: the local / Colab TPU).

    Example:
    >>> dist = distribution_for(devices=2)  # doctest: +SKIP
    """
    import tensorflow as tf

    if distributed is not None and distributed not in KINDS:
        raise DistributionError(
            f"distributed must be one of 'mirrored', 'multiworker', 'tpu' (or None). Received: {distributed!r}")
    if distributed == "multiworker":
        cluster = _tf_config()
        if cluster is None:
            raise DistributionError(
                "distributed='multiworker' reads the cluster from TF_CONFIG, which is not set. Set it on every "
                'worker, e.g. TF_CONFIG=\'{"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]}, '
                '"task": {"type": "worker", "index": 0}}\' (the launch recipes in launch/ do).')
        if devices not in (None, "auto"):
            raise DistributionError("devices is not used with distributed='multiworker': each worker trains on "
                                    "all of its local GPUs (or its CPU).")
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        return Distribution("multiworker", strategy, replicas=strategy.num_replicas_in_sync,
                            workers=len(cluster["tasks"]), task_index=cluster["rank"], devices=cluster["tasks"])
    if distributed == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as e:
            raise DistributionError(
                f"distributed='tpu' found no TPU ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). "
                "On Colab pick Runtime > Change runtime type > TPU; on Cloud TPU VMs pass the TPU name.") from None
        strategy = tf.distribute.TPUStrategy(resolver)
        return Distribution("tpu", strategy, replicas=strategy.num_replicas_in_sync)
    names = _device_list(devices)
    if names is None:
        gpus = tf.config.list_physical_devices("GPU")
        if len(gpus) > 1 or distributed == "mirrored":
            strategy = tf.distribute.MirroredStrategy()
            return Distribution("mirrored", strategy, replicas=strategy.num_replicas_in_sync,
                                devices=list(strategy.extended.worker_devices))
        return Distribution("single", tf.distribute.get_strategy(), devices=[])
    if len(names) == 1 and distributed != "mirrored":
        return Distribution("single", tf.distribute.OneDeviceStrategy(names[0]), devices=names)
    strategy = tf.distribute.MirroredStrategy(names)
    return Distribution("mirrored", strategy, replicas=len(names), devices=names)
