"""The answer checks, one row each. Every reader derives what it needs from this table: the per-answer flags and the
report's shares (zhouyi.evaluation.answers), their direction in comparisons (evaluate, recompute), the report's labels
(reports), the export gate, the judge's count of problems, the trace of flagged answers, the reasons a preference
pair gives and the CLI's one-line summary. Adding a check is one row here (and its test in answers.check);
tests/test_checks.py fails when a reader leaves one out."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str  # the flag answers.check sets on one answer, and the report's key
    good: bool  # the flag's value on a good answer: in_voice True, every other False
    label: str  # the report's row: the share of answers ...
    problem: str  # what a failing answer has, as a trace or a preference pair says it
    gated: bool = True  # the export gate compares the tuned model's share with the base's
    traced: bool = True  # `zhouyi eval --trace` follows a failing answer back to the training rows
    summary: bool = True  # `zhouyi eval` prints it in its one-line summary

    def fails(self, flag: bool) -> bool:
        """Whether an answer with this flag has the problem."""
        return bool(flag) != self.good


CHECKS = (
    Check("boilerplate", False, "with site boilerplate", "site boilerplate"),
    Check("in_voice", True, "in the persona's voice", "not in the persona's voice"),
    Check("empty", False, "empty", "empty", traced=False, summary=False),
    Check("loops", False, "repeating itself", "repeats itself"),
    Check("at_token_limit", False, "cut at the token limit (never ended)", "no end (cut at the token limit)",
          traced=False, summary=False),
)
BY_NAME = {check.name: check for check in CHECKS}
NAMES = tuple(BY_NAME)
HIGHER_IS_BETTER = {check.name: check.good for check in CHECKS}  # a share of answers: is more of it better?


def problems(flags: dict) -> set[str]:
    """The checks one answer fails, of those its flags carry."""
    return {name for name, check in BY_NAME.items() if name in flags and check.fails(flags[name])}
