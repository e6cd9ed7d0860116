"""Recommender data: an interactions file (user, item, timestamp[, weight]), a users table and an
items table (CSV / JSONL), checked up front and split by time. Plain Python (no TensorFlow).

- ``interactions``: columns ``user``, ``item``, ``timestamp`` (a number, or an ISO 8601 date /
  time) and an optional ``weight`` (a positive number, default 1).
- ``users`` (optional): a ``user`` id column and feature columns (numbers); ``items``
  (optional): an ``item`` id column and attribute columns (``image`` paths relative to the
  file, ``text``, numbers). Ids are strings; a number id is the same id as its string.
- Problems are named with file, row and column: a duplicate id in a table, an interaction whose
  user or item is not in its table, a bad timestamp or weight, and a user without history (fewer
  interactions than the held-out ones plus one to learn from). ``on_error="skip"`` drops them
  and counts them in the report.
- The split is by time, per user: the last ``holdout`` interactions are the test split, the
  ``validation`` before them the validation split, the rest train (ties keep file order). Each
  interaction's history is the user's earlier items, most recent last.

Example:
>>> data = read_interactions("events.csv", users="users.csv", items="items.csv")   # doctest: +SKIP
>>> data.splits, data.popularity_baseline()["recall@10"]
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import datetime
import difflib
import io
import json
import math
import os
from typing import Dict, List, Optional, Sequence

from mmzoo.data.validation import DataError, DataReport, RowError, check_on_error, log_skipped, raise_if_errors

INTERACTION_COLUMNS = ("user", "item", "timestamp", "weight")


@dataclasses.dataclass
class Event:
    """One interaction: who, what, when, its weight, its file row and its split."""

    user: str
    item: str
    time: float
    weight: float
    row: int
    split: str = "train"
    history: tuple = ()


def _read_table(path: str) -> List[dict]:
    if not os.path.isfile(path):
        raise DataError(f"File not found: {path!r}")
    with open(path, "rb") as f:
        raw = f.read()
    text = raw[3:].decode("utf-8") if raw.startswith(b"\xef\xbb\xbf") else raw.decode("utf-8")
    if path.lower().endswith((".jsonl", ".ndjson", ".json")):
        rows = []
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}: line {n}: invalid JSON: {e.msg}") from None
                if not isinstance(value, dict):
                    raise DataError(f"{path}: line {n}: a JSONL row must be an object {{...}}")
                rows.append(value)
    else:
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    if not rows:
        raise DataError(f"{path}: no rows.")
    return rows


def _need_columns(path: str, rows: List[dict], needed: Sequence[str]) -> None:
    header = list(rows[0])
    missing = [c for c in needed if c not in header]
    if missing:
        hints = []
        for c in missing:
            close = difflib.get_close_matches(c, header, n=1)
            hints.append(f"{c!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise DataError(f"{path}: missing column {', '.join(hints)}. Columns found: {header}")


def parse_time(value) -> float:
    """A timestamp cell: a number (seconds, or any increasing count) or an ISO 8601 date / time."""
    if isinstance(value, bool) or value is None:
        raise ValueError("the timestamp is empty")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError("the timestamp is not finite")
        return float(value)
    text = str(value).strip()
    if not text:
        raise ValueError("the timestamp is empty")
    try:
        number = float(text)
        if math.isfinite(number):
            return number
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("the timestamp is neither a number nor an ISO 8601 date / time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def _id(value) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError("the id is empty")
    if isinstance(value, float) and value == int(value):
        value = int(value)
    return str(value).strip()


class Interactions:
    """Checked, time-split recommender data (see the module docstring).

    Attributes:
        events: every kept interaction, per user in time order, with its split and history.
        users, items: id -> the table's row (``{}`` rows when there is no table).
        item_ids: the items, in table order (the candidates a recommender ranks).
        report: a `mmzoo.data.DataReport` (rows read, kept per split, errors, notes).
    """

    def __init__(self, events: List[Event], users: Dict[str, dict], items: Dict[str, dict], report: DataReport,
                 history_len: int):
        self.events, self.users, self.items, self.report = events, users, items, report
        self.item_ids = list(items)
        self.history_len = history_len

    @property
    def splits(self) -> Dict[str, int]:
        counts = collections.Counter(e.split for e in self.events)
        return {s: counts.get(s, 0) for s in ("train", "validation", "test")}

    def split_events(self, split: str) -> List[Event]:
        return [e for e in self.events if e.split == split]

    def seen(self, split: str = "test") -> Dict[str, set]:
        """Per user, the items of the interactions before ``split`` (excluded from rankings)."""
        earlier = {"train": (), "validation": ("train",), "test": ("train", "validation")}[split]
        out: Dict[str, set] = collections.defaultdict(set)
        for e in self.events:
            if e.split in earlier:
                out[e.user].add(e.item)
        return out

    def popularity(self) -> Dict[str, float]:
        """Train-split weight per item (what a popularity baseline ranks by)."""
        counts: Dict[str, float] = collections.Counter()
        for e in self.events:
            if e.split == "train":
                counts[e.item] += e.weight
        return dict(counts)

    def popularity_baseline(self, split: str = "test", ks: Sequence[int] = (10, 50)) -> dict:
        """Recall@K and NDCG@10 of ranking items by train popularity (items already seen left
        out), over ``split``'s interactions: the number a recommender must beat."""
        popular = self.popularity()
        position = {item: n for n, item in enumerate(self.item_ids)}
        order = sorted(self.item_ids, key=lambda i: (-popular.get(i, 0.0), position[i]))
        seen = self.seen(split)
        rankings, relevant = [], []
        for e in self.split_events(split):
            skip = seen.get(e.user, set())
            rankings.append([i for i in order if i not in skip][:max(ks)])
            relevant.append({e.item})
        return ranking_metrics(rankings, relevant, ks)


def ranking_metrics(rankings: List[list], relevant: List[set], ks: Sequence[int] = (10, 50)) -> dict:
    """Recall@K (share of each query's relevant items in its top K) and NDCG@10 of rankings."""
    from mmzoo.tasks.ranking import ndcg_at_k, recall_at_k_sets

    out = {f"recall@{k}": recall_at_k_sets(rankings, relevant, k) for k in ks}
    out["ndcg@10"] = ndcg_at_k(rankings, relevant, 10)
    out["queries"] = len(rankings)
    return out


def read_interactions(interactions: str, users: Optional[str] = None, items: Optional[str] = None, *,
                      holdout: int = 1, validation: int = 1, history_len: int = 20,
                      on_error: str = "raise") -> Interactions:
    """Read and check the three files, split each user's interactions by time (see the module
    docstring); returns an `Interactions`."""
    check_on_error(on_error)
    if holdout < 1 or validation < 0:
        raise ValueError(f"holdout must be >= 1 and validation >= 0. Received: {holdout}, {validation}")
    report = DataReport(source=str(interactions))
    errors: List[RowError] = []

    def table(path, key):
        rows = _read_table(path)
        _need_columns(path, rows, [key])
        out, first = {}, {}
        for n, row in enumerate(rows, start=1):
            try:
                rid = _id(row.get(key))
            except ValueError as e:
                errors.append(RowError(path, n, None, key, row.get(key), str(e)))
                continue
            if rid in out:
                errors.append(RowError(path, n, None, key, rid, f"duplicate {key} id (first in row {first[rid]})"))
                continue
            out[rid], first[rid] = row, n
        return out

    user_rows = table(users, "user") if users else None
    item_rows = table(items, "item") if items else None
    rows = _read_table(interactions)
    _need_columns(interactions, rows, ["user", "item", "timestamp"])
    report.total_rows = len(rows)
    events: List[Event] = []
    for n, row in enumerate(rows, start=1):
        try:
            column = "user"
            user = _id(row.get("user"))
            if user_rows is not None and user not in user_rows:
                raise ValueError(f"user {user!r} is not in {os.path.basename(users)}")
            column = "item"
            item = _id(row.get("item"))
            if item_rows is not None and item not in item_rows:
                raise ValueError(f"item {item!r} is not in {os.path.basename(items)}")
            column = "timestamp"
            when = parse_time(row.get("timestamp"))
            column = "weight"
            weight = row.get("weight")
            weight = 1.0 if weight in (None, "") else float(weight)
            if not math.isfinite(weight) or weight <= 0:
                raise ValueError("the weight must be a positive number")
        except (ValueError, TypeError) as e:
            errors.append(RowError(interactions, n, n + 1, column, row.get(column), str(e)))
            continue
        events.append(Event(user, item, when, weight, n))

    by_user: Dict[str, List[Event]] = collections.defaultdict(list)
    for e in events:
        by_user[e.user].append(e)
    needed = holdout + validation + 1
    kept: List[Event] = []
    for user, evs in by_user.items():
        evs.sort(key=lambda e: (e.time, e.row))
        if len(evs) < needed:
            where = users if user_rows is not None else interactions
            row = list(user_rows).index(user) + 1 if user_rows is not None else evs[0].row
            errors.append(RowError(where, row, None, "user", user,
                                   f"has {len(evs)} interaction(s); a user needs {needed} ({holdout} held out for "
                                   f"test, {validation} for validation, 1 to learn from)"))
            continue
        for i, e in enumerate(evs):
            e.split = "test" if i >= len(evs) - holdout else (
                "validation" if i >= len(evs) - holdout - validation else "train")
            e.history = tuple(x.item for x in evs[max(0, i - history_len):i])
        kept += evs
    if user_rows is not None:
        silent = [u for u in user_rows if u not in by_user]
        if silent:
            report.notes.append(f"{len(silent)} users of the users table have no interaction (not trained on), "
                                f"e.g. {silent[:3]}")
    report.errors = errors
    if on_error == "raise":
        raise_if_errors(report)
    report.skipped = len(errors)
    log_skipped(report)
    if not kept:
        raise DataError(f"{interactions}: no user has enough interactions.\n{report.summary()}", report)
    if item_rows is None:
        item_rows = {i: {"item": i} for i in dict.fromkeys(e.item for e in kept)}
    if user_rows is None:
        user_rows = {u: {"user": u} for u in dict.fromkeys(e.user for e in kept)}
    data = Interactions(kept, user_rows, item_rows, report, history_len)
    report.kept = data.splits
    report.notes.append(f"split by time per user: the last {holdout} interaction(s) test, {validation} before "
                        f"them validation, the rest train; {len(by_user)} users, {len(item_rows)} items")
    never = [i for i in item_rows if i not in data.popularity()]
    if never:
        report.notes.append(f"{len(never)} items have no training interaction (only their attributes describe them)")
    return data


def write_table(path: str, rows: List[dict]) -> str:
    """Rows as a CSV file (the column order of the first row); returns the path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path

