"""Ranking metrics over a whole pool (plain numpy): recall@K, median rank, MRR, NDCG, chance.

Rows that share a group are one match: a query is answered when any candidate of its group is
ranked within K. Equal inputs within a group (the image of its three captions) are one entry of
the pool, found by their identical embeddings, so an image is ranked once, not three times.

Example:
>>> q = np.eye(3, dtype="float32"); c = np.eye(3, dtype="float32")
>>> rank_metrics(q, [0, 1, 2], c, [0, 1, 2], ks=(1,))["recall@1"]
1.0
"""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

DEFAULT_KS = (1, 5, 10)


def unique_rows(embeddings: np.ndarray, groups: Sequence[int], decimals: int = 5) -> np.ndarray:
    """Indices of the first row of each distinct (group, embedding): the pool without repeats.

    Example:
    >>> unique_rows(np.array([[1.0], [1.0], [2.0]]), [0, 0, 1]).tolist()
    [0, 2]
    """
    seen, keep = set(), []
    rounded = np.round(np.asarray(embeddings, np.float64), decimals)
    for i, (g, row) in enumerate(zip(groups, rounded)):
        key = (int(g), row.tobytes())
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return np.asarray(keep, np.int64)


def first_hit_ranks(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """1-based rank of the best-ranked relevant candidate of each query (ties count against).

    Args:
        scores: [queries, candidates] similarities.
        relevant: [queries, candidates] bool, at least one True per row.
    """
    best = np.where(relevant, scores, -np.inf).max(axis=1)
    return 1 + (scores > best[:, None]).sum(axis=1) + ((scores == best[:, None]) & ~relevant).sum(axis=1)


def chance_recall(pool: int, relevant: np.ndarray, k: int) -> float:
    """Expected recall@k of a random ranking: 1 - P(no relevant candidate among k draws)."""
    out = []
    for r in np.asarray(relevant, int):
        miss = 1.0
        for i in range(min(k, pool)):
            miss *= max(0.0, (pool - r - i) / (pool - i))
        out.append(1.0 - miss)
    return float(np.mean(out)) if out else 0.0


def rank_metrics(queries: np.ndarray, query_groups, candidates: np.ndarray, candidate_groups,
                 ks: Sequence[int] = DEFAULT_KS, block: int = 1024) -> Dict[str, float]:
    """Recall@K, median rank, MRR and the chance recall of one direction over the whole pool.

    Queries and candidates are deduplicated first (`unique_rows`); a candidate is relevant to
    a query when their groups are equal.
    """
    query_groups = np.asarray(query_groups).reshape(-1)
    candidate_groups = np.asarray(candidate_groups).reshape(-1)
    qi = unique_rows(queries, query_groups)
    ci = unique_rows(candidates, candidate_groups)
    q, qg = np.asarray(queries, np.float32)[qi], query_groups[qi]
    c, cg = np.asarray(candidates, np.float32)[ci], candidate_groups[ci]
    keep = np.isin(qg, cg)
    q, qg = q[keep], qg[keep]
    if not len(q):
        raise ValueError("No query has a candidate of its group in the pool.")
    ranks, counts = [], []
    for s in range(0, len(q), block):
        scores = q[s:s + block] @ c.T
        relevant = qg[s:s + block, None] == cg[None, :]
        ranks.append(first_hit_ranks(scores, relevant))
        counts.append(relevant.sum(axis=1))
    ranks, counts = np.concatenate(ranks), np.concatenate(counts)
    out = {f"recall@{k}": float(np.mean(ranks <= k)) for k in ks}
    out.update({f"chance_recall@{k}": chance_recall(len(c), counts, k) for k in ks})
    out.update({"median_rank": float(np.median(ranks)), "mrr": float(np.mean(1.0 / ranks)),
                "queries": int(len(q)), "pool": int(len(c))})
    return out


def recall_curve(queries, query_groups, candidates, candidate_groups, ks: Sequence[int]) -> list:
    """``[(k, recall@k)]`` for a plot."""
    metrics = rank_metrics(queries, query_groups, candidates, candidate_groups, ks=ks)
    return [(int(k), metrics[f"recall@{k}"]) for k in ks]


def top_k(queries: np.ndarray, candidates: np.ndarray, k: int) -> tuple:
    """``(indices, scores)`` of the k best candidates per query, best first (ties: lower index)."""
    scores = np.asarray(queries, np.float32) @ np.asarray(candidates, np.float32).T
    k = min(k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


def ndcg_at_k(ranked: np.ndarray, relevant: Sequence[set], k: int) -> float:
    """Mean NDCG@k of ranked item ids per user against each user's set of held-out items."""
    gains = []
    for row, rel in zip(ranked, relevant):
        if not rel:
            continue
        dcg = sum(1.0 / np.log2(i + 2) for i, item in enumerate(row[:k]) if item in rel)
        ideal = sum(1.0 / np.log2(i + 2) for i in range(min(k, len(rel))))
        gains.append(dcg / ideal)
    return float(np.mean(gains)) if gains else 0.0


def recall_at_k_sets(ranked: np.ndarray, relevant: Sequence[set], k: int) -> float:
    """Mean share of each user's held-out items found in their top k."""
    values = [len(set(row[:k]) & rel) / len(rel) for row, rel in zip(ranked, relevant) if rel]
    return float(np.mean(values)) if values else 0.0
