"""`shapes_captions`: images of coloured shapes with captions in English and Chinese, for
image <-> text matching (a retriever's built-in data) and for captioning (image -> caption, and
clips of beeps -> caption: the ``caption*`` configs). Plain numpy and files, no TensorFlow.

Each image is a 32x32 scene of one to four shapes (circle, square, triangle in red, green,
blue, yellow; one per cell of a 2x2 grid on black) drawn as in `shapes_vqa`. Its captions
name every shape with its colour and position, in a random order and phrasing: an English
caption and a Chinese one by default (``captions_per_image=2``), both in the image's group.
The dataset is written as PNG files and a pair manifest (``pairs.csv``: image, text, group,
split), the format `mmzoo.data.from_manifest` reads for any retriever, so it is also an
example of it. Example ``i`` of a split is drawn from ``default_rng([seed, i])``: a small
config is a prefix of the large one, and the files are the same on every machine.

The captioning configs write ``captions.csv`` (image or audio, caption, split): each caption
says how many shapes there are, then each shape with its colour and cell in reading order
(`caption_scene`), in two phrasings (and languages); a beeps clip's says how many beeps, then
each one's pitch, low or high, in order (`caption_beeps`). `content_accuracy` checks that a
generated caption names the right things.

Example:
>>> path = write_dataset("image_text_small", "/tmp/data")    # doctest: +SKIP
>>> data = mmzoo.data.from_manifest(path, task="retrieval")
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import tempfile
import wave
import zlib
from typing import Dict, List, Optional, Sequence

import numpy as np

from mmzoo.datasets import shapes_vqa_generate as scenes

VERSION = "1.0.0"
#: images per split; every image has ``captions_per_image`` rows
_LARGE = {"train": 4000, "validation": 500, "test": 500}
_SMALL = {"train": 1200, "validation": 200, "test": 300}
#: ``task``: ``retrieval`` (pairs.csv: image, text, group) or ``captioning`` (captions.csv: the
#: ``input``, image or audio, and a caption; one row per caption). ``languages``: one caption a
#: language, per input (``("en", "en")``: two English phrasings).
CONFIGS = {
    "image_text": {"task": "retrieval", "input": "image", "sizes": _LARGE, "languages": ("en", "zh")},
    "image_text_small": {"task": "retrieval", "input": "image", "sizes": _SMALL, "languages": ("en", "zh")},
    "image_text_en": {"task": "retrieval", "input": "image", "sizes": _LARGE, "languages": ("en",)},
    "caption": {"task": "captioning", "input": "image", "sizes": _LARGE, "languages": ("en", "zh")},
    "caption_small": {"task": "captioning", "input": "image", "sizes": _SMALL, "languages": ("en", "zh")},
    "caption_en_small": {"task": "captioning", "input": "image", "sizes": _SMALL, "languages": ("en", "en")},
    "beeps_caption_small": {"task": "captioning", "input": "audio", "sizes": _SMALL, "languages": ("en", "en")},
}
DEFAULT_CONFIG = "image_text_small"
SPLIT_SEEDS = {"train": 3001, "validation": 3002, "test": 3003}
MANIFEST = "pairs.csv"
CAPTION_MANIFEST = "captions.csv"

POSITIONS_EN = ("top left", "top right", "bottom left", "bottom right")
POSITIONS_ZH = ("左上", "右上", "左下", "右下")
COLOURS_ZH = {"red": "红色", "green": "绿色", "blue": "蓝色", "yellow": "黄色"}
SHAPES_ZH = {"circle": "圆形", "square": "正方形", "triangle": "三角形"}
EN_ITEM = ("a {colour} {shape} at the {position}", "a {colour} {shape} in the {position}",
           "{position}: a {colour} {shape}", "the {position} has a {colour} {shape}")
EN_JOIN = (" and ", ", ", "; ")
EN_START = ("", "there is ", "the picture shows ", "an image with ")
ZH_ITEM = ("{position}是{colour}{shape}", "{position}有一个{colour}{shape}", "{position}角是一个{colour}{shape}")
ZH_JOIN = ("，", "；", "，还有")


def describe_scene(grid: Sequence[int], language: str, rng: np.random.Generator) -> str:
    """A caption naming every object of ``grid`` (cell -> object id or -1) with its place."""
    cells = [c for c in range(4) if grid[c] >= 0]
    order = [cells[i] for i in rng.permutation(len(cells))]
    items = []
    if language == "en":
        template = EN_ITEM[int(rng.integers(len(EN_ITEM)))]
        for c in order:
            colour, shape = scenes.object_name(int(grid[c])).split()
            items.append(template.format(colour=colour, shape=shape, position=POSITIONS_EN[c]))
        text = EN_JOIN[int(rng.integers(len(EN_JOIN)))].join(items)
        start = EN_START[int(rng.integers(len(EN_START)))] if template.startswith("a ") else ""
        return start + text + "."
    if language == "zh":
        template = ZH_ITEM[int(rng.integers(len(ZH_ITEM)))]
        for c in order:
            colour, shape = scenes.object_name(int(grid[c])).split()
            items.append(template.format(colour=COLOURS_ZH[colour], shape=SHAPES_ZH[shape], position=POSITIONS_ZH[c]))
        return ZH_JOIN[int(rng.integers(len(ZH_JOIN)))].join(items) + "。"
    raise ValueError(f"language must be 'en' or 'zh'. Received: {language!r}")


COUNT_EN = ("one", "two", "three", "four")
COUNT_ZH = ("一", "两", "三", "四")
CAPTION_EN = ("{count} {noun}: {items}.", "there {verb} {count} {noun}, {items}.")
CAPTION_EN_ITEM = ("a {colour} {shape} at the {position}", "a {colour} {shape} in the {position}")
CAPTION_ZH = ("{count}个图形：{items}。", "有{count}个图形，{items}。")
CAPTION_ZH_ITEM = ("{position}是{colour}{shape}", "{position}有一个{colour}{shape}")
#: a beep is low or high (a captioner's audio task: how many, and each one's pitch in order)
PITCH_HZ = {"low": (400.0, 550.0), "high": (950.0, 1200.0)}
PITCH_ZH = {"low": "低", "high": "高"}


def caption_scene(grid: Sequence[int], language: str, template: int) -> str:
    """A captioner's target: how many shapes, then each with its colour in reading order (top
    left, top right, bottom left, bottom right), in one of two phrasings (``template`` 0 / 1).

    Example:
    >>> caption_scene([0, -1, -1, 5], "en", 0)
    'two shapes: a red circle at the top left and a green square at the bottom right.'
    """
    cells = [c for c in range(4) if grid[c] >= 0]
    names = [scenes.object_name(int(grid[c])).split() for c in cells]
    n = len(cells)
    if language == "en":
        item = CAPTION_EN_ITEM[template % 2]
        items = [item.format(colour=colour, shape=shape, position=POSITIONS_EN[c]) for c, (colour, shape) in
                 zip(cells, names)]
        joined = items[0] if n == 1 else ", ".join(items[:-1]) + " and " + items[-1]
        return CAPTION_EN[template % 2].format(count=COUNT_EN[n - 1], noun="shape" if n == 1 else "shapes",
                                               verb="is" if n == 1 else "are", items=joined)
    if language == "zh":
        item = CAPTION_ZH_ITEM[template % 2]
        items = [item.format(colour=COLOURS_ZH[colour], shape=SHAPES_ZH[shape], position=POSITIONS_ZH[c])
                 for c, (colour, shape) in zip(cells, names)]
        return CAPTION_ZH[template % 2].format(count="一" if n == 1 else COUNT_ZH[n - 1], items="，".join(items))
    raise ValueError(f"language must be 'en' or 'zh'. Received: {language!r}")


def caption_beeps(pitches: Sequence[str], language: str, template: int) -> str:
    """A sound clip's caption: the number of beeps and their pitches in order.

    Example:
    >>> caption_beeps(["high", "low"], "en", 0), caption_beeps(["high", "low"], "en", 1)
    ('two beeps: high, then low.', 'a high beep, then a low beep.')
    """
    n = len(pitches)
    if language == "en":
        if template % 2 == 0:
            return f"{COUNT_EN[n - 1]} {'beep' if n == 1 else 'beeps'}: {', then '.join(pitches)}."
        return ", then ".join(f"a {p} beep" for p in pitches) + "."
    if language == "zh":
        return f"{'一' if n == 1 else COUNT_ZH[n - 1]}声：" + "，然后".join(PITCH_ZH[p] + "音" for p in pitches) + "。"
    raise ValueError(f"language must be 'en' or 'zh'. Received: {language!r}")


def named_objects(caption: str) -> List[str]:
    """The ``"colour shape"`` pairs a caption names (English or Chinese), sorted: what the
    captioning target checks (`content_accuracy`).

    Example:
    >>> named_objects("左上是红色圆形，右下有一个绿色正方形。")
    ['green square', 'red circle']
    """
    found = re.findall(r"(red|green|blue|yellow) (circle|square|triangle)", caption.lower())
    zh_colour = {v: k for k, v in COLOURS_ZH.items()}
    zh_shape = {v: k for k, v in SHAPES_ZH.items()}
    found += [(zh_colour[c], zh_shape[s]) for c, s in re.findall(
        f"({'|'.join(zh_colour)})({'|'.join(zh_shape)})", caption)]
    return sorted(f"{c} {s}" for c, s in found)


def named_beeps(caption: str) -> List[str]:
    """The pitches a beeps caption names, in order (English or Chinese)."""
    found = re.findall(r"\b(low|high)\b|([低高])音", caption.lower())
    return [en or {"低": "low", "高": "high"}[zh] for en, zh in found]


def content_accuracy(generated: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Share of inputs whose generated caption names what its first reference names: the same
    colour-shape pairs (scenes) or the same pitches in order (beeps), in either language."""
    if not generated:
        return 0.0
    hits = 0
    for text, refs in zip(generated, references):
        ref = refs[0]
        if named_objects(ref):
            hits += named_objects(text) == named_objects(ref)
        else:
            hits += bool(named_beeps(ref)) and named_beeps(text) == named_beeps(ref)
    return hits / len(generated)


def make_caption_example(index: int, seed: int, settings: dict) -> dict:
    """Input ``index`` of a captioning split: ``{"image" or "audio": array, "captions": [...]}``."""
    rng = np.random.default_rng([seed, index])
    templates = rng.permutation(2)
    languages = settings["languages"]
    if settings["input"] == "audio":
        n = int(rng.integers(1, scenes.MAX_BEEPS + 1))
        pitches = [("low", "high")[int(b)] for b in rng.integers(0, 2, size=n)]
        clip = scenes.beep_clip(rng, n, [rng.uniform(*PITCH_HZ[p]) for p in pitches])
        return {"audio": clip, "pitches": pitches,
                "captions": [caption_beeps(pitches, lang, int(templates[i % 2])) for i, lang in enumerate(languages)]}
    n = int(rng.integers(1, scenes.MAX_OBJECTS + 1))
    objects = [int(o) for o in rng.choice(scenes.NUM_PAIRS, size=n, replace=False)]
    image, grid = scenes.draw_image(rng, objects)
    return {"image": image, "grid": grid.tolist(),
            "captions": [caption_scene(grid, lang, int(templates[i % 2])) for i, lang in enumerate(languages)]}


def make_example(index: int, seed: int, languages: Sequence[str]) -> dict:
    """Image ``index`` of a split: ``{"image": uint8 [32, 32, 3], "grid": [4], "captions": [...]}``."""
    rng = np.random.default_rng([seed, index])
    n = int(rng.integers(1, scenes.MAX_OBJECTS + 1))
    objects = [int(o) for o in rng.choice(scenes.NUM_PAIRS, size=n, replace=False)]
    image, grid = scenes.draw_image(rng, objects)
    return {"image": image, "grid": grid.tolist(), "captions": [describe_scene(grid, lang, rng) for lang in languages]}


def png_bytes(image: np.ndarray) -> bytes:
    """An RGB uint8 array as PNG bytes (zlib only)."""
    h, w, _ = image.shape
    raw = b"".join(b"\x00" + image[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def default_data_dir() -> str:
    """``$MMZOO_DATA_DIR``, else TFDS' data dir (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``)."""
    return os.environ.get("MMZOO_DATA_DIR") or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser(
        "~/tensorflow_datasets")


def dataset_folder(config: str, data_dir: Optional[str] = None) -> str:
    return os.path.join(data_dir or default_data_dir(), "shapes_captions", config, VERSION)


def write_dataset(config: str = DEFAULT_CONFIG, data_dir: Optional[str] = None, progress: bool = True) -> str:
    """Write a config's PNGs and ``pairs.csv`` once (into a temp folder, then renamed into
    place); return the manifest's path. An existing complete copy is reused."""
    if config not in CONFIGS:
        raise ValueError(f"Unknown shapes_captions config {config!r}. Expected one of {sorted(CONFIGS)}.")
    folder = dataset_folder(config, data_dir)
    settings = CONFIGS[config]
    captioning = settings["task"] == "captioning"
    manifest = os.path.join(folder, CAPTION_MANIFEST if captioning else MANIFEST)
    if os.path.exists(manifest):
        return manifest
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
    try:
        kind = settings["input"]
        os.makedirs(os.path.join(staging, "images" if kind == "image" else "clips"))
        rows, facts = [], {}
        total = sum(settings["sizes"].values())
        done = 0
        for split, count in settings["sizes"].items():
            grids = []
            for i in range(count):
                if captioning:
                    example = make_caption_example(i, SPLIT_SEEDS[split], settings)
                else:
                    example = make_example(i, SPLIT_SEEDS[split], settings["languages"])
                subdir, ext = ("images", "png") if kind == "image" else ("clips", "wav")
                name = f"{subdir}/{split}_{i:05d}.{ext}"
                if kind == "image":
                    with open(os.path.join(staging, name), "wb") as f:
                        f.write(png_bytes(example["image"]))
                    grids.append(tuple(example["grid"]))
                else:
                    write_pcm_wav(os.path.join(staging, name), example["audio"], scenes.SAMPLE_RATE)
                if captioning:
                    rows += [{kind: name, "caption": t, "split": split} for t in example["captions"]]
                else:
                    group = f"{split}_{i:05d}"
                    rows += [{"image": name, "text": t, "group": group, "split": split} for t in example["captions"]]
                done += 1
                if progress and done % 1000 == 0:
                    print(f"shapes_captions/{config}: {done}/{total} examples", flush=True)
            if grids:
                facts[split] = scene_facts(grids)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        with open(os.path.join(staging, os.path.basename(manifest)), "w", encoding="utf-8", newline="") as f:
            f.write(buffer.getvalue())
        with open(os.path.join(staging, "dataset_info.json"), "w", encoding="utf-8") as f:
            json.dump({"name": "shapes_captions", "config": config, "version": VERSION, **settings,
                       "captions_per_image": len(settings["languages"]), "facts": facts}, f, indent=2,
                      ensure_ascii=False)
        if os.path.exists(folder):  # another process finished first
            shutil.rmtree(staging)
        else:
            os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def write_pcm_wav(path: str, samples: np.ndarray, sample_rate: int) -> None:
    """int16 samples as a mono 16-bit PCM WAV file."""
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(np.asarray(samples, "<i2").tobytes())


def scene_facts(grids: List[tuple]) -> Dict[str, float]:
    """Chance and ceiling of text -> image retrieval on one split: a caption names every
    object and its cell, so only images with the same scene are confusable.

    ``chance_recall@k``: a random ranking's; ``ceiling_recall@1``: a perfect reader's, which
    picks one of the equally described images at random.
    """
    counts: Dict[tuple, int] = {}
    for g in grids:
        counts[g] = counts.get(g, 0) + 1
    n = len(grids)
    same = np.array([counts[g] for g in grids], float)
    return {"images": n, "distinct_scenes": len(counts), "ceiling_recall@1": float(np.mean(1.0 / same)),
            **{f"chance_recall@{k}": min(1.0, k / n) for k in (1, 5, 10)}}


def chance_levels(config: str = DEFAULT_CONFIG, split: str = "test") -> dict:
    """The figures of `scene_facts` for a split, computed from the generator (no files)."""
    settings = CONFIGS[config]
    grids = [tuple(make_example(i, SPLIT_SEEDS[split], ())["grid"]) for i in range(settings["sizes"][split])]
    return scene_facts(grids)
