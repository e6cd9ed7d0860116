"""Reference tokenizer for mmzoo's TFLite models: pure Python 3, no dependencies.

Copied as ``tokenizer.py`` beside the flatbuffers, with ``tokenizer.json`` and ``vocab.txt``;
it gives the same ids as the SavedModel's in-graph tokenizer. Port it to Kotlin / Swift / C++
by following ``tokenizer.json`` (its ``rules`` and character ranges).

Usage::

    python tokenizer.py "A red circle on a dark background."
    from tokenizer import Tokenizer
    ids = Tokenizer.load(".")("A red circle.")   # [seq_len] ints, 0 = padding
"""

import json
import os
import re
import sys


def _char_class(ranges):
    parts = []
    for lo, hi in ranges:
        parts.append(re.escape(chr(lo)) if lo == hi else re.escape(chr(lo)) + "-" + re.escape(chr(hi)))
    return "[" + "".join(parts) + "]"


class Tokenizer:
    """Text -> ``seq_len`` token ids, as described by ``tokenizer.json``."""

    def __init__(self, description, vocabulary):
        self.seq_len = int(description["seq_len"])
        self.mode = description["mode"]
        self.lowercase = bool(description["lowercase"])
        self.padding_id = int(description.get("padding_id", 0))
        self.oov_id = int(description.get("oov_id", 1))
        self._ws = re.compile(_char_class(description["whitespace"]))
        split = description["punctuation"] + (description["cjk"] if self.mode == "auto" else [])
        self._split = re.compile(_char_class(split))
        exceptions = description.get("lower_exceptions") or []
        self._keep = re.compile(_char_class([(c, c) for c in exceptions])) if exceptions else None
        self._ids = {tok: i for i, tok in enumerate(vocabulary) if i > self.oov_id}

    @classmethod
    def load(cls, folder="."):
        with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
            description = json.load(f)
        with open(os.path.join(folder, description.get("vocabulary", "vocab.txt")), encoding="utf-8") as f:
            vocabulary = f.read().split("\n")
        if vocabulary and vocabulary[-1] == "":
            vocabulary.pop()
        return cls(description, vocabulary)

    def _lower(self, text):
        if self._keep is None or not self._keep.search(text):
            return text.lower()
        pieces, keeps = self._keep.split(text), self._keep.findall(text)
        out = [pieces[0].lower()]
        for keep, piece in zip(keeps, pieces[1:]):
            out += [keep, piece.lower()]
        return "".join(out)

    def tokens(self, text):
        if self.lowercase:
            text = self._lower(text)
        text = self._ws.sub(" ", text)
        if self.mode == "char":
            return [c for c in text if c != " "]
        text = self._split.sub(lambda m: " " + m.group(0) + " ", text)
        return [t for t in text.split(" ") if t]

    def __call__(self, text):
        ids = [self._ids.get(t, self.oov_id) for t in self.tokens(text)][: self.seq_len]
        return ids + [self.padding_id] * (self.seq_len - len(ids))


if __name__ == "__main__":
    tok = Tokenizer.load(os.path.dirname(os.path.abspath(__file__)))
    for line in sys.argv[1:] or sys.stdin.read().splitlines():
        print(json.dumps(tok(line)))
