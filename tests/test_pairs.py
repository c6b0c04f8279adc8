"""`zhouyi data pairs`' judgement on hand-made answers: which become `rejected`, why, and which give no pair."""

from __future__ import annotations

from zhouyi.data.pairs import Question, build_pairs
from zhouyi.load import load

SPEC = load("tiny-cpu").spec
REFERENCE = "蛇盘于梦中，主财气将至，宜守不宜攻。"


def q(n: int, reference: str = REFERENCE) -> Question:
    return Question(f"梦见物{n}是什么意思？", "", reference, "你是周文王。")


def test_flagged_answers_are_rejected_with_their_reasons_and_clean_ones_give_no_pair():
    questions = [q(i) for i in range(7)]
    answers = {"base": [
        ("作为一个AI助手，我无法解梦。", False),                      # leaves the persona
        ("梦见蛇，主吉。更多解梦请访问 www.zgjm.example.com", False),   # site boilerplate (and a URL)
        ("梦见蛇，预示财运。梦见蛇，预示财运。梦见蛇，预示财运。", False),  # loops
        ("梦见蛇主财运亨通，宜早做打算，而后", True),                    # ran into the token limit
        ("蛇入梦来，主家宅平安，宜静不宜动。", False),                   # passes every check
        (REFERENCE, False),                                           # the reference itself
        ("今天天气很好。", False),                                      # none of the diviner's words
    ]}
    rows, report = build_pairs(questions, answers, SPEC)
    by_question = {r["instruction"]: r for r in rows}
    assert len(rows) == report["pairs"] == 5
    assert set(by_question) == {f"梦见物{i}是什么意思？" for i in (0, 1, 2, 3, 6)}
    for row in rows:
        assert row["chosen"] == REFERENCE and row["rejected"] != REFERENCE and row["system"] == "你是周文王。"
        assert row["input"] == ""
    because = report["rejected_because"]
    assert because["speaks as an assistant"] == 1 and because["site boilerplate"] == 1
    assert because["repeats itself"] == 1 and because["no end (cut at the token limit)"] == 1
    assert because["not in the persona's voice"] == 1
    assert report["no_pair"] == {"passes every check": 1, "same as the reference": 1}
    assert report["questions"] == 7 and report["models"] == ["base"]


def test_a_problem_counts_only_where_the_reference_is_free_of_it():
    plain = q(0, "梦见下雨，心情平静。")  # a reference without the diviner's words
    rows, report = build_pairs([plain], {"base": [("今天天气很好。", False)]}, SPEC)
    assert rows == [] and report["no_pair"] == {"passes every check": 1}, \
        "a reference out of voice cannot teach the voice"
    rows, _ = build_pairs([plain], {"base": [("今天天气很好。今天天气很好。", False)]}, SPEC)
    assert len(rows) == 1, "it can still teach not to loop"


def test_two_models_with_the_same_answer_give_one_pair_and_rows_without_system_carry_none():
    question = Question("你是谁？", "", "吾乃周文王。", None)
    rows, report = build_pairs([question], {"base": [("我是AI助手。", False)], "tuned": [("我是AI助手。", False)]},
                               SPEC)
    assert rows == [{"instruction": "你是谁？", "input": "", "chosen": "吾乃周文王。", "rejected": "我是AI助手。"}]
    assert report["no_pair"] == {"the same answer from another model": 1}
