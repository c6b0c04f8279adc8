"""Bad answers traced to their rows: for a tuned answer a check flags (site boilerplate, out of the persona's voice,
repeating itself), the training rows whose answers share its offending stretch, and the cleaning rule that would
have removed that stretch from them, or "no rule matched" with the command to look further.

The offending stretch: for boilerplate, the text the boilerplate rule matches in the answer; for a loop, the
stretch it repeats; out of voice, the whole answer. Rows share it when their answer and the stretch have a common
substring of at least MIN_SHARED characters (found through an index of the rows' MIN_SHARED-grams, then exactly).
"""

from __future__ import annotations

from collections import Counter
from functools import cached_property
from pathlib import Path

from zhouyi.data.rules import DEFAULT_RULES
from zhouyi.evaluation.answers import BOILERPLATE_RULES, check
from zhouyi.evaluation.checks import CHECKS
from zhouyi.spec import JobSpec

MIN_SHARED = 8
ROWS_SHOWN = 3


class TrainingRows:
    """The training answers (file, row index, text), indexed by their MIN_SHARED-character grams."""

    def __init__(self, rows: list[tuple[Path, int, str]]):
        self.rows = rows

    @cached_property
    def index(self) -> dict[str, set[int]]:
        """Built on the first flagged answer: an evaluation with none never pays for it."""
        index: dict[str, set[int]] = {}
        for i, (_, _, text) in enumerate(self.rows):
            for gram in _grams(text):
                index.setdefault(gram, set()).add(i)
        return index

    def sharing(self, stretch: str, limit: int = ROWS_SHOWN) -> list[dict]:
        """The rows with the longest common substring (≥ MIN_SHARED characters) with `stretch`, longest first."""
        hits = Counter(i for gram in set(_grams(stretch)) for i in self.index.get(gram, ()))
        found = []
        for i, _ in hits.most_common(limit * 4):
            path, row, text = self.rows[i]
            shared = longest_common_substring(stretch, text)
            if len(shared) >= MIN_SHARED:
                found.append({"file": str(path), "row": row, "shared": shared, "rule": removing_rule(text, shared)})
        found.sort(key=lambda f: -len(f["shared"]))
        return found[:limit]


def _grams(text: str) -> list[str]:
    return [text[i:i + MIN_SHARED] for i in range(len(text) - MIN_SHARED + 1)]


def longest_common_substring(a: str, b: str) -> str:
    """The longest substring of both (dynamic programming, one row at a time)."""
    best, end = 0, 0
    previous = [0] * (len(b) + 1)
    for i in range(1, len(a) + 1):
        current = [0] * (len(b) + 1)
        ai = a[i - 1]
        for j in range(1, len(b) + 1):
            if ai == b[j - 1]:
                current[j] = previous[j - 1] + 1
                if current[j] > best:
                    best, end = current[j], i
        previous = current
    return a[end - best:end]


def removing_rule(text: str, shared: str) -> str | None:
    """The cleaning rule whose match in `text` covers part of `shared` there, or None when no rule would remove it."""
    start = text.find(shared)
    for rule in DEFAULT_RULES:
        if rule.action == "replace" and rule.replacement != " ":
            continue  # a rule that rewrites (punctuation, spacing, doubled words) removes no content
        for match in rule.compiled().finditer(text):
            if not match.group(0).strip():
                continue  # whitespace only
            end = len(text) if rule.action == "truncate_from" else match.end()
            if match.start() < start + len(shared) and start < end:
                return rule.name
    return None


def offending_stretch(answer: str, flag: str) -> str:
    """What in the answer the flag is about (see the module's docstring)."""
    if flag == "boilerplate":
        for rule in DEFAULT_RULES:
            if rule.name in BOILERPLATE_RULES and (match := rule.compiled().search(answer)):
                return match.group(0)
    if flag == "loops":
        compact = answer.replace("\n", "")
        stretches = Counter(compact[i:i + 10] for i in range(max(len(compact) - 9, 0)))
        if stretches:
            return stretches.most_common(1)[0][0]
    return answer


TRACED = tuple(check for check in CHECKS if check.traced)


def trace(questions: list[dict], model: str, rows: TrainingRows, spec: JobSpec) -> list[dict]:
    """Every flagged answer of `model` (per-question report rows), with the training rows behind it."""
    traces = []
    for n, q in enumerate(questions):
        answer = q["answers"].get(model)
        if answer is None:
            continue
        flags = q["checks"].get(model) or check(answer, spec)
        for traced in TRACED:
            flag, label = traced.name, traced.problem
            if not traced.fails(flags[flag]):
                continue  # in voice, or no boilerplate / no loop: nothing to trace
            stretch = offending_stretch(answer, flag)
            found = rows.sharing(stretch)
            traces.append({"question": n, "model": model, "check": flag, "label": label, "stretch": stretch[:200],
                           "rows": found,
                           "next": None if found and any(f["rule"] for f in found) else
                           (f"zhouyi data explain {found[0]['file']} {found[0]['row']}" if found else
                            "no training row shares 8 or more characters with it: the base model's own habit")})
    return traces
