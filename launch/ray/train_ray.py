"""mmzoo on a Ray cluster: Ray Train's ``TensorflowTrainer`` starts the workers and writes each
one's ``TF_CONFIG``; every worker runs `mmzoo.train(..., distributed="multiworker")`.

    pip install -e ".[ray]"
    python launch/ray/train_ray.py --data data/train.csv --out /shared/runs/exp1 --workers 2

On a cluster, start Ray first (``ray start --head`` on one machine, ``ray start --address=HEAD:6379``
on the others) and point ``--out`` and ``--data`` at storage every machine sees. Without a cluster
Ray starts a local one (how this script was tried here: two workers on one machine).

Ray's own TensorflowTrainer example calls Keras ``fit`` under MultiWorkerMirroredStrategy, which
Keras 3 breaks (ray-project/ray#47464); mmzoo's multi-worker loop does not use ``fit``.
"""

from __future__ import annotations

import argparse
import os
import sys


def train_loop_per_worker(config: dict) -> None:
    import mmzoo

    mmzoo.train(config["model"], config["data"], out=config["out"], distributed="multiworker",
                epochs=config["epochs"], batch_size=config["batch_size"], verbose=2)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="preset (default: the one that fits the data)")
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--cpus-per-worker", type=float, default=1)
    args = parser.parse_args(argv)

    from ray.train import RunConfig, ScalingConfig
    from ray.train.tensorflow import TensorflowTrainer

    trainer = TensorflowTrainer(
        train_loop_per_worker,
        train_loop_config={"model": args.model, "data": os.path.abspath(args.data), "out": os.path.abspath(args.out),
                           "epochs": args.epochs, "batch_size": args.batch_size},
        scaling_config=ScalingConfig(num_workers=args.workers, resources_per_worker={"CPU": args.cpus_per_worker}),
        run_config=RunConfig(storage_path=os.path.abspath(os.path.join(args.out, os.pardir, ".ray"))),
    )
    result = trainer.fit()
    print(f"Ray run finished (error: {result.error}); mmzoo's run folder: {args.out}")
    return 0 if result.error is None else 1


if __name__ == "__main__":
    sys.exit(main())
