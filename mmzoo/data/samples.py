"""Write small synthetic datasets of real files (PNG / JPEG / BMP / GIF images, WAV audio,
English and Chinese text) with a manifest: for tests, benchmarks and examples.
"""

from __future__ import annotations

import csv
import io
import json
import os
import wave
from typing import Optional, Sequence

import numpy as np

COLORS = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (40, 70, 220),
    "yellow": (230, 210, 40),
}
WORDS_EN = ["a", "the", "small", "big", "bright", "shape", "on", "dark", "background", "near"]
WORDS_ZH = ["红色", "绿色", "蓝色", "黄色", "的", "圆形", "方块", "在", "背景", "上"]


def write_wav(path: str, waveform: np.ndarray, sample_rate: int, sample_width: int = 2) -> str:
    """Write float waveform(s) in [-1, 1] ([n] or [n, channels]) as a PCM WAV file."""
    x = np.asarray(waveform, np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if sample_width == 2:
        data = (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()
    elif sample_width == 1:
        data = ((np.clip(x, -1, 1) * 127) + 128).astype(np.uint8).tobytes()
    else:
        ints = (np.clip(x, -1, 1) * (2 ** (8 * sample_width - 1) - 1)).astype("<i4")
        data = b"".join(
            int(v).to_bytes(4, "little", signed=True)[:sample_width] for v in ints.ravel()
        )
    with wave.open(path, "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(sample_width)
        w.setframerate(sample_rate)
        w.writeframes(data)
    return path


def image_array(color: str, size: Sequence[int] = (24, 32), seed: int = 0) -> np.ndarray:
    """An RGB uint8 image: a colored disc on a noisy background."""
    rng = np.random.default_rng(seed)
    h, w = size
    img = rng.integers(0, 60, size=(h, w, 3)).astype(np.uint8)
    yy, xx = np.mgrid[:h, :w]
    cy, cx, r = h / 2 + rng.uniform(-2, 2), w / 2 + rng.uniform(-2, 2), min(h, w) / 3
    img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = COLORS[color]
    return img


def encode_image(array: np.ndarray, fmt: str, mode: Optional[str] = None) -> bytes:
    from PIL import Image  # lazy: only writing sample files needs Pillow

    im = Image.fromarray(array)
    if mode:
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def write_sample_dataset(
    root: str,
    n: int = 24,
    *,
    modalities: Sequence[str] = ("image", "text", "audio"),
    image_size: Sequence[int] = (24, 32),
    sample_rate: int = 16000,
    audio_seconds: float = 0.25,
    formats: Sequence[str] = ("PNG", "JPEG", "BMP", "GIF"),
    chinese: bool = True,
    with_split: bool = True,
    manifest: str = "train.csv",
    seed: int = 0,
) -> str:
    """Write ``n`` examples (4 color classes) and a manifest; return the manifest path.

    Images cycle through ``formats`` (and gray / RGBA variants), WAVs include stereo and
    8 kHz files, text mixes English and (when ``chinese``) Chinese.

    Example:
    >>> path = write_sample_dataset("/tmp/shapes", n=32)   # doctest: +SKIP
    >>> data = mmzoo.data.from_manifest(path)
    """
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    os.makedirs(os.path.join(root, "audio"), exist_ok=True)
    names = sorted(COLORS)
    rows = []
    for i in range(n):
        color = names[i % len(names)]
        row = {}
        if "image" in modalities:
            fmt = formats[i % len(formats)]
            mode = (
                {0: None, 1: "L", 2: "RGBA"}[(i // len(formats)) % 3]
                if fmt in ("PNG", "BMP")
                else None
            )
            ext = {"PNG": "png", "JPEG": "jpg", "BMP": "bmp", "GIF": "gif"}[fmt]
            rel = f"images/{i:05d}.{ext}"
            with open(os.path.join(root, rel), "wb") as f:
                f.write(encode_image(image_array(color, image_size, seed + i), fmt, mode))
            row["image"] = rel
        if "text" in modalities:
            words = list(rng.choice(WORDS_EN, size=4))
            if chinese and i % 3 == 0:
                row["text"] = f"{WORDS_ZH[names.index(color)]}的圆形在背景上。"
            else:
                row["text"] = " ".join(words[:2] + [color.capitalize()] + words[2:]) + "."
        if "audio" in modalities:
            rate = sample_rate if i % 5 else sample_rate // 2
            channels = 2 if i % 4 == 1 else 1
            t = np.arange(int(audio_seconds * rate)) / rate
            freq = 300.0 * (1 + names.index(color))
            wav = 0.5 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(len(t))
            if channels == 2:
                wav = np.stack([wav, wav * 0.5], axis=1)
            rel = f"audio/{i:05d}.wav"
            write_wav(os.path.join(root, rel), wav, rate)
            row["audio"] = rel
        if "tabular" in modalities:
            row["tabular"] = [float(names.index(color)), float(rng.normal()), float(i % 7)]
        row["label"] = color
        if with_split:
            row["split"] = (
                "train" if i % 4 < 2 or i < 8 else ("validation" if i % 4 == 2 else "test")
            )
        rows.append(row)
    path = os.path.join(root, manifest)
    if manifest.endswith(".jsonl"):
        with open(path, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        fields = list(rows[0])
        with open(path, "w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            for row in rows:
                if "tabular" in row:
                    row = dict(row, tabular=" ".join(f"{v:g}" for v in row["tabular"]))
                writer.writerow(row)
    return path
