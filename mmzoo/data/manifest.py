"""Reading a manifest (CSV or JSONL, one example a row) and checking each row's values.

Columns: ``image`` (path), ``text`` (UTF-8 string), ``audio`` (path to a WAV file),
``tabular`` (numbers: a JSON list, or a string of floats separated by spaces, ``;`` or ``,``),
``label`` (class name; several names joined by ``|`` for multilabel; a number, or several
numbers like tabular, for regression) and optional ``split`` (train / validation / test).
A multitask model reads one label column per output instead: ``label_<output>``, e.g.
``label_answer`` and ``label_score``. Paths are relative to the manifest's folder (or ``root``).
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import io
import json
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

from mmzoo.data.validation import DataError
from mmzoo.parsing import parse_numbers  # noqa: F401  (re-exported)
from mmzoo.spec import MODALITIES

LABEL = "label"
SPLIT = "split"
#: a retriever's pair manifest: rows with the same group show the same thing (optional column)
GROUP = "group"
#: a captioner's target: the text to generate from the inputs
CAPTION = "caption"
#: a multitask manifest has one label column per output: ``label_<output name>``
_LABEL_OF = re.compile(r"^label_([a-z0-9][a-z0-9_]*)$")
COLUMNS = tuple(MODALITIES) + (LABEL, CAPTION, GROUP, SPLIT)
SPLITS = ("train", "validation", "test")
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "val": "validation",
    "valid": "validation",
    "dev": "validation",
    "test": "test",
    "testing": "test",
}
_SURROGATE = re.compile("[\udc80-\udcff]")


@dataclasses.dataclass
class RawRow:
    """One manifest row: its number (1 = first example), its first line, and its values."""

    row: int
    line: int
    values: Dict[str, object]
    error: Optional[Tuple[Optional[str], object, str]] = None  # (column, value, reason)


def manifest_format(path: str, fmt: Optional[str] = None) -> str:
    if fmt:
        if fmt not in ("csv", "tsv", "jsonl"):
            raise ValueError(f"format must be 'csv', 'tsv' or 'jsonl'. Received: {fmt!r}")
        return fmt
    ext = os.path.splitext(path)[1].lower()
    if ext in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if ext == ".tsv":
        return "tsv"
    return "csv"


def is_label_column(key: str) -> bool:
    """``label``, or ``label_<name>`` (one column per output of a multitask model)."""
    return key == LABEL or bool(_LABEL_OF.match(key))


def label_columns(mapping: Dict[str, str]) -> List[str]:
    """The canonical label columns of a column map, ``label`` first (a captioner's ``caption``
    last)."""
    labels = sorted((c for c in mapping if is_label_column(c)), key=lambda c: (c != LABEL, c))
    return labels + ([CAPTION] if CAPTION in mapping else [])


def is_pair_manifest(mapping: Dict[str, str], task: Optional[str] = None) -> bool:
    """Rows of pairs to match (a retriever's data): ``task="retrieval"``, or no label column
    and a ``group`` column or two inputs or more."""
    if task == "retrieval":
        return True
    if task is not None or label_columns(mapping):
        return False
    return GROUP in mapping or sum(m in mapping for m in MODALITIES) >= 2


def _column_map(header: Sequence[str], columns: Optional[dict], source: str,
                task: Optional[str] = None) -> Dict[str, str]:
    """canonical name -> manifest column name; fatal errors for misspelt columns."""
    columns = dict(columns or {})
    bad = sorted(c for c in set(columns) - set(COLUMNS) if not is_label_column(c))
    if bad:
        raise ValueError(f"columns= keys must be among {list(COLUMNS)}. Received: {bad}")
    mapping: Dict[str, str] = {}
    for canonical, name in columns.items():
        if name not in header:
            close = difflib.get_close_matches(name, header, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise DataError(
                f"{source}: columns={{{canonical!r}: {name!r}}} but the manifest has no column "
                f"{name!r}.{hint} Columns found: {list(header)}"
            )
        mapping[canonical] = name
    taken = set(mapping.values())
    for name in header:
        key = name.strip().lower()
        if name in taken:
            continue
        if (key in COLUMNS or is_label_column(key)) and key not in mapping:
            mapping[key] = name
    unknown = [h for h in header if h not in mapping.values()]
    for name in unknown:
        close = difflib.get_close_matches(name.strip().lower(), COLUMNS, n=1, cutoff=0.7)
        if close and close[0] not in mapping:
            raise DataError(
                f"{source}: unknown column {name!r}. Did you mean {close[0]!r}? "
                f"Expected columns: {list(COLUMNS)} (rename it, or map it with "
                f"columns={{{close[0]!r}: {name!r}}})."
            )
    if not label_columns(mapping) and not is_pair_manifest(mapping, task):
        close = difflib.get_close_matches(LABEL, [h.lower() for h in unknown], n=1, cutoff=0.5)
        hint = (
            f" Did you mean {close[0]!r}? (columns={{'label': ...}} maps another name)"
            if close
            else ""
        )
        raise DataError(
            f"{source}: no 'label' column (or 'label_<name>' columns, one per output of a multitask "
            f"model; or, for matching pairs, two input columns and an optional 'group').{hint} "
            f"Columns found: {list(header)}"
        )
    if not any(m in mapping for m in MODALITIES):
        raise DataError(
            f"{source}: no input column. Expected at least one of {list(MODALITIES)}. "
            f"Columns found: {list(header)}"
        )
    return mapping


def _first_utf8_problem(values: dict):
    """``(column, readable value, reason)`` for the first value that is not valid UTF-8."""
    for c, v in values.items():
        if _utf8_problem(v):
            return c, v.encode("utf-8", "surrogateescape").decode("utf-8", "replace"), "is not valid UTF-8"
    return None


def _utf8_problem(value) -> bool:
    return isinstance(value, str) and bool(_SURROGATE.search(value))


def read_manifest(
    path: str, columns: Optional[dict] = None, fmt: Optional[str] = None, task: Optional[str] = None
) -> Tuple[List[RawRow], Dict[str, str], List[str]]:
    """Read a manifest: (rows, canonical-to-manifest column map, ignored column names).

    Rows that cannot be read (bad JSON, wrong field count, non-UTF-8 bytes) carry ``.error``.
    Missing, misspelt or unknown-but-close column names raise `DataError` at once.
    """
    source = str(path)
    if not os.path.isfile(source):
        raise DataError(f"Manifest not found: {source!r}")
    with open(source, "rb") as f:
        raw = f.read()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    text = raw.decode("utf-8", errors="surrogateescape")
    kind = manifest_format(source, fmt)
    rows: List[RawRow] = []
    if kind == "jsonl":
        header: List[str] = []
        parsed = []
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                err = (
                    None
                    if isinstance(obj, dict)
                    else (None, None, "a JSONL row must be an object {...}")
                )
            except json.JSONDecodeError as e:
                obj, err = {}, (None, None, f"invalid JSON: {e.msg} (column {e.colno})")
            if not isinstance(obj, dict):
                obj = {}
            for key in obj:
                if key not in header:
                    header.append(key)
            parsed.append((line_no, obj, err))
        if not parsed:
            raise DataError(f"{source}: the manifest has no rows.")
        mapping = _column_map(header, columns, source, task)
        for i, (line_no, obj, err) in enumerate(parsed, start=1):
            values = {c: obj.get(name) for c, name in mapping.items()}
            rows.append(RawRow(i, line_no, values, err or _first_utf8_problem(values)))
    else:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if kind == "tsv" else ",")
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{source}: the manifest is empty (no header row).") from None
        except csv.Error as e:
            raise DataError(f"{source}: cannot read the CSV header: {e}") from None
        header = [h.strip() for h in header]
        if not any(header):
            raise DataError(
                f"{source}: the first line must be a header row (image,text,...,label)."
            )
        mapping = _column_map(header, columns, source, task)
        index = {c: header.index(name) for c, name in mapping.items()}
        last_line, i = reader.line_num, 0
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                i += 1
                rows.append(RawRow(i, last_line + 1, {}, (None, None, f"unreadable CSV row: {e}")))
                last_line = reader.line_num
                continue
            start, last_line = last_line + 1, reader.line_num
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            i += 1
            err = None
            if len(fields) != len(header):
                err = (
                    None,
                    None,
                    f"the row has {len(fields)} fields but the header has {len(header)}",
                )
            values = {c: (fields[j] if j < len(fields) else None) for c, j in index.items()}
            rows.append(RawRow(i, start, values, err or _first_utf8_problem(values)))
        if not rows:
            raise DataError(f"{source}: the manifest has a header but no rows.")
    ignored = [h for h in header if h not in mapping.values()]
    return rows, mapping, ignored


# ------------------------------------------------------------------ per-value parsing
def resolve_path(value, root: str, allow_absolute: bool) -> str:
    """A manifest path -> an absolute path inside ``root``. Raises ValueError(reason)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError("the path is empty")
    if not isinstance(value, str):
        raise ValueError(f"a path must be a string, got {type(value).__name__}")
    value = value.strip()
    if "\x00" in value:
        raise ValueError("the path contains a NUL character")
    if "://" in value:
        raise ValueError("URLs are not supported; give a local file path")
    if os.path.isabs(value) or value.startswith("~") or re.match(r"^[A-Za-z]:[\\/]", value):
        if not allow_absolute:
            raise ValueError(
                "absolute paths are not allowed (paths are relative to the manifest's folder); "
                "pass allow_absolute_paths=True to accept them"
            )
        return os.path.normpath(os.path.expanduser(value))
    root = os.path.abspath(root)
    full = os.path.normpath(os.path.join(root, value))
    if full != root and not full.startswith(root.rstrip(os.sep) + os.sep):
        raise ValueError(f"the path escapes the data root {root!r}")
    return full


def parse_split(value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"the split is empty; expected one of {list(SPLITS)}")
    key = value.strip().lower()
    if key not in SPLIT_ALIASES:
        raise ValueError(f"unknown split; expected one of {list(SPLITS)}")
    return SPLIT_ALIASES[key]


def sort_class_names(names) -> List[str]:
    """Class names in their saved order: numerically when all are integers, else sorted."""
    names = sorted(set(names))
    if names and all(re.fullmatch(r"-?\d+", n) for n in names):
        return sorted(names, key=int)
    return names
