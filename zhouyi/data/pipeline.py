"""`zhouyi data clean`: read inputs, clean, write train/eval alpaca files and the report, register them."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from zhouyi.data.audit import report_html
from zhouyi.data.clean import CleanOptions, CleanResult, clean
from zhouyi.data.readers import Record, Skipped, read_rows
from zhouyi.errors import UserError
from zhouyi.files import Data, commit, locked, refuse_foreign, written_by_zhouyi
from zhouyi.layout import DATASET_INFO, LENGTHS_PNG, REPORT_HTML, REPORT_JSON, REPORT_MD, kept_by_zhouyi
from zhouyi.registry import merge_entries, read_registry
from zhouyi.render import dataset_entry
from zhouyi.spec import ALPACA_COLUMNS, DatasetEntry


def eval_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}_eval{output.suffix}")


REPORT_FILES = (REPORT_JSON, REPORT_MD, REPORT_HTML, LENGTHS_PNG)


def outputs_of(output: Path, report_dir: Path | None, save_templates: Path | None) -> dict[str, Path]:
    """Every file one cleaning writes, by the flag that names it."""
    found = {"-o": output, "the eval split": eval_path(output)}
    if report_dir is not None:
        found |= {f"--report's {name}": Path(report_dir) / name for name in REPORT_FILES}
    if save_templates is not None:
        found["--save-templates"] = Path(save_templates)
    return found


def apart(files: dict[str, Path], registry: Path) -> None:
    """No two of a command's files (its outputs, and an output and an input) are one file, and no output is the
    registry: else one would overwrite the other. Links are followed: two names of one file are one file."""
    seen: dict[Path, str] = {registry.resolve(): "the registry (dataset_info.json)"}
    for flag, path in files.items():
        real = Path(path).resolve()
        other = seen.get(real)
        if other is None or flag.startswith("input") and other.startswith("input"):
            seen.setdefault(real, flag)
            continue
        if flag.startswith("input"):
            raise UserError(f"output {path} ({other}) is one of the inputs; write it elsewhere; nothing was written")
        raise UserError(f"{flag} and {other} are the same file ({path}): each output needs a file of its own; "
                        "nothing was written")


def run_clean(inputs: list[Path], output: Path, report_dir: Path | None, opts: CleanOptions,
              register: bool = True, force: bool = False, echo=print, save_templates: Path | None = None
              ) -> CleanResult:
    """Everything is checked first (inputs, what would be overwritten, the registry), then the data, eval split,
    report and registry entries are written as one unit. A re-run without an eval split removes the eval file it
    wrote before (and its entry): stale eval rows would now also be in train."""
    output = Path(output).absolute()
    registry = output.parent / DATASET_INFO
    if kept := kept_by_zhouyi(output):
        raise UserError(f"-o {output}: {kept}, which zhouyi keeps for itself; write the cleaned data to another "
                        f"file, e.g. -o {output.with_name('zhougong.json')}")
    if report_dir is not None and Path(report_dir).exists() and not Path(report_dir).is_dir():
        raise UserError(f"--report {report_dir} is a file; it names the folder for report.json and report.md")
    apart(outputs_of(output, report_dir, save_templates) | {f"input {i}": Path(i) for i in inputs}, registry)
    with locked(output.parent):
        if register:
            read_registry(registry)  # a malformed registry stops everything before anything is written
        skipped: list[tuple[str, str]] = []
        result = clean(records_of(inputs, opts, skipped, echo), skipped, opts)
        if not result.count("train"):
            raise UserError(f"every row was filtered out ({result.report['drops']}); nothing written or registered")
        writes: dict[Path, Data] = {output: result.json_chunks("train")}
        removes: tuple[Path, ...] = ()
        if result.count("eval"):
            writes[eval_path(output)] = result.json_chunks("eval")
        elif written_by_zhouyi(eval_path(output)):
            removes = (eval_path(output),)
        elif eval_path(output).exists():
            echo(f"note: {eval_path(output)} is left as it is (zhouyi did not write it); this cleaning made no eval "
                 "split", flush=True)
        refuse_foreign(writes, force)
        if report_dir:
            report_files = {Path(report_dir) / REPORT_JSON: json.dumps(result.report, ensure_ascii=False, indent=2)
                            + "\n", Path(report_dir) / REPORT_MD: report_markdown(result.report),
                            Path(report_dir) / REPORT_HTML: report_html(result.report),
                            Path(report_dir) / REPORT_FILES[-1]: histogram_png(result.lengths_in, result.lengths_out)}
            refuse_foreign(report_files, force, what="--report")
            writes |= report_files
        if save_templates is not None:
            saved = {Path(save_templates): json.dumps(
                [{k: t[k] for k in ("pattern", "pages", "site", "example")} for t in result.report["templates"]
                 if t["learnt"] and not t["suspicious_pages"]], ensure_ascii=False, indent=1) + "\n"}
            refuse_foreign(saved, force, what="--save-templates")
            writes |= saved
        if register:
            entries = registry_entries(output, bool(result.count("eval")), opts)
            stale = {f"{output.stem}_eval": eval_path(output).name} if removes else {}
            merge_entries(registry, entries, force, dry_run=True)  # a conflict stops everything here
        commit(writes, removes)
        if register:
            merge_entries(registry, entries, force, remove=stale)
    return result


def records_of(inputs: list[Path], opts: CleanOptions, skipped: list[tuple[str, str]], echo=print
               ) -> Iterator[Record]:
    """Every input's records, read as they are cleaned; the rows that could not be read go to `skipped`. An input
    with no readable row stops the cleaning, naming the fields to use."""
    s = opts.settings
    for path in inputs:
        count, own, fields = 0, [], []
        for item in read_rows(Path(path), s.format, s.title_fields, s.text_fields):
            if isinstance(item, Skipped):
                own.append((item.source, item.why))
                fields = fields or list(item.fields)
                continue
            count += 1
            yield item
        if own and not count:
            raise UserError(f"{path}: no row could be read ({own[0][1]})" + (
                f". Name the fields: --title-field {fields[0]} --text-field {fields[-1]}"
                if len(fields) >= 2 else "; see --title-field, --text-field and --format"))
        skipped += own
        echo(f"read {path}: {count} records" + (f", {len(own)} skipped" if own else ""), flush=True)


def rows_text(rows: list[dict]) -> str:
    return json.dumps(rows, ensure_ascii=False, indent=1) + "\n"


def registry_entries(output: Path, with_eval: bool, opts: CleanOptions) -> dict[str, dict]:
    columns = ALPACA_COLUMNS.model_copy(update={"system": "system"} if opts.settings.persona_as == "system" else {})
    files = {output.stem: output.name} | ({f"{output.stem}_eval": eval_path(output).name} if with_eval else {})
    # constructed unchecked: a dataset name taken from a file name need not fit a spec's name pattern
    return {name: dataset_entry(DatasetEntry.model_construct(name=name, file_name=file, columns=columns))
            for name, file in files.items()}


def histogram_png(before: Sequence[int], after: Sequence[int]) -> bytes:
    """Output length in Han characters before and after cleaning, as a PNG for beside the report."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    everything = sorted([*before, *after]) or [0]
    top = max(everything[int(0.99 * (len(everything) - 1))], 10)  # the longest 1% share the last bin
    step = max(top // 50, 1)
    bins = range(0, top + 2 * step, step)
    ax.hist([min(n, top + step) for n in before], bins=bins, alpha=0.5, label=f"before ({len(before)} rows)")
    ax.hist([min(n, top + step) for n in after], bins=bins, alpha=0.6, label=f"after ({len(after)} rows)")
    ax.set_xlabel(f"Han characters per text (over {top} in the last bin)")
    ax.set_ylabel("rows")
    ax.legend()
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png")
    plt.close(fig)
    return png.getvalue()


def report_markdown(report: dict) -> str:
    cut = report["finished_rows"].get("cut to answer_paragraphs")
    lines = ["# Data cleaning report", "",
             f"Rows in: {report['rows_in']}; rows out: {report['rows_out']} "
             f"(train {report['train_rows']}, eval {report['eval_rows']}). "
             f"Kept with their last sentence finished: {report['finished_rows']['unfinished tail trimmed']} without an "
             f"unfinished tail, {report['finished_rows']['full stop added']} with a full stop added."
             + (f" Answers cut to their first paragraphs (answer_paragraphs): {cut}." if cut else "")
             + (f" Identity rows mixed into train (identity_ratio): {report['identity_rows']}."
                if report.get("identity_rows") else ""), "",
             *([f"Split: {report['split_note']}.", ""] if report["split_note"] else []),
             "## Drops", "", "| reason | rows |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in report["drops"].items()]
    lines += ["", "## Rule hits", "", "| rule | rows | sentences removed |", "|---|---|---|"]
    removed = report.get("sentences_removed", {})
    lines += [f"| {k} | {v} | {removed.get(k, 0)} |" for k, v in report["rule_hits"].items()]
    guard = report.get("suspicious_removals", {})
    if guard.get("kept"):
        lines += ["", f"Suspicious removals kept ({guard['kept']}): a rule matched a span holding the page's dream and "
                  "a word of meaning, so the span stayed: " + ", ".join(f"{k} {v}" for k, v in guard["by_rule"].items())
                  + ". Examples:", ""]
        lines += [f"- {ex['rule']} ({ex['source']}): {ex['span']}" for ex in guard["examples"]]
    lines += ["", "Every removal, marked in place on a sample of pages: [report.html](report.html)."]
    if report.get("markup"):
        done = ", ".join(f"{k} ({v} rows)" for k, v in report["markup"].items())
        lines += ["", f"Made plain before the rules: {done}."]
    templates = report.get("templates", [])
    lines += ["", "## Templates", "", f"Sentences and lines that recur across a site's pages once the page's keyword, "
              f"numbers and addresses are masked (〈K〉, 〈N〉, 〈URL〉): {len(templates)}, "
              f"{removed.get('learnt templates', 0)} removals."]
    if templates:
        lines += ["", "| site | pages | template | as one page had it | suspicious pages (kept) |",
                  "|---|---|---|---|---|"]
        lines += [f"| {t['site']} | {t['pages'] if t['learnt'] else 'known'} | {t['pattern']} | {t['example']} | "
                  f"{t['suspicious_pages']} |" for t in templates]
    lines += ["", "## Length in Han characters", "", "| | count | min | median | max | mean |",
              "|---|---|---|---|---|---|"]
    for label in ("han_length_before", "han_length_after"):
        s = report[label]
        lines.append(f"| {label.split('_')[-1]} | " + " | ".join(str(s.get(k, "")) for k in
                                                               ("count", "min", "median", "max", "mean")) + " |")
    lines += ["", "![length histogram](lengths.png)", "", "## Examples", ""]
    for rule, examples in report["examples"].items():
        for ex in examples[:2]:
            lines += [f"**{rule}** ({ex['source']})", "", "before: " + ex["before"].replace("\n", " / "),
                      "", "after: " + (ex["after"].replace("\n", " / ") or "(dropped)"), ""]
    return "\n".join(lines) + "\n"
