"""gRPC client for an mmzoo model in TF Serving (pip install tensorflow-serving-api==2.21.*).

    python export/clients/grpc_client.py --model shapes --image cat.png --text "a red circle"
"""

import argparse

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc


def predict(target: str, model: str, inputs: dict, signature: str = "serving_default", timeout: float = 10.0) -> dict:
    """``inputs``: {name: numpy array with a batch dimension}; returns {output: array}."""
    channel = grpc.insecure_channel(target)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    response = stub.Predict(request, timeout)  # grpc.RpcError INVALID_ARGUMENT names a bad input
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--target", default="localhost:8500")
    p.add_argument("--model", default="shapes")
    p.add_argument("--image")
    p.add_argument("--audio")
    p.add_argument("--text")
    p.add_argument("--tabular", help="comma-separated floats")
    a = p.parse_args()
    inputs = {}
    if a.image:
        inputs["image"] = np.array([open(a.image, "rb").read()], dtype=object)
    if a.audio:
        inputs["audio"] = np.array([open(a.audio, "rb").read()], dtype=object)
    if a.text is not None:
        inputs["text"] = np.array([a.text.encode("utf-8")], dtype=object)
    if a.tabular:
        inputs["tabular"] = np.array([[float(v) for v in a.tabular.split(",")]], np.float32)
    for key, value in predict(a.target, a.model, inputs).items():
        print(key, value)


if __name__ == "__main__":
    main()
