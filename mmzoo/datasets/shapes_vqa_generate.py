"""Pure-numpy generator behind the `shapes_vqa` dataset (no TensorFlow here).

Every example is drawn from its own seeded generator, ``default_rng([seed, index])``,
so example ``i`` of a split is the same whatever the split size (a small config is a
prefix of its large config before TFDS shuffles) and the data never depends on
process count or order.

The question type and answer of example ``i`` are fixed before anything else:
type ``QUESTION_TYPES[i % T]`` and answer ``TYPE_ANSWERS[type][(i // T) % A]``. Then an
image (and a beep clip) is sampled that makes the answer true. So question types
and answers within a type are balanced to within one example in every split.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

SHAPES = ("circle", "square", "triangle")
COLOURS = ("red", "green", "blue", "yellow")
COLOUR_RGB = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
}
COUNT_WORDS = ("zero", "one", "two", "three", "four")

QUESTION_TYPES = (
    "colour_of_shape",
    "shape_of_colour",
    "count_colour",
    "exists",
    "count_beeps",
    "shapes_equal_beeps",
)
IMAGE_QUESTION_TYPES = QUESTION_TYPES[:4]
AUDIO_QUESTION_TYPES = QUESTION_TYPES

# The possible answers of each question type, in the order the balanced plan cycles.
TYPE_ANSWERS = {
    "colour_of_shape": COLOURS,
    "shape_of_colour": SHAPES,
    "count_colour": COUNT_WORDS[:4],
    "exists": ("no", "yes"),
    "count_beeps": COUNT_WORDS[1:],
    "shapes_equal_beeps": ("no", "yes"),
}
ANSWERS = sorted({a for answers in TYPE_ANSWERS.values() for a in answers})

PHRASINGS = {
    "colour_of_shape": (
        "what colour is the {shape}?",
        "what is the colour of the {shape}?",
        "which colour does the {shape} have?",
    ),
    "shape_of_colour": (
        "what shape is the {colour} one?",
        "what is the shape of the {colour} object?",
        "which shape is {colour}?",
    ),
    "count_colour": (
        "how many {colour} shapes are there?",
        "count the {colour} shapes.",
        "what is the number of {colour} objects?",
    ),
    "exists": (
        "is there a {colour} {shape}?",
        "does the picture contain a {colour} {shape}?",
        "can you see a {colour} {shape}?",
    ),
    "count_beeps": (
        "how many beeps do you hear?",
        "count the beeps.",
        "how many tones are in the sound?",
    ),
    "shapes_equal_beeps": (
        "are there as many shapes as beeps?",
        "is the number of shapes equal to the number of beeps?",
        "do the shapes match the beeps in number?",
    ),
}

IMAGE_SIZE = 32
CELL = IMAGE_SIZE // 2  # 2x2 grid of 16x16 cells, row-major cell ids 0..3
SHAPE_SIZES = (12, 13, 14)
MAX_OBJECTS = 4
NUM_PAIRS = len(SHAPES) * len(COLOURS)  # object id = shape_index * 4 + colour_index

SAMPLE_RATE = 8000
AUDIO_SAMPLES = 8000  # 1.0 s
MAX_BEEPS = 4
BEEP_SECONDS = (0.08, 0.10)
BEEP_HZ = (400.0, 1200.0)
BEEP_AMPLITUDE = (0.3, 0.6)
MIN_GAP = int(0.06 * SAMPLE_RATE)  # silence between two beeps
EDGE = int(0.02 * SAMPLE_RATE)  # silence at both ends
RAMP = int(0.005 * SAMPLE_RATE)  # raised-cosine fade in/out
NOISE_STD = 0.01


def object_id(shape: int, colour: int) -> int:
    return shape * len(COLOURS) + colour


def object_name(obj: int) -> str:
    """``object_name(5) == "green square"``."""
    return f"{COLOURS[obj % len(COLOURS)]} {SHAPES[obj // len(COLOURS)]}"


def _masks() -> dict:
    masks = {}
    for size in SHAPE_SIZES:
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
        centre = (size - 1) / 2.0
        circle = (yy - centre) ** 2 + (xx - centre) ** 2 <= (size / 2.0 - 0.25) ** 2
        square = np.ones((size, size), dtype=bool)
        square[[0, -1], :] = False  # one pixel thinner, so it is no wider than the circle
        square[:, [0, -1]] = False
        triangle = np.abs(xx - centre) <= (yy + 1.0) / 2.0  # apex up, base at the bottom
        masks[size] = (circle, square, triangle)
    return masks


_MASKS = _masks()


# ----------------------------------------------------------------------------- scenes
def _pick(rng: np.random.Generator, allowed: Sequence[int], k: int) -> list:
    if k <= 0:
        return []
    idx = rng.choice(len(allowed), size=k, replace=False)
    return [int(allowed[i]) for i in idx]


def _others(exclude) -> list:
    return [o for o in range(NUM_PAIRS) if not exclude(o // len(COLOURS), o % len(COLOURS))]


def sample_scene(rng: np.random.Generator, qtype: str, answer: str) -> tuple:
    """Objects (ids) that make `answer` true, the question text and the beep count.

    Returns ``(objects, question, num_beeps)``; ``num_beeps`` is None when the answer
    does not depend on the audio (the caller then draws it freely).
    """
    phrasing = PHRASINGS[qtype][int(rng.integers(len(PHRASINGS[qtype])))]
    num_beeps = None
    if qtype == "colour_of_shape":  # that shape appears exactly once
        shape, colour = int(rng.integers(3)), COLOURS.index(answer)
        n = int(rng.integers(1, MAX_OBJECTS + 1))
        objects = [object_id(shape, colour)] + _pick(
            rng, _others(lambda s, c: s == shape), n - 1
        )
        question = phrasing.format(shape=SHAPES[shape])
    elif qtype == "shape_of_colour":  # that colour appears exactly once
        shape, colour = SHAPES.index(answer), int(rng.integers(4))
        n = int(rng.integers(1, MAX_OBJECTS + 1))
        objects = [object_id(shape, colour)] + _pick(
            rng, _others(lambda s, c: c == colour), n - 1
        )
        question = phrasing.format(colour=COLOURS[colour])
    elif qtype == "count_colour":
        k, colour = COUNT_WORDS.index(answer), int(rng.integers(4))
        shapes = rng.choice(3, size=k, replace=False) if k else []
        n = int(rng.integers(max(k, 1), MAX_OBJECTS + 1))
        objects = [object_id(int(s), colour) for s in shapes] + _pick(
            rng, _others(lambda s, c: c == colour), n - k
        )
        question = phrasing.format(colour=COLOURS[colour])
    elif qtype == "exists":
        shape, colour = int(rng.integers(3)), int(rng.integers(4))
        target = object_id(shape, colour)
        n = int(rng.integers(1, MAX_OBJECTS + 1))
        rest = [o for o in range(NUM_PAIRS) if o != target]
        if answer == "yes":
            objects = [target] + _pick(rng, rest, n - 1)
        else:
            objects = _pick(rng, rest, n)
        question = phrasing.format(shape=SHAPES[shape], colour=COLOURS[colour])
    elif qtype == "count_beeps":
        num_beeps = COUNT_WORDS.index(answer)
        n = int(rng.integers(1, MAX_OBJECTS + 1))
        objects = _pick(rng, range(NUM_PAIRS), n)
        question = phrasing
    elif qtype == "shapes_equal_beeps":
        n = int(rng.integers(1, MAX_OBJECTS + 1))
        if answer == "yes":
            num_beeps = n
        else:
            num_beeps = int(rng.choice([b for b in range(1, MAX_BEEPS + 1) if b != n]))
        objects = _pick(rng, range(NUM_PAIRS), n)
        question = phrasing
    else:
        raise ValueError(
            f"Unknown question type {qtype!r}. Expected one of {list(QUESTION_TYPES)}."
        )
    return objects, question, num_beeps


# ----------------------------------------------------------------------------- drawing
def draw_image(rng: np.random.Generator, objects: Sequence[int]) -> tuple:
    """Draw `objects` on black, one per random grid cell.

    Returns ``(image uint8 (32, 32, 3), grid int8 (4,))``; ``grid[cell]`` is the object
    id in that cell (row-major) or -1.
    """
    image = np.zeros((IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    grid = np.full((4,), -1, dtype=np.int8)
    cells = rng.permutation(4)[: len(objects)]
    for obj, cell in zip(objects, cells):
        shape, colour = divmod(int(obj), len(COLOURS))
        size = SHAPE_SIZES[int(rng.integers(len(SHAPE_SIZES)))]
        # At least one pixel of margin inside the cell, so shapes never touch.
        y0 = (cell // 2) * CELL + int(rng.integers(1, CELL - size))
        x0 = (cell % 2) * CELL + int(rng.integers(1, CELL - size))
        brightness = rng.uniform(0.8, 1.0)
        rgb = np.round(np.array(COLOUR_RGB[COLOURS[colour]]) * brightness).astype(np.uint8)
        image[y0 : y0 + size, x0 : x0 + size][_MASKS[size][shape]] = rgb
        grid[cell] = obj
    return image, grid


def beep_clip(rng: np.random.Generator, num_beeps: int, frequencies: Optional[Sequence[float]] = None) -> np.ndarray:
    """`num_beeps` sine beeps at random non-overlapping places, plus faint noise; int16.
    ``frequencies`` (Hz, one per beep) fixes their pitches, else each is drawn from `BEEP_HZ`."""
    lengths = rng.integers(
        int(BEEP_SECONDS[0] * SAMPLE_RATE), int(BEEP_SECONDS[1] * SAMPLE_RATE) + 1, size=num_beeps
    )
    free = AUDIO_SAMPLES - 2 * EDGE - int(lengths.sum()) - (num_beeps - 1) * MIN_GAP
    # Split the free samples into num_beeps + 1 random parts (before, between, after).
    cuts = np.sort(rng.integers(0, free + 1, size=num_beeps))
    parts = np.diff(np.concatenate([[0], cuts]))
    signal = rng.normal(0.0, NOISE_STD, size=AUDIO_SAMPLES)
    t = np.arange(int(lengths.max())) / SAMPLE_RATE
    start = EDGE
    for i in range(num_beeps):
        start += int(parts[i])
        length = int(lengths[i])
        freq = rng.uniform(*BEEP_HZ) if frequencies is None else float(frequencies[i])
        amp = rng.uniform(*BEEP_AMPLITUDE)
        tone = amp * np.sin(2 * np.pi * freq * t[:length] + rng.uniform(0, 2 * np.pi))
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, RAMP))
        tone[:RAMP] *= ramp
        tone[-RAMP:] *= ramp[::-1]
        signal[start : start + length] += tone
        start += length + MIN_GAP
    return np.clip(np.round(signal * 32767), -32768, 32767).astype(np.int16)


# ----------------------------------------------------------------------------- examples
def make_example(
    index: int, seed: int, question_types: Sequence[str], with_audio: bool
) -> dict:
    """Example `index` of the split seeded `seed`: a dict of numpy values and strings."""
    qtype = question_types[index % len(question_types)]
    answers = TYPE_ANSWERS[qtype]
    answer = answers[(index // len(question_types)) % len(answers)]
    rng = np.random.default_rng([seed, index])
    objects, question, num_beeps = sample_scene(rng, qtype, answer)
    image, grid = draw_image(rng, objects)
    example = {
        "image": image,
        "question": question,
        "answer": answer,
        "question_type": qtype,
        "grid": grid,
    }
    if with_audio:
        if num_beeps is None:
            num_beeps = int(rng.integers(1, MAX_BEEPS + 1))
        example["audio"] = beep_clip(rng, num_beeps)
        example["num_beeps"] = np.int8(num_beeps)
    return example


def generate(
    num_examples: int, seed: int, with_audio: bool, question_types: Optional[Sequence[str]] = None
):
    """Yield ``(key, example)`` for a split of `num_examples` examples."""
    if question_types is None:
        question_types = AUDIO_QUESTION_TYPES if with_audio else IMAGE_QUESTION_TYPES
    for index in range(num_examples):
        yield index, make_example(index, seed, question_types, with_audio)
