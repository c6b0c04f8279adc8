"""Every reader of the answer checks covers every check of zhouyi.evaluation.checks: a check added as one row there is
computed, compared in the right direction, labelled, gated, counted by the judge, traced, given as a pair's reason and
summarised — or this test names the reader that missed it."""

import pytest

from zhouyi.data import pairs
from zhouyi.evaluation import answers, judge, reports, stats, trace
from zhouyi.evaluation.checks import BY_NAME, CHECKS, HIGHER_IS_BETTER, NAMES, problems
from zhouyi.export import gate
from zhouyi.spec import ExportGateSpec


def failing(name: str) -> dict[str, bool]:
    """One answer's flags: every check passed but `name`."""
    return {c.name: c.good if c.name != name else not c.good for c in CHECKS}


def test_the_report_computes_and_labels_every_check():
    assert answers.SHARES == NAMES
    assert set(reports.CHECK_LABELS) == set(NAMES)
    assert set(HIGHER_IS_BETTER) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_the_judge_counts_each_failed_check_as_a_problem_and_prefers_the_other_answer(name):
    assert problems(failing(name)) == {name}
    assert judge.checks_prefer(failing(name), failing("__none__")) == "b"


@pytest.mark.parametrize("name", [c.name for c in CHECKS if c.gated])
def test_the_export_gate_stops_a_model_worse_on_each_gated_check(name):
    good = [BY_NAME[name].good] * 40
    worse = [not BY_NAME[name].good] * 30 + good[:10]
    compared = stats.compare_shares(good, worse, HIGHER_IS_BETTER[name], 0)
    assert compared["verdict"] == "worse"
    report = {"comparisons": [{"a": "base", "b": "tuned", "metrics": {}, "shares": {name: compared}}]}
    (line,) = gate.failures(report, ExportGateSpec(share_worse=0.0))
    assert line.startswith(name)


@pytest.mark.parametrize("name", [c.name for c in CHECKS if c.traced])
def test_the_trace_follows_each_traced_check(name):
    assert name in [c.name for c in trace.TRACED]
    assert BY_NAME[name].fails(failing(name)[name]) and not BY_NAME[name].fails(failing("__none__")[name])


ANSWERS = {  # an answer that fails just the one check (tiny-cpu's voice markers: 主, 预示, 吉 ...)
    "boilerplate": "梦见蛇主吉。请看下面由(周公解梦官网)小编帮你整理的梦见蛇的详细解说吧。",
    "in_voice": "梦见蛇说明你最近压力很大。",
    "loops": "梦见蛇主财运亨通。梦见蛇主财运亨通。梦见蛇主财运亨通。",
    "empty": "",
    "at_token_limit": "梦见蛇主财运亨通，宜守不宜攻",
}


@pytest.mark.parametrize("name", NAMES)
def test_a_preference_pair_gives_a_reason_for_each_failed_check(name):
    from zhouyi.load import load

    spec = load("tiny-cpu").spec
    reasons = pairs.problems(ANSWERS[name], spec, at_limit=name == "at_token_limit")
    assert reasons == [BY_NAME[name].problem]
    assert pairs.problems("梦见蛇主财运亨通，宜守不宜攻。", spec, at_limit=False) == []
