"""`zhouyi data clean`: read inputs, clean, write train/eval alpaca files and the report, register them."""

from __future__ import annotations

import json
from pathlib import Path

from zhouyi.data.clean import CleanOptions, CleanResult, clean, han_count
from zhouyi.data.readers import read_file
from zhouyi.errors import UserError
from zhouyi.files import atomic_write, write_json
from zhouyi.registry import DATASET_INFO, merge_entries
from zhouyi.render import dataset_entry
from zhouyi.spec import ALPACA_COLUMNS, DatasetEntry


def eval_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}_eval{output.suffix}")


def run_clean(inputs: list[Path], output: Path, report_dir: Path | None, opts: CleanOptions,
              register: bool = True, echo=print) -> CleanResult:
    output = Path(output).resolve()
    if any(Path(i).resolve() in (output, eval_path(output)) for i in inputs):
        raise UserError(f"output {output} is one of the inputs; write the cleaned data elsewhere")
    records, skipped = [], []
    for path in inputs:
        read = read_file(Path(path), opts.settings.format, opts.settings.title_fields, opts.settings.text_fields)
        records += read.records
        skipped += read.skipped
        echo(f"read {path}: {len(read.records)} records" + (f", {len(read.skipped)} skipped" if read.skipped else ""),
             flush=True)
    result = clean(records, skipped, opts)
    if not result.train:
        raise UserError(f"every row was filtered out ({result.report['drops']}); nothing written or registered")
    atomic_write(output, json.dumps(result.train, ensure_ascii=False, indent=1) + "\n")
    if result.eval:
        atomic_write(eval_path(output), json.dumps(result.eval, ensure_ascii=False, indent=1) + "\n")
    if report_dir:
        write_report(Path(report_dir), result.report)
        write_histogram(Path(report_dir) / "lengths.png", [han_count(r.text) for r in records],
                        [han_count(r["output"]) for r in result.train + result.eval])
    if register:
        columns = ALPACA_COLUMNS.model_copy(update={"system": "system"} if opts.settings.persona_as == "system" else {})
        files = {output.stem: output.name} | ({f"{output.stem}_eval": eval_path(output).name} if result.eval else {})
        # constructed unchecked: a dataset name taken from a file name need not fit a spec's name pattern
        entries = {name: dataset_entry(DatasetEntry.model_construct(name=name, file_name=file, columns=columns))
                   for name, file in files.items()}
        merge_entries(output.parent / DATASET_INFO, entries)
    return result


def write_histogram(path: Path, before: list[int], after: list[int]) -> None:
    """Output length in Han characters before and after cleaning, as a PNG beside the report."""
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
    tmp = path.with_suffix(".png.tmp")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    tmp.replace(path)


def write_report(folder: Path, report: dict) -> None:
    write_json(folder / "report.json", report)
    lines = ["# Data cleaning report", "",
             f"Rows in: {report['rows_in']}; rows out: {report['rows_out']} "
             f"(train {report['train_rows']}, eval {report['eval_rows']}).", "",
             "## Drops", "", "| reason | rows |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in report["drops"].items()]
    lines += ["", "## Rule hits", "", "| rule | rows |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in report["rule_hits"].items()]
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
    atomic_write(folder / "report.md", "\n".join(lines) + "\n")
