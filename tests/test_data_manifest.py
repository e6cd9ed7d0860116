"""from_manifest: formats, splits, labels, the spec round trip and every bad-input case."""

import json

import numpy as np
import pytest
from conftest import rows_for, write_manifest

import mmzoo.data as md
from mmzoo.spec import DataSpec

KW = dict(image_size=(8, 8), seq_len=6, audio_seconds=0.1)


def _first(ds):
    return next(iter(ds.as_numpy_iterator()))


@pytest.mark.parametrize("name", ["ok.csv", "ok.jsonl"])
def test_csv_and_jsonl_give_the_same_data(media, name):
    path = write_manifest(media, rows_for(12, ("image", "text", "audio", "tabular")), name)
    data = md.from_manifest(path, **KW)
    assert data.modalities == ("audio", "image", "tabular", "text")
    assert data.class_names == ["blue", "green", "red", "yellow"]
    assert data.num_classes == 4 and data.task == "classification"
    assert data.splits == {"train": 8, "validation": 2, "test": 2}
    assert data.model_kwargs() == data.spec.model_kwargs()
    assert data.spec.tabular_dim == 3 and data.spec.audio_samples == 1600
    x, y = _first(data.dataset("train", batch_size=4, shuffle=False))
    assert x["image"].shape == (4, 8, 8, 3) and x["image"].dtype == np.uint8
    assert x["text"].shape == (4, 6) and x["text"].dtype == np.int32
    assert x["audio"].shape == (4, 1600) and x["audio"].dtype == np.float32
    np.testing.assert_allclose(x["tabular"][1], [1, 0.5, 1])
    assert y.tolist() == [2, 1, 0, 3] and y.dtype == np.int32
    assert "绿" in data.spec.vocabulary and "red" in data.spec.vocabulary


def test_vocabulary_comes_from_train_only(media):
    rows = rows_for(8, ("text",))
    rows[-1]["text"] = "onlyintest"
    rows[-1]["split"] = "test"
    data = md.from_manifest(write_manifest(media, rows, "vocab.csv"), **KW)
    assert "onlyintest" not in data.spec.vocabulary
    assert md.tokenize_reference("onlyintest", data.spec)[0] == 1


def test_seeded_stratified_split(media):
    path = write_manifest(media, rows_for(40, ("image",), split=False), "nosplit.csv")
    a = md.from_manifest(path, seed=3, **KW)
    b = md.from_manifest(path, seed=3, **KW)
    c = md.from_manifest(path, seed=4, **KW)
    assert a.splits == {"train": 32, "validation": 4, "test": 4}
    assert all((a.rows(s) == b.rows(s)).all() for s in a.splits)
    assert any(set(a.rows(s)) != set(c.rows(s)) for s in a.splits)
    _, y = _first(a.dataset("validation", batch_size=None, shuffle=False).batch(4))
    assert sorted(y.tolist()) == [0, 1, 2, 3]  # one of each class: stratified


def test_multilabel_and_regression_are_inferred(media):
    rows = [
        {"image": "red.png", "label": "red|round"},
        {"image": "blue.png", "label": "blue"},
        {"image": "green.png", "label": "green|round"},
    ]
    ml = md.from_manifest(
        write_manifest(media, rows, "ml.csv"), val_fraction=0, test_fraction=0, **KW
    )
    assert ml.task == "multilabel" and ml.class_names == ["blue", "green", "red", "round"]
    _, y = _first(ml.dataset("train", batch_size=3, shuffle=False))
    assert y.tolist() == [[0, 0, 1, 1], [1, 0, 0, 0], [0, 1, 0, 1]] and y.dtype == np.float32
    rows = [{"image": "red.png", "label": 0.5}, {"image": "blue.png", "label": 2}]
    rg = md.from_manifest(
        write_manifest(media, rows, "rg.jsonl"), val_fraction=0, test_fraction=0, **KW
    )
    assert rg.task == "regression" and rg.num_classes == 1 and rg.class_names is None
    _, y = _first(rg.dataset("train", batch_size=2, shuffle=False))
    np.testing.assert_allclose(y, [[0.5], [2.0]])
    digits = [{"image": "red.png", "label": "10"}, {"image": "blue.png", "label": "2"}]
    cl = md.from_manifest(
        write_manifest(media, digits, "dg.csv"), val_fraction=0, test_fraction=0, **KW
    )
    assert cl.task == "classification" and cl.class_names == ["2", "10"]


def test_spec_json_round_trip_and_reuse(media, tmp_path):
    data = md.from_manifest(
        write_manifest(media, rows_for(8), "train1.csv"), image_resize="pad", **KW
    )
    path = data.spec.save(str(tmp_path / "spec.json"))
    loaded = DataSpec.load(path)
    assert loaded == data.spec and loaded.image_resize == "pad"
    assert json.load(open(path, encoding="utf-8"))["vocabulary"] == data.spec.vocabulary
    # a second manifest with other texts: the saved vocabulary and class names are reused
    rows = rows_for(8)
    for r in rows:
        r["text"] = r["text"] + " brandnewword"
    again = md.from_manifest(write_manifest(media, rows, "eval.csv"), spec=loaded)
    assert again.spec == loaded and "brandnewword" not in again.spec.vocabulary
    x1, _ = _first(data.dataset("test", batch_size=None, shuffle=False))
    x2, _ = _first(
        md.from_manifest(write_manifest(media, rows_for(8), "train1b.csv"), spec=loaded).dataset(
            "test", batch_size=None, shuffle=False
        )
    )
    assert all(np.array_equal(x1[k], x2[k]) for k in x1)
    with pytest.raises(ValueError, match="seq_len=9 conflicts with the given spec"):
        md.from_manifest(write_manifest(media, rows_for(8), "train1c.csv"), spec=loaded, seq_len=9)
    other = rows_for(8)
    other[1]["label"] = "purple"
    with pytest.raises(md.DataError, match=r"row 2 .*'purple'.*not in the spec's class names"):
        md.from_manifest(write_manifest(media, other, "eval2.csv"), spec=loaded)


# ---------------------------------------------------------------- bad input, one case each
BAD_CASES = [
    ("missing.csv", {"image": "nope.png"}, "image 'nope.png': file not found"),
    ("emptyimg.csv", {"image": "empty.png"}, "image 'empty.png': the image file is empty"),
    ("notimg.csv", {"image": "notimage.png"}, "image 'notimage.png': not an image"),
    (
        "truncimg.csv",
        {"image": "truncated.png"},
        "image 'truncated.png': could not be decoded: Invalid PNG",
    ),
    ("dir.csv", {"image": "sub"}, "image 'sub': not a file"),
    (
        "escape.csv",
        {"image": "../../etc/passwd"},
        "image '../../etc/passwd': the path escapes the data root",
    ),
    ("abs.csv", {"image": "/etc/passwd"}, "image '/etc/passwd': absolute paths are not allowed"),
    ("emptywav.csv", {"audio": "empty.wav"}, "audio 'empty.wav': the WAV file is empty"),
    ("zerowav.csv", {"audio": "zero.wav"}, "audio 'zero.wav': the WAV file has no audio samples"),
    ("truncwav.csv", {"audio": "truncated.wav"}, "audio 'truncated.wav': truncated WAV"),
    ("pcm24.csv", {"audio": "pcm24.wav"}, "audio 'pcm24.wav': the WAV file is 24-bit"),
    ("notwav.csv", {"audio": "red.png"}, "audio 'red.png': not a WAV file"),
    ("emptylabel.csv", {"label": ""}, "label: the label is empty"),
    ("badsplit.csv", {"split": "trian"}, "split 'trian': unknown split"),
    (
        "unseen.csv",
        {"label": "purple", "split": "validation"},
        "label 'purple': class 'purple' (validation split) is not in the train split",
    ),
    (
        "badtab.csv",
        {"tabular": "1 x 3"},
        "tabular '1 x 3': tabular has a value that is not a number",
    ),
    ("shorttab.csv", {"tabular": "1 2"}, "tabular '1 2': has 2 values, expected 3 (as in row 1)"),
    ("nantab.csv", {"tabular": "1 nan 2"}, "tabular has a non-finite value"),
]


@pytest.mark.parametrize("name,change,expected", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_row_is_named(media, name, change, expected):
    column = next(iter(change))  # only the modality under test, to keep the test fast
    modalities = {"audio": ("audio",), "tabular": ("tabular",)}.get(column, ("image", "text"))
    rows = rows_for(6, modalities)
    rows[4].update(change)
    path = write_manifest(media, rows, name)
    with pytest.raises(md.DataError) as info:
        md.from_manifest(path, **KW)
    message = str(info.value)
    assert f"{name} row 5 (line 6):" in message
    assert expected in message
    assert "1 problem in" in message and len(info.value.errors) == 1
    # skip mode drops exactly that row and says why
    data = md.from_manifest(path, on_error="skip", **KW)
    assert data.report.skipped == 1 and sum(data.splits.values()) == 5
    assert expected in str(data.report.errors[0]) and 5 not in np.concatenate(
        [data.rows(s) for s in data.splits]
    )


def test_absolute_paths_allowed_when_asked(media):
    rows = rows_for(4, ("image",))
    rows[0]["image"] = str(media / "red.png")
    data = md.from_manifest(
        write_manifest(media, rows, "absok.csv"), allow_absolute_paths=True, **KW
    )
    assert data.splits["train"] == 4


def test_resample_off_names_file_and_rate(media):
    rows = rows_for(6, ("audio",))
    rows[2]["audio"] = "green.8k.wav"
    with pytest.raises(
        md.DataError,
        match=r"rate8k.csv row 3 \(line 4\): audio 'green.8k.wav': "
        r"sample rate 8000 Hz differs from the spec's 16000 Hz",
    ):
        md.from_manifest(write_manifest(media, rows, "rate8k.csv"), resample=False, **KW)
    assert md.from_manifest(write_manifest(media, rows, "rate8k.csv"), **KW).splits["train"] == 4


def test_non_utf8_text_is_named(media):
    path = write_manifest(media, rows_for(6, ("image", "text")), "latin1.csv")
    raw = open(path, "rb").read().replace("A red circle.".encode(), "caf\xe9".encode("latin-1"), 1)
    open(path, "wb").write(raw)
    with pytest.raises(
        md.DataError, match=r"latin1.csv row 1 \(line 2\): text 'caf\ufffd': is not valid UTF-8"
    ):
        md.from_manifest(path, **KW)


def test_bad_json_line_and_field_count(media):
    path = write_manifest(media, rows_for(6, ("image",)), "badjson.jsonl")
    lines = open(path, encoding="utf-8").read().splitlines()
    lines[2] = '{"image": "red.png", "label": '
    open(path, "w", encoding="utf-8").write("\n".join(lines) + "\n")
    with pytest.raises(md.DataError, match=r"badjson.jsonl row 3 \(line 3\): invalid JSON"):
        md.from_manifest(path, **KW)
    path = write_manifest(media, rows_for(6, ("image",)), "fields.csv")
    text = (
        open(path, encoding="utf-8").read().replace("green.png,green", "green.png,green,extra", 1)
    )
    open(path, "w", encoding="utf-8").write(text)
    with pytest.raises(md.DataError, match=r"fields.csv row 2 \(line 3\): the row has 4 fields"):
        md.from_manifest(path, **KW)


def test_column_errors_suggest_names(media):
    rows = [{"imgae": "red.png", "label": "red"}]
    with pytest.raises(
        md.DataError, match=r"typo.csv: unknown column 'imgae'. Did you mean 'image'\?"
    ):
        md.from_manifest(write_manifest(media, rows, "typo.csv"), **KW)
    rows = [{"image": "red.png", "lable": "red"}]
    with pytest.raises(md.DataError, match=r"nolabel.csv: .*Did you mean 'label'\?"):
        md.from_manifest(write_manifest(media, rows, "nolabel.csv"), **KW)
    rows = [{"picture": "red.png", "label": "red", "notes": "x"}]
    with pytest.raises(md.DataError, match=r"noinput.csv: no input column"):
        md.from_manifest(write_manifest(media, rows, "noinput.csv"), **KW)
    rows = [{"picture": "red.png", "label": "red", "notes": "x"}] * 2
    data = md.from_manifest(
        write_manifest(media, rows, "mapped.csv"),
        columns={"image": "picture"},
        val_fraction=0,
        test_fraction=0,
        **KW,
    )
    assert data.modalities == ("image",)
    assert "columns this model does not use (ignored): ['notes']" in data.report.summary()


def test_many_errors_listed_and_counted(media):
    rows = rows_for(12, ("image", "text"))
    rows[1]["image"] = "nope1.png"
    rows[2]["image"] = "../x.png"
    rows[3]["label"] = ""
    path = write_manifest(media, rows, "many.csv")
    with pytest.raises(md.DataError) as info:
        md.from_manifest(path, **KW)
    assert [e.row for e in info.value.errors] == [2, 3, 4]
    assert "3 problems in" in str(info.value) and "on_error='skip'" in str(info.value)
    data = md.from_manifest(path, on_error="skip", **KW)
    assert data.report.skipped == 3 and data.splits["train"] == 5
    assert "rows skipped: 3" in data.report.summary()
