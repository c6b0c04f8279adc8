"""Near-duplicate texts: MinHash over character 3-grams, candidate pairs from LSH, confirmed by Jaccard.

Scraped dream pages repeat one interpretation with a phrase changed, an advert line left in, or a
title reworded; exact dedup misses those. Rows whose estimated Jaccard similarity of character
3-grams reaches `threshold` are joined into one cluster (union-find), so a cluster can be kept as
one row and can never straddle the train/eval split.
"""

from __future__ import annotations

NUM_PERM = 64


def shingles(text: str, n: int = 3) -> set[str]:
    return {text[i:i + n] for i in range(max(len(text) - n + 1, 1))}


def clusters(texts: list[str], threshold: float, seed: int = 1) -> list[int]:
    """For each text, the index of its cluster's first member (itself when it has no near duplicate)."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    parent = list(range(len(texts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    sets = [shingles(t) for t in texts]
    for i, grams in enumerate(sets):
        mh = MinHash(num_perm=NUM_PERM, seed=seed)
        mh.update_batch([g.encode("utf-8") for g in grams])
        for j in lsh.query(mh):
            if len(grams & sets[j]) / len(grams | sets[j]) >= threshold:  # LSH gives candidates; confirm exactly
                a, b = root(i), root(j)
                parent[max(a, b)] = min(a, b)
        lsh.insert(i, mh)
    return [root(i) for i in range(len(texts))]
