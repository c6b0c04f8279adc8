"""Readers: scraped dream data in its several shapes -> `Record`s (title, text, optional question).

One bad row is skipped and reported, never a crash; undecodable input is an error naming file and byte.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from zhouyi.data import extract
from zhouyi.errors import UserError
from zhouyi.files import BadLine, json_rows
from zhouyi.spec import CleanSpec

TITLE_FIELDS = tuple(CleanSpec.model_fields["title_fields"].default)  # data.clean's defaults
TEXT_FIELDS = tuple(CleanSpec.model_fields["text_fields"].default)
ENCODINGS = ("utf-8-sig", "gb18030")


@dataclass(frozen=True)
class Record:
    source: str  # file name and row number, for the report and `explain`
    title: str  # the dream keyword or page title
    text: str  # the interpretation
    question: str | None = None  # an alpaca row's own question, kept as it was


@dataclass(frozen=True)
class Skipped:
    """A row that could not be read, and why."""

    source: str
    why: str
    fields: tuple[str, ...] = ()  # the row's text fields, to suggest --title-field and --text-field


@dataclass
class ReadResult:
    records: list[Record] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source, why)


CSV_FIELD_LIMIT = 64 << 20  # bytes
BLOCK = 1 << 20


def decode(path: Path, html: bool = False) -> str:
    """The file's text: UTF-8 or GB18030, a web page first in the encoding it declares (a wrong declaration falls
    back to those)."""
    raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise UserError(f"{path}: looks like a binary file (NUL bytes), not text data")
    first_error = None
    declared = extract.declared_encoding(raw) if html else None
    for encoding in ([declared] if declared else []) + list(ENCODINGS):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError as exc:
            first_error = first_error or exc
    raise UserError(f"{path}: cannot decode as UTF-8 or GB18030 (first bad byte at offset {first_error.start})")


def encoding_of(path: Path) -> str:
    """The encoding the whole file decodes in (UTF-8, else GB18030), checked a block at a time: the file is never
    whole in memory. The same errors as `decode`: a binary file, bytes neither encoding reads, an empty file."""
    with open(path, "rb") as fh:
        if b"\x00" in fh.read(4096):
            raise UserError(f"{path}: looks like a binary file (NUL bytes), not text data")
    first_bad = None
    for encoding in ENCODINGS:
        decoder, done, blank = codecs.getincrementaldecoder(encoding)(), 0, True
        try:
            with open(path, "rb") as fh:
                for block in iter(lambda fh=fh: fh.read(BLOCK), b""):
                    pending = len(decoder.getstate()[0])
                    text = decoder.decode(block)
                    blank = blank and not text.strip()
                    done += len(block)
                pending = len(decoder.getstate()[0])
                decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            first_bad = first_bad if first_bad is not None else done - pending + exc.start
            continue
        if blank:
            raise UserError(f"{path}: the file is empty")
        return encoding
    raise UserError(f"{path}: cannot decode as UTF-8 or GB18030 (first bad byte at offset {first_bad})")


def detect_format(path: Path) -> str:
    """The format a file's name says; JSON files are `records` until their first row shows alpaca columns."""
    if path.suffix == ".txt":
        return "classical"
    if path.suffix in (".csv", ".tsv"):
        return "csv"
    return "records"


def read_file(path: Path, fmt: str | None = None, title_fields: tuple[str, ...] = TITLE_FIELDS,
              text_fields: tuple[str, ...] = TEXT_FIELDS) -> ReadResult:
    """Read one input whole (see `read_rows`)."""
    result = ReadResult()
    for item in read_rows(path, fmt, title_fields, text_fields):
        if isinstance(item, Record):
            result.records.append(item)
        else:
            result.skipped.append((item.source, item.why))
    return result


def read_rows(path: Path, fmt: str | None = None, title_fields: tuple[str, ...] = TITLE_FIELDS,
              text_fields: tuple[str, ...] = TEXT_FIELDS) -> Iterator[Record | Skipped]:
    """One input, a row at a time: a JSON/JSONL/CSV/TSV/classical file, or a folder of markdown and HTML pages.
    JSON Lines, CSV and folders are read as they go (a million pages never sit in memory at once); a JSON list is
    parsed whole.

    Records take their title and text from the first of `title_fields` / `text_fields` a row has.
    """
    fields = (tuple(title_fields), tuple(text_fields))
    path = Path(path)
    if path.is_dir() and fmt in (None, "markdown"):
        yield from _read_markdown_folder(path, fields[0])
        return
    if not path.is_file():
        raise UserError(f"{path}: input file not found")
    encoding = encoding_of(path)
    given = fmt
    fmt = fmt or detect_format(path)
    if fmt == "classical":
        yield from _read_classical(path, path.read_text(encoding=encoding))
        return
    if fmt == "csv":
        csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))  # a whole scraped page is one field
        with open(path, encoding=encoding, newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t" if path.suffix == ".tsv" else ",")
            try:
                alpaca = {"instruction", "output"} <= set(reader.fieldnames or ())
                yield from _from_rows(path, reader, alpaca, fields)
            except csv.Error as exc:
                raise UserError(f"{path}:{reader.line_num}: not readable as CSV ({exc})") from None
        return
    rows = _json_lines(path, encoding)
    first = next(rows, None)
    if first is None:  # not JSON Lines: a JSON list (or what is neither), read whole
        rows = iter(_json_rows(path, path.read_text(encoding=encoding)))
        first = next(rows, None)
    if first is None:
        return
    alpaca = fmt == "alpaca" or (given is None and _alpaca_columns(first))
    yield from _from_rows(path, itertools.chain([first], rows), alpaca, fields)


def _json_lines(path: Path, encoding: str) -> Iterator:
    """The rows of a JSON Lines file a line at a time (a bad line becomes a `BadLine`); nothing when the first line
    that holds anything is not one JSON object (a JSON list, or an object spread over lines)."""
    with open(path, encoding=encoding) as fh:
        started = False
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                row = BadLine(n)
            if not started:
                if not isinstance(row, dict) or not line.lstrip("\ufeff \t").startswith("{"):
                    return
                started = True
            yield row


def _alpaca_columns(row) -> bool:
    """The first row has alpaca's columns (a file zhouyi, or the tutorial, already shaped)."""
    return isinstance(row, dict) and {"instruction", "output"} <= set(row)


_FRONT_MATTER = re.compile(r"\A---\s*\n(?P<meta>.*?)\n---\s*\n(?P<body>.*)\Z", re.S)


def _html_page(page: Path, source: str, html: str) -> tuple[Record | None, str]:
    """A saved web page as a record: its dream from the title, its text the extractor's main content; (None, why)
    when it has none."""
    if len(html) > extract.MAX_PAGE_BYTES:
        return None, f"larger than {extract.MAX_PAGE_BYTES >> 20} MB: not a dream page"
    try:
        text = extract.main_content(html)
    except extract.NoContent as exc:
        return None, str(exc)
    except RecursionError:
        return None, "markup nested too deep to read"
    return Record(source, extract.title_of(html) or page.stem, text), ""


def _read_markdown_folder(folder: Path, title_fields: tuple[str, ...]) -> Iterator[Record | Skipped]:
    """Every *.md below `folder` is one page: front matter `title:` (else the file name) and the body; every
    *.html / *.htm page likewise, its <title> (the part before the site's name) or <h1> the title, its main content
    (zhouyi.data.extract) the text."""
    pages = sorted(p for pattern in ("*.md", "*.html", "*.htm") for p in folder.rglob(pattern))
    if not pages:
        raise UserError(f"{folder}: a folder, but it holds no *.md or *.html pages")
    for page in pages:
        source = str(page.relative_to(folder))
        try:
            text = decode(page, html=page.suffix in (".html", ".htm"))
        except UserError as exc:
            yield Skipped(source, str(exc))
            continue
        if page.suffix in (".html", ".htm"):
            record, why = _html_page(page, source, text)
            yield Skipped(source, why) if record is None else record
            continue
        match = _FRONT_MATTER.match(text)
        meta, body = (match["meta"], match["body"]) if match else ("", text)
        fields = dict(re.findall(r"^(\w+):\s*(.+?)\s*$", meta, re.M))
        title = next((fields[k].strip("'\"") for k in title_fields if fields.get(k)), page.stem)
        yield Record(source, title, body) if body.strip() else Skipped(source, "empty page")


def _json_rows(path: Path, text: str) -> list:
    try:
        return json_rows(text)
    except ValueError as exc:
        raise UserError(f"{path}: {exc}") from None


def _from_rows(path: Path, rows: Iterable, alpaca: bool, fields: tuple[tuple[str, ...], tuple[str, ...]]
               ) -> Iterator[Record | Skipped]:
    title_fields, text_fields = fields
    for i, row in enumerate(rows):
        source = f"{path.name}#{i}"
        if isinstance(row, BadLine):
            yield Skipped(source, f"line {row.line} is not valid JSON")
            continue
        if not isinstance(row, dict):
            yield Skipped(source, "row is not a JSON object")
            continue
        if alpaca:
            question = "\n".join(str(row.get(k) or "").strip() for k in ("instruction", "input")).strip()
            text = row.get("output")
            title = str(row.get("input") or row.get("instruction") or "")
        else:
            title = next((row[k] for k in title_fields if isinstance(row.get(k), str)), None)
            text = next((row[k] for k in text_fields if isinstance(row.get(k), str)), None)
            question = None
        if not isinstance(text, str) or not text.strip() or title is None:
            yield Skipped(source, f"missing title or text: its fields are {', '.join(map(str, row))}; a title is "
                                  f"read from {'/'.join(title_fields)}, a text from {'/'.join(text_fields)}",
                          tuple(str(k) for k, v in row.items() if isinstance(v, str)))
            continue
        yield Record(source, str(title).strip(), text, question if alpaca else None)


_VERSE = re.compile(r"^(?P<verse>[^《》]+?)[。．.]?《(?P<book>[^》]+)》\s*$")


def _read_classical(path: Path, text: str) -> Iterator[Record | Skipped]:
    """Section headers (`天地 日月 星辰`) followed by `verse。《book》` lines: one record per section."""
    header, verses, start = None, [], 0
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        match = _VERSE.match(line)
        if match:
            verses.append(f"{match['verse']}。《{match['book']}》")
        elif "《" in line or "。" in line:
            yield Skipped(f"{path.name}#{n}", "line is neither a section header nor a verse")
        else:
            if header and verses:
                yield Record(f"{path.name}#{start}", header, "\n".join(verses))
            header, verses, start = line, [], n
    if header and verses:
        yield Record(f"{path.name}#{start}", header, "\n".join(verses))
