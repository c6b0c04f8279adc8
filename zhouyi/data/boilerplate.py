"""Boilerplate learnt from the pages themselves: every page of a dream site is about one keyword, so a sentence or
line that recurs across many pages of one site once the page's keyword is masked (`梦见蛇的详细解说` and
`梦见龙的详细解说` are both `梦见〈K〉的详细解说`), with numbers, dates and web addresses masked too, is the site's
template, not the page's content (CCNet and RefinedWeb drop lines repeated across documents; zhouyi has the keyword
as a stronger signal). It is removed before the rules run.

A template must recur on at least `template_min_pages` pages and on `template_min_share` of the site's pages, and
hold `template_min_chars` Han characters, letters or digits besides its masks (a short stock phrase such as `主吉。`
is content, and so is a book citation such as `《周公解梦》`) — unless it is a whole line that ends no sentence: a
short heading that recurs as a line of its own (网友评论, 热门梦境) is the site's, whatever its length. Where
the templates would remove more than half of a page's text the page keeps it and is reported as suspicious: what
recurs that much may be the interpretation itself; so does a page the templates would leave without one finished
sentence. Learnt templates can be saved and given again as known
templates for the next scrape of the same site.
"""

from __future__ import annotations

import math
import re
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from zhouyi.errors import UserError
from zhouyi.user_files import read_json, wrong_shape

KEYWORD, NUMBER, ADDRESS = "〈K〉", "〈N〉", "〈URL〉"
_ADDRESS = re.compile(r"https?://\S+|www\.[A-Za-z0-9.-]+\.[a-z]{2,}\S*|[\w.+-]+@[\w-]+\.[\w.-]+")
_NUMBER = re.compile(r"\d+(?:[-/.:：年月日时分]\d+)*[年月日号时分秒]?")
_PIECE = re.compile(r"[^。！？!?；;]*[。！？!?；;]+|[^。！？!?；;]+$")
_SENTENCE_END = re.compile(r"[。！？!?…]")  # as zhouyi.data.clean ends a sentence
_MASKS = re.compile("|".join(map(re.escape, (KEYWORD, NUMBER, ADDRESS))))


def site(source: str) -> str:
    """The site a record came from: its input file (`file.json#12` -> `file.json`), or a markdown folder's pages."""
    return source.split("#", 1)[0] if "#" in source else "(folder)"


def pieces(line: str) -> list[str]:
    """A line's sentences, each with its end mark; the line itself when it has none."""
    return [p for p in _PIECE.findall(line) if p.strip()]


def mask(unit: str, keyword: str) -> str:
    """A sentence with the page's keyword, web addresses and numbers (dates, times, counts) masked, spaces gone."""
    unit = _ADDRESS.sub(ADDRESS, unit)
    if keyword:
        unit = unit.replace(keyword, KEYWORD)
    return re.sub(r"\s+", "", _NUMBER.sub(NUMBER, unit))


@dataclass
class Template:
    pattern: str  # the masked sentence or line
    pages: int  # how many pages of its site carry it
    site: str
    example: str = ""  # as one page had it
    suspicious_pages: int = 0  # pages that kept it: it would have removed more than half of their text
    learnt: bool = True  # False: given as known (a saved file)


@dataclass
class Templates:
    by_site: dict[str, dict[str, Template]] = field(default_factory=dict)
    known: dict[str, Template] = field(default_factory=dict)  # from saved files: apply to every site

    def all(self) -> list[Template]:
        return [*self.known.values(), *(t for found in self.by_site.values() for t in found.values())]

    def find(self, source: str, pattern: str) -> Template | None:
        return self.by_site.get(site(source), {}).get(pattern) or self.known.get(pattern)


def _units(text: str, keyword: str) -> tuple[set[str], set[str]]:
    """(every masked line and sentence of the page, its masked lines that end no sentence: headings, labels)."""
    out, headings = set(), set()
    for line in text.split("\n"):
        if line.strip():
            out.add(mask(line, keyword))
            out.update(mask(p, keyword) for p in pieces(line))
            if not _SENTENCE_END.search(line):
                headings.add(mask(line, keyword))
    return out, headings


class Learner:
    """Counts each site's masked lines and sentences as pages stream past, then names the templates in one more pass
    over the pages. Counting keeps a 64-bit hash of each unit, never its text, so a million pages cost about 8 bytes a
    unit (a Counter of the strings grew to gigabytes); two different units sharing a hash would only add their
    counts, a chance of about one in 10^5 for 10 million distinct units."""

    def __init__(self) -> None:
        self.units: dict[str, array] = defaultdict(lambda: array("q"))
        self.headings: dict[str, array] = defaultdict(lambda: array("q"))
        self.pages: Counter = Counter()

    def add(self, source: str, keyword: str, text: str) -> None:
        name = site(source)
        units, headings = _units(text, keyword)
        self.units[name].extend(map(hash, units))
        self.headings[name].extend(map(hash, headings))
        self.pages[name] += 1

    def templates(self, pages: Iterable[tuple[str, str, str]], min_pages: int, min_share: float, min_chars: int,
                  known: dict[str, Template] | None = None) -> Templates:
        """The templates of each site, given the same pages again as (source, keyword, text): a unit recurring on
        `min_pages` pages and `min_share` of its site's with `min_chars` characters of text, or a heading line
        recurring that often."""
        need = {name: max(min_pages, math.ceil(min_share * n)) for name, n in self.pages.items()}
        counts = {name: _frequent(self.units[name], need[name]) for name in self.pages}
        heading_counts = {name: _frequent(self.headings[name], need[name]) for name in self.pages}
        self.units.clear()
        self.headings.clear()
        chosen: dict[str, dict[str, int]] = defaultdict(dict)
        examples: dict[str, dict[str, str]] = defaultdict(dict)
        for source, keyword, text in pages:  # the text of each frequent hash, and an example as a page wrote it
            name = site(source)
            if not counts.get(name) and not heading_counts.get(name):
                continue
            for line in text.split("\n"):
                for unit in [line, *pieces(line)] if line.strip() else ():
                    pattern = mask(unit, keyword)
                    if pattern in examples[name]:
                        continue
                    key = hash(pattern)
                    n = counts[name].get(key, 0)
                    heading = heading_counts[name].get(key, 0)
                    if heading or (n and _chars(pattern) >= min_chars):
                        # a whole line that ends no sentence and recurs that much is a heading, however short
                        chosen[name][pattern] = heading or n
                        examples[name][pattern] = unit.strip()
        found = Templates(known=dict(known or {}))
        for name in self.pages:
            found.by_site[name] = {p: Template(p, n, name, examples[name][p]) for p, n in
                                   sorted(chosen[name].items(), key=lambda kv: -kv[1])}
        return found


def _frequent(hashes: array, need: int) -> dict[int, int]:
    """{hash: count} of the hashes that occur at least `need` times."""
    import numpy as np

    if not hashes:
        return {}
    values, counts = np.unique(np.frombuffer(hashes, dtype=np.int64), return_counts=True)
    keep = counts >= need
    return dict(zip(values[keep].tolist(), counts[keep].tolist(), strict=True))


def learn(pages: list[tuple[str, str, str]], min_pages: int, min_share: float, min_chars: int,
          known: dict[str, Template] | None = None) -> Templates:
    """Templates of each site from its pages, given as (source, keyword, text)."""
    learner = Learner()
    for page in pages:
        learner.add(*page)
    return learner.templates(pages, min_pages, min_share, min_chars, known)


def strip(text: str, source: str, keyword: str, templates: Templates) -> tuple[str, list[tuple[Template, str]]]:
    """The page without its site's template sentences and lines: (text, [(template, what it removed)]). A template
    that would take more than half of the page's text stays on that page and is marked suspicious there."""
    han = len(_han(text))
    found: dict[int, list[str]] = {}
    units = []  # (line index, piece or None for the whole line, template or None)
    for n, line in enumerate(text.split("\n")):
        whole = templates.find(source, mask(line, keyword)) if line.strip() else None
        if whole is not None:
            units.append((n, line, whole))
            continue
        units += [(n, piece, templates.find(source, mask(piece, keyword))) for piece in pieces(line) or [line]]
    for _, piece, template in units:
        if template is not None:
            found.setdefault(id(template), []).append(piece)
    too_much = {key for key, removed in found.items() if len(_han("".join(removed))) > han / 2}
    for _, _, template in units:
        if template is not None and id(template) in too_much:
            template.suspicious_pages += 1
            too_much.discard(id(template))  # counted once a page
            found.pop(id(template), None)
    kept_lines: dict[int, list[str]] = {}
    removed = []
    for n, piece, template in units:
        if template is not None and id(template) in found:
            removed.append((template, piece.strip()))
        else:
            kept_lines.setdefault(n, []).append(piece)
    if not removed:
        return text, []
    lines = ["".join(parts).strip() for _, parts in sorted(kept_lines.items())]
    stripped = "\n".join(line for line in lines if line)
    if _SENTENCE_END.search(text) and not _SENTENCE_END.search(stripped):
        for template in {id(t): t for t, _ in removed}.values():  # no finished sentence would be left: suspicious
            template.suspicious_pages += 1
        return text, []
    return stripped, removed


def _chars(pattern: str) -> int:
    """Han characters, letters and digits besides the masks: punctuation and a book title's brackets are not text."""
    return len(re.findall(r"[\u4e00-\u9fffA-Za-z0-9]", _MASKS.sub("", pattern)))


def _han(text: str) -> str:
    return "".join(re.findall(r"[\u4e00-\u9fff]", text))


def load_known(paths: list[str]) -> dict[str, Template]:
    """Templates saved by an earlier cleaning; a file that is not such a list is named, exit 2."""
    known = {}
    what, mend = "data.clean.templates", "write one with --save-templates"
    for name in paths:
        path = Path(name)
        rows = read_json(path, what, mend)
        if not isinstance(rows, list):
            raise wrong_shape(path, what, "a list of templates", mend)
        for i, row in enumerate(rows):
            if not isinstance(row, dict) or not isinstance(row.get("pattern"), str) or not row["pattern"].strip():
                raise UserError(f"data.clean.templates: {path} entry {i} has no pattern (write the file with "
                                "--save-templates)")
            pages = row.get("pages") or 0
            if not isinstance(pages, int) or isinstance(pages, bool) or pages < 0:
                raise UserError(f"data.clean.templates: {path} entry {i}: pages {pages!r} is not a count of pages "
                                "(write the file with --save-templates)")
            known[row["pattern"]] = Template(row["pattern"], pages, str(path),
                                             str(row.get("example") or ""), learnt=False)
    return known
