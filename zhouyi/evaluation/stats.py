"""How sure a comparison is: paired bootstrap intervals for mean differences of per-question scores, Wilson intervals
for shares of answers, the exact McNemar test for paired shares, and the verdict words chosen from those alone.
Pure and seeded: the same scores give the same report.

Every comparison here is paired: model A and model B answered the same questions, so question i's scores are a
pair, and the question-to-question spread (some dreams are easy for every model) drops out of the difference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0
Z = 1.959963984540054  # the normal quantile of 0.975
BETTER, WORSE, UNCLEAR = "better", "worse", "no clear difference"
MIN_QUESTIONS = 2  # fewer cannot give an interval


class TooFew(ValueError):
    """Fewer than MIN_QUESTIONS paired questions: no interval, and no verdict, can be given."""


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def excludes(self, value: float) -> bool:
        return not self.low <= value <= self.high


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _check(a: list, b: list) -> None:
    if len(a) != len(b):
        raise ValueError(f"paired scores of unequal length: {len(a)} and {len(b)}")
    if len(a) < MIN_QUESTIONS:
        raise TooFew(f"{len(a)} question{'s' if len(a) != 1 else ''}: an interval needs at least {MIN_QUESTIONS}")


def paired_bootstrap(a: list[float], b: list[float], resamples: int = RESAMPLES, seed: int = SEED) -> Interval:
    """The 95% percentile interval of mean(b - a), resampling questions with replacement (seeded)."""
    import numpy as np  # here, not at import: the CLI stays light

    _check(a, b)
    diffs = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, len(diffs), size=(resamples, len(diffs)))].mean(axis=1)
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(float(low), float(high))


def wilson(successes: int, n: int) -> Interval:
    """The Wilson score interval of a share (well behaved at 0 of n and n of n, unlike the normal one)."""
    if n == 0:
        return Interval(0.0, 1.0)
    p = successes / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def mcnemar_exact(a: list[bool], b: list[bool]) -> float:
    """The two-sided exact McNemar p-value: of the questions where exactly one model's answer has the property, is
    the split between the two models further from even than chance makes it?"""
    only_a = sum(x and not y for x, y in zip(a, b, strict=True))
    only_b = sum(y and not x for x, y in zip(a, b, strict=True))
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def verdict(interval: Interval, higher_is_better: bool) -> str:
    """Words from the interval of (B - A) only: better or worse when it excludes zero, otherwise no clear
    difference."""
    if not interval.excludes(0.0):
        return UNCLEAR
    return BETTER if (interval.low > 0) == higher_is_better else WORSE


def compare_scores(a: list[float], b: list[float], higher_is_better: bool = True, seed: int = SEED) -> dict:
    """B against A on one per-question score: both means, the mean difference, its interval and the verdict."""
    interval = paired_bootstrap(a, b, seed=seed)
    return {"a": round(mean(a), 2), "b": round(mean(b), 2), "diff": round(mean(b) - mean(a), 2),
            "low": round(interval.low, 2), "high": round(interval.high, 2),
            "verdict": verdict(interval, higher_is_better)}


def compare_shares(a: list[bool], b: list[bool], higher_is_better: bool, seed: int = SEED) -> dict:
    """B against A on one check: each share with its Wilson interval, the paired difference with its bootstrap
    interval, McNemar's exact p, and the verdict (from McNemar's exact test at 5%: the exact paired test decides
    where few answers differ, and the bootstrap interval is shown for the size of the difference)."""
    _check(a, b)
    n = len(a)
    interval = paired_bootstrap([float(x) for x in a], [float(y) for y in b], seed=seed)
    p = mcnemar_exact(a, b)
    diff = (sum(b) - sum(a)) / n
    words = UNCLEAR if p >= 1 - CONFIDENCE or diff == 0 else BETTER if (diff > 0) == higher_is_better else WORSE
    wa, wb = wilson(sum(a), n), wilson(sum(b), n)
    return {"a": {"share": round(sum(a) / n, 3), "low": round(wa.low, 3), "high": round(wa.high, 3)},
            "b": {"share": round(sum(b) / n, 3), "low": round(wb.low, 3), "high": round(wb.high, 3)},
            "diff": round(diff, 3), "low": round(interval.low, 3), "high": round(interval.high, 3),
            "mcnemar_p": round(p, 4), "verdict": words}


def spread(values: list[float]) -> dict:
    """Runs that differ only in their training seed: the mean over seeds and the spread between them."""
    m = mean(values)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return {"mean": round(m, 2), "sd": round(sd, 2), "min": round(min(values), 2), "max": round(max(values), 2),
            "seeds": len(values)}


def cluster_bootstrap(groups: list[list[float]], resamples: int = RESAMPLES, seed: int = SEED) -> Interval:
    """The 95% percentile interval of the mean per-question difference when the questions come in draws (clusters):
    each resample picks draws with replacement, then questions with replacement within each picked draw, so the
    interval carries the draw-to-draw spread as well as the question-to-question one. `groups`: per draw, the
    per-question differences (B - A). Few draws give a wide, coarse interval (3 draws: 10 distinct draw sets), which
    is the honest answer, not a defect."""
    import numpy as np

    if len(groups) < 2:
        raise TooFew(f"{len(groups)} draw: an interval across draws needs at least 2")
    for g in groups:
        if len(g) < MIN_QUESTIONS:
            raise TooFew(f"a draw with {len(g)} questions: an interval needs at least {MIN_QUESTIONS}")
    arrays = [np.asarray(g, dtype=float) for g in groups]
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for r in range(resamples):
        picked = rng.integers(0, len(arrays), size=len(arrays))
        means[r] = np.mean([arrays[d][rng.integers(0, len(arrays[d]), size=len(arrays[d]))].mean() for d in picked])
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return Interval(float(low), float(high))


def compare_across_draws(a: list[list[float]], b: list[list[float]], higher_is_better: bool = True,
                         seed: int = SEED) -> dict:
    """B against A over several draws of questions: the mean over draws of each draw's mean, the mean difference,
    its cluster-bootstrap interval and the verdict from that interval alone."""
    diffs = [[y - x for x, y in zip(da, db, strict=True)] for da, db in zip(a, b, strict=True)]
    interval = cluster_bootstrap(diffs, seed=seed)
    ma, mb = mean([mean(d) for d in a]), mean([mean(d) for d in b])
    return {"a": round(ma, 3), "b": round(mb, 3), "diff": round(mb - ma, 3), "low": round(interval.low, 3),
            "high": round(interval.high, 3), "draws": len(a), "verdict": verdict(interval, higher_is_better)}
