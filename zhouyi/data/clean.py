"""Records -> cleaned, filtered, deduplicated alpaca rows, split into train/eval, with a report."""

from __future__ import annotations

import hashlib
import json
import random
import re
import statistics
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

from zhouyi.data import boilerplate as learnt
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
from zhouyi.data.spill import Column, Spill
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
    """Records made plain (markup parsed, invisible characters gone) and stripped of their sites' templates, for
    `zhouyi data explain` (cleaning itself streams the same steps, never holding every page)."""

    records: list[Record]
    removed: list[list[tuple[learnt.Template, str]]]  # per record: (template, the text it removed)
    markup: Counter


def made_plain(rec: Record, markup: Counter) -> Record:
    """The record with its text made plain (zhouyi.data.markup); what was done is counted in `markup`."""
    text, done = plain(rec.text)
    markup.update(done)
    return replace(rec, text=text) if done else rec


def stripped(rec: Record, templates: learnt.Templates, markup: Counter
             ) -> tuple[Record, list[tuple[learnt.Template, str]], list[tuple[str, str]]]:
    """The page without its site's templates and structure lines: (record, [(template, text removed)],
    [(what, structure line removed)])."""
    k = keyword(rec.title)
    text, gone = learnt.strip(rec.text, rec.source, k, templates)
    text, structural = structure(text, k)
    markup.update({what for what, _ in structural})
    return (replace(rec, text=text) if gone or structural else rec), gone, structural


def learner_for(opts: CleanOptions) -> learnt.Learner | None:
    return learnt.Learner() if opts.settings.learn_templates else None


def templates_of(learner: learnt.Learner | None, pages: Iterable[Record], opts: CleanOptions,
                 known: dict[str, learnt.Template]) -> learnt.Templates:
    """Each site's boilerplate learnt from its pages (given again, made plain), with the known templates of
    `data.clean.templates`."""
    s = opts.settings
    if learner is None:
        return learnt.Templates(known=known)
    return learner.templates(((r.source, keyword(r.title), r.text) for r in pages), s.template_min_pages,
                             s.template_min_share, s.template_min_chars, known)


def prepare(records: list[Record], opts: CleanOptions) -> Prepared:
    """What runs before the rules, on records in memory: every page made plain, then each site's boilerplate learnt
    from its pages (and the known templates of `data.clean.templates`) removed."""
    markup: Counter = Counter()
    learner = learner_for(opts)
    plain_records = [made_plain(rec, markup) for rec in records]
    for rec in plain_records if learner else ():
        learner.add(rec.source, keyword(rec.title), rec.text)
    found = templates_of(learner, plain_records, opts, learnt.load_known(opts.settings.templates))
    out, removed = [], []
    for rec in plain_records:
        rec, gone, _ = stripped(rec, found, markup)
        out.append(rec)
        removed.append(gone)
    return Prepared(out, removed, markup)


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


def split(keys: Iterable[str], ratio: float, seed: int) -> tuple[set[str], str | None]:
    """The split keys (one a near-duplicate cluster) that go to eval, and a note when the seeded draw had to be
    corrected: train is never empty, and eval, when asked for, is not either (both need two clusters)."""
    draws = {key: _stable_int(seed, "split", key) for key in keys}
    chosen, note = split_draws(set(draws.values()), ratio)
    return {key for key, value in draws.items() if value in chosen}, note


def split_draws(values: set[int], ratio: float) -> tuple[set[int], str | None]:
    """`split` on the clusters' seeded draws (`_stable_int(seed, "split", key)`), which is all it needs of them."""
    if ratio == 0:
        return set(), None
    unique = sorted(values)
    draw = {v for v in unique if v % 10_000 < ratio * 10_000}
    if len(unique) < 2:
        return set(), "every row is a near duplicate of the others (one cluster): no eval split without leakage"
    if draw == set(unique):
        return draw - {unique[-1]}, "the seeded draw put every cluster in eval; one went back to train"
    if not draw:
        return {unique[0]}, "the seeded draw left eval empty; one cluster went to eval"
    return draw, None


class CleanResult:
    """The cleaned rows (train, eval) and the report. The rows' texts stay in the cleaning's spill file until they
    are asked for: `rows` streams them, `train` and `eval` make lists (for small data), `json_chunks` writes them."""

    def __init__(self, kept: Spill, splits: dict[str, list], opts: CleanOptions, report: dict,
                 lengths: tuple[array, array]) -> None:
        self._kept, self._splits, self._opts = kept, splits, opts
        self.report = report
        self.lengths_in, self.lengths_out = lengths  # Han characters of every text read, and of every row out

    def count(self, which: str) -> int:
        return len(self._splits[which])

    def rows(self, which: str) -> Iterator[dict]:
        for item in self._splits[which]:
            if isinstance(item, dict):  # an identity row
                yield item
                continue
            source, title, asked, text = self._kept[item]
            yield alpaca_row(asked or question(title, self._opts.settings.seed), text, self._opts)

    @property
    def train(self) -> list[dict]:
        return list(self.rows("train"))

    @property
    def eval(self) -> list[dict]:
        return list(self.rows("eval"))

    def json_chunks(self, which: str) -> Iterator[str]:
        """The rows as `json.dumps(rows, ensure_ascii=False, indent=1) + "\\n"` writes them, a row at a time."""
        first = True
        for row in self.rows(which):
            yield ("[\n" if first else ",\n") + " " + json.dumps(row, ensure_ascii=False, indent=1).replace("\n", "\n ")
            first = False
        yield "[]\n" if first else "\n]\n"


def alpaca_row(asked: str, answer: str, opts: CleanOptions) -> dict:
    """One row as `persona_as` shapes it: the persona as instruction, or as the system prompt."""
    if opts.settings.persona_as == "instruction":
        return {"instruction": opts.persona, "input": asked, "output": answer}
    return {"instruction": asked, "input": "", "output": answer, "system": opts.persona}


def clean(records: Iterable[Record], skipped: list[tuple[str, str]], opts: CleanOptions) -> CleanResult:
    """Clean `records` into alpaca rows with a report. `records` is read once, as a stream: the pages wait in a
    temporary file between passes (zhouyi.data.spill), so memory grows with what the cross-page steps keep (a hash
    per masked sentence while templates are learnt, a key and a signature per kept row), not with the text.
    `skipped` is read when `records` ends: a reader may fill it as it goes."""
    settings = opts.settings
    rules = opts.rules
    known = learnt.load_known(settings.templates)  # a bad templates file stops the cleaning before any reading
    pages, markup, lengths_in = Spill(), Counter(), array("l")
    learner = learner_for(opts)
    convert = _t2s() if settings.t2s else None
    converted = 0
    for rec in records:  # pass 1: read, make plain, count each site's sentences
        if convert is not None:
            simple = replace(rec, title=convert(rec.title), text=convert(rec.text))
            converted += simple != rec
            rec = simple
        lengths_in.append(han_count(rec.text))
        rec = made_plain(rec, markup)
        if learner is not None:
            learner.add(rec.source, keyword(rec.title), rec.text)
        pages.append((rec.source, rec.title, rec.text, rec.question))
    found = templates_of(learner, (Record(*page) for page in pages), opts, known)

    drops: Counter = Counter({"unreadable row": len(skipped)})
    finished_rows: Counter = Counter()
    hits: Counter = Counter({"traditional to simplified": converted} if convert else {})
    examples: dict[str, list[dict]] = defaultdict(list)
    sentences_removed: Counter = Counter()
    suspicious: Counter = Counter()
    audits = AuditSample()
    kept, kept_han = Spill(), array("l")
    groups: dict[bytes, tuple[int, str, int, str]] = {}  # exact-duplicate key -> (title length, source, row, keyword)
    for page in pages:  # pass 2: templates, structure lines, rules, filters; exact duplicates meet here
        before = Record(*page)
        rec, gone, structural = stripped(before, found, markup)
        sentences_removed["learnt templates"] += len(gone)
        audit = Audit()
        try:
            text, fired = apply_rules(rec.text, rules, sentences_removed, keyword(rec.title), audit)
        except RuleTimeout as exc:
            raise UserError(f"rule {exc.rule} ran past {USER_RULE_SECONDS:g} s on row {rec.source}: its pattern "
                            "backtracks without end (nested repeats such as (梦+)+); rewrite it (梦+), or disable it; "
                            "nothing was written") from None
        suspicious.update(name for name, _ in audit.kept)
        audits.offer(rec.source, rec.title, before.text,
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
            continue
        if finished != text:
            finished_rows["full stop added" if finished.startswith(text) else "unfinished tail trimmed"] += 1
        if settings.answer_paragraphs and (head := first_paragraphs(finished, settings.answer_paragraphs)):
            finished_rows["cut to answer_paragraphs"] += 1
            finished = head
        # Exact duplicates (reworded titles sharing one text) become one row under the shortest title.
        row = kept.append((rec.source, rec.title, rec.question, finished))
        kept_han.append(han_count(finished))
        key = hashlib.blake2b(dedup_key(finished).encode(), digest_size=16).digest()
        entry = (len(rec.title), rec.source, row, keyword(rec.title))
        if key not in groups or entry[:2] < groups[key][:2]:
            groups[key] = entry
    pages.close()
    chosen = list(groups.values())  # in the order each text first appeared
    drops["exact duplicate text"] = len(kept) - len(chosen)
    del groups

    # Near duplicates: one row per dream keyword; a cluster's rows all go to one split (no train/eval leakage).
    roots = clusters(Column(kept, 3, [row for _, _, row, _ in chosen]), settings.near_dup_threshold) \
        if settings.near_dup_threshold else list(range(len(chosen)))
    seen: set[tuple[int, str]] = set()
    rows: list[tuple[int, int]] = []  # (kept row, its cluster's first member)
    for (_, _, row, k), root in zip(chosen, roots, strict=True):
        if (root, k) in seen:
            drops["near duplicate"] += 1
            continue
        seen.add((root, k))
        rows.append((row, root))
    del seen
    draws = {root: _stable_int(settings.seed, "split", dedup_key(kept[chosen[root][2]][3])) for root in
             {root for _, root in rows}}  # the split follows the cluster
    eval_draws, split_note = split_draws(set(draws.values()), settings.eval_ratio)
    splits: dict[str, list] = {"train": [], "eval": []}
    for row, root in rows:
        splits["eval" if draws[root] in eval_draws else "train"].append(row)
    identity = with_identity_rows(splits["train"], opts)
    lengths_out = array("l", (kept_han[r] if isinstance(r, int) else han_count(r["output"])
                              for r in splits["train"] + splits["eval"]))
    report = {
        "rows_in": len(lengths_in) + len(skipped),
        "rows_out": len(lengths_out),
        "train_rows": len(splits["train"]),
        "identity_rows": identity,
        "eval_rows": len(splits["eval"]),
        "finished_rows": {"unfinished tail trimmed": 0, "full stop added": 0, **finished_rows},
        "split_note": split_note,
        "near_duplicate_clusters": len({r for i, r in enumerate(roots) if r != i}),
        "drops": {k: v for k, v in drops.most_common() if v},
        "rule_hits": {name: hits.get(name, 0) for name in
                      (["traditional to simplified"] if settings.t2s else []) + [rule.name for rule in rules]},
        "sentences_removed": {k: v for k, v in sentences_removed.most_common() if v},
        "markup": dict(markup),
        "templates": [{"site": t.site, "pages": t.pages, "pattern": t.pattern, "example": t.example,
                       "learnt": t.learnt, "suspicious_pages": t.suspicious_pages} for t in found.all()],
        "han_length_before": _stats(lengths_in),
        "han_length_after": _stats(lengths_out),
        "examples": dict(examples),
        "suspicious_removals": {"kept": sum(suspicious.values()), "by_rule": dict(suspicious.most_common()),
                                "examples": audits.suspicious_examples()},
        "audit": audits.pages(),
        "skipped_rows": [{"source": s, "why": w} for s, w in skipped[:50]],
    }
    return CleanResult(kept, splits, opts, report, (lengths_in, lengths_out))


def with_identity_rows(train: list, opts: CleanOptions) -> int:
    """Mix the persona's identity rows (zhouyi.data.identity) into `train` (the cleaned rows, or their places in the
    spill) at seeded places, shaped like the cleaned rows; the eval split stays dreams only. Returns how many were
    added."""
    s = opts.settings
    count = identity_count(len(train), s.identity_ratio) if train else 0
    rng = random.Random(s.seed)
    for q, answer in identity_rows(s.persona_name or "", s.persona_description, count, s.seed):
        train.insert(rng.randint(0, len(train)), alpaca_row(q, answer, opts))
    return count


def to_simplified(records: list[Record]) -> tuple[list[Record], int]:
    """Records with title and text converted by OpenCC's t2s, and how many changed."""
    t2s = _t2s()
    out = [replace(r, title=t2s(r.title), text=t2s(r.text)) for r in records]
    return out, sum(a != b for a, b in zip(records, out, strict=True))


def _t2s():
    """OpenCC's traditional-to-simplified conversion of one string."""
    import opencc

    return opencc.OpenCC("t2s").convert


def _stats(values: Sequence[int]) -> dict:
    if not values:
        return {"count": 0}
    return {"count": len(values), "min": min(values), "median": statistics.median(values), "max": max(values),
            "mean": round(statistics.fmean(values), 1)}
