"""Validation before publishing (the InfraValidator idea).

The exporter writes a check folder (reference inputs and the Keras model's outputs) and runs
``python -m mmzoo.export.validate CHECK_DIR`` in a fresh process, which loads each artifact
from disk, replays the warmup requests and the validation sample, and compares:

- float32 artifacts (SavedModel ``serving_default`` on raw inputs, its warmup requests,
  ``predict_preprocessed``, TFLite float32): max abs difference <= ``tolerance`` (1e-4);
- quantized TFLite (float16, dynamic, int8): top-1 agreement >= ``min_agreement`` (98%) for
  classification, per-label decision agreement for multilabel, and for regression a range-
  normalised RMSE <= ``max_nrmse`` (5%).

The report (``report.json``) lists every check with its measured figure and threshold.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from typing import List, Optional

import numpy as np

from mmzoo.export.all_formats import get_format
from mmzoo.export.formats import CheckContext

DEFAULT_THRESHOLDS = {"tolerance": 1e-4, "min_agreement": 0.98, "max_nrmse": 0.05, "max_recall_drop": 0.01,
                      "max_bleu_drop": 1.0}


def judge(name: str, figures: dict, kind: str, thresholds: dict, examples: int) -> dict:
    """Pass/fail of one check. ``kind``: ``exact`` (float32), ``quantized`` (agreement / NRMSE),
    ``recall`` (a retriever's quantized tower: recall@10 lost), ``captions`` (a captioner's
    float32 artifact: identical captions) or ``quantized_captions`` (token agreement, BLEU-4 lost)."""
    check = {"check": name, "examples": int(examples), **figures}
    if kind == "exact":
        check["threshold"] = {"max_abs_diff": thresholds["tolerance"]}
        check["passed"] = bool(figures["max_abs_diff"] <= thresholds["tolerance"])
        if not check["passed"]:
            check["failure"] = (
                f"{name}: max abs difference {figures['max_abs_diff']:.3g} > "
                f"{thresholds['tolerance']:.3g}"
            )
    elif kind == "captions":  # a captioner's float32 artifact: the same captions as Keras
        check["threshold"] = {"identical_captions": 1.0}
        check["passed"] = bool(figures["identical_captions"] >= 1.0)
        if not check["passed"]:
            check["failure"] = (f"{name}: {figures['identical_captions']:.2%} of the captions are the same as Keras' "
                                f"(token agreement {figures['token_agreement']:.2%})")
    elif kind == "quantized_captions":  # a captioner's quantized flatbuffer
        limit = thresholds.get("max_bleu_drop", 1.0)
        # Next-token agreement (after Keras' own prefix) where measured: a near tie flipped at one
        # step changes the rest of a free-running caption, not the model's other decisions.
        measure = "next_token_agreement" if "next_token_agreement" in figures else "token_agreement"
        check["threshold"] = {measure: thresholds["min_agreement"], "bleu_drop": limit}
        failures = []
        if figures[measure] < thresholds["min_agreement"]:
            failures.append(f"{measure.replace('_', ' ')} {figures[measure]:.2%} < {thresholds['min_agreement']:.0%} "
                            f"(free-running captions: {figures['token_agreement']:.2%} of tokens, "
                            f"{figures['identical_captions']:.0%} identical)")
        if figures.get("bleu_drop") is not None and figures["bleu_drop"] > limit:
            failures.append(f"BLEU-4 {figures['bleu4']:.1f} is {figures['bleu_drop']:.1f} below Keras float32's "
                            f"{figures['keras_bleu4']:.1f} (at most {limit:g})")
        check["passed"] = not failures
        if failures:
            check["failure"] = f"{name}: " + "; ".join(failures)
    elif kind == "recall":  # a retriever's quantized tower: recall@10 over the validation pool
        limit = thresholds.get("max_recall_drop", 0.01)
        check["threshold"] = {"recall_drop": limit}
        failures = []
        if figures.get("recall_drop") is not None and figures["recall_drop"] > limit + 1e-9:
            failures.append(f"recall@10 {figures['recall@10']:.3f} is {figures['recall_drop']:.3f} below Keras "
                            f"float32's {figures['keras_recall@10']:.3f} (at most {limit:.2f})")
        if not np.isfinite(figures["max_abs_diff"]):
            failures.append("non-finite outputs")
        check["passed"] = not failures
        if failures:
            check["failure"] = f"{name}: " + "; ".join(failures)
    else:
        check["threshold"] = {"agreement": thresholds["min_agreement"], "nrmse": thresholds["max_nrmse"]}
        failures = []
        if figures["agreement"] is not None and figures["agreement"] < thresholds["min_agreement"]:
            failures.append(
                f"top-1 agreement {figures['agreement']:.2%} < {thresholds['min_agreement']:.0%}"
            )
        if figures["nrmse"] is not None and figures["nrmse"] > thresholds["max_nrmse"]:
            failures.append(f"normalised RMSE {figures['nrmse']:.3g} > {thresholds['max_nrmse']:.3g}")
        if not np.isfinite(figures["max_abs_diff"]):
            failures.append("non-finite outputs")
        check["passed"] = not failures
        if failures:
            check["failure"] = f"{name}: " + "; ".join(failures)
    return check


# ---------------------------------------------------------------------- the check folder
def write_check_folder(folder: str, *, artifacts: dict, plan: List[dict], raw_rows: List[dict],
                       raw_reference: dict, inputs: dict, reference: dict, thresholds: dict,
                       warmup_rows: int, labels=None) -> None:
    """Everything the fresh process needs: artifact paths, raw examples (base64),
    validation inputs, their labels when known and the Keras outputs."""
    os.makedirs(folder, exist_ok=True)
    arrays = {f"in:{k}": v for k, v in inputs.items()}
    if labels is not None:
        arrays.update({f"label:{k}": v for k, v in labels.items()} if isinstance(labels, dict)
                      else {"label": labels})
    arrays.update({f"ref:{k}": v for k, v in reference.items()})
    arrays.update({f"rawref:{k}": v for k, v in raw_reference.items()})
    np.savez(os.path.join(folder, "reference.npz"), **arrays)
    rows = [{k: ({"b64": base64.b64encode(v).decode("ascii")} if isinstance(v, bytes) else v)
             for k, v in r.items()} for r in raw_rows]
    with open(os.path.join(folder, "plan.json"), "w", encoding="utf-8") as f:
        json.dump({"artifacts": artifacts, "plan": plan, "raw_rows": rows,
                   "thresholds": thresholds, "warmup_rows": warmup_rows}, f)


def _load_rows(rows):
    return [{k: (base64.b64decode(v["b64"]) if isinstance(v, dict) and "b64" in v else v)
             for k, v in r.items()} for r in rows]


def run_checks(folder: str) -> dict:
    """Load every artifact named in ``plan.json`` and compare it with the references; each
    artifact's format (`mmzoo.export.formats`) says which checks it gets."""
    with open(os.path.join(folder, "plan.json"), encoding="utf-8") as f:
        plan_doc = json.load(f)
    data = np.load(os.path.join(folder, "reference.npz"), allow_pickle=False)
    ctx = CheckContext(
        inputs={k[3:]: data[k] for k in data.files if k.startswith("in:")},
        reference={k[4:]: data[k] for k in data.files if k.startswith("ref:")},
        raw_rows=_load_rows(plan_doc["raw_rows"]),
        raw_reference={k[7:]: data[k] for k in data.files if k.startswith("rawref:")},
        plan=plan_doc["plan"],
        warmup_rows=plan_doc["warmup_rows"],
        labels=(data["label"] if "label" in data.files else
                {k[6:]: data[k] for k in data.files if k.startswith("label:")} or None),
    )
    thresholds = plan_doc["thresholds"]
    checks = []
    for key, entry in sorted(plan_doc["artifacts"].items()):
        for name, kind, examples, fn in get_format(entry["format"]).checks(key, entry, ctx):
            started = time.perf_counter()
            try:
                check = judge(name, fn(), kind, thresholds, examples)
            except Exception as e:  # noqa: BLE001 (an artifact that fails to run fails its check)
                check = {"check": name, "passed": False, "examples": int(examples),
                         "failure": f"{name}: {type(e).__name__}: {' '.join(str(e).split())[:500]}"}
            check["seconds"] = round(time.perf_counter() - started, 3)
            checks.append(check)
    failures = [c["failure"] for c in checks if not c["passed"]]
    return {"passed": not failures, "failures": failures, "checks": checks,
            "thresholds": thresholds, "process": os.getpid()}


def validate_in_fresh_process(folder: str, timeout: float = 900.0) -> dict:
    """Run `run_checks` in a new Python process (nothing shared with the exporter)."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run(
        [sys.executable, "-m", "mmzoo.export.validate", folder],
        capture_output=True, text=True, timeout=timeout, env=env,
    )
    report_path = os.path.join(folder, "report.json")
    if proc.returncode != 0 or not os.path.exists(report_path):
        tail = "\n".join((proc.stderr or "").strip().splitlines()[-15:])
        return {"passed": False, "checks": [], "failures": [
            f"the validation process exited with code {proc.returncode}:\n{tail}"]}
    with open(report_path, encoding="utf-8") as f:
        report = json.load(f)
    report["fresh_process"] = True
    return report


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m mmzoo.export.validate CHECK_DIR", file=sys.stderr)
        return 2
    report = run_checks(argv[0])
    with open(os.path.join(argv[0], "report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
