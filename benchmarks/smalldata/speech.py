"""Spoken digits 0-9 in English and Mandarin, synthesized by espeak-ng (Debian's archive).

A "speaker" is one espeak-ng voice + variant, speed (``-s``, words per minute) and pitch
(``-p``); every speaker says the ten digits. The clips are resampled to 16 kHz (sox), trimmed
of silence and stored once as int16 PCM in ``benchmarks/data/speech_digits.npz`` with their
metadata, so the tasks' builders run without espeak-ng:

    python -m benchmarks.smalldata.speech --write     # needs espeak-ng and sox
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import tempfile
import wave
from typing import List

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PATH = os.path.join(os.path.dirname(HERE), "data", "speech_digits.npz")
SAMPLE_RATE = 16000
WORDS = {
    "en": ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
    "zh": ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"],
}
VOICES = {
    "en": ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc",
           "en-gb-x-gbclan", "en-gb-x-gbcwmd"],
    "zh": ["cmn"],
}
VARIANTS = ["", "+f3", "+m3", "+f2", "+m7", "+f4", "+m2", "+f1", "+m5", "+f5"]


@dataclasses.dataclass
class Clip:
    """One clip: int16 samples at 16 kHz and who said what."""

    samples: np.ndarray
    digit: int
    language: str
    voice: str
    speed: int
    pitch: int
    speaker: int  # index of the speaker within its language


def speakers(per_language: int, seed: int = 14) -> List[dict]:
    """The speaker plan: voices and variants in turn, seeded speeds and pitches."""
    rng = np.random.default_rng(seed)
    plan = []
    for lang in ("en", "zh"):
        voices = VOICES[lang]
        for k in range(per_language):
            voice = voices[k % len(voices)] + VARIANTS[(k // len(voices) + 3 * (k % len(voices))) % len(VARIANTS)]
            plan.append({"language": lang, "speaker": k, "voice": voice,
                         "speed": int(rng.integers(120, 200)), "pitch": int(rng.integers(25, 80))})
    return plan


def trim(x: np.ndarray, rate: int = SAMPLE_RATE, threshold: float = 0.01, pad_ms: int = 15) -> np.ndarray:
    """Cut the leading and trailing silence (10 ms frames under ``threshold`` x the peak)."""
    frame = rate // 100
    n = len(x) // frame
    rms = np.sqrt(np.mean(x[: n * frame].astype(np.float64).reshape(n, frame) ** 2, axis=1))
    loud = np.nonzero(rms > threshold * max(rms.max(), 1e-9))[0]
    if not len(loud):
        return x
    pad = rate * pad_ms // 1000
    return x[max(0, loud[0] * frame - pad): min(len(x), (loud[-1] + 1) * frame + pad)]


def synthesize(word: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """espeak-ng -> sox (16 kHz mono int16) -> trimmed int16 samples."""
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = os.path.join(tmp, "raw.wav"), os.path.join(tmp, "out.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", raw, word],
                       check=True, capture_output=True)
        subprocess.run(["sox", "-v", "0.8", raw, "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", out], check=True,
                       capture_output=True)
        with wave.open(out, "rb") as w:
            x = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    return trim(x)


def write(path: str = DEFAULT_PATH, per_language: int = 11) -> str:
    """Synthesize every speaker's ten digits and save them (compressed npz)."""
    for tool in ("espeak-ng", "sox"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed to synthesize the clips (apt-get install {tool}).")
    clips, meta = [], {k: [] for k in ("digit", "language", "voice", "speed", "pitch", "speaker")}
    for s in speakers(per_language):
        for digit, word in enumerate(WORDS[s["language"]]):
            clips.append(synthesize(word, s["voice"], s["speed"], s["pitch"]))
            meta["digit"].append(digit)
            for k in ("language", "voice", "speed", "pitch", "speaker"):
                meta[k].append(s[k])
    lengths = np.array([len(c) for c in clips], np.int64)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    np.savez_compressed(
        path, samples=np.concatenate(clips).astype(np.int16), lengths=lengths, sample_rate=SAMPLE_RATE,
        **{k: np.array(v) for k, v in meta.items()},
        source=np.array("espeak-ng " + subprocess.run(["espeak-ng", "--version"], capture_output=True,
                                                      text=True).stdout.strip()),
    )
    return path


def load(path: str = DEFAULT_PATH) -> List[Clip]:
    """The clips of a speech_digits.npz file."""
    with np.load(path) as z:
        z = {k: z[k] for k in z.files}  # (each access to a compressed member decompresses it)
    ends = np.cumsum(z["lengths"])
    starts = ends - z["lengths"]
    return [Clip(z["samples"][a:b], int(z["digit"][i]), str(z["language"][i]), str(z["voice"][i]),
                 int(z["speed"][i]), int(z["pitch"][i]), int(z["speaker"][i]))
            for i, (a, b) in enumerate(zip(starts, ends))]


def main(argv=None) -> int:
    """Command line: ``--write`` synthesizes the clips; without it, a summary of the file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="synthesize the clips (espeak-ng + sox)")
    parser.add_argument("--path", default=DEFAULT_PATH)
    parser.add_argument("--speakers", type=int, default=11, help="speakers per language")
    args = parser.parse_args(argv)
    if args.write:
        write(args.path, args.speakers)
    clips = load(args.path)
    secs = np.array([len(c.samples) / SAMPLE_RATE for c in clips])
    print(f"{args.path}: {len(clips)} clips, {os.path.getsize(args.path) / 2**20:.2f} MiB, "
          f"{secs.min():.2f}-{secs.max():.2f} s (mean {secs.mean():.2f} s)")
    for lang in ("en", "zh"):
        voices = sorted({c.voice for c in clips if c.language == lang})
        print(f"  {lang}: {sum(c.language == lang for c in clips)} clips; voices {', '.join(voices)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
