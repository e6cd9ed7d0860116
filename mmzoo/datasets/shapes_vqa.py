"""`shapes_vqa`: a small synthetic visual (and audio) question answering dataset.

Importing this module registers the TFDS builder ``shapes_vqa`` (TFDS itself is
imported, TensorFlow is not). The numpy generator lives in `shapes_vqa_generate`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from mmzoo.datasets import shapes_vqa_generate as gen
from mmzoo.datasets.shapes_vqa_generate import ANSWERS, QUESTION_TYPES  # noqa: F401

SMALL_SIZES = (("train", 512), ("validation", 128), ("test", 128))
LARGE_SIZES = (("train", 8000), ("validation", 1000), ("test", 1000))
# One fixed seed per split; the audio configs use other seeds (their question mix differs).
SPLIT_SEEDS = {"train": 1001, "validation": 1002, "test": 1003}
AUDIO_SEED_OFFSET = 100

_DESCRIPTION = """\
Synthetic visual question answering on 32x32 images of one to four coloured shapes
(circle, square, triangle in red, green, blue, yellow; one per cell of a 2x2 grid) on
black. Each question has a one-word answer; answers are balanced within each question
type, so the question alone only tells the kind of answer. The audio configs add a 1 s
8 kHz clip of one to four beeps and two questions that need it. Generated offline and
deterministically (fixed numpy seeds per split). See docs/datasets/shapes_vqa.md.
"""


class RawAudio(tfds.features.Audio):
    """`tfds.features.Audio` that applies its `encoding` to numpy input.

    TFDS 4.9 returns numpy audio unencoded, so `encoding=BYTES` fails to serialize and
    the default stores int16 samples as an int64 list (~45 kB a clip instead of 16 kB).
    """

    def encode_example(self, audio_or_path_or_fobj):
        if isinstance(audio_or_path_or_fobj, np.ndarray):
            return tfds.features.Tensor.encode_example(
                self, np.asarray(audio_or_path_or_fobj, dtype=self.np_dtype)
            )
        return super().encode_example(audio_or_path_or_fobj)


@dataclasses.dataclass(eq=False)
class ShapesVqaConfig(tfds.core.BuilderConfig):
    """A `shapes_vqa` config: whether it has audio, and the split sizes."""

    with_audio: bool = False
    sizes: tuple = SMALL_SIZES


def _config(name: str, with_audio: bool, sizes: tuple) -> ShapesVqaConfig:
    types = gen.AUDIO_QUESTION_TYPES if with_audio else gen.IMAGE_QUESTION_TYPES
    split_text = ", ".join(f"{split} {n}" for split, n in sizes)
    return ShapesVqaConfig(
        name=name,
        with_audio=with_audio,
        sizes=sizes,
        description=(
            f"{'image, text and audio' if with_audio else 'image and text'}; "
            f"question types {list(types)}; {split_text}."
        ),
    )


CONFIGS = (
    _config("image_text_small", False, SMALL_SIZES),
    _config("image_text", False, LARGE_SIZES),
    _config("image_text_audio_small", True, SMALL_SIZES),
    _config("image_text_audio", True, LARGE_SIZES),
)
CONFIG_NAMES = tuple(c.name for c in CONFIGS)


class ShapesVqa(tfds.core.GeneratorBasedBuilder):
    """Coloured shapes with questions (and beeps): see docs/datasets/shapes_vqa.md.

    Example:
    >>> import mmzoo.datasets, tensorflow_datasets as tfds
    >>> b = tfds.builder("shapes_vqa", config="image_text_small", data_dir="/tmp/tfds")
    >>> b.download_and_prepare()
    >>> b.info.splits["train"].num_examples
    512
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "First release: configs image_text(_small), image_text_audio(_small).",
    }
    BUILDER_CONFIGS = list(CONFIGS)
    DEFAULT_CONFIG_NAME = "image_text_audio_small"
    # TFDS derives this from the top package; for a namespace package (no
    # mmzoo/__init__.py) that path needs the missing `importlib_resources`. Pin it.
    code_path = epath.Path(__file__)

    def _info(self) -> tfds.core.DatasetInfo:
        size = gen.IMAGE_SIZE
        features = {
            "image": tfds.features.Image(shape=(size, size, 3), dtype=np.uint8),
            "question": tfds.features.Text(),
            "answer": tfds.features.ClassLabel(names=ANSWERS),
            "question_type": tfds.features.ClassLabel(names=list(QUESTION_TYPES)),
            "grid": tfds.features.Tensor(
                shape=(4,),
                dtype=np.int8,
                doc="Object in each 2x2 grid cell (row-major): shape*4+colour, -1 if empty.",
            ),
        }
        if self.builder_config.with_audio:
            features["audio"] = RawAudio(
                shape=(gen.AUDIO_SAMPLES,),
                dtype=np.int16,
                sample_rate=gen.SAMPLE_RATE,
                # Raw int16 bytes: 16 kB a clip.
                encoding=tfds.features.Encoding.BYTES,
            )
            features["num_beeps"] = tfds.features.Scalar(
                dtype=np.int8, doc="Number of beeps in the audio clip (1-4)."
            )
        return tfds.core.DatasetInfo(
            builder=self,
            description=_DESCRIPTION,
            features=tfds.features.FeaturesDict(features),
            supervised_keys=None,
            citation="",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        return {
            split: self._generate_examples(split=split, num_examples=n)
            for split, n in self.builder_config.sizes
        }

    def _generate_examples(self, split: str, num_examples: int):
        with_audio = self.builder_config.with_audio
        seed = SPLIT_SEEDS[split] + (AUDIO_SEED_OFFSET if with_audio else 0)
        yield from gen.generate(num_examples, seed, with_audio)
