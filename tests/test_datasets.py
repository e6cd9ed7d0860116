"""Tests of mmzoo.datasets and the built-in `shapes_vqa` dataset (small configs only)."""

import collections
import os
import socket
import subprocess
import sys
import types

import numpy as np
import pytest

import mmzoo.datasets
from mmzoo.datasets import shapes_vqa_generate as gen

SMALL = ("image_text_small", "image_text_audio_small")
SPLITS = {"train": 512, "validation": 128, "test": 128}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _no_network(*args, **kwargs):
    raise AssertionError(f"shapes_vqa tried to use the network: {args}")


def _build_all(data_dir):
    with pytest.MonkeyPatch.context() as mp:  # any connection attempt fails the build
        mp.setattr(socket.socket, "connect", _no_network)
        mp.setattr(socket, "create_connection", _no_network)
        return {c: mmzoo.datasets.builder("shapes_vqa", c, data_dir=str(data_dir)) for c in SMALL}


def _read(builder, split):
    import tensorflow_datasets as tfds

    ds = builder.as_dataset(split=split, shuffle_files=False)
    return list(tfds.as_numpy(ds))


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory):
    return tmp_path_factory.mktemp("tfds_a"), tmp_path_factory.mktemp("tfds_b")


@pytest.fixture(scope="module")
def builders(data_dirs):
    return _build_all(data_dirs[0])


@pytest.fixture(scope="module")
def examples(builders):
    return {c: {s: _read(b, s) for s in SPLITS} for c, b in builders.items()}


# ----------------------------------------------------------------------------- pixels & audio
def _colour_masks(image):
    r, g, b = (image[..., i].astype(int) for i in range(3))
    hi, lo = 150, 60
    return {
        "red": (r > hi) & (g < lo) & (b < lo),
        "green": (g > hi) & (r < lo) & (b < lo),
        "blue": (b > hi) & (r < lo) & (g < lo),
        "yellow": (r > hi) & (g > hi) & (b < lo),
    }


def _scene_from_pixels(image):
    """[(colour, shape)] read off the pixels, one per occupied 16x16 cell."""
    masks = _colour_masks(image)
    lit = image.max(axis=-1) > 0
    assert lit.sum() == sum(m.sum() for m in masks.values()), "pixels of no known colour"
    scene = []
    for cy in (0, 16):
        for cx in (0, 16):
            cell = {c: m[cy : cy + 16, cx : cx + 16] for c, m in masks.items()}
            present = [c for c, m in cell.items() if m.any()]
            if not present:
                continue
            assert len(present) == 1, f"two colours in one cell: {present}"
            ys, xs = np.nonzero(cell[present[0]])
            assert ys.min() >= 1 and xs.min() >= 1 and ys.max() <= 14 and xs.max() <= 14
            fill = len(ys) / ((np.ptp(ys) + 1) * (np.ptp(xs) + 1))
            shape = "square" if fill > 0.95 else "circle" if fill > 0.65 else "triangle"
            scene.append((present[0], shape))
    return scene


def _beeps_from_audio(audio):
    """Number of loud bursts: 10 ms frames whose RMS exceeds 0.05 of full scale."""
    frames = audio.astype(np.float64).reshape(-1, 80) / 32768.0
    loud = np.sqrt((frames**2).mean(axis=1)) > 0.05
    return int(np.sum(loud[1:] & ~loud[:-1]) + loud[0])


def _answer_from_pixels(question, qtype, scene, beeps=None):
    words = question.rstrip("?.").split()
    colour = next((w for w in words if w in gen.COLOURS), None)
    shape = next((w for w in words if w in gen.SHAPES), None)
    if qtype == "colour_of_shape":
        matches = [c for c, s in scene if s == shape]
        assert len(matches) == 1
        return matches[0]
    if qtype == "shape_of_colour":
        matches = [s for c, s in scene if c == colour]
        assert len(matches) == 1
        return matches[0]
    if qtype == "count_colour":
        return gen.COUNT_WORDS[sum(c == colour for c, _ in scene)]
    if qtype == "exists":
        return "yes" if (colour, shape) in scene else "no"
    if qtype == "count_beeps":
        return gen.COUNT_WORDS[beeps]
    if qtype == "shapes_equal_beeps":
        return "yes" if len(scene) == beeps else "no"
    raise AssertionError(qtype)


# ----------------------------------------------------------------------------- API
def test_import_does_not_import_tensorflow():
    # Skip mmzoo/__init__.py (not this module's concern): a bare package for the path.
    code = (
        "import sys, types\n"
        f"pkg = types.ModuleType('mmzoo'); pkg.__path__ = [{os.path.join(ROOT, 'mmzoo')!r}]\n"
        "sys.modules['mmzoo'] = pkg\n"
        "import mmzoo.datasets, tensorflow_datasets as tfds\n"
        "assert 'shapes_vqa' in tfds.list_builders(with_community_datasets=False)\n"
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_list_datasets_and_errors():
    assert mmzoo.datasets.list_datasets() == ["shapes_captions", "shapes_shop", "shapes_vqa"]
    assert mmzoo.datasets.list_datasets(with_configs=True) == [
        "shapes_captions/beeps_caption_small",
        "shapes_captions/caption",
        "shapes_captions/caption_en_small",
        "shapes_captions/caption_small",
        "shapes_captions/image_text",
        "shapes_captions/image_text_en",
        "shapes_captions/image_text_small",
        "shapes_shop/full",
        "shapes_shop/small",
        "shapes_vqa/image_text",
        "shapes_vqa/image_text_audio",
        "shapes_vqa/image_text_audio_small",
        "shapes_vqa/image_text_small",
    ]
    with pytest.raises(ValueError, match=r"Unknown config 'smal' for dataset 'shapes_shop'.*Did you mean"):
        mmzoo.datasets.load("shapes_shop", config="smal")
    with pytest.raises(ValueError, match=r"Unknown config 'image_txt'.*Did you mean"):
        mmzoo.datasets.builder(config="image_txt")
    with pytest.raises(ValueError, match=r"Unknown dataset 'shape_vqa'.*shapes_vqa"):
        mmzoo.datasets.builder(name="shape_vqa")


def test_answer_and_question_type_lists():
    assert mmzoo.datasets.ANSWERS == sorted(mmzoo.datasets.ANSWERS)
    assert mmzoo.datasets.ANSWERS == [
        "blue", "circle", "four", "green", "no", "one", "red",
        "square", "three", "triangle", "two", "yellow", "yes", "zero",
    ]  # fmt: skip
    assert list(mmzoo.datasets.QUESTION_TYPES) == [
        "colour_of_shape", "shape_of_colour", "count_colour",
        "exists", "count_beeps", "shapes_equal_beeps",
    ]  # fmt: skip


# ----------------------------------------------------------------------------- the data
def test_builds_offline_into_data_dir(builders, data_dirs):
    for config, b in builders.items():
        expected = os.path.join(str(data_dirs[0]), "shapes_vqa", config, "1.0.0")
        assert os.path.samefile(b.data_dir, expected)
        assert str(b.version) == "1.0.0"
        assert "1.0.0" in b.release_notes
    downloads = os.path.join(str(data_dirs[0]), "downloads")
    leftovers = [f for _, _, files in os.walk(downloads) for f in files]
    assert leftovers == []


def test_split_sizes(builders, examples):
    for config, b in builders.items():
        for split, n in SPLITS.items():
            assert b.info.splits[split].num_examples == n
            assert len(examples[config][split]) == n


def test_features(builders, examples):
    for config, b in builders.items():
        features = b.info.features
        assert features["answer"].names == mmzoo.datasets.ANSWERS
        assert features["question_type"].names == list(mmzoo.datasets.QUESTION_TYPES)
        ex = examples[config]["train"][0]
        assert ex["image"].shape == (32, 32, 3) and ex["image"].dtype == np.uint8
        assert isinstance(ex["question"], bytes) and ex["question"].endswith((b"?", b"."))
        assert ex["grid"].shape == (4,) and ex["grid"].dtype == np.int8
        assert 0 <= ex["answer"] < 14 and 0 <= ex["question_type"] < 6
        if config == "image_text_audio_small":
            assert features["audio"].sample_rate == 8000
            assert features["audio"].shape == (8000,)
            assert ex["audio"].shape == (8000,) and ex["audio"].dtype == np.int16
            assert 1 <= ex["num_beeps"] <= 4
        else:
            assert "audio" not in features and "audio" not in ex


def test_deterministic_across_data_dirs(examples, data_dirs):
    other = _build_all(data_dirs[1])
    for config, b in other.items():
        for split in SPLITS:
            again = _read(b, split)
            first = examples[config][split]
            assert len(again) == len(first)
            for x, y in zip(first, again):
                assert sorted(x) == sorted(y)
                for key in x:
                    np.testing.assert_array_equal(x[key], y[key])


def test_answers_balanced_within_question_type(builders, examples):
    def counts(config, split):
        names = builders[config].info.features["answer"].names
        types = builders[config].info.features["question_type"].names
        table = collections.defaultdict(collections.Counter)
        for ex in examples[config][split]:
            table[types[ex["question_type"]]][names[ex["answer"]]] += 1
        return table

    table = counts("image_text_small", "train")
    assert {t: sum(c.values()) for t, c in table.items()} == {
        "colour_of_shape": 128, "shape_of_colour": 128, "count_colour": 128, "exists": 128,
    }  # fmt: skip
    assert table["colour_of_shape"] == {"red": 32, "green": 32, "blue": 32, "yellow": 32}
    assert table["shape_of_colour"] == {"circle": 43, "square": 43, "triangle": 42}
    assert table["count_colour"] == {"zero": 32, "one": 32, "two": 32, "three": 32}
    assert table["exists"] == {"no": 64, "yes": 64}

    table = counts("image_text_audio_small", "train")
    assert {t: sum(c.values()) for t, c in table.items()} == {
        "colour_of_shape": 86, "shape_of_colour": 86, "count_colour": 85, "exists": 85,
        "count_beeps": 85, "shapes_equal_beeps": 85,
    }  # fmt: skip
    assert table["count_beeps"] == {"one": 22, "two": 21, "three": 21, "four": 21}
    assert table["shapes_equal_beeps"] == {"no": 43, "yes": 42}

    for config in SMALL:  # every split: within a type, answer counts differ by at most one
        for split in SPLITS:
            for qtype, answer_counts in counts(config, split).items():
                assert set(answer_counts) == set(gen.TYPE_ANSWERS[qtype])
                assert max(answer_counts.values()) - min(answer_counts.values()) <= 1


def test_images_and_audio_make_the_answers_true(builders, examples):
    for config in SMALL:
        names = builders[config].info.features["answer"].names
        types = builders[config].info.features["question_type"].names
        checked = collections.Counter()
        for ex in examples[config]["test"] + examples[config]["validation"]:
            scene = _scene_from_pixels(ex["image"])
            grid = sorted(gen.object_name(o) for o in ex["grid"] if o >= 0)
            assert sorted(f"{c} {s}" for c, s in scene) == grid
            assert 1 <= len(scene) <= 4 and len(set(scene)) == len(scene)
            beeps = None
            if "audio" in ex:
                beeps = _beeps_from_audio(ex["audio"])
                assert beeps == ex["num_beeps"]
            qtype = types[ex["question_type"]]
            question = ex["question"].decode()
            assert _answer_from_pixels(question, qtype, scene, beeps) == names[ex["answer"]]
            checked[qtype] += 1
        assert len(checked) == (6 if "audio" in config else 4)


def test_beep_detector_on_generated_clips():
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 4) * 10:
        clip = gen.beep_clip(rng, n)
        assert clip.dtype == np.int16 and clip.shape == (8000,)
        assert _beeps_from_audio(clip) == n


def test_chance_levels(data_dirs, builders):
    # Exact fractions of the 128 test examples: they pin the generated data, so a change
    # to the generator shows up here (and needs a new dataset VERSION).
    data_dir = str(data_dirs[0])
    levels = mmzoo.datasets.chance_levels("image_text_small", split="test", data_dir=data_dir)
    assert levels == pytest.approx(
        {"majority": 16 / 128, "text": 45 / 128, "image": 28 / 128}, abs=1e-9
    )
    assert max(levels.values()) < 0.45
    levels = mmzoo.datasets.chance_levels("image_text_audio_small", data_dir=data_dir)
    assert levels == pytest.approx(
        {"majority": 22 / 128, "text": 49 / 128, "image": 27 / 128, "audio": 23 / 128}, abs=1e-9
    )
    assert max(levels.values()) < 0.45


def test_lookup_accuracy():
    from mmzoo.datasets.chance import lookup_accuracy

    train = [{"q": "a", "answer": 1}, {"q": "a", "answer": 1}, {"q": "b", "answer": 2}]
    test = [{"q": "a", "answer": 1}, {"q": "b", "answer": 1}, {"q": "c", "answer": 1}]
    # a -> 1 (right), b -> 2 (wrong), unseen c -> majority 1 (right)
    assert lookup_accuracy(train, test, lambda r: r["q"]) == pytest.approx(2 / 3)


def test_question_alone_only_tells_the_answer_type():
    # Generated without TFDS: the best answer per exact question string, learnt on 4000
    # examples and scored on 4000 others, gets about (1/4 + 1/3 + 1/4 + 1/2) / 4 = 1/3.
    from mmzoo.datasets.chance import lookup_accuracy

    train = [ex for _, ex in gen.generate(4000, seed=7, with_audio=False)]
    test = [ex for _, ex in gen.generate(4000, seed=8, with_audio=False)]
    accuracy = lookup_accuracy(train, test, lambda ex: ex["question"])
    assert 0.30 < accuracy < 0.36


def test_load_passes_the_mapping_to_from_tfds(monkeypatch, data_dirs):
    calls = []

    def from_tfds(name, mapping, data_dir=None, **pipeline_kwargs):
        calls.append((name, mapping, data_dir, pipeline_kwargs))
        return "data"

    fake = types.SimpleNamespace(from_tfds=from_tfds)
    monkeypatch.setitem(sys.modules, "mmzoo.data", fake)
    data_dir = str(data_dirs[0])
    data = mmzoo.datasets.load(config="image_text_audio_small", data_dir=data_dir, val_fraction=0)
    assert data == "data"
    assert mmzoo.datasets.load(config="image_text_small", data_dir=data_dir) == "data"
    assert calls == [
        (
            "shapes_vqa/image_text_audio_small",
            {"image": "image", "text": "question", "label": "answer", "audio": "audio"},
            data_dir,
            {"val_fraction": 0},
        ),
        (
            "shapes_vqa/image_text_small",
            {"image": "image", "text": "question", "label": "answer"},
            data_dir,
            {},
        ),
    ]


def test_load_gives_mmzoo_data(builders, data_dirs):
    data = mmzoo.datasets.load(config="image_text_audio_small", data_dir=str(data_dirs[0]))
    spec = data.spec
    assert spec.modalities == ("audio", "image", "text")
    assert tuple(spec.image_shape) == (32, 32, 3)
    assert (spec.sample_rate, spec.audio_samples) == (8000, 8000)
    assert spec.num_classes == 14 and spec.class_names == mmzoo.datasets.ANSWERS
    features, labels = next(iter(data.dataset("test", batch_size=16)))
    assert tuple(features["image"].shape) == (16, 32, 32, 3)
    assert tuple(features["audio"].shape) == (16, 8000)
    assert features["text"].shape[0] == 16
    assert labels.shape[0] == 16 and int(labels.numpy().max()) < 14
