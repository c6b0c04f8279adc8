"""Near-duplicate texts: MinHash over character 3-grams, LSH banding for candidates, exact Jaccard to confirm.

Scraped dream pages repeat one interpretation with a phrase changed, an advert line left in, or a
title reworded; exact dedup misses those. Rows whose Jaccard similarity of character 3-grams reaches
`threshold` join one cluster (union-find), so a cluster can be kept as one row per dream and can never
straddle the train/eval split.

The MinHash is vectorised with numpy (multiply-shift hashing of each 3-gram's code points, 64
permutations), about five times faster than hashing every shingle in Python; LSH uses 16 bands of 4
rows (a pair at Jaccard 0.8 becomes a candidate with probability 0.9998, at 0.5 with 0.64), grouped by sorting
each band's keys rather than in a dictionary of buckets (a million texts fit in a few hundred MB), and every
candidate pair is checked exactly, so the threshold is exact and no false pair is ever merged. Before the exact check,
a candidate is weighed by its signatures: a pair whose 64 values agree on fewer than (threshold - 0.2) of them is
left out (for a pair at Jaccard 0.8 that is 4 standard deviations away, about 3 in 100,000). So a band shared by many
pages that are alike but not near duplicates (a site's short templated pages) costs one vectorised comparison per
page, not an exact check per pair.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where it is used: `import zhouyi.data` stays light
    import numpy as np

NUM_PERM, BANDS = 64, 16
ESTIMATE_MARGIN = 0.2  # 4 standard deviations of the 64-value estimate at Jaccard 0.8
_ROWS = NUM_PERM // BANDS


def shingles(text: str, n: int = 3) -> set[str]:
    return {text[i:i + n] for i in range(max(len(text) - n + 1, 1))}


def _permutations(seed: int) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2**63, NUM_PERM, dtype=np.uint64) | np.uint64(1)  # odd multipliers
    return a, rng.integers(0, 2**63, NUM_PERM, dtype=np.uint64)


def signature(text: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """64 minimum hash values of the text's character 3-grams (the whole text if shorter)."""
    import numpy as np

    cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if len(cps) < 3:
        cps = np.concatenate([cps, np.zeros(3 - len(cps), dtype=np.uint64)])
    with np.errstate(over="ignore"):  # arithmetic is modulo 2**64 by design
        grams = cps[:-2] * np.uint64(0x9E3779B97F4A7C15) + cps[1:-1] * np.uint64(0xC2B2AE3D27D4EB4F) + cps[2:]
        hashed = (a[:, None] * grams[None, :] + b[:, None]) >> np.uint64(32)
    return hashed.min(axis=1)


def clusters(texts: Sequence[str], threshold: float, seed: int = 1) -> list[int]:
    """For each text, the index of its cluster's first member (itself when it has no near duplicate). `texts` may
    read each text from disk: every text is read once for its signature, and again only when it meets a candidate.
    Memory is 256 bytes a text for the signatures (one array), so a million texts fit in a quarter of a GiB."""
    import numpy as np

    a, b = _permutations(seed)
    n = len(texts)
    sigs = np.empty((n, NUM_PERM), dtype=np.uint32)  # each value is a hash shifted right by 32: it fits
    for i in range(n):
        sigs[i] = signature(texts[i], a, b)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    @functools.lru_cache(maxsize=4096)  # shingle sets of the texts that met a candidate lately
    def grams(i: int) -> frozenset[str]:
        return frozenset(shingles(texts[i]))

    def similar(i: int, j: int) -> bool:
        si, sj = grams(i), grams(j)
        both = len(si & sj)
        return both >= threshold * (len(si) + len(sj) - both)

    # a candidate whose signatures agree on fewer than (threshold - ESTIMATE_MARGIN) of their 64 values is not checked
    floor = max(0, math.ceil((threshold - ESTIMATE_MARGIN) * NUM_PERM))
    mix = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5][:_ROWS],
                   dtype=np.uint64)
    for band in range(BANDS):  # texts sharing a band's values are candidates; each pair is checked exactly
        with np.errstate(over="ignore"):  # a band's values mixed to one key; equal bands give equal keys
            keys = (sigs[:, band * _ROWS:(band + 1) * _ROWS].astype(np.uint64) * mix).sum(axis=1)
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        sizes = np.diff(np.r_[starts, n])
        for start, size in zip(starts[sizes > 1].tolist(), sizes[sizes > 1].tolist(), strict=True):
            members = order[start:start + size]  # ascending: argsort is stable
            block = sigs[members]
            for pos in range(1, size):
                i = int(members[pos])
                agree = np.count_nonzero(block[:pos] == block[pos], axis=1)  # the signatures' estimate of Jaccard
                for j in members[:pos][agree >= floor].tolist():
                    ri, rj = root(i), root(j)
                    if ri != rj and similar(i, j):
                        parent[max(ri, rj)] = min(ri, rj)
    return [root(i) for i in range(n)]
