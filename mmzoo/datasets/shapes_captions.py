"""`shapes_captions`: images of coloured shapes with captions in English and Chinese, for
image <-> text matching (a retriever's built-in data). Plain numpy and files, no TensorFlow.

Each image is a 32x32 scene of one to four shapes (circle, square, triangle in red, green,
blue, yellow; one per cell of a 2x2 grid on black) drawn as in `shapes_vqa`. Its captions
name every shape with its colour and position, in a random order and phrasing: an English
caption and a Chinese one by default (``captions_per_image=2``), both in the image's group.
The dataset is written as PNG files and a pair manifest (``pairs.csv``: image, text, group,
split), the format `mmzoo.data.from_manifest` reads for any retriever, so it is also an
example of it. Example ``i`` of a split is drawn from ``default_rng([seed, i])``: a small
config is a prefix of the large one, and the files are the same on every machine.

Example:
>>> path = write_dataset("/tmp/shapes_captions", "image_text_small")    # doctest: +SKIP
>>> data = mmzoo.data.from_manifest(path, task="retrieval")
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
import zlib
from typing import Dict, List, Optional, Sequence

import numpy as np

from mmzoo.datasets import shapes_vqa_generate as scenes

VERSION = "1.0.0"
#: images per split; every image has ``captions_per_image`` rows
CONFIGS = {
    "image_text": {"sizes": {"train": 4000, "validation": 500, "test": 500}, "languages": ("en", "zh")},
    "image_text_small": {"sizes": {"train": 1200, "validation": 200, "test": 300}, "languages": ("en", "zh")},
    "image_text_en": {"sizes": {"train": 4000, "validation": 500, "test": 500}, "languages": ("en",)},
}
DEFAULT_CONFIG = "image_text_small"
SPLIT_SEEDS = {"train": 3001, "validation": 3002, "test": 3003}
MANIFEST = "pairs.csv"

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
    manifest = os.path.join(folder, MANIFEST)
    if os.path.exists(manifest):
        return manifest
    settings = CONFIGS[config]
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
    try:
        os.makedirs(os.path.join(staging, "images"))
        rows, facts = [], {}
        total = sum(settings["sizes"].values())
        done = 0
        for split, count in settings["sizes"].items():
            grids = []
            for i in range(count):
                example = make_example(i, SPLIT_SEEDS[split], settings["languages"])
                name = f"images/{split}_{i:05d}.png"
                with open(os.path.join(staging, name), "wb") as f:
                    f.write(png_bytes(example["image"]))
                group = f"{split}_{i:05d}"
                rows += [{"image": name, "text": t, "group": group, "split": split} for t in example["captions"]]
                grids.append(tuple(example["grid"]))
                done += 1
                if progress and done % 1000 == 0:
                    print(f"shapes_captions/{config}: {done}/{total} images", flush=True)
            facts[split] = scene_facts(grids)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["image", "text", "group", "split"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        with open(os.path.join(staging, MANIFEST), "w", encoding="utf-8", newline="") as f:
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
