"""The proof's draws of the data: which dreams a draw trains on and which it is asked, and what its training data looks
like. Pure Python over the scraped records, so the guarantees (no held-out keyword in that draw's training sets,
held-out sets of different draws disjoint) are tested without a model.

A draw is a data seed. All usable dreams (one per keyword, kept by cleaning) are put in one fixed order; draw d is
asked the d-th block of `eval_rows` dreams of that order, so different draws are asked different dreams, and trains
on `train_rows` dreams drawn with seed d from all the others.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

ORDER_SEED = 0  # the one fixed order the held-out blocks are cut from
LIST_START = re.compile(r"^(?:做梦|梦见|梦到|\d+[、.．]|[一二三四五六七八九十]+、|[（(]\d+[)）])")
HAN_PAIR = re.compile(r"(?=([\u4e00-\u9fff]{2}))")


class TooManyDraws(ValueError):
    """More draws than the data holds without a draw's training and held-out dreams overlapping."""


@dataclass(frozen=True)
class Dream:
    keyword: str
    record: object  # zhouyi.data.readers.Record


def usable_dreams(records: list) -> list[Dream]:
    """Every dream once (first page of each keyword, in a fixed shuffled order) that cleaning keeps."""
    from zhouyi.data.clean import CleanOptions, clean, keyword

    records = list(records)
    random.Random(ORDER_SEED).shuffle(records)
    opts = CleanOptions.of(eval_ratio=0.0, seed=ORDER_SEED)
    out, seen = [], set()
    for rec in records:
        k = keyword(rec.title)
        if k in seen:
            continue
        seen.add(k)  # a keyword's first page decides: a later page of it is the same dream, never a second one
        if clean([rec], [], opts).train:
            out.append(Dream(k, rec))
    return out


def max_draws(usable: int, train_rows: int, eval_rows: int) -> int:
    """How many draws `usable` dreams allow: every draw's held-out block apart, and train_rows left beside each."""
    if usable < train_rows + eval_rows:
        return 0
    return (usable - train_rows) // eval_rows


def pick(dreams: list[Dream], train_rows: int, eval_rows: int, draw: int) -> tuple[list[Dream], list[Dream]]:
    """(training dreams, held-out dreams) of draw `draw`."""
    largest = max_draws(len(dreams), train_rows, eval_rows)
    if draw >= largest:
        raise TooManyDraws(f"{len(dreams)} usable dreams allow at most {largest} draws of {train_rows} training and "
                           f"{eval_rows} held-out dreams; ask for fewer draws or fewer rows")
    held_out = dreams[draw * eval_rows:(draw + 1) * eval_rows]
    others = dreams[:draw * eval_rows] + dreams[(draw + 1) * eval_rows:]
    return random.Random(draw).sample(others, train_rows), held_out


def near_neighbours(held_out: list[str], trained: list[str]) -> int:
    """How many held-out keywords have a near neighbour among the training keywords: one holds the other (`蛇` and
    `水蛇`) or the two share a pair of Han characters (`被狗咬` and `狗咬人`)."""
    pairs_of = {k: set(HAN_PAIR.findall(k)) for k in trained}
    index: dict[str, set[str]] = {}
    for k, pairs in pairs_of.items():
        for p in pairs:
            index.setdefault(p, set()).add(k)

    def has(k: str) -> bool:
        if any(p in index for p in HAN_PAIR.findall(k)):
            return True
        return any(k in t or t in k for t in trained)

    return sum(has(k) for k in held_out)


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n|　　", text) if p.strip()]


def is_list_style(text: str) -> bool:
    """A page that is a list of dreams (`梦见…` or numbered paragraphs), at least three of them, most paragraphs so."""
    paras = paragraphs(text)
    return len(paras) >= 3 and sum(bool(LIST_START.match(p)) for p in paras) * 2 >= len(paras)


def training_stats(trained: list[Dream], clean_rows: list[dict], held_out: list[Dream]) -> dict:
    """What a draw's training data looks like, to read beside its scores."""
    pages = [d.record.text for d in trained]
    kept = [len(r["output"]) for r in clean_rows]
    return {
        "answer_chars": round(sum(kept) / len(kept), 1),
        "page_chars": round(sum(len(p) for p in pages) / len(pages), 1),
        "page_paragraphs": round(sum(len(paragraphs(p)) for p in pages) / len(pages), 2),
        "share_of_page_kept": round(sum(kept) / max(1, sum(len(p) for p in pages)), 3),
        "list_style": round(sum(map(is_list_style, pages)) / len(pages), 3),
        "heldout_with_neighbour": near_neighbours([d.keyword for d in held_out], [d.keyword for d in trained]),
        "heldout": len(held_out),
    }
