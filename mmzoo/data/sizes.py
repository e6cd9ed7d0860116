"""Input sizes read off a manifest (image size, audio length, text length) and what the chosen sizes cut.

A user's first run passes no ``--audio-seconds`` or ``--seq-len``: the defaults (1.0 s,
32 tokens) silently cut a 1.2 s clip whose word comes at its end. These functions measure the
rows instead, pick a high percentile, and count the rows that the sizes still cut,
so the data report says so.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

import numpy as np

from mmzoo.data.audio import wav_header
from mmzoo.data.text import split_tokens

PERCENTILE = 99  # of the rows' durations / token counts
MIN_IMAGE_SIDE = 32  # the encoders' pooling stages need this much
MAX_AUDIO_SECONDS = 30.0
MAX_SEQ_LEN = 256


def wav_seconds(path: str) -> float:
    """A WAV file's duration, from its header (`mmzoo.data.audio.wav_header`)."""
    with open(path, "rb") as f:
        info = wav_header(f.read())
    return info["frames"] / info["sample_rate"]


def image_side(path: str) -> Optional[int]:
    """An image file's longer side in pixels, from its header (Pillow reads no pixels); None
    when Pillow cannot tell (the decode check then names the file)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return int(max(im.size))
    except Exception:  # noqa: BLE001 (any unreadable header: left to the TF decode check)
        return None


def image_size_for(sides: np.ndarray, default: Sequence[int]) -> Optional[tuple]:
    """A smaller square input when (almost) every image is smaller than ``default``: the 99th
    percentile of their longer sides rounded up to a multiple of 8 (at least 32); else None."""
    high = int(math.ceil(float(np.percentile(sides, PERCENTILE))))
    side = max(MIN_IMAGE_SIDE, 8 * math.ceil(high / 8))
    return (side, side) if side < min(default) else None


def token_counts(texts: Sequence[str], tokenizer: Optional[dict]) -> np.ndarray:
    """Tokens per text with the model's own tokenisation (CJK characters count one each)."""
    return np.array([len(split_tokens(t, tokenizer)) for t in texts], np.int64)


def audio_seconds_for(durations: np.ndarray) -> float:
    """The audio length that holds ``PERCENTILE`` % of the clips: rounded up to 0.1 s."""
    high = float(np.percentile(durations, PERCENTILE))
    return min(MAX_AUDIO_SECONDS, max(0.1, math.ceil(round(high * 10, 6)) / 10))


def seq_len_for(counts: np.ndarray) -> int:
    """The text length that holds ``PERCENTILE`` % of the texts: a multiple of 4, 4 to 256."""
    high = int(math.ceil(float(np.percentile(counts, PERCENTILE))))
    return int(min(MAX_SEQ_LEN, max(4, 4 * math.ceil(high / 4))))


def _rows(rows: List[int], limit: int = 8) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def cut_notes(size_of: Dict[str, Dict[int, float]], rows: Sequence[int], audio_seconds: float,
              seq_len: int) -> List[str]:
    """Report lines for the clips and texts the chosen sizes cut. ``size_of``: ``{"audio": {row:
    seconds}, "text": {row: tokens}}`` (absent inputs left out); ``rows``: the rows kept, in order."""
    notes = []
    durations = {r: size_of["audio"][r] for r in rows if r in size_of.get("audio", {})}
    frame = 1.0 / 100  # within 10 ms counts as fitting (resampling rounds a sample or two)
    long = [r for r, d in durations.items() if d > audio_seconds + frame]
    if long:
        notes.append(f"{len(long)} of {len(durations)} audio clips are longer than the audio input's "
                     f"{audio_seconds:g} s and are cut to it (the end is lost), e.g. rows {_rows(long)}; "
                     f"the longest is {max(durations.values()):.2f} s (set audio_seconds / --audio-seconds)")
    counts = {r: size_of["text"][r] for r in rows if r in size_of.get("text", {})}
    long = [r for r, c in counts.items() if c > seq_len]
    if long:
        notes.append(f"{len(long)} of {len(counts)} texts have more than seq_len={seq_len} tokens and are "
                     f"truncated, e.g. rows {_rows(long)}; the longest has {int(max(counts.values()))} "
                     "(set seq_len / --seq-len)")
    return notes


def fitted_settings(given: Dict[str, object], durations: Optional[np.ndarray],
                    counts: Optional[np.ndarray], sides: Optional[np.ndarray] = None,
                    default_image_size: Sequence[int] = (64, 64)) -> Dict[str, object]:
    """The sizes the manifest's rows ask for, for settings the user left as None; with report notes."""
    out: Dict[str, object] = {}
    if sides is not None and len(sides) and given.get("image_size") is None:
        size = image_size_for(sides, default_image_size)
        if size is not None:
            out["image_size"] = size
            high = int(np.percentile(sides, PERCENTILE))
            out["image_note"] = (f"image size {size[0]}x{size[1]}, from the data: the {PERCENTILE}th percentile of "
                                 f"the {len(sides)} images' longer sides is {high} px, below the default "
                                 f"{default_image_size[0]}x{default_image_size[1]}")
    if durations is not None and len(durations) and given.get("audio_seconds") is None:
        out["audio_seconds"] = audio_seconds_for(durations)
        out["audio_note"] = (f"audio length {out['audio_seconds']:g} s, from the data: the {PERCENTILE}th "
                             f"percentile of the {len(durations)} clips' durations "
                             f"({float(np.min(durations)):.2f}-{float(np.max(durations)):.2f} s)")
    if counts is not None and len(counts) and given.get("seq_len") is None:
        out["seq_len"] = seq_len_for(counts)
        out["text_note"] = (f"text length {out['seq_len']} tokens, from the data: the {PERCENTILE}th percentile "
                            f"of the {len(counts)} texts' token counts (longest {int(np.max(counts))})")
    return out
