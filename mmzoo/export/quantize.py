"""Post-training quantization that keeps the model's answers.

Where the error entered (measured per layer with `layer_errors` on models trained with
``mmzoo train`` on held-out data; docs/export.md has the figures):

- the log-mel front end: a DFT stored as conv weights was quantized to int8, and with it
  the waveform; the log then turned the noise floor into errors of several nats. The front
  end is now an FFT with small mel blocks (`mmzoo.layers.LogMelSpectrogram`): dynamic-range
  quantization leaves it in float by construction, and full int8 keeps it in float.
- attention (`keras.layers.MultiHeadAttention`): its masked logits hold a large negative
  fill for padding, so one int8 scale spans ~1e9 and every real logit rounds to the same
  value. Layer norm, global average pooling and LSTMs: see `FLOAT_LAYERS`.

Full int8 keeps the `FLOAT_LAYERS` in float32 and quantizes the rest: TFLite's quantization
debugger (``tf.lite.experimental.QuantizationDebugger``) calibrates once and rebuilds the
model with the float layers' ops denylisted (`Int8Quantizer`), and the quantize ->
dequantize round trips left between float ops are removed (`drop_float_round_trips`). While
a flatbuffer still disagrees with float32 on examples the calibration did not see,
`choose_float_layers` keeps one more layer or unit in float (a few rounds): `trial_candidate`
tries the layers that add the most error and whole units, and keeps the one whose outputs come
closest to float32's. The logits layers and the output ops always stay in float.
Every candidate runs once in another process first (`runs_safely`). Each variant records what
stayed in float and the layers that lose the most.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

#: Layer classes kept in float32 in full-int8 flatbuffers, with the reason (shown in the card).
FLOAT_LAYERS = {
    "LogMelSpectrogram": "log-mel front end: an 8-bit power spectrum loses everything below "
                         "-48 dB and the log magnifies it",
    "MultiHeadAttention": "attention: the padding mask's large negative logits take the whole "
                          "int8 range of the scores",
    "LayerNormalization": "layer norm: the variance and its inverse square root span orders of "
                          "magnitude one int8 scale cannot hold",
    "LSTM": "LSTM: its unrolled int8 steps crash LiteRT (double free in the XNNPACK runtime, "
            "TF 2.21 / ai-edge-litert; found on resnet_bilstm_gated)",
    "GlobalAveragePooling1D": "global average pooling: the int8 mean lost most of the pooled features "
                              "(60% relative error on cnn_gru_melcnn_film's audio branch)",
    "GlobalAveragePooling2D": "global average pooling: the int8 mean lost most of the pooled features "
                              "(60% relative error on cnn_gru_melcnn_film's audio branch)",
}

LayerPath = Tuple[str, ...]


def layer_paths(model) -> Dict[LayerPath, object]:
    """Every layer under ``model`` by its path of names, e.g. ``("backbone", "fusion",
    "text_attends")`` (the name scopes of the traced graph)."""
    found: Dict[LayerPath, object] = {}

    def walk(layer, prefix: LayerPath) -> None:
        for child in layer._flatten_layers(include_self=False, recursive=False):
            path = prefix + (child.name,)
            if path in found:
                continue
            found[path] = child
            walk(child, path)

    walk(model, ())
    return found


def leaf_paths(model) -> List[LayerPath]:
    """The paths of the layers that are not themselves models (where errors are attributed)."""
    import keras

    return [p for p, layer in layer_paths(model).items() if not isinstance(layer, keras.Model)]


#: why the dense layers that produce the logits stay in float (`float_layer_paths`)
LOGITS_REASON = ("the output logits: int8 steps of ~1/20 of their range tie classes whose scores are close, "
                 "and the argmax then takes the first (1-2% of the answers of a model with many near ties)")
_LOGITS = re.compile(r"(\w+_)?logits(_\w+)?")


def float_layer_paths(model) -> Dict[LayerPath, str]:
    """The layers of ``model`` that full int8 keeps in float, with the reason: the classes of
    `FLOAT_LAYERS` and the dense layers named ``*logits*`` (the outputs' last layer)."""
    out = {}
    for path, layer in layer_paths(model).items():
        for cls in type(layer).__mro__:
            if cls.__name__ in FLOAT_LAYERS:
                out[path] = FLOAT_LAYERS[cls.__name__]
                break
            if cls.__name__ == "Dense" and _LOGITS.fullmatch(path[-1]):
                out[path] = LOGITS_REASON
                break
    return out


_SUFFIX = re.compile(r"_\d+$")


def _segments(tensor_name: str) -> List[List[str]]:
    """Each ';'-joined part of a tensor name as its path segments, with and without the
    ``_N`` uniquifier the graph adds to name scopes."""
    return [part.split(":")[0].split("/") for part in tensor_name.split(";") if part]


def _under(segments: List[str], path: LayerPath) -> bool:
    """Whether the name scopes ``segments`` (after the model's own scope) run through ``path``."""
    k = len(path)
    for start in range(len(segments) - k + 1):
        if all(segments[start + i] in (name, f"{name}_1") or _SUFFIX.sub("", segments[start + i]) == name
               for i, name in enumerate(path)):
            return True
    return False


def layer_of(tensor_name: str, paths: Iterable[LayerPath]) -> Optional[LayerPath]:
    """The deepest layer path a tensor name belongs to (None if none)."""
    best = None
    for parts in _segments(tensor_name):
        for path in paths:
            if (best is None or len(path) > len(best)) and _under(parts, path):
                best = path
    return best


def tensor_names(content: bytes) -> List[str]:
    """The output tensor names of every op in a flatbuffer."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=bytes(content))
    names = []
    for op in interpreter._get_ops_details():
        for index in op["outputs"]:
            names.append(interpreter._get_tensor_details(index, 0)["name"])
    return names


def _quiet():
    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    return stack


class Int8Quantizer:
    """Calibrate once, then build full-int8 flatbuffers with chosen layers left in float.

    Args:
        saved_model: the conversion SavedModel (`mmzoo.export.tflite.LiteSource.path`).
        representative: model inputs ``{name: [n, ...]}`` for calibration.

    Example:
    >>> q = Int8Quantizer(source.path, calibration)  # doctest: +SKIP
    >>> content = q.quantize(keep_float=[("backbone", "fusion", "text_attends")])
    """

    def __init__(self, saved_model: str, representative: Dict[str, np.ndarray]):
        import tensorflow as tf

        self._tf = tf
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        n = len(next(iter(representative.values())))
        converter.representative_dataset = lambda: ({k: v[i:i + 1] for k, v in representative.items()}
                                                    for i in range(n))
        order: List[str] = []

        def debug_rows():  # the debugger feeds inputs as a list, in the interpreter's order
            for i in range(min(n, 8)):
                yield [representative[k][i:i + 1] for k in order]

        with _quiet():
            self.debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=debug_rows)
        for detail in self.debugger._quant_interpreter.get_input_details():
            order.append(_input_key(detail["name"], representative))
        self.names = tensor_names(self.debugger.calibrated_model)
        self.outputs = output_names(self.debugger.calibrated_model)

    def quantize(self, keep_float: Sequence[LayerPath] = ()) -> bytes:
        """A full-int8 flatbuffer (float32 inputs and outputs) with the ops of the layers in
        ``keep_float`` left in float32, and always the ops that make the model's outputs: an int8
        softmax output has steps of 1/256, so two classes closer than that tie and the argmax
        picks the first (on models with many near ties, ~2% of the answers)."""
        deny = sorted({n for n in self.names if any(_under(p, path) for p in _segments(n) for path in keep_float)}
                      | set(self.outputs))
        with _quiet():
            self.debugger.options = self._tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=deny)
            return drop_float_round_trips(self.debugger.get_nondebug_quantized_model())


def calibrate(saved_model: str, representative: Callable[[], Iterable], signature_keys: Sequence[str]) -> bytes:
    """A SavedModel's float flatbuffer with int8 calibration statistics, for any number of
    signatures (the converter's calibrate-only mode; ``representative`` yields
    ``(signature_key, inputs)`` pairs). Quantize it with `quantize_calibrated`.

    Example:
    >>> calibrated = calibrate(path, lambda: iter(samples), ["encode", "decode_step"])  # doctest: +SKIP
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=list(signature_keys))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.representative_dataset = representative
    converter.experimental_mlir_quantizer = True
    converter._experimental_calibrate_only = True  # what QuantizationDebugger does, for several signatures
    with _quiet():
        return converter.convert()


def output_names(content: bytes) -> List[str]:
    """The tensor names of a flatbuffer's signature outputs."""
    from ai_edge_litert.interpreter import Interpreter

    return [d["name"] for d in Interpreter(model_content=content).get_output_details()]


def op_output_names(content: bytes) -> List[str]:
    """The output tensor names of every op in every subgraph of a flatbuffer."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    return [graph.tensors[t].name.decode() for graph in model.subgraphs for op in graph.operators
            for t in op.outputs if graph.tensors[t].name]


def quantize_calibrated(calibrated: bytes, keep_float: Callable[[str], bool]) -> bytes:
    """Full int8 (float32 inputs and outputs) of a `calibrate`-d flatbuffer, with the ops whose
    output tensor name ``keep_float`` accepts left in float32 (and no round trips between them,
    `drop_float_round_trips`)."""
    from tensorflow.lite.python import convert

    deny = sorted({name for name in op_output_names(calibrated) if keep_float(name)})
    with _quiet():
        content = convert.mlir_quantize(calibrated, fully_quantize=False, denylisted_nodes=deny)
    return drop_float_round_trips(content)


def drop_float_round_trips(content: bytes) -> bytes:
    """The flatbuffer without quantize -> dequantize round trips between float ops.

    Denylisting leaves them on edges whose tensor was calibrated: the waveform input of a
    float front end is quantized to int8 and back (-48 dB of noise: what the front end is
    kept in float against), a float pooling output goes through the int8 scale of a
    concatenation. Each ``DEQUANTIZE`` whose input comes, through int8 requantizations only,
    from a ``QUANTIZE`` of a float tensor, is removed and its readers read that float tensor;
    quantize ops left without readers go too. Graph outputs are left as they are.

    Example:
    >>> exact = drop_float_round_trips(int8_content)  # doctest: +SKIP
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    quantize_op, dequantize_op = schema.BuiltinOperator.QUANTIZE, schema.BuiltinOperator.DEQUANTIZE
    changed = False
    for graph in model.subgraphs:
        producer = {t: op for op in graph.operators for t in op.outputs}
        outputs = set(graph.outputs)

        def float_source(tensor: int, producer=producer, graph=graph) -> Optional[int]:
            """The float tensor a chain of quantize ops started from (None if none)."""
            while True:
                op = producer.get(tensor)
                if op is None or codes[op.opcodeIndex] != quantize_op:
                    return None
                source = op.inputs[0]
                if graph.tensors[source].type == schema.TensorType.FLOAT32:
                    return source
                tensor = source

        replace = {}
        for op in graph.operators:
            if codes[op.opcodeIndex] == dequantize_op and op.outputs[0] not in outputs:
                source = float_source(op.inputs[0])
                if source is not None:
                    replace[op.outputs[0]] = source
        if not replace:
            continue
        changed = True
        kept = []
        for op in graph.operators:
            if codes[op.opcodeIndex] == dequantize_op and op.outputs[0] in replace:
                continue
            op.inputs = [replace.get(t, t) for t in op.inputs]
            kept.append(op)
        while True:  # quantize ops nobody reads any more
            read = {t for op in kept for t in op.inputs} | outputs
            unread = [op for op in kept if codes[op.opcodeIndex] == quantize_op and op.outputs[0] not in read]
            if not unread:
                break
            kept = [op for op in kept if op not in unread]
        graph.operators = kept
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)) if changed else content


_SMOKE = """
import sys, numpy as np
from ai_edge_litert.interpreter import Interpreter
runner = Interpreter(model_path=sys.argv[1], num_threads=1).get_signature_runner("serving_default")
details = runner.get_input_details()
x = dict(np.load(sys.argv[2]))
runner(**{k: np.ascontiguousarray(v.astype(details[k]["dtype"])) for k, v in x.items()})
print("ok")
"""


def runs_safely(content: bytes, inputs: Dict[str, np.ndarray], timeout: float = 120.0) -> Optional[str]:
    """Run a flatbuffer once on ``inputs`` in a separate process: None if it ran, else what
    went wrong. Some quantized graphs crash the interpreter itself (an int8 LSTM: a double
    free), which would take the exporting process with them.

    Example:
    >>> runs_safely(content, {"image": x[:2], "text": ids[:2]}) is None  # doctest: +SKIP
    True
    """
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mmzoo-smoke-") as folder:
        model_path, inputs_path = f"{folder}/model.tflite", f"{folder}/inputs.npz"
        with open(model_path, "wb") as f:
            f.write(content)
        np.savez(inputs_path, **inputs)
        try:
            proc = subprocess.run([sys.executable, "-c", _SMOKE, model_path, inputs_path],
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return f"it did not finish in {timeout:.0f} s"
    if proc.returncode == 0 and proc.stdout.strip().endswith("ok"):
        return None
    tail = " ".join((proc.stderr or "").strip().splitlines()[-2:])[:300]
    return f"the interpreter exited with code {proc.returncode}: {tail}"


def _input_key(tensor_name: str, inputs: Dict[str, np.ndarray]) -> str:
    base = tensor_name.split(":")[0]
    for key in inputs:
        if base == key or base.endswith("_" + key):
            return key
    raise KeyError(f"Cannot match the flatbuffer input {tensor_name!r} to the inputs {sorted(inputs)}.")


def _dequantized(interpreter, detail) -> Optional[np.ndarray]:
    try:
        value = interpreter.get_tensor(detail["index"])
    except ValueError:
        return None
    if value.dtype in (np.int8, np.uint8, np.int16):
        scale, zero = detail["quantization"]
        if not scale:
            return None
        return (value.astype(np.float32) - zero) * scale
    if value.dtype != np.float32:
        return None
    return value


def _all_tensors(content: bytes, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Every float (or dequantized) tensor of one run, by name."""
    from ai_edge_litert.interpreter import Interpreter

    with warnings.catch_warnings():  # "for debugging purposes only": that is what this is
        warnings.simplefilter("ignore")
        interpreter = Interpreter(model_content=bytes(content), experimental_preserve_all_tensors=True)
    runner = interpreter.get_signature_runner("serving_default")
    details = runner.get_input_details()
    runner(**{k: np.ascontiguousarray(np.asarray(v).astype(details[k]["dtype"])) for k, v in inputs.items()})
    out = {}
    for detail in interpreter.get_tensor_details():
        value = _dequantized(interpreter, detail)
        if value is not None and value.size:
            out[detail["name"]] = value
    return out


def layer_errors(float_content: bytes, quantized_content: bytes, inputs: Dict[str, np.ndarray],
                 paths: Iterable[LayerPath], top: int = 5, exclude: Iterable[LayerPath] = ()) -> List[dict]:
    """The layers that lose the most between a float32 and a quantized flatbuffer (both with
    their tensor names), on ``inputs``. A layer's ``relative_error`` is that of its last
    tensor, ``rms(quantized - float) / rms(float)``; what it ``added`` is that minus the
    largest error of the layers before it under the same parent, or under the parent's
    parent for a first child (what its inputs carried, roughly).
    Largest ``added`` first; layers under ``exclude`` (those kept in float) are not listed.

    Example:
    >>> layer_errors(f32, int8, x, layer_paths(lite_model))[0]  # doctest: +SKIP
    {'layer': 'backbone/fusion/text_attends', 'relative_error': 0.93, 'added': 0.92}
    """
    paths, exclude = list(paths), [tuple(x) for x in exclude]
    wanted = set(paths)
    reference = _all_tensors(float_content, inputs)
    quantized = _all_tensors(quantized_content, inputs)
    last: Dict[LayerPath, Tuple[int, float]] = {}
    for position, (name, value) in enumerate(quantized.items()):
        ref = reference.get(name)
        if ref is None or ref.shape != value.shape:
            continue
        path = layer_of(name, paths)
        if path is None:
            continue
        scale = float(np.sqrt(np.mean(np.square(ref.astype(np.float64)))))
        error = float(np.sqrt(np.mean(np.square(value.astype(np.float64) - ref)))) / (scale + 1e-12)
        for depth in range(1, len(path) + 1):  # a tensor also ends its parents' outputs so far
            prefix = path[:depth]
            if prefix not in last or position > last[prefix][0]:
                last[prefix] = (position, error)
    def inherited(path: LayerPath, position: int) -> float:
        """The largest error of the layers before ``path`` under its parent (else under its
        grandparent...): what its inputs already carried, roughly."""
        for depth in range(len(path), 0, -1):
            parent = path[:depth - 1]
            before = [e for p, (pos, e) in last.items() if len(p) == depth and p[:-1] == parent
                      and p != path[:depth] and pos < position]
            if before:
                return max(before)
        return 0.0

    rows = []
    for path, (position, error) in last.items():
        if path not in wanted or any(path[:len(x)] == x for x in exclude):
            continue
        added = error - inherited(path, position)
        rows.append({"layer": "/".join(path), "relative_error": round(error, 4), "added": round(added, 4),
                     "_key": (added, len(path))})
    rows.sort(key=lambda r: r["_key"], reverse=True)
    for r in rows:
        del r["_key"]
    return rows[:top]


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Top-1 agreement of two score arrays ``[n, classes]`` (or equal signs / rounded values
    for a single output column)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim >= 2 and a.shape[-1] > 1:
        return float(np.mean(a.argmax(-1) == b.argmax(-1)))
    return float(np.mean(np.isclose(a, b, rtol=0.05, atol=0.05)))


def choose_float_layers(
    make: Callable[[Sequence[LayerPath]], bytes],
    score: Callable[[bytes], Tuple[float, bool]],
    start: Sequence[LayerPath],
    next_layer: Callable[[bytes, List[LayerPath]], Optional[LayerPath]],
    rounds: int = 4,
    describe: Optional[Callable[[bytes], dict]] = None,
) -> Tuple[bytes, List[LayerPath], float, List[dict]]:
    """Start from the ``start`` float layers; while ``score(content)`` (``(value, passes)``)
    says the flatbuffer fails, keep ``next_layer(content, kept)`` in float too (``rounds`` at
    most, or until it returns None). Returns the passing flatbuffer (else the best-scoring
    one), its float layers, its score and the rounds tried (``describe(content)`` adds figures
    to each).

    Example:
    >>> pick = trial_candidate(q.quantize, error, proposals)
    >>> content, keep, value, rounds = choose_float_layers(q.quantize, score, [], pick)  # doctest: +SKIP
    """
    keep = list(start)
    content = make(keep)
    value, ok = score(content)

    def entry() -> dict:
        return {"float_layers": ["/".join(p) for p in keep], "agreement": round(value, 4),
                **(describe(content) if describe else {})}

    history = [entry()]
    best = (value, content, list(keep))
    for _ in range(rounds):
        if ok:
            break
        added = next_layer(content, list(keep))
        if added is None:
            break
        keep.append(tuple(added))
        content = make(keep)
        value, ok = score(content)
        history.append(entry())
        if ok or value > best[0]:
            best = (value, content, list(keep))
    value, content, keep = best  # the passing one, else the one that came closest
    return content, keep, value, history


def memoized(make: Callable[[Sequence[LayerPath]], bytes]) -> Callable[[Sequence[LayerPath]], bytes]:
    """``make`` (a float-layer set -> flatbuffer) that converts each set once, in any order: the
    search and its picker ask for the same sets again.

    Example:
    >>> make = memoized(Int8Quantizer(saved_model, representative).quantize)  # doctest: +SKIP
    """
    made: Dict[tuple, bytes] = {}

    def cached(keep: Sequence[LayerPath]) -> bytes:
        key = tuple(sorted(tuple(p) for p in keep))
        if key not in made:
            made[key] = make([tuple(p) for p in keep])
        return made[key]
    return cached


def trial_candidate(make: Callable[[Sequence[LayerPath]], bytes], error: Callable[[bytes], float],
                    proposals: Callable[[bytes, List[LayerPath]], Iterable[LayerPath]]):
    """A ``next_layer`` for `choose_float_layers` that tries each of ``proposals(content, kept)``
    in float on top of the kept ones and returns the one whose flatbuffer's ``error`` (a
    continuous figure, e.g. the outputs' mean absolute difference from float32) is lowest: what
    a layer adds in isolation (`layer_errors`) need not be what moves the answers, and a
    continuous figure ranks candidates with less noise than the agreement itself.
    """
    def pick(content: bytes, keep: List[LayerPath]) -> Optional[LayerPath]:
        seen, tried = set(), {}
        for path in proposals(content, keep):
            path = tuple(path)
            if path in seen or path in keep or any(path[:len(k)] == k for k in keep):
                continue
            seen.add(path)
            tried[path] = error(make(keep + [path]))
        return min(tried, key=tried.get) if tried else None
    return pick
