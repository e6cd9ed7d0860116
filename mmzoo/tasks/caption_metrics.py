"""Caption metrics on mmzoo's own tokens (the CJK-aware tokenisation of `mmzoo.data.text`):
BLEU-4 with sacrebleu (``tokenize="none"``: the tokens are already split), CIDEr-D with
pycocoevalcap's pure-Python scorer (its Java tokenizer, METEOR and SPICE are not used), and exact
match. Each input may have several references.

Example:
>>> caption_scores([["a", "red", "circle"]], [[["a", "red", "circle"], ["one", "red", "circle"]]])["exact_match"]
1.0
"""

from __future__ import annotations

from typing import List, Sequence

Tokens = Sequence[str]
INSTALL_HINT = "pip install 'mmzoo[captioning]' (sacrebleu, pycocoevalcap)"


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"Caption metrics need {module.split('.')[0]}: {INSTALL_HINT}.") from e


def check_installed() -> None:
    """Raise ImportError naming the install command when the metric packages are missing."""
    _require("sacrebleu")
    _require("pycocoevalcap.cider.cider")


def bleu4(hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]]) -> float:
    """Corpus BLEU-4 (0-100) of token lists against one or more references each."""
    sacrebleu = _require("sacrebleu")
    width = max(len(r) for r in references)
    # sacrebleu wants as many reference streams as the most referenced input: repeat the last
    # reference (a repeated reference changes neither clipped counts nor the closest length)
    streams = [[" ".join(refs[min(j, len(refs) - 1)]) for refs in references] for j in range(width)]
    return float(sacrebleu.corpus_bleu([" ".join(h) for h in hypotheses], streams, tokenize="none", force=True).score)


def cider_d(hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]]) -> float:
    """CIDEr-D (pycocoevalcap's ``Cider``: tf-idf n-grams 1-4, Gaussian length penalty, clipped
    counts, x10) over the corpus; document frequencies come from these references."""
    Cider = _require("pycocoevalcap.cider.cider").Cider
    if len(hypotheses) < 2:
        return 0.0  # (idf needs more than one document)
    gts = {i: [" ".join(r) for r in refs] for i, refs in enumerate(references)}
    res = {i: [" ".join(h)] for i, h in enumerate(hypotheses)}
    score, _ = Cider().compute_score(gts, res)
    return float(score)


def exact_match(hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]]) -> float:
    """Share of hypotheses equal to one of their references, token for token."""
    if not hypotheses:
        return 0.0
    return sum(any(list(h) == list(r) for r in refs) for h, refs in zip(hypotheses, references)) / len(hypotheses)


def caption_scores(hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]]) -> dict:
    """``{"bleu4", "cider_d", "exact_match", "mean_length"}`` of generated token lists."""
    hypotheses = [list(h) for h in hypotheses]
    references = [[list(r) for r in refs] for refs in references]
    lengths: List[int] = [len(h) for h in hypotheses]
    return {
        "bleu4": bleu4(hypotheses, references),
        "cider_d": cider_d(hypotheses, references),
        "exact_match": exact_match(hypotheses, references),
        "mean_length": sum(lengths) / max(len(lengths), 1),
    }
