"""Text tokenisation: a TF-graph tokenizer and a pure-Python reference that give identical ids.

Rules (both implementations):

1. lowercase (``tokenizer["lowercase"]``, default True; Unicode lowercasing as ICU does it);
2. every whitespace character (``WHITESPACE_RANGES``) becomes a space;
3. punctuation and symbols (``PUNCTUATION_RANGES``) are split off as tokens of their own, and in
   ``mode="auto"`` so is every CJK character (Han, Hiragana, Katakana, Bopomofo:
   ``CJK_RANGES``), because Chinese and Japanese are written without spaces;
4. split on spaces.  ``mode="word"`` skips the CJK rule; ``mode="char"`` makes every
   non-space character a token.

Ids: 0 = padding, 1 = out of vocabulary, then the vocabulary (most frequent first).
Sequences are truncated to ``seq_len`` and padded with 0.
"""

from __future__ import annotations

import collections
import re
from typing import Iterable, List, Optional, Sequence

PAD_TOKEN = "<pad>"
OOV_TOKEN = "<unk>"
RESERVED = (PAD_TOKEN, OOV_TOKEN)
TOKENIZER_MODES = ("auto", "word", "char")

# Inclusive code point ranges. Kept as data so the Python (re) and TF (RE2) patterns are
# generated from one source and match the same characters.
WHITESPACE_RANGES = (
    (0x09, 0x0D),
    (0x20, 0x20),
    (0x85, 0x85),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
)
PUNCTUATION_RANGES = (
    (0x21, 0x2F),
    (0x3A, 0x40),
    (0x5B, 0x60),
    (0x7B, 0x7E),  # ASCII punctuation / symbols
    (0xA1, 0xA9),
    (0xAB, 0xB1),
    (0xB4, 0xB4),
    (0xB6, 0xB8),
    (0xBB, 0xBB),
    (0xBF, 0xBF),
    (0xD7, 0xD7),
    (0xF7, 0xF7),  # Latin-1 punctuation, x and division signs
    (0x0964, 0x0965),  # Devanagari danda
    (0x2010, 0x2027),
    (0x2030, 0x205E),  # general punctuation
    (0x20A0, 0x20CF),  # currency
    (0x2190, 0x23FF),
    (0x2500, 0x27BF),
    (0x2900, 0x2BFF),  # arrows, maths, shapes, dingbats
    (0x3001, 0x303F),  # CJK symbols and punctuation
    (0xFE30, 0xFE4F),
    (0xFE50, 0xFE6F),  # CJK compatibility / small forms
    (0xFF01, 0xFF0F),
    (0xFF1A, 0xFF20),
    (0xFF3B, 0xFF40),
    (0xFF5B, 0xFF64),  # fullwidth
    (0x1F000, 0x1FAFF),  # emoji and pictographs
)
CJK_RANGES = (
    (0x2E80, 0x2FDF),  # CJK radicals, Kangxi radicals
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3100, 0x312F),
    (0x31A0, 0x31BF),  # Bopomofo
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),  # Han
    (0xFF65, 0xFF9F),  # halfwidth Katakana
    (0x20000, 0x2FA1F),
    (0x30000, 0x323AF),  # Han extensions B..H
)
# Characters that Python's str.lower() lowercases but TensorFlow's ICU tables (Unicode 13)
# leave alone (letters added in Unicode 14+). The reference tokenizer leaves them alone too;
# tests/test_data_text.py checks every code point agrees.
LOWER_EXCEPTIONS = frozenset(
    c
    for lo, hi in (
        (0x2C2F, 0x2C2F),
        (0xA7C0, 0xA7C0),
        (0xA7D0, 0xA7D0),
        (0xA7D6, 0xA7D6),
        (0xA7D8, 0xA7D8),
        (0x10570, 0x1057A),
        (0x1057C, 0x1058A),
        (0x1058C, 0x10592),
        (0x10594, 0x10595),
    )
    for c in range(lo, hi + 1)
)


def _py_class(ranges) -> str:
    parts = []
    for lo, hi in ranges:
        parts.append(
            re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}"
        )
    return "[" + "".join(parts) + "]"


def _re2_class(ranges) -> str:
    parts = []
    for lo, hi in ranges:
        parts.append(f"\\x{{{lo:x}}}" if lo == hi else f"\\x{{{lo:x}}}-\\x{{{hi:x}}}")
    return "[" + "".join(parts) + "]"


_PY_WS = re.compile(_py_class(WHITESPACE_RANGES))
_PY_SPLIT = {
    "auto": re.compile(_py_class(PUNCTUATION_RANGES + CJK_RANGES)),
    "word": re.compile(_py_class(PUNCTUATION_RANGES)),
}
_PY_LOWER_EXC = re.compile(_py_class([(c, c) for c in sorted(LOWER_EXCEPTIONS)]))
RE2_WHITESPACE = _re2_class(WHITESPACE_RANGES)
RE2_SPLIT = {
    "auto": _re2_class(PUNCTUATION_RANGES + CJK_RANGES),
    "word": _re2_class(PUNCTUATION_RANGES),
}


def tokenizer_config(tokenizer: Optional[dict]) -> dict:
    """Fill defaults and check a tokenizer dict (``{"mode": "auto", "lowercase": True}``)."""
    config = {"mode": "auto", "lowercase": True}
    config.update(tokenizer or {})
    unknown = sorted(set(config) - {"mode", "lowercase"})
    if unknown:
        raise ValueError(
            f"Unknown tokenizer options {unknown}. Accepted: ['lowercase', 'mode']. "
            f"Received: tokenizer={tokenizer!r}"
        )
    if config["mode"] not in TOKENIZER_MODES:
        raise ValueError(
            f"tokenizer mode must be one of {list(TOKENIZER_MODES)}. "
            f"Received: mode={config['mode']!r}"
        )
    config["lowercase"] = bool(config["lowercase"])
    return config


# ------------------------------------------------------------------ pure Python reference
def _py_lower(text: str) -> str:
    if not _PY_LOWER_EXC.search(text):
        return text.lower()
    pieces = _PY_LOWER_EXC.split(text)
    keeps = _PY_LOWER_EXC.findall(text)
    out = [pieces[0].lower()]
    for keep, piece in zip(keeps, pieces[1:]):
        out.append(keep)
        out.append(piece.lower())
    return "".join(out)


def split_tokens(text: str, tokenizer: Optional[dict] = None) -> List[str]:
    """Split one string into token strings (pure Python, no TensorFlow).

    Example:
    >>> split_tokens("Hello, world! 你好")
    ['hello', ',', 'world', '!', '你', '好']
    """
    config = tokenizer_config(tokenizer)
    if config["lowercase"]:
        text = _py_lower(text)
    text = _PY_WS.sub(" ", text)
    if config["mode"] == "char":
        return [c for c in text if c != " "]
    text = _PY_SPLIT[config["mode"]].sub(lambda m: f" {m.group(0)} ", text)
    return [t for t in text.split(" ") if t]


def build_vocabulary(
    texts: Iterable[str],
    tokenizer: Optional[dict] = None,
    min_count: int = 1,
    max_size: Optional[int] = None,
) -> List[str]:
    """Learn a vocabulary: ``["<pad>", "<unk>", most frequent token, ...]``.

    Tokens seen fewer than ``min_count`` times are dropped; ``max_size`` caps the total
    length (the two reserved entries included). Ties are broken alphabetically, so the
    result does not depend on row order.

    Example:
    >>> build_vocabulary(["a b b", "c"], min_count=1)
    ['<pad>', '<unk>', 'b', 'a', 'c']
    """
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1. Received: min_count={min_count}")
    if max_size is not None and max_size < 3:
        raise ValueError(f"max_size must be >= 3 (pad, OOV, one token). Received: {max_size}")
    counts: collections.Counter = collections.Counter()
    for text in texts:
        counts.update(split_tokens(text, tokenizer))
    items = sorted(
        ((tok, n) for tok, n in counts.items() if n >= min_count and tok not in RESERVED),
        key=lambda kv: (-kv[1], kv[0]),
    )
    vocab = list(RESERVED) + [tok for tok, _ in items]
    if max_size is not None:
        vocab = vocab[:max_size]
    return vocab


# ------------------------------------------------------------------ captions (a decoder's tokens)
START_TOKEN = "<start>"
END_TOKEN = "<end>"
#: a caption vocabulary begins with these: padding 0, unknown 1, start 2, end 3
CAPTION_RESERVED = (PAD_TOKEN, OOV_TOKEN, START_TOKEN, END_TOKEN)
START_ID, END_ID = 2, 3
_NO_SPACE_BEFORE = re.compile(r" ([.,;:!?)\]}%])")
_CJK_GAP = None  # compiled on first use (from CJK_RANGES and the CJK punctuation)


def build_caption_vocabulary(captions: Iterable[str], tokenizer: Optional[dict] = None, min_count: int = 1,
                             max_size: Optional[int] = None) -> List[str]:
    """A decoder's vocabulary: ``["<pad>", "<unk>", "<start>", "<end>", most frequent token, ...]``.

    Example:
    >>> build_caption_vocabulary(["a red circle.", "a circle."])
    ['<pad>', '<unk>', '<start>', '<end>', '.', 'a', 'circle', 'red']
    """
    words = build_vocabulary(captions, tokenizer, min_count, None)[len(RESERVED):]
    vocab = list(CAPTION_RESERVED) + [w for w in words if w not in CAPTION_RESERVED]
    return vocab[:max_size] if max_size is not None else vocab


def caption_ids(caption: str, vocabulary: Sequence[str], caption_len: int,
                tokenizer: Optional[dict] = None) -> List[int]:
    """``[start, token ids (at most caption_len), end, 0 ...]``: ``caption_len + 2`` ids.

    Example:
    >>> caption_ids("a red circle.", ["<pad>", "<unk>", "<start>", "<end>", "a", "circle"], 4)
    [2, 4, 1, 5, 1, 3]
    """
    index = {t: i for i, t in enumerate(vocabulary) if i >= len(CAPTION_RESERVED)}
    ids = [index.get(t, 1) for t in split_tokens(caption, tokenizer)][:caption_len]
    return [START_ID] + ids + [END_ID] + [0] * (caption_len - len(ids))


def caption_tokens(ids: Sequence[int], vocabulary: Sequence[str]) -> List[str]:
    """Token strings of decoded ids, up to the first end (start and padding dropped).

    Example:
    >>> caption_tokens([4, 5, 3, 0], ["<pad>", "<unk>", "<start>", "<end>", "a", "circle"])
    ['a', 'circle']
    """
    out = []
    for i in ids:
        i = int(i)
        if i == END_ID:
            break
        if i not in (0, START_ID):
            out.append(vocabulary[i] if 0 <= i < len(vocabulary) else OOV_TOKEN)
    return out


def join_tokens(tokens: Sequence[str]) -> str:
    """Tokens -> readable text: spaces between words, none before closing punctuation or
    between CJK characters (the inverse of `split_tokens` up to case and spacing).

    Example:
    >>> join_tokens(["a", "red", "circle", "."]), join_tokens(["左", "上", "是", "红", "色", "。"])
    ('a red circle.', '左上是红色。')
    """
    global _CJK_GAP
    if _CJK_GAP is None:
        cjk = _py_class(CJK_RANGES + ((0x3000, 0x303F), (0xFF01, 0xFF64)))
        _CJK_GAP = re.compile(f"(?<={cjk}) | (?={cjk})")
    text = _NO_SPACE_BEFORE.sub(r"\1", " ".join(tokens))
    return _CJK_GAP.sub("", text)


class ReferenceTokenizer:
    """Pure-Python tokenizer giving the same ids as `TextTokenizer` (for TFLite serving).

    Example:
    >>> tok = ReferenceTokenizer(["<pad>", "<unk>", "hello"], seq_len=4)
    >>> tok("Hello there")
    [2, 1, 0, 0]
    """

    def __init__(self, vocabulary: Sequence[str], seq_len: int, tokenizer: Optional[dict] = None):
        self.vocabulary = list(vocabulary)
        self.seq_len = int(seq_len)
        self.config = tokenizer_config(tokenizer)
        self._ids = {tok: i for i, tok in enumerate(self.vocabulary) if i >= len(RESERVED)}

    @classmethod
    def from_spec(cls, spec) -> "ReferenceTokenizer":
        _check_spec_vocab(spec)
        return cls(spec.vocabulary, spec.seq_len, spec.tokenizer)

    def __call__(self, text: str) -> List[int]:
        ids = [self._ids.get(t, 1) for t in split_tokens(text, self.config)][: self.seq_len]
        return ids + [0] * (self.seq_len - len(ids))


def tokenize_reference(text: str, spec) -> List[int]:
    """Token ids of one string for ``spec`` (pure Python; same ids as `tokenize`).

    Example:
    >>> tokenize_reference("A cat.", data.spec)   # doctest: +SKIP
    [5, 9, 3, 0, 0, ...]
    """
    return ReferenceTokenizer.from_spec(spec)(text)


def _check_spec_vocab(spec) -> None:
    if not spec.vocabulary:
        raise ValueError(
            "This DataSpec has no vocabulary, so text cannot be tokenized. Build the data with "
            "`mmzoo.data.from_manifest(...)` (it learns one) or set `spec.vocabulary`."
        )


# ------------------------------------------------------------------ TensorFlow graph version
def _tf():
    import tensorflow as tf  # lazy: the pure-Python tokenizer above runs without TensorFlow

    return tf


def tf_split_tokens(texts, tokenizer: Optional[dict] = None):
    """TF-graph twin of `split_tokens`: string tensor [...] -> RaggedTensor of tokens."""
    tf = _tf()
    config = tokenizer_config(tokenizer)
    texts = tf.convert_to_tensor(texts, dtype=tf.string)
    if config["lowercase"]:
        texts = tf.strings.lower(texts, encoding="utf-8")
    texts = tf.strings.regex_replace(texts, RE2_WHITESPACE, " ")
    if config["mode"] == "char":
        chars = tf.strings.unicode_split(texts, "UTF-8")
        return tf.ragged.boolean_mask(chars, tf.not_equal(chars, " "))
    texts = tf.strings.regex_replace(texts, RE2_SPLIT[config["mode"]], r" \0 ")
    return tf.strings.split(texts)  # only ' ' is left as whitespace


class TextTokenizer:
    """TF tokenizer (usable inside ``tf.function`` and tf.data): strings -> int32 ids.

    Holds a ``tf.lookup.StaticHashTable``; wrap it in a ``tf.Module`` attribute to export it.

    Args:
        vocabulary: token strings, index = id (``vocabulary[0:2]`` are ``<pad>``, ``<unk>``).
        seq_len: output length (truncate / pad with 0).
        tokenizer: ``{"mode": "auto"|"word"|"char", "lowercase": bool}``.

    Example:
    >>> tok = TextTokenizer.from_spec(data.spec)       # doctest: +SKIP
    >>> tok(tf.constant(["a red circle", "红色"]))       # int32 [2, seq_len]
    """

    def __init__(self, vocabulary: Sequence[str], seq_len: int, tokenizer: Optional[dict] = None):
        tf = _tf()
        self.vocabulary = list(vocabulary)
        self.seq_len = int(seq_len)
        self.config = tokenizer_config(tokenizer)
        keys = self.vocabulary[len(RESERVED) :]
        if not keys:  # StaticHashTable needs one key; use one that no tokenizer emits
            keys = [" "]
            values = [1]
        else:
            values = list(range(len(RESERVED), len(RESERVED) + len(keys)))
        with tf.init_scope():  # build the table eagerly even when first used in a graph
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(keys, tf.string), tf.constant(values, tf.int32)
                ),
                default_value=1,
            )

    @classmethod
    def from_spec(cls, spec) -> "TextTokenizer":
        _check_spec_vocab(spec)
        return cls(spec.vocabulary, spec.seq_len, spec.tokenizer)

    def __call__(self, texts):
        """Scalar string -> int32 [seq_len]; string [N] -> int32 [N, seq_len]."""
        tf = _tf()
        texts = tf.convert_to_tensor(texts, dtype=tf.string)
        scalar = texts.shape.rank == 0
        batch = tf.reshape(texts, [-1])
        tokens = tf_split_tokens(batch, self.config)
        ids = tf.ragged.map_flat_values(self.table.lookup, tokens)
        dense = ids.to_tensor(default_value=0, shape=[None, self.seq_len])
        return dense[0] if scalar else dense


_TOKENIZER_CACHE: dict = {}


def tokenize(texts, spec):
    """Token ids of a string tensor for ``spec`` with TF ops (graph-safe; cached table).

    Example:
    >>> tokenize(tf.constant("a red circle"), data.spec)   # doctest: +SKIP
    <tf.Tensor: shape=(32,), dtype=int32, ...>
    """
    _check_spec_vocab(spec)
    key = (
        tuple(spec.vocabulary),
        spec.seq_len,
        tuple(sorted(tokenizer_config(spec.tokenizer).items())),
    )
    tok = _TOKENIZER_CACHE.get(key)
    if tok is None:
        tok = _TOKENIZER_CACHE[key] = TextTokenizer.from_spec(spec)
    return tok(texts)
