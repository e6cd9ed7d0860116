"""Built-in offline datasets (TFDS builders) and their loaders.

``import mmzoo.datasets`` registers the TFDS builder ``shapes_vqa`` (it imports
``tensorflow_datasets``, which does not import TensorFlow); ``shapes_captions`` (image <-> text
pairs) and ``shapes_shop`` (a recommender's interactions) are written as files on first use.
Everything that needs TensorFlow is imported inside the functions.

Example:
>>> import mmzoo.datasets
>>> mmzoo.datasets.list_datasets()
['shapes_captions', 'shapes_shop', 'shapes_vqa']
"""

from __future__ import annotations

import difflib
from typing import Any, Optional

import tensorflow_datasets as tfds

from mmzoo.datasets.chance import shapes_vqa_chance_levels
from mmzoo.datasets.shapes_vqa import CONFIG_NAMES as _SHAPES_VQA_CONFIGS
from mmzoo.datasets.shapes_vqa import ShapesVqa  # noqa: F401  (registers the builder)
from mmzoo.datasets.shapes_vqa_generate import ANSWERS, QUESTION_TYPES

__all__ = [
    "ANSWERS",
    "QUESTION_TYPES",
    "builder",
    "chance_levels",
    "list_datasets",
    "load",
    "DEFAULT_CONFIGS",
]

from mmzoo.datasets import shapes_captions as _shapes_captions
from mmzoo.datasets import shapes_shop as _shapes_shop

# Dataset name -> its config names. shapes_vqa is an offline TFDS builder; shapes_captions is
# written as files and a pair manifest (a retriever's format).
_DATASETS = {"shapes_captions": tuple(sorted(_shapes_captions.CONFIGS)),
             "shapes_shop": tuple(sorted(_shapes_shop.CONFIGS)),
             "shapes_vqa": tuple(sorted(_SHAPES_VQA_CONFIGS))}
_DEFAULT_CONFIG = "image_text_audio_small"
#: the config `load(name)` and `mmzoo train --data NAME` use when none is named
DEFAULT_CONFIGS = {"shapes_vqa": "image_text_audio", "shapes_captions": _shapes_captions.DEFAULT_CONFIG,
                   "shapes_shop": "small"}


def list_datasets(with_configs: bool = False) -> list:
    """Names of the built-in datasets, or ``name/config`` for every config.

    Example:
    >>> list_datasets()
    ['shapes_captions', 'shapes_shop', 'shapes_vqa']
    """
    if not with_configs:
        return sorted(_DATASETS)
    return [f"{name}/{config}" for name in sorted(_DATASETS) for config in _DATASETS[name]]


def builder(
    name: str = "shapes_vqa",
    config: str = _DEFAULT_CONFIG,
    data_dir: Optional[str] = None,
):
    """The prepared TFDS builder of a built-in dataset (generated on first use, offline).

    Args:
        name: dataset name, see `list_datasets()`.
        config: config name, e.g. ``"image_text_small"``.
        data_dir: TFDS data directory; None means the TFDS default
            (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).

    Example:
    >>> b = mmzoo.datasets.builder(config="image_text_small", data_dir="/tmp/tfds")
    >>> b.info.splits["test"].num_examples
    128
    """
    _check(name, config)
    tfds_builder = tfds.builder(name, config=config, data_dir=data_dir)
    tfds_builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False)
    )
    return tfds_builder


def load(
    name: str = "shapes_vqa",
    config: Optional[str] = None,
    data_dir: Optional[str] = None,
    **pipeline_kwargs: Any,
):
    """A built-in dataset as an mmzoo data object.

    ``shapes_vqa`` (via `mmzoo.data.from_tfds`): the TFDS features map to model inputs as
    ``image <- image``, ``text <- question``, ``audio <- audio`` (audio configs only) and
    ``label <- answer``. ``shapes_captions``: its pair manifest (`mmzoo.data.from_manifest`, a
    retriever's data), or for the ``caption*`` configs its caption manifest (a captioner's).
    ``shapes_shop``: its interactions (`mmzoo.data.recommender.from_interactions`).

    Args:
        name: dataset name, see `list_datasets()`.
        config: config name, e.g. ``"image_text_audio_small"``.
        data_dir: TFDS data directory (None: TFDS default).
        **pipeline_kwargs: passed on to `mmzoo.data.from_tfds` (batch size, ...).

    Example:
    >>> data = mmzoo.datasets.load(config="image_text_small", data_dir="/tmp/tfds")
    """
    if name == "shapes_captions":
        config = config or DEFAULT_CONFIGS[name]
        _check(name, config)
        from mmzoo.data import from_manifest  # lazy, as below

        pipeline_kwargs.pop("task", None)
        task = _shapes_captions.CONFIGS[config]["task"]
        data = from_manifest(_shapes_captions.write_dataset(config, data_dir), task=task, **pipeline_kwargs)
        if task == "captioning":  # (a captioner's evaluation checks what the captions name)
            data.caption_content_accuracy = _shapes_captions.content_accuracy
        return data
    if name == "shapes_shop":
        config = config or DEFAULT_CONFIGS[name]
        _check(name, config)
        from mmzoo.data.recommender import from_interactions  # lazy, as below

        kwargs = {k: v for k, v in pipeline_kwargs.items() if k in ("history_len", "holdout", "validation", "spec")}
        return from_interactions(**_shapes_shop.write_dataset(config, data_dir), **kwargs)
    # lazy: `import mmzoo.datasets` stays free of TensorFlow (mmzoo.data.tfds_source imports it)
    from mmzoo.data import from_tfds

    config = config or _DEFAULT_CONFIG
    tfds_builder = builder(name, config, data_dir)
    mapping = {"image": "image", "text": "question", "label": "answer"}
    if "audio" in tfds_builder.info.features:
        mapping["audio"] = "audio"
    return from_tfds(f"{name}/{config}", mapping=mapping, data_dir=data_dir, **pipeline_kwargs)


def chance_levels(config: str, split: str = "test", data_dir: Optional[str] = None) -> dict:
    """Accuracy on `split` reachable from each modality alone (`shapes_vqa`).

    Each number is the accuracy on `split` of a lookup table fit on ``train`` that maps
    what one modality shows to the most frequent train answer for it (unseen keys get
    the overall majority answer):

    - ``majority``: no input; always the most frequent train answer.
    - ``text``: the exact question string.
    - ``image``: the scene, i.e. the set of (shape, colour) objects drawn. Positions,
      sizes and brightness are drawn independently of the answer, so this is all an
      image says about it: the figure is what an image-only model with perfect
      perception could learn from this train split.
    - ``audio`` (audio configs): the number of beeps (pitches and positions are drawn
      independently of the answer).

    Example:
    >>> mmzoo.datasets.chance_levels("image_text_small", data_dir="/tmp/tfds")["text"]
    """
    return shapes_vqa_chance_levels(builder("shapes_vqa", config, data_dir), split)


def _check(name: str, config: str) -> None:
    if name not in _DATASETS:
        close = difflib.get_close_matches(str(name), list(_DATASETS), n=3)
        hint = f" Did you mean {close}?" if close else ""
        raise ValueError(
            f"Unknown dataset {name!r}. Expected one of {sorted(_DATASETS)}.{hint}"
        )
    if config not in _DATASETS[name]:
        close = difflib.get_close_matches(str(config), list(_DATASETS[name]), n=3)
        hint = f" Did you mean {close}?" if close else ""
        raise ValueError(
            f"Unknown config {config!r} for dataset {name!r}. "
            f"Expected one of {list(_DATASETS[name])}.{hint}"
        )
