"""`zhouyi eval --judge`: both orders, a flipped verdict a tie and inconsistent, the win rate with its interval, the
agreement with zhouyi's checks, the verdict withheld for an unreliable judge; against scripted judges (fast) and
against `zhouyi api` serving the tiny model (its gibberish verdicts are counted, never a crash)."""

import json
import re
from pathlib import Path

import pytest

from tests.conftest import api_serving, cli, fake_trained_run, zhouyi
from tests.endpoint_server import scripted_server
from zhouyi.evaluation import judge
from zhouyi.spec import JudgeSpec

CLEAN = {"boilerplate": False, "loops": False, "empty": False, "in_voice": True}
DIRTY = {"boilerplate": True, "loops": False, "empty": False, "in_voice": True}
SECRET = "sk-judge-5e1f0c2a9d"


def report(n: int, good_tuned: int) -> dict:
    """An eval report of n questions whose first `good_tuned` tuned answers are the good ones (they say 吉)."""
    questions = []
    for i in range(n):
        good, bad = f"梦{i}主吉。", f"梦{i}更多精彩请访问本站"
        tuned, base = (good, bad) if i < good_tuned else (bad, good)
        questions.append({"question": f"梦见{i}是什么意思？", "answers": {"base": base, "tuned": tuned},
                          "checks": {"base": CLEAN if base == good else DIRTY,
                                     "tuned": CLEAN if tuned == good else DIRTY}})
    return {"run": "runs/x", "questions": questions, "settings": {"seed": 0}}


def fair(body: dict) -> str:
    """A judge that prefers the answer saying 吉, wherever it is shown."""
    prompt = body["messages"][-1]["content"]
    a = prompt.split("[回答A开始]")[1].split("[回答A结束]")[0]
    return "理由：A 说了吉凶。\n[[A]]" if "吉" in a else "理由：B 更好。\n[[B]]"


def judging(url: str, **kw) -> judge.Judging:
    return judge.resolve(JudgeSpec(base_url=url, model="judge", requests_per_minute=6000, **kw), "test",
                         Path("."), "你是周文王")


def quiet(*_, **__):
    pass


def test_a_fair_judge_gives_a_win_rate_with_its_interval_and_agrees_with_the_checks(tmp_path):
    with scripted_server(fair) as (url, _, seen):
        j = judging(url)
        (run := tmp_path / "run" / "eval").mkdir(parents=True)
        ((_, summary),) = judge.judge_runs(j, [(tmp_path / "run", report(30, 24))], None, False, 0, quiet)
        assert len(seen) == 60, "every question asked in both orders"
        shown_first = [re.search(r"\[回答A开始\]\n(.*)\n", s["body"]["messages"][0]["content"]).group(1) for s in seen]
        assert sorted(shown_first) == sorted(a for q in report(30, 24)["questions"] for a in q["answers"].values())
        assert (summary["wins"], summary["losses"], summary["ties"], summary["inconsistent"]) == (24, 6, 0, 0)
        w = summary["win_rate"]
        assert w["share"] == 0.8 and 0.6 < w["low"] < 0.8 < w["high"] <= 0.95 and summary["verdict"] == "better"
        assert summary["agreement"] == {"agree": 30, "of": 30, "share": 1.0, "low": 0.886, "high": 1.0}
        assert summary["by_check"] == {"boilerplate": {"agree": 30, "of": 30}}, "it prefers the answer without"
        assert (run / "judge.json").is_file() and "**Verdict**: tuned is better than base" in \
            (run / "judge.md").read_text()
        again = judge.judge_runs(j, [(tmp_path / "run", report(30, 24))], None, False, 0, quiet)
        assert len(seen) == 60 and again[0][1]["judge"]["cached"] == 60, "a second judging sends nothing"


def test_a_judge_that_always_picks_the_first_answer_is_withheld(tmp_path):
    with scripted_server(lambda body: "[[A]]") as (url, _, _):
        (tmp_path / "run" / "eval").mkdir(parents=True)
        ((_, summary),) = judge.judge_runs(judging(url), [(tmp_path / "run", report(10, 8))], None, False, 0, quiet)
    assert summary["inconsistent"] == 10 and summary["ties"] == 10 and summary["inconsistency"]["share"] == 1.0
    assert "verdict" not in summary and "not reliable for this comparison" in summary["withheld"]
    assert "**Verdict withheld**" in (tmp_path / "run" / "eval" / "judge.md").read_text()


def test_unparseable_verdicts_and_failed_requests_are_counted_not_guessed():
    pairs = judge.pairs_of(report(4, 2), "base", "tuned")
    answers = [("[[A]]", "[[B]]"), ("我觉得都行", "[[A]]"), (None, "[[B]]"), ("[[ B ]] 总之 [[B]]", "[[A]]")]
    s = judge.summarize(pairs, answers, ("base", "tuned"), 0.3)
    assert s["judged"] == 2 and s["unparsed"] == 2 and s["no_answer"] == 1
    assert [r["won"] for r in s["rows"]] == ["b", "unparsed", "unparsed", "a"], "one verdict, said twice, stands"
    two = judge.summarize(pairs[:1], [("[[A]][[B]]", "[[A]]")], ("base", "tuned"), 0.3)
    assert two["unparsed"] == 1 and two["judged"] == 0, "two different verdicts say nothing: unparsed, not the last"


def test_the_verdict_flips_into_a_tie():
    assert judge.outcome_of("A", "B") == ("b", False)  # b shown first and won; a shown first and lost
    assert judge.outcome_of("A", "A") == ("tie", True)  # the first shown won both times: position, not quality
    assert judge.outcome_of("C", "C") == ("tie", False)
    assert judge.outcome_of("C", "B") == ("tie", True)
    assert judge.checks_prefer(CLEAN, DIRTY) == "a" and judge.checks_prefer(CLEAN, CLEAN) is None


@pytest.mark.parametrize("text, field, message", [
    ("base_url: localhost:8000\nmodel: m\n", "base_url", "is not an http(s) URL"),
    (f"base_url: http://127.0.0.1:1/v1\nmodel: m\napi_key_env: {SECRET}\n", "api_key_env", "the value is not shown"),
    ("base_url: http://127.0.0.1:1/v1\nmodel: m\napi_key_env: NO_SUCH_KEY_VAR\n", None, "NO_SUCH_KEY_VAR is not set"),
    ("base_url: http://127.0.0.1:1/v1\nmodel: m\nrubric: nowhere.j2\n", None, "eval.judge.rubric: "),
    ("base_url: http://127.0.0.1:1/v1\nmodel: m\nrubric: bad.j2\n", None, "has no placeholder for answer_b"),
])
def test_a_bad_judge_is_named_before_any_model_is_asked(project, text, field, message):
    run = fake_trained_run(project, "tiny-cpu")
    (project / "bad.j2").write_text("问题 {{ question }} 回答 {{ answer_a }}")
    (project / "judge.yaml").write_text(text)
    result = cli("eval", "--run", str(run), "--judge-with", "judge.yaml", cwd=project)
    assert result.returncode == 2 and message in result.stderr and (field or "") in result.stderr, result.stderr
    assert SECRET not in result.stderr + result.stdout, "a key pasted into api_key_env is never shown"
    assert not (run / "eval").exists(), "refused before any model answered"


def test_dry_run_says_what_would_be_sent_and_sends_nothing(project):
    run = fake_trained_run(project, "tiny-cpu")
    (run / "eval").mkdir()
    (run / "eval" / "report.json").write_text(json.dumps(report(5, 3), ensure_ascii=False))
    with scripted_server(fair) as (url, _, seen):
        (project / "judge.yaml").write_text(f"base_url: {url}\nmodel: judge\n")
        result = cli("eval", "--run", str(run), "--judge-with", "judge.yaml", "--dry-run", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "10 requests to send (0 cached)" in result.stdout and "prompt tokens" in result.stdout
    assert not seen and not (run / "eval" / "judge.json").exists()


@pytest.mark.slow
def test_zhouyi_api_serving_the_tiny_model_is_a_judge_and_a_teacher_whose_gibberish_is_counted(trained_run):
    project, run, _ = trained_run
    with api_serving(project, run, SECRET) as (base, _, _):
        (project / "judge.yaml").write_text(f"base_url: {base}\nmodel: tiny-cpu\napi_key_env: JUDGE_KEY\n"
                                            "max_tokens: 24\nconcurrency: 2\nrequests_per_minute: 600\n")
        env = {"JUDGE_KEY": SECRET}
        args = ("eval", "--run", str(run), "--max-samples", "2", "--no-forgetting", "--judge-with", "judge.yaml")
        first = zhouyi(*args, cwd=project, env=env, timeout=600)
        assert first.returncode == 0, first.stderr[-3000:]
        summary = json.loads((run / "eval" / "judge.json").read_text())
        assert summary["questions"] == 2 and summary["judge"]["sent"] + summary["judge"]["cached"] == 4
        assert summary["judged"] + summary["unparsed"] == 2, "every question judged or counted as unparsed"
        assert summary["no_answer"] == 0 and not summary["judge"]["failed"], "the real server answered every request"
        assert "judge, tuned against base" in first.stdout
        again = zhouyi(*args, "--reuse", cwd=project, env=env, timeout=600)
        assert again.returncode == 0, again.stderr[-3000:]
        assert json.loads((run / "eval" / "judge.json").read_text())["judge"]["sent"] == 0, "all from the cache"

        (project / "teacher.yaml").write_text((project / "judge.yaml").read_text().replace("JUDGE_KEY", "TEACHER_KEY"))
        taught = zhouyi("data", "rewrite", "-i", "data/zhougong_demo.json", "--teacher-with", "teacher.yaml",
                        "--limit", "3", cwd=project, env={"TEACHER_KEY": SECRET}, timeout=600)
        assert taught.returncode == 0, taught.stderr[-3000:]
        rows = json.loads((project / "data" / "zhougong_demo_rewritten.json").read_text())
        assert len(rows) == 3 and all(r["rewrite"] == "rewritten" or r["rewrite"].startswith("kept: ") for r in rows)
        assert all(r["output"] == r["original_output"] for r in rows if r["rewrite"] != "rewritten")
        for path in [p for p in project.rglob("*") if p.is_file() and p.stat().st_size < 50_000_000]:
            assert SECRET.encode() not in path.read_bytes(), f"the key was written to {path}"
        assert SECRET not in first.stdout + first.stderr + again.stdout + again.stderr + taught.stdout + taught.stderr


def test_several_runs_are_judged_each_against_the_base_and_against_the_first(tmp_path):
    with scripted_server(fair) as (url, _, seen):
        runs = []
        for name, good in (("run-a", 6), ("run-b", 9)):
            (tmp_path / name / "eval").mkdir(parents=True)
            runs.append((tmp_path / name, report(10, good)))
        (compare := tmp_path / "compare").mkdir()
        written = judge.judge_runs(judging(url), runs, compare, False, 0, quiet)
    assert [(s["a"], s["b"]) for _, s in written] == [("base", "tuned"), ("base", "tuned"), ("run-a", "run-b")]
    assert [s["judge"]["sent"] + s["judge"]["cached"] for _, s in written] == [20, 20, 6], \
        "both orders of every question; the 7 where run-a and run-b answered alike are ties asked of no one"
    assert [p for p, _ in written] == [tmp_path / "run-a" / "eval" / "judge.md", tmp_path / "run-b" / "eval" /
                                       "judge.md", compare / "judge-run-b.md"]
    a_vs_b = written[2][1]
    assert (a_vs_b["wins"], a_vs_b["losses"], a_vs_b["ties"], a_vs_b["inconsistent"]) == (3, 0, 7, 0)
    assert a_vs_b["verdict"] == "no clear difference", "3 wins in 10 does not decide"


def test_the_judge_comes_from_the_spec_given_as_it_is_now(project):
    run = fake_trained_run(project, "tiny-cpu")
    (run / "eval").mkdir()
    (run / "eval" / "report.json").write_text(json.dumps(report(4, 2), ensure_ascii=False))
    with scripted_server(fair) as (url, _, seen):
        (project / "judged.yaml").write_text(f"base: tiny-cpu\neval:\n  judge:\n    base_url: {url}\n    model: j\n"
                                             "    max_inconsistency: 0.1\n")
        planned = cli("eval", "judged.yaml", "--run", str(run), "--judge", "--dry-run", cwd=project)
        assert planned.returncode == 0 and "judge j at" in planned.stdout and not seen, planned.stderr
        missing = cli("eval", "--run", str(run), "--judge", "--dry-run", cwd=project)
        assert missing.returncode == 2 and "has no eval.judge" in missing.stderr, "the run's own spec has none"
