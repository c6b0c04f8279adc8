"""Readers: scraped dream data in its several shapes -> `Record`s (title, text, optional question).

One bad row is skipped and reported, never a crash; undecodable input is an error naming file and byte.
"""

from __future__ import annotations

import csv
import io
import re
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


@dataclass
class ReadResult:
    records: list[Record] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source, why)
    fields_seen: list[str] = field(default_factory=list)  # a skipped row's text fields, to suggest the flags


CSV_FIELD_LIMIT = 64 << 20  # bytes


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


def detect_format(path: Path) -> str:
    """The format a file's name says; JSON files are `records` until their first row shows alpaca columns."""
    if path.suffix == ".txt":
        return "classical"
    if path.suffix in (".csv", ".tsv"):
        return "csv"
    return "records"


def read_file(path: Path, fmt: str | None = None, title_fields: tuple[str, ...] = TITLE_FIELDS,
              text_fields: tuple[str, ...] = TEXT_FIELDS) -> ReadResult:
    """Read one input: a JSON/JSONL/CSV/TSV/classical file, or a folder of markdown pages.

    Records take their title and text from the first of `title_fields` / `text_fields` a row has.
    """
    fields = (tuple(title_fields), tuple(text_fields))
    path = Path(path)
    if path.is_dir() and fmt in (None, "markdown"):
        return _read_markdown_folder(path, fields[0])
    if not path.is_file():
        raise UserError(f"{path}: input file not found")
    text = decode(path)
    if not text.strip():
        raise UserError(f"{path}: the file is empty")
    given = fmt
    fmt = fmt or detect_format(path)
    if fmt == "classical":
        return _read_classical(path, text)
    if fmt == "csv":
        csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))  # a whole scraped page is one field
        reader = csv.DictReader(io.StringIO(text), delimiter="\t" if path.suffix == ".tsv" else ",")
        try:
            rows = list(reader)
        except csv.Error as exc:
            raise UserError(f"{path}:{reader.line_num}: not readable as CSV ({exc})") from None
        return _from_rows(path, rows, _alpaca_columns(rows), fields)
    rows = _json_rows(path, text)
    return _from_rows(path, rows, fmt == "alpaca" or (given is None and _alpaca_columns(rows)), fields)


def _alpaca_columns(rows: list) -> bool:
    """The first row has alpaca's columns (a file zhouyi, or the tutorial, already shaped)."""
    return bool(rows) and isinstance(rows[0], dict) and {"instruction", "output"} <= set(rows[0])


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


def _read_markdown_folder(folder: Path, title_fields: tuple[str, ...]) -> ReadResult:
    """Every *.md below `folder` is one page: front matter `title:` (else the file name) and the body; every
    *.html / *.htm page likewise, its <title> (the part before the site's name) or <h1> the title, its main content
    (zhouyi.data.extract) the text."""
    result = ReadResult()
    pages = sorted(p for pattern in ("*.md", "*.html", "*.htm") for p in folder.rglob(pattern))
    if not pages:
        raise UserError(f"{folder}: a folder, but it holds no *.md or *.html pages")
    for page in pages:
        source = str(page.relative_to(folder))
        try:
            text = decode(page, html=page.suffix in (".html", ".htm"))
        except UserError as exc:
            result.skipped.append((source, str(exc)))
            continue
        if page.suffix in (".html", ".htm"):
            record, why = _html_page(page, source, text)
            if record is None:
                result.skipped.append((source, why))
            else:
                result.records.append(record)
            continue
        match = _FRONT_MATTER.match(text)
        meta, body = (match["meta"], match["body"]) if match else ("", text)
        fields = dict(re.findall(r"^(\w+):\s*(.+?)\s*$", meta, re.M))
        title = next((fields[k].strip("'\"") for k in title_fields if fields.get(k)), page.stem)
        if not body.strip():
            result.skipped.append((source, "empty page"))
            continue
        result.records.append(Record(source, title, body))
    return result


def _json_rows(path: Path, text: str) -> list:
    try:
        return json_rows(text)
    except ValueError as exc:
        raise UserError(f"{path}: {exc}") from None


def _from_rows(path: Path, rows: list, alpaca: bool, fields: tuple[tuple[str, ...], tuple[str, ...]]) -> ReadResult:
    title_fields, text_fields = fields
    result = ReadResult()
    for i, row in enumerate(rows):
        source = f"{path.name}#{i}"
        if isinstance(row, BadLine):
            result.skipped.append((source, f"line {row.line} is not valid JSON"))
            continue
        if not isinstance(row, dict):
            result.skipped.append((source, "row is not a JSON object"))
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
            result.skipped.append((source, f"missing title or text: its fields are {', '.join(map(str, row))}; "
                                           f"a title is read from {'/'.join(title_fields)}, a text from "
                                           f"{'/'.join(text_fields)}"))
            result.fields_seen = result.fields_seen or [str(k) for k, v in row.items() if isinstance(v, str)]
            continue
        result.records.append(Record(source, str(title).strip(), text, question if alpaca else None))
    return result


_VERSE = re.compile(r"^(?P<verse>[^《》]+?)[。．.]?《(?P<book>[^》]+)》\s*$")


def _read_classical(path: Path, text: str) -> ReadResult:
    """Section headers (`天地 日月 星辰`) followed by `verse。《book》` lines: one record per section."""
    result = ReadResult()
    header, verses, start = None, [], 0

    def flush():
        if header and verses:
            result.records.append(Record(f"{path.name}#{start}", header, "\n".join(verses)))

    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        match = _VERSE.match(line)
        if match:
            verses.append(f"{match['verse']}。《{match['book']}》")
        elif "《" in line or "。" in line:
            result.skipped.append((f"{path.name}#{n}", "line is neither a section header nor a verse"))
        else:
            flush()
            header, verses, start = line, [], n
    flush()
    return result
