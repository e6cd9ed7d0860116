"""The data spec: what a model's inputs and outputs look like.

A `DataSpec` travels with every mmzoo model (``model.spec``) and with every dataset
(``data.spec``), so the data pipeline, training, evaluation and export read shapes,
vocabulary and class names from one place instead of repeating settings.
It is plain Python (no TensorFlow import) and saves to JSON.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, List, Optional, Sequence

from mmzoo.registry import MODALITY_NAMES as MODALITIES
from mmzoo.tasks import targets as targets_lib

IMAGE_DTYPES = ("uint8", "float32")
IMAGE_RESIZE = ("stretch", "pad")


@dataclasses.dataclass
class DataSpec:
    """Shapes, dtypes, vocabulary and labels shared by data, model and export.

    Args:
        modalities: the input modalities, any of ``image``, ``text``, ``audio``, ``tabular``.
        image_shape: ``(height, width, channels)`` of the ``image`` input.
        image_dtype: ``"uint8"`` or ``"float32"``; pixel values are 0..255 either way.
        seq_len: number of token ids in the ``text`` input (padding id 0).
        vocab_size: size of the token id space, padding (0) and OOV (1) included.
        sample_rate: audio samples per second of the ``audio`` input.
        audio_samples: number of samples in the ``audio`` input (fixed duration).
        tabular_dim: length of the float vector ``tabular`` input.
        task: ``classification``, ``multilabel``, ``regression``, ``retrieval``, ``captioning`` or
            ``multitask``.
        num_classes: classes (classification, multilabel) or outputs (regression).
        class_names: names of the classes, index = class id, when known.
        tasks: for ``multitask``: ``{name: {"task": ..., "num_classes": ...}}``.
        vocabulary: token strings, index = token id (optional; kept by the data side).
        tokenizer: how text becomes ids (``{"mode": "auto", "lowercase": True}``).
        image_resize: how images reach ``image_shape``: ``"stretch"`` (plain resize) or
            ``"pad"`` (keep the aspect ratio, pad with black); export must do the same.
        optional: inputs an example may lack (image, text, audio): an absent one is sent as an
            empty string and reaches the model blank (zeros; text: all padding).
        num_users, num_items: size of the ``user`` / ``item`` id spaces (padding 0 and unknown 1
            included), as ``vocab_size`` is for text.
        user_ids, item_ids: the id strings, index = id (optional; kept by the data side).
        history_len: item ids in the ``history`` input (the most recent ones).
        profile_dim: length of the float vector ``profile`` input (a user's features).
        caption_len: tokens of a generated caption at most (``task="captioning"``, whose
            ``class_names`` are the caption vocabulary and ``num_classes`` its size).

    Example:
    >>> spec = DataSpec(modalities=("image", "text"), num_classes=4)
    >>> spec.input_shapes()["text"]
    (32,)
    """

    modalities: Sequence[str] = ("image", "text")
    image_shape: Sequence[int] = (64, 64, 3)
    image_dtype: str = "uint8"
    seq_len: int = 32
    vocab_size: int = 10000
    sample_rate: int = 16000
    audio_samples: int = 16000
    tabular_dim: int = 8
    task: str = "classification"
    num_classes: int = 10
    class_names: Optional[Sequence[str]] = None
    tasks: Optional[dict] = None
    vocabulary: Optional[Sequence[str]] = None
    tokenizer: dict = dataclasses.field(
        default_factory=lambda: {"mode": "auto", "lowercase": True}
    )
    image_resize: str = "stretch"
    optional: Sequence[str] = ()
    num_users: int = 1000
    num_items: int = 1000
    user_ids: Optional[Sequence[str]] = None
    item_ids: Optional[Sequence[str]] = None
    history_len: int = 20
    profile_dim: int = 2
    caption_len: int = 24

    def __post_init__(self):
        self.modalities = tuple(sorted(self.modalities))
        self.optional = tuple(sorted(self.optional))
        self.image_shape = tuple(int(d) for d in self.image_shape)
        if self.class_names is not None:
            self.class_names = [str(c) for c in self.class_names]
        if self.vocabulary is not None:
            self.vocabulary = [str(t) for t in self.vocabulary]
        for field in ("user_ids", "item_ids"):
            if getattr(self, field) is not None:
                setattr(self, field, [str(t) for t in getattr(self, field)])
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise ValueError naming the first impossible setting."""
        unknown = [m for m in self.modalities if m not in MODALITIES]
        if unknown:
            raise ValueError(
                f"Unknown modalities {unknown}. Expected a subset of {list(MODALITIES)}."
            )
        if not self.modalities:
            raise ValueError("A DataSpec needs at least one modality. Received none.")
        if len(set(self.modalities)) != len(self.modalities):
            raise ValueError(f"Duplicate modalities: {list(self.modalities)}.")
        _positive_int("seq_len", self.seq_len)
        _positive_int("sample_rate", self.sample_rate)
        _positive_int("audio_samples", self.audio_samples)
        _positive_int("tabular_dim", self.tabular_dim)
        _positive_int("history_len", self.history_len)
        _positive_int("profile_dim", self.profile_dim)
        _positive_int("caption_len", self.caption_len)
        for field, ids, size in (("user_ids", self.user_ids, self.num_users),
                                 ("item_ids", self.item_ids, self.num_items)):
            if not isinstance(size, int) or size < 3:
                raise ValueError(f"num_{field[:4]}s must be at least 3 (padding 0, unknown 1 and one id). "
                                 f"Received: {size!r}")
            if ids is not None and len(ids) > size:
                raise ValueError(f"{field} has {len(ids)} ids but num_{field[:4]}s={size}.")
        if self.vocab_size < 3:
            raise ValueError(
                "vocab_size must be at least 3 (padding 0, OOV 1 and one token). "
                f"Received: vocab_size={self.vocab_size}"
            )
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise ValueError(
                "image_shape must be (height, width, channels) of positive ints. "
                f"Received: image_shape={self.image_shape}"
            )
        if self.image_shape[-1] not in (1, 3, 4):
            raise ValueError(
                f"image channels must be 1, 3 or 4. Received: image_shape={self.image_shape}"
            )
        if self.image_dtype not in IMAGE_DTYPES:
            raise ValueError(
                f"image_dtype must be one of {list(IMAGE_DTYPES)}. Received: {self.image_dtype!r}"
            )
        if self.image_resize not in IMAGE_RESIZE:
            raise ValueError(
                f"image_resize must be one of {list(IMAGE_RESIZE)}. Received: {self.image_resize!r}"
            )
        strange = [m for m in self.optional if m not in self.modalities]
        if strange:
            raise ValueError(f"optional inputs {strange} are not among the modalities {list(self.modalities)}.")
        if "tabular" in self.optional:
            raise ValueError("tabular cannot be optional (numbers have no 'absent' value); "
                             "add a 0/1 column that says whether the values are known.")
        if self.optional and len(self.optional) == len(self.modalities):
            raise ValueError(f"Every input is optional ({list(self.optional)}); at least one must be required.")
        targets_lib.check_spec(self)
        if self.vocabulary is not None and len(self.vocabulary) > self.vocab_size:
            raise ValueError(
                f"vocabulary has {len(self.vocabulary)} tokens but vocab_size={self.vocab_size}."
            )

    # ------------------------------------------------------------------ inputs
    def input_shapes(self) -> dict:
        """Per-example shape of each model input, by input name."""
        shapes = {
            "image": self.image_shape,
            "text": (self.seq_len,),
            "audio": (self.audio_samples,),
            "tabular": (self.tabular_dim,),
            "user": (1,),
            "item": (1,),
            "history": (self.history_len,),
            "profile": (self.profile_dim,),
        }
        return {m: shapes[m] for m in self.modalities}

    def input_dtypes(self) -> dict:
        """Dtype of each model input, by input name."""
        dtypes = {
            "image": self.image_dtype,
            "text": "int32",
            "audio": "float32",
            "tabular": "float32",
            "user": "int32",
            "item": "int32",
            "history": "int32",
            "profile": "float32",
        }
        return {m: dtypes[m] for m in self.modalities}

    def model_kwargs(self) -> dict:
        """Keyword arguments for `mmzoo.build` that make a model fit this data, and carry how
        it was preprocessed (image resize mode, vocabulary, tokenizer) so that the model's own
        spec exports the same preprocessing: every field of the spec, by name."""
        kwargs = {name: getattr(self, name) for name in field_names()}
        kwargs["modalities"] = list(self.modalities)
        kwargs["tokenizer"] = dict(self.tokenizer)
        return kwargs

    @property
    def targets(self) -> List["targets_lib.Target"]:
        """What the model predicts: one `mmzoo.tasks.targets.Target` per output."""
        return targets_lib.targets_of(self)

    def replace(self, **changes: Any) -> "DataSpec":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    # --------------------------------------------------------------- (de)serialise
    def to_dict(self, include_vocabulary: bool = True) -> dict:
        data = dataclasses.asdict(self)
        data["modalities"] = list(self.modalities)
        data["image_shape"] = list(self.image_shape)
        data["optional"] = list(self.optional)
        if not include_vocabulary:
            data["vocabulary"] = data["user_ids"] = data["item_ids"] = None
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "DataSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"Unknown DataSpec fields {unknown}. Accepted fields: {sorted(known)}."
            )
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "DataSpec":
        return cls.from_dict(json.loads(text))

    def save(self, path: str) -> str:
        """Write the spec as JSON (atomically) and return the path."""
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(self.to_json())
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str) -> "DataSpec":
        with open(path, encoding="utf-8") as f:
            return cls.from_json(f.read())


#: The data loaders' settings (`mmzoo.data.from_manifest`, `from_tfds`, `mmzoo.datasets.load`)
#: and the DataSpec fields they set: the one place that maps one onto the other.
LOADER_SETTINGS = {
    "image_size": "(height, width) of the image input: image_shape[:2]",
    "image_channels": "channels of the image input: image_shape[2]",
    "image_resize": "image_resize",
    "image_dtype": "image_dtype",
    "seq_len": "seq_len",
    "sample_rate": "sample_rate",
    "audio_seconds": "duration of the audio input: audio_samples / sample_rate",
}


def loader_settings(spec: Optional["DataSpec"] = None) -> dict:
    """The loader settings a spec implies (the defaults' without a spec).

    Example:
    >>> loader_settings()["image_size"], loader_settings()["audio_seconds"]
    ((64, 64), 1.0)
    """
    spec = spec or DataSpec()
    return {
        "image_size": tuple(spec.image_shape[:2]),
        "image_channels": spec.image_shape[2],
        "image_resize": spec.image_resize,
        "image_dtype": spec.image_dtype,
        "seq_len": spec.seq_len,
        "sample_rate": spec.sample_rate,
        "audio_seconds": spec.audio_samples / spec.sample_rate,
    }


def spec_fields_from_settings(settings: dict) -> dict:
    """Loader settings -> the DataSpec fields they set (the inverse of `loader_settings`)."""
    rate = int(settings["sample_rate"])
    return {
        "image_shape": (*tuple(int(d) for d in settings["image_size"]), int(settings["image_channels"])),
        "image_resize": settings["image_resize"],
        "image_dtype": settings["image_dtype"],
        "seq_len": int(settings["seq_len"]),
        "sample_rate": rate,
        "audio_samples": max(1, int(round(float(settings["audio_seconds"]) * rate))),
    }


def field_names() -> tuple:
    """The spec's fields, in order: the one list `mmzoo.build` overrides, loaders and docs use."""
    return tuple(f.name for f in dataclasses.fields(DataSpec))


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")
