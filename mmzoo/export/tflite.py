"""TFLite / LiteRT flatbuffers: builtin ops only, four quantizations, run with ai_edge_litert.

The flatbuffer takes the model's own inputs (``image`` uint8 or float32 pixels [N, H, W, C],
``text`` int32 ids [N, L], ``audio`` float32 waveform [N, S] — the log-mel front end is inside
— ``tabular`` float32 [N, D]) through the ``serving_default`` signature, and returns the
numeric outputs of `mmzoo.export.outputs` (``probabilities`` / ``class_id`` / ``value``).
The batch dimension is dynamic (the signature runner resizes it).

How it converts (TF 2.21, Keras 3): the model is rebuilt on the CPU with loop-free recurrent
layers (`mmzoo.export.serving_model(model, unroll=True)`), written once with
``model.export(format="tf_saved_model")`` and converted with
``tf.lite.TFLiteConverter.from_saved_model`` for each quantization (``from_keras_model``
works too but re-exports every time; ``from_concrete_functions`` gave flatbuffers that
returned NaN). A while-loop RNN does not convert cleanly (TensorListReserve with dynamic
shapes, READ_VARIABLE inside WHILE, full-int8 calibration crashing); the unrolled graph does.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
import warnings
from typing import Callable, Dict, Iterable, List, Optional

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from tensorflow.lite.tools import flatbuffer_utils

from mmzoo.data import text as text_lib
from mmzoo.export import quantize as quantize_lib
from mmzoo.export.formats import Check, CheckContext, ExportFormat, ExportJob, Written, register_format
from mmzoo.export.outputs import output_plan
from mmzoo.export.parity import compare
from mmzoo.export.source import serving_model
from mmzoo.host import cpu_parallelism
from mmzoo.tasks.targets import targets_of

QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")
FILE_NAMES = {q: f"model_{q}.tflite" for q in QUANTIZATIONS}


class ConversionError(RuntimeError):
    """A flatbuffer could not be made with builtin ops only."""


def lite_keras_model(model, spec):
    """The loop-free CPU copy of ``model`` with readable, named outputs (for conversion)."""
    copy = serving_model(model, unroll=True, spec=spec)
    return keras.Model(copy.input, copy.lite_outputs(copy.output), name="mmzoo_lite")


class LiteSource:
    """The conversion input, made once and converted to several quantizations: the
    `lite_keras_model` written with ``model.export(format="tf_saved_model")`` to a temporary
    folder (faster than ``from_keras_model``, which re-exports for every conversion).
    Use as a context manager (the folder is removed on exit)."""

    def __init__(self, model, spec, folder: Optional[str] = None, lite=None, plan: Optional[list] = None):
        self.spec = spec
        self._own = folder is None
        self.folder = folder or tempfile.mkdtemp(prefix="mmzoo-lite-")
        os.makedirs(self.folder, exist_ok=True)
        # ``lite``: a ready Keras model with named outputs (a retriever's tower) instead of ``model``
        lite = lite if lite is not None else lite_keras_model(model, spec)
        path = os.path.join(self.folder, "saved_model")
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lite.export(path, format="tf_saved_model", verbose=False)
        self.path = path
        self.plan = plan or output_plan(spec)
        self.layer_paths = quantize_lib.leaf_paths(lite)
        self.float_layers = quantize_lib.float_layer_paths(lite)
        self._float32: Optional[bytes] = None
        self._figures: Dict[tuple, dict] = {}  # (flatbuffer digest, inputs) -> `_figures`

    def float32_content(self) -> bytes:
        """The float32 flatbuffer with its tensor names (the reference for quantized ones)."""
        if self._float32 is None:
            self._float32 = _convert(self.path, "float32", None, [tf.lite.OpsSet.TFLITE_BUILTINS])
        return self._float32

    def close(self) -> None:
        if self._own:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "LiteSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def convert_tflite(
    model,
    spec,
    quantization: str = "float32",
    representative: Optional[Dict[str, np.ndarray]] = None,
    source: Optional[LiteSource] = None,
    strip_names: bool = True,
    *,
    min_agreement: float = 0.98,
    max_nrmse: float = 0.05,
    check_inputs: Optional[Dict[str, np.ndarray]] = None,
) -> dict:
    """Convert to a TFLite flatbuffer with builtin ops only.

    Args:
        model: the Keras model (ignored when ``source`` is given).
        spec: its `DataSpec`.
        quantization: ``float32``, ``float16`` (float16 weights), ``dynamic`` (int8 weights,
            float activations) or ``int8`` (integer weights and activations, calibrated on
            ``representative``; the layers of `mmzoo.export.quantize.FLOAT_LAYERS` stay in
            float, and more while the calibration examples disagree with float32).
        representative: model inputs ``{name: [n, ...]}`` for int8 calibration.
        source: a prepared `LiteSource` (saves re-exporting for several variants).
        strip_names: drop the names of intermediate tensors (`strip_tensor_names`); the
            signature and its named inputs and outputs are kept.
        min_agreement, max_nrmse: what int8 must keep against float32 before the search for
            float layers stops (the validation gate's figures).
        check_inputs: model inputs that figure is measured on (default: the calibration
            examples; examples the calibration has not seen judge it more honestly).

    Returns:
        ``{"content": bytes, "quantization": ..., "int8_mode": "full" | "selective" | None,
        "ops": [builtin op names]}``; quantized variants add ``calibration_check`` (figures
        against float32 on the calibration examples) and ``worst_layers``
        (`mmzoo.export.quantize.layer_errors`), int8 adds ``float_layers`` and ``search``.

    Example:
    >>> fb = mmzoo.export.convert_tflite(model, model.spec, "int8", representative=x)  # doctest: +SKIP
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {list(QUANTIZATIONS)}. Received: {quantization!r}")
    if quantization == "int8" and not representative:
        raise ValueError("quantization='int8' needs representative inputs for calibration.")
    if source is None:
        with LiteSource(model, spec) as own:
            return convert_tflite(model, spec, quantization, representative, own, strip_names,
                                  min_agreement=min_agreement, max_nrmse=max_nrmse, check_inputs=check_inputs)

    int8_mode, float_layers, search = None, [], None
    check = {k: v[:QUANTIZATION_CHECK_EXAMPLES] for k, v in (check_inputs or representative or {}).items()}
    try:
        if quantization == "int8":
            content, int8_mode, float_layers, search = _int8(source, representative, check, min_agreement, max_nrmse)
        else:
            content = _convert(source.path, quantization, None, [tf.lite.OpsSet.TFLITE_BUILTINS])
    except ConversionError:
        raise
    except Exception as error:  # noqa: BLE001  (the converter raises many types)
        raise ConversionError(
            f"TFLite conversion ({quantization}) with builtin ops only failed: {_short_error(error)}"
        ) from error
    result = {"quantization": quantization, "int8_mode": int8_mode}
    if quantization != "float32" and check:
        result["calibration_check"] = _figures(source, content, check)
        few = {k: v[:LAYER_ERROR_EXAMPLES] for k, v in check.items()}
        result["worst_layers"] = quantize_lib.layer_errors(source.float32_content(), content, few,
                                                           source.layer_paths, exclude=float_layers)
    if quantization == "int8":
        why = {"/".join(p): r for p, r in source.float_layers.items()}
        result["float_layers"] = [{"layer": "/".join(p), "why": why.get("/".join(p), "kept in float by the "
                                   "search: largest added error")} for p in float_layers]
        result["search"] = search
    if strip_names:
        content = strip_tensor_names(content)
    ops = TFLiteModel(content).op_names()
    foreign = [op for op in ops if op.startswith("Flex") or op in ("CUSTOM", "DELEGATE")]
    if foreign:
        raise ConversionError(f"The {quantization} flatbuffer needs non-builtin ops {foreign}.")
    return {"content": content, **result, "ops": ops}


#: examples the quantized flatbuffer is compared on while it is made: 512, since with 256 one
#: example is 0.4 points and the benchmark's misses passed the check by one example and then
#: fell 2 points short on the test split
QUANTIZATION_CHECK_EXAMPLES = 512
#: of those, the examples every tensor is compared on to find the layers that lose the most
LAYER_ERROR_EXAMPLES = 128
#: int8 is widened until it agrees this much better than the gate asks on those examples (the
#: gate's own sample is another one: a flatbuffer exactly at the line fails it half the time)
SEARCH_MARGIN = 0.01
#: each round of the int8 search tries this many of the layers that add the most error (and the
#: model's units) in float and keeps the one that brings the outputs closest to float32's
SEARCH_WORST_LAYERS = 6


def _convert(saved_model: str, quantization: str, representative, ops_sets, signature_keys=None) -> bytes:
    """Convert a SavedModel (its ``signature_keys``, default all). ``representative``: model
    inputs (a dict of arrays, one example at a time) or a ready ``representative_dataset``."""
    conv = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=signature_keys)
    conv.target_spec.supported_ops = ops_sets
    if quantization != "float32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        conv.target_spec.supported_types = [tf.float16]
    if representative is not None:
        conv.representative_dataset = representative if callable(representative) else _representative_fn(representative)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        # Calibration runs the deprecated tf.lite.Interpreter inside the converter.
        warnings.simplefilter("ignore")
        return conv.convert()


def _figures(source: LiteSource, content: bytes, inputs: Dict[str, np.ndarray]) -> dict:
    """Agreement (or NRMSE) of a flatbuffer with the float32 one on ``inputs``. A flatbuffer
    that crashes the interpreter (tried in another process first) raises `ConversionError`."""
    key = (hashlib.sha1(content).digest(), id(inputs))  # the search scores its winner once
    if key not in source._figures:
        crash = quantize_lib.runs_safely(content, {k: v[:64] for k, v in inputs.items()})
        if crash:
            raise ConversionError(f"a quantized flatbuffer does not run: {crash}")
        reference_key = (None, id(inputs))
        if reference_key not in source._figures:  # the float32 outputs, once per inputs
            source._figures[reference_key] = {"outputs": TFLiteModel(source.float32_content()).predict(inputs),
                                              "inputs": inputs}  # kept: its id stays unique
        figures = compare(TFLiteModel(content).predict(inputs), source._figures[reference_key]["outputs"],
                          source.plan)
        source._figures[key] = {k: (None if v is None else round(float(v), 6)) for k, v in figures.items()}
    return dict(source._figures[key])


def _passes(figures: dict, min_agreement: float, max_nrmse: float) -> bool:
    return ((figures["agreement"] is None or figures["agreement"] >= min_agreement)
            and (figures["nrmse"] is None or figures["nrmse"] <= max_nrmse)
            and np.isfinite(figures["max_abs_diff"]))


def _int8(source: LiteSource, representative, check, min_agreement: float, max_nrmse: float):
    """Full int8 with the `mmzoo.export.quantize.FLOAT_LAYERS` in float, widened while the
    ``check`` examples disagree with float32 (`mmzoo.export.quantize.choose_float_layers`):
    each round tries candidates in float (`mmzoo.export.quantize.trial_candidate`) and keeps
    the one whose outputs differ least from float32's."""
    start = list(source.float_layers)
    if not start:
        try:  # nothing to keep in float: every op int8
            content = _convert(source.path, "int8", representative, [tf.lite.OpsSet.TFLITE_BUILTINS_INT8])
            if _passes(_figures(source, content, check), min(1.0, min_agreement + SEARCH_MARGIN), max_nrmse):
                return content, "full", [], None
        except Exception:  # noqa: BLE001  (an op without an int8 kernel: go selective)
            pass
    quantizer = quantize_lib.Int8Quantizer(source.path, representative)

    def score(content):
        figures = _figures(source, content, check)
        ok = _passes(figures, min(1.0, min_agreement + SEARCH_MARGIN), max_nrmse)
        value = figures["agreement"] if figures["agreement"] is not None else 1.0 - (figures["nrmse"] or 0.0)
        return value, ok

    few = {k: v[:LAYER_ERROR_EXAMPLES] for k, v in check.items()}
    make = quantize_lib.memoized(quantizer.quantize)

    leaves = set(source.layer_paths)
    # the model's units: each encoder, the fusion, the head (not the whole backbone)
    units = sorted({p[:n] for p in leaves for n in (1, 2) if len(p) > n} - {("backbone",)})

    def proposals(content, keep):
        """The layers that add the most error, then whole units (an encoder, the fusion, the head):
        where the error is spread thin, no single layer moves the answers."""
        worst = quantize_lib.layer_errors(source.float32_content(), content, few, source.layer_paths, top=20)
        top = [tuple(e["layer"].split("/")) for e in worst if tuple(e["layer"].split("/")) in leaves]
        return top[:SEARCH_WORST_LAYERS] + units

    def error(content):
        return _figures(source, content, few)["mean_abs_diff"]

    pick = quantize_lib.trial_candidate(make, error, proposals)
    content, keep, _, history = quantize_lib.choose_float_layers(make, score, start, pick)
    return content, ("selective" if keep else "full"), keep, history


def strip_tensor_names(content: bytes) -> bytes:
    """The flatbuffer without the names of its intermediate tensors (debug strings: the int8
    converter joins fused op names with ';', a quarter of a small int8 file). Like TFLite's
    ``strip_strings`` tool, but the signatures and the input and output tensors keep their
    names, so the signature runner works as before. Same ops, same buffers, same results.

    Example:
    >>> small = mmzoo.export.strip_tensor_names(open("model.tflite", "rb").read())  # doctest: +SKIP
    """
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    for graph in model.subgraphs:
        keep = set(graph.inputs) | set(graph.outputs)
        for index, tensor in enumerate(graph.tensors):
            if index not in keep:
                tensor.name = None
    return flatbuffer_utils.convert_object_to_bytearray(model)


def _representative_fn(inputs: Dict[str, np.ndarray]) -> Callable[[], Iterable[dict]]:
    n = len(next(iter(inputs.values())))

    def gen():
        for i in range(n):
            yield {k: v[i:i + 1] for k, v in inputs.items()}

    return gen


def _short_error(e: Exception, limit: int = 600) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:limit]}{'...' if len(text) > limit else ''}"


class TFLiteModel:
    """A flatbuffer in the LiteRT interpreter (``ai_edge_litert``), called by input name.

    Args:
        model: flatbuffer bytes or a ``.tflite`` path.
        num_threads: interpreter and XNNPACK threads; default: the CPU cores this process
            may use (LiteRT's own default is one thread, half the batch-64 speed on 2 cores).

    Example:
    >>> lite = mmzoo.export.TFLiteModel("export/models/shapes/1/litert/model_int8.tflite")  # doctest: +SKIP
    >>> lite({"image": x_uint8, "text": ids})["probabilities"]
    """

    def __init__(self, model, num_threads: Optional[int] = None, signature: str = "serving_default"):
        if num_threads is None:
            num_threads = cpu_parallelism()
        if isinstance(model, (bytes, bytearray)):
            self.interpreter = Interpreter(model_content=bytes(model), num_threads=num_threads)
        else:
            self.interpreter = Interpreter(model_path=os.fspath(model), num_threads=num_threads)
        self.runner = self.interpreter.get_signature_runner(signature)

    def input_details(self) -> dict:
        return self.runner.get_input_details()

    def output_details(self) -> dict:
        return self.runner.get_output_details()

    def op_names(self) -> List[str]:
        return sorted({d["op_name"] for d in self.interpreter._get_ops_details()})

    def __call__(self, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        details = self.input_details()
        unknown = sorted(set(inputs) - set(details))
        if unknown:
            raise ValueError(f"Unknown inputs {unknown}. The flatbuffer takes {sorted(details)}.")
        feed = {k: np.ascontiguousarray(np.asarray(v).astype(details[k]["dtype"], copy=False))
                for k, v in inputs.items()}
        return {k: np.array(v) for k, v in self.runner(**feed).items()}

    def predict(self, inputs: Dict[str, np.ndarray], batch_size: int = 64) -> Dict[str, np.ndarray]:
        n = len(next(iter(inputs.values())))
        chunks: Dict[str, list] = {}
        for start in range(0, n, batch_size):
            out = self({k: v[start:start + batch_size] for k, v in inputs.items()})
            for k, v in out.items():
                chunks.setdefault(k, []).append(v)
        return {k: np.concatenate(v, axis=0) for k, v in chunks.items()}

    def signature(self) -> dict:
        def desc(d):
            return {k: {"dtype": np.dtype(v["dtype"]).name, "shape": [int(s) for s in v["shape_signature"]]}
                    for k, v in sorted(d.items())}

        return {"inputs": desc(self.input_details()), "outputs": desc(self.output_details())}


# ---------------------------------------------------------------------- files beside it
def write_lite_bundle(folder: str, spec) -> List[str]:
    """Write what a device app needs beside the flatbuffers: ``labels.txt`` (per task for
    multitask), and for text ``vocab.txt``, ``tokenizer.json`` and the pure-Python
    reference ``tokenizer.py`` (same ids as the SavedModel). Returns the file names."""
    os.makedirs(folder, exist_ok=True)
    written = []
    for target in targets_of(spec):
        fname = target.labels_file()
        if fname is None:
            continue
        with open(os.path.join(folder, fname), "w", encoding="utf-8") as f:
            f.write("\n".join(target.names()) + "\n")
        written.append(fname)
    if "text" in spec.modalities and spec.vocabulary:
        with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(spec.vocabulary) + "\n")
        config = text_lib.tokenizer_config(spec.tokenizer)
        description = {
            "format": "mmzoo-tokenizer/1",
            "vocabulary": "vocab.txt",
            "seq_len": spec.seq_len,
            "mode": config["mode"],
            "lowercase": config["lowercase"],
            "padding_id": 0,
            "oov_id": 1,
            "rules": [
                "lowercase (Unicode, except the code points in lower_exceptions)",
                "every character in whitespace becomes a space",
                "characters in punctuation (and, in mode 'auto', cjk) become tokens of their own",
                "mode 'char': every non-space character is a token",
                "split on spaces; look each token up in vocab.txt (line number = id, missing = oov_id)",
                "truncate to seq_len, pad with padding_id",
            ],
            "whitespace": [list(r) for r in text_lib.WHITESPACE_RANGES],
            "punctuation": [list(r) for r in text_lib.PUNCTUATION_RANGES],
            "cjk": [list(r) for r in text_lib.CJK_RANGES],
            "lower_exceptions": sorted(text_lib.LOWER_EXCEPTIONS),
        }
        with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(description, f, indent=1)
        here = os.path.dirname(os.path.abspath(__file__))
        shutil.copyfile(os.path.join(here, "lite_tokenizer.py"), os.path.join(folder, "tokenizer.py"))
        written += ["vocab.txt", "tokenizer.json", "tokenizer.py"]
    return written


# ---------------------------------------------------------------------- the format
LITE_DIR = "litert"


class LiteRTFormat(ExportFormat):
    """Builtins-only TFLite flatbuffers (float32 and the asked quantizations) in ``litert/``,
    with what a device app needs beside them (`write_lite_bundle`)."""

    name = "tflite"
    card_dir = LITE_DIR

    def write(self, job: ExportJob) -> Written:
        lite_dir = os.path.join(job.staging, LITE_DIR)
        os.makedirs(lite_dir, exist_ok=True)
        written = Written()
        with LiteSource(job.model, job.spec, folder=job.scratch) as lite:
            for q in ["float32", *job.quantize]:
                job.log(f"converting TFLite {q}")
                converted = convert_tflite(job.model, job.spec, q, representative=job.calibration, source=lite,
                                           min_agreement=job.thresholds["min_agreement"],
                                           max_nrmse=job.thresholds["max_nrmse"], check_inputs=job.check_inputs)
                path = os.path.join(lite_dir, FILE_NAMES[q])
                with open(path, "wb") as f:
                    f.write(converted["content"])
                key = f"tflite_{q}"
                written.artifacts[key] = path
                written.card[key] = {"path": os.path.relpath(path, job.staging), "bytes": os.path.getsize(path),
                                     "quantization": q, "int8_mode": converted["int8_mode"], "ops": converted["ops"],
                                     **{k: converted[k] for k in ("float_layers", "worst_layers", "calibration_check")
                                        if k in converted}}
                written.checks[key] = {"format": self.name, "path": path, "quantization": q}
        written.signatures = {"serving_default": TFLiteModel(written.artifacts["tflite_float32"]).signature()}
        written.card["litert_files"] = {"path": LITE_DIR, "files": write_lite_bundle(lite_dir, job.spec)}
        return written

    def checks(self, key: str, entry: dict, ctx: CheckContext) -> List[Check]:
        kind = "exact" if entry["quantization"] == "float32" else "quantized"
        return [(key, kind, ctx.examples, lambda: compare(TFLiteModel(entry["path"]).predict(ctx.inputs),
                                                          ctx.reference, ctx.plan, ctx.labels))]


register_format(LiteRTFormat())
