"""The cleaning audit a person can look at: a sample of pages with every span the cleaning removed marked where it
sat and labelled by the rule or template that removed it, the suspicious removals (spans the content guard kept)
first; written as `report.html` beside report.md, one self-contained file (no script, no network).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

PAGES = 40  # pages the audit shows: every suspicious one first (up to half), then the first pages with removals


@dataclass
class AuditSample:
    suspicious: list[dict] = field(default_factory=list)
    ordinary: list[dict] = field(default_factory=list)

    def offer(self, source: str, title: str, before: str, removed: list[tuple[str, str]], kept: list[tuple[str, str]]
              ) -> None:
        """One page's text as the rules first saw it, what was removed from it and what the guard kept."""
        if not removed and not kept:
            return
        into = self.suspicious if kept else self.ordinary
        if len(into) < PAGES:
            into.append({"source": source, "title": title, "text": before, "removed": removed, "kept": kept})

    def pages(self) -> list[dict]:
        chosen = self.suspicious[:PAGES // 2]
        return chosen + self.ordinary[:PAGES - len(chosen)]

    def suspicious_examples(self, count: int = 10) -> list[dict]:
        return [{"source": p["source"], "rule": rule, "span": span[:200]}
                for p in self.suspicious for rule, span in p["kept"]][:count]


def marked(text: str, removed: list[tuple[str, str]], kept: list[tuple[str, str]]) -> tuple[str, list]:
    """The text as HTML with each span marked in place (the first unmarked place it occurs); the spans that were
    not found in place (a rule that matched across what an earlier step changed) are returned to be listed."""
    marks: list[tuple[int, int, str, str]] = []  # start, end, label, kind
    elsewhere = []
    for kind, spans in (("removed", removed), ("kept", kept)):
        for label, span in spans:
            span = span.strip()
            if not span:
                continue
            start = 0
            while (at := text.find(span, start)) >= 0:
                if not any(at < e and at + len(span) > s for s, e, _, _ in marks):
                    marks.append((at, at + len(span), label, kind))
                    break
                start = at + 1
            else:
                elsewhere.append((label, span, kind))
    out, cursor = [], 0
    for start, end, label, kind in sorted(marks):
        out.append(html.escape(text[cursor:start]))
        out.append(f'<mark class="{kind}" data-label="{html.escape(label)}">{html.escape(text[start:end])}'
                   f'<sup>{html.escape(label)}</sup></mark>')
        cursor = end
    out.append(html.escape(text[cursor:]))
    return "".join(out).replace("\n", "<br>\n"), elsewhere


STYLE = """body{font:15px/1.7 "Noto Sans CJK SC",sans-serif;max-width:60em;margin:2em auto;color:#222}
mark.removed{background:#fdd;text-decoration:line-through;color:#900}mark.kept{background:#ffe08a}
mark sup{font-size:10px;color:#555;text-decoration:none;margin-left:2px}
.page{border:1px solid #ccc;border-radius:6px;padding:0.5em 1em;margin:1em 0}
.page.suspicious{border-color:#d9a400}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}
td.n{text-align:right}"""


def report_html(report: dict) -> str:
    """The audit page of a cleaning report (zhouyi.data.clean's `report`)."""
    e = html.escape
    s = report.get("suspicious_removals", {})
    parts = [f"<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>zhouyi data clean: audit"
             f"</title><style>{STYLE}</style></head><body>",
             "<h1>What the cleaning removed, and why</h1>",
             f"<p id=\"summary\">Rows in: <b>{report['rows_in']}</b>; rows out: <b>{report['rows_out']}</b>. "
             f"Suspicious removals kept (a span holding the page's dream and a word of meaning): "
             f"<b id=\"suspicious-count\">{s.get('kept', 0)}</b>. Struck through in red: removed, labelled by what "
             "removed it; in yellow: what a rule matched but the content guard kept.</p>",
             "<h2>Rules</h2><table id=\"rules\"><tr><th>rule</th><th>rows</th><th>sentences removed</th>"
             "<th>suspicious, kept</th></tr>"]
    removed = report.get("sentences_removed", {})
    for name, rows in report.get("rule_hits", {}).items():
        parts.append(f"<tr><td>{e(name)}</td><td class=\"n\">{rows}</td><td class=\"n\">{removed.get(name, 0)}</td>"
                     f"<td class=\"n\">{s.get('by_rule', {}).get(name, 0)}</td></tr>")
    parts.append("</table><h2>Templates learnt from the pages</h2><table id=\"templates\"><tr><th>site</th>"
                 "<th>pages</th><th>template</th><th>suspicious pages (kept)</th></tr>")
    for t in report.get("templates", []):
        parts.append(f"<tr><td>{e(t['site'])}</td><td class=\"n\">{t['pages']}</td><td>{e(t['pattern'])}</td>"
                     f"<td class=\"n\">{t['suspicious_pages']}</td></tr>")
    parts.append("</table>")
    pages = report.get("audit", [])
    parts.append(f"<h2>A sample of pages ({len(pages)})</h2>")
    for p in pages:
        body, elsewhere = marked(p["text"], p["removed"], p["kept"])
        kind = "page suspicious" if p["kept"] else "page"
        parts.append(f"<section class=\"{kind}\" data-source=\"{e(p['source'])}\"><h3>{e(p['title'])} "
                     f"<small>{e(p['source'])}</small></h3><p>{body}</p>")
        if elsewhere:
            parts.append("<p>Also removed: " + "; ".join(f"<mark class=\"{k}\" data-label=\"{e(label)}\">{e(span)}"
                                                         f"<sup>{e(label)}</sup></mark>"
                                                         for label, span, k in elsewhere) + "</p>")
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
