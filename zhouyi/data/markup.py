"""Scraped text made plain before any rule runs: HTML parsed (not matched) into text with its paragraph breaks,
entities decoded, invisible characters removed, line ends and odd spaces normalised. Chinese punctuation is never
touched (no NFKC: it would turn ，：；！？ into ASCII).

The parser is CPython's own `html.parser`: a real, tolerant HTML tokenizer (unclosed tags, stray `<`, broken
entities) that ships with Python, so cleaning needs no compiled dependency.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# elements that end a paragraph (their text goes on its own line), and elements whose text is never content
BLOCK = {"p", "div", "br", "li", "ul", "ol", "tr", "td", "th", "table", "section", "article", "header", "footer",
         "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "dd", "dt", "dl", "pre", "hr", "nav", "aside", "main",
         "figure", "figcaption", "form"}
SKIPPED = {"script", "style", "noscript", "template", "iframe", "svg", "head", "title", "button", "select"}
_LOOKS_LIKE_HTML = re.compile(r"<(?:/?[a-zA-Z][a-zA-Z0-9]*)(?:\s[^<>]*)?/?>"
                              r"|&(?:[a-zA-Z]{2,8}|#\d{2,6}|#x[0-9a-fA-F]{2,5});")
# zero-width spaces and joiners, direction marks, word joiner and friends, BOM, soft hyphen, Mongolian vowel separator
INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\u00ad\u180e]")
# two or more ideographic spaces: a paragraph's indent, where a scraper joined the paragraphs on one line (each rule
# and template then sees the paragraph, not the whole page, as its line)
PARAGRAPH_INDENT = re.compile("[ \t]*\u3000{2,}[ \t]*")
# spaces of other widths (not U+3000, the ideographic space Chinese text indents with: the rules judge that one)
ODD_SPACES = re.compile("[\u00a0\u2000-\u200a\u202f\u205f]")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in SKIPPED:
            self.skipping += 1
        elif tag in BLOCK:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs) -> None:
        if tag in BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def has_markup(text: str) -> bool:
    return bool(_LOOKS_LIKE_HTML.search(text))


def html_to_text(text: str) -> str:
    """The text of an HTML fragment or page, a line per block element, entities decoded."""
    parser = _Text()
    parser.feed(text)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).split("\n"))
    return "\n".join(line for line in lines if line)


def plain(text: str) -> tuple[str, list[str]]:
    """(`text` made plain, what was done: "markup parsed", "paragraphs joined by full-width spaces", "invisible
    characters", "line ends", "odd spaces")."""
    done = []
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        done.append("line ends")
    if has_markup(text):
        text = html_to_text(text)
        done.append("markup parsed")
    if PARAGRAPH_INDENT.search(text):
        text = PARAGRAPH_INDENT.sub("\n", text)
        done.append("paragraphs joined by full-width spaces")
    if INVISIBLE.search(text):
        text = INVISIBLE.sub("", text)
        done.append("invisible characters")
    if ODD_SPACES.search(text):
        text = ODD_SPACES.sub(" ", text)
        done.append("odd spaces")
    return text, done
