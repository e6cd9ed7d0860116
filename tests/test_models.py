"""Every preset, walked from the registry: build, forward, train, save/load, params."""

import numpy as np
import pytest

import mmzoo
from tests.helpers import TINY, MmzooTestCase, fake_inputs, fake_labels, flat_outputs, tiny_overrides, train_steps

PRESETS = mmzoo.list_models()


def test_the_zoo_has_what_the_issue_asks_for():
    assert len(PRESETS) >= 16
    assert {"cnn_gru_concat", "cnn_gru_attention"} <= set(PRESETS)
    described = [mmzoo.describe(n) for n in PRESETS]
    assert set(mmzoo.list_parts("fusion")) == {d["fusion"] for d in described}
    used_encoders = {e for d in described for e in d["encoders"].values()}
    assert set(mmzoo.list_parts("encoder")) == used_encoders
    assert set(mmzoo.list_parts("head")) == {d["head"] for d in described}
    three = [d for d in described if {"image", "text", "audio"} <= set(d["modalities"])]
    assert len(three) >= 4


@pytest.mark.parametrize("name", PRESETS)
def test_preset_builds_trains_and_round_trips(name):
    model = mmzoo.build(name, seed=0, compile=False, **tiny_overrides(name))
    spec = model.spec
    x, y = spec.targets[0].model_pair(fake_inputs(spec), fake_labels(spec))  # (a captioner's decoder reads y)
    assert sorted(model.input) == sorted(x)

    out = model(x, training=False)
    for o in flat_outputs(out):
        assert o.shape[0] == 4 and np.all(np.isfinite(o))
    if spec.task == "classification":
        np.testing.assert_allclose(np.asarray(out).sum(-1), 1.0, atol=1e-5)
        assert np.asarray(out).shape == (4, spec.num_classes)

    before = [v.numpy().copy() for v in model.trainable_variables]
    losses = train_steps(model, x, y, steps=2)
    assert all(np.isfinite(losses))
    unchanged = [v.path for v, b in zip(model.trainable_variables, before) if np.array_equal(v.numpy(), b)]
    assert not unchanged, f"weights that training did not change: {unchanged}"

    loaded = MmzooTestCase().assert_keras_round_trip(model, x)
    assert loaded.spec == spec.replace(vocabulary=None)
    assert loaded.get_config() == model.get_config()


@pytest.mark.parametrize("name", PRESETS)
def test_preset_param_count_is_pinned(name):
    model = mmzoo.build(name, compile=False)
    assert model.count_params() == mmzoo.describe(name)["params"]


def test_layer_names_read_well():
    model = mmzoo.build("cnn_gru_melcnn_attention", compile=False, **TINY, num_classes=3)
    names = [layer.name for layer in model.layers] + [layer.name for layer in model.backbone.layers]
    assert {"image_encoder", "text_encoder", "audio_encoder", "fusion", "backbone", "head"} <= set(names)
    paths = [v.path for v in model.weights]
    assert any(p.startswith("image_encoder/conv_1/") for p in paths)
    assert any(p.startswith("fusion/text_attends/") for p in paths)
    assert any(p.startswith("head/logits/") for p in paths)


def test_cnn_gru_concat_matches_the_classic_architecture():
    model = mmzoo.build("cnn_gru_concat", num_classes=10, compile=False)
    image = model.backbone.get_layer("image_encoder")
    assert [item.filters for item in image.layers if hasattr(item, "filters")] == [32, 64]
    assert image.output.shape == (None, 14 * 14 * 64)
    text = model.backbone.get_layer("text_encoder")
    assert text.get_layer("embedding").output_dim == 128
    assert text.get_layer("bigru").forward_layer.units == 64
    assert text.get_layer("dropout").rate == 0.5
    head = model.head
    assert [item.units for item in head.hidden_layers + list(head.logit_layers.values()) if hasattr(item, "units")] == [64, 10]


def test_compose_freely():
    model = mmzoo.build(image="resnet", text="bigru", audio="melcnn", fusion="gated", num_classes=7, **{
        k: v for k, v in TINY.items() if k != "tabular_dim"})
    assert model.spec.modalities == ("audio", "image", "text")
    assert model.output.shape == (None, 7)
    assert model.backbone.get_layer("fusion").__class__.__name__ == "GatedFusion"
    assert model.preset is None


def test_overrides_reach_the_model():
    model = mmzoo.build("cnn_gru_attention", num_classes=4, image_shape=(96, 96, 3), seq_len=48, vocab_size=8000,
                        compile=False)
    assert model.input["image"].shape == (None, 96, 96, 3)
    assert model.input["text"].shape == (None, 48)
    assert model.backbone.get_layer("text_encoder").get_layer("embedding").input_dim == 8000
    assert model.output.shape == (None, 4)
    assert model.spec.seq_len == 48 and model.spec.num_classes == 4


def test_data_spec_travels_with_the_model():
    names = ["no", "yes", "maybe"]
    model = mmzoo.build("cnn_gru_concat", class_names=names, **TINY, compile=False, image_resize="pad",
                        vocabulary=["<pad>", "<unk>", "a", "b"], tokenizer={"mode": "char", "lowercase": False})
    assert model.spec.num_classes == 3 and model.spec.class_names == names
    assert model.spec.image_resize == "pad" and model.spec.tokenizer["mode"] == "char"
    kwargs = model.spec.model_kwargs()
    again = mmzoo.build("cnn_gru_concat", **kwargs, compile=False)
    assert again.spec == model.spec


def test_drop_a_branch_and_unroll_option():
    model = mmzoo.build("cnn_gru_melcnn_concat", audio=False, encoder_options={"text": {"unroll": True}},
                        **TINY, num_classes=3, compile=False)
    assert model.spec.modalities == ("image", "text")
    assert model.backbone.get_layer("text_encoder").get_layer("bigru").forward_layer.unroll is True


def test_seeded_builds_are_identical():
    a = mmzoo.build("cnn_gru_film", seed=3, **TINY, num_classes=3, compile=False)
    b = mmzoo.build("cnn_gru_film", seed=3, **TINY, num_classes=3, compile=False)
    for va, vb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())


def test_build_compiles_with_the_head_defaults():
    model = mmzoo.build("cnn_gru_concat", **TINY, num_classes=3)
    x, y = fake_inputs(model.spec, batch=8), fake_labels(model.spec, batch=8)
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert set(history.history) == {"loss", "accuracy"}
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    assert 0.0 <= result["accuracy"] <= 1.0


# Together these cover every custom layer: LogMelSpectrogram, TokenMask, FastGRU (melcnn,
# bigru); PositionEmbedding, TransformerEncoderBlock, MaskedGlobalPooling (transformer,
# textcnn); and the fusions (all ten are jit-tested in test_fusion.py).
@pytest.mark.parametrize("name", ["cnn_gru_melcnn_attention", "resnet_transformer_attention",
                                  "mobilenet_textcnn_melcnn_weighted", "cnn_gru_crnn_recurrent"])
def test_jit_compiled_forward_matches_eager(name):
    model = mmzoo.build(name, seed=0, **TINY, num_classes=3, compile=False)
    x = fake_inputs(model.spec)
    model.compile(jit_compile=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), model(x), atol=1e-5)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: mmzoo.build("cnn_gru_concatt"), "Unknown preset 'cnn_gru_concatt'. Did you mean: cnn_gru_concat"),
        (lambda: mmzoo.build("cnn_gru_concat", num_clases=3), "Unknown override 'num_clases' (did you mean 'num_classes'?)"),
        (lambda: mmzoo.build(image="cnn", audio="melcnn", fusion="film"), "fusion='film' needs 'image' and 'text' branches. Received modalities: ['audio', 'image']"),
        (lambda: mmzoo.build("cnn_gru_concat", seq_len=0), "seq_len must be a positive integer. Received: seq_len=0"),
        (lambda: mmzoo.build("cnn_gru_concat", num_classes=1), "The classification head (softmax) needs num_classes >= 2"),
        (lambda: mmzoo.build(image="bigru", text="bigru"), "Encoder 'bigru' is a text encoder; it cannot encode 'image'"),
        (lambda: mmzoo.build(image="cnn", text="bigru", fusion="mean"), "Unknown fusion 'mean'"),
        (lambda: mmzoo.build("cnn_gru_concat", head="softmax"), "Unknown head 'softmax'"),
        (lambda: mmzoo.build("cnn_gru_concat", image_shape=(64, 64)), "image_shape must be (height, width, channels)"),
        (lambda: mmzoo.build("cnn_gru_melcnn_concat", modalities=["image", "text"]), "Preset 'cnn_gru_melcnn_concat' needs ['audio'] but the data has only ['image', 'text']"),
        (lambda: mmzoo.build(image="cnn", fusion="gated"), "fusion='gated' needs at least 2 modalities"),
        (lambda: mmzoo.build(), "No encoder chosen"),
        (lambda: mmzoo.build("cnn_gru_concat", encoder_options={"audio": {"n_mels": 8}}), "no audio branch"),
    ],
)
def test_errors_say_what_was_expected_and_received(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)


def test_errors_come_before_any_layer_is_built(monkeypatch):
    import mmzoo.tasks.classifier

    def boom(*args, **kwargs):
        raise AssertionError("a model was constructed")

    monkeypatch.setattr(mmzoo.tasks.classifier.Classifier, "__init__", boom)
    with pytest.raises(ValueError, match="needs 'image' and 'text'"):
        mmzoo.build(image="cnn", audio="melcnn", fusion="film")
