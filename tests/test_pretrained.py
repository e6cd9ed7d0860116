"""Shipped zoo weights: hash-checked, loaded by build(weights=...), accurate on shapes_vqa."""

import os
import shutil

import numpy as np
import pytest

import mmzoo
from mmzoo import pretrained

SHIPPED = pretrained.available()


def test_at_least_three_presets_ship_weights_with_their_accuracy():
    assert len(SHIPPED) >= 3
    for preset, tags in SHIPPED.items():
        assert preset in mmzoo.list_models()
        info = tags["shapes_vqa"]
        assert info["accuracy"] > 0.9, (preset, info["accuracy"])
        assert info["dataset"].startswith("shapes_vqa/")
        size = os.path.getsize(os.path.join(pretrained.WEIGHTS_DIR, info["file"]))
        assert size < 3 * 2**20, f"{info['file']} is {size} bytes; ship small files"
        assert mmzoo.describe(preset)["weights"]["shapes_vqa"]["accuracy"] == info["accuracy"]


def test_mmzoo_list_shows_the_accuracy(capsys):
    from mmzoo.cli import main

    main(["list"])
    out = capsys.readouterr().out
    for preset, tags in SHIPPED.items():
        line = next(item for item in out.splitlines() if item.startswith(preset + " "))
        assert f"{tags['shapes_vqa']['accuracy']:.1%}" in line


@pytest.mark.parametrize("preset", sorted(SHIPPED))
def test_pretrained_weights_reproduce_their_accuracy(preset, tmp_path_factory):
    info = SHIPPED[preset]["shapes_vqa"]
    config = info["dataset"].split("/")[1] + "_small"
    data_dir = str(tmp_path_factory.getbasetemp() / "tfds_pretrained")
    model = mmzoo.build(preset, weights="shapes_vqa")
    assert model.spec.vocabulary == info["spec"]["vocabulary"]
    data = mmzoo.datasets.load("shapes_vqa", config=config, data_dir=data_dir, spec=model.spec)
    result = model.evaluate(data.dataset("test", batch_size=128), verbose=0, return_dict=True)
    # The small test split is drawn from the same generator as the large one.
    assert result["accuracy"] >= info["accuracy"] - 0.06


def test_corrupt_weights_are_refused(monkeypatch, tmp_path):
    preset = sorted(SHIPPED)[0]
    info = SHIPPED[preset]["shapes_vqa"]
    folder = tmp_path / "weights"
    shutil.copytree(pretrained.WEIGHTS_DIR, folder)
    with open(folder / info["file"], "r+b") as f:
        f.seek(-100, os.SEEK_END)
        flipped = bytes(b ^ 0xFF for b in f.read(10))  # (zeros over zero padding would change nothing)
        f.seek(-100, os.SEEK_END)
        f.write(flipped)
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", str(folder))
    with pytest.raises(ValueError, match="is corrupt: sha256"):
        mmzoo.build(preset, weights="shapes_vqa")


def test_unknown_tags_and_clashing_overrides_are_errors():
    preset = sorted(SHIPPED)[0]
    with pytest.raises(ValueError, match=r"No pretrained weights 'imagenet' for preset .* Available: \['shapes_vqa'\]"):
        mmzoo.build(preset, weights="imagenet")
    with pytest.raises(ValueError, match="This preset ships no weights"):
        mmzoo.build("mobilenet_textcnn_concat", weights="shapes_vqa")
    with pytest.raises(ValueError, match=r"drop \['seq_len'\]"):
        mmzoo.build(preset, weights="shapes_vqa", seq_len=40)


def test_weights_from_a_user_checkpoint(tmp_path):
    from tests.helpers import TINY, fake_inputs

    a = mmzoo.build("cnn_gru_concat", seed=1, **TINY, num_classes=3, compile=False)
    path = str(tmp_path / "mine.weights.h5")
    a.save_weights(path)
    b = mmzoo.build("cnn_gru_concat", seed=2, **TINY, num_classes=3, weights=path, compile=False)
    x = fake_inputs(a.spec)
    np.testing.assert_allclose(a(x), b(x), atol=1e-6)
    with pytest.raises(ValueError, match="weights file not found"):
        mmzoo.build("cnn_gru_concat", weights=str(tmp_path / "nope.weights.h5"))
