"""Errors and the data report: every bad row is named (manifest, row, line, column, value).

``on_error="raise"`` (default): all rows are checked, then one `DataError` lists the problems.
``on_error="skip"``: bad rows are dropped; `DataReport` counts them and keeps the reasons.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Dict, List, Optional

logger = logging.getLogger("mmzoo.data")

ON_ERROR = ("raise", "skip")


@dataclasses.dataclass
class RowError:
    """One problem: where it is (manifest, row, line, column, value) and why."""

    source: str
    row: Optional[int]
    line: Optional[int]
    column: Optional[str]
    value: object
    reason: str

    def __str__(self) -> str:
        where = os.path.basename(self.source) if self.source else "data"
        if self.row is not None:
            where += f" row {self.row}"
            if self.line is not None:
                where += f" (line {self.line})"
        what = ""
        if self.column:
            what = f" {self.column}"
            if self.value not in (None, ""):
                shown = self.value if isinstance(self.value, str) else repr(self.value)
                if isinstance(shown, str) and len(shown) > 120:
                    shown = shown[:117] + "..."
                what += f" {shown!r}" if isinstance(self.value, str) else f" {shown}"
        return f"{where}:{what}: {self.reason}" if what else f"{where}: {self.reason}"


@dataclasses.dataclass
class DataReport:
    """What validation found: rows read, kept per split, and the errors (first reasons kept).

    Example:
    >>> data = mmzoo.data.from_manifest("train.csv", on_error="skip")   # doctest: +SKIP
    >>> data.report.skipped, data.report.errors[:3]
    """

    source: str
    total_rows: int = 0
    kept: Dict[str, int] = dataclasses.field(default_factory=dict)
    errors: List[RowError] = dataclasses.field(default_factory=list)
    notes: List[str] = dataclasses.field(default_factory=list)
    skipped: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, error: RowError) -> None:
        self.errors.append(error)

    def summary(self, max_errors: int = 10) -> str:
        lines = [f"Data report for {self.source}"]
        lines.append(f"  rows read: {self.total_rows}")
        if self.kept:
            kept = ", ".join(f"{k}={v}" for k, v in self.kept.items())
            lines.append(f"  rows kept: {sum(self.kept.values())} ({kept})")
        lines.append(f"  rows skipped: {self.skipped}")
        lines.append(f"  errors: {len(self.errors)}")
        for err in self.errors[:max_errors]:
            lines.append(f"    - {err}")
        if len(self.errors) > max_errors:
            lines.append(f"    ... and {len(self.errors) - max_errors} more")
        for note in self.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "total_rows": self.total_rows,
            "kept": dict(self.kept),
            "skipped": self.skipped,
            "errors": [str(e) for e in self.errors],
            "notes": list(self.notes),
        }


class DataError(ValueError):
    """Bad input data. ``.report`` holds every problem found (``.errors``)."""

    def __init__(self, message: str, report: Optional[DataReport] = None):
        super().__init__(message)
        self.report = report
        self.errors = list(report.errors) if report is not None else []


def raise_if_errors(report: DataReport, max_errors: int = 10) -> None:
    """Raise one DataError listing the first problems (used by ``on_error="raise"``)."""
    if not report.errors:
        return
    n = len(report.errors)
    shown = "\n".join(f"  - {e}" for e in report.errors[:max_errors])
    more = f"\n  ... and {n - max_errors} more" if n > max_errors else ""
    raise DataError(
        f"{n} problem{'s' if n != 1 else ''} in {report.source}:\n{shown}{more}\n"
        "Fix the rows, or pass on_error='skip' to drop them (they are counted in data.report).",
        report,
    )


def check_on_error(on_error: str) -> None:
    if on_error not in ON_ERROR:
        raise ValueError(
            f"on_error must be one of {list(ON_ERROR)}. Received: on_error={on_error!r}"
        )


def log_skipped(report: DataReport, max_errors: int = 5) -> None:
    if report.skipped:
        logger.warning(
            "Skipped %d bad row(s) of %s. First reasons:\n%s",
            report.skipped,
            report.source,
            "\n".join(f"  - {e}" for e in report.errors[:max_errors]),
        )


def clean_tf_error(err: BaseException) -> str:
    """The readable part of a TensorFlow op error (no function-node prefix / op suffix)."""
    msg = getattr(err, "message", None) or str(err)
    msg = msg.split("\n")[0]
    if "}}" in msg:
        msg = msg.split("}}", 1)[1]
    if " [Op:" in msg:
        msg = msg.split(" [Op:")[0]
    return msg.strip()
