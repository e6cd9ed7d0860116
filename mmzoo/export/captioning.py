"""A captioner's exports: the SavedModel with the decoding loop in the graph, and the LiteRT
flatbuffer whose ``encode`` / ``decode_step`` signatures an app loops over.

SavedModel signatures (raw inputs as everywhere: ``image`` encoded bytes [N], ``audio`` WAV
bytes [N]):

- ``serving_default``: greedy decoding -> ``caption`` string [N], ``token_ids`` int32
  [N, caption_len + 1] (the end token, then 0), ``score`` float32 [N] (summed log probability);
- ``beam_search``: the same outputs by beam search (beam width and length penalty fixed at export);
- ``generate_preprocessed``: greedy from the model's own inputs (pixels, PCM);
- ``preprocess``: raw inputs -> the model's inputs.

The loop is a ``tf.while_loop`` of fixed maximum length over the decoder's cache: it runs on CPU
without XLA, with TF Serving's op set (no py_function). LiteRT (builtins only, batch 1):
``litert/captioner_<quantization>.tflite`` with ``vocabulary.txt`` and the reference loop
``caption_loop.py`` (`mmzoo.export.lite_caption_loop`).

Example:
>>> mmzoo.export("runs/captions", quantize="float16,dynamic")   # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import shutil
from typing import Dict, List

import numpy as np
import tensorflow as tf

from mmzoo.data.text import CJK_RANGES, END_ID, START_ID, _re2_class, caption_tokens, join_tokens
from mmzoo.export.examples import raw_batch
from mmzoo.export.formats import Check, CheckContext, ExportFormat, ExportJob, Written, register_format
from mmzoo.export.lite_caption_loop import greedy_caption
from mmzoo.export.saved_model import (
    EXTRA_DIR,
    directory_size,
    model_input_specs,
    raw_input_specs,
    write_archive,
    write_warmup,
)
from mmzoo.export.tflite import LITE_DIR, TFLiteModel, _convert, strip_tensor_names
from mmzoo.export.warmup import read_warmup_requests
from mmzoo.spec import DataSpec
from mmzoo.tasks import caption_metrics

#: the SavedModel's beam search (fixed at export)
BEAM_WIDTH = 4
LENGTH_PENALTY = 0.6
LITE_FILES = {q: f"captioner_{q}.tflite" for q in ("float32", "float16", "dynamic", "int8")}
LOOP_FILE = "caption_loop.py"
LITE_SIGNATURES = ("encode", "decode_step")
#: a quantized flatbuffer's greedy tokens must agree with float32 Keras on this share of positions,
#: and its BLEU-4 against the references stay within this many points
MAX_BLEU_DROP = 1.0


def is_captioner(model) -> bool:
    return getattr(model, "task_name", "") == "captioner"


# ---------------------------------------------------------------------- text in the graph
def tf_captions(ids, vocabulary: List[str]):
    """Token ids [N, T] -> caption strings [N] as `mmzoo.data.text.join_tokens` writes them:
    tokens up to the first end, a space between two unless the second is closing punctuation
    or either side is CJK."""
    vocab = tf.constant(vocabulary)
    ids = tf.convert_to_tensor(ids, tf.int32)
    tokens = tf.gather(vocab, tf.clip_by_value(ids, 0, len(vocabulary) - 1))
    ended = tf.cumsum(tf.cast(tf.equal(ids, END_ID), tf.int32), axis=1, exclusive=True) > 0
    keep = tf.logical_not(ended) & tf.not_equal(ids, END_ID) & tf.not_equal(ids, 0) & tf.not_equal(ids, START_ID)
    cjk = _re2_class(CJK_RANGES + ((0x3000, 0x303F), (0xFF01, 0xFF64)))
    starts_cjk = tf.strings.regex_full_match(tokens, f"{cjk}.*")
    ends_cjk = tf.strings.regex_full_match(tokens, f".*{cjk}")
    closing = tf.strings.regex_full_match(tokens, r"[.,;:!?)\]}%].*")
    kept = tf.ragged.boolean_mask(tokens, keep)
    ends = tf.ragged.boolean_mask(ends_cjk, keep)
    prev_cjk = tf.concat([tf.zeros_like(ends[:, :1]), ends[:, :-1]], axis=1)  # the previous kept token's end
    first = tf.concat([tf.ones_like(ends[:, :1]), tf.zeros_like(ends[:, 1:])], axis=1)
    space = tf.logical_not(first | tf.ragged.boolean_mask(closing | starts_cjk, keep) | prev_cjk)
    pieces = tf.where(space, tf.strings.join([" ", kept]), kept)
    return tf.strings.reduce_join(pieces, axis=1)


# ---------------------------------------------------------------------- SavedModel
def caption_functions(copy, spec: DataSpec, beam_width: int = BEAM_WIDTH,
                      length_penalty: float = LENGTH_PENALTY) -> dict:
    """The signatures' tf.functions and what they must track."""
    vocabulary = list(spec.class_names)
    pre = copy.preprocessor
    greedy = copy.decode_function(1)
    beam = copy.decode_function(beam_width, length_penalty)
    modalities = copy.modalities

    def outputs(ids, score):
        return {"caption": tf_captions(ids, vocabulary), "token_ids": ids, "score": score}

    def serve(inputs):
        return outputs(*greedy({m: v for m, v in pre.serve(dict(inputs)).items() if m in modalities}))

    def serve_beam(inputs):
        return outputs(*beam({m: v for m, v in pre.serve(dict(inputs)).items() if m in modalities}))

    def preprocessed(inputs):
        return outputs(*greedy(dict(inputs)))

    def preprocess(inputs):
        return pre.serve(dict(inputs))

    raw, model = raw_input_specs(spec), model_input_specs(spec)
    functions = {
        "serving_default": tf.function(serve, input_signature=[raw], autograph=False),
        "beam_search": tf.function(serve_beam, input_signature=[raw], autograph=False),
        "generate_preprocessed": tf.function(preprocessed, input_signature=[model], autograph=False),
        "preprocess": tf.function(preprocess, input_signature=[raw], autograph=False),
    }
    return {"functions": functions, "trackables": []}


def keras_reference(model, inputs: dict, beam: bool = False) -> Dict[str, np.ndarray]:
    """Keras `generate_ids` of model inputs (greedy, and beam search as exported), decoded by
    the graph the SavedModel holds (no XLA), so that near ties break the same way."""
    x = {m: inputs[m] for m in model.modalities}
    ids, score = model.generate_ids(x, jit_compile=False)
    out = {"token_ids": ids, "score": score}
    if beam:
        out["beam_token_ids"], out["beam_score"] = model.generate_ids(x, BEAM_WIDTH, LENGTH_PENALTY,
                                                                      jit_compile=False)
    return out


def keras_scores(model, reference: dict, labels) -> Dict[str, float]:
    """BLEU-4 and exact match of Keras' greedy captions of the validation sample against its labels."""
    vocabulary = model.vocabulary
    got = [caption_tokens(r, vocabulary) for r in reference["token_ids"]]
    refs = [[caption_tokens(r, vocabulary)] for r in labels]
    return {"bleu4": caption_metrics.bleu4(got, refs), "exact_match": caption_metrics.exact_match(got, refs)}


def caption_figures(got_ids, ref_ids, vocabulary: List[str], references=None) -> dict:
    """How far generated ids are from the reference ids: the share of identical captions, the
    share of agreeing token positions (up to the longer of the two), and BLEU-4 of both against
    ``references`` (token id rows) when given."""
    got = [caption_tokens(r, vocabulary) for r in got_ids]
    ref = [caption_tokens(r, vocabulary) for r in ref_ids]
    same = [g == r for g, r in zip(got, ref)]
    agree = total = 0
    for g, r in zip(got, ref):
        n = max(len(g), len(r)) + 1  # (+ the end token)
        g, r = g + ["<end>"] + [""] * n, r + ["<end>"] + [""] * n
        agree += sum(a == b for a, b in zip(g[:n], r[:n]))
        total += n
    figures = {"identical_captions": float(np.mean(same)) if same else 1.0,
               "token_agreement": agree / max(total, 1), "examples": len(same),
               "max_abs_diff": 0.0 if all(same) else float("inf")}
    if references is not None:
        refs = [[caption_tokens(r, vocabulary)] for r in references]
        figures["bleu4"] = caption_metrics.bleu4(got, refs)
        figures["keras_bleu4"] = caption_metrics.bleu4(ref, refs)
        figures["bleu_drop"] = figures["keras_bleu4"] - figures["bleu4"]
    return figures


def write_caption_saved_model(copy, spec: DataSpec, path: str) -> dict:
    built = caption_functions(copy, spec)
    return write_archive(path, [copy, *built["trackables"]], built["functions"])


class CaptionSavedModelFormat(ExportFormat):
    """A captioner's SavedModel (greedy and beam decoding inside the graph)."""

    name = "caption_saved_model"
    servable = True
    card_dir = EXTRA_DIR

    def write(self, job: ExportJob) -> Written:
        job.log(f"writing the SavedModel (greedy and beam-{BEAM_WIDTH} decoding in the graph)")
        signatures = write_caption_saved_model(job.model, job.spec, job.staging)
        warm_path, warmup = write_warmup(job)
        return Written(
            artifacts={"saved_model": job.staging},
            card={"saved_model": {"path": ".", "bytes": directory_size(job.staging),
                                  "decoding": {"max_tokens": job.model.decoder.max_length, "beam_width": BEAM_WIDTH,
                                               "length_penalty": LENGTH_PENALTY}}},
            signatures=signatures,
            checks={"saved_model": {"format": self.name, "path": job.staging, "spec": job.spec.to_dict(),
                                    "warmup": warm_path}},
            sections={"warmup": warmup},
        )

    def checks(self, key: str, entry: dict, ctx: CheckContext) -> List[Check]:
        spec = DataSpec.from_dict(entry["spec"])
        vocabulary = list(spec.class_names)
        loaded = tf.saved_model.load(entry["path"])
        modalities = list(spec.modalities)

        def call(signature, batch):
            out = loaded.signatures[signature](**{m: tf.constant(v) for m, v in batch.items()})
            return {k: v.numpy() for k, v in out.items()}

        def check_text(out):
            texts = [t.decode("utf-8") for t in out["caption"]]
            expected = [join_tokens(caption_tokens(r, vocabulary)) for r in out["token_ids"]]
            if texts != expected:
                bad = next(i for i, (a, b) in enumerate(zip(texts, expected)) if a != b)
                raise ValueError(f"caption {bad} is {texts[bad]!r}, its token_ids read {expected[bad]!r}")

        def raw_check(signature, prefix):
            def run():
                out = call(signature, raw_batch(ctx.raw_rows, spec))
                check_text(out)
                return caption_figures(out["token_ids"], ctx.raw_reference[f"{prefix}token_ids"], vocabulary)
            return run

        def preprocessed_check():
            n = ctx.examples
            outs = [call("generate_preprocessed", {m: ctx.inputs[m][s:s + 64] for m in modalities})
                    for s in range(0, n, 64)]
            ids = np.concatenate([o["token_ids"] for o in outs])
            return caption_figures(ids, ctx.reference["token_ids"], vocabulary, ctx.labels)

        def warmup_check():
            records_ = read_warmup_requests(entry["warmup"])
            if not records_:
                raise ValueError("the warmup file has no records")
            ids = np.concatenate([call(r["signature_name"] or "serving_default", r["inputs"])["token_ids"]
                                  for r in records_])
            return caption_figures(ids, ctx.raw_reference["token_ids"][:len(ids)], vocabulary)

        n = len(ctx.raw_rows)
        return [
            ("saved_model.serving_default", "captions", n, raw_check("serving_default", "")),
            ("saved_model.beam_search", "captions", n, raw_check("beam_search", "beam_")),
            ("saved_model.generate_preprocessed", "captions", ctx.examples, preprocessed_check),
            ("saved_model.warmup_requests", "captions", ctx.warmup_rows, warmup_check),
        ]


# ---------------------------------------------------------------------- LiteRT
def lite_functions(copy) -> Dict[str, tf.types.experimental.GenericFunction]:
    """``encode`` and ``decode_step`` for batch 1 (what the flatbuffer's signatures run)."""
    spec = copy.backbone.spec
    encoder, decoder = copy.encoder_model(), copy.decoder
    steps = int(encoder.output.shape[1])
    cache_shapes = decoder.cache_shapes(steps)
    shapes, dtypes = spec.input_shapes(), spec.input_dtypes()
    model_specs = {m: tf.TensorSpec([1, *shapes[m]], dtypes[m], name=m) for m in copy.modalities}
    cache_specs = {f"cache_{k}": tf.TensorSpec([1, *s], tf.float32, name=f"cache_{k}") for k, s in cache_shapes.items()}

    def encode(inputs):
        cache = decoder.init_cache(encoder(dict(inputs), training=False))
        return {f"cache_{k}": tf.cast(v, tf.float32) for k, v in cache.items()}

    def decode_step(inputs):
        cache = {k[len("cache_"):]: inputs[k] for k in cache_specs}
        logits, cache = decoder.step(inputs["token"], inputs["index"][0], cache)
        return {"logits": logits, **{f"cache_{k}": v for k, v in cache.items()}}

    step_specs = {"token": tf.TensorSpec([1], tf.int32, name="token"),
                  "index": tf.TensorSpec([1], tf.int32, name="index"), **cache_specs}
    return {"encode": tf.function(encode, input_signature=[model_specs], autograph=False),
            "decode_step": tf.function(decode_step, input_signature=[step_specs], autograph=False)}


class LiteCaptioner:
    """A captioner's flatbuffer with its greedy loop (`mmzoo.export.lite_caption_loop`).

    Example:
    >>> lite = LiteCaptioner("export/models/captions/1/litert/captioner_float32.tflite", 38)  # doctest: +SKIP
    >>> ids = lite.generate_ids({"image": pixels})
    """

    def __init__(self, path: str, max_length: int):
        self.model = TFLiteModel(path, signature="encode")
        self.encode = self.model.interpreter.get_signature_runner("encode")
        self.decode_step = self.model.interpreter.get_signature_runner("decode_step")
        self.max_length = int(max_length)

    def generate_ids(self, inputs: Dict[str, np.ndarray]) -> np.ndarray:
        n = len(next(iter(inputs.values())))
        out = np.zeros((n, self.max_length), np.int32)
        details = self.encode.get_input_details()
        for i in range(n):
            x = {m: np.ascontiguousarray(inputs[m][i:i + 1].astype(details[m]["dtype"], copy=False)) for m in details}
            ids, _ = greedy_caption(self.encode, self.decode_step, x, self.max_length)
            out[i, :len(ids)] = ids
        return out


def _lite_representative(copy, calibration: dict, limit: int = 64):
    """int8 calibration for both signatures: the encoder on training inputs, the decode step on
    the states greedy decoding passes through."""
    fns = lite_functions(copy)
    samples = []
    n = min(limit, len(next(iter(calibration.values()))))
    for i in range(n):
        x = {m: calibration[m][i:i + 1] for m in copy.modalities}
        samples.append(("encode", x))
        cache = {k: v.numpy() for k, v in fns["encode"](x).items()}
        token = np.array([START_ID], np.int32)
        for index in range(copy.decoder.max_length):
            step = {"token": token, "index": np.array([index], np.int32), **cache}
            samples.append(("decode_step", step))
            out = {k: v.numpy() for k, v in fns["decode_step"](step).items()}
            best = int(np.argmax(out.pop("logits")[0]))
            if best == END_ID:
                break
            token, cache = np.array([best], np.int32), out
    return samples


#: a quantized captioner is searched until its captions agree this well with float32's on the
#: check examples (the gate's 98% and a margin: the gate's own sample is another one)
INT8_SEARCH_AGREEMENT = 0.99
INT8_CHECK_EXAMPLES = 128


def stepwise_logits(lite: "LiteCaptioner", inputs: Dict[str, np.ndarray], paths: np.ndarray) -> tuple:
    """``decode_step``'s logits along given token paths (each row: token ids up to the end id,
    then 0), every step fed the path's previous token (teacher forcing). Returns ``(logits
    [steps, vocabulary], the path's token at each step [steps])``: how far a quantized
    flatbuffer's steps are from float32's, without one changed token changing the rest."""
    details = lite.encode.get_input_details()
    rows, wanted = [], []
    for i, path in enumerate(np.asarray(paths)):
        x = {m: np.ascontiguousarray(inputs[m][i:i + 1].astype(details[m]["dtype"], copy=False)) for m in details}
        cache = dict(lite.encode(**x))
        token = np.array([START_ID], np.int32)
        for index, next_id in enumerate(path[:lite.max_length]):
            out = dict(lite.decode_step(token=token, index=np.array([index], np.int32), **cache))
            rows.append(np.asarray(out.pop("logits"), np.float32)[0])
            wanted.append(int(next_id))
            if next_id in (END_ID, 0):
                break
            token, cache = np.array([next_id], np.int32), out
    return np.stack(rows), np.asarray(wanted)


def next_token_agreement(lite: "LiteCaptioner", inputs: Dict[str, np.ndarray], paths: np.ndarray) -> float:
    """The share of decoding steps at which ``lite`` picks the same next token as ``paths`` (the
    reference captions) after the same prefix. Unlike comparing free-running captions, a
    near tie flipped at one step (two templates equally likely: "four shapes: ..." / "there are
    four shapes, ...") costs that step, not the whole caption.

    Example:
    >>> next_token_agreement(LiteCaptioner("captioner_int8.tflite", 38), x, keras_ids)  # doctest: +SKIP
    0.996
    """
    logits, wanted = stepwise_logits(lite, inputs, paths)
    return float(np.mean(logits.argmax(-1) == wanted))


def int8_captioner(copy, source: str, calibration: dict, check: dict, float32_path: str, vocabulary: List[str],
                   rounds: int = 3, log=None) -> tuple:
    """Full int8 ``encode`` + ``decode_step`` that keep float32's captions.

    Kept in float32 from the start: the decoder's own arithmetic (the ops outside every layer:
    attention scores, the causal mask's fill, softmax, the cache writes; 8 bits cannot hold a
    mask's -1e9 next to real scores) and the layers of `mmzoo.export.quantize.FLOAT_LAYERS`
    (layer norms). While the captions on ``check`` inputs (examples calibration did not see)
    agree less than `INT8_SEARCH_AGREEMENT` with float32's (`next_token_agreement`), each round keeps in float the
    decoder layer (by role across blocks, e.g. every ``cross_output``) whose return brings the
    steps' logits closest to float32's, measured along float32's own captions (one changed
    token changes a whole greedy caption: too noisy a guide on its own).

    Returns the flatbuffer and its card entries: ``int8_mode``, ``float_layers``, ``search``
    (next-token agreement and the logits' relative error per round), ``check_examples``.

    Example:
    >>> content, card = int8_captioner(model, src, calib, check, "captioner_float32.tflite", vocab)  # doctest: +SKIP
    """
    from mmzoo.export import quantize as quantize_lib

    samples = _lite_representative(copy, calibration)
    calibrated = quantize_lib.calibrate(source, lambda: iter(samples), list(LITE_SIGNATURES))
    float_paths = quantize_lib.float_layer_paths(copy)
    floats = {path[-1] for path in float_paths}
    roles: Dict[str, set] = {}
    for layer in copy.decoder._flatten_layers(include_self=False, recursive=False):
        if layer.weights and layer.name not in floats:
            roles.setdefault(re.sub(r"^block_\d+_", "", layer.name), set()).add(layer.name)
    n = min(INT8_CHECK_EXAMPLES, len(next(iter(check.values()))))
    inputs = {m: np.asarray(check[m][:n]) for m in copy.modalities}
    float32 = LiteCaptioner(float32_path, copy.decoder.max_length)
    reference = float32.generate_ids(inputs)
    steered = {m: v[:n // 2] for m, v in inputs.items()}  # the logits' error: half the examples suffice
    reference_logits, _ = stepwise_logits(float32, steered, reference[:n // 2])
    scale = float(np.sqrt(np.mean(np.square(reference_logits - reference_logits.mean(-1, keepdims=True))))) + 1e-12

    @quantize_lib.memoized
    def make(kept_roles) -> bytes:
        leaves = floats | {name for (role,) in kept_roles for name in roles[role]}

        def keep_float(tensor_name: str) -> bool:
            parts = quantize_lib._segments(tensor_name)
            return all(len(p) == 1 for p in parts) or any(quantize_lib._under(p, (leaf,)) for p in parts
                                                          for leaf in leaves)
        return quantize_lib.quantize_calibrated(calibrated, keep_float)

    errors: Dict[bytes, float] = {}

    def logits_error(content: bytes) -> float:
        if content not in errors:
            got, _ = stepwise_logits(LiteCaptioner(content, copy.decoder.max_length), steered, reference[:n // 2])
            errors[content] = float(np.sqrt(np.mean(np.square(got - reference_logits)))) / scale
        return errors[content]

    def score(content: bytes):
        agreement = next_token_agreement(LiteCaptioner(content, copy.decoder.max_length), inputs, reference)
        if log and agreement < INT8_SEARCH_AGREEMENT:
            log(f"int8 captioner: {agreement:.1%} of next tokens agree on {n} check examples")
        return agreement, agreement >= INT8_SEARCH_AGREEMENT

    # each round: the role whose layers, kept in float too, bring the logits closest to float32's
    next_role = quantize_lib.trial_candidate(make, logits_error, lambda c, kept: [(role,) for role in sorted(roles)])
    content, kept, _, search = quantize_lib.choose_float_layers(
        make, score, [], next_role, rounds=rounds,
        describe=lambda c: {"logits_error": round(logits_error(c), 4)})
    for entry in search:  # the captioner's figure has its own name
        entry["next_token_agreement"] = entry.pop("agreement")
    float_layers = [{"layer": "decoder arithmetic outside layers",
                     "why": "attention scores, the causal mask's fill, softmax and the cache writes"}]
    float_layers += [{"layer": "/".join(path), "why": why} for path, why in float_paths.items()]
    float_layers += [{"layer": f"decoder/{name}", "why": "kept in float by the search: largest gain in the logits"}
                     for (role,) in kept for name in sorted(roles[role])]
    return content, {"int8_mode": "selective", "float_layers": float_layers, "search": search,
                     "check_examples": n}


class CaptionLiteFormat(ExportFormat):
    """A captioner's builtins-only flatbuffers (``encode`` + ``decode_step``), the caption
    vocabulary and the reference loop, in ``litert/``."""

    name = "caption_tflite"
    card_dir = LITE_DIR

    def write(self, job: ExportJob) -> Written:
        lite_dir = os.path.join(job.staging, LITE_DIR)
        os.makedirs(lite_dir, exist_ok=True)
        written = Written()
        source = os.path.join(job.scratch, "caption_lite")
        write_archive(source, [job.model], lite_functions(job.model))
        for q in ["float32", *job.quantize]:
            job.log(f"converting TFLite {q} (encode, decode_step)")
            extra = {}
            if q == "int8":
                content, extra = int8_captioner(
                    job.model, source, job.calibration, job.check_inputs or job.calibration,
                    written.artifacts["tflite_float32"], list(job.spec.class_names), log=job.log)
            else:
                content = _convert(source, q, None, [tf.lite.OpsSet.TFLITE_BUILTINS],
                                   signature_keys=list(LITE_SIGNATURES))
            path = os.path.join(lite_dir, LITE_FILES[q])
            with open(path, "wb") as f:
                f.write(strip_tensor_names(content) if q == "int8" else content)
            key = f"tflite_{q}"
            written.artifacts[key] = path
            written.card[key] = {"path": os.path.relpath(path, job.staging), "bytes": os.path.getsize(path),
                                 "quantization": q, "ops": TFLiteModel(path, signature="encode").op_names(),
                                 "signatures": ["encode", "decode_step"], **extra}
            written.checks[key] = {"format": self.name, "path": path, "quantization": q,
                                   "max_length": job.model.decoder.max_length,
                                   "vocabulary": list(job.spec.class_names)}
        with open(os.path.join(lite_dir, "vocabulary.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(job.spec.class_names) + "\n")
        here = os.path.dirname(os.path.abspath(__file__))
        shutil.copyfile(os.path.join(here, "lite_caption_loop.py"), os.path.join(lite_dir, LOOP_FILE))
        interpreter = TFLiteModel(written.artifacts["tflite_float32"], signature="encode").interpreter
        written.signatures = {name: {"inputs": sorted(interpreter.get_signature_runner(name).get_input_details()),
                                     "outputs": sorted(interpreter.get_signature_runner(name).get_output_details())}
                              for name in ("encode", "decode_step")}
        written.card["litert_files"] = {"path": LITE_DIR, "files": ["vocabulary.txt", LOOP_FILE]}
        return written

    def checks(self, key: str, entry: dict, ctx: CheckContext) -> List[Check]:
        kind = "captions" if entry["quantization"] == "float32" else "quantized_captions"
        modalities = [m for m in ctx.inputs if m in ("image", "audio")]

        def run():
            lite = LiteCaptioner(entry["path"], entry["max_length"])
            inputs = {m: ctx.inputs[m] for m in modalities}
            figures = caption_figures(lite.generate_ids(inputs), ctx.reference["token_ids"], entry["vocabulary"],
                                      ctx.labels)
            if kind == "quantized_captions":
                figures["next_token_agreement"] = next_token_agreement(lite, inputs, ctx.reference["token_ids"])
            return figures

        return [(key, kind, ctx.examples, run)]


register_format(CaptionSavedModelFormat())
register_format(CaptionLiteFormat())
