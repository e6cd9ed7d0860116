"""TF Serving warmup requests: ``assets.extra/tf_serving_warmup_requests``.

A TFRecord file of ``tensorflow.serving.PredictionLog`` records, each a ``PredictLog`` whose
``PredictRequest`` holds real raw examples for ``serving_default``; TF Serving replays them
when it loads the version, so the first client request does not pay for graph warm-up.

The records are built with the official protos of ``tensorflow-serving-api``
(``pip install tensorflow-serving-api==2.21.*``, the ``serving`` / ``test`` extras). Without that
package an identical wire format is built from the same message definitions (field numbers
of ``prediction_log.proto``, ``predict.proto`` and ``model.proto``) on TensorFlow's own
``TensorProto``; `protos_source()` says which one is in use.
"""

from __future__ import annotations

import functools
from typing import Dict, List, Sequence

import numpy as np
import tensorflow as tf
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2
from tensorflow.core.framework import tensor_pb2

WARMUP_FILE = "tf_serving_warmup_requests"


@functools.lru_cache(maxsize=None)
def _protos():
    """``(PredictionLog, PredictLog, PredictRequest, source)`` message classes."""
    try:
        from tensorflow_serving.apis import predict_pb2, prediction_log_pb2  # optional: tensorflow-serving-api

        return (prediction_log_pb2.PredictionLog, prediction_log_pb2.PredictLog,
                predict_pb2.PredictRequest, "tensorflow-serving-api")
    except ImportError:
        return _fallback_protos() + ("mmzoo fallback (tensorflow-serving-api not installed)",)


def protos_source() -> str:
    """Which PredictionLog definitions are used: the official package or the fallback."""
    return _protos()[3]


def _fallback_protos():
    pool = descriptor_pool.DescriptorPool()

    def add_with_deps(file_descriptor):
        for dep in file_descriptor.dependencies:
            add_with_deps(dep)
        try:
            pool.FindFileByName(file_descriptor.name)
        except KeyError:
            proto = descriptor_pb2.FileDescriptorProto()
            file_descriptor.CopyToProto(proto)
            pool.Add(proto)

    add_with_deps(tensor_pb2.DESCRIPTOR)
    add_with_deps(wrappers_pb2.DESCRIPTOR)

    F = descriptor_pb2.FieldDescriptorProto
    fd = descriptor_pb2.FileDescriptorProto(
        name="mmzoo_serving_fallback.proto", package="tensorflow.serving", syntax="proto3",
        dependency=[tensor_pb2.DESCRIPTOR.name, wrappers_pb2.DESCRIPTOR.name],
    )

    def message(name, fields, nested=()):
        m = fd.message_type.add(name=name)
        for n in nested:
            m.nested_type.add().CopyFrom(n)
        for fname, number, ftype, type_name, label in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = type_name
        return m

    OPT, REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    message("ModelSpec", [
        ("name", 1, F.TYPE_STRING, None, OPT),
        ("version", 2, F.TYPE_MESSAGE, ".google.protobuf.Int64Value", OPT),
        ("signature_name", 3, F.TYPE_STRING, None, OPT),
        ("version_label", 4, F.TYPE_STRING, None, OPT),
    ])
    entry = descriptor_pb2.DescriptorProto(name="InputsEntry")
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=OPT)
    entry.field.add(name="value", number=2, type=F.TYPE_MESSAGE, label=OPT,
                    type_name=".tensorflow.TensorProto")
    entry.options.map_entry = True
    message("PredictRequest", [
        ("model_spec", 1, F.TYPE_MESSAGE, ".tensorflow.serving.ModelSpec", OPT),
        ("inputs", 2, F.TYPE_MESSAGE, ".tensorflow.serving.PredictRequest.InputsEntry", REP),
        ("output_filter", 3, F.TYPE_STRING, None, REP),
    ], nested=[entry])
    out_entry = descriptor_pb2.DescriptorProto()
    out_entry.CopyFrom(entry)
    out_entry.name = "OutputsEntry"
    message("PredictResponse", [
        ("model_spec", 2, F.TYPE_MESSAGE, ".tensorflow.serving.ModelSpec", OPT),
        ("outputs", 1, F.TYPE_MESSAGE, ".tensorflow.serving.PredictResponse.OutputsEntry", REP),
    ], nested=[out_entry])
    message("PredictLog", [
        ("request", 1, F.TYPE_MESSAGE, ".tensorflow.serving.PredictRequest", OPT),
        ("response", 2, F.TYPE_MESSAGE, ".tensorflow.serving.PredictResponse", OPT),
    ])
    message("PredictionLog", [
        ("predict_log", 6, F.TYPE_MESSAGE, ".tensorflow.serving.PredictLog", OPT),
    ])
    pool.Add(fd)
    get = lambda n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.serving.{n}"))  # noqa: E731
    return get("PredictionLog"), get("PredictLog"), get("PredictRequest")


def make_prediction_logs(batches: Sequence[Dict[str, np.ndarray]], model_name: str,
                         signature_name: str = "serving_default") -> list:
    """One ``PredictionLog`` per batch of raw inputs (``{name: array}``)."""
    PredictionLog, PredictLog, PredictRequest, _ = _protos()
    logs = []
    for batch in batches:
        request = PredictRequest()
        request.model_spec.name = model_name
        request.model_spec.signature_name = signature_name
        for key, value in batch.items():
            # Through bytes: the fallback's TensorProto class is not TensorFlow's own.
            request.inputs[key].ParseFromString(tf.make_tensor_proto(value).SerializeToString())
        logs.append(PredictionLog(predict_log=PredictLog(request=request)))
    return logs


def write_warmup_requests(path: str, batches: Sequence[Dict[str, np.ndarray]], model_name: str,
                          signature_name: str = "serving_default") -> int:
    """Write the warmup TFRecord file; returns the number of records.

    Example:
    >>> write_warmup_requests("v/assets.extra/tf_serving_warmup_requests",
    ...                       [raw_batch(rows[:1], spec)], "shapes")  # doctest: +SKIP
    """
    logs = make_prediction_logs(batches, model_name, signature_name)
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return len(logs)


def read_warmup_requests(path: str) -> List[dict]:
    """Parse a warmup file: ``[{"model_name", "signature_name", "inputs": {name: array}}]``."""
    PredictionLog = _protos()[0]
    out = []
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        log = PredictionLog()
        log.ParseFromString(record)
        request = log.predict_log.request
        out.append({
            "model_name": request.model_spec.name,
            "signature_name": request.model_spec.signature_name,
            "inputs": {k: tf.make_ndarray(tensor_pb2.TensorProto.FromString(v.SerializeToString()))
                       for k, v in request.inputs.items()},
        })
    return out
