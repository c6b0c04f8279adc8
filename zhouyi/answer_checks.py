"""The checks `zhouyi eval` makes on every answer (documented in the README, "See the model"): site boilerplate, the
persona's voice, degeneration (loops, running into the token limit) and length against the reference."""

from __future__ import annotations

import re
from collections import Counter

from zhouyi.data.rules import DEFAULT_RULES
from zhouyi.spec import JobSpec

BOILERPLATE_RULES = ("advert_footer", "site_intro", "html", "url", "attribution", "editor_phrases", "navigation",
                     "horoscope_filler", "numerology_filler", "case_studies")


def has_boilerplate(text: str) -> bool:
    return any(rule.compiled().search(text) for rule in DEFAULT_RULES if rule.name in BOILERPLATE_RULES)


def in_voice(text: str, voice: list[str], off_voice: list[str]) -> bool:
    return not any(m in text for m in off_voice) and any(m in text for m in voice)


def loops(text: str, width: int = 10, times: int = 3) -> bool:
    """The answer repeats itself: some `width`-character stretch occurs `times` times, or a sentence of six or more
    characters twice (what a model that never learnt to stop does until its token limit)."""
    compact = "".join(text.split())
    stretches = [compact[i:i + width] for i in range(max(len(compact) - width + 1, 0))]
    if any(count >= times for count in Counter(stretches).values()):
        return True
    sentences = [s for s in re.split(r"[。！？!?\n；;]", text) if len(s.strip()) >= 6]
    return any(count >= 2 for count in Counter(s.strip() for s in sentences).values())


def at_token_limit(text: str, spec: JobSpec, count_tokens) -> bool:
    """The answer used every new token `zhouyi eval` allows: cut by the limit, not ended by the model."""
    return count_tokens(text) >= spec.eval.max_new_tokens - 1


def share(flags: list[bool]) -> float:
    return round(sum(flags) / len(flags), 3) if flags else 0.0


def answer_checks(texts: list[str], references: list[str], spec: JobSpec, count_tokens=None) -> dict[str, float]:
    """The share of answers with each problem, and their mean length against the reference's."""
    voice, off = spec.eval.voice_markers, spec.eval.off_voice_markers
    checks = {"boilerplate": share([has_boilerplate(t) for t in texts]),
              "in_voice": share([in_voice(t, voice, off) for t in texts]),
              "empty": share([not t.strip() for t in texts]),
              "loops": share([loops(t) for t in texts]),
              "length_ratio": round(sum(len(t) / max(len(r), 1) for t, r in zip(texts, references, strict=True))
                                    / max(len(texts), 1), 2)}
    if count_tokens is not None:  # an answer this long was cut by the limit, not ended by the model
        checks["at_token_limit"] = share([at_token_limit(t, spec, count_tokens) for t in texts])
    return checks
