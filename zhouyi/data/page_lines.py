"""Lines that are a page's structure, not its content, found by their shape on the page itself: the page's own title
repeated as a line near the top, lines of separators only (`|`, `»`), and lists of links to other dreams (a run of
three or more short lines that each name a dream, with the short heading over them: 热门梦境, 猜你喜欢). A list of
the page's own cases (`梦见蛇咬人，主…`) has sentences and stays.
"""

from __future__ import annotations

import re

_DREAM_LINK = re.compile(r"^(?:[·•\-*]|\d+[.、．])?\s*(?:做梦|梦见|梦到)[^，。！？；,.!?;：:]{1,16}$")
_SEPARATOR = re.compile(r"^[^\u4e00-\u9fffA-Za-z0-9]+$")
_HEADING = re.compile(r"^[^，。！？；,.!?;]{1,10}[:：]?$")
_TITLE_TAIL = re.compile(r"(?:是)?(?:什么意思|预示着什么|预示什么|好不好|是吉是凶|怎么回事|代表什么|什么预兆)?[？?]?$")
LIST_RUN = 3


def _is_title(line: str, keyword: str) -> bool:
    if not keyword:
        return False
    rest = _TITLE_TAIL.sub("", re.sub(r"^(?:做梦)?(?:梦见|梦到)", "", line.strip()))
    return rest == keyword


def structure(text: str, keyword: str) -> tuple[str, list[tuple[str, str]]]:
    """(text without its structure lines, [(what, line)] removed)."""
    lines = text.split("\n")
    drop: dict[int, str] = {}
    for n, line in enumerate(lines[:3]):
        if _is_title(line, keyword):
            drop[n] = "title line"
    for n, line in enumerate(lines):
        if line.strip() and _SEPARATOR.match(line.strip()):
            drop.setdefault(n, "separator line")
    n = 0
    while n < len(lines):
        run = []
        m = n
        while m < len(lines) and (_DREAM_LINK.match(lines[m].strip()) or m in drop and drop[m] == "separator line"
                                  or not lines[m].strip()):
            if _DREAM_LINK.match(lines[m].strip()):
                run.append(m)
            m += 1
        if len(run) >= LIST_RUN:
            for i in range(run[0], run[-1] + 1):
                if lines[i].strip():
                    drop[i] = "list of other dreams"
            head = run[0] - 1
            if head >= 0 and _HEADING.match(lines[head].strip()) and not _DREAM_LINK.match(lines[head].strip()):
                drop[head] = "list of other dreams"
        n = max(m, n + 1)
    if not drop:
        return text, []
    removed = [(what, lines[i]) for i, what in sorted(drop.items())]
    return "\n".join(line for i, line in enumerate(lines) if i not in drop), removed
