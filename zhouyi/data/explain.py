"""`zhouyi data explain FILE ROW`: what cleaning did to one input row, rule by rule, and whether it stays."""

from __future__ import annotations

from pathlib import Path

from zhouyi.data.clean import CleanOptions, drop_reason, finish, keyword, prepare, question, to_simplified
from zhouyi.data.readers import read_file
from zhouyi.data.rules import apply_rules
from zhouyi.errors import UserError


def explain(path: Path, row: int, opts: CleanOptions) -> list[str]:
    read = read_file(path, opts.settings.format, opts.settings.title_fields, opts.settings.text_fields)
    if not 0 <= row < len(read.records):
        raise UserError(f"ROW {row}: {path} has {len(read.records)} readable records (0..{len(read.records) - 1})"
                        + (f"; {len(read.skipped)} unreadable rows were skipped" if read.skipped else ""))
    records = to_simplified(read.records)[0] if opts.settings.t2s else read.records
    rec = records[row]
    lines = [f"record {row} of {path} ({rec.source})", f"title: {rec.title}", "before:", _indent(rec.text), ""]
    prepared = prepare(records, opts)  # the site's templates are learnt from the whole file, as cleaning learns them
    made_plain = prepare([rec], CleanOptions(opts.settings.model_copy(update={"learn_templates": False,
                                                                             "templates": []}), opts.persona))
    if made_plain.markup:
        lines += [f"made plain ({', '.join(made_plain.markup)}):", _indent(made_plain.records[0].text), ""]
    for template, gone in prepared.removed[row]:
        origin = f"learnt from {template.pages} pages of {template.site}" if template.learnt else \
            f"known, from {template.site}"
        lines.append(f"template ({origin}): {template.pattern}\n  removed: {gone}")
    if prepared.removed[row]:
        lines += ["", "after the templates:", _indent(prepared.records[row].text), ""]
    text: str | None = prepared.records[row].text
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
