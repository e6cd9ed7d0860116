"""Every input kind is a record that implements the whole of `mmzoo.modalities.Modality`."""

import json

import numpy as np
import pytest
import tensorflow as tf

import mmzoo
from mmzoo.data.preprocess import Preprocessor
from mmzoo.modalities import get_modality
from mmzoo.registry import MODALITIES, MODALITY_NAMES
from tests.helpers import TINY

VOCAB = ["<pad>", "<unk>", "red", "circle", "what"]
SPEC = mmzoo.DataSpec(modalities=MODALITY_NAMES, image_shape=(12, 10, 3), seq_len=5, vocab_size=5,
                      vocabulary=VOCAB, sample_rate=8000, audio_samples=800, tabular_dim=3, num_classes=2,
                      user_ids=["<pad>", "<unk>", "ann", "bo"], item_ids=["<pad>", "<unk>", "i1", "i2", "i3"],
                      history_len=4, profile_dim=2)


def test_every_modality_name_has_a_record():
    import mmzoo.modalities  # noqa: F401

    assert sorted(MODALITIES.names()) == sorted(MODALITY_NAMES)
    assert [m.name for m in mmzoo.modalities.records(SPEC)] == list(SPEC.modalities)


@pytest.mark.parametrize("name", MODALITY_NAMES)
def test_a_record_turns_raw_examples_into_model_inputs(name):
    record = get_modality(name)
    rng = np.random.default_rng(0)
    rows = [record.synthetic(SPEC, rng, i) for i in range(3)]
    json.dumps([record.rest_value(r) for r in rows])  # REST bodies are JSON
    loaded = [record.load_example(r, i) for i, r in enumerate(rows)]
    batch = tf.constant(record.raw_batch(loaded, SPEC))
    assert batch.shape[0] == 3 and batch.dtype.name == record.raw_signature(SPEC).dtype.name
    state = Preprocessor(SPEC).states()[name]
    x = record.preprocess(batch, SPEC, state)
    assert tuple(x.shape) == (3, *record.input_shape(SPEC)) and x.dtype.name == record.input_dtype(SPEC)
    np.testing.assert_array_equal(record.serve(batch, SPEC, state), x)  # the checked serving batch
    one = record.from_user(loaded[1], SPEC, state)
    np.testing.assert_allclose(one, x[1], atol=1e-6)
    stored = record.encode_for_record(x[0])
    feature = record.record_value(stored.numpy())
    example = tf.train.Example(features=tf.train.Features(feature={name: feature})).SerializeToString()
    parsed = tf.io.parse_single_example(example, {name: record.record_feature(SPEC)})[name]
    np.testing.assert_allclose(record.from_record(parsed, SPEC), x[0], atol=1e-6)
    random = record.random_input(SPEC, 2, rng)
    assert random.shape == (2, *record.input_shape(SPEC)) and random.dtype == record.input_dtype(SPEC)
    assert not np.any(record.blank(random))


@pytest.mark.parametrize("name, bad, message", [
    ("image", b"not an image", "Invalid input <image>: not a decodable image"),
    ("audio", b"RIFF....", "Invalid input <audio>: not a decodable WAV file"),
    ("text", b"   ", "Invalid input <text>: empty text"),
    ("user", b" ", "Invalid input <user>: empty user id"),
])
def test_a_bad_serving_example_is_named_with_its_position(name, bad, message):
    record = get_modality(name)
    rng = np.random.default_rng(0)
    good = record.load_example(record.synthetic(SPEC, rng, 0), 0)
    batch = tf.constant(record.raw_batch([good, good], SPEC).tolist() + [bad])
    with pytest.raises(tf.errors.InvalidArgumentError, match=message) as info:
        record.serve(batch, SPEC, Preprocessor(SPEC).states()[name])
    assert str(info.value).endswith("Positions in the batch:'\n2")


def test_text_without_a_vocabulary_says_how_to_get_one():
    spec = mmzoo.DataSpec(modalities=("text",), **{k: v for k, v in TINY.items() if k == "seq_len"})
    with pytest.raises(ValueError, match="no vocabulary, so raw text cannot be tokenized"):
        Preprocessor(spec)({"text": tf.constant(["hello"])})


def test_ids_look_up_their_vocabularies_and_keep_the_most_recent_history():
    pre = Preprocessor(SPEC)
    x = pre({"user": tf.constant(["bo", "ann", "newcomer"]), "item": tf.constant(["i3", "i9", "i1"]),
             "history": tf.constant(["i1 i2 i3 i1 i2", "", "i9 i3"])})
    assert x["user"].numpy().tolist() == [[3], [2], [1]]  # unknown -> 1
    assert x["item"].numpy().tolist() == [[4], [1], [2]]
    assert x["history"].numpy().tolist() == [[3, 4, 2, 3], [0, 0, 0, 0], [1, 4, 0, 0]]  # last 4, padded with 0
    spec = mmzoo.DataSpec(modalities=("user",))
    with pytest.raises(ValueError, match="no user_ids, so raw user ids cannot be looked up"):
        Preprocessor(spec)({"user": tf.constant(["ann"])})
