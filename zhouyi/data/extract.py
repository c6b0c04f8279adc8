"""A whole saved web page -> its main content, by trafilatura (the extractor behind FineWeb's pipeline): it reads
the document tree, link density and known comment, navigation and sidebar structures, which a text flattening
loses. Chosen by measurement against jusText and readability-lxml (docs/data.md). HTML fragments inside text fields
stay with zhouyi.data.markup: a fragment has no chrome to tell apart.
"""

from __future__ import annotations

import re

_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{2,40})""", re.I)
_TITLE = re.compile(r"<title[^>]{0,200}>(?P<t>[^<]{0,500})</title>", re.I)
_H1 = re.compile(r"<h1[^>]{0,200}>(?P<h>[^<]{0,500})</h1>", re.I)
# what separates a page's own title from the site's name: `梦见蛇_解梦吧`, `梦见蛇 - 老黄历解梦`, `梦见蛇|周公解梦`
_SITE_NAME = re.compile(r"\s*(?:[_|｜–—]|\s-\s|-{2,})\s*")
MAX_PAGE_BYTES = 8 << 20  # a larger "page" is no dream page: skipped and counted


class NoContent(ValueError):
    """The extractor found no main content on the page (only scripts, a frameset, a bare list of links)."""


def declared_encoding(raw: bytes) -> str | None:
    """The encoding the page declares in its first 4 KiB (`<meta charset>` or `http-equiv` content), if Python knows
    it."""
    import codecs

    found = _CHARSET.search(raw[:4096])
    if not found:
        return None
    name = found.group(1).decode("ascii", "replace").lower()
    name = {"gbk": "gb18030", "gb2312": "gb18030"}.get(name, name)  # GB18030 reads both, and more
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def title_of(html: str) -> str:
    """The page's dream: its <title> before the site's name, else its <h1>; "" when it has neither. Bounded
    patterns: an unclosed tag costs a linear scan, never a quadratic one."""
    import html as entities

    for pattern in (_TITLE, _H1):
        found = pattern.search(html)
        if found and (text := entities.unescape(found.group(1)).strip()):
            return _SITE_NAME.split(text)[0].strip()
    return ""


def trafilatura_text(html: str, mode: str = "precision") -> str | None:
    """trafilatura's main text; `mode`: precision (zhouyi's choice, docs/data.md), balanced or recall."""
    import trafilatura

    favour = {"precision": {"favor_precision": True}, "recall": {"favor_recall": True}, "balanced": {}}[mode]
    return trafilatura.extract(html, include_comments=False, include_tables=True, include_links=False,
                               include_images=False, deduplicate=False, **favour)


def readability_text(html: str) -> str | None:
    """readability-lxml's article, made text by zhouyi.data.markup (for the comparison in bench/bench_sites.py)."""
    from readability import Document

    from zhouyi.data.markup import html_to_text

    return html_to_text(Document(html).summary(html_partial=True))


def justext_text(html: str) -> str | None:
    """jusText's good paragraphs. It judges paragraphs by their stop words; it ships no Chinese list, so a list
    of common Chinese function words stands in (for the comparison in bench/bench_sites.py)."""
    import justext

    stop = frozenset("的 了 是 在 有 和 就 不 人 都 一 上 也 很 到 说 要 去 你 会 着"
                     " 没有 看 好 自己 这 那 梦 梦见 预示 表示".split())
    paragraphs = justext.justext(html.encode("utf-8"), stop, length_low=10, length_high=40,
                                 stopwords_low=0.02, stopwords_high=0.05)
    return "\n".join(p.text for p in paragraphs if not p.is_boilerplate) or None


EXTRACTORS = {"trafilatura": trafilatura_text,
              "trafilatura-balanced": lambda h: trafilatura_text(h, "balanced"),
              "trafilatura-recall": lambda h: trafilatura_text(h, "recall"),
              "readability": readability_text, "justext": justext_text}
EXTRACTOR = "trafilatura"  # bench/bench_sites.py --extractor sets another to compare


def main_content(html: str) -> str:
    """The page's main text, a line per paragraph; NoContent with the reason when there is none."""
    if not re.search(r"<(?:body|p|div|article|td|br)\b", html, re.I):
        raise NoContent("no body: a frameset, or a page of scripts only")
    text = EXTRACTORS[EXTRACTOR](html)
    if not text or not re.search(r"[\u4e00-\u9fff]", text):
        raise NoContent("the extractor found no main content")
    return text
