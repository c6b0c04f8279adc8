"""Records -> cleaned, filtered, deduplicated alpaca rows, split into train/eval, with a report."""

from __future__ import annotations

import hashlib
import random
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from functools import cached_property

from zhouyi.data import templates as learnt
from zhouyi.data.audit import AuditSample
from zhouyi.data.identity import identity_count, identity_rows
from zhouyi.data.markup import plain
from zhouyi.data.neardup import clusters
from zhouyi.data.page_lines import structure
from zhouyi.data.readers import Record
from zhouyi.data.rules import (
    DEFAULT_RULES,
    USER_RULE_SECONDS,
    Audit,
    Rule,
    RuleTimeout,
    apply_rules,
    case_study_rules,
    load_rules_file,
)
from zhouyi.errors import UserError
from zhouyi.spec import CleanSpec

PERSONA = "你是周文王，精通《周易》与解梦之道。请以周文王的口吻，为来访者解释梦境的寓意。"
QUESTIONS = (
    "梦见{k}是什么意思？", "梦到{k}预示着什么？", "做梦梦见{k}好不好？",
    "梦见{k}是吉是凶？", "请帮我解一下这个梦：梦见{k}。",
)
_QUERY_TAIL = re.compile(r"(?:是)?(?:什么意思|预示着什么|预示什么|好不好|是吉是凶|怎么回事|代表什么|什么预兆)[？?]?$")
_SENTENCE_END = "。！？」』）》…"
_ANSWER_END = "。！!…」』）"  # a paragraph that ends so is an answer; one ending ？ or ： or 》 heads what follows
_HAN_END = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True)
class CleanOptions:
    """One cleaning: the spec's `data.clean` settings (zhouyi.spec.CleanSpec, the one home of their defaults), the
    persona the rows carry, and the rules those settings select."""

    settings: CleanSpec = field(default_factory=CleanSpec)
    persona: str = PERSONA

    @classmethod
    def of(cls, persona: str = PERSONA, **settings) -> CleanOptions:
        """Options with some settings changed from CleanSpec's defaults, e.g. `CleanOptions.of(eval_ratio=0.0)`."""
        return cls(CleanSpec(**settings), persona)

    @cached_property
    def rules(self) -> tuple[Rule, ...]:
        """zhouyi's rules (case studies as `case_studies` says, `disable_rules` left out), then the spec's own."""
        s = self.settings
        own = tuple(r for r in case_study_rules(DEFAULT_RULES, s.case_studies) if r.name not in s.disable_rules)
        files = tuple(rule for path in s.rules_files for rule in load_rules_file(path))
        return own + files + tuple(Rule(r.name, r.description or "spec rule", r.pattern, r.action, r.replacement,
                                        user=True)
                                   for r in s.rules)


@dataclass
class Prepared:
    """Records made plain (markup parsed, invisible characters gone) and stripped of their sites' templates."""

    records: list[Record]
    templates: learnt.Templates
    removed: list[list[tuple[learnt.Template, str]]]  # per record: (template, the text it removed)
    markup: Counter
    plain: list[str]  # per record: its text made plain, before templates and structure lines went (for the audit)
    lines: list[list[tuple[str, str]]]  # per record: (what, line) of its structure lines removed


def prepare(records: list[Record], opts: CleanOptions) -> Prepared:
    """What runs before the rules: every page made plain, then each site's boilerplate learnt from its pages (and
    the known templates of `data.clean.templates`) removed."""
    s = opts.settings
    markup: Counter = Counter()
    plain_records = []
    for rec in records:
        text, done = plain(rec.text)
        markup.update(done)
        plain_records.append(replace(rec, text=text) if done else rec)
    known = learnt.load_known(s.templates)
    pages = [(r.source, keyword(r.title), r.text) for r in plain_records] if s.learn_templates else []
    found = learnt.learn(pages, s.template_min_pages, s.template_min_share, s.template_min_chars, known)
    removed, out, lines = [], [], []
    for rec in plain_records:
        k = keyword(rec.title)
        text, gone = learnt.strip(rec.text, rec.source, k, found)
        text, structural = structure(text, k)
        removed.append(gone)
        lines.append(structural)
        markup.update({what for what, _ in structural})
        out.append(replace(rec, text=text) if gone or structural else rec)
    return Prepared(out, found, removed, markup, [r.text for r in plain_records], lines)


@dataclass
class CleanResult:
    train: list[dict] = field(default_factory=list)
    eval: list[dict] = field(default_factory=list)
    report: dict = field(default_factory=dict)


def han_count(text: str) -> int:
    return len(re.findall(r"[\u4e00-\u9fff]", text))


def dedup_key(text: str) -> str:
    """Text with punctuation and spaces removed: two outputs equal on this are exact duplicates."""
    return re.sub(r"[^\w]", "", text)


def keyword(title: str) -> str:
    """`蛇上身什么意思` -> `蛇上身`; `梦见大水` -> `大水`: the dream itself, for the question templates."""
    title = _QUERY_TAIL.sub("", title.strip())
    return re.sub(r"^(?:做梦)?(?:梦见|梦到)", "", title).strip(" 、，,") or title


_ASKED = [re.compile("^" + re.escape(q).replace(re.escape("{k}"), "(.+?)") + "$") for q in QUESTIONS]


def asked_dream(question: str) -> str | None:
    """The dream a question made by `question()` asks about (`梦见蛇是什么意思？` -> `蛇`); None for other wording."""
    found = next((m for pattern in _ASKED if (m := pattern.match(question.strip()))), None)
    return found.group(1) if found else None


def _stable_int(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "big")


def question(title: str, seed: int) -> str:
    k = keyword(title)
    return QUESTIONS[_stable_int(seed, k) % len(QUESTIONS)].format(k=k)


def finish(text: str) -> str:
    """`text` ending on a finished sentence. A last sentence that only lacks its full stop (it ends on a Han
    character: the scraper dropped the 。) gets one; one that breaks off at a comma or semicolon (the site or the
    scraper cut the page) is trimmed, keeping every complete sentence before it. "" when none is complete."""
    if not text or text[-1] in _SENTENCE_END:
        return text
    if _HAN_END.match(text[-1]):
        return text + "。"
    ends = [text.rfind(mark) for mark in _SENTENCE_END]
    return text[: max(ends) + 1].rstrip() if max(ends) >= 0 else ""


def first_paragraphs(text: str, n: int) -> str | None:
    """The first `n` paragraphs of `text`, and as many more as it takes to end on a finished sentence (a heading,
    `梦见和尚的不同情况也有不同的意思：`, or a question line is not an answer on its own); None when that is all."""
    paragraphs = [p.strip() for p in text.split("\n") if p.strip()]
    head: list[str] = []
    for paragraph in paragraphs:
        head.append(paragraph)
        if len(head) >= n and paragraph[-1] in _ANSWER_END:
            break
    return "\n".join(head) if len(head) < len(paragraphs) else None


def drop_reason(text: str, opts: CleanOptions) -> str | None:
    """Why the filters drop a cleaned (and trimmed) text, or None when it stays."""
    n, s = han_count(text), opts.settings
    if not text:
        return "cut mid-sentence, no sentence complete"
    if n < s.min_han:
        return f"shorter than {s.min_han} Han characters"
    if n > s.max_han:
        return f"longer than {s.max_han} Han characters"
    return None


def split(keys: list[str], ratio: float, seed: int) -> tuple[set[str], str | None]:
    """The split keys (one a near-duplicate cluster) that go to eval, and a note when the seeded draw had to be
    corrected: train is never empty, and eval, when asked for, is not either (both need two clusters)."""
    if ratio == 0:
        return set(), None
    unique = sorted(set(keys), key=lambda k: _stable_int(seed, "split", k))
    draw = {k for k in unique if _stable_int(seed, "split", k) % 10_000 < ratio * 10_000}
    if len(unique) < 2:
        return set(), "every row is a near duplicate of the others (one cluster): no eval split without leakage"
    if draw == set(unique):
        return draw - {unique[-1]}, "the seeded draw put every cluster in eval; one went back to train"
    if not draw:
        return {unique[0]}, "the seeded draw left eval empty; one cluster went to eval"
    return draw, None


def clean(records: list[Record], skipped: list[tuple[str, str]], opts: CleanOptions) -> CleanResult:
    drops: Counter = Counter({"unreadable row": len(skipped)})
    finished_rows: Counter = Counter()
    hits: Counter = Counter()
    examples: dict[str, list[dict]] = defaultdict(list)
    kept: list[tuple[Record, str]] = []
    settings = opts.settings
    if settings.t2s:
        records, converted = to_simplified(records)
        hits["traditional to simplified"] = converted
    prepared = prepare(records, opts)
    sentences_removed: Counter = Counter()
    suspicious: Counter = Counter()
    audits = AuditSample()
    for rec, before, gone, structural in zip(prepared.records, prepared.plain, prepared.removed, prepared.lines,
                                             strict=True):
        sentences_removed["learnt templates"] += len(gone)
        audit = Audit()
        try:
            text, fired = apply_rules(rec.text, opts.rules, sentences_removed, keyword(rec.title), audit)
        except RuleTimeout as exc:
            raise UserError(f"rule {exc.rule} ran past {USER_RULE_SECONDS:g} s on row {rec.source}: its pattern "
                            "backtracks without end (nested repeats such as (梦+)+); rewrite it (梦+), or disable it; "
                            "nothing was written") from None
        suspicious.update(name for name, _ in audit.kept)
        audits.offer(rec.source, rec.title, before,
                     [(f"template: {t.pattern}", span) for t, span in gone] + structural + audit.removed, audit.kept)
        hits.update(fired)
        for name in fired:
            if len(examples[name]) < 3:
                examples[name].append({"source": rec.source, "before": rec.text.strip()[:300],
                                       "after": (text or "")[:300]})
        finished = None if text is None else finish(text)
        reason = f"rule {fired[-1]}" if finished is None else drop_reason(finished, opts)
        if reason:
            drops[reason] += 1
        else:
            if finished != text:
                finished_rows["full stop added" if finished.startswith(text) else "unfinished tail trimmed"] += 1
            if settings.answer_paragraphs and (head := first_paragraphs(finished, settings.answer_paragraphs)):
                finished_rows["cut to answer_paragraphs"] += 1
                finished = head
            kept.append((rec, finished))

    # Exact duplicates (reworded titles sharing one text) become one row under the shortest title.
    groups: dict[str, list[tuple[Record, str]]] = {}
    for rec, text in kept:
        groups.setdefault(dedup_key(text), []).append((rec, text))
    drops["exact duplicate text"] = sum(len(g) - 1 for g in groups.values())

    chosen = [(key, *min(group, key=lambda rt: (len(rt[0].title), rt[0].source))) for key, group in groups.items()]
    # Near duplicates: one row per dream keyword; a cluster's rows all go to one split (no train/eval leakage).
    roots = clusters([text for _, _, text in chosen], settings.near_dup_threshold) if settings.near_dup_threshold \
        else list(range(len(chosen)))
    seen: set[tuple[int, str]] = set()
    rows: list[tuple[dict, str]] = []
    for (_, rec, text), root in zip(chosen, roots, strict=True):
        if (root, keyword(rec.title)) in seen:
            drops["near duplicate"] += 1
            continue
        seen.add((root, keyword(rec.title)))
        q = rec.question or question(rec.title, settings.seed)
        if settings.persona_as == "instruction":
            row = {"instruction": opts.persona, "input": q, "output": text}
        else:
            row = {"instruction": q, "input": "", "output": text, "system": opts.persona}
        rows.append((row, chosen[root][0]))  # the split follows the cluster
    eval_keys, split_note = split([key for _, key in rows], settings.eval_ratio, settings.seed)
    result = CleanResult()
    for row, key in rows:
        (result.eval if key in eval_keys else result.train).append(row)
    identity = with_identity_rows(result.train, opts)

    lengths_in = [han_count(r.text) for r in records]
    lengths_out = [han_count(r["output"]) for r in result.train + result.eval]
    result.report = {
        "rows_in": len(records) + len(skipped),
        "rows_out": len(lengths_out),
        "train_rows": len(result.train),
        "identity_rows": identity,
        "eval_rows": len(result.eval),
        "finished_rows": {"unfinished tail trimmed": 0, "full stop added": 0, **finished_rows},
        "split_note": split_note,
        "near_duplicate_clusters": len({r for i, r in enumerate(roots) if r != i}),
        "drops": {k: v for k, v in drops.most_common() if v},
        "rule_hits": {name: hits.get(name, 0) for name in
                      (["traditional to simplified"] if settings.t2s else []) + [rule.name for rule in opts.rules]},
        "sentences_removed": {k: v for k, v in sentences_removed.most_common() if v},
        "markup": dict(prepared.markup),
        "templates": [{"site": t.site, "pages": t.pages, "pattern": t.pattern, "example": t.example,
                       "learnt": t.learnt, "suspicious_pages": t.suspicious_pages} for t in prepared.templates.all()],
        "han_length_before": _stats(lengths_in),
        "han_length_after": _stats(lengths_out),
        "examples": dict(examples),
        "suspicious_removals": {"kept": sum(suspicious.values()), "by_rule": dict(suspicious.most_common()),
                                "examples": audits.suspicious_examples()},
        "audit": audits.pages(),
        "skipped_rows": [{"source": s, "why": w} for s, w in skipped[:50]],
    }
    return result


def with_identity_rows(train: list[dict], opts: CleanOptions) -> int:
    """Mix the persona's identity rows (zhouyi.data.identity) into `train` at seeded places, shaped like the cleaned
    rows; the eval split stays dreams only. Returns how many were added."""
    s = opts.settings
    count = identity_count(len(train), s.identity_ratio) if train else 0
    rng = random.Random(s.seed)
    for q, answer in identity_rows(s.persona_name or "", s.persona_description, count, s.seed):
        row = ({"instruction": opts.persona, "input": q, "output": answer} if s.persona_as == "instruction"
               else {"instruction": q, "input": "", "output": answer, "system": opts.persona})
        train.insert(rng.randint(0, len(train)), row)
    return count


def to_simplified(records: list[Record]) -> tuple[list[Record], int]:
    """Records with title and text converted by OpenCC's t2s, and how many changed."""
    import opencc

    t2s = opencc.OpenCC("t2s")
    out = [replace(r, title=t2s.convert(r.title), text=t2s.convert(r.text)) for r in records]
    return out, sum(a != b for a, b in zip(records, out, strict=True))


def _stats(values: list[int]) -> dict:
    if not values:
        return {"count": 0}
    return {"count": len(values), "min": min(values), "median": statistics.median(values), "max": max(values),
            "mean": round(statistics.fmean(values), 1)}
