"""How sure a comparison is (evaluation.stats): intervals and verdicts on inputs whose answer is known, and the seeds of
several runs shown together (zhouyi.evaluation.evaluate.compare)."""

import pytest

from tests.conftest import REPO
from zhouyi.evaluation import stats
from zhouyi.evaluation.answers import Prediction
from zhouyi.evaluation.evaluate import build_report, compare, seed_groups
from zhouyi.evaluation.reports import comparison_markdown, to_markdown
from zhouyi.load import load


def test_a_clear_difference_is_better_and_noise_is_no_clear_difference():
    a = [10.0, 12.0, 11.0, 9.0, 10.5, 11.5, 10.0, 12.0, 9.5, 11.0]
    clear = stats.compare_scores(a, [x + 8 + (i % 3) for i, x in enumerate(a)])
    assert clear["verdict"] == "better" and clear["low"] > 0 and clear["diff"] == pytest.approx(8.9, abs=0.01)
    assert stats.compare_scores(a, [x - 8 for x in a], higher_is_better=True)["verdict"] == "worse"
    noisy = stats.compare_scores(a, [x + (5 if i % 2 else -5) for i, x in enumerate(a)])
    assert noisy["verdict"] == "no clear difference" and noisy["low"] < 0 < noisy["high"]
    assert stats.compare_scores(a, [x + 8 for x in a], seed=3) == stats.compare_scores(a, [x + 8 for x in a], seed=3), \
        "seeded: the same scores give the same interval"


def test_the_issues_proof_numbers_do_not_decide():
    """The README's 10-question proof: +9.2 ROUGE-L with an interval that includes zero is no improvement."""
    import random

    rng = random.Random(7)
    base = [rng.uniform(5, 35) for _ in range(10)]
    tuned = [b + d for b, d in zip(base, [30, -12, 25, -8, 20, 3, 28, -15, 18, 3], strict=True)]
    found = stats.compare_scores(base, tuned)
    assert found["diff"] == pytest.approx(9.2, abs=0.01) and found["verdict"] == "no clear difference"


def test_shares_wilson_and_mcnemar_on_known_values():
    low, high = stats.wilson(0, 10).low, stats.wilson(0, 10).high
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    w = stats.wilson(9, 10)
    assert (round(w.low, 3), round(w.high, 3)) == (0.596, 0.982)
    assert stats.mcnemar_exact([True] * 9 + [False], [False] * 10) == pytest.approx(2 / 2**9)  # 9 discordant, one way
    assert stats.mcnemar_exact([True, False, True], [False, True, True]) == 1.0
    boiler = stats.compare_shares([True] * 9 + [False], [False] * 10, higher_is_better=False)
    assert boiler["verdict"] == "better" and boiler["mcnemar_p"] == pytest.approx(0.0039, abs=1e-4)
    two = stats.compare_shares([True, True], [False, False], higher_is_better=False)
    assert two["verdict"] == "no clear difference" and two["mcnemar_p"] == 0.5, "2 of 2 can be chance"


def test_fewer_than_two_questions_give_no_interval():
    with pytest.raises(stats.TooFew, match="needs at least 2"):
        stats.paired_bootstrap([1.0], [2.0])
    spec = load("tiny-cpu").spec
    one = [Prediction("梦见蛇", "主财。", "主财。")]
    report = build_report(spec, REPO / "runs" / "r", one, one, {"base": {"rouge-l": 1.0}, "tuned": {"rouge-l": 1.0}},
                          None)
    assert report["comparisons"][0]["too_few"].startswith("1 question")
    assert "none: 1 question: an interval needs at least 2" in to_markdown(report)


def test_runs_that_differ_only_in_seed_are_one_column_with_their_spread():
    spec = load("tiny-cpu").spec
    questions = [("梦见蛇", "蛇入梦，主财运亨通。"), ("梦见龙", "龙现于梦，主贵人相助。"),
                 ("梦见水", "清水入梦，主心境平和。")]
    base = [Prediction(q, r, "作为一个AI助手，我无法解梦。") for q, r in questions]

    def run(name: str, answers: list[str], rouge: float) -> dict:
        tuned = [Prediction(q, r, a) for (q, r), a in zip(questions, answers, strict=True)]
        return build_report(spec, REPO / "runs" / name, base, tuned,
                            {"base": {"rouge-l": 1.0}, "tuned": {"rouge-l": rouge}}, None)

    refs = [r for _, r in questions]
    reports = [run("clean-s0", refs, 90.0), run("clean-s1", refs[:2] + ["主吉。"], 70.0),
               run("clean-s2", refs, 86.0), run("tutorial", ["小编帮你整理的详细解说吧。"] * 3, 5.0)]
    seeds = [spec.model_copy(update={"train": spec.train.model_copy(update={"seed": s})}) for s in (0, 1, 2)]
    other = spec.model_copy(update={"train": spec.train.model_copy(update={"learning_rate": 1e-3})})
    groups = seed_groups([*seeds, other])
    assert groups == [[0, 1, 2], [3]]
    table = compare(reports, groups)
    assert list(table["checks"]) == ["reference", "base", "clean-s0 (3 seeds)", "tutorial"]
    assert table["metrics"]["clean-s0 (3 seeds)"]["rouge-l"] == pytest.approx(82.0)
    assert table["seeds"]["clean-s0 (3 seeds)"]["rouge-l"] == {"mean": 82.0, "sd": 10.58, "min": 70.0, "max": 90.0,
                                                                "seeds": 3}
    versus = {(c["a"], c["b"]) for c in table["comparisons"]}
    assert versus == {("base", "clean-s0 (3 seeds)"), ("base", "tutorial"), ("clean-s0 (3 seeds)", "tutorial")}
    markdown = comparison_markdown(table)
    assert "| ROUGE-L | 1.00 | 82.00 (seeds 70.0–90.0, sd 10.6) | 5.00 |" in markdown
    assert "| tutorial against clean-s0 (3 seeds) | change | 95% interval | verdict |" in markdown
