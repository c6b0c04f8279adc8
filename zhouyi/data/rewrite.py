"""`zhouyi data rewrite`: a teacher model behind an OpenAI-compatible endpoint rewrites each cleaned answer in the
persona's voice, keeping its meaning. Cleaning removes a scrape's dirt but cannot add what its pages never had (a
coherent interpretation in one voice); a teacher can. Nothing is trusted blindly: a rewrite that fails zhouyi's
checks (site boilerplate, repetition, a length far from the original's, the dream's keyword lost, the persona left,
too little of the original's wording kept to have kept its meaning) keeps the original, and is counted. The
original stays beside every rewrite (`original_output`), the reason in `rewrite`; the output registers like any
cleaned data, so a spec can train on it beside the cleaned one.

Answers are cached beside the output as they arrive (zhouyi.endpoint): a run stopped by Ctrl-C or SIGTERM resumes
where it stopped, and a second run sends nothing.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from zhouyi import endpoint
from zhouyi.data.clean import asked_dream, han_count
from zhouyi.data.pipeline import rows_text
from zhouyi.errors import UserError
from zhouyi.evaluation.answers import Question, has_boilerplate, loops, speaks_as_assistant
from zhouyi.files import commit, locked, read_json_rows, refuse_foreign, sole_user
from zhouyi.layout import DATASET_INFO, REPORT_JSON, REPORT_MD, kept_by_zhouyi
from zhouyi.registry import merge_entries, read_registry
from zhouyi.spec import ALPACA_COLUMNS, OFF_VOICE_MARKERS, EndpointSpec, RewriteSpec

PLACEHOLDERS = ("question", "answer")
REWRITTEN = "rewritten"


@dataclass(frozen=True)
class Job:
    """Everything a rewrite needs, checked before any request: where from and to, the teacher, its prompt."""

    input: Path
    output: Path
    report_dir: Path | None
    teacher: EndpointSpec
    settings: RewriteSpec
    prompt: object  # a jinja2.Template
    persona: str | None
    columns: dict[str, str]  # alpaca column -> the file's field (prompt, query, response, system)
    entry: dict  # the registry entry the output gets
    force: bool  # --force: replace files zhouyi did not write, repoint a registry entry
    rows: list[dict]  # the input's rows, read once

    @property
    def cache(self) -> endpoint.Cache:
        return endpoint.Cache(self.output.with_name(f"{self.output.stem}.teacher-cache.jsonl"))


def prepare(input_path: Path, output: Path | None, report_dir: Path | None, teacher: EndpointSpec | None,
            settings: RewriteSpec, persona: str | None, base_dir: Path, force: bool) -> Job:
    """The job, every check done: the input's rows, the output and report zhouyi may write, the registry, the
    teacher's key and prompt. Nothing is written and nothing is sent."""
    from zhouyi.prompts import load_prompt

    if teacher is None:
        raise UserError("data.rewrite.teacher is not set: add it to the spec (base_url, model, api_key_env; see "
                        "docs/judge.md) or give --teacher-with FILE, a YAML file of those fields")
    input_path = Path(input_path).absolute()
    if not input_path.is_file():
        raise UserError(f"{input_path}: no such file; rewrite the output of zhouyi data clean (data.clean.output)")
    output = Path(output or input_path.with_name(f"{input_path.stem}_rewritten.json")).absolute()
    if output.resolve() == input_path.resolve():
        raise UserError(f"-o {output} is the input; write the rewrite to another file")
    if kept := kept_by_zhouyi(output):
        raise UserError(f"-o {output}: {kept}, which zhouyi keeps for itself; write the rewrite to another file")
    registry = read_registry(input_path.parent / DATASET_INFO)
    alpaca = ALPACA_COLUMNS.model_dump(exclude_none=True)
    entry = next((dict(e) for e in registry.values() if e.get("file_name") == input_path.name),
                 {"formatting": "alpaca", "columns": alpaca})
    if entry.get("formatting", "alpaca") != "alpaca" or entry.get("ranking"):
        raise UserError(f"{input_path}: registered as {entry.get('formatting')} data; rewrite an alpaca file of "
                        "answers (the output of zhouyi data clean)")
    columns = alpaca | entry.get("columns", {})
    entry["file_name"] = output.name
    job = Job(input_path, output, report_dir, teacher, settings,
              load_prompt(settings.prompt, "rewrite.zh.j2", PLACEHOLDERS, "data.rewrite.prompt", base_dir),
              persona, columns, entry, force, _read_rows(input_path, columns["response"]))
    refuse_foreign(_outputs(job, "", {}), force)
    merge_entries(output.parent / DATASET_INFO, {output.stem: entry}, force, dry_run=True)
    endpoint.api_key(teacher)
    return job


def _read_rows(path: Path, response: str) -> list[dict]:
    """The input's rows; a file that is not alpaca rows of answers is named now, before any request."""
    try:
        found = read_json_rows(path)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: {exc}") from None
    bad = next((i for i, r in enumerate(found) if not isinstance(r, dict) or not isinstance(r.get(response), str)),
               None)
    if bad is not None:
        raise UserError(f"{path}: row {bad} has no '{response}' text; rewrite an alpaca file of answers")
    return found


def question(job: Job, row: dict) -> str:
    """The question as the model is asked it, without a persona the instruction column carries."""
    asked = Question(str(row.get(job.columns["prompt"]) or ""), str(row.get(job.columns.get("query") or "") or ""),
                     "", None)
    return asked.shown(job.persona)


def requests(job: Job, found: list[dict]) -> list[endpoint.Request]:
    return [endpoint.Request((("user", job.prompt.render(question=question(job, row), persona=job.persona,
                                                         answer=row[job.columns["response"]])),))
            for row in found]


STOCK = ("梦见", "梦到", "预示", "象征")  # what every answer says, whatever it means


def overlap(original: str, rewrite: str, dream: str | None) -> float:
    """The share of the original's Han character pairs the rewrite keeps, the dream's name and stock words aside: a
    crude guard against a rewrite that says something else (`梦到面包厂…要提高警觉` -> `…将获得丰厚的财运` keeps
    none)."""
    def pairs(text: str) -> set[str]:
        for word in (dream, *STOCK):
            text = text.replace(word, "|") if word else text
        han = re.sub(r"[^\u4e00-\u9fff]", "|", text)
        return {a + b for a, b in zip(han, han[1:], strict=False) if "|" not in a + b}

    before = pairs(original)
    return len(before & pairs(rewrite)) / len(before) if before else 1.0


def problem(original: str, rewrite: str, asked: str, settings: RewriteSpec) -> str | None:
    """Why a rewrite must not replace the original (its reason, as the report counts it), or None."""
    if not rewrite.strip():
        return "empty"
    if has_boilerplate(rewrite):
        return "boilerplate"
    if loops(rewrite):
        return "repetition"
    ratio = han_count(rewrite) / max(han_count(original), 1)
    if not settings.min_length_ratio <= ratio <= settings.max_length_ratio:
        return "length"
    dream = asked_dream(asked)
    if dream and dream in original and dream not in rewrite:
        return "keyword lost"
    if overlap(original, rewrite, dream) < settings.min_overlap:
        return "meaning changed"
    if speaks_as_assistant(rewrite, list(OFF_VOICE_MARKERS)):
        return "left the persona"
    return None


def rewrite(job: Job, limit: int | None, dry_run: bool, echo=print) -> dict | None:
    """Ask the teacher for every row (the first `limit`), check each rewrite, write the output, its report and its
    registry entry; `dry_run`: say what would be sent, and stop (None)."""
    found = job.rows[:limit]
    asked = requests(job, found)
    send, cached, tokens = endpoint.plan(job.teacher, asked, job.cache)
    echo(f"teacher {job.teacher.model} at {job.teacher.base_url}: {len(found)} rows, {send} requests to send "
         f"({cached} cached), ≈{tokens:,} prompt tokens", flush=True)
    if dry_run:
        return None
    with sole_user(job.cache.path, "data rewrite"):  # one rewrite of an output at a time: no answer paid twice
        outcome = endpoint.ask_all(job.teacher, asked, job.cache, echo)
    out_rows, kept, failed = [], Counter(), Counter()
    ratios = []
    for row, request in zip(found, asked, strict=True):
        original = row[job.columns["response"]]
        answer = outcome.answers.get(request.key(job.teacher))
        if answer is None:
            status = "failed: no answer from the teacher"
            failed["no answer"] += 1
        elif why := problem(original, answer.text.strip(), question(job, row), job.settings):
            status = f"kept: {why}"
            kept[why] += 1
        else:
            status = REWRITTEN
            ratios.append(han_count(answer.text) / max(han_count(original), 1))
        new = answer.text.strip() if status == REWRITTEN else original
        out_rows.append({**row, job.columns["response"]: new, "original_output": original, "rewrite": status})
    report = {"input": str(job.input), "output": str(job.output), "rows": len(found),
              "rewritten": len(ratios), "kept": dict(kept), "failed": dict(failed),
              "failed_requests": dict(outcome.failed),
              "teacher": {"model": job.teacher.model, "base_url": job.teacher.base_url,
                          "prompt": job.settings.prompt or "templates/prompts/rewrite.zh.j2"},
              "requests": {"sent": outcome.sent, "cached": outcome.cached},
              "tokens": {"total": outcome.tokens(job.teacher, asked), "this_run": outcome.tokens_sent},
              "length_ratio": round(sum(ratios) / len(ratios), 2) if ratios else None,
              "settings": job.settings.model_dump(mode="json", exclude={"teacher"})}
    with locked(job.output.parent):
        writes = _outputs(job, rows_text(out_rows), report)
        refuse_foreign(writes, job.force)  # again: minutes passed since `prepare`
        commit(writes)
        merge_entries(job.output.parent / DATASET_INFO, {job.output.stem: job.entry}, job.force)
    return report


def _outputs(job: Job, text: str, report: dict) -> dict[Path, str]:
    writes = {job.output: text}
    if job.report_dir is not None:
        writes[job.report_dir / REPORT_JSON] = json.dumps(report, ensure_ascii=False, indent=2) + "\n"
        writes[job.report_dir / REPORT_MD] = markdown(report) if report else ""
    return writes


def markdown(report: dict) -> str:
    t = report["teacher"]
    lines = [f"# Rewritten by {t['model']}", "",
             f"{report['input']} -> {report['output']}: {report['rows']} rows; teacher {t['model']} at "
             f"{t['base_url']}, prompt {t['prompt']}.", "",
             "| | rows |", "|---|---|", f"| rewritten | {report['rewritten']} |"]
    lines += [f"| kept the original: {why} | {n} |" for why, n in sorted(report["kept"].items())]
    lines += [f"| kept the original: the teacher gave no answer | {n} |" for n in report["failed"].values()]
    lines += ["", f"Requests: {report['requests']['sent']} sent, {report['requests']['cached']} answered from the "
              f"cache" + (f"; failed after retries: {report['failed_requests']}" if report["failed_requests"] else "")
              + f". Tokens: {report['tokens']['total']:,} in all, {report['tokens']['this_run']:,} in this run "
              "(the endpoint's count where it gave one, else about 1.5 characters a token)."]
    if report["length_ratio"] is not None:
        lines.append(f"A rewrite is {report['length_ratio']:.2f} times its original's length on average (Han "
                     "characters).")
    return "\n".join(lines) + "\n"
