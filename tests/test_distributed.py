"""Scale-out: MirroredStrategy on two logical CPU devices, two workers on loopback (metrics,
kill -9 and resume), and the tf.data service (each example once an epoch; training through it).

Every process a test starts is stopped by it (``finally``), every wait is bounded, and every
address is 127.0.0.1.
"""

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mmzoo.data.service import DataService, distribute, free_port
from mmzoo.training.distributed import Distribution, DistributionError, distribution_for
from mmzoo.training.plan import plan_epochs
from mmzoo.training.trainer import Run

COLORS = ["red", "green", "blue", "yellow"]
# No dropout and no BatchNormalization: a replica's batch statistics and dropout masks are its
# own, so only such a model can match one device to float precision.
EXACT_MODEL = {"text": "bigru", "encoder_options": {"text": {"dropout": 0.0}}, "head_options": {"dropout": 0.0}}
EXACT_TRAIN = dict(epochs=3, shuffle=False, augment="off", optimizer="sgd", learning_rate=0.05, batch_size=64,
                   verbose=2)


def write_colors(path, n_train=256, n_val=64, n_test=64, seed=0, word_share=0.8):
    """A text + tabular manifest: the colour word names the class (``word_share`` of rows)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n_train + n_val + n_test):
        c = i % 4
        split = "train" if i < n_train else ("validation" if i < n_train + n_val else "test")
        word = COLORS[c] if rng.random() < word_share else rng.choice(COLORS)
        tabular = f"{c + rng.gauss(0, 1.5):.3f} {rng.random():.3f}"
        rows.append({"text": f"a {word} thing number {i % 7}", "tabular": tabular, "label": COLORS[c], "split": split})
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def tf_config(ports, index):
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker",
                                                                                          "index": index}})


def start(args, log, env=None):
    return subprocess.Popen([sys.executable, *args], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "MPLBACKEND": "Agg", **(env or {})})


def stop(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        p.wait(timeout=30)


def wait_all(procs, timeout):
    deadline = time.time() + timeout
    for p in procs:
        p.wait(timeout=max(1, deadline - time.time()))
    return [p.returncode for p in procs]


def weights_of(run):
    return np.concatenate([w.ravel() for w in run.model.get_weights()])


# ---------------------------------------------------------------------------------- in-process
def test_distribution_choices_and_errors(monkeypatch):
    import tensorflow as tf

    tf.constant(0)  # TensorFlow runs in this process: a device split must now be refused, not applied
    dist = distribution_for()
    assert (dist.kind, dist.replicas, dist.is_chief, dist.uses_fit) == ("single", 1, True, True)
    described = dist.describe(64, 1e-3)
    assert described["global_batch_size"] == 64 and described["training_loop"] == "keras fit"
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(DistributionError, match="TF_CONFIG, which is not set"):
        distribution_for(distributed="multiworker")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')
    with pytest.raises(DistributionError, match="not a valid cluster description"):
        distribution_for(distributed="multiworker")
    # Vertex AI's form: a chief pool and a worker pool; ranks run chief first
    from mmzoo.training.distributed import _tf_config

    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]},
                                                "task": {"type": "worker", "index": 1}}))
    assert _tf_config() == {"tasks": ["a:1", "b:1", "c:1"], "rank": 2}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"], "ps": ["p:1"]},
                                                "task": {"type": "ps", "index": 0}}))
    with pytest.raises(DistributionError, match="task type 'ps'"):
        distribution_for(distributed="multiworker")
    with pytest.raises(DistributionError, match="distributed must be one of"):
        distribution_for(distributed="ring")
    with pytest.raises(DistributionError, match="not a device name"):
        distribution_for(devices="TPU0")
    with pytest.raises(DistributionError, match=r"split_cpu\(3\) first thing"):
        distribution_for(devices=3)  # (TensorFlow already runs in this process with one CPU device)
    with pytest.raises(DistributionError, match="found no TPU"):
        distribution_for(distributed="tpu")
    # what a TPU run changes, checked on the CPU: static (whole) batches and 32 steps a call
    tpu = Distribution("tpu", tf.distribute.get_strategy(), replicas=8)
    assert tpu.whole_batches and tpu.uses_fit
    assert (tpu.steps_per_execution("auto", 100), tpu.steps_per_execution("auto", 5)) == (32, 5)
    assert (dist.steps_per_execution("auto", 100), dist.whole_batches) == (1, False)
    assert plan_epochs(100, 64, epochs=2, whole_batches=True)["steps_per_epoch"] == 1
    assert plan_epochs(100, 64, epochs=2)["steps_per_epoch"] == 2


def test_training_refuses_a_service_address_it_cannot_use(tmp_path):
    import mmzoo
    from mmzoo.training.run import RunError

    manifest = write_colors(tmp_path / "m.csv")
    with pytest.raises(ValueError, match="grpc://HOST:PORT"):
        mmzoo.train(EXACT_MODEL, manifest, out=str(tmp_path / "r"), data_service="localhost:5000")
    with pytest.raises(ValueError, match="data_service_mode must be one of"):
        mmzoo.train(EXACT_MODEL, manifest, out=str(tmp_path / "r"), data_service="grpc://127.0.0.1:1",
                    data_service_mode="sharded")
    assert not os.path.exists(tmp_path / "r")  # refused before the run folder is made
    with pytest.raises(RunError, match="multiworker' is not supported yet"):
        mmzoo.train(EXACT_MODEL, manifest, out=str(tmp_path / "r"), distributed="multiworker",
                    data_service="grpc://127.0.0.1:1")


def test_the_loop_keeps_fits_contract_in_process(tmp_path):
    """`fit_with_strategy` under the default strategy = Keras fit (weights, epoch logs), and it
    drives the callbacks as fit does: early stopping ends the run, a NaN loss stops it."""
    import keras
    import tensorflow as tf

    import mmzoo
    from mmzoo.training.callbacks import RunState
    from mmzoo.training.loop import fit_with_strategy
    from mmzoo.training.run import RunDirectory

    data = mmzoo.data.from_manifest(write_colors(tmp_path / "m.csv")).with_inputs(["text"])

    def fresh(learning_rate=0.05):
        keras.utils.set_random_seed(0)
        net = mmzoo.build(**EXACT_MODEL, **data.model_kwargs(), seed=0, compile=False)
        net.compile(optimizer=keras.optimizers.SGD(learning_rate), loss=net.default_loss(),
                    metrics=net.default_metrics())
        return net

    train = data.dataset("train", batch_size=64, shuffle=False, drop_remainder=True)
    val = data.dataset("validation", batch_size=64, shuffle=False, drop_remainder=True)
    a, b = fresh(), fresh()
    keras_history = a.fit(train, validation_data=val, epochs=2, verbose=0).history
    history = fit_with_strategy(b, tf.distribute.get_strategy(), train, val, epochs=2, verbose=0)
    np.testing.assert_allclose(np.concatenate([w.ravel() for w in a.get_weights()]),
                               np.concatenate([w.ravel() for w in b.get_weights()]), atol=1e-6)
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        np.testing.assert_allclose([h[key] for h in history], keras_history[key], atol=1e-5)

    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=1, mode="max")  # (max: stops at once)
    assert len(fit_with_strategy(fresh(), tf.distribute.get_strategy(), train, val, epochs=10, verbose=0,
                                 callbacks=[stop])) == 2

    state = RunState(RunDirectory(str(tmp_path / "nan")), save_every_batches=None)
    net = fresh(learning_rate=1e30)  # the weights blow up: the loss turns NaN within the first epoch
    state.set_model(net)
    fit_with_strategy(net, tf.distribute.get_strategy(), train, epochs=3, verbose=0, callbacks=[state])
    assert state.nan_stop and "at epoch 1, batch" in state.nan_stop and state.history == []


# ---------------------------------------------------------------------------------- Mirrored
MIRRORED_SCRIPT = """
import json, sys
import numpy as np
from mmzoo.training.distributed import split_cpu
split_cpu(2)  # first thing: two logical CPU devices stand in for two GPUs
import mmzoo
model, train_kw, manifest, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
one = mmzoo.train(model, manifest, out=out + "/one", **train_kw)
two = mmzoo.train(model, manifest, out=out + "/two", devices=2, **train_kw)
weights = lambda run: np.concatenate([w.ravel() for w in run.model.get_weights()])
print("RESULT " + json.dumps({"max_abs": float(np.abs(weights(one) - weights(two)).max()),
                              "one": one.metrics["history"], "two": two.metrics["history"],
                              "distribution": two.config["distribution"], "test": two.metrics["test"]["accuracy"]}))
"""


@pytest.mark.slow
def test_mirrored_on_two_devices_matches_one_device(tmp_path):
    manifest = write_colors(tmp_path / "m.csv")
    out = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, json.dumps(EXACT_MODEL), json.dumps(EXACT_TRAIN),
                          manifest, str(tmp_path)], capture_output=True, text=True, timeout=400)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert out.returncode == 0 and lines, out.stdout[-3000:] + out.stderr[-3000:]
    result = json.loads(lines[0][len("RESULT "):])
    dist = result["distribution"]
    assert (dist["kind"], dist["replicas"], dist["global_batch_size"], dist["per_replica_batch_size"]) == \
        ("mirrored", 2, 64, 32)
    assert dist["devices"] == ["/cpu:0", "/cpu:1"] and dist["training_loop"] == "keras fit"
    # the same global batch and seed: the same weights to float32 round-off (stated: 1e-5)
    assert result["max_abs"] < 1e-5, result["max_abs"]
    for a, b in zip(result["one"], result["two"]):
        assert abs(a["loss"] - b["loss"]) < 1e-5 and abs(a["val_loss"] - b["val_loss"]) < 1e-5
    assert "Distribution: mirrored over 2 replica(s)" in out.stdout


# ---------------------------------------------------------------------------------- multi-worker
WORKER_SCRIPT = """
import json, sys
import mmzoo
model, train_kw, manifest, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
mmzoo.train(model, manifest, out=out, distributed="multiworker", **train_kw)
"""


@pytest.mark.slow
def test_two_workers_on_loopback_match_one_process(tmp_path):
    import mmzoo

    manifest = write_colors(tmp_path / "m.csv")
    ports = [free_port(), free_port()]
    out = tmp_path / "multi"
    logs = [open(tmp_path / f"w{i}.log", "w") for i in range(2)]
    procs = []
    try:
        for i in range(2):
            procs.append(start(["-c", WORKER_SCRIPT, json.dumps(EXACT_MODEL), json.dumps(EXACT_TRAIN), manifest,
                                str(out)], logs[i], env={"TF_CONFIG": tf_config(ports, i)}))
        # meanwhile the reference: one process, Keras fit, the same global batch and seed
        single = mmzoo.train(EXACT_MODEL, manifest, out=str(tmp_path / "single"), **EXACT_TRAIN)
        codes = wait_all(procs, timeout=300)
    finally:
        stop(procs)
        for f in logs:
            f.close()
    text = [open(tmp_path / f"w{i}.log").read() for i in range(2)]
    assert codes == [0, 0], text[0][-3000:] + text[1][-3000:]
    multi = Run(str(out))
    dist = multi.config["distribution"]
    assert (dist["kind"], dist["workers"], dist["replicas"], dist["per_replica_batch_size"]) == \
        ("multiworker", 2, 2, 32)
    assert dist["training_loop"].startswith("mmzoo.training.loop")
    # tolerance stated: 1e-5 on weights and losses (float32 round-off of the all-reduce)
    assert np.abs(weights_of(single) - weights_of(multi)).max() < 1e-5
    for a, b in zip(single.metrics["history"], multi.metrics["history"]):
        assert a["epoch"] == b["epoch"] and abs(a["loss"] - b["loss"]) < 1e-5
        assert abs(a["val_loss"] - b["val_loss"]) < 1e-5 and a["val_accuracy"] == b["val_accuracy"]
    assert abs(single.metrics["test"]["accuracy"] - multi.metrics["test"]["accuracy"]) < 1e-6
    # the chief wrote the run folder and printed the progress; worker 1 wrote nothing there
    assert multi.dir.is_finished() and os.path.exists(out / "report.md") and os.path.exists(out / "model.keras")
    assert "Epoch 3/3" in text[0] and "Epoch 3/3" not in text[1]
    assert "Worker 1 finished; worker 0 (the chief) writes" in text[1]
    assert len(multi.metrics["history"]) == 3


@pytest.mark.slow
def test_killed_worker_resumes_from_the_last_state(tmp_path):
    """kill -9 of worker 1 mid-run, then both restarted: the run ends with every planned epoch once."""
    manifest = write_colors(tmp_path / "m.csv")
    out = tmp_path / "run"
    epochs = 5
    command = ["-m", "mmzoo", "train", "--model", "mlp_gru_concat", "--data", manifest, "--out", str(out),
               "--distributed", "multiworker", "--epochs", str(epochs), "--batch-size", "32"]
    state = out / "state" / "state.json"
    procs, logs = [], []
    try:
        ports = [free_port(), free_port()]
        for i in range(2):
            logs.append(open(tmp_path / f"first{i}.log", "w"))
            procs.append(start(command, logs[-1], env={"TF_CONFIG": tf_config(ports, i)}))
        deadline = time.time() + 240
        while time.time() < deadline and not (state.exists() and json.loads(state.read_text())["epoch"] >= 1):
            assert all(p.poll() is None for p in procs), open(tmp_path / "first0.log").read()[-3000:]
            time.sleep(0.2)
        assert state.exists(), "no saved state within 240 s"
        epoch_at_kill = json.loads(state.read_text())["epoch"]
        assert epoch_at_kill < epochs
        os.kill(procs[1].pid, signal.SIGKILL)  # a worker dies mid-run
        try:  # the chief cannot go on without it: it fails on its own or is stopped
            procs[0].wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(procs[0].pid, signal.SIGKILL)
        stop(procs)
        assert (out / "status.json").exists() and json.loads((out / "status.json").read_text())["state"] != "finished"
        # the job restarts both workers (new ports, as a rescheduled job may get)
        ports = [free_port(), free_port()]
        procs = []
        for i in range(2):
            logs.append(open(tmp_path / f"second{i}.log", "w"))
            procs.append(start(command, logs[-1], env={"TF_CONFIG": tf_config(ports, i)}))
        codes = wait_all(procs, timeout=300)
    finally:
        stop(procs)
        for f in logs:
            f.close()
    second = open(tmp_path / "second0.log").read()
    assert codes == [0, 0], second[-3000:] + open(tmp_path / "second1.log").read()[-3000:]
    assert f"Resuming {out} at epoch" in second
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(1, epochs + 1))  # no epoch lost, none twice
    metrics = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == list(range(1, epochs + 1))
    assert json.loads((out / "status.json").read_text())["state"] == "finished"


@pytest.mark.slow
def test_two_workers_read_their_own_tfrecord_files(tmp_path):
    """Sharded TFRecords, cache off (data larger than memory): each worker reads its own files;
    3 files over 2 workers hold unequal counts, and the run still ends without an empty batch."""
    import mmzoo

    data = mmzoo.data.from_manifest(write_colors(tmp_path / "m.csv"))
    mmzoo.data.to_tfrecord(data, str(tmp_path / "records"), shards=3)
    out = tmp_path / "run"
    command = ["-m", "mmzoo", "train", "--model", "mlp_gru_concat", "--data", str(tmp_path / "records"), "--out",
               str(out), "--distributed", "multiworker", "--epochs", "3", "--cache", "off"]
    ports = [free_port(), free_port()]
    logs = [open(tmp_path / f"w{i}.log", "w") for i in range(2)]
    procs = []
    try:
        for i in range(2):
            procs.append(start(command, logs[i], env={"TF_CONFIG": tf_config(ports, i)}))
        codes = wait_all(procs, timeout=300)
    finally:
        stop(procs)
        for f in logs:
            f.close()
    assert codes == [0, 0], open(tmp_path / "w0.log").read()[-3000:]
    run = Run(str(out))
    assert run.config["distribution"]["shard_policy"] == "file" and run.config["cache"] is None
    history = run.metrics["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3] and all(np.isfinite(h["loss"]) for h in history)


# ---------------------------------------------------------------------------------- tf.data service
def test_data_service_reads_each_example_once_an_epoch(tmp_path):
    import mmzoo

    rows = [{"text": f"row {i}", "label": "ab"[i % 2], "split": "train"} for i in range(120)]
    rows += [{"text": f"row {i}", "label": "ab"[i % 2], "split": s} for i, s in
             [(0, "validation"), (1, "validation"), (2, "test"), (3, "test")]]
    path = tmp_path / "rows.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    data = mmzoo.data.from_manifest(str(path), seq_len=4)
    ds = data.dataset("train", batch_size=8, shuffle=True, seed=0)
    with DataService(workers=2) as service:
        assert service.address.startswith("grpc://") and len(service.workers) == 2
        for mode, times in (("distributed_epoch", 1), ("parallel_epochs", 2)):
            served = distribute(ds, service.address, mode=mode)
            for _ in range(2):  # two epochs
                seen = {}
                for batch in served:
                    for ids in batch[0]["text"].numpy():
                        seen[tuple(ids)] = seen.get(tuple(ids), 0) + 1
                assert len(seen) == 120 and set(seen.values()) == {times}, (mode, sorted(seen.values())[-5:])


@pytest.mark.slow
def test_training_through_mmzoo_data_serve(tmp_path):
    """`mmzoo data serve` (a process) + `train(data_service=...)`: the same metrics, within tolerance."""
    import mmzoo

    manifest = write_colors(tmp_path / "m.csv", word_share=1.0)
    port = free_port()
    log = open(tmp_path / "serve.log", "w")
    server = start(["-m", "mmzoo", "data", "serve", "--port", str(port), "--workers", "2"], log)
    try:
        deadline = time.time() + 60
        while "tf.data service dispatcher at" not in open(tmp_path / "serve.log").read():
            assert server.poll() is None and time.time() < deadline, open(tmp_path / "serve.log").read()[-2000:]
            time.sleep(0.2)
        kw = dict(epochs=10, augment="off", batch_size=32, verbose=2, seed=0)
        served = mmzoo.train("mlp_gru_concat", manifest, out=str(tmp_path / "served"),
                             data_service=f"grpc://127.0.0.1:{port}", **kw)
    finally:
        stop([server])
        log.close()
    local = mmzoo.train("mlp_gru_concat", manifest, out=str(tmp_path / "local"), **kw)
    assert served.config["data_service"] == {"address": f"grpc://127.0.0.1:{port}",
                                             "processing_mode": "distributed_epoch"}
    # the service interleaves its two workers' batches, so the order differs: tolerance 0.1
    a, b = served.metrics["test"]["accuracy"], local.metrics["test"]["accuracy"]
    assert abs(a - b) <= 0.1, (a, b)
    assert a > 0.5 and b > 0.5  # both learned (chance: 0.25)
    assert len(served.metrics["history"]) == len(local.metrics["history"])
