"""Fusion layers, walked from the registry: Keras' conformance harness and the fusion math."""

import keras
import numpy as np
import pytest

import mmzoo
from mmzoo.fusion import (
    ConcatFusion,
    CrossAttentionFusion,
    FiLMFusion,
    FusionLayer,
    LateFusion,
    LowRankFusion,
    TensorFusion,
    WeightedSumFusion,
)
from mmzoo.registry import FUSIONS
from tests.helpers import MmzooTestCase

DIMS = {"image": 6, "text": 4, "audio": 5}
STEPS = {"image": 9, "text": 7, "audio": 3}
OPTIONS = {"late": {"units": 3}, "tensor": {"units": 3}}


def fusion_input_shapes(cls, modalities=("audio", "image", "text"), batch=2):
    kinds = cls.input_kinds(list(modalities))
    shapes = {}
    for m in modalities:
        if kinds[m] == "vector":
            shapes[f"{m}_shape"] = (batch, DIMS[m])
        elif kinds[m] == "sequence":
            shapes[f"{m}_shape"] = (batch, STEPS[m], DIMS[m])
        else:
            shapes[f"{m}_shape"] = (batch, 3, 3, DIMS[m])
    if kinds.get("text") == "sequence":
        shapes["text_mask_shape"] = (batch, STEPS["text"])
    return shapes


@pytest.mark.parametrize("name", mmzoo.list_parts("fusion"))
def test_fusion_passes_the_keras_layer_harness(name):
    cls = FUSIONS.get(name)
    shapes = fusion_input_shapes(cls)
    layer = cls(**OPTIONS.get(name, {}))
    expected = layer.compute_output_shape(**shapes)
    MmzooTestCase().run_layer_test(
        cls, OPTIONS.get(name, {}), input_shape=shapes, expected_output_shape=expected,
    )


@pytest.mark.parametrize("name", mmzoo.list_parts("fusion"))
def test_fusion_in_a_jit_compiled_model(name):
    cls = FUSIONS.get(name)
    shapes = fusion_input_shapes(cls, batch=None)
    inputs = {k[: -len("_shape")]: keras.Input(s[1:], name=k[: -len("_shape")]) for k, s in shapes.items()}
    model = keras.Model(inputs, cls(name="fusion", **OPTIONS.get(name, {}))(inputs))
    data = {k: np.random.default_rng(0).random((2,) + tuple(v.shape[1:])).astype("float32") for k, v in inputs.items()}
    model.compile(jit_compile=True)
    np.testing.assert_allclose(model.predict(data, verbose=0), model(data), atol=1e-5)


def test_every_fusion_is_a_registered_keras_serializable_fusion_layer():
    for name in mmzoo.list_parts("fusion"):
        cls = FUSIONS.get(name)
        assert issubclass(cls, FusionLayer)
        assert keras.saving.get_registered_name(cls) == f"mmzoo>{cls.__name__}"


def _vectors(batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return {m: rng.standard_normal((batch, d)).astype("float32") for m, d in DIMS.items()}


def test_concat_is_sorted_concatenation():
    x = _vectors()
    out = ConcatFusion()(x)
    np.testing.assert_allclose(out, np.concatenate([x["audio"], x["image"], x["text"]], -1))


def test_weighted_sum_weights_are_a_softmax():
    layer = WeightedSumFusion(units=3)
    layer(_vectors())
    np.testing.assert_allclose(np.asarray(layer.modality_weights()), [1 / 3] * 3, atol=1e-6)
    layer.modality_logits.assign([0.0, 50.0, 0.0])  # all weight on "image"
    x = _vectors()
    np.testing.assert_allclose(layer(x), layer.project["image"](x["image"]), atol=1e-5)


def test_late_fusion_averages_per_modality_logits():
    layer = LateFusion(units=3, hidden_units=0)
    x = _vectors()
    out = np.asarray(layer(x))
    per = layer.per_modality_outputs(x)
    np.testing.assert_allclose(out, np.mean([np.asarray(per[m]) for m in sorted(per)], axis=0), atol=1e-6)


def test_tensor_fusion_holds_unimodal_and_cross_terms():
    layer = TensorFusion(units=2)
    x = {"image": np.ones((1, 6), "float32"), "text": np.ones((1, 4), "float32")}
    out = np.asarray(layer(x))
    assert out.shape == (1, 9)
    hi = np.asarray(layer.project["image"](x["image"]))[0]
    ht = np.asarray(layer.project["text"](x["text"]))[0]
    np.testing.assert_allclose(out[0], np.outer(np.append(hi, 1), np.append(ht, 1)).ravel(), atol=1e-5)


def test_low_rank_with_rank_one_is_a_product_of_projections():
    layer = LowRankFusion(units=3, rank=1)
    x = {"image": np.ones((1, 6), "float32"), "text": np.full((1, 4), 0.5, "float32")}
    out = np.asarray(layer(x))
    zi = np.append(x["image"][0], 1) @ layer.factors["image"].numpy()
    zt = np.append(x["text"][0], 1) @ layer.factors["text"].numpy()
    np.testing.assert_allclose(out[0], zi * zt, atol=1e-5)


def test_attention_fusion_ignores_padded_text_tokens():
    layer = CrossAttentionFusion(units=8, num_heads=2, dropout=0.0)
    rng = np.random.default_rng(0)
    x = {"image": rng.standard_normal((1, 9, 6)).astype("float32"),
         "text": rng.standard_normal((1, 7, 4)).astype("float32"),
         "text_mask": np.array([[1, 1, 1, 1, 0, 0, 0]], "float32")}
    changed = dict(x, text=x["text"].copy())
    changed["text"][:, 4:] = 99.0
    np.testing.assert_allclose(layer(x), layer(changed), atol=1e-5)
    changed["text"][:, 0] = 99.0  # a real token does matter
    assert not np.allclose(layer(x), layer(changed), atol=1e-3)


def test_film_modulates_the_image_map_with_the_text():
    layer = FiLMFusion(num_blocks=1)
    rng = np.random.default_rng(0)
    x = {"image": rng.random((1, 3, 3, 6)).astype("float32"), "text": rng.standard_normal((1, 4)).astype("float32")}
    layer(x)
    film = layer.films[0]
    film.kernel.assign(rng.standard_normal(film.kernel.shape).astype("float32"))
    other = dict(x, text=rng.standard_normal((1, 4)).astype("float32"))
    pooled = 2 * 6
    assert not np.allclose(np.asarray(layer(x))[:, :pooled], np.asarray(layer(other))[:, :pooled])
    with pytest.raises(ValueError, match="needs 'image' and 'text' branches"):
        FiLMFusion()({"image": x["image"], "audio": x["text"]})


@pytest.mark.parametrize("coordinates", [False, True])
def test_film_position_maps_tell_left_from_right(coordinates):
    """Mirror-symmetric kernels and a picture mirrored left-right: without the position maps
    the pooled output cannot tell the two apart; with them it can."""
    layer = FiLMFusion(num_blocks=2, coordinates=coordinates)
    image = np.zeros((1, 5, 5, 4), "float32")
    image[0, 2, 0] = 1.0  # one object at the left edge
    x = {"image": image, "text": np.ones((1, 3), "float32")}
    layer(x)
    rng = np.random.default_rng(0)
    for conv in layer.convs:
        kernel = rng.standard_normal(conv.kernel.shape).astype("float32")
        conv.kernel.assign((kernel + kernel[:, ::-1]) / 2)  # symmetric under x -> -x
    assert layer.convs[0].kernel.shape[2] == 4 + (2 if coordinates else 0)
    mirrored = dict(x, image=image[:, :, ::-1].copy())
    same = np.allclose(np.asarray(layer(x)), np.asarray(layer(mirrored)), atol=1e-6)
    assert same != coordinates
    if coordinates:
        maps = np.asarray(layer._with_positions(image))[0, ..., 4:]
        np.testing.assert_allclose(maps[0, :, 0], np.linspace(-1, 1, 5), atol=1e-6)  # x across
        np.testing.assert_allclose(maps[:, 0, 1], np.linspace(-1, 1, 5), atol=1e-6)  # y down
        assert FiLMFusion.from_config(layer.get_config()).coordinates


@pytest.mark.parametrize("positions", [False, True])
def test_attention_positions_tell_patches_apart_by_place(positions):
    """Two image patches swapped: attention without positions pools the same answer."""
    layer = CrossAttentionFusion(units=8, num_heads=2, dropout=0.0, positions=positions)
    rng = np.random.default_rng(0)
    image = rng.standard_normal((1, 4, 6)).astype("float32")
    x = {"image": image, "text": rng.standard_normal((1, 3, 5)).astype("float32")}
    swapped = dict(x, image=image[:, [1, 0, 2, 3]].copy())
    same = np.allclose(np.asarray(layer(x)), np.asarray(layer(swapped)), atol=1e-5)
    assert same != positions
    assert CrossAttentionFusion.from_config(layer.get_config()).positions == positions


def test_fusion_rejects_a_non_dict_and_wrong_ranks():
    with pytest.raises(ValueError, match="takes a dict of modality features"):
        ConcatFusion()(np.zeros((1, 3), "float32"))
    with pytest.raises(ValueError, match="expects 'text' as a sequence of rank 3"):
        CrossAttentionFusion()({"image": np.zeros((1, 2, 8), "float32"), "text": np.zeros((1, 8), "float32")})


def test_every_fusion_carries_its_reference_and_describe_reads_it_without_tensorflow():
    import subprocess
    import sys

    from mmzoo.registry import FUSIONS
    from mmzoo.zoo import fusion_reference

    for name in mmzoo.list_parts("fusion"):
        cls = FUSIONS.get(name)
        assert cls.reference, f"{cls.__name__} has no reference"
    code = ("import json, sys, mmzoo; from mmzoo.zoo import fusion_reference; "
            "print(json.dumps({n: fusion_reference(n) for n in %r})); print('tensorflow' in sys.modules)"
            % mmzoo.list_parts("fusion"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    import json

    assert json.loads(out[0]) == {n: FUSIONS.get(n).reference for n in mmzoo.list_parts("fusion")}
    assert out[1] == "False"
    assert fusion_reference("no_such_fusion") == ""
