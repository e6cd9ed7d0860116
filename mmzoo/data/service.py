"""tf.data service: a dispatcher and workers that read and decode data for a training job.

``mmzoo data serve`` starts a dispatcher and N workers in one process (loopback by default);
``mmzoo train --data-service grpc://HOST:PORT`` then sends the training pipeline (reading,
decoding, resizing, tokenising, batching) to them, and the trainer only receives batches.
Workers may also run on other machines: ``mmzoo data serve --dispatcher grpc://HOST:PORT``
starts workers only, registered with that dispatcher.

Processing modes (``processing_mode``):

- ``distributed_epoch``: the service splits each epoch's examples over its workers, so each
  example is read once an epoch in all (the order is the workers' interleaving; not
  reproducible to the batch).
- ``parallel_epochs``: every worker produces a whole epoch of its own; with N workers the
  trainer sees each example N times an epoch, in a random interleaving.

Pipelines with ``from_generator`` or ``py_function`` cannot be sent to a service; mmzoo's
manifest, TFDS and TFRecord pipelines are plain graph ops and can.

Example:
>>> service = DataService(port=5050, workers=2)  # doctest: +SKIP
>>> ds = distribute(data.dataset("train", batch_size=64), service.address)
"""

from __future__ import annotations

import socket
from typing import List, Optional

import tensorflow as tf

MODES = ("distributed_epoch", "parallel_epochs")


def check_service_mode(address: Optional[str], mode: str) -> None:
    """Fail early (before any work) on a service address or mode that cannot be used."""
    if mode not in MODES:
        raise ValueError(f"data_service_mode must be one of {list(MODES)}. Received: {mode!r}")
    if address is not None and not (isinstance(address, str) and address.startswith("grpc://")
                                    and ":" in address[len("grpc://"):]):
        raise ValueError(f"data_service must be a dispatcher address 'grpc://HOST:PORT'. Received: {address!r}")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now (for loopback services and tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class DataService:
    """A tf.data service dispatcher and ``workers`` workers in this process.

    Args:
        port: the dispatcher's port (0: a free one). host: the address the workers announce
            (``127.0.0.1``: loopback only; a machine's address to serve other hosts).
        workers: how many workers to start here.
        dispatcher: an existing dispatcher's ``grpc://HOST:PORT``: start workers only.

    Example:
    >>> with DataService(workers=2) as service:  # doctest: +SKIP
    ...     print(service.address)
    grpc://127.0.0.1:40123
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1", workers: int = 1, dispatcher: Optional[str] = None):
        if workers < 0 or (workers == 0 and dispatcher):
            raise ValueError(f"workers must be at least 1 (0 only when this process runs the dispatcher). "
                             f"Received: {workers}")
        self.dispatcher = None
        if dispatcher is None:
            port = port or free_port(host)
            self.dispatcher = tf.data.experimental.service.DispatchServer(
                tf.data.experimental.service.DispatcherConfig(port=port))
            self.address = self.dispatcher.target
        else:
            check_service_mode(dispatcher, MODES[0])
            self.address = dispatcher
        dispatcher_address = self.address[len("grpc://"):]
        self.workers: List[object] = []
        for _ in range(workers):
            worker_port = free_port(host)
            self.workers.append(tf.data.experimental.service.WorkerServer(
                tf.data.experimental.service.WorkerConfig(
                    dispatcher_address=dispatcher_address, worker_address=f"{host}:{worker_port}",
                    port=worker_port)))

    def join(self) -> None:
        """Block until the servers stop (the ``mmzoo data serve`` process waits here)."""
        if self.dispatcher is not None:
            self.dispatcher.join()
        else:
            for worker in self.workers:
                worker.join()

    def stop(self) -> None:
        for worker in self.workers:
            worker._stop()
        if self.dispatcher is not None:
            self.dispatcher._stop()
        self.workers, self.dispatcher = [], None

    def __enter__(self) -> "DataService":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def distribute(ds: tf.data.Dataset, address: str, mode: str = "distributed_epoch",
               job_name: Optional[str] = None) -> tf.data.Dataset:
    """``ds`` produced by the tf.data service at ``address`` (``grpc://HOST:PORT``).

    ``job_name`` shares one job between consumers (several trainers of one multi-worker run
    each read a part of it); None gives every consumer its own job.

    Example:
    >>> ds = distribute(data.dataset("train", batch_size=64), "grpc://127.0.0.1:5050")  # doctest: +SKIP
    """
    check_service_mode(address, mode)
    return ds.apply(tf.data.experimental.service.distribute(processing_mode=mode, service=address,
                                                            job_name=job_name))
