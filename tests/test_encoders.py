"""Encoders, walked from the registry: output kinds, shapes, masking, registration."""

import numpy as np
import pytest

import mmzoo
from mmzoo.registry import ENCODERS, MODALITY_NAMES
from mmzoo.spec import DataSpec
from tests.helpers import TINY, fake_inputs

SPEC = DataSpec(modalities=MODALITY_NAMES, **TINY)
RANK = {"vector": 2, "sequence": 3, "map": 4}


def _cases():
    for name in mmzoo.list_parts("encoder"):
        for output in ("vector", "sequence", "map"):
            yield name, output


@pytest.mark.parametrize("name, output", list(_cases()))
def test_encoder_output_kinds(name, output):
    modality = ENCODERS.meta(name)["modality"]
    builder = ENCODERS.get(name)
    try:
        model = builder(SPEC, output=output)
    except ValueError as e:
        assert f"cannot produce output={output!r}" in str(e)
        assert output != "vector", "every encoder must produce a vector"
        return
    assert model.name == f"{modality}_encoder"
    x = fake_inputs(SPEC, batch=2)[modality]
    y = np.asarray(model(x))
    assert y.ndim == RANK[output] and y.shape[0] == 2
    assert tuple(model.output.shape[1:]) == y.shape[1:]
    assert np.all(np.isfinite(y))


@pytest.mark.parametrize("name", mmzoo.list_parts("encoder", modality="text")
                         + mmzoo.list_parts("encoder", modality="history"))
def test_text_padding_is_masked(name):
    """The padding row of the embedding must not reach the output: padding is masked (text
    tokens, a user's history of items)."""
    model = ENCODERS.get(name)(SPEC, output="vector")
    x = fake_inputs(SPEC, batch=2)[ENCODERS.meta(name)["modality"]]
    before = np.asarray(model(x, training=False))
    emb = model.get_layer("embedding").embeddings
    emb.assign(np.concatenate([np.full((1, emb.shape[1]), 7.0, "float32"), emb.numpy()[1:]]))
    after = np.asarray(model(x, training=False))
    np.testing.assert_allclose(before, after, atol=1e-5)


def test_image_encoders_accept_uint8_and_float_pixels():
    spec_f = SPEC.replace(image_dtype="float32")
    for name in mmzoo.list_parts("encoder", modality="image"):
        model_u = ENCODERS.get(name)(SPEC)
        model_f = ENCODERS.get(name)(spec_f)
        model_f.set_weights(model_u.get_weights())
        pixels = fake_inputs(SPEC, batch=1)["image"]
        np.testing.assert_allclose(model_u(pixels), model_f(pixels.astype("float32")), atol=1e-5)


def test_register_your_own_encoder():
    import keras

    @mmzoo.register_encoder("tiny_test_cnn", modality="image")
    def tiny(spec, output="vector", filters=4):
        inputs = keras.Input(spec.image_shape, dtype=spec.image_dtype, name="image")
        x = keras.layers.Rescaling(1 / 255)(inputs)
        x = keras.layers.Conv2D(filters, 3)(x)
        return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x), name="image_encoder")

    try:
        assert "tiny_test_cnn" in mmzoo.list_parts("encoder", modality="image")
        model = mmzoo.build(image="tiny_test_cnn", text="bigru", encoder_options={"image": {"filters": 3}},
                            num_classes=2, **TINY, compile=False)
        assert model.backbone.get_layer("image_encoder").output.shape == (None, 3)
        with pytest.raises(ValueError, match="already registered"):
            mmzoo.register_encoder("tiny_test_cnn", modality="image")(lambda spec, output="vector": None)
    finally:
        ENCODERS._items.pop("tiny_test_cnn", None)
        ENCODERS._meta.pop("tiny_test_cnn", None)
