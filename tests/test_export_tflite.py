"""TFLite / LiteRT export: every preset converts with builtin ops only and matches Keras."""

import numpy as np
import pytest
from helpers import fake_inputs, tiny_overrides

import mmzoo
from mmzoo.export.outputs import keras_reference, output_plan, primary_name
from mmzoo.export.source import serving_model
from mmzoo.export.tflite import ConversionError, LiteSource, TFLiteModel, convert_tflite, write_lite_bundle


def tiny(name, **extra):
    return mmzoo.build(name, compile=False, seed=0, **{**tiny_overrides(name), **extra})


@pytest.mark.parametrize("name", mmzoo.list_models(task="classifier"))  # (retrievers: per tower, test_contract)
def test_every_preset_converts_and_matches_keras(name):
    model = tiny(name)
    spec = model.spec
    x = fake_inputs(spec, batch=5, seed=3)
    if "text" in x:
        x["text"][1, 3:] = 0  # a short text: padding must be masked as in Keras
    converted = convert_tflite(model, spec, "float32")
    assert not [op for op in converted["ops"] if op.startswith("Flex") or op == "CUSTOM"]
    lite = TFLiteModel(converted["content"])
    signature = lite.signature()
    assert sorted(signature["inputs"]) == sorted(spec.modalities)
    for m, dtype in spec.input_dtypes().items():
        assert signature["inputs"][m]["dtype"] == dtype
        assert signature["inputs"][m]["shape"][0] == -1  # dynamic batch
    plan = output_plan(spec)
    out = lite(x)
    reference = keras_reference(model, x, plan)
    for e in plan:
        key = primary_name(e)
        np.testing.assert_allclose(out[key], reference[key], atol=1e-4, rtol=0, err_msg=f"{name}: {key}")
        if e["task"] == "classification":
            np.testing.assert_array_equal(out[e["prefix"] + "class_id"], reference[key].argmax(-1))
    # Batch 1 (the edge case) after batch 5: the signature runner resizes.
    one = lite({k: v[:1] for k, v in x.items()})
    np.testing.assert_allclose(one[primary_name(plan[0])], reference[primary_name(plan[0])][:1], atol=1e-4, rtol=0)


def test_unrolled_bidirectional_copy_keeps_padding_semantics():
    # Keras 3.15 zeroes the valid steps of an unrolled, masked backward RNN that returns
    # sequences; serving_model works around it. Attention fusion reads those sequences.
    model = tiny("cnn_gru_attention")
    x = fake_inputs(model.spec, batch=3, seed=1)
    x["text"][0, 2:] = 0
    reference = model(x, training=False).numpy()
    copy = serving_model(model, unroll=True)
    assert copy.backbone.get_layer("text_encoder").get_layer("bigru").forward_layer.unroll
    np.testing.assert_allclose(copy(x, training=False).numpy(), reference, atol=1e-6, rtol=0)


def test_quantized_variants_shrink_and_int8_is_integer():
    model = tiny("mobilenet_textcnn_melcnn_weighted")
    spec = model.spec
    x = fake_inputs(spec, batch=32, seed=5)
    sizes, ops = {}, {}
    with LiteSource(model, spec) as source:
        for q in ("float32", "float16", "dynamic", "int8"):
            converted = convert_tflite(model, spec, q, representative=x, source=source)
            sizes[q] = len(converted["content"])
            ops[q] = converted
    assert sizes["float16"] < 0.6 * sizes["float32"]
    assert sizes["dynamic"] < 0.4 * sizes["float32"]
    assert sizes["int8"] < 0.4 * sizes["float32"]
    # The log-mel front end and MobileNet's average pooling stay in float (docs/export.md),
    # the convolutions and the rest are int8.
    assert ops["int8"]["int8_mode"] == "selective"
    why = {f["layer"]: f["why"] for f in ops["int8"]["float_layers"]}
    assert set(why) >= {"backbone/audio_encoder/log_mel", "backbone/image_encoder/pool"}
    assert "log-mel front end" in why["backbone/audio_encoder/log_mel"]
    assert "RFFT2D" in ops["int8"]["ops"] and "CONV_2D" in ops["int8"]["ops"]
    lite = TFLiteModel(ops["int8"]["content"])
    kinds = {d["dtype"].__name__ for d in lite.interpreter.get_tensor_details()}
    assert {"int8", "float32"} <= kinds
    for q in ("dynamic", "int8"):  # each quantized variant says how far it is from float32
        assert 0 <= ops[q]["calibration_check"]["agreement"] <= 1 and ops[q]["worst_layers"]
    out = lite(x)["probabilities"]
    assert out.shape == (32, spec.num_classes) and np.all(np.isfinite(out))
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=0.02)


def test_stripped_names_keep_signature_and_results():
    from mmzoo.export.tflite import strip_tensor_names

    model = tiny("cnn_gru_concat")
    spec = model.spec
    x = fake_inputs(spec, batch=4, seed=2)
    with LiteSource(model, spec) as source:
        full = convert_tflite(model, spec, "int8", representative=x, source=source, strip_names=False)
        stripped = convert_tflite(model, spec, "int8", representative=x, source=source)
    assert len(stripped["content"]) < 0.9 * len(full["content"])
    assert stripped["content"] == strip_tensor_names(full["content"])
    a, b = TFLiteModel(full["content"]), TFLiteModel(stripped["content"])
    assert b.signature() == a.signature()
    names = [d["name"] for d in b.interpreter.get_tensor_details()]
    assert sum(bool(n) for n in names) == len(spec.modalities) + len(a.output_details())
    ra, rb = a(x), b(x)
    for key in ra:
        np.testing.assert_array_equal(ra[key], rb[key])


def test_int8_needs_calibration_and_quantization_is_checked():
    model = tiny("cnn_gru_concat")
    with pytest.raises(ValueError, match="needs representative inputs"):
        convert_tflite(model, model.spec, "int8")
    with pytest.raises(ValueError, match=r"quantization must be one of .*Received: 'int4'"):
        convert_tflite(model, model.spec, "int4")
    assert issubclass(ConversionError, RuntimeError)


def test_lite_bundle_tokenizer_matches_reference(tmp_path):
    import importlib.util

    from mmzoo.data import ReferenceTokenizer

    vocab = ["<pad>", "<unk>", "red", "circle", ",", "!", "红", "色", "the", "ǅ"]
    spec = mmzoo.DataSpec(modalities=("text",), seq_len=12, vocab_size=20, vocabulary=vocab,
                          class_names=["a", "b"], num_classes=2)
    files = write_lite_bundle(str(tmp_path), spec)
    assert set(files) == {"labels.txt", "vocab.txt", "tokenizer.json", "tokenizer.py"}
    assert (tmp_path / "labels.txt").read_text().split() == ["a", "b"]
    module_spec = importlib.util.spec_from_file_location("lite_tok", tmp_path / "tokenizer.py")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    standalone = module.Tokenizer.load(str(tmp_path))
    reference = ReferenceTokenizer.from_spec(spec)
    texts = ["The RED circle, the red CIRCLE!", "红色的圆形", "  tabs\tand\u3000ideographic space ",
             "ǅemal red", "unknown words only", "!!!,,,", "a" * 40, ""]
    for text in texts:
        assert standalone(text) == reference(text), text
    assert standalone("The red circle!")[:5] == [8, 2, 3, 5, 0]
