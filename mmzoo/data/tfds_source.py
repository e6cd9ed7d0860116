"""`from_tfds`: a TensorFlow Datasets dataset as a `MultimodalData` object.

Features map onto inputs with ``mapping`` (``{"image": "image", "text": "question",
"label": "answer"}``): Image features are read as encoded bytes and decoded in the pipeline
(like manifest files), Audio int16 becomes float in [-1, 1] and is resampled to the spec's
rate, Text is tokenized with a vocabulary learned on the train split, ClassLabel gives the
class names (a Sequence of ClassLabel: multilabel; a float Tensor: regression; a string
feature: class names learned from the train split).
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Union

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from mmzoo.data import manifest as manifest_lib
from mmzoo.data import text as text_lib
from mmzoo.data.pipeline import DEFAULTS, MultimodalData, _spec_args
from mmzoo.data.validation import DataError, DataReport
from mmzoo.modalities import records
from mmzoo.spec import MODALITIES, DataSpec, spec_fields_from_settings

DEFAULT_MAPPING = {"image": "image", "text": "text", "audio": "audio", "label": "label"}
_SPLIT_NAMES = {
    "train": ("train",),
    "validation": ("validation", "valid", "val", "dev"),
    "test": ("test",),
}


def _get(example, key: str):
    for part in key.split("/"):
        example = example[part]
    return example


def _feature(features, key: str):
    try:
        return _get(features, key)
    except KeyError:
        available = sorted(features.keys())
        raise ValueError(
            f"mapping names the feature {key!r}, which the dataset does not have. "
            f"Features: {available}"
        ) from None


class TFDSData(MultimodalData):
    """Data read from a prepared TFDS dataset (see `from_tfds`)."""

    raw_shuffle_buffer = 4096

    def __init__(
        self,
        spec,
        report,
        builder,
        mapping,
        split_names,
        counts,
        label_kind,
        label_table=None,
        audio_rate=None,
        resample=True,
    ):
        super().__init__(spec, report, resample)
        self.builder = builder
        self.mapping = dict(mapping)
        self._split_names = split_names
        self._counts = counts
        self._label_kind = label_kind
        self._label_table = label_table
        self._audio_rate = audio_rate

    @property
    def splits(self) -> Dict[str, int]:
        return dict(self._counts)

    def _decoders(self):
        feats = self.builder.info.features
        key = self.mapping.get("image")
        if key and "/" not in key and isinstance(feats[key], tfds.features.Image):
            return {key: tfds.decode.SkipDecoding()}
        return None

    def _raw(self, split, num_shards, shard_index, assert_cardinality=True):
        ds = self.builder.as_dataset(
            split=self._split_names[split],
            shuffle_files=False,
            decoders=self._decoders(),
            read_config=tfds.ReadConfig(add_tfds_id=False, assert_cardinality=assert_cardinality),
        )
        keep = {k: v for k, v in self.mapping.items()}
        ds = ds.map(lambda ex: {k: _get(ex, v) for k, v in keep.items()})
        if num_shards > 1:
            ds = ds.shard(num_shards, shard_index)
        return ds

    def _raw_splittable(self, split, num_shards, shard_index):
        # TFDS asserts the split's element count, which fails when a tf.data service hands each
        # of its workers a part of the files
        return self._raw(split, num_shards, shard_index, assert_cardinality=False)

    def _preprocess(self, raw):
        spec = self.spec
        states = self.preprocessor.states()
        feats = {m.name: m.from_decoded(raw[m.name], spec, states[m.name], self._audio_rate, self.resample)
                 for m in records(spec)}
        return feats, self._label(raw["label"])

    def _label(self, label):
        spec = self.spec
        kind = self._label_kind
        if kind == "class":
            return tf.cast(label, tf.int32)
        if kind == "string":
            return self._label_table.lookup(label)
        if kind == "multi":
            ids = tf.cast(tf.reshape(label, [-1]), tf.int32)
            hot = tf.one_hot(ids, spec.num_classes, dtype=tf.float32)
            return tf.reduce_max(tf.concat([hot, tf.zeros([1, spec.num_classes])], 0), axis=0)
        return tf.reshape(tf.cast(label, tf.float32), [spec.num_classes])


def _resolve_splits(info, val_fraction: float) -> Dict[str, str]:
    available = list(info.splits.keys())
    out = {}
    for ours, names in _SPLIT_NAMES.items():
        for name in names:
            if name in available:
                out[ours] = name
                break
    if "train" not in out:
        raise ValueError(f"The dataset has no 'train' split. Splits: {available}")
    if "validation" not in out and val_fraction > 0:
        pct = int(round(100 * (1 - val_fraction)))
        out["validation"] = f"{out['train']}[{pct}%:]"
        out["train"] = f"{out['train']}[:{pct}%]"
    return out


def from_tfds(
    name: Union[str, "tfds.core.DatasetBuilder"],
    mapping: Optional[Dict[str, str]] = None,
    data_dir: Optional[str] = None,
    *,
    spec: Optional[DataSpec] = None,
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
    download: bool = True,
) -> TFDSData:
    """A TFDS dataset whose features map onto image / text / audio / tabular / label.

    Args:
        name: a registered TFDS name (``"shapes_vqa/image_text_small"``) or a builder.
        mapping: input name -> feature key, e.g. ``{"image": "image", "text": "question",
            "label": "answer"}`` (nested keys with ``/``).
        data_dir: the TFDS data directory. A dataset not prepared there is prepared with
            ``download_and_prepare()`` (offline for generated datasets) unless
            ``download=False``.
        spec: a saved `DataSpec` to reuse (vocabulary, class names, shapes).
        image_size ... resample: as in `from_manifest`; by default the image size and the
            audio rate / length follow the features when they are fixed.
        val_fraction: without a validation split, the last part of train becomes one.

    Example:
    >>> data = mmzoo.data.from_tfds("shapes_vqa", mapping={"image": "image",
    ...     "text": "question", "label": "answer"}, data_dir="/tmp/tfds")  # doctest: +SKIP
    """
    mapping = dict(mapping or DEFAULT_MAPPING)
    bad = sorted(set(mapping) - set(MODALITIES) - {"label"})
    if bad:
        raise ValueError(
            f"mapping keys must be among {list(MODALITIES) + ['label']}. Received: {bad}"
        )
    if "label" not in mapping:
        raise ValueError(f"mapping needs a 'label' entry. Received: {mapping}")
    if isinstance(name, tfds.core.DatasetBuilder):
        builder = name
    else:
        kwargs = {"data_dir": data_dir} if data_dir else {}
        builder = tfds.builder(name, **kwargs)
    if not builder.is_prepared():
        if not download:
            raise DataError(
                f"The TFDS dataset {builder.name!r} is not prepared in {builder.data_dir}."
            )
        builder.download_and_prepare()
    info = builder.info
    features = info.features
    modalities = sorted(m for m in mapping if m != "label")
    if not modalities:
        raise ValueError(f"mapping has no input entry. Received: {mapping}")
    feat = {k: _feature(features, v) for k, v in mapping.items()}
    split_names = _resolve_splits(info, val_fraction)
    counts = {s: info.splits[n].num_examples for s, n in split_names.items()}
    for s in manifest_lib.SPLITS:
        counts.setdefault(s, 0)
    source = f"tfds:{builder.name}"
    report = DataReport(source=source, total_rows=sum(counts.values()))
    report.kept = dict(counts)

    # -------------------------------------------------- defaults from the features
    given = {
        "image_size": image_size,
        "image_channels": image_channels,
        "image_resize": image_resize,
        "image_dtype": image_dtype,
        "seq_len": seq_len,
        "sample_rate": sample_rate,
        "audio_seconds": audio_seconds,
    }
    audio_rate = None
    if "audio" in feat:
        audio_rate = getattr(feat["audio"], "sample_rate", None)
    if spec is None:
        if "image" in feat and image_size is None:
            shape = feat["image"].shape
            if shape and shape[0] and shape[1]:
                given["image_size"] = (int(shape[0]), int(shape[1]))
        if "audio" in feat:
            if sample_rate is None and audio_rate:
                given["sample_rate"] = int(audio_rate)
            shape = feat["audio"].shape
            if audio_seconds is None and shape and shape[0]:
                rate = given["sample_rate"] or DEFAULTS["sample_rate"]
                given["audio_seconds"] = int(shape[0]) / float(audio_rate or rate)
    settings = _spec_args(spec, given)
    if "audio" in feat and audio_rate is None:
        audio_rate = int(settings["sample_rate"])

    # -------------------------------------------------- labels
    label_feature = feat["label"]
    label_table = None
    if isinstance(label_feature, tfds.features.ClassLabel):
        kind, task = "class", "classification"
        class_names = list(label_feature.names)
    elif isinstance(label_feature, tfds.features.Sequence) and isinstance(
        label_feature.feature, tfds.features.ClassLabel
    ):
        kind, task = "multi", "multilabel"
        class_names = list(label_feature.feature.names)
    elif np.dtype(label_feature.np_dtype).kind in "OSU":
        kind, task = "string", "classification"
        class_names = None
    elif np.dtype(label_feature.np_dtype).kind == "f":
        kind, task = "float", "regression"
        class_names = None
    else:
        kind, task = "class", "classification"
        class_names = None

    def column(split, key):
        ds = builder.as_dataset(
            split=split_names[split], shuffle_files=False, decoders=_skip_images(features, mapping)
        )
        return [_get(ex, mapping[key]) for ex in tfds.as_numpy(ds)]

    if spec is not None:
        class_names = spec.class_names
        if kind in ("class", "multi") and list(class_names or []) != list(_names_of(label_feature)):
            raise DataError(
                f"{source}: the spec's class names differ from the dataset's ClassLabel names."
            )
    elif kind == "string":
        class_names = manifest_lib.sort_class_names(_as_str(v) for v in column("train", "label"))
    elif kind == "class" and class_names is None:
        class_names = [str(i) for i in range(int(max(column("train", "label"))) + 1)]
    if kind == "string":
        for split in ("validation", "test"):
            if counts.get(split):
                for i, v in enumerate(column(split, "label")):
                    if _as_str(v) not in class_names:
                        raise DataError(
                            f"{source} {split} example {i}: label {_as_str(v)!r} is not in the "
                            f"train split's class names {class_names[:10]}"
                        )
        with tf.init_scope():
            label_table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(class_names), tf.range(len(class_names), dtype=tf.int32)
                ),
                default_value=-1,
            )
    if spec is not None:
        num_classes = spec.num_classes
    elif kind == "float":
        shape = label_feature.shape
        num_classes = int(np.prod(shape)) if shape else 1
    else:
        num_classes = len(class_names)

    tabular_dim = None
    if "tabular" in feat:
        shape = feat["tabular"].shape
        tabular_dim = spec.tabular_dim if spec is not None else int(np.prod(shape) if shape else 1)

    if spec is None:
        tokenizer = text_lib.tokenizer_config(
            {"mode": tokenizer} if isinstance(tokenizer, str) else tokenizer
        )
        vocabulary = None
        if "text" in feat:
            vocabulary = text_lib.build_vocabulary(
                (_as_str(v) for v in column("train", "text")), tokenizer, min_count, max_vocab_size
            )
        spec = DataSpec(
            modalities=modalities,
            **spec_fields_from_settings(settings),
            vocab_size=max(3, len(vocabulary)) if vocabulary else DataSpec.vocab_size,
            tabular_dim=tabular_dim or DataSpec.tabular_dim,
            task=task,
            num_classes=num_classes,
            class_names=class_names,
            vocabulary=vocabulary,
            tokenizer=tokenizer,
        )
    else:
        missing = [m for m in spec.modalities if m not in mapping]
        if missing:
            raise ValueError(f"The spec needs {missing} but mapping has no entry for them.")
    return TFDSData(
        spec,
        report,
        builder,
        {m: mapping[m] for m in list(spec.modalities) + ["label"]},
        split_names,
        counts,
        kind,
        label_table,
        audio_rate,
        resample,
    )


def _skip_images(features, mapping):
    out = {}
    for key in mapping.values():
        if "/" not in key and isinstance(features[key], tfds.features.Image):
            out[key] = tfds.decode.SkipDecoding()
    return out or None


def _names_of(label_feature):
    if isinstance(label_feature, tfds.features.Sequence):
        return label_feature.feature.names
    return label_feature.names


def _as_str(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _as_str(value.item())
    return str(value)
