"""The forgetting check (evaluation.forgetting): the shipped general prompts, a user's prompts file checked before
anything runs, drift and bleed with their intervals, and LLaMA-Factory's data mixing rendered for a user who sees
forgetting."""

import json

import pytest
import yaml

from tests.conftest import cli, fake_trained_run
from zhouyi.errors import UserError
from zhouyi.evaluation.forgetting import SHIPPED, bleeds, load_prompts, summarise
from zhouyi.load import load


def test_the_shipped_prompts_are_general_chinese_and_english():
    rows = json.loads(SHIPPED.read_text(encoding="utf-8"))
    assert len(rows) >= 60
    assert {r["topic"] for r in rows} == {"everyday", "cooking", "travel", "arithmetic", "code", "history"}
    chinese = [r for r in rows if any("\u4e00" <= ch <= "\u9fff" for ch in r["prompt"])]
    assert 20 <= len(chinese) <= len(rows) - 20, "both languages"
    markers = load("tiny-cpu").spec.eval.bleed_markers
    assert not any(bleeds(r["prompt"], markers) for r in rows), "no prompt asks about dreams itself"
    assert len(load_prompts(load("tiny-cpu").spec, SHIPPED.parent)) == 8, "tiny-cpu's general_max_samples"


@pytest.mark.parametrize("content, message", [
    ("", "expected a JSON list"), ("[]", "holds no prompts"), ("[{\"q\": 1}]", "row 0 holds no prompt"),
    ("[\"ok\", \"\"]", "row 1 holds no prompt"), ("{\"prompt\": \"a\"}\n{bad\n", "line 2 is not JSON")])
def test_a_bad_prompts_file_is_named(tmp_path, content, message):
    (tmp_path / "general.jsonl").write_text(content, encoding="utf-8")
    spec = load("tiny-cpu").spec.model_copy(update={"eval": load("tiny-cpu").spec.eval.model_copy(
        update={"general_prompts": "general.jsonl"})})
    with pytest.raises(UserError, match="eval.general_prompts: .*general.jsonl") as caught:
        load_prompts(spec, tmp_path)
    assert message in str(caught.value)


def test_eval_refuses_a_bad_prompts_file_before_anything_runs(project):
    (project / "general.json").write_text("[]", encoding="utf-8")
    (project / "forget.yaml").write_text("base: tiny-cpu\nname: forget\neval: {general_prompts: general.json}\n")
    run = fake_trained_run(project, "forget.yaml")
    result = cli("eval", "--run", str(run), cwd=project)
    assert result.returncode == 2 and "general.json: holds no prompts" in result.stderr
    assert not (run / "eval").exists()


def test_drift_and_bleed_with_their_intervals():
    prompts = [f"p{i}" for i in range(12)]
    same = summarise(prompts, ["a"] * 12, ["a"] * 12, [1.0 + i / 10 for i in range(12)],
                     [1.0 + i / 10 + (0.01 if i % 2 else -0.01) for i in range(12)], ["梦见"])
    assert same["drift"]["low"] < 0 < same["drift"]["high"] and same["bleed"]["verdict"] == "no clear difference"
    moved = summarise(prompts, ["a"] * 12, ["梦见你，主吉"] * 8 + ["a"] * 4, [1.0] * 12, [1.5] * 12, ["梦见"])
    assert moved["drift"] == {"mean": 0.5, "low": 0.5, "high": 0.5}
    assert moved["bleed"]["b"]["share"] == pytest.approx(0.667, abs=1e-3) and moved["bleed"]["verdict"] == "worse"
    assert summarise(["p"], ["a"], ["a"], [1.0], [1.2], ["梦见"])["too_few"].startswith("1 question")


def test_data_mixing_renders_for_llamafactory(project):
    (project / "mixed.yaml").write_text(
        "base: tiny-cpu\nname: mixed\ndata:\n  mix_strategy: interleave_under\n  interleave_probs: [0.8, 0.2]\n"
        "  datasets:\n    - {name: zhougong_demo, file_name: zhougong_demo.json}\n"
        "    - {name: general, file_name: zhougong_demo_eval.json}\n"
        "    - {name: zhougong_demo_eval, file_name: zhougong_demo_eval.json, split: eval}\n")
    assert cli("train", "mixed.yaml", "--dry-run", cwd=project).returncode == 0
    (run,) = (project / "runs").glob("mixed-*")
    train = yaml.safe_load((run / "train.yaml").read_text())
    assert train["mix_strategy"] == "interleave_under" and train["interleave_probs"] == "0.8,0.2"
    assert "eval_dataset" not in train, "LLaMA-Factory holds the eval split to the same count: not passed"
    checked = cli("validate", "mixed.yaml", cwd=project)
    assert checked.returncode == 0, checked.stdout + checked.stderr  # LLaMA-Factory's own parser takes them
    for mix, message in (("  interleave_probs: [0.8, 0.2]\n", "needs an interleave_* mix_strategy"),
                         ("  mix_strategy: interleave_over\n  interleave_probs: [1.0]\n", "1 values for 2 training"),
                         ("  mix_strategy: interleave_over\n  interleave_probs: [0.5, 0.6]\n", "sum to 1.1")):
        (project / "bad.yaml").write_text(
            "base: tiny-cpu\nname: bad\ndata:\n" + mix +
            "  datasets:\n    - {name: zhougong_demo, file_name: zhougong_demo.json}\n"
            "    - {name: general, file_name: zhougong_demo_eval.json}\n")
        result = cli("validate", "bad.yaml", cwd=project)
        assert result.returncode == 2 and message in result.stderr + result.stdout, (mix, result.stderr)
