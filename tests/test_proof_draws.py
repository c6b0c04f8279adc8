"""The proof's draws (bench/draws.py) and the interval across draws (zhouyi.evaluation.stats.cluster_bootstrap):
held-out dreams never in that draw's training, different draws asked different dreams, too many draws refused naming
the largest, and an interval that widens when draws disagree."""

import sys

import pytest

from tests.conftest import REPO, SHARED_DATA
from zhouyi.evaluation import stats

sys.path.insert(0, str(REPO / "bench"))
import draws  # noqa: E402  (bench/ is a folder of scripts, not a package)

from zhouyi.data.readers import Record  # noqa: E402


def records(n: int) -> list[Record]:
    """n distinct dreams with pages long enough for cleaning to keep, one of them twice under the same keyword."""
    body = ("梦见{k}，预示着近期运势平稳，做事要脚踏实地，不可急于求成。\n"
            "未婚者梦见{k}，象征着感情将有新的进展，宜多沟通。")
    out = [Record(source="s", title=f"梦见{k}", text=body.format(k=k)) for k in (f"物{i:03d}" for i in range(n))]
    return out + [Record(source="s", title="梦见物000是什么意思", text=body.format(k="物000"))]


def test_a_draw_never_trains_on_what_it_is_asked_and_draws_are_asked_different_dreams():
    dreams = draws.usable_dreams(records(60))
    assert len(dreams) == 60, "each keyword once, however many pages it has"
    asked = []
    for d in range(draws.max_draws(len(dreams), 20, 10)):
        trained, held_out = draws.pick(dreams, 20, 10, d)
        assert len(trained) == 20 and len(held_out) == 10
        assert not {x.keyword for x in trained} & {x.keyword for x in held_out}
        asked.append({x.keyword for x in held_out})
    assert len(asked) == 4 and len(set().union(*asked)) == 40, "held-out blocks of different draws are disjoint"
    assert draws.pick(dreams, 20, 10, 1) == draws.pick(dreams, 20, 10, 1), "a draw is a seed: the same every time"


def test_more_draws_than_the_data_holds_are_refused_naming_the_largest():
    dreams = draws.usable_dreams(records(35))
    assert draws.max_draws(35, 20, 10) == 1
    with pytest.raises(draws.TooManyDraws, match="at most 1 draws"):
        draws.pick(dreams, 20, 10, 1)
    assert draws.max_draws(25, 20, 10) == 0


def test_training_statistics_say_what_a_draw_learns_from():
    assert draws.near_neighbours(["水蛇", "被狗咬", "月亮"], ["蛇", "狗咬人", "太阳"]) == 2
    assert draws.is_list_style("梦见蛇，吉。\n梦见蛇咬人，凶。\n1、梦见蛇缠身，主病。")
    assert not draws.is_list_style("蛇是灵物。\n此梦主吉。\n宜静不宜动。")


@pytest.mark.needs("shared")
def test_the_proofs_draws_on_the_scraped_data_are_apart():
    from zhouyi.data.readers import read_file

    dreams = draws.usable_dreams(read_file(SHARED_DATA / "jingle1267_zgjm.jsonl").records[:3000])
    (t0, h0), (t1, h1) = (draws.pick(dreams, 240, 100, d) for d in (0, 1))
    for trained, held_out in ((t0, h0), (t1, h1)):
        assert not {x.keyword for x in trained} & {x.keyword for x in held_out}
    assert not {x.keyword for x in h0} & {x.keyword for x in h1}
    assert {x.keyword for x in t0} != {x.keyword for x in t1}


def test_the_interval_across_draws_carries_the_spread_between_draws():
    agree = [[5.0 + (i % 5) for i in range(100)] for _ in range(3)]
    disagree = [[v + shift for v in agree[0]] for shift in (-4.5, 0.0, 4.5)]
    tight = stats.cluster_bootstrap(agree)
    wide = stats.cluster_bootstrap(disagree)
    assert tight.low > 0 and tight.high - tight.low < 1.5
    assert wide.high - wide.low > 3 * (tight.high - tight.low)
    one_draw = stats.paired_bootstrap([0.0] * 100, disagree[2])
    assert one_draw.low > 8, "one draw alone looks sure of a difference the draws do not agree on"
    found = stats.compare_across_draws([[0.0] * 100] * 3, disagree)
    assert found["diff"] == pytest.approx(7.0, abs=0.01) and found["draws"] == 3
    with pytest.raises(stats.TooFew):
        stats.cluster_bootstrap([[1.0, 2.0]])
