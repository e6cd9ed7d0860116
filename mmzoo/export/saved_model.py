"""The SavedModel for TF Serving: raw inputs in, readable outputs out, preprocessing inside.

Signatures (``saved_model_cli show --dir DIR --all``):

- ``serving_default``: raw inputs, one entry per example: ``image`` string [N] (encoded
  JPEG / PNG / GIF / BMP bytes), ``text`` string [N], ``audio`` string [N] (WAV bytes),
  ``tabular`` float32 [N, D]. The same preprocessing as training (`mmzoo.data`), from the
  saved data spec, runs in the graph. Outputs: see `mmzoo.export.outputs`.
- ``predict_preprocessed``: the model's own inputs (``image`` uint8/float32 [N, H, W, C],
  ``text`` int32 [N, L], ``audio`` float32 [N, S], ``tabular`` float32 [N, D]); same outputs.
- ``preprocess``: raw inputs -> the model's inputs (to debug a client, or check a tokenizer).

Bad raw input fails with ``InvalidArgument`` naming the input and the positions in the batch:
undecodable image bytes, non-WAV (or empty WAV) audio, empty text, non-finite tabular values.
"""

from __future__ import annotations

import contextlib
import io
import os
from typing import List, Optional

import keras
import numpy as np
import tensorflow as tf

from mmzoo.export.examples import raw_batch
from mmzoo.export.formats import Check, CheckContext, ExportFormat, ExportJob, Written, register_format
from mmzoo.export.parity import check_serving_names, compare
from mmzoo.export.source import serving_model
from mmzoo.export.warmup import WARMUP_FILE, protos_source, read_warmup_requests, write_warmup_requests
from mmzoo.modalities import records
from mmzoo.spec import DataSpec

SIGNATURES = ("serving_default", "predict_preprocessed", "preprocess")



def raw_input_specs(spec) -> dict:
    """``{name: tf.TensorSpec}`` of the raw-input signature."""
    return {m.name: m.raw_signature(spec) for m in records(spec)}


def model_input_specs(spec) -> dict:
    """``{name: tf.TensorSpec}`` of the model's own (already preprocessed) inputs."""
    return {m.name: m.input_signature(spec) for m in records(spec)}


def build_serving_functions(model, spec, xla: bool = False) -> dict:
    """The three tf.functions of the SavedModel, traced, plus what they must track.

    ``model`` should be the CPU copy (`mmzoo.export.serving_model`) whose spec is ``spec``:
    the task names the outputs (``model.serving_outputs``).
    """
    if model.spec != spec:
        raise ValueError("build_serving_functions needs a model whose spec is the export's: "
                         "mmzoo.export.serving_model(model, spec=spec).")
    if "text" in spec.modalities and not spec.vocabulary:
        raise ValueError(
            "The data spec has no vocabulary, so the raw-text signature cannot tokenize. "
            "Export a run directory (its data_spec.json has the vocabulary) or pass "
            "spec=data.spec / a (model, spec) pair."
        )
    preprocessor = model.preprocessor  # tracked with the model: its table is saved once

    def run_model(x):
        return model(x, training=False)

    # One traced model function shared by the signatures (its constants, e.g. the log-mel
    # DFT kernel, are stored once). XLA cannot compile string ops or tf.data, so only the
    # model call is jit-compiled.
    model_fn = tf.function(run_model, input_signature=[model_input_specs(spec)],
                           jit_compile=bool(xla), autograph=False)

    def serve_raw(inputs):
        return model.serving_outputs(model_fn(preprocessor.serve(inputs)))

    def serve_preprocessed(inputs):
        return model.serving_outputs(model_fn(dict(inputs)))

    def preprocess(inputs):
        return preprocessor.serve(inputs)

    raw_specs, model_specs = raw_input_specs(spec), model_input_specs(spec)
    functions = {
        "serving_default": tf.function(serve_raw, input_signature=[raw_specs], autograph=False),
        "predict_preprocessed": tf.function(serve_preprocessed, input_signature=[model_specs], autograph=False),
        "preprocess": tf.function(preprocess, input_signature=[raw_specs], autograph=False),
    }
    trackables = [preprocessor.tokenizer.table] if preprocessor.tokenizer is not None else []
    return {"functions": functions, "trackables": trackables}


def write_saved_model(model, spec, path: str, xla: bool = False, source_model_is_copy: bool = False) -> dict:
    """Write the serving SavedModel of ``model`` into ``path`` (which must not exist).

    The model is first rebuilt on the CPU without cuDNN kernels (`serving_model`), unless
    ``source_model_is_copy``. Returns the signature description for the model card.

    Example:
    >>> mmzoo.export.write_saved_model(model, data.spec, "/tmp/sm")  # doctest: +SKIP
    """
    copy = model if source_model_is_copy else serving_model(model, spec=spec)
    built = build_serving_functions(copy, spec, xla=xla)
    return write_archive(path, [copy, *built["trackables"]], built["functions"])


def write_archive(path: str, tracked: list, functions: dict) -> dict:
    """Trace ``functions`` on the CPU and write them, with the ``tracked`` models and resources,
    as a SavedModel into ``path``; returns its signature description."""
    archive = keras.export.ExportArchive()
    for obj in tracked:
        archive.track(obj)
    with tf.device("/CPU:0"):
        for name, fn in functions.items():
            fn.get_concrete_function()
            archive.add_endpoint(name, fn)
    with contextlib.redirect_stdout(io.StringIO()):
        archive.write_out(path, verbose=False)
    return describe_signatures(path)


def describe_signatures(path: str) -> dict:
    """``{signature: {"inputs": {name: {dtype, shape}}, "outputs": {...}}}`` of a SavedModel."""
    loaded = tf.saved_model.load(path)
    out = {}
    for name in sorted(loaded.signatures):
        fn = loaded.signatures[name]
        inputs = fn.structured_input_signature[1]
        outputs = fn.structured_outputs
        out[name] = {
            "inputs": {k: {"dtype": v.dtype.name, "shape": _shape(v.shape)} for k, v in sorted(inputs.items())},
            "outputs": {k: {"dtype": v.dtype.name, "shape": _shape(v.shape)} for k, v in sorted(outputs.items())},
        }
    return out


def _shape(shape) -> Optional[list]:
    return None if shape.rank is None else [(-1 if d is None else int(d)) for d in shape.as_list()]


def directory_size(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total


# ---------------------------------------------------------------------- the format
EXTRA_DIR = "assets.extra"


def write_warmup(job: ExportJob) -> tuple:
    """The warmup requests (one raw example each, ``serving_default``) in the staging folder's
    ``assets.extra``: returns their path and the model card's ``warmup`` section."""
    extra_dir = os.path.join(job.staging, EXTRA_DIR)
    os.makedirs(extra_dir, exist_ok=True)
    n_warm = min(job.warmup_requests, len(job.raw_rows))
    warm_path = os.path.join(extra_dir, WARMUP_FILE)
    write_warmup_requests(warm_path, [raw_batch([r], job.spec) for r in job.raw_rows[:n_warm]], job.name)
    return warm_path, {"file": f"{EXTRA_DIR}/{WARMUP_FILE}", "records": n_warm, "examples_per_record": 1,
                       "protos": protos_source()}


class SavedModelFormat(ExportFormat):
    """The SavedModel for TF Serving, with warmup requests in ``assets.extra``."""

    name = "saved_model"
    servable = True
    card_dir = EXTRA_DIR

    def write(self, job: ExportJob) -> Written:
        job.log("writing the SavedModel")
        signatures = write_saved_model(job.model, job.spec, job.staging, xla=job.xla)
        warm_path, warmup = write_warmup(job)
        return Written(
            artifacts={self.name: job.staging},
            card={self.name: {"path": ".", "bytes": directory_size(job.staging)}},
            signatures=signatures,
            checks={self.name: {"format": self.name, "path": job.staging, "spec": job.spec.to_dict(),
                                "warmup": warm_path}},
            sections={"warmup": warmup},
        )

    def checks(self, key: str, entry: dict, ctx: CheckContext) -> List[Check]:
        spec = DataSpec.from_dict(entry["spec"])
        loaded = tf.saved_model.load(entry["path"])

        def call(signature, batch):
            out = loaded.signatures[signature](**{k: tf.constant(v) for k, v in batch.items()})
            return {k: v.numpy() for k, v in out.items()}

        def merged(outs: List[dict]) -> dict:
            return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}

        def raw_check():
            out = call("serving_default", raw_batch(ctx.raw_rows, spec))
            figures = compare(out, ctx.raw_reference, ctx.plan)
            check_serving_names(out, ctx.plan)
            return figures

        def warmup_check():
            records = read_warmup_requests(entry["warmup"])
            if not records:
                raise ValueError("the warmup file has no records")
            out = merged([call(r["signature_name"] or "serving_default", r["inputs"]) for r in records])
            count = len(next(iter(out.values())))
            return compare(out, {k: v[:count] for k, v in ctx.raw_reference.items()}, ctx.plan)

        def preprocessed_check():
            n = ctx.examples
            out = merged([call("predict_preprocessed", {k: v[s:s + 64] for k, v in ctx.inputs.items()})
                          for s in range(0, n, 64)])
            return compare(out, ctx.reference, ctx.plan, ctx.labels)

        return [
            ("saved_model.serving_default", "exact", len(ctx.raw_rows), raw_check),
            ("saved_model.warmup_requests", "exact", ctx.warmup_rows, warmup_check),
            ("saved_model.predict_preprocessed", "exact", ctx.examples, preprocessed_check),
        ]


register_format(SavedModelFormat())
