"""An approximate index for catalogues past what one graph should hold (about a million
candidates): FAISS (``pip install "mmzoo[ann]"``, the optional ``faiss-cpu``) outside the
served graph, tuned until it finds what brute force finds.

The in-graph ``search`` signature (`mmzoo.export.retrieval`) ranks every candidate: exact,
and in stock TF Serving. Past a million candidates, export the embeddings
(``litert/candidates.npy``) and serve an inverted-file index next to it: `build_approximate_index`
clusters the candidates (``nlist`` k-means cells), then raises ``nprobe`` (cells searched per
query) until recall@k against exact search on sample queries reaches ``target_recall``.

Example:
>>> ann = build_approximate_index(embeddings, sample_queries, k=10)        # doctest: +SKIP
>>> ann.recall, ann.nprobe
(0.96, 16)
>>> ids, scores = ann.search(queries)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Optional

import numpy as np

INDEX_FILE = "candidates.faiss"
INFO_FILE = "candidates.faiss.json"


def _faiss():
    try:
        import faiss
    except ImportError:
        raise ImportError("The approximate index needs FAISS: pip install \"mmzoo[ann]\" (faiss-cpu).") from None
    return faiss


def exact_top_k(queries: np.ndarray, candidates: np.ndarray, k: int, block: int = 4096) -> np.ndarray:
    """Row indices of the k best candidates by dot product, best first (numpy, in blocks)."""
    out = []
    for s in range(0, len(queries), block):
        scores = queries[s:s + block] @ candidates.T
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1)
        out.append(np.take_along_axis(part, order, axis=1))
    return np.concatenate(out)


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Share of the exact top-k each row's approximate top-k finds (recall@k against brute force)."""
    k = exact.shape[1]
    return float(np.mean([len(set(f[:k]) & set(e)) / k for f, e in zip(found, exact)]))


@dataclasses.dataclass
class ApproximateIndex:
    """A FAISS IVF index over normalised embeddings (inner product = cosine) and how it was tuned."""

    index: object
    nlist: int
    nprobe: int
    k: int
    recall: float
    target_recall: float

    def search(self, queries: np.ndarray, k: Optional[int] = None):
        """``(row indices [n, k], scores [n, k])``, best first."""
        self.index.nprobe = self.nprobe
        scores, ids = self.index.search(np.ascontiguousarray(queries, np.float32), k or self.k)
        return ids, scores

    def save(self, folder: str) -> list:
        """``candidates.faiss`` and its settings (``candidates.faiss.json``) into ``folder``."""
        faiss = _faiss()
        os.makedirs(folder, exist_ok=True)
        faiss.write_index(self.index, os.path.join(folder, INDEX_FILE))
        with open(os.path.join(folder, INFO_FILE), "w", encoding="utf-8") as f:
            json.dump({"kind": "faiss IVF-Flat, inner product", "nlist": self.nlist, "nprobe": self.nprobe,
                       "k": self.k, "recall_at_k_vs_exact": self.recall, "target_recall": self.target_recall,
                       "faiss": faiss.__version__}, f, indent=1)
        return [INDEX_FILE, INFO_FILE]


def build_approximate_index(candidates: np.ndarray, sample_queries: np.ndarray, k: int = 10,
                            target_recall: float = 0.95, nlist: Optional[int] = None, train_size: int = 100_000,
                            seed: int = 0) -> ApproximateIndex:
    """Cluster ``candidates`` ([M, D] float32, normalised) into ``nlist`` cells (default
    ``4 * sqrt(M)``, k-means on at most ``train_size`` of them), add them all, and double
    ``nprobe`` until recall@k against exact search on ``sample_queries`` reaches ``target_recall``.
    """
    faiss = _faiss()
    candidates = np.ascontiguousarray(candidates, np.float32)
    m, d = candidates.shape
    nlist = int(nlist or max(1, min(m // 39, int(4 * math.sqrt(m)))))
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    sample = candidates[rng.choice(m, size=min(m, max(train_size, 39 * nlist)), replace=False)]
    index.train(sample)
    index.add(candidates)
    queries = np.ascontiguousarray(sample_queries, np.float32)
    exact = exact_top_k(queries, candidates, k)

    def recall_with(nprobe: int) -> float:
        index.nprobe = nprobe
        return recall_at_k(index.search(queries, k)[1], exact)

    low, high = 0, 1  # double until the target is met, then the smallest nprobe between
    recalls = {1: recall_with(1)}
    while recalls[high] < target_recall and high < nlist:
        low, high = high, min(nlist, high * 2)
        recalls[high] = recall_with(high)
    while high - low > 1 and recalls[high] >= target_recall:
        middle = (low + high) // 2
        recalls[middle] = recall_with(middle)
        low, high = (middle, high) if recalls[middle] < target_recall else (low, middle)
    return ApproximateIndex(index, nlist, high, k, recalls[high], target_recall)
