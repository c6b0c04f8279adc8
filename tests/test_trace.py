"""Bad answers traced to their rows (evaluation.trace), on rows written here: the advert a tutorial-style row carries is
found in the answer, traced to the rows that carry it and to the rule that removes it; a stretch no rule matches
says so and how to look further."""

from pathlib import Path

from tests.conftest import REPO
from zhouyi.evaluation.answers import Prediction
from zhouyi.evaluation.evaluate import build_report
from zhouyi.evaluation.reports import to_markdown
from zhouyi.evaluation.trace import TrainingRows, longest_common_substring
from zhouyi.load import load

ADVERT = "【大师特色梦境分析】以上解梦为通用解释，如需知晓具体事宜，可请大师结合您的生辰八字解梦"
FILE = Path("data/tutorial.json")
ROWS = [(FILE, 0, "梦见蛇，主财运。" + ADVERT), (FILE, 1, "梦见龙，主贵人。"),
        (FILE, 2, "梦见水，主平安。" + ADVERT), (FILE, 3, "梦见猫，家中来了一只会说话的猫咪朋友。")]


def test_longest_common_substring():
    assert longest_common_substring("abcdef", "zzcdexx") == "cde"
    assert longest_common_substring("梦见", "猫") == ""


def test_flagged_answers_name_their_rows_and_the_rule_or_how_to_look_further():
    spec = load("tiny-cpu").spec
    questions = [("梦见鱼", "鱼跃于梦，主余财有望。"), ("梦见狗", "狗守家门，主家宅安宁。"),
                 ("梦见山", "登山之梦，主志向高远。")]
    tuned = [Prediction(questions[0][0], questions[0][1], "鱼入梦，主财。" + ADVERT[:30]),
             Prediction(questions[1][0], questions[1][1], "家中来了一只会说话的猫咪朋友。"),
             Prediction(questions[2][0], questions[2][1], "登山之梦，主志向高远。")]
    report = build_report(spec, REPO / "runs" / "r", tuned, tuned, {"base": {}, "tuned": {}}, None,
                          training=TrainingRows(ROWS))
    traces = {(t["question"], t["check"]): t for t in report["traces"]}
    advert = traces[(0, "boilerplate")]
    assert {r["row"] for r in advert["rows"]} == {0, 2}, "the rows that carry the advert"
    assert all(r["rule"] == "advert_footer" for r in advert["rows"]) and advert["next"] is None
    habit = traces[(1, "in_voice")]
    assert [r["row"] for r in habit["rows"]] == [3] and habit["rows"][0]["rule"] is None
    assert habit["next"] == f"zhouyi data explain {FILE} 3", "no rule matched: how to look further"
    assert not any(q == 2 for q, _ in traces), "an answer no check flags is not traced"
    assert "rule `advert_footer` would have removed it" in to_markdown(report)
