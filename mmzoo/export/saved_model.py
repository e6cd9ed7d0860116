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
from typing import Optional

from mmzoo.export.outputs import output_plan, serving_outputs

SIGNATURES = ("serving_default", "predict_preprocessed", "preprocess")

IMAGE_REASON = "not a decodable image (JPEG, PNG, GIF, BMP, WebP bytes expected)"
AUDIO_REASON = "not a decodable WAV file (16-bit PCM with at least one sample expected)"


def raw_input_specs(spec) -> dict:
    """``{name: tf.TensorSpec}`` of the raw-input signature."""
    import tensorflow as tf

    specs = {}
    for m in spec.modalities:
        if m == "tabular":
            specs[m] = tf.TensorSpec([None, spec.tabular_dim], tf.float32, name=m)
        else:
            specs[m] = tf.TensorSpec([None], tf.string, name=m)
    return specs


def model_input_specs(spec) -> dict:
    """``{name: tf.TensorSpec}`` of the model's own (already preprocessed) inputs."""
    import tensorflow as tf

    shapes, dtypes = spec.input_shapes(), spec.input_dtypes()
    return {m: tf.TensorSpec([None] + list(shapes[m]), dtypes[m], name=m) for m in spec.modalities}


# Examples decoded at once in the whole-batch pass (the serving host's inter-op threads run
# them; more in flight only costs memory).
DECODE_PARALLEL_ITERATIONS = 8


def _checked_map(name: str, data, fn, shape, dtype, reason: str, positions=None):
    """Map ``fn`` over a batch of encoded examples; an example that fails to decode raises
    InvalidArgument naming the input and its position instead of an anonymous op error.
    ``positions`` (int64 [n]): the batch position of each row of ``data`` when it is a subset.

    The whole batch is decoded in one parallel ``map_fn`` inside a one-element tf.data
    pipeline whose ``ignore_errors`` turns a failure into "no element"; only then is the batch
    decoded again one example at a time, to find the positions that fail.
    """
    import tensorflow as tf

    from mmzoo.data.pipeline import pipeline_options

    signature = tf.TensorSpec(shape, dtype)

    def decode_all(batch):
        values = tf.map_fn(fn, batch, fn_output_signature=signature,
                           parallel_iterations=DECODE_PARALLEL_ITERATIONS)
        return tf.constant(True), values

    whole = tf.data.Dataset.from_tensors(data).map(decode_all).ignore_errors()
    failed = tf.data.Dataset.from_tensors((tf.constant(False), tf.zeros([0] + list(shape), dtype)))
    # Without the autotuner no autotuning thread is started (and waited for) on every request.
    ok, values = whole.concatenate(failed).take(1).with_options(pipeline_options()).get_single_element()
    return tf.cond(ok, lambda: tf.identity(values, name=name),
                   lambda: _locate_failures(name, data, fn, shape, dtype, reason, positions))


def _locate_failures(name: str, data, fn, shape, dtype, reason: str, positions=None):
    """`_checked_map`'s second pass: one example at a time, failures skipped and reported."""
    import tensorflow as tf

    from mmzoo.data.pipeline import pipeline_options

    n = tf.shape(data, out_type=tf.int64)[0]
    ds = tf.data.Dataset.from_tensor_slices((tf.range(n), data))
    ds = ds.map(lambda i, b: (i, fn(b))).ignore_errors()
    # A sentinel keeps the batch non-empty when every example failed.
    sentinel = tf.data.Dataset.from_tensors((tf.constant(-1, tf.int64), tf.zeros(shape, dtype)))
    ids, values = ds.concatenate(sentinel).batch(n + 1).with_options(pipeline_options()).get_single_element()
    ids, values = ids[:-1], values[:-1]
    present = tf.scatter_nd(tf.expand_dims(ids, 1), tf.ones_like(ids), tf.expand_dims(n, 0))
    bad = tf.where(tf.equal(present, 0))[:, 0]
    if positions is not None:
        bad = tf.gather(positions, bad)
    return _reject_positions(name, values, bad, reason)


def _reject_positions(name: str, value, bad, reason: str):
    """``value`` once ``bad`` (batch positions) is empty; else InvalidArgument naming the input."""
    import tensorflow as tf

    check = tf.debugging.Assert(
        tf.equal(tf.size(bad), 0),
        [f"Invalid input <{name}>: {reason}. Positions in the batch:", bad],
        summarize=32,
        name=f"check_{name}",
    )
    with tf.control_dependencies([check]):
        return tf.identity(value, name=name)


class RawPreprocessor:
    """Raw inputs -> model inputs with TF ops (graph-safe), as in training.

    Uses `mmzoo.data.preprocess_image_bytes`, `mmzoo.data.preprocess_wav_bytes` and the
    `mmzoo.data.TextTokenizer` of the spec, and checks every example.
    """

    def __init__(self, spec):
        from mmzoo.data import TextTokenizer

        self.spec = spec
        self.tokenizer = None
        if "text" in spec.modalities:
            if not spec.vocabulary:
                raise ValueError(
                    "The data spec has no vocabulary, so the raw-text signature cannot tokenize. "
                    "Export a run directory (its data_spec.json has the vocabulary) or pass "
                    "spec=data.spec / a (model, spec) pair."
                )
            self.tokenizer = TextTokenizer.from_spec(spec)

    def __call__(self, inputs: dict) -> dict:
        import tensorflow as tf

        from mmzoo.data import preprocess_image_bytes

        spec = self.spec
        counts = {m: tf.shape(inputs[m])[0] for m in spec.modalities}
        first = spec.modalities[0]
        same = tf.reduce_all(tf.stack([tf.equal(counts[m], counts[first]) for m in spec.modalities]))
        parts = ["Invalid inputs: every input needs the same number of examples. Received:"]
        for m in spec.modalities:
            parts += [f"{m}:", counts[m]]
        checks = [tf.debugging.Assert(same, parts, name="check_batch")]
        out = {}
        with tf.control_dependencies(checks):
            if "image" in spec.modalities:
                out["image"] = _checked_map(
                    "image", inputs["image"], lambda b: preprocess_image_bytes(b, spec),
                    spec.image_shape, spec.image_dtype, IMAGE_REASON,
                )
            if "audio" in spec.modalities:
                out["audio"] = self._audio(inputs["audio"])
            if "text" in spec.modalities:
                ids = self.tokenizer(inputs["text"])
                empty = tf.where(tf.equal(ids[:, 0], 0))[:, 0]
                out["text"] = _reject_positions("text", ids, empty, "empty text (no tokens after tokenization)")
            if "tabular" in spec.modalities:
                x = tf.convert_to_tensor(inputs["tabular"], tf.float32)
                bad_rows = tf.where(tf.logical_not(tf.reduce_all(tf.math.is_finite(x), axis=-1)))[:, 0]
                out["tabular"] = _reject_positions(
                    "tabular", x, bad_rows, "values must be finite numbers (no NaN or Inf)"
                )
        return out

    def _audio(self, data):
        """Canonical mono WAVs at the spec's rate are decoded for the whole batch at once;
        any other file one by one (resampled, mixed down, or rejected with its position)."""
        import tensorflow as tf

        from mmzoo.data import preprocess_wav_bytes
        from mmzoo.data.audio import decode_wav_batch

        spec = self.spec

        def one_by_one(b):
            wav, _ = tf.audio.decode_wav(b)
            has_samples = tf.debugging.assert_greater(
                tf.shape(wav)[0], 0, message="the WAV file has no samples")
            with tf.control_dependencies([has_samples]):
                return preprocess_wav_bytes(b, spec)

        waves, ok = decode_wav_batch(data, spec.sample_rate, spec.audio_samples)
        rest = tf.where(tf.logical_not(ok))[:, 0]

        def merge_the_rest():
            others = _checked_map("audio", tf.gather(data, rest), one_by_one, [spec.audio_samples],
                                  tf.float32, AUDIO_REASON, positions=rest)
            return tf.tensor_scatter_nd_update(waves, rest[:, tf.newaxis], others)

        waves = tf.cond(tf.size(rest) > 0, merge_the_rest, lambda: waves)
        return tf.identity(waves, name="audio")


def build_serving_functions(model, spec, xla: bool = False) -> dict:
    """The three tf.functions of the SavedModel, traced, plus what they must track.

    ``model`` should be the CPU copy (`mmzoo.export.serving_model`).
    """
    import tensorflow as tf

    plan = output_plan(spec)
    preprocessor = RawPreprocessor(spec)

    def run_model(x):
        return model(x, training=False)

    # One traced model function shared by the signatures (its constants, e.g. the log-mel
    # DFT kernel, are stored once). XLA cannot compile string ops or tf.data, so only the
    # model call is jit-compiled.
    model_fn = tf.function(run_model, input_signature=[model_input_specs(spec)],
                           jit_compile=bool(xla), autograph=False)

    def serve_raw(inputs):
        return serving_outputs(model_fn(preprocessor(inputs)), plan)

    def serve_preprocessed(inputs):
        return serving_outputs(model_fn(dict(inputs)), plan)

    def preprocess(inputs):
        return preprocessor(inputs)

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
    import keras
    import tensorflow as tf

    from mmzoo.export.source import serving_model

    copy = model if source_model_is_copy else serving_model(model)
    built = build_serving_functions(copy, spec, xla=xla)
    archive = keras.export.ExportArchive()
    archive.track(copy)
    for resource in built["trackables"]:
        archive.track(resource)
    with tf.device("/CPU:0"):
        for name, fn in built["functions"].items():
            fn.get_concrete_function()
            archive.add_endpoint(name, fn)
    with contextlib.redirect_stdout(io.StringIO()):
        archive.write_out(path, verbose=False)
    return describe_signatures(path)


def describe_signatures(path: str) -> dict:
    """``{signature: {"inputs": {name: {dtype, shape}}, "outputs": {...}}}`` of a SavedModel."""
    import tensorflow as tf

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
