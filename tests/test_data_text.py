"""The TF tokenizer and the pure-Python reference give identical ids."""

import numpy as np
import pytest
import tensorflow as tf

from mmzoo.data import text as T
from mmzoo.spec import DataSpec

SAMPLES = [
    "Hello, world! This is a TEST.",
    "我爱自然语言处理。今天天气很好！",
    "日本語のテキストです。カタカナとひらがな、漢字。",
    "Mixed 中文 and English, with ＦＵＬＬＷＩＤＴＨ！ and 123.45 numbers",
    "Punctuation!!! ... ?!? (brackets) [x] {y} \"quotes\" 'single' — dash… «guillemets»",
    "",
    "   ",
    "\t tabs\nnew\r\nlines\u3000ideographic\u00a0nbsp\u2003em\x0bvt\x85nel",
    "ÉCOLE Straße ΟΔΟΣ İstanbul ǅ Ⱟ",
    "emoji 😀👍🏽 and ZWJ 👩‍💻 done",
    "한국어 문장도 됩니다",
    "x" * 300,
    "don't stop-me now: e-mail@example.com #tag $5 50%",
]
MODES = [{"mode": "auto"}, {"mode": "word"}, {"mode": "char"}, {"mode": "auto", "lowercase": False}]


@pytest.mark.parametrize("config", MODES, ids=lambda c: f"{c['mode']}-{c.get('lowercase', True)}")
def test_tf_and_python_split_agree(config):
    tf_tokens = T.tf_split_tokens(tf.constant(SAMPLES), config).to_list()
    for text, got in zip(SAMPLES, tf_tokens):
        assert [t.decode("utf-8") for t in got] == T.split_tokens(text, config), text


def test_lowercase_agrees_on_every_code_point():
    cps = [c for c in range(0x20, 0x30000) if not 0xD800 <= c <= 0xDFFF]
    chars = [chr(c) for c in cps]
    low = tf.strings.lower(tf.constant([c.encode("utf-8") for c in chars]), encoding="utf-8")
    diff = [hex(ord(c)) for c, lo in zip(chars, low.numpy()) if lo.decode() != T._py_lower(c)]
    assert diff == []


def test_default_tokenisation_rules():
    assert T.split_tokens("Hello, World!") == ["hello", ",", "world", "!"]
    assert T.split_tokens("我爱你。") == ["我", "爱", "你", "。"]
    assert T.split_tokens("日本語テキスト") == ["日", "本", "語", "テ", "キ", "ス", "ト"]
    assert T.split_tokens("我爱你", {"mode": "word"}) == ["我爱你"]
    assert T.split_tokens("ab c", {"mode": "char"}) == ["a", "b", "c"]
    assert T.split_tokens("") == []
    assert T.split_tokens("Hi", {"lowercase": False}) == ["Hi"]


def test_vocabulary_min_count_max_size_and_order():
    texts = ["b b a c", "b a d", "z"]
    assert T.build_vocabulary(texts) == ["<pad>", "<unk>", "b", "a", "c", "d", "z"]
    assert T.build_vocabulary(texts, min_count=2) == ["<pad>", "<unk>", "b", "a"]
    assert T.build_vocabulary(texts, max_size=3) == ["<pad>", "<unk>", "b"]
    assert T.build_vocabulary(reversed(texts)) == T.build_vocabulary(texts)
    with pytest.raises(ValueError, match="min_count"):
        T.build_vocabulary(texts, min_count=0)


def _spec(seq_len=6, mode="auto"):
    vocab = T.build_vocabulary(SAMPLES[:5], {"mode": mode})
    return DataSpec(
        modalities=("text",),
        seq_len=seq_len,
        vocab_size=len(vocab),
        vocabulary=vocab,
        tokenizer={"mode": mode, "lowercase": True},
    )


@pytest.mark.parametrize("mode", ["auto", "char"])
def test_ids_agree_pad_truncate_oov(mode):
    spec = _spec(mode=mode)
    tok = T.TextTokenizer.from_spec(spec)
    ref = T.ReferenceTokenizer.from_spec(spec)
    texts = SAMPLES + ["unseen words zzz qqq", "hello"]
    got = tok(tf.constant(texts)).numpy()
    assert got.shape == (len(texts), 6) and got.dtype == np.int32
    for text, row in zip(texts, got):
        assert row.tolist() == ref(text), text
    assert ref("") == [0] * 6
    if mode == "auto":
        assert ref("zzzz qqqq") == [1, 1, 0, 0, 0, 0]
    else:
        assert ref("ж ж") == [1, 1, 0, 0, 0, 0]
    assert tok(tf.constant("hello")).numpy().tolist() == ref("hello")  # scalar in, [seq_len] out


def test_tokenize_inside_tf_function_and_dataset():
    spec = _spec(seq_len=4)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve(texts):
        return T.tokenize(texts, spec)

    out = serve(tf.constant(["Hello, world!", "我爱"])).numpy()
    assert out.tolist() == [
        T.tokenize_reference("Hello, world!", spec),
        T.tokenize_reference("我爱", spec),
    ]
    ds = tf.data.Dataset.from_tensor_slices(["Hello"]).map(lambda s: T.tokenize(s, spec))
    assert next(iter(ds)).numpy().tolist() == T.tokenize_reference("Hello", spec)


def test_missing_vocabulary_is_a_clear_error():
    with pytest.raises(ValueError, match="no vocabulary"):
        T.tokenize_reference("x", DataSpec(modalities=("text",)))
    with pytest.raises(ValueError, match="mode must be one of"):
        T.split_tokens("x", {"mode": "bpe"})
