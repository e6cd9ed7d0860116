"""`Modality`: one small record per input kind, so that code which handles inputs loops over
the spec's modalities instead of switching on their names.

A record knows, for its input: the model input (shape and dtype, from the spec), the raw
serving input, how raw values become model inputs (for one example or a batch, and the
checked batch of a serving signature that names the bad positions), how a manifest cell is
checked and read, how it is stored in a TFRecord, its blank value, a synthetic example, and
how a user's value (a path, bytes, a string, an array) is taken.

Example:
>>> from mmzoo.modalities import get_modality
>>> get_modality("text").raw_signature(mmzoo.DataSpec()).dtype.name
'string'
"""

from __future__ import annotations

import base64
import os
from typing import Any, Optional

import numpy as np
import tensorflow as tf

from mmzoo.data.options import pipeline_options


class Modality:
    """Base record; subclasses are registered with `mmzoo.modalities.register_modality`."""

    name: str = ""
    #: the raw serving input is a string per example (encoded files, text) or floats
    raw_dtype: str = "string"
    #: manifest cells are file paths (read with ``tf.io.read_file``)
    is_file: bool = False

    # ------------------------------------------------------------------ model input
    def input_shape(self, spec) -> tuple:
        return tuple(spec.input_shapes()[self.name])

    def input_dtype(self, spec) -> str:
        return spec.input_dtypes()[self.name]

    def input_signature(self, spec) -> tf.TensorSpec:
        return tf.TensorSpec([None, *self.input_shape(spec)], self.input_dtype(spec), name=self.name)

    def raw_signature(self, spec) -> tf.TensorSpec:
        """The raw input of the SavedModel's ``serving_default``: one string per example."""
        return tf.TensorSpec([None], tf.string, name=self.name)

    # ------------------------------------------------------------------ raw -> model input
    def make_state(self, spec) -> Any:
        """What a preprocessor keeps for this input (the text tokenizer); None by default."""
        return None

    def preprocess_one(self, value, spec, state, resample: bool = True):
        """One raw example (scalar string / vector) -> the model input of one example."""
        raise NotImplementedError

    def preprocess(self, value, spec, state, resample: bool = True):
        """Raw values -> model inputs: a scalar is one example, a vector of strings a batch."""
        value = tf.convert_to_tensor(value, tf.string)
        if value.shape.rank == 0:
            return self.preprocess_one(value, spec, state, resample)
        signature = tf.TensorSpec(self.input_shape(spec), self.input_dtype(spec))
        return tf.map_fn(lambda v: self.preprocess_one(v, spec, state, resample), value,
                         fn_output_signature=signature)

    def from_decoded(self, value, spec, state, sample_rate=None, resample: bool = True):
        """TF: one example already decoded by its source (a TFDS feature) -> the model input."""
        return self.preprocess_one(value, spec, state, resample)

    def serve(self, batch, spec, state):
        """The serving signature's checked batch: raises InvalidArgument naming the positions
        of bad examples (see `checked_map`)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ manifests
    def check_cell(self, value, where: dict):
        """A manifest cell -> its parsed value; raises ValueError(reason) when it is bad.
        ``where``: ``root``, ``allow_absolute_paths``, ``resample``, ``sample_rate``."""
        raise NotImplementedError

    def read(self, value):
        """TF: a manifest's parsed value -> the raw value (file paths are read)."""
        return tf.io.read_file(value) if self.is_file else value

    def decode_check(self, spec, resample: bool):
        """TF fn decoding one file's bytes (up-front manifest validation), or None."""
        return None

    def column(self, values: list, spec):
        """A split's parsed values as the array / list a dataset is sliced from."""
        return list(values)

    # ------------------------------------------------------------------ TFRecords
    def record_feature(self, spec):
        raise NotImplementedError

    def record_value(self, value) -> tf.train.Feature:
        return tf.train.Feature(float_list=tf.train.FloatList(value=np.asarray(value).reshape(-1).tolist()))

    def encode_for_record(self, value):
        """TF: a model input as it is stored in a TFRecord (images as PNG)."""
        return value

    def from_record(self, value, spec):
        return value

    # ------------------------------------------------------------------ examples
    def blank(self, array: np.ndarray) -> np.ndarray:
        """The input with nothing in it (zeros; text: all padding), for the ablation."""
        return np.zeros_like(array)

    def absent_raw(self, spec) -> bytes:
        """The raw value standing in for an absent optional input: it preprocesses to `blank`."""
        raise ValueError(f"{self.name} cannot be optional.")

    def random_input(self, spec, n: int, rng: np.random.Generator) -> np.ndarray:
        """Random model inputs (tests, calibration when nothing else is given)."""
        return rng.standard_normal((n, *self.input_shape(spec))).astype(self.input_dtype(spec))

    def synthetic(self, spec, rng: np.random.Generator, i: int):
        """A raw example made offline (export warmup / validation when no data is given)."""
        raise NotImplementedError

    def load_example(self, value, i: int):
        """A user's raw example -> bytes / str / floats (file paths are read)."""
        if not self.is_file:
            raise NotImplementedError
        if isinstance(value, (str, os.PathLike)):
            with open(os.fspath(value), "rb") as f:
                value = f.read()
        if not isinstance(value, (bytes, bytearray)):
            raise ValueError(f"Sample {i}: {self.name} must be encoded file bytes or a file path. "
                             f"Received: {type(value).__name__}")
        return bytes(value)

    def raw_batch(self, values: list, spec) -> np.ndarray:
        """Raw examples as the serving signature's batch (numpy)."""
        return np.asarray(values, dtype=object)

    def rest_value(self, value):
        """A raw value in a TF Serving REST body (bytes as ``{"b64": ...}``)."""
        if isinstance(value, bytes):
            return {"b64": base64.b64encode(value).decode("ascii")}
        return value

    def from_user(self, value, spec, state, resample: bool = True):
        """One example given by a user to ``predict``: a file path or bytes (files), a string,
        or an array of the input itself. Returns the model input of one example."""
        raise NotImplementedError

    def sequence_mask(self, inputs):
        """A ``[batch, steps]`` padding mask of this input's sequence features, or None."""
        return None


def read_user_file(value, name: str) -> Optional[bytes]:
    """``value`` as file bytes (a path is read), or None when it is neither."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
        if not os.path.isfile(path):
            raise ValueError(f"{name} file not found: {path!r}")
        with open(path, "rb") as f:
            return f.read()
    return None


def decode_user_file(fn, raw: bytes, name: str, given):
    """Run a TF decoder on file bytes; a failure names the input and the file."""
    try:
        return fn(tf.constant(raw))
    except tf.errors.InvalidArgumentError as e:
        what = given if isinstance(given, str) else "the bytes"
        raise ValueError(f"{name}: cannot decode {what}: {e.message.splitlines()[0]}") from None


# ---------------------------------------------------------------------- serving checks
# Examples decoded at once in the whole-batch pass (the serving host's inter-op threads run
# them; more in flight only costs memory).
DECODE_PARALLEL_ITERATIONS = 8


def checked_map(name: str, data, fn, shape, dtype, reason: str, positions=None):
    """Map ``fn`` over a batch of encoded examples; an example that fails to decode raises
    InvalidArgument naming the input and its position instead of an anonymous op error.
    ``positions`` (int64 [n]): the batch position of each row of ``data`` when it is a subset.

    The whole batch is decoded in one parallel ``map_fn`` inside a one-element tf.data
    pipeline whose ``ignore_errors`` turns a failure into "no element"; only then is the batch
    decoded again one example at a time, to find the positions that fail.
    """
    signature = tf.TensorSpec(shape, dtype)

    def decode_all(batch):
        values = tf.map_fn(fn, batch, fn_output_signature=signature,
                           parallel_iterations=DECODE_PARALLEL_ITERATIONS)
        return tf.constant(True), values

    whole = tf.data.Dataset.from_tensors(data).map(decode_all).ignore_errors()
    failed = tf.data.Dataset.from_tensors((tf.constant(False), tf.zeros([0, *list(shape)], dtype)))
    # Without the autotuner no autotuning thread is started (and waited for) on every request.
    ok, values = whole.concatenate(failed).take(1).with_options(pipeline_options()).get_single_element()
    return tf.cond(ok, lambda: tf.identity(values, name=name),
                   lambda: _locate_failures(name, data, fn, shape, dtype, reason, positions))


def _locate_failures(name: str, data, fn, shape, dtype, reason: str, positions=None):
    """`checked_map`'s second pass: one example at a time, failures skipped and reported."""
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
    return reject_positions(name, values, bad, reason)


def reject_positions(name: str, value, bad, reason: str):
    """``value`` once ``bad`` (batch positions) is empty; else InvalidArgument naming the input."""
    check = tf.debugging.Assert(
        tf.equal(tf.size(bad), 0),
        [f"Invalid input <{name}>: {reason}. Positions in the batch:", bad],
        summarize=32,
        name=f"check_{name}",
    )
    with tf.control_dependencies([check]):
        return tf.identity(value, name=name)
