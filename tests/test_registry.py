"""Registry, presets, spec and the light import: no TensorFlow needed here."""

import json
import subprocess
import sys

import pytest

import mmzoo
from mmzoo.presets import PRESET_TABLE
from mmzoo.registry import PRESETS, Registry
from mmzoo.spec import DataSpec


def test_registry_lists_with_wildcards_in_natural_order():
    r = Registry("thing")
    for name in ("net10", "net2", "other"):
        r.add(name, object())
    assert r.names() == ["net2", "net10", "other"]
    assert r.names("net*") == ["net2", "net10"]
    with pytest.raises(ValueError, match=r"Unknown thing 'net3'. Did you mean: net2"):
        r.get("net3")
    with pytest.raises(ValueError, match="already registered"):
        r.add("net2", object())


def test_aliases_resolve():
    r = Registry("thing", aliases={"old_name": "new_name"})
    r.add("new_name", 42)
    assert r.get("old_name") == 42


def test_list_models_sorted_and_filtered():
    names = mmzoo.list_models()
    assert names == sorted(names) and set(names) == set(PRESET_TABLE)
    assert mmzoo.list_models("*attention*") == [n for n in names if "attention" in n]
    assert mmzoo.list_models("nothing*") == []


def test_describe_without_building():
    d = mmzoo.describe("cnn_gru_concat")
    assert d["modalities"] == ["image", "text"]
    assert d["encoders"] == {"image": "cnn", "text": "bigru"}
    assert (d["fusion"], d["head"]) == ("concat", "classification")
    assert d["params"] == 2_189_770
    assert "Ngiam" in d["reference"] and "Conv2D(32)" in d["summary"]


def test_import_is_light():
    code = (
        "import sys, mmzoo; mmzoo.list_models(); mmzoo.describe('cnn_gru_film'); "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_register_preset_as_data():
    preset = mmzoo.register_preset("test_only_preset", image="cnn", text="textcnn", fusion="gated")
    try:
        assert preset["modalities"] == ["image", "text"]
        assert "test_only_preset" in mmzoo.list_models("test_only*")
        assert "Arevalo" in mmzoo.describe("test_only_preset")["reference"]
        with pytest.raises(ValueError, match="unknown keys \\['fusoin'\\]"):
            mmzoo.register_preset("bad_preset", image="cnn", fusoin="gated")
    finally:
        PRESETS._items.pop("test_only_preset", None)
        PRESETS._meta.pop("test_only_preset", None)


def test_spec_json_round_trip(tmp_path):
    spec = DataSpec(modalities=("text", "image"), class_names=["a", "b"], num_classes=2,
                    vocabulary=["<pad>", "<unk>", "hello"], vocab_size=3)
    path = spec.save(str(tmp_path / "spec.json"))
    assert DataSpec.load(path) == spec
    assert json.loads(open(path).read())["modalities"] == ["image", "text"]


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"modalities": ("video",)}, "Unknown modalities ['video']"),
        ({"seq_len": 0}, "seq_len must be a positive integer. Received: seq_len=0"),
        ({"vocab_size": 2}, "vocab_size must be at least 3"),
        ({"image_shape": (8, 8, 2)}, "image channels must be 1, 3 or 4"),
        ({"task": "ranking"}, "Unknown task 'ranking'"),
        ({"num_classes": 3, "class_names": ["a"]}, "class_names has 1 names but num_classes=3"),
        ({"task": "multitask"}, "task='multitask' needs `tasks"),
        ({"image_dtype": "int16"}, "image_dtype must be one of ['uint8', 'float32']"),
    ],
)
def test_spec_errors(fields, message):
    with pytest.raises(ValueError) as info:
        DataSpec(**fields)
    assert message in str(info.value)


def test_spec_rejects_unknown_fields():
    with pytest.raises(ValueError, match="Unknown DataSpec fields \\['colour'\\]"):
        DataSpec.from_dict({"colour": "red"})


def test_loader_settings_and_spec_fields_are_one_mapping():
    from mmzoo.spec import LOADER_SETTINGS, field_names, loader_settings, spec_fields_from_settings
    from mmzoo.zoo import SPEC_OVERRIDES

    for spec in (DataSpec(), DataSpec(image_shape=(24, 40, 1), image_resize="pad", seq_len=7, sample_rate=8000,
                                      audio_samples=2048, image_dtype="float32")):
        settings = loader_settings(spec)
        assert set(settings) == set(LOADER_SETTINGS)
        fields = spec_fields_from_settings(settings)
        assert spec.replace(**fields) == spec
    assert SPEC_OVERRIDES == field_names() and "image_resize" in SPEC_OVERRIDES
    assert set(DataSpec().model_kwargs()) == set(field_names())
