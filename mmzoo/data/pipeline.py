"""The data object (`MultimodalData`) and `from_manifest`.

`MultimodalData.dataset` builds a ``tf.data.Dataset`` of ``(features, label)``: read, shard,
shuffle, decode in parallel (one call per CPU core), cache (memory or file), batch, prefetch.
Backends (manifest, TFDS, TFRecord) only say how to read raw elements and preprocess one.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from mmzoo.data import image as image_lib
from mmzoo.data import manifest as manifest_lib
from mmzoo.data import sizes
from mmzoo.data import text as text_lib
from mmzoo.data.options import pipeline_options
from mmzoo.data.preprocess import Preprocessor
from mmzoo.data.validation import (
    DataError,
    DataReport,
    RowError,
    check_on_error,
    clean_tf_error,
    log_skipped,
    raise_if_errors,
)
from mmzoo.host import cpu_parallelism
from mmzoo.modalities import get_modality, records
from mmzoo.spec import MODALITIES, DataSpec, loader_settings, spec_fields_from_settings
from mmzoo.tasks import targets as targets_lib

AUTOTUNE = tf.data.AUTOTUNE


#: the loaders' default settings: those of a default `DataSpec`
DEFAULTS = loader_settings()
#: a captioner's default caption_len is the longest train caption, at most this
CAPTION_LEN_CAP = 48

class MultimodalData:
    """Examples for training, evaluation and export, with their `DataSpec`.

    Made by `from_manifest`, `from_tfds` or `from_tfrecord`. Features are a dict keyed by
    input name (``image`` uint8 [H, W, C], ``text`` int32 [seq_len], ``audio`` float32
    [audio_samples], ``tabular`` float32 [tabular_dim]); labels are int32 class ids
    (classification), float32 multi-hot (multilabel) or float32 values (regression).

    Example:
    >>> data = mmzoo.data.from_manifest("data/train.csv", image_size=(64, 64))  # doctest: +SKIP
    >>> train = data.dataset("train", batch_size=64, shuffle=True, seed=0)
    >>> model = mmzoo.build("cnn_gru_concat", **data.model_kwargs())
    """

    #: shuffle buffer used before decoding when no cache is asked for (raw elements)
    raw_shuffle_buffer: Optional[int] = None  # None: the whole split

    def __init__(self, spec: DataSpec, report: DataReport, resample: bool = True):
        self.report = report
        self.resample = resample
        self._set_spec(spec)

    def _set_spec(self, spec: DataSpec) -> None:
        self.spec = spec
        self.preprocessor = Preprocessor(spec, self.resample)

    def with_inputs(self, modalities: Sequence[str]) -> "MultimodalData":
        """The same examples with only these inputs (a model's); the others are not read, and
        the report names them. An input the data lacks is an error naming it.

        Example:
        >>> image_text = data.with_inputs(["image", "text"])        # doctest: +SKIP
        """
        modalities = sorted(modalities)
        missing = [m for m in modalities if m not in self.spec.modalities]
        if missing:
            raise DataError(
                f"{self.report.source}: the model needs input columns {missing}, which the data lacks. "
                f"Inputs found: {list(self.spec.modalities)}"
            )
        unused = [m for m in self.spec.modalities if m not in modalities]
        if not unused:
            return self
        view = copy.copy(self)
        view.report = copy.copy(self.report)
        view.report.notes = list(self.report.notes) + [f"columns this model does not use (ignored): {unused}"]
        view._set_spec(self.spec.replace(modalities=tuple(modalities)))
        return view

    # ------------------------------------------------------------------ facts
    @property
    def modalities(self) -> tuple:
        return tuple(self.spec.modalities)

    @property
    def task(self) -> str:
        return self.spec.task

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    @property
    def class_names(self) -> Optional[List[str]]:
        return self.spec.class_names

    @property
    def vocabulary(self) -> Optional[List[str]]:
        return self.spec.vocabulary

    @property
    def splits(self) -> Dict[str, int]:
        """Examples per split, e.g. ``{"train": 800, "validation": 100, "test": 100}``."""
        raise NotImplementedError

    def num_examples(self, split: str) -> int:
        self._check_split(split)
        return self.splits[split]

    def model_kwargs(self) -> dict:
        """Keyword arguments for `mmzoo.build` (same as ``data.spec.model_kwargs()``)."""
        return self.spec.model_kwargs()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(modalities={list(self.modalities)}, task={self.task!r}, "
            f"num_classes={self.num_classes}, splits={self.splits})"
        )

    def _check_split(self, split: str) -> None:
        if split not in self.splits or not self.splits[split]:
            raise ValueError(
                f"No examples in split {split!r}. Splits with examples: "
                f"{ {k: v for k, v in self.splits.items() if v} }"
            )

    # ------------------------------------------------------------------ backend hooks
    def _raw(self, split: str, num_shards: int, shard_index: int) -> tf.data.Dataset:
        raise NotImplementedError

    def _preprocess(self, raw) -> tuple:
        raise NotImplementedError

    # ------------------------------------------------------------------ preprocessing pieces
    def preprocess_features(self, features: dict) -> dict:
        """Raw features (encoded image bytes, WAV bytes, strings, floats) -> model inputs.

        Same as ``data.preprocessor(features)`` (a `Preprocessor`, embeddable at export).
        """
        return self.preprocessor(features)

    # ------------------------------------------------------------------ pipelines
    def dataset(
        self,
        split: str = "train",
        batch_size: Optional[int] = 32,
        *,
        shuffle: Optional[bool] = None,
        seed: Optional[int] = None,
        cache: Union[None, bool, str] = None,
        shuffle_buffer: Optional[int] = None,
        repeat: bool = False,
        drop_remainder: bool = False,
        num_shards: int = 1,
        shard_index: int = 0,
        prefetch: bool = True,
        autotune: bool = False,
        splittable: bool = False,
    ) -> tf.data.Dataset:
        """A ``tf.data.Dataset`` of ``(features dict, label)`` for one split.

        Args:
            split: ``"train"``, ``"validation"`` or ``"test"``.
            batch_size: examples per batch; None for single examples.
            shuffle: shuffle each epoch (default: True for train only).
            seed: shuffle seed; with a seed the order is reproducible.
            cache: None (decode every epoch), ``"memory"``/True, or a file path prefix.
            shuffle_buffer: buffer size; default: the whole split (before decoding when not
                cached, after the cache otherwise, capped at 10000).
            repeat: repeat forever (for ``steps_per_epoch`` training).
            num_shards, shard_index: read only every ``num_shards``-th example starting at
                ``shard_index`` (multi-worker input; shards are disjoint).
            autotune: let tf.data's autotuner pick parallelism and buffers (off by default: see
                `pipeline_options`; the default runs one decode call per core).
            splittable: for a tf.data service in ``distributed_epoch`` mode (`mmzoo.data.service`),
                which splits the source over its workers: no check of the source's element count.

        Example:
        >>> ds = data.dataset("train", batch_size=64, shuffle=True, seed=0)  # doctest: +SKIP
        """
        self._check_split(split)
        if not (isinstance(num_shards, int) and num_shards >= 1 and 0 <= shard_index < num_shards):
            raise ValueError(
                "Expected num_shards >= 1 and 0 <= shard_index < num_shards. "
                f"Received: num_shards={num_shards}, shard_index={shard_index}"
            )
        if shuffle is None:
            shuffle = split == "train"
        n = self.splits[split]
        ds = self._raw_splittable(split, num_shards, shard_index) if splittable else self._raw(split, num_shards,
                                                                                                 shard_index)
        cache_on = bool(cache)
        if shuffle and not cache_on:
            buffer = shuffle_buffer or self.raw_shuffle_buffer or n
            ds = ds.shuffle(min(buffer, n), seed=seed, reshuffle_each_iteration=True)
        calls = AUTOTUNE if autotune else cpu_parallelism()
        ds = ds.map(self._preprocess, num_parallel_calls=calls)
        targets = self.spec.targets
        if len(targets) == 1 and type(targets[0]).model_pair is not targets_lib.Target.model_pair:
            ds = ds.map(targets[0].model_pair, num_parallel_calls=calls)  # (a captioner's decoder input)
        if cache_on:
            if isinstance(cache, str) and cache != "memory":
                digest = hashlib.sha1(self.spec.to_json().encode("utf-8")).hexdigest()[:10]
                prefix = f"{cache}-{split}-{shard_index}of{num_shards}-{digest}"
                os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
                ds = ds.cache(prefix)
            else:
                ds = ds.cache()
            if shuffle:
                buffer = shuffle_buffer or min(n, 10000)
                ds = ds.shuffle(min(buffer, n), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        if batch_size is not None:
            ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=calls)
        if prefetch:
            ds = ds.prefetch(AUTOTUNE)  # without the autotuner: grows on its own while the consumer waits
        return ds.with_options(pipeline_options(autotune=autotune, deterministic=not (shuffle and seed is None)))

    def _raw_splittable(self, split, num_shards, shard_index):
        """`_raw` for a source a tf.data service splits (a backend overrides it where they differ)."""
        return self._raw(split, num_shards, shard_index)

    def dataset_fn(
        self, split: str = "train", global_batch_size: int = 32, **kwargs
    ) -> Callable[[tf.distribute.InputContext], tf.data.Dataset]:
        """A function for ``strategy.distribute_datasets_from_function``: each input pipeline
        reads its own shard with the per-replica batch size.

        Example:
        >>> fn = data.dataset_fn("train", global_batch_size=256)  # doctest: +SKIP
        >>> dist = strategy.distribute_datasets_from_function(fn)
        """

        def fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
            return self.dataset(
                split,
                context.get_per_replica_batch_size(global_batch_size),
                num_shards=context.num_input_pipelines,
                shard_index=context.input_pipeline_id,
                **kwargs,
            )

        return fn


# ====================================================================== manifest backend
class ManifestData(MultimodalData):
    """Data read from a CSV / JSONL manifest (see `from_manifest`)."""

    def __init__(self, spec, report, columns: Dict[str, dict], resample: bool = True):
        super().__init__(spec, report, resample)
        self._columns = columns

    @property
    def splits(self) -> Dict[str, int]:
        return {s: len(self._columns[s]["row"]) for s in manifest_lib.SPLITS}

    def rows(self, split: str) -> np.ndarray:
        """Manifest row numbers of a split's examples, in dataset order (unshuffled)."""
        return np.asarray(self._columns[split]["row"])

    def input_keys(self, split: str) -> List[str]:
        """One string per example naming its inputs (file paths, texts): rows with the same
        key show the same thing (a captioner's several captions of one image)."""
        cols = self._columns[split]
        values = [np.asarray(cols[m]).tolist() for m in self.spec.modalities]
        return [json.dumps([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in row], ensure_ascii=False)
                for row in zip(*values)]

    def references(self, split: str) -> Optional[List[str]]:
        """A captioner's caption of each example as written in the manifest (None otherwise)."""
        texts = self._columns[split].get("caption_text")
        return None if texts is None else list(texts)

    def _raw(self, split, num_shards, shard_index):
        cols = self._columns[split]
        tensors = {k: v for k, v in cols.items() if k in self.spec.modalities or k == "label"}
        ds = tf.data.Dataset.from_tensor_slices(tensors)
        if num_shards > 1:
            ds = ds.shard(num_shards, shard_index)
        return ds

    def _preprocess(self, raw):
        features = {m.name: self._read(m, raw[m.name]) for m in records(self.spec)}
        return self.preprocess_features(features), raw["label"]

    def _read(self, record, value):
        if record.name in self.spec.optional and record.is_file:  # "" = absent (the preprocessor fills it)
            return tf.cond(tf.equal(value, ""), lambda: tf.constant(b""), lambda: record.read(value))
        return record.read(value)


def _spec_args(spec: Optional[DataSpec], given: dict) -> dict:
    """Settings from the spec when one is given (a conflicting argument is an error)."""
    if spec is None:
        return {k: (DEFAULTS[k] if v is None else v) for k, v in given.items()}
    from_spec = loader_settings(spec)
    for k, v in given.items():
        if (
            v is not None
            and k != "audio_seconds"
            and (tuple(v) if k == "image_size" else v) != from_spec[k]
        ):
            raise ValueError(
                f"{k}={v!r} conflicts with the given spec ({k}={from_spec[k]!r}). "
                "With spec=..., leave preprocessing settings out: the spec decides them."
            )
    return from_spec


def _seeded_split(
    n: int, strata: Optional[Sequence[str]], val_fraction: float, test_fraction: float, seed: int,
    groups: Optional[Sequence[str]] = None,
) -> List[str]:
    if groups is not None:  # whole groups go to one split (no caption of a test image is trained on)
        order = list(dict.fromkeys(groups))
        per_group = dict(zip(order, _seeded_split(len(order), None, val_fraction, test_fraction, seed)))
        return [per_group[g] for g in groups]
    rng = np.random.default_rng(seed)
    out = ["train"] * n
    groups: Dict[str, List[int]] = {}
    for i in range(n):
        groups.setdefault(strata[i] if strata is not None else "", []).append(i)
    for key in sorted(groups):
        idx = groups[key]
        perm = [idx[j] for j in rng.permutation(len(idx))]
        n_val = int(round(len(idx) * val_fraction))
        n_test = int(round(len(idx) * test_fraction))
        while n_val + n_test >= len(idx) and (n_val or n_test):  # keep one for training
            if n_test >= n_val and n_test:
                n_test -= 1
            else:
                n_val -= 1
        for j in perm[:n_val]:
            out[j] = "validation"
        for j in perm[n_val : n_val + n_test]:
            out[j] = "test"
    return out


def _decode_failures(paths: List[str], fn) -> Dict[int, str]:
    """Decode every file with the pipeline's own TF function; {index: reason} for failures."""
    if not paths:
        return {}
    ds = tf.data.Dataset.from_tensor_slices((tf.range(len(paths), dtype=tf.int64), paths))
    ds = ds.map(
        lambda i, p: (i, fn(tf.io.read_file(p))), num_parallel_calls=cpu_parallelism(), deterministic=False
    )
    ds = ds.map(lambda i, x: i).ignore_errors(log_warning=False).with_options(pipeline_options(deterministic=False))
    ok = set(int(i) for i in ds.as_numpy_iterator())
    failures = {}
    for i, path in enumerate(paths):
        if i in ok:
            continue
        try:
            fn(tf.io.read_file(path))
            failures[i] = "could not be decoded"
        except (tf.errors.OpError, ValueError) as e:
            failures[i] = f"could not be decoded: {clean_tf_error(e)}"
    return failures


def from_manifest(
    path: str,
    *,
    spec: Optional[DataSpec] = None,
    modalities: Optional[Sequence[str]] = None,
    task: Optional[str] = None,
    tasks: Optional[Dict[str, dict]] = None,
    image_size: Optional[Sequence[int]] = None,
    image_channels: Optional[int] = None,
    image_resize: Optional[str] = None,
    image_dtype: Optional[str] = None,
    seq_len: Optional[int] = None,
    tokenizer: Union[None, str, dict] = None,
    min_count: int = 1,
    max_vocab_size: Optional[int] = 20000,
    sample_rate: Optional[int] = None,
    audio_seconds: Optional[float] = None,
    resample: bool = True,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    root: Optional[str] = None,
    columns: Optional[Dict[str, str]] = None,
    format: Optional[str] = None,
    allow_absolute_paths: bool = False,
    on_error: str = "raise",
    validate: str = "decode",
    optional: Optional[Sequence[str]] = None,
    caption_len: Optional[int] = None,
) -> ManifestData:
    """Load a CSV / JSONL manifest, check every row, learn vocabulary and class names.

    Args:
        path: the manifest (``.csv``, ``.tsv``, ``.jsonl``); file paths in it are relative
            to its folder (or ``root``).
        spec: a saved `DataSpec` to reuse (vocabulary, class names, shapes) instead of
            learning them, so evaluation and serving preprocess exactly like training.
        modalities: a subset of the manifest's input columns (default: all present).
        task: ``classification``, ``multilabel``, ``regression`` (default: inferred from the
            ``label`` column) or ``multitask``: one ``label_<output>`` column per output
            (the default when the manifest has only such columns).
        tasks: for multitask, ``{output: {"task": kind}}`` (default: inferred per column).
        image_size, image_channels, image_resize, image_dtype: the image input
            (``image_resize="pad"`` keeps the aspect ratio).
        seq_len, tokenizer, min_count, max_vocab_size: text ids and vocabulary (learned on
            the train split; ``tokenizer="auto"|"word"|"char"`` or a dict).
        sample_rate, audio_seconds, resample: the audio input; other rates are resampled,
            or rejected with ``resample=False``.
        val_fraction, test_fraction, seed: the split when the manifest has no split column
            (stratified by class for classification).
        columns: map input names to other column names, e.g. ``{"text": "caption"}``.
        allow_absolute_paths: accept absolute file paths.
        on_error: ``"raise"`` (one error listing every bad row) or ``"skip"`` (drop bad
            rows, count them in ``data.report``).
        validate: ``"decode"`` (decode every file with TF up front) or ``"header"``.
        optional: inputs a row may leave empty (image, text, audio): those rows train with
            that input blank, and the model accepts requests without it (an empty string).
        caption_len: a captioner's longest caption in tokens (``caption`` column; default: the
            longest train caption, at most 48); longer captions are cut, and counted in the report.

    Example:
    >>> data = mmzoo.data.from_manifest("data/train.csv", image_size=(64, 64))  # doctest: +SKIP
    >>> data.modalities, data.num_classes, data.class_names
    """
    check_on_error(on_error)
    if validate not in ("decode", "header"):
        raise ValueError(f"validate must be 'decode' or 'header'. Received: {validate!r}")
    if spec is not None and tokenizer is not None:
        raise ValueError("tokenizer= conflicts with spec=: the spec decides the tokenizer.")
    if spec is not None and caption_len is not None and caption_len != spec.caption_len:
        raise ValueError(f"caption_len={caption_len} conflicts with the given spec (caption_len={spec.caption_len}).")
    if spec is not None and task is not None and task != spec.task:
        raise ValueError(f"task={task!r} conflicts with the given spec (task={spec.task!r}).")
    settings = _spec_args(
        spec,
        {
            "image_size": image_size,
            "image_channels": image_channels,
            "image_resize": image_resize,
            "image_dtype": image_dtype,
            "seq_len": seq_len,
            "sample_rate": sample_rate,
            "audio_seconds": audio_seconds,
        },
    )
    if settings["image_resize"] not in image_lib.IMAGE_RESIZE_MODES:
        raise ValueError(
            f"image_resize must be one of {list(image_lib.IMAGE_RESIZE_MODES)}. "
            f"Received: {settings['image_resize']!r}"
        )
    if isinstance(tokenizer, str):
        tokenizer = {"mode": tokenizer}
    tokenizer = text_lib.tokenizer_config(spec.tokenizer if spec is not None else tokenizer)
    source = str(path)
    root = os.path.abspath(root if root is not None else os.path.dirname(os.path.abspath(source)))

    rows, mapping, ignored = manifest_lib.read_manifest(source, columns, format,
                                                        task or (spec.task if spec is not None else None))
    report = DataReport(source=source, total_rows=len(rows))
    present = [m for m in MODALITIES if m in mapping]
    if spec is not None:
        missing = [m for m in spec.modalities if m not in present]
        if missing:
            raise DataError(
                f"{source}: the spec needs {missing} but the manifest has no such column. "
                f"Input columns found: {present}"
            )
        chosen = list(spec.modalities)
    elif modalities is not None:
        missing = [m for m in modalities if m not in present]
        if missing:
            raise DataError(
                f"{source}: the model needs input columns {missing}, which the manifest lacks. "
                f"Input columns found: {present}"
            )
        chosen = sorted(modalities)
    else:
        chosen = present

    if spec is not None:
        optional = list(spec.optional)
    optional = sorted(optional or [])
    if "tabular" in optional:
        raise DataError(f"{source}: tabular cannot be optional (numbers have no 'absent' value); add a 0/1 "
                        "column that says whether the values are known.")
    strange = [m for m in optional if m not in chosen]
    if strange:
        raise DataError(f"{source}: optional={strange} names inputs the model does not read ({chosen}).")
    bad: Dict[int, RowError] = {}

    def fail(r, column, value, reason):
        if r.row not in bad:
            bad[r.row] = RowError(source, r.row, r.line, column, value, reason)

    for r in rows:
        if r.error:
            fail(r, *r.error)
    good = lambda: [r for r in rows if r.row not in bad]  # noqa: E731

    try:
        targets = targets_lib.manifest_targets(
            manifest_lib.label_columns(mapping), task=task, tasks=tasks, spec=spec, source=source,
            values_of=lambda column: [r.values.get(column) for r in good()])
    except ValueError as e:
        raise DataError(str(e)) from None
    used_labels = {t.column for t in targets}
    unused = ([mapping[c] for c in present if c not in chosen]
              + [mapping[c] for c in manifest_lib.label_columns(mapping) if c not in used_labels] + ignored)
    if unused:
        report.notes.append(f"columns this model does not use (ignored): {unused}")
    input_fields = spec_fields_from_settings(settings)

    # ---------------------------------------------------------- per-row Python checks
    where = {"root": root, "allow_absolute_paths": allow_absolute_paths, "resample": resample,
             "sample_rate": int(settings["sample_rate"])}
    parsed: Dict[int, dict] = {}
    for r in good():
        p: dict = {}
        try:
            for column in chosen:
                value = r.values.get(column)
                if column in optional and (value is None or (isinstance(value, str) and not value.strip())):
                    p[column] = ""  # absent
                    continue
                try:
                    p[column] = get_modality(column).check_cell(value, where)
                except ValueError as e:
                    raise _RowProblem(column, value, str(e)) from e
            p["label"] = {}
            for t in targets:
                try:  # (a pair manifest without a group column: every row is its own group)
                    p["label"][t.name] = t.parse(r.values.get(t.column) if t.column in mapping else f"row {r.row}")
                except ValueError as e:
                    raise _RowProblem(mapping[t.column], r.values.get(t.column), str(e)) from e
            if "split" in mapping:
                try:
                    p["split"] = manifest_lib.parse_split(r.values.get("split"))
                except ValueError as e:
                    raise _RowProblem("split", r.values.get("split"), str(e)) from e
        except _RowProblem as e:
            fail(r, e.column, e.value, e.reason)
            continue
        parsed[r.row] = p

    # ---------------------------------------------------------- sizes that must agree
    def check_lengths(key, expected, what):
        for r in good():
            n = len(parsed[r.row][key])
            if n != expected:
                fail(r, key, r.values.get(key), f"has {n} values, expected {expected} ({what})")

    tabular_dim = spec.tabular_dim if spec is not None else None
    if "tabular" in chosen:
        if tabular_dim is None:
            firsts = [r for r in good()]
            tabular_dim = len(parsed[firsts[0].row]["tabular"]) if firsts else 1
            what = f"as in row {firsts[0].row}" if firsts else ""
        else:
            what = "the spec's tabular_dim"
        check_lengths("tabular", tabular_dim, what)
    for t in targets:
        if t.has_classes or not t.has_values:
            continue
        firsts = good()
        if spec is None:
            t.num_classes = len(parsed[firsts[0].row]["label"][t.name]) if firsts else 1
            what = f"as in row {firsts[0].row}" if firsts else ""
        else:
            what = "the spec's num_classes"
        for r in firsts:
            n = len(parsed[r.row]["label"][t.name])
            if n != t.num_classes:
                fail(r, mapping[t.column], r.values.get(t.column),
                     f"has {n} values, expected {t.num_classes} ({what})")

    # ---------------------------------------------------------- sizes from the data
    size_of: Dict[str, Dict[int, float]] = {}
    if "audio" in chosen:
        size_of["audio"] = {r.row: sizes.wav_seconds(parsed[r.row]["audio"]) for r in good()
                            if parsed[r.row]["audio"] != ""}
    if "text" in chosen:
        todo = [r for r in good() if parsed[r.row]["text"] != ""]
        counts = sizes.token_counts([parsed[r.row]["text"] for r in todo], tokenizer)
        size_of["text"] = {r.row: int(c) for r, c in zip(todo, counts)}
    if spec is None:
        sides = None
        if "image" in chosen and image_size is None:
            measured = [sizes.image_side(parsed[r.row]["image"]) for r in good() if parsed[r.row]["image"] != ""]
            sides = np.array([m for m in measured if m is not None])
        fitted = sizes.fitted_settings(
            {"audio_seconds": audio_seconds, "seq_len": seq_len, "image_size": image_size},
            np.array(list(size_of["audio"].values())) if "audio" in size_of else None,
            np.array(list(size_of["text"].values())) if "text" in size_of else None,
            sides, DEFAULTS["image_size"])
        for key in ("audio_seconds", "seq_len", "image_size"):
            if key in fitted:
                settings[key] = fitted[key]
        report.notes += [fitted[k] for k in ("image_note", "audio_note", "text_note") if k in fitted]
        input_fields = spec_fields_from_settings(settings)

    # ---------------------------------------------------------- decode every file with TF
    if validate == "decode":
        check_spec = DataSpec(modalities=chosen, **input_fields)
        for column in chosen:
            decode = get_modality(column).decode_check(check_spec, resample)
            if decode is None:
                continue
            todo = [r for r in good() if parsed[r.row][column] != ""]
            failures = _decode_failures([parsed[r.row][column] for r in todo], decode)
            for i, reason in failures.items():
                fail(todo[i], column, todo[i].values.get(column), reason)

    # ---------------------------------------------------------- splits and class names
    todo = good()
    first = targets[0]
    strata = [str(parsed[r.row]["label"][first.name]) for r in todo] if targets_lib.stratify_by(first) else None
    groups = [parsed[r.row]["label"][first.name] for r in todo] if first.kind == "retrieval" else None
    if first.kind == "captioning":  # the captions of one input stay in one split
        groups = [json.dumps([parsed[r.row][m] for m in chosen], ensure_ascii=False) for r in todo]
    how = f"{'stratified by class, ' if strata is not None else ''}seed {seed}"
    if first.kind == "captioning":
        how = f"the captions of one input together, seed {seed}"
        report.notes.append(f"a caption column: the rows are inputs to caption ({len(set(groups))} distinct inputs, "
                            f"{len(todo)} captions)")
    elif groups is not None:
        how = f"{'whole groups, ' if 'group' in mapping else ''}seed {seed}"
        report.notes.append(
            "no label column: the rows are pairs to match (a retriever: query and candidate towers); "
            + (f"{len(set(groups))} groups (rows of one group are never each other's negatives)"
               if "group" in mapping else "no group column, so every row is its own group"))
    if "split" in mapping:
        splits = [parsed[r.row]["split"] for r in todo]
        if val_fraction and "validation" not in splits:  # carve one from train (the same under a spec)
            train_idx = [i for i, s in enumerate(splits) if s == "train"]
            carved = _seeded_split(len(train_idx), [strata[i] for i in train_idx] if strata else None,
                                   val_fraction, 0.0, seed, [groups[i] for i in train_idx] if groups else None)
            for i, s in zip(train_idx, carved):
                splits[i] = s
            n_val = carved.count("validation")
            report.notes.append(
                f"the split column has no validation rows: {n_val} of the {len(train_idx)} train rows "
                f"(val_fraction={val_fraction:g}, {how}) are held out for validation (early stopping and "
                "the kept epoch); pass val_fraction=0 to train on all of them")
    else:
        splits = _seeded_split(len(todo), strata, val_fraction, test_fraction, seed, groups)
        shares = f"{1 - val_fraction - test_fraction:.0%} / {val_fraction:.0%} / {test_fraction:.0%}"
        report.notes.append(f"no split column: rows split into train / validation / test ({shares}, {how})")
    split_of = {r.row: s for r, s in zip(todo, splits)}
    if groups is not None and "split" in mapping and first.kind == "retrieval":
        # Fine when a group is a kind of thing (every picture of 73); a leak when it is one thing
        # (the captions of one image): said out loud either way.
        first_split: Dict[str, tuple] = {}
        spread = {}
        for r, g in zip(todo, groups):
            where_first = first_split.setdefault(g, (split_of[r.row], r.row))
            if where_first[0] != split_of[r.row] and g not in spread:
                spread[g] = f"group {g!r}: row {where_first[1]} ({where_first[0]}) and row {r.row} ({split_of[r.row]})"
        if spread:
            report.notes.append(
                f"{len(spread)} of {len(first_split)} groups have rows in more than one split, e.g. "
                f"{'; '.join(list(spread.values())[:3])}: right when a group is a kind of thing (every picture of "
                "one number), a leak when it is one thing (the captions of one image: its test pairs are trained on)")
    for t in targets:
        if t.kind == "captioning":
            captions = {r.row: parsed[r.row]["label"][t.name] for r in todo}
            lengths = dict(zip(captions, sizes.token_counts(list(captions.values()), tokenizer)))
            if spec is not None:
                t.class_names, t.num_classes, t.caption_len = list(spec.class_names), spec.num_classes, spec.caption_len
            else:
                train_captions = [captions[r.row] for r in todo if split_of[r.row] == "train"]
                t.class_names = text_lib.build_caption_vocabulary(train_captions, tokenizer, min_count,
                                                                  max_vocab_size)
                t.num_classes = len(t.class_names)
                longest = max((lengths[r.row] for r in todo if split_of[r.row] == "train"), default=1)
                t.caption_len = int(caption_len or min(max(longest, 1), CAPTION_LEN_CAP))
                report.notes.append(f"captions: {t.num_classes} tokens in the vocabulary (from the train split), "
                                    f"caption_len={t.caption_len} (the longest train caption has {longest} tokens"
                                    + (f"; at most {CAPTION_LEN_CAP} by default" if longest > CAPTION_LEN_CAP else "")
                                    + ")")
            t.tokenizer = tokenizer
            cut = sorted(row for row, n in lengths.items() if n > t.caption_len and row not in bad)
            if cut:
                report.notes.append(f"{len(cut)} captions are longer than caption_len={t.caption_len} tokens and are "
                                    f"cut (rows {_short(cut)}); pass caption_len= to keep more")
        if not t.has_classes:
            continue
        if spec is not None:
            known, where = set(t.names()), "the spec's class names"
        else:
            train_names = set()
            for r in todo:
                if split_of[r.row] == "train":
                    train_names.update(t.label_values(parsed[r.row]["label"][t.name]))
            t.class_names = manifest_lib.sort_class_names(train_names)
            t.num_classes = len(t.class_names)
            known, where = set(t.class_names), "the train split"
        for r in todo:
            unseen = [n for n in t.label_values(parsed[r.row]["label"][t.name]) if n not in known]
            if unseen:
                fail(r, mapping[t.column], r.values.get(t.column),
                     f"class {unseen[0]!r} ({split_of[r.row]} split) is not in {where}; "
                     f"known classes: {_short(sorted(known) if spec is None else t.names())}")

    report.errors = sorted(bad.values(), key=lambda e: e.row)
    if on_error == "raise":
        raise_if_errors(report)
    report.skipped = len(bad)
    log_skipped(report)
    final = good()
    audio_seconds_used = input_fields["audio_samples"] / input_fields["sample_rate"]
    report.notes += sizes.cut_notes(size_of, [r.row for r in final], audio_seconds_used, input_fields["seq_len"])
    for m in optional:
        absent = sum(1 for r in final if parsed[r.row][m] == "")
        report.notes.append(f"{m} is optional: {absent} of {len(final)} rows have none (they train with it "
                            "blank; requests may send an empty string)")
    train_rows = [r for r in final if split_of[r.row] == "train"]
    if not train_rows:
        raise DataError(f"{source}: no usable rows in the train split.\n{report.summary()}", report)

    # ---------------------------------------------------------- spec
    for t in targets:
        if t.has_classes and not t.class_names:
            raise DataError(f"{source}: no class names found in the train split ({t.column}).", report)
    if spec is None:
        vocabulary = None
        if "text" in chosen:
            vocabulary = text_lib.build_vocabulary(
                (parsed[r.row]["text"] for r in train_rows), tokenizer, min_count, max_vocab_size
            )
        spec = DataSpec(
            modalities=chosen,
            **input_fields,
            vocab_size=max(3, len(vocabulary)) if vocabulary else DataSpec.vocab_size,
            tabular_dim=tabular_dim or DataSpec.tabular_dim,
            **targets_lib.spec_fields_of(targets),
            **({"caption_len": targets[0].caption_len} if targets[0].kind == "captioning" else {}),
            vocabulary=vocabulary,
            tokenizer=tokenizer,
            optional=optional,
        )
    elif "text" in spec.modalities and not spec.vocabulary:
        raise ValueError("The given spec has no vocabulary, so its text cannot be tokenized.")

    # ---------------------------------------------------------- columns per split
    columns_out = {}
    for split in manifest_lib.SPLITS:
        srows = [r for r in final if split_of[r.row] == split]
        cols: Dict[str, object] = {"row": np.array([r.row for r in srows], np.int64)}
        for m in chosen:
            cols[m] = get_modality(m).column([parsed[r.row][m] for r in srows], spec)
        encoded = {t.name: t.encode([parsed[r.row]["label"][t.name] for r in srows]) for t in targets}
        if targets[0].kind == "captioning":  # (evaluation scores against the captions as written)
            cols["caption_text"] = [parsed[r.row]["label"][targets[0].name] for r in srows]
        cols["label"] = encoded[targets[0].name] if targets[0].key is None else encoded
        columns_out[split] = cols
        report.kept[split] = len(srows)
    data = ManifestData(spec, report, columns_out, resample=resample)
    # How to open the same rows again (a run records it; evaluation and export reopen it with
    # the run's saved spec). Settings the spec holds are not repeated here.
    options = dict(
        modalities=list(modalities) if modalities else None, task=task, tasks=tasks, resample=resample,
        val_fraction=val_fraction, test_fraction=test_fraction, seed=seed, root=root, columns=columns,
        format=format, allow_absolute_paths=allow_absolute_paths, on_error=on_error, validate=validate,
        optional=optional or None, caption_len=caption_len,
    )
    data.source = {
        "kind": "manifest",
        "path": os.path.abspath(path),
        "description": str(path),
        "options": {k: v for k, v in options.items() if v is not None},
    }
    return data


class _RowProblem(Exception):
    def __init__(self, column, value, reason):
        super().__init__(reason)
        self.column, self.value, self.reason = column, value, reason


def _short(names, n: int = 10) -> str:
    names = list(names)
    return str(names) if len(names) <= n else str(names[:n])[:-1] + f", ... ({len(names)} in all)]"
