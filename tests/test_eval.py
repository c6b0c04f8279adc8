"""`zhouyi eval`: the held-out split answered by the base and the tuned model through LLaMA-Factory's own
prediction, and the comparison report; plus the report's checks on answers written by hand."""

import json
import os
from pathlib import Path

import pytest

from tests.conftest import REPO, cli, fake_trained_run, zhouyi
from zhouyi.evaluation.answers import has_boilerplate, in_voice, loops
from zhouyi.evaluation.evaluate import (
    Prediction,
    build_report,
    compare,
    comparison_markdown,
    to_markdown,
)
from zhouyi.load import load


def nll_outside_zhouyi(base: Path, adapter: Path, rows: list[dict]) -> list[float]:
    """Each row's base answer's mean loss per token under base + adapter, as transformers computes a causal LM's loss
    (labels, the prompt masked), with the prompt LLaMA-Factory's qwen template encodes: no zhouyi code."""
    import torch
    from llamafactory.data.template import get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    template = get_template_and_fix_tokenizer(tokenizer, DataArguments(template="qwen"))
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapter).eval()
    losses = []
    for row in rows:
        prompt, answer = template.encode_oneturn(tokenizer, [{"role": "user", "content": row["prompt"]},
                                                             {"role": "assistant", "content": row["base"]}])
        with torch.no_grad():
            losses.append(model(input_ids=torch.tensor([prompt + answer]),
                                labels=torch.tensor([[-100] * len(prompt) + answer])).loss.item())
    return losses


@pytest.mark.slow
def test_eval_compares_base_and_tuned_on_the_held_out_split(evaluated_run):
    project, run, result = evaluated_run  # `zhouyi eval --run RUN --max-samples 4`
    report = json.loads((run / "eval" / "report.json").read_text())
    assert report["rows"] == 4
    for model in ("base", "tuned"):
        assert set(report["metrics"][model]) == {"bleu-4", "rouge-1", "rouge-2", "rouge-l"}
        assert (run / "eval" / model / "generated_predictions.jsonl").is_file(), "LLaMA-Factory's own outputs"
    assert report["metrics"]["base"] != report["metrics"]["tuned"], "two models, two sets of answers"
    held_out = json.loads((REPO / "data" / "zhougong_demo_eval.json").read_text())
    first = report["samples"][0]
    assert first["question"] == held_out[0]["input"], "the question without the persona in front"
    assert len(report["samples"]) == 3, "tiny-cpu's eval.side_by_side"
    assert set(report["checks"]) == {"reference", "base", "tuned"}
    assert report["checks"]["reference"]["boilerplate"] == 0.0 and report["checks"]["reference"]["in_voice"] == 1.0
    assert (run / "eval" / "loss.png").read_bytes()[:4] == b"\x89PNG"
    markdown = (run / "eval" / "report.md").read_text()
    assert "| metric | base | tuned | change |" in markdown and f"| reference | {held_out[0]['output']} |" in markdown
    assert "report:" in result.stdout and "ROUGE-L" in result.stdout
    # every question, every model, every score and check; their means are LLaMA-Factory's own
    assert len(report["questions"]) == 4
    for model in ("base", "tuned"):
        for metric, value in report["metrics"][model].items():
            mean = sum(q["scores"][model][metric] for q in report["questions"]) / 4
            assert mean == pytest.approx(value, abs=0.01), (model, metric)
        assert all(set(q["checks"][model]) >= {"boilerplate", "in_voice", "loops"} for q in report["questions"])
    (versus,) = report["comparisons"]
    assert (versus["a"], versus["b"], versus["questions"]) == ("base", "tuned", 4)
    rouge = versus["metrics"]["rouge-l"]
    assert rouge["low"] <= rouge["diff"] <= rouge["high"] and rouge["verdict"] in ("better", "worse",
                                                                                   "no clear difference")
    assert "| ROUGE-L |" in markdown and "95% interval" in markdown and "McNemar p" in markdown
    # the forgetting check: tiny-cpu asks 8 general prompts; the base's answers are cached for the next run
    forgot = report["forgetting"]
    assert forgot["prompts"] == 8 and len(forgot["per_prompt"]) == 8
    assert forgot["drift"]["low"] <= forgot["drift"]["mean"] <= forgot["drift"]["high"]
    assert forgot["drift"]["mean"] == pytest.approx(forgot["nll"]["tuned"] - forgot["nll"]["base"], abs=1e-3)
    assert forgot["drift"]["mean"] != 0, "the tuned model reads the base's answers differently"
    assert 0 <= forgot["bleed"]["b"]["share"] <= 1 and "## Forgetting" in markdown
    recomputed = nll_outside_zhouyi(project / "models" / "tiny-qwen2", run / "train", forgot["per_prompt"][:3])
    assert recomputed == pytest.approx([p["tuned_nll"] for p in forgot["per_prompt"][:3]], abs=1e-3), \
        "the tuned model's likelihood of the base's answers is transformers' own loss with the adapter applied"
    assert len(list((project / ".zhouyi" / "general").glob("*.json"))) == 1
    again = zhouyi("eval", "--run", str(run), "--max-samples", "4", cwd=project, timeout=600)
    assert again.returncode == 0 and "the base model answers" not in again.stdout, "cached"
    assert json.loads((run / "eval" / "report.json").read_text())["forgetting"]["nll"] == forgot["nll"]
    reused = cli("eval", "--run", str(run), "--max-samples", "4", "--reuse", cwd=project)
    assert reused.returncode == 0 and "reused" in reused.stdout and "llamafactory-cli" not in reused.stdout


@pytest.mark.slow
def test_two_runs_are_compared_on_real_answers_with_the_base_asked_once(evaluated_run, tiny_project):
    project, first, _ = evaluated_run
    trained = zhouyi("train", "tiny-cpu", "--set", "train.max_steps=4", cwd=tiny_project)
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    (second,) = (tiny_project / "runs").iterdir()
    result = zhouyi("eval", "--run", str(first), "--run", str(second), "--max-samples", "4", "--reuse",
                    "--no-forgetting", cwd=tiny_project, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"{first.name}: its evaluation is newer than its weights and asked the same: reused" in result.stdout
    assert (second / "eval" / "tuned" / "generated_predictions.jsonl").is_file(), "LLaMA-Factory answered for it"
    assert not (second / "eval" / "base").exists(), "the base was asked once, by the first run"
    reports = [json.loads((run / "eval" / "report.json").read_text()) for run in (first, second)]
    assert reports[0]["metrics"]["tuned"] != reports[1]["metrics"]["tuned"], "85 steps and 4 answer differently"
    (folder,) = (tiny_project / "runs").glob("compare-*")
    table = json.loads((folder / "compare.json").read_text())
    assert table["runs"] == [r["run"] for r in reports] and table["rows"] == 4
    assert table["metrics"]["base"] == reports[0]["metrics"]["base"] == reports[1]["metrics"]["base"]
    for run, report in zip((first, second), reports, strict=True):
        assert table["metrics"][run.name] == report["metrics"]["tuned"], "each run's column is its own report's"
    head = table["comparisons"][-1]
    assert (head["a"], head["b"], head["questions"]) == (first.name, second.name, 4)
    diffs = [b["scores"]["tuned"]["rouge-l"] - a["scores"]["tuned"]["rouge-l"]
             for a, b in zip(reports[0]["questions"], reports[1]["questions"], strict=True)]
    rouge = head["metrics"]["rouge-l"]
    assert rouge["diff"] == pytest.approx(sum(diffs) / 4, abs=0.01) and rouge["low"] <= rouge["diff"] <= rouge["high"]
    assert f"| ROUGE-L | {reports[0]['metrics']['base']['rouge-l']:.2f} |" in (folder / "compare.md").read_text()


@pytest.mark.slow
def test_an_evaluations_askings_are_llamafactorys_own_cli_from_one_import(trained_run, tmp_path):
    """predict_all runs each asking as `llamafactory-cli train` would, from one import: the same rows as the script
    itself writes, no asking sees what the one before it set (LLaMA-Factory keeps the last default_system in its
    template registry), and the first that fails names its model and log, the rest not asked."""
    import subprocess

    from zhouyi.errors import UserError
    from zhouyi.evaluation.answers import Asking, predict_all
    from zhouyi.process import resolve_executable
    from zhouyi.runs import recorded_spec

    project, run, _ = trained_run
    spec = recorded_spec(run)
    persona = spec.model.default_system
    four = ("max_samples=4",)
    rows = predict_all(spec, run, [Asking("tuned", tmp_path / "persona", four),
                                   Asking("tuned", tmp_path / "bare", (*four, "default_system=null")),
                                   Asking("tuned", tmp_path / "persona-again", four)])
    assert all(persona in row["prompt"] for row in rows[0]) and len(rows[0]) == 4
    assert not any(persona in row["prompt"].split("<|im_start|>user")[0] for row in rows[1]), "no system prompt"
    assert rows[2] == rows[0], "the bare asking left nothing behind for the next"
    script = subprocess.run([resolve_executable("llamafactory-cli"), "train", str(run / "predict.yaml"), *four,
                             f"output_dir={tmp_path / 'script'}"], cwd=run, capture_output=True, text=True,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert script.returncode == 0, script.stderr[-3000:]
    assert (tmp_path / "script" / "generated_predictions.jsonl").read_bytes() == \
        (tmp_path / "persona" / "generated_predictions.jsonl").read_bytes(), "what llamafactory-cli itself writes"

    with pytest.raises(UserError) as failed:
        predict_all(spec, run, [Asking("base", tmp_path / "broken", ("template=no_such_template",)),
                                Asking("tuned", tmp_path / "after", four)])
    message = str(failed.value)
    assert message.startswith(f"base model: prediction failed (exit 1); {tmp_path / 'broken.log'} ends:")
    assert "no_such_template" in message, "the log's tail says what LLaMA-Factory refused"
    assert not (tmp_path / "after").exists() and not (tmp_path / "after.log").exists(), "not asked after a failure"


def test_eval_without_a_held_out_split_says_how_to_make_one(project):
    (project / "job.yaml").write_text("base: tiny-cpu\nname: job\n"
                                      "data: {datasets: [{name: zhougong_demo, file_name: zhougong_demo.json}]}\n")
    run = fake_trained_run(project, "job.yaml")
    result = cli("eval", "--run", str(run), cwd=project)
    assert result.returncode == 2 and "no eval split" in result.stderr and "split: eval" in result.stderr


def test_eval_refuses_a_run_that_did_not_finish(project):
    assert cli("train", "tiny-cpu", "--dry-run", cwd=project).returncode == 0
    (run,) = (project / "runs").iterdir()
    result = cli("eval", "--run", str(run), cwd=project)
    assert result.returncode == 2 and "training has not finished" in result.stderr


def test_boilerplate_and_voice_checks():
    spec = load("tiny-cpu").spec
    voice, off = spec.eval.voice_markers, spec.eval.off_voice_markers
    assert has_boilerplate("梦见蛇，主财运。【大师特色梦境分析】点此测算")
    assert has_boilerplate("更多解梦请访问 www.example.com")
    assert not has_boilerplate("梦见蛇，主财运亨通，宜守不宜攻。")
    assert in_voice("蛇盘于梦中，主财气将至。", voice, off)
    assert not in_voice("作为一个AI助手，我认为梦见蛇预示着变化。", voice, off), "an assistant's voice, markers or not"
    assert not in_voice("这个梦说明你最近压力很大。", voice, off), "no diviner's words"


def test_report_puts_the_models_side_by_side():
    spec = load("tiny-cpu").spec
    base = [Prediction("梦见蛇", "主财。", "作为一个AI助手，我无法解梦。"), Prediction("梦见龙", "主贵。", "")]
    tuned = [Prediction("梦见蛇", "主财。", "蛇入梦，主财。"), Prediction("梦见龙", "主贵。", "龙现，主贵人。")]
    metrics = {"base": {"rouge-l": 2.0}, "tuned": {"rouge-l": 30.5}}
    report = build_report(spec, REPO / "runs" / "r", base, tuned, metrics, None, count_tokens=len)
    assert report["checks"]["base"] == {"boilerplate": 0.0, "in_voice": 0.0, "empty": 0.5, "loops": 0.0,
                                        "length_ratio": 2.5, "at_token_limit": 0.0}
    assert "at_token_limit" not in report["checks"]["reference"], "a reference is never generated"
    assert report["checks"]["tuned"]["in_voice"] == 1.0
    markdown = to_markdown(report)
    assert "| ROUGE-L | 2.00 | 30.50 | +28.50 |" in markdown
    assert "| base | (empty) |" in markdown and "| tuned | 龙现，主贵人。 |" in markdown
    assert "loss" not in markdown.split("## 1.")[0].split("In voice")[1], "no curve, no image link"
    assert "| repeating itself | 0% | 0% | 0% |" in markdown


def test_degeneration_checks():
    spec = load("tiny-cpu").spec
    looping = "梦见乞丐，预示你将遇到一些不安的事情。" * 3
    assert loops(looping) and loops("主财运亨通，" * 5)
    assert not loops("蛇盘于梦中，主财气将至。若蛇缠身而不伤人，预示近日有意外之财；若被蛇咬，宜防小人暗算。")
    answers, references = [looping, "主财。"], ["主财。", "主财。"]
    base = [Prediction("q", r, a) for a, r in zip(answers, references, strict=True)]
    report = build_report(spec, REPO / "runs" / "r", base, [Prediction("q", r, r) for r in references],
                          {"base": {}, "tuned": {}}, None,
                          count_tokens=len)  # one token a character: the looping answer reaches the 32-token limit
    assert report["checks"]["base"]["loops"] == 0.5 and report["checks"]["base"]["at_token_limit"] == 0.5
    assert report["checks"]["tuned"]["loops"] == 0.0 and report["checks"]["tuned"]["length_ratio"] == 1.0


def test_without_system_needs_an_eval_split_that_does_not_carry_the_persona(project):
    (project / "sys.yaml").write_text(
        "base: tiny-cpu\nname: sys\ndata:\n  datasets:\n"
        "    - {name: zhougong_demo, file_name: zhougong_demo.json}\n"
        "    - {name: zhougong_demo_eval, file_name: zhougong_demo_eval.json, split: eval,\n"
        "       columns: {prompt: instruction, query: input, response: output, system: instruction}}\n")
    run = fake_trained_run(project, "sys.yaml")
    result = cli("eval", "--run", str(run), "--without-system", cwd=project)
    assert result.returncode == 2 and "maps a system column" in result.stderr
    assert not (run / "eval").exists(), "refused before anything ran"


def test_several_runs_compare_in_one_table():
    spec = load("tiny-cpu").spec
    base = [Prediction("梦见蛇", "主财。", "作为一个AI助手，我无法解梦。")]
    reports = [build_report(spec, REPO / "runs" / name, base, [Prediction("梦见蛇", "主财。", answer)],
                            {"base": {"rouge-l": 2.0}, "tuned": {"rouge-l": score}}, None)
               for name, answer, score in (("tutorial-1", "小编帮你整理的梦见蛇的详细解说吧。", 20.0),
                                           ("clean-1", "蛇入梦，主财。", 40.0))]
    table = compare(reports)
    assert list(table["checks"]) == ["reference", "base", "tutorial-1", "clean-1"], "the base once, then each run"
    assert table["metrics"]["clean-1"]["rouge-l"] == 40.0 and table["checks"]["tutorial-1"]["boilerplate"] == 1.0
    markdown = comparison_markdown(table)
    assert "| ROUGE-L | 2.00 | 20.00 | 40.00 |" in markdown
    assert "| with site boilerplate | 0% | 0% | 100% | 0% |" in markdown
    assert "| clean-1 | 蛇入梦，主财。 |" in markdown


def test_runs_with_different_held_out_questions_are_not_compared(project):
    first = fake_trained_run(project, "tiny-cpu")
    (project / "other.yaml").write_text(
        "base: tiny-cpu\nname: other\ndata:\n  datasets:\n"
        "    - {name: zhougong_demo, file_name: zhougong_demo.json}\n"
        "    - {name: other_eval, file_name: zhougong_demo.json, split: eval}\n")
    assert cli("train", "other.yaml", "--dry-run", cwd=project).returncode == 0
    (second,) = (project / "runs").glob("other-*")
    (second / "train").mkdir()
    (second / "train" / "adapter_config.json").write_text("{}")
    result = cli("eval", "--run", str(first), "--run", str(second), cwd=project)
    assert result.returncode == 2 and "held-out split differs" in result.stderr
    assert not (first / "eval").exists() and not (second / "eval").exists(), "refused before anything ran"
