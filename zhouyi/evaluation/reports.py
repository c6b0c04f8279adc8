"""`zhouyi eval`'s reports as Markdown: one run (base against tuned), or several runs in one table; every difference
with its 95% interval and the verdict the interval gives, the forgetting check, and flagged answers traced to their
training rows. Pure: report dicts (zhouyi.evaluation.evaluate) in, text out."""

from __future__ import annotations

from pathlib import Path

from zhouyi.evaluation.answers import METRICS
from zhouyi.evaluation.checks import CHECKS

COLUMN_LABELS = {"reference": "reference", "base": "base", "tuned": "tuned", "base_no_system": "base, no system prompt",
                 "tuned_no_system": "tuned, no system prompt"}
CHECK_LABELS = {check.name: check.label for check in CHECKS}
HOW = ("Intervals: 95%, paired over the questions (the same questions to both models): a metric's mean difference "
       "by a seeded bootstrap, a share by Wilson's interval, a share's difference by the exact McNemar test. "
       "\"better\" or \"worse\" only where the interval excludes no difference (for shares: McNemar's p < 0.05); "
       "otherwise \"no clear difference\".")


def to_markdown(report: dict) -> str:
    lines = [f"# Evaluation of {Path(report['run']).name}", "",
             f"{report['rows']} held-out questions, greedy answers (max {report['settings']['max_new_tokens']} new "
             "tokens), scored by LLaMA-Factory (character BLEU-4, jieba-segmented ROUGE)."]
    comparisons = {(c["a"], c["b"]): c for c in report.get("comparisons", [])}
    for suffix, title in (("", "metric"), ("_no_system", "metric, no system prompt")):
        base, tuned = report["metrics"].get("base" + suffix), report["metrics"].get("tuned" + suffix)
        if base is None or tuned is None:
            continue
        found = comparisons.get(("base" + suffix, "tuned" + suffix), {})
        lines += ["", f"| {title} | base | tuned | change | 95% interval | verdict |", "|---|---:|---:|---:|---|---|"]
        lines += [f"| {m.upper()} | {base[m]:.2f} | {tuned[m]:.2f} | {tuned[m] - base[m]:+.2f} | "
                  + _interval_cells(found, "metrics", m) for m in METRICS if m in base and m in tuned]
    c = report["checks"]
    columns = [w for w in COLUMN_LABELS if w in c]
    lines += ["", "| share of answers | " + " | ".join(COLUMN_LABELS[w] for w in columns) + " |",
              "|---|" + "---:|" * len(columns)]
    for key, label in CHECK_LABELS.items():
        if key in c["tuned"]:
            lines.append(f"| {label} | " + " | ".join(f"{c[w][key]:.0%}" if key in c[w] else "-" for w in columns)
                         + " |")
    lines.append("| length / reference length | " + " | ".join(f"{c[w]['length_ratio']:.2f}" for w in columns) + " |")
    for found in comparisons.values():
        lines += share_table(found)
    lines += ["", HOW if comparisons else "", "",
              "In voice: no modern-assistant words (" + "、".join(report["settings"]["off_voice_markers"]) +
              ") and at least one of " + "、".join(report["settings"]["voice_markers"]) + "."]
    if report.get("forgetting"):
        lines += forgetting_lines(report["forgetting"])
    if report.get("traces") is not None:
        lines += trace_lines(report["traces"])
    if report["loss_curve"]:
        lines += ["", f"![training loss]({report['loss_curve']})"]
    for n, s in enumerate(report["samples"], 1):
        lines += ["", f"## {n}. {_one_line(s['question'])}", "", "| | answer |", "|---|---|"]
        lines += [f"| {COLUMN_LABELS[w]} | {_one_line(s[w])} |" for w in columns if w in s]
    return "\n".join(lines) + "\n"


def _interval_cells(found: dict, part: str, name: str) -> str:
    """'[low, high] | verdict |' for one measure of a comparison, or why there is none."""
    if "too_few" in found:
        return f"none: {found['too_few']} | - |"
    got = found.get(part, {}).get(name)
    if got is None:
        return "- | - |"
    scale = 100 if part == "shares" else 1
    unit = " pts" if part == "shares" else ""
    return f"[{got['low'] * scale:+.1f}, {got['high'] * scale:+.1f}]{unit} | {got['verdict']} |"


def share_table(found: dict) -> list[str]:
    """A comparison's shares: each model's with its interval, the change, McNemar's p and the verdict."""
    a, b = COLUMN_LABELS.get(found["a"], found["a"]), COLUMN_LABELS.get(found["b"], found["b"])
    if "too_few" in found:
        return ["", f"{b} against {a}: no intervals ({found['too_few']})."]
    lines = ["", f"| {b} against {a} | {a} | {b} | change | 95% interval | McNemar p | verdict |",
             "|---|---:|---:|---:|---|---:|---|"]
    for key, got in found["shares"].items():
        p = f"{got['mcnemar_p']:.3f}" if "mcnemar_p" in got else "-"
        lines.append(f"| {CHECK_LABELS[key]} | {_share(got['a'])} | {_share(got['b'])} | {got['diff'] * 100:+.0f} pts "
                     f"| [{got['low'] * 100:+.0f}, {got['high'] * 100:+.0f}] pts | {p} | {got['verdict']} |")
    return lines


def _share(got: dict) -> str:
    return f"{got['share']:.0%}" + (f" [{got['low']:.0%}, {got['high']:.0%}]" if "low" in got else "")


def forgetting_lines(f: dict) -> list[str]:
    drift = f["drift"]
    interval = f" [{drift['low']:+.3f}, {drift['high']:+.3f}]" if "low" in drift else " (no interval: too few prompts)"
    bleed = f["bleed"]
    lines = ["", "## Forgetting: general prompts, no system prompt", "",
             f"{f['prompts']} general prompts (everyday questions, cooking, travel, arithmetic, code, history).", "",
             "| measure | base | tuned | change (95% interval) |", "|---|---:|---:|---|",
             f"| NLL per token of the base's own answers | {f['nll']['base']:.3f} | {f['nll']['tuned']:.3f} | "
             f"drift {drift['mean']:+.3f}{interval} |",
             f"| domain bleed (dreams, omens or the persona, unasked) | {_share(bleed['a'])} | {_share(bleed['b'])} | "
             + (f"{bleed['diff'] * 100:+.0f} pts [{bleed['low'] * 100:+.0f}, {bleed['high'] * 100:+.0f}], McNemar p "
                f"{bleed['mcnemar_p']:.3f}: {bleed['verdict']} |" if "diff" in bleed else "- |")]
    bled = [p for p in f["per_prompt"] if p["tuned_bleeds"]][:3]
    for p in bled:
        lines += ["", f"- {_one_line(p['prompt'])} → {_one_line(p['tuned'])[:200]}"]
    return lines


def trace_lines(traces: list[dict]) -> list[str]:
    lines = ["", "## Flagged answers traced to training rows", ""]
    if not traces:
        return lines + ["No tuned answer was flagged (boilerplate, out of voice, repeating)."]
    for t in traces:
        lines.append(f"- question {t['question'] + 1}, {COLUMN_LABELS.get(t['model'], t['model'])}, {t['label']}: "
                     f"“{_one_line(t['stretch'])[:80]}”")
        for r in t["rows"]:
            rule = f"rule `{r['rule']}` would have removed it" if r["rule"] else "no rule matched"
            lines.append(f"  - {r['file']} row {r['row']} shares “{_one_line(r['shared'])[:60]}”: {rule}")
        if t["next"]:
            lines.append(f"  - next: {t['next']}")
    return lines


def comparison_markdown(table: dict) -> str:
    columns = [c for c in table["checks"] if c != "reference"]
    lines = [f"# {len(table['runs'])} runs on {table['rows']} held-out questions", "",
             "Greedy answers (max " + str(table["settings"]["max_new_tokens"]) + " new tokens); runs: "
             + ", ".join(Path(r).name for r in table["runs"]) + ".", "",
             "| metric | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    lines += [f"| {m.upper()} | " + " | ".join(_metric_cell(table, c, m) for c in columns) + " |" for m in METRICS]
    everything = ["reference", *columns]
    lines += ["", "| share of answers | " + " | ".join(everything) + " |", "|---|" + "---:|" * len(everything)]
    for key, label in CHECK_LABELS.items():
        if key == "empty":
            continue
        lines.append(f"| {label} | " + " | ".join(f"{table['checks'][c][key]:.0%}" if key in table["checks"][c]
                                                  else "-" for c in everything) + " |")
    for found in table.get("comparisons", []):
        lines += ["", f"| {found['b']} against {found['a']} | change | 95% interval | verdict |", "|---|---:|---|---|"]
        if "too_few" in found:
            lines.append(f"| all | - | none: {found['too_few']} | - |")
            continue
        lines += [f"| {m.upper()} | {got['diff']:+.2f} | [{got['low']:+.2f}, {got['high']:+.2f}] | {got['verdict']} |"
                  for m, got in found["metrics"].items()]
        lines += [f"| {CHECK_LABELS[k]} | {got['diff'] * 100:+.0f} pts | [{got['low'] * 100:+.0f}, "
                  f"{got['high'] * 100:+.0f}] pts" + (f", McNemar p {got['mcnemar_p']:.3f}" if "mcnemar_p" in got
                                                     else "") + f" | {got['verdict']} |"
                  for k, got in found["shares"].items()]
    if table.get("comparisons"):
        lines += ["", HOW]
    for n, sample in enumerate(table["samples"], 1):
        lines += ["", f"## {n}. {_one_line(sample['question'])}", "", "| | answer |", "|---|---|"]
        lines += [f"| {c} | {_one_line(sample[c])} |" for c in everything if c in sample]
    return "\n".join(lines) + "\n"


def _metric_cell(table: dict, column: str, metric: str) -> str:
    if metric not in table["metrics"].get(column, {}):
        return "-"
    cell = f"{table['metrics'][column][metric]:.2f}"
    spread = table.get("seeds", {}).get(column, {}).get(metric)
    return cell + (f" (seeds {spread['min']:.1f}–{spread['max']:.1f}, sd {spread['sd']:.1f})" if spread else "")


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|") or "(empty)"
