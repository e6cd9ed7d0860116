"""Shared fixtures for the data tests: a folder of real media files written once."""

import csv
import json
import os

import numpy as np
import pytest

from mmzoo.data.samples import encode_image, image_array, write_wav


def write_manifest(root, rows, name="m.csv"):
    """Write rows (dicts) as CSV or JSONL (by extension) into root; return the path."""
    path = os.path.join(str(root), name)
    if name.endswith(".jsonl"):
        with open(path, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        fields = []
        for row in rows:
            fields += [k for k in row if k not in fields]
        with open(path, "w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    """Real files: images in every format and mode, WAVs mono / stereo / 8 kHz, bad files."""
    root = tmp_path_factory.mktemp("media")
    files = {}
    colors = ["red", "green", "blue", "yellow"]
    for i, color in enumerate(colors):
        arr = image_array(color, (12, 16), seed=i)
        for fmt, mode, ext in [
            ("PNG", None, "png"),
            ("JPEG", None, "jpg"),
            ("BMP", None, "bmp"),
            ("GIF", None, "gif"),
            ("PNG", "L", "gray.png"),
            ("PNG", "RGBA", "rgba.png"),
            ("PNG", "LA", "la.png"),
        ]:
            name = f"{color}.{ext}"
            (root / name).write_bytes(encode_image(arr, fmt, mode))
            files[(color, ext)] = name
        t = np.arange(4000) / 16000
        wave = 0.5 * np.sin(2 * np.pi * 300 * (i + 1) * t)
        write_wav(str(root / f"{color}.wav"), wave, 16000)
        write_wav(str(root / f"{color}.stereo.wav"), np.stack([wave, -wave * 0.5], 1), 16000)
        write_wav(str(root / f"{color}.8k.wav"), wave[::2], 8000)
    png = (root / "red.png").read_bytes()
    (root / "truncated.png").write_bytes(png[: len(png) // 2])
    (root / "empty.png").write_bytes(b"")
    (root / "notimage.png").write_text("hello, I am text")
    wav = (root / "red.wav").read_bytes()
    (root / "empty.wav").write_bytes(b"")
    write_wav(str(root / "zero.wav"), np.zeros(0), 16000)
    (root / "truncated.wav").write_bytes(wav[: len(wav) // 2])
    write_wav(str(root / "pcm24.wav"), np.zeros(100), 16000, sample_width=3)
    (root / "sub").mkdir()
    return root


def rows_for(
    n=8, modalities=("image", "text", "audio"), split=True, image_ext="png", audio_ext="wav"
):
    """Good manifest rows over the `media` files: 4 color classes."""
    colors = ["red", "green", "blue", "yellow"]
    texts = ["A red circle.", "绿色的圆形", "blue, BLUE!", "黄色 yellow 円"]
    rows = []
    for i in range(n):
        c = colors[i % 4]
        row = {}
        if "image" in modalities:
            row["image"] = f"{c}.{image_ext}"
        if "text" in modalities:
            row["text"] = texts[i % 4]
        if "audio" in modalities:
            row["audio"] = f"{c}.{audio_ext}"
        if "tabular" in modalities:
            row["tabular"] = f"{i % 4} {i * 0.5:g} 1"
        row["label"] = c
        if split:
            row["split"] = "train" if i < max(4, n - 4) else ("validation" if i % 2 else "test")
        rows.append(row)
    return rows
