"""`zhouyi data clean` and `zhouyi data explain` (zhouyi.data). Their cleaning flags are made from the fields of the
spec's `data.clean` section (zhouyi.spec.CleanSpec): a flag changes that field, on top of the spec given with
--spec or of the section's defaults."""

from __future__ import annotations

import argparse
import types
import typing
from pathlib import Path

from zhouyi.cli.common import dry_run_flag, optional_spec, set_flag
from zhouyi.errors import UserError

# flag -> the data.clean field it sets
CLEAN_FLAGS = {"--min-han": "min_han", "--persona-as": "persona_as", "--eval-ratio": "eval_ratio", "--seed": "seed",
               "--t2s": "t2s", "--title-field": "title_fields", "--text-field": "text_fields",
               "--case-studies": "case_studies", "--near-dup": "near_dup_threshold", "--format": "format",
               "--answer-paragraphs": "answer_paragraphs", "--identity-ratio": "identity_ratio",
               "--persona-name": "persona_name", "--persona-description": "persona_description",
               "--rules-file": "rules_files", "--templates": "templates", "--template-min-pages": "template_min_pages",
               "--template-min-share": "template_min_share"}


def add_verbs(sub) -> None:
    data = sub.add_parser("data", help="the data: fetch the tutorial's scrape, clean a scrape into an alpaca "
                          "dataset, explain a row, make preference pairs")
    data_sub = data.add_subparsers(dest="data_verb", required=True, metavar="DATA_VERB")
    p = data_sub.add_parser("clean", help="clean, dedup and split INPUT files into an alpaca dataset, with a report")
    p.set_defaults(func=cmd_data_clean)
    p.add_argument("inputs", nargs="*", metavar="INPUT")
    p.add_argument("-o", "--output", help="train file (the eval split goes beside it as *_eval.json)")
    p.add_argument("--report", help="folder for report.json, report.md and report.html (the audit: every removal "
                   "marked in place)")
    _cleaning_flags(p)
    p.add_argument("--save-templates", metavar="FILE", help="also write the learnt templates to FILE, to give again "
                   "with --templates FILE (data.clean.templates) for the next scrape of the same site")
    p.add_argument("--no-register", action="store_true", help="leave dataset_info.json alone")
    p.add_argument("--force", action="store_true",
                   help="overwrite output files zhouyi did not write, and repoint registry entries")

    p = data_sub.add_parser("fetch", help="download the tutorial's scraped data (three public GitHub collections at "
                            "pinned commits, checked by content digest) and convert it for data clean")
    p.set_defaults(func=cmd_data_fetch)
    p.add_argument("-o", "--output", default="data/scraped", help="folder to write into (default: data/scraped, "
                   "git-ignored)")
    p.add_argument("--mirror", metavar="URL", help="fetch each source from URL/<its file name> instead of GitHub")
    p.add_argument("--timeout", type=float, default=60, help="seconds to wait for a server each time it is waited on "
                   "(default: 60); a whole download may take ten times that")

    p = data_sub.add_parser("pairs", help="preference pairs for a DPO stage: a run's models answer its training "
                            "questions; flagged answers become rejected, the training answers chosen")
    p.set_defaults(func=cmd_data_pairs)
    p.add_argument("--run", required=True, metavar="RUN", help="a finished SFT run: its questions, its models")
    p.add_argument("--model", choices=("base", "tuned", "both"), default="both",
                   help="whose answers may be rejected (default: both)")
    p.add_argument("--max-samples", type=int, default=200, help="training questions per dataset (default: 200)")
    p.add_argument("--without-system", action="store_true",
                   help="ask with no system prompt: the answers that leave the persona")
    p.add_argument("-o", "--output", help="pairs file (default: <dataset_dir>/<training file>_pairs.json)")
    p.add_argument("--no-register", action="store_true", help="leave dataset_info.json alone")
    p.add_argument("--force", action="store_true",
                   help="overwrite an output file zhouyi did not write, and repoint its registry entry")

    p = data_sub.add_parser("rewrite", help="a teacher model (data.rewrite.teacher: an OpenAI-compatible endpoint) "
                            "rewrites each cleaned answer in the persona's voice; a rewrite that fails zhouyi's checks "
                            "keeps the original; the output registers like cleaned data")
    p.set_defaults(func=cmd_data_rewrite)
    p.add_argument("--spec", help="take the teacher, the input (data.clean.output), the persona and the settings "
                   "from the spec")
    set_flag(p)
    p.add_argument("-i", "--input", help="the cleaned alpaca file (default: the spec's data.clean.output)")
    p.add_argument("-o", "--output", help="default: data.rewrite.output, else the input's name + _rewritten")
    p.add_argument("--report", help="folder for report.json and report.md (default: data.rewrite.report)")
    p.add_argument("--teacher-with", metavar="FILE", help="the teacher's fields (those of data.rewrite.teacher) "
                   "from a YAML file of their own")
    p.add_argument("--limit", type=int, metavar="N", help="rewrite only the first N rows (to try a teacher out)")
    dry_run_flag(p, "say how many requests the teacher will be sent and roughly how many tokens; send none")
    p.add_argument("--force", action="store_true",
                   help="overwrite an output file zhouyi did not write, and repoint its registry entry")

    p = data_sub.add_parser("explain", help="show what cleaning does to row ROW of FILE, rule by rule")
    p.set_defaults(func=cmd_data_explain)
    p.add_argument("file", metavar="FILE")
    p.add_argument("row", metavar="ROW", type=int, help="record number in FILE, from 0")
    _cleaning_flags(p)


def cmd_data_clean(args) -> int:
    from zhouyi.data.pipeline import eval_path, run_clean

    opts, spec = _options(args)
    clean = spec.data.clean if spec else None
    inputs = [*(clean.inputs if clean else []), *args.inputs]
    output = args.output or (str(Path(spec.data.dataset_dir) / clean.output) if clean else None)
    if not inputs or not output:
        raise UserError("data clean needs INPUT files and -o FILE, or --spec SPEC with data.clean set")
    report = args.report or (clean.report if clean else None)
    result = run_clean([Path(p) for p in inputs], Path(output), Path(report) if report else None, opts,
                       register=not args.no_register, force=args.force,
                       save_templates=Path(args.save_templates) if args.save_templates else None)
    r = result.report
    print(f"{r['rows_in']} rows in, {r['rows_out']} out: {output} ({r['train_rows']} train)"
          + (f", {eval_path(Path(output))} ({r['eval_rows']} eval)" if r["eval_rows"] else ", no eval split")
          + (f", {r['identity_rows']} of the train rows identity rows" if r["identity_rows"] else "")
          + f"; drops: {r['drops']}")
    return 0


def cmd_data_pairs(args) -> int:
    from zhouyi import layout
    from zhouyi.data import pairs

    models = ("base", "tuned") if args.model == "both" else (args.model,)
    output, report = pairs.make_pairs(Path(args.run), Path.cwd(), Path(args.output) if args.output else None, models,
                                      args.max_samples, args.without_system, not args.no_register, args.force)
    print(f"{report['pairs']} pairs from {report['questions']} questions: {output}; rejected because: "
          f"{report['rejected_because']}; no pair: {report['no_pair']}; report: "
          f"{Path(report['run']) / layout.PAIRS_DIR / layout.REPORT_MD}")
    return 0


def cmd_data_fetch(args) -> int:
    from zhouyi.data.fetch import fetch

    written = fetch(Path(args.output), args.mirror, args.timeout)
    print("wrote " + ", ".join(map(str, written)) + "\nThese collections state no licence: use the data for your "
          f"own research. Next: zhouyi data clean {' '.join(map(str, written))} -o data/zhougong.json")
    return 0


def cmd_data_rewrite(args) -> int:
    from zhouyi import endpoint
    from zhouyi.data import rewrite
    from zhouyi.data.clean import PERSONA
    from zhouyi.layout import REPORT_MD
    from zhouyi.spec import EndpointSpec, RewriteSpec

    spec = optional_spec(args)
    settings = spec.data.rewrite if spec else RewriteSpec()
    data_dir = Path(spec.data.dataset_dir) if spec else None
    teacher = (endpoint.load_file(Path(args.teacher_with), EndpointSpec, "--teacher-with") if args.teacher_with
               else settings.teacher)
    source = args.input or (str(data_dir / spec.data.clean.output) if spec else None)
    if source is None:
        raise UserError("data rewrite needs -i FILE (a cleaned alpaca file) or --spec SPEC (its data.clean.output)")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit {args.limit}: rewrite at least one row")
    output = args.output or (str(data_dir / settings.output) if spec and settings.output else None)
    report = args.report or settings.report
    job = rewrite.prepare(Path(source), Path(output) if output else None, Path(report) if report else None, teacher,
                          settings, (spec.model.default_system if spec else None) or PERSONA, Path.cwd(), args.force)
    done = rewrite.rewrite(job, args.limit, args.dry_run)
    if done is None:
        return 0
    failed = sum(done["failed"].values())
    print(f"{done['rows']} rows: {done['rewritten']} rewritten, {sum(done['kept'].values())} kept the original "
          f"({done['kept'] or 'none'}), {failed} without an answer; {done['tokens']['this_run']:,} tokens in this "
          f"run: {job.output}" + (f"; report: {job.report_dir / REPORT_MD}" if job.report_dir else "")
          + (f"\n{failed} requests failed ({done['failed_requests']}): run again to ask only those" if failed else ""))
    return 0


def cmd_data_explain(args) -> int:
    from zhouyi.data.explain import explain

    opts, _ = _options(args)
    print("\n".join(explain(Path(args.file), args.row, opts)))
    return 0


def _options(args):
    """(CleanOptions, the spec or None): the spec's data.clean (or its defaults) with the flags given on top."""
    from pydantic import ValidationError

    from zhouyi.data.clean import PERSONA, CleanOptions
    from zhouyi.spec import CleanSpec

    spec = optional_spec(args)
    base = spec.data.clean if spec else CleanSpec()
    # `is` on purpose: `--eval-ratio 0` equals False, and is given
    given = {flag: value for flag in CLEAN_FLAGS if (value := getattr(args, _dest(flag))) is not None
             and value is not False}
    try:
        settings = CleanSpec.model_validate(base.model_dump() | {CLEAN_FLAGS[f]: v for f, v in given.items()})
    except ValidationError as exc:
        err = exc.errors()[0]
        if not err["loc"]:  # a rule across fields (identity rows need a persona name)
            raise UserError(err["msg"].removeprefix("Value error, ")) from None
        flag = next(f for f, name in CLEAN_FLAGS.items() if name == err["loc"][0])
        raise UserError(f"{flag} {given[flag]}: {err['msg']} ({CleanSpec.model_fields[err['loc'][0]].description})") \
            from None
    if args.no_learn_templates:
        settings = settings.model_copy(update={"learn_templates": False})
    return CleanOptions(settings, (spec.model.default_system if spec else None) or PERSONA), spec


def _cleaning_flags(p: argparse.ArgumentParser) -> None:
    """--spec and one flag per CLEAN_FLAGS field: its type, choices and help (with the default) from the field."""
    from zhouyi.spec import CleanSpec

    p.add_argument("--spec", help="take settings (rules, thresholds, output) from the spec's data.clean section")
    p.add_argument("--no-learn-templates", action="store_true", help="do not learn the sites' boilerplate from their "
                   "pages (data.clean.learn_templates: false)")
    set_flag(p)
    for flag, name in CLEAN_FLAGS.items():
        field = CleanSpec.model_fields[name]
        default = field.get_default(call_default_factory=True)  # a list's default comes from a factory
        default = ", ".join(map(str, default)) if isinstance(default, list) else default
        kind = _unoptional(field.annotation)
        help_text = field.description + ("" if default in (None, False, "") else f" (default: {default})")
        if kind is bool:
            p.add_argument(flag, action="store_true", help=help_text)
        elif typing.get_origin(kind) is list:
            p.add_argument(flag, action="append", help=help_text + "; repeatable")
        elif typing.get_origin(kind) is typing.Literal:
            p.add_argument(flag, choices=typing.get_args(kind), help=help_text)
        else:
            p.add_argument(flag, type=kind, help=help_text)


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _unoptional(annotation):
    """`X | None` -> X; anything else as it is."""
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return annotation
    (inner,) = [a for a in typing.get_args(annotation) if a is not type(None)]
    return inner
