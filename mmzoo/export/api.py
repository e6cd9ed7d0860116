"""`export()`: write every artifact of a version, validate it in a fresh process, publish it
atomically as ``<out>/<name>/<version>/``.

Layout of a published version::

    <out>/<name>/<version>/                            (``litert-<version>`` for a TFLite-only export,
                                                        so TF Serving never tries to load it)
        saved_model.pb, variables/, fingerprint.pb     the SavedModel (TF Serving loads this)
        assets.extra/tf_serving_warmup_requests        PredictionLog records
        assets.extra/mmzoo.json                        the model card
        litert/model_float32.tflite (+ float16, dynamic, int8)
        litert/labels.txt, vocab.txt, tokenizer.json, tokenizer.py, mmzoo.json
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import time
import uuid
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

from mmzoo.data import from_manifest
from mmzoo.export import FORMATS, QUANTIZATIONS
from mmzoo.export import captioning as caption_lib
from mmzoo.export import examples as ex
from mmzoo.export import retrieval as retrieval_lib
from mmzoo.export.all_formats import CAPTION_FORMATS, RETRIEVAL_FORMATS, get_format, user_formats
from mmzoo.export.formats import ExportJob, Written
from mmzoo.export.model_card import CARD_FILE, build_model_card, write_model_card
from mmzoo.export.outputs import keras_reference, output_plan
from mmzoo.export.parity import test_scores
from mmzoo.export.source import load_source
from mmzoo.export.tflite import QUANTIZATION_CHECK_EXAMPLES
from mmzoo.export.validate import DEFAULT_THRESHOLDS, run_checks, validate_in_fresh_process, write_check_folder
from mmzoo.training.trainer import open_data  # manifests, shapes_vqa, TFDS, TFRecord


class ExportError(RuntimeError):
    """An export could not be made."""


class ExportValidationError(ExportError):
    """An artifact failed validation; nothing was published. ``report`` has every check."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


@dataclasses.dataclass
class ExportResult:
    """What `export` published.

    Attributes:
        name, version: the model name and its integer version.
        path: ``<out>/<name>/<version>``.
        artifacts: ``{"saved_model": path, "tflite_float32": path, ...}``.
        sizes: bytes per artifact.
        parity: per validation check: ``max_abs_diff``, ``agreement``, ``passed``...
        card: the model card (``assets.extra/mmzoo.json``).
    """

    name: str
    version: Optional[int]
    path: str
    artifacts: Dict[str, str]
    sizes: Dict[str, int]
    parity: Dict[str, dict]
    card: dict

    def summary(self) -> str:
        lines = [f"published {self.name} version {self.version} at {self.path}"]
        for key in sorted(self.artifacts):
            where = os.path.relpath(self.artifacts[key], self.path)
            lines.append(f"  {key:<18} {self.sizes.get(key, 0) / 1e6:8.3f} MB  {where}")
        for name, check in self.parity.items():
            figures = []
            if check.get("identical_captions") is not None:  # (a captioner's)
                figures.append(f"identical captions={check['identical_captions']:.1%}, token agreement="
                               f"{check['token_agreement']:.2%}")
                if check.get("bleu4") is not None:
                    figures.append(f"BLEU-4={check['bleu4']:.1f} (Keras {check['keras_bleu4']:.1f})")
            elif check.get("max_abs_diff") is not None:
                figures.append(f"max|diff|={check['max_abs_diff']:.2e}")
            if check.get("agreement") is not None:
                figures.append(f"top-1 agreement={check['agreement']:.2%}")
            if check.get("nrmse") is not None:
                figures.append(f"nrmse={check['nrmse']:.3g}")
            if check.get("recall@10") is not None:
                figures.append(f"recall@10={check['recall@10']:.3f} (Keras {check['keras_recall@10']:.3f})")
            for k, v in (check.get("scores") or {}).items():
                figures.append(f"test {k}={score_text(k, v)}")
            verdict = "ok  " if check.get("passed") else "FAIL"
            lines.append(f"  {verdict} {name:<34} {', '.join(figures)} ({check.get('examples')} examples)")
            entry = self.card.get("artifacts", {}).get(name, {})
            if entry.get("float_layers"):
                lines.append(f"       kept in float: {', '.join(f['layer'] for f in entry['float_layers'])}")
            if entry.get("worst_layers"):
                worst = entry["worst_layers"][0]
                lines.append(f"       loses the most: {worst['layer']} (+{worst['added']:.3f} relative error)")
        validation = self.card.get("validation") or {}
        for k, v in (validation.get("keras_scores") or {}).items():
            lines.append(f"  Keras test {k}: {score_text(k, v)}")
        for key, entry in (validation.get("dropped") or {}).items():
            lines.append(f"  dropped {key}: {entry.get('failure')} (recorded in the model card)")
        return "\n".join(lines)


def score_text(name: str, value: float) -> str:
    """A test score as people read it: accuracies in percent, errors (MAE) as numbers."""
    return f"{value:.2%}" if "accuracy" in name else f"{value:.4g}"


def _as_list(value, allowed: Sequence[str], what: str) -> List[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    items = [v.strip() for v in value]
    unknown = [v for v in items if v not in allowed]
    if unknown:
        raise ValueError(f"Unknown {what} {unknown}. Expected any of {list(allowed)}.")
    return list(dict.fromkeys(items))


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def export(
    source: Any,
    out: Union[str, os.PathLike] = os.path.join("export", "models"),
    name: Optional[str] = None,
    *,
    spec=None,
    formats: Union[str, Iterable[str]] = FORMATS,
    quantize: Union[str, Iterable[str], None] = (),
    data=None,
    samples: Optional[Sequence[dict]] = None,
    num_samples: int = 500,
    warmup_requests: int = 4,
    validate: Union[bool, str] = True,
    drop_failed_variants: bool = False,
    xla: bool = False,
    version: Optional[int] = None,
    tolerance: float = 1e-4,
    min_agreement: float = 0.98,
    max_nrmse: float = 0.05,
    seed: int = 0,
    verbose: bool = False,
    candidates: Optional[str] = None,
    k: int = 10,
    approximate: bool = False,
    index_precision: str = "float32",
) -> ExportResult:
    """Export a model for TF Serving (SavedModel) and for the edge (TFLite / LiteRT).

    Args:
        source: a run directory, a ``.keras`` file, an mmzoo model, or ``(model, spec)``.
        out: the artifact root; the version lands in ``<out>/<name>/<version>/``.
        name: the model name (default: the preset's name).
        spec: a `DataSpec` (or its JSON path) with the vocabulary and class names, when the
            source does not carry them.
        formats: ``saved_model`` and/or ``tflite`` (a list or ``"saved_model,tflite"``).
        quantize: extra TFLite variants beside float32: ``float16``, ``dynamic``, ``int8``.
        data: a `mmzoo.data.MultimodalData` or a manifest path: int8 calibration draws
            `mmzoo.export.examples.CALIBRATION_EXAMPLES` (or ``num_samples`` if more) from a
            seeded shuffle of its train split, validation from its test split. A run directory whose
            ``config.json`` names a manifest uses it by default.
        samples: raw examples (``{"image": bytes|path, "text": str, "audio": bytes|path,
            "tabular": [...]}``) for warmup requests, REST examples and raw-input parity
            (and for calibration / validation when there is no ``data``). Default:
            synthetic PNG / JPEG / WAV / text examples made from the spec.
        num_samples: validation examples (500: on fewer, one changed answer moves agreement
            by more than the 2 points the quantized variants may lose; calibration draws at
            least `mmzoo.export.examples.CALIBRATION_EXAMPLES`).
        warmup_requests: PredictionLog records written (one example each).
        validate: True (fresh process, the default), ``"inline"`` (same process) or False.
        drop_failed_variants: when only quantized TFLite variants fail validation, publish
            the rest and record the failed ones (figures, worst layers) in the model card's
            ``validation.dropped``; by default any failure publishes nothing.
        xla: jit-compile the model part of the SavedModel signatures.
        version: publish under this version instead of the next integer (must not exist).
        tolerance, min_agreement, max_nrmse: validation thresholds.
        seed: seeds the synthetic examples.
        candidates: a retriever's catalogue: a candidates file (`mmzoo.export.retrieval.read_candidates`);
            default: every distinct candidate of ``data`` (the run's data).
        k: how many candidates a retriever's ``search`` signature returns (fixed at export).
        approximate: also write a retriever's approximate index (FAISS, `mmzoo.export.ann`;
            ``pip install "mmzoo[ann]"``) in ``approximate_index/``, for catalogues past one graph.
        index_precision: how a retriever's ``search`` scores the index: ``float32`` (exact), or
            ``bfloat16`` for serving machines with bfloat16 matrix units (AMX / AVX512-BF16 CPUs,
            GPUs, TPUs): the same answers, the shortlist rescored in float32 with a certificate
            (`mmzoo.export.retrieval.Bfloat16Index`).

    Returns:
        An `ExportResult`. Raises `ExportValidationError` (nothing published) when a check fails.

    Example:
    >>> result = mmzoo.export("runs/exp1", out="export/models", name="shapes",
    ...                       quantize="float16,dynamic,int8")  # doctest: +SKIP
    >>> print(result.summary())
    """
    started = time.perf_counter()
    formats = _as_list(formats, user_formats(), "formats")
    quantize = [q for q in _as_list(quantize, QUANTIZATIONS, "quantizations") if q != "float32"]
    if not formats:
        raise ValueError(f"formats is empty. Expected any of {list(FORMATS)}.")
    if quantize and "tflite" not in formats:
        raise ValueError(f"quantize={quantize} needs 'tflite' in formats. Received formats={formats}.")
    if validate not in (True, False, "inline", "process"):
        raise ValueError(f"validate must be True, False or 'inline'. Received: {validate!r}")
    src = load_source(source, spec)
    spec, model = src.spec, src.model
    name = name or src.preset or model.name
    if not _NAME.match(name or ""):
        raise ValueError(
            f"name must be letters, digits, '_', '-' or '.', starting with a letter or digit. Received: {name!r}"
        )
    log = _logger(verbose)
    retriever = retrieval_lib.is_retriever(model)
    captioner = caption_lib.is_captioner(model)
    if captioner and not spec.class_names:
        raise ValueError("A captioner's export needs its caption vocabulary (the spec's class_names), to write "
                         "captions as text. Export a run directory (its data_spec.json has it) or pass spec=data.spec.")
    plan = output_plan(spec)
    thresholds = {**DEFAULT_THRESHOLDS, "tolerance": tolerance, "min_agreement": min_agreement,
                  "max_nrmse": max_nrmse}

    # ------------------------------------------------------------- examples
    if samples:
        raw_rows = ex.load_examples(samples, spec)
    else:
        raw_rows = ex.synthetic_examples(spec, max(8, warmup_requests), seed)
    if "text" in spec.modalities and not spec.vocabulary:
        raise ValueError(
            "The data spec has no vocabulary, so raw text cannot be tokenized (SavedModel "
            "signature, warmup requests, TFLite tokenizer). Export a run directory (its "
            "data_spec.json has the vocabulary) or pass spec=data.spec."
        )
    raw_inputs = ex.preprocess_examples(raw_rows, spec)
    data = _resolve_data(data, src, spec)
    calibration = validation = labels = check_inputs = None
    if data is not None:
        calibration = ex.calibration_examples(data, max(num_samples, ex.CALIBRATION_EXAMPLES), seed)
        # Quantized variants are judged while they are made on examples calibration did not see.
        check_inputs = ex.data_examples(data, "validation", QUANTIZATION_CHECK_EXAMPLES)
        for split in ("test", "validation"):
            validation, labels = ex.data_examples(data, split, num_samples, with_labels=True)
            if validation is not None:
                break
    if samples:
        calibration = calibration or raw_inputs
        validation = validation or raw_inputs
    extra = max(0, num_samples - len(raw_rows))
    calibration = calibration or ex.concat_inputs(raw_inputs, ex.random_inputs(spec, extra, seed) if extra else None)
    validation = validation or ex.concat_inputs(raw_inputs, ex.random_inputs(spec, extra, seed + 1) if extra else None)
    validation_source = "data" if data is not None else ("samples" if samples else "synthetic")
    extras = {}
    if retriever:  # its index (the catalogue), embedded with the Keras candidate tower
        if candidates is not None:
            catalogue = retrieval_lib.read_candidates(os.fspath(candidates), model, spec)
        elif data is not None:
            catalogue = retrieval_lib.catalogue_from_data(model, data)
        else:
            raise ValueError("A retriever's export needs its candidates: data=... (a pair manifest, or the run's "
                             "data) or candidates=... (a candidates file).")
        log(f"embedding {len(catalogue)} candidates")
        if index_precision not in retrieval_lib.INDEX_PRECISIONS:
            raise ValueError(f"Unknown index_precision {index_precision!r}; expected one of "
                             f"{', '.join(retrieval_lib.INDEX_PRECISIONS)}.")
        extras = {"catalogue": catalogue.embed(model), "k": int(k), "precision": index_precision}
        plan = [{"prefix": "", "task": "retrieval", "key": None, "num_classes": 1, "class_names": [],
                 "ids": catalogue.ids, "tolerance": tolerance}]

    # ------------------------------------------------------------- staging
    model_root = os.path.join(os.fspath(out), name)
    if version is not None and int(version) in existing_versions(model_root):
        raise ValueError(
            f"Version {int(version)} already exists in {model_root}; a published version is "
            "never overwritten. Leave version=None to publish the next one."
        )
    os.makedirs(model_root, exist_ok=True)
    token = uuid.uuid4().hex[:10]
    staging = os.path.join(model_root, f".staging-{token}")
    check_dir = os.path.join(model_root, f".check-{token}")
    # The servable format (the SavedModel) writes first: its size is its folder's.
    names = formats
    if retriever:
        names = [RETRIEVAL_FORMATS.get(f, f) for f in formats]
    elif captioner:
        names = [CAPTION_FORMATS.get(f, f) for f in formats]
    chosen = sorted((get_format(f) for f in names), key=lambda fmt: not fmt.servable)
    if retriever or captioner:
        from mmzoo.export.source import serving_model

        model = serving_model(model, spec=spec)  # (the SavedModel traces the CPU copy)
    job = ExportJob(model=model, spec=spec, name=name, staging=staging, scratch=check_dir + "-scratch",
                    raw_rows=raw_rows, calibration=calibration, check_inputs=check_inputs, quantize=quantize, xla=xla,
                    warmup_requests=warmup_requests, log=log, thresholds=thresholds, extras=extras)
    written: Dict[str, Written] = {}
    try:
        for fmt in chosen:
            written[fmt.name] = fmt.write(job)
        if retriever and approximate:
            written["approximate_index"] = retrieval_lib.write_approximate_index(job)
        elif approximate:
            raise ValueError("approximate=True is for retrievers (their candidate index).")
        os.makedirs(staging, exist_ok=True)
        artifacts = {k: v for w in written.values() for k, v in w.artifacts.items()}

        # --------------------------------------------------------- validation
        report = None
        if validate:
            log("validating" + (" in a fresh process" if validate is True or validate == "process" else ""))
            if retriever:
                reference = retrieval_lib.keras_reference(model, validation)
                raw_reference = retrieval_lib.keras_raw_reference(model, raw_inputs, extras["catalogue"], extras["k"])
            elif captioner:
                reference = caption_lib.keras_reference(model, validation)
                raw_reference = caption_lib.keras_reference(model, raw_inputs, beam=True)
            else:
                reference = keras_reference(model, validation, plan)
                raw_reference = keras_reference(model, raw_inputs, plan)
            write_check_folder(
                check_dir, artifacts={k: v for w in written.values() for k, v in w.checks.items()}, plan=plan,
                raw_rows=raw_rows, raw_reference=raw_reference, inputs=validation,
                reference=reference, thresholds=thresholds,
                warmup_rows=min(warmup_requests, len(raw_rows)), labels=labels,
            )
            if validate == "inline":
                report = run_checks(check_dir)
                report["fresh_process"] = False
            else:
                report = validate_in_fresh_process(check_dir)
            report["inputs"] = {"validation": validation_source, "examples": len(next(iter(validation.values()))),
                                "raw_examples": len(raw_rows), "labelled": labels is not None}
            if labels is not None and captioner:
                report["keras_scores"] = caption_lib.keras_scores(model, reference, labels)
            elif labels is not None:
                report["keras_scores"] = (retrieval_lib.keras_scores(reference, labels) if retriever
                                          else test_scores(reference, labels, plan))
            if not report["passed"]:
                failed = [c for c in report["checks"] if not c["passed"]]
                variants = {k: v for w in written.values() for k, v in w.card.items()}
                droppable = bool(failed) and all(_is_quantized(c["check"], variants) for c in failed)
                if not (drop_failed_variants and droppable):
                    raise ExportValidationError(_failure_message(report, failed, variants, droppable), report)
                report["dropped"] = _drop_variants([c["check"] for c in failed], written, log)
                for c in failed:
                    c["dropped"] = True
                    report["dropped"][c["check"]].update(
                        {k: c.get(k) for k in ("failure", "agreement", "nrmse", "scores", "examples")})
                report["passed"], report["failures"] = True, []
                artifacts = {k: v for w in written.values() for k, v in w.artifacts.items()}

        # --------------------------------------------------------- card and publish
        artifact_card = {k: v for w in written.values() for k, v in w.card.items()}
        sizes = {k: artifact_card[k]["bytes"] for k in artifacts}
        sections = {k: v for w in written.values() for k, v in w.sections.items()}
        options = {"formats": formats, "quantize": quantize, "xla": bool(xla), "num_samples": num_samples,
                   "validate": validate, "seconds": None}
        card = build_model_card(
            name=name, version=None, source=src, spec=spec,
            signatures={f: w.signatures for f, w in written.items()},
            artifacts=artifact_card, validation=report, warmup=sections.get("warmup"),
            rest_rows=raw_rows[:1], options=options,
            rest_spec=retrieval_lib.query_spec(model, spec) if retriever else None,
        )
        if retriever:
            card["retrieval"] = {"sides": model.sides, "k": artifact_card.get("saved_model", {}).get("index", {}).get(
                "k", min(extras["k"], len(extras["catalogue"]))), "candidates": len(extras["catalogue"]),
                "index_source": extras["catalogue"].source, "index_precision": extras["precision"]}
        card["variants"] = variant_table(artifact_card, report)
        card, final = _publish(model_root, staging, version, card, chosen, started)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(check_dir, ignore_errors=True)
        shutil.rmtree(check_dir + "-scratch", ignore_errors=True)
    final_artifacts = {k: os.path.normpath(os.path.join(final, os.path.relpath(v, staging)))
                       for k, v in artifacts.items()}
    figures = ("max_abs_diff", "mean_abs_diff", "agreement", "nrmse", "scores", "passed", "examples", "recall@10",
               "keras_recall@10", "recall_drop", "same_top_k", "identical_captions", "token_agreement", "bleu4",
               "keras_bleu4", "bleu_drop", "next_token_agreement")
    parity = {c["check"]: {k: c.get(k) for k in figures}
              for c in (report or {}).get("checks", [])}
    log(f"published {final} in {time.perf_counter() - started:.1f}s")
    return ExportResult(name, card["version"], final, final_artifacts, sizes, parity, card)


def variant_table(artifacts: dict, report: Optional[dict]) -> Dict[str, dict]:
    """Per TFLite variant, what a person picks one by: size, agreement with Keras and test
    accuracy (from validation), what int8 kept in float and the layers that lose the most
    (the model card's ``variants``; dropped variants are in ``validation.dropped``).

    Example:
    >>> load_model_card("export/models/shapes/1")["variants"]["tflite_int8"]["agreement"]  # doctest: +SKIP
    0.994
    """
    checks = {c["check"]: c for c in (report or {}).get("checks", [])}
    table = {}
    for key, entry in artifacts.items():
        if "quantization" not in entry:
            continue
        float32 = artifacts.get(key.rsplit("_", 1)[0] + "_float32", {}).get("bytes")  # (a retriever: per tower)
        check = checks.get(key, {})
        table[key] = {
            "quantization": entry["quantization"],
            "bytes": entry["bytes"],
            "size_vs_float32": round(entry["bytes"] / float32, 3) if float32 else None,
            "agreement": check.get("agreement"),
            "max_abs_diff": check.get("max_abs_diff"),
            "test_scores": check.get("scores"),
            "int8_mode": entry.get("int8_mode"),
            "float_layers": [f["layer"] for f in entry.get("float_layers", [])],
            "worst_layers": entry.get("worst_layers", [])[:3],
            # a captioner's: next tokens after Keras' prefix, free-running captions, BLEU-4 lost
            **{k: check[k] for k in ("next_token_agreement", "identical_captions", "bleu_drop") if k in check},
        }
    return table


def _is_quantized(check: str, variants: dict) -> bool:
    return check in variants and variants[check].get("quantization") not in (None, "float32")


def _failure_message(report: dict, failed: List[dict], variants: dict, droppable: bool) -> str:
    """What failed, by how much, where the error enters, and what to do."""
    lines = ["Validation failed; nothing was published:"]
    keras = report.get("keras_scores") or {}
    for check in failed:
        lines.append(f"  {check['failure']}")
        entry = variants.get(check["check"], {})
        scores = check.get("scores") or {}
        for k, v in scores.items():
            lines.append(f"    test {k}: {score_text(k, v)} (Keras: {score_text(k, keras.get(k, float('nan')))})")
        worst = entry.get("worst_layers") or []
        if worst:
            lines.append("    layers that lose the most: " + ", ".join(
                f"{w['layer']} (+{w['added']:.2f} relative error)" for w in worst[:3]))
        if entry.get("float_layers"):
            lines.append("    kept in float: " + ", ".join(f["layer"] for f in entry["float_layers"]))
    if droppable:
        lines.append("Only quantized variants failed: export(..., drop_failed_variants=True) (mmzoo export "
                     "--drop-failed-variants) publishes the variants that passed and records these in the "
                     "model card; more calibration data (num_samples / --num-samples) may also help.")
    return "\n".join(lines)


def _drop_variants(keys: List[str], written: Dict[str, Written], log) -> Dict[str, dict]:
    """Remove failed quantized variants from the staged version; what they were, for the card."""
    dropped = {}
    for w in written.values():
        for key in keys:
            if key in w.artifacts:
                path = w.artifacts.pop(key)
                if os.path.exists(path):
                    os.remove(path)
                entry = w.card.pop(key)
                w.checks.pop(key, None)
                dropped[key] = {k: v for k, v in entry.items() if k not in ("path", "ops")}
                log(f"dropped {key}: it failed validation (recorded in the model card)")
    return dropped


def _logger(verbose: bool):
    def log(message: str) -> None:
        if verbose:
            print(f"[mmzoo export] {message}", flush=True)

    return log


def _resolve_data(data, src, spec):
    """A MultimodalData from ``data`` (object or manifest path) or the run's recorded data."""
    if data is None:
        recorded = (src.config or {}).get("data")
        if not recorded:
            return None
        try:
            return open_data(recorded, spec=spec)
        except Exception:  # noqa: BLE001  (data moved or gone: fall back to the samples)
            return None
    if isinstance(data, (str, os.PathLike)):
        return from_manifest(os.fspath(data), spec=spec)
    if not hasattr(data, "dataset") or not hasattr(data, "splits"):
        raise ValueError(
            "data must be a mmzoo.data.MultimodalData (from_manifest / from_tfds / "
            f"from_tfrecord) or a manifest path. Received: {type(data).__name__}"
        )
    return data


LITE_ONLY_PREFIX = "litert-"


def version_folder(version: int, formats) -> str:
    """``<version>`` when the version holds a format TF Serving loads (the SavedModel);
    ``litert-<version>`` otherwise.

    TF Serving loads every numeric folder under the model's base path, so a TFLite-only
    export must not take a numeric name there.
    """
    servable = any(get_format(f).servable for f in formats)
    return str(int(version)) if servable else f"{LITE_ONLY_PREFIX}{int(version)}"


def existing_versions(model_root: str) -> List[int]:
    """Integer versions already published under ``<out>/<name>`` (``N`` and ``litert-N``)."""
    if not os.path.isdir(model_root):
        return []
    found = []
    for d in os.listdir(model_root):
        number = d[len(LITE_ONLY_PREFIX):] if d.startswith(LITE_ONLY_PREFIX) else d
        if number.isdigit() and os.path.isdir(os.path.join(model_root, d)):
            found.append(int(number))
    return sorted(found)


@contextlib.contextmanager
def _version_lock(model_root: str):
    """An exclusive lock on ``<out>/<name>/.mmzoo-export.lock`` while a version is chosen."""
    path = os.path.join(model_root, ".mmzoo-export.lock")
    with open(path, "a+") as handle:
        try:
            import fcntl  # optional: POSIX only
        except ImportError:  # Windows: exporting concurrently into one folder is unsupported
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fsync_tree(root: str) -> None:
    for folder, _, files in os.walk(root):
        for f in files:
            fd = os.open(os.path.join(folder, f), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _publish(model_root: str, staging: str, version: Optional[int], card: dict, formats, started):
    """Pick the version, write the card (into each format's folder), fsync and rename the
    staging folder (atomic)."""
    with _version_lock(model_root):
        taken = existing_versions(model_root)
        if version is None:
            version = (max(taken) + 1) if taken else 1
        elif int(version) < 1:
            raise ValueError(f"version must be a positive integer. Received: {version}")
        final = os.path.join(model_root, version_folder(version, [f.name for f in formats]))
        if int(version) in taken:
            raise ExportError(
                f"Version {int(version)} already exists in {model_root}; a published version is never overwritten."
            )
        card["version"] = int(version)
        card["options"]["seconds"] = round(time.perf_counter() - started, 1)
        for fmt in formats:
            write_model_card(os.path.join(staging, fmt.card_dir, CARD_FILE), card)
        _fsync_tree(staging)
        os.rename(staging, final)
    return card, final
