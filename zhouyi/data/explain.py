"""`zhouyi data explain FILE ROW`: what cleaning did to one input row, rule by rule, and whether it stays."""

from __future__ import annotations

from pathlib import Path

from zhouyi.data.clean import CleanOptions, drop_reason, finish, keyword, question, to_simplified
from zhouyi.data.readers import read_file
from zhouyi.data.rules import apply_rules
from zhouyi.errors import UserError


def explain(path: Path, row: int, opts: CleanOptions) -> list[str]:
    read = read_file(path, opts.settings.format, opts.settings.title_fields, opts.settings.text_fields)
    if not 0 <= row < len(read.records):
        raise UserError(f"ROW {row}: {path} has {len(read.records)} readable records (0..{len(read.records) - 1})"
                        + (f"; {len(read.skipped)} unreadable rows were skipped" if read.skipped else ""))
    rec = read.records[row]
    if opts.settings.t2s:
        (rec,), _ = to_simplified([rec])
    lines = [f"record {row} of {path} ({rec.source})", f"title: {rec.title}", "before:", _indent(rec.text), ""]
    text: str | None = rec.text
    for rule in opts.rules:
        after, fired = apply_rules(text, (rule,))
        if not fired:
            continue
        lines.append(f"rule {rule.name} ({rule.action}): {rule.description}")
        if after is None:
            lines += ["  the row is dropped", ""]
            return [*lines, "verdict: dropped by rule " + rule.name]
        lines += [_indent(after), ""]
        text = after
    finished = finish(text)
    if finished != text:
        lines += ["last sentence finished (full stop added, or an unfinished tail trimmed):", _indent(finished), ""]
    reason = drop_reason(finished, opts)
    if reason:
        return [*lines, f"verdict: dropped ({reason})"]
    q = rec.question or question(rec.title, opts.settings.seed)
    return [*lines, f"verdict: kept as '{q}' (keyword '{keyword(rec.title)}'), unless an identical or near-identical "
                    "text of the same dream comes first"]


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.strip().splitlines()) or "  (empty)"
