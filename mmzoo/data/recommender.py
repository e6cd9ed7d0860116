"""A recommender's training data: `read_interactions` (checked, split by time) turned into the
examples a two-tower model trains on, one per interaction.

The user side of an example: ``user`` (id), ``history`` (the user's earlier items, most recent
last) and, when the users table has a ``profile`` column (numbers, as a manifest's ``tabular``),
``profile``. The item side: ``item`` (id) and the items table's ``image`` / ``text`` /
``tabular`` columns. Rows that show the same item share a group (never each other's negatives).
Id vocabularies hold the users and items seen in training; others are unknown (id 1), so a new
item is described by its attributes alone.

Example:
>>> from mmzoo.data.recommender import from_interactions
>>> data = from_interactions("events.csv", users="users.csv", items="items.csv")  # doctest: +SKIP
>>> model = mmzoo.build("bag_cnn_gru_twotower", **data.model_kwargs())
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional

import numpy as np

from mmzoo.data import sizes
from mmzoo.data import text as text_lib
from mmzoo.data.interactions import Interactions, read_interactions
from mmzoo.data.pipeline import ManifestData, _decode_failures
from mmzoo.data.validation import DataError
from mmzoo.modalities import get_modality
from mmzoo.modalities.ids import RESERVED
from mmzoo.spec import DataSpec

USER_SIDE = ("user", "history", "profile")
ITEM_SIDE = ("item", "image", "text", "tabular")


class RecommenderData(ManifestData):
    """`ManifestData` of interactions, with the catalogue and what each user has seen."""

    def __init__(self, spec, report, columns, interactions: Interactions, item_inputs: Dict[str, list]):
        super().__init__(spec, report, columns)
        self.interactions = interactions
        self._item_inputs = item_inputs

    def catalogue_inputs(self):
        """``(ids, names, model inputs of the item side)`` of every item of the items table."""
        import tensorflow as tf

        side = [m for m in ITEM_SIDE if m in self.spec.modalities]
        ids = list(self.interactions.items)
        raw = {m: self._item_inputs[m] for m in side}
        inputs: Dict[str, list] = {m: [] for m in side}
        for i in range(len(ids)):
            one = self.preprocessor({m: self._read(get_modality(m), tf.constant(raw[m][i])) for m in side})
            for m in side:
                inputs[m].append(np.asarray(one[m]))
        names = [str(self.interactions.items[i].get("text") or i) for i in ids]
        return ids, names, {m: np.stack(v) for m, v in inputs.items()}

    def seen_items(self, split: str) -> Dict[str, set]:
        return self.interactions.seen(split)


def _items_table(data: Interactions, items_path: Optional[str]) -> Dict[str, dict]:
    """Each item's checked attribute values (image paths resolved, numbers parsed)."""
    root = os.path.dirname(os.path.abspath(items_path)) if items_path else ""
    where = {"root": root, "allow_absolute_paths": False, "resample": True, "sample_rate": 16000}
    present = [m for m in ("image", "text", "tabular") if all(m in row for row in data.items.values())]
    out, errors = {}, []
    for n, (item, row) in enumerate(data.items.items(), start=1):
        values = {}
        for m in present:
            try:
                values[m] = get_modality(m).check_cell(row.get(m), where)
            except ValueError as e:
                errors.append(f"{items_path} row {n}: {m} {row.get(m)!r}: {e}")
        out[item] = values
    if errors:
        raise DataError("The items table has bad rows:\n" + "\n".join(f"  - {e}" for e in errors[:10]))
    return out


def from_interactions(interactions: str, users: Optional[str] = None, items: Optional[str] = None, *,
                      history_len: int = 20, holdout: int = 1, validation: int = 1, on_error: str = "raise",
                      image_size: Optional[tuple] = None, seq_len: Optional[int] = None,
                      spec: Optional[DataSpec] = None) -> RecommenderData:
    """Read and check the files (`mmzoo.data.interactions.read_interactions`), then build the
    examples, the data spec (id vocabularies from the train split, item text vocabulary, sizes
    measured from the items; or a trained model's ``spec``, to evaluate it) and the catalogue."""
    data = read_interactions(interactions, users, items, holdout=holdout, validation=validation,
                             history_len=history_len, on_error=on_error)
    report = data.report
    item_values = _items_table(data, items)
    item_side = ["item"] + [m for m in ("image", "text", "tabular") if item_values and
                            m in next(iter(item_values.values()))]
    profile_column = next((c for c in ("profile", "tabular") if users and all(c in r for r in data.users.values())),
                          None)
    profiles = {}
    if profile_column:
        for n, (user, row) in enumerate(data.users.items(), start=1):
            try:
                profiles[user] = get_modality("profile").check_cell(row.get(profile_column), {})
            except ValueError as e:
                raise DataError(f"{users} row {n}: {profile_column} {row.get(profile_column)!r}: {e}") from None
        dims = {len(v) for v in profiles.values()}
        if len(dims) != 1:
            raise DataError(f"{users}: the {profile_column} column has rows of {sorted(dims)} numbers; one length.")
    user_side = ["user", "history"] + (["profile"] if profile_column else [])

    train = data.split_events("train")
    fields = {"history_len": history_len}
    fields["user_ids"] = list(RESERVED) + sorted({e.user for e in train})
    fields["item_ids"] = list(RESERVED) + [i for i in data.items if i in {e.item for e in train}]
    fields["num_users"], fields["num_items"] = max(3, len(fields["user_ids"])), max(3, len(fields["item_ids"]))
    if profile_column:
        fields["profile_dim"] = len(next(iter(profiles.values())))
    if "tabular" in item_side:
        dims = {len(v["tabular"]) for v in item_values.values()}
        if len(dims) != 1:
            raise DataError(f"{items}: the tabular column has rows of {sorted(dims)} numbers; one length.")
        fields["tabular_dim"] = dims.pop()
    tokenizer = text_lib.tokenizer_config(None)
    if "text" in item_side:
        texts = [v["text"] for v in item_values.values()]
        vocabulary = text_lib.build_vocabulary(texts, tokenizer, 1, 20000)
        fields.update(vocabulary=vocabulary, vocab_size=max(3, len(vocabulary)), tokenizer=tokenizer,
                      seq_len=seq_len or min(sizes.MAX_SEQ_LEN, int(max(sizes.token_counts(texts, tokenizer)))))
    if "image" in item_side:
        paths = [v["image"] for v in item_values.values()]
        if image_size is None:
            sides = np.array([s for s in (sizes.image_side(p) for p in paths) if s is not None])
            image_size = sizes.image_size_for(sides, (64, 64)) or (64, 64) if len(sides) else (64, 64)
        fields["image_shape"] = (*tuple(image_size), 3)
        spec_check = DataSpec(modalities=("image",), image_shape=fields["image_shape"])
        failures = _decode_failures(paths, get_modality("image").decode_check(spec_check, True))
        if failures:
            names = list(item_values)
            raise DataError("Item images that cannot be decoded:\n" + "\n".join(
                f"  - {items}: item {names[i]!r} {paths[i]!r}: {reason}" for i, reason in list(failures.items())[:10]))
    built = DataSpec(modalities=tuple(user_side + item_side), task="retrieval", num_classes=1, **fields)
    if spec is not None:
        missing = sorted(set(spec.modalities) - set(built.modalities))
        if missing:
            raise DataError(f"{interactions}: the model reads {missing}, which these files lack.")
        if spec.profile_dim != built.profile_dim and "profile" in spec.modalities:
            raise DataError(f"{users}: {built.profile_dim} profile numbers, the model reads {spec.profile_dim}.")
    spec = spec or built

    columns = {}
    for split in ("train", "validation", "test"):
        events = data.split_events(split)
        cols: Dict[str, object] = {"row": np.array([e.row for e in events], np.int64),
                                   "user": [e.user for e in events], "history": [" ".join(e.history) for e in events],
                                   "item": [e.item for e in events]}
        if profile_column:
            cols["profile"] = np.array([profiles[e.user] for e in events], np.float32).reshape(
                len(events), spec.profile_dim)
        for m in item_side[1:]:
            cols[m] = get_modality(m).column([item_values[e.item][m] for e in events], spec)
        index: Dict[str, int] = {}
        cols["label"] = np.array([index.setdefault(e.item, len(index)) for e in events], np.int32)
        columns[split] = cols
    report.kept = data.splits
    item_inputs: Dict[str, List] = {"item": list(data.items)}
    for m in item_side[1:]:
        item_inputs[m] = [item_values[i][m] for i in data.items]
    out = RecommenderData(spec, report, columns, data, item_inputs)
    out.source = {"kind": "interactions", "description": f"interactions {interactions}",
                  "paths": {"interactions": os.path.abspath(interactions),
                            "users": os.path.abspath(users) if users else None,
                            "items": os.path.abspath(items) if items else None},
                  "options": {"history_len": history_len, "holdout": holdout, "validation": validation,
                              "on_error": on_error}}
    return out
