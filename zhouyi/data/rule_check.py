"""Whether a user's cleaning rule can run at all, checked where it is written (a rules file, the spec): its own
module (a leaf: the spec reads it, and the rules, which the spec imports, read it too)."""

from __future__ import annotations

import re
from typing import Literal

RuleAction = Literal["delete", "truncate_from", "replace", "drop_row"]  # what a cleaning rule does with its match


def user_rule_problem(pattern: str, replacement: str) -> str | None:
    """Why a user's rule cannot run (its pattern is no regex, or its replacement names a group the pattern does not
    have), or None."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        return f"the pattern is not a regex ({exc})"
    try:
        re._parser.parse_template(replacement, compiled)  # what re.sub would do with it, without a match
    except (re.error, IndexError) as exc:
        return f"the replacement {replacement!r} does not fit the pattern ({exc})"
    return None
