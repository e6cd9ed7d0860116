"""`mmzoo train --data X` without --model: a preset that fits the data's inputs and target, said out loud."""

import json
import os

import mmzoo
from mmzoo.zoo import choose_preset, resolve_config
from tests.test_tasks import SMALL, write_manifest


def test_no_model_trains_the_preset_that_fits_a_three_input_manifest(tmp_path, capsys):
    from mmzoo.cli import main

    manifest = write_manifest(tmp_path)  # image, text, audio
    out = str(tmp_path / "run")
    assert main(["train", "--data", manifest, "--epochs", "1", "--out", out, "--image-size", "24", "24",
                 "--seq-len", "8", "--sample-rate", "8000", "--audio-seconds", "0.25", "--batch-size", "8"]) == 0
    printed = capsys.readouterr().out
    assert ("Training cnn_gru_melcnn_film: the data has inputs ['audio', 'image', 'text'] and a "
            "classification target") in printed
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["preset"] == "cnn_gru_melcnn_film" and "default for them" in config["model_choice"]
    assert mmzoo.open_run(out).spec.modalities == ("audio", "image", "text")


def test_no_model_on_image_and_text_and_a_composed_model_where_no_preset_fits(tmp_path):
    manifest = write_manifest(tmp_path, audio=False)
    run = mmzoo.train(data=manifest, epochs=1, out=str(tmp_path / "run"), verbose=0, data_kwargs=SMALL)
    assert run.config["preset"] == "cnn_gru_attention"
    spec = mmzoo.DataSpec(modalities=("audio", "tabular"), num_classes=3)
    model, reason = choose_preset(spec)
    assert model == {"preset": None, "audio": "melcnn", "tabular": "mlp", "fusion": "concat",
                     "head": "classification"}
    assert "no preset has exactly these" in reason
    config = resolve_config(None, **{k: v for k, v in model.items() if k != "preset"}, spec=spec)
    assert sorted(config["encoders"]) == ["audio", "tabular"]


def test_training_leaves_op_determinism_as_it_found_it(tmp_path):
    from tensorflow.python.framework import config as tf_config

    tf_config.disable_op_determinism()
    manifest = write_manifest(tmp_path, audio=False, n=15)
    mmzoo.train("cnn_gru_concat", manifest, epochs=1, out=str(tmp_path / "run"), verbose=0, data_kwargs=SMALL)
    # Left on, it would turn XLA off for the rest of the process (Keras refuses jit_compile then).
    assert not tf_config.is_op_determinism_enabled()
