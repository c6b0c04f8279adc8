"""`zhouyi export` around LLaMA-Factory's: the Modelfile's persona, and --quantize as a second step on the merge.
(The merge itself and its smoke generation run for real in test_pipeline.)"""

import json
import os
import time

import pytest
import yaml

from tests.conftest import REPO, cli, fake_trained_run
from zhouyi.errors import UserError
from zhouyi.export.merge import missing_quantize_packages, modelfile_with_persona
from zhouyi.load import load

PERSONA = "你是周文王，精通《周易》与解梦之道。请以周文王的口吻，为来访者解释梦境的寓意。"


def test_quantize_refuses_a_run_with_no_merge(project):
    run = fake_trained_run(project, "tiny-cpu")
    result = cli("export", "--run", str(run), "--quantize", "4", cwd=project)
    assert result.returncode == 2 and "run `zhouyi export` first (without --quantize)" in result.stderr


def test_quantize_renders_a_second_step_calibrated_on_our_data(project):
    run = fake_trained_run(project, "tiny-cpu")
    (run / "merged").mkdir()
    (run / "merged" / "config.json").write_text("{}")
    result = cli("export", "--run", str(run), "--quantize", "8", "--dry-run", cwd=project)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((run / "quantize.yaml").read_text())
    assert config["model_name_or_path"] == str(run / "merged") and "adapter_name_or_path" not in config
    assert config["export_quantization_bit"] == 8 and config["export_dir"] == str(run / "merged-gptq-int8")
    rows = [json.loads(line) for line in open(config["export_quantization_dataset"], encoding="utf-8")]
    assert rows and all(len(r["text"]) >= 4 * config["export_quantization_maxlen"] for r in rows)
    assert "蛇盘于梦中" in rows[0]["text"], "calibrated on the project's own answers"
    assert "llamafactory-cli export" in result.stdout and str(run / "quantize.yaml") in result.stdout


@pytest.mark.skipif(not missing_quantize_packages(), reason="optimum and gptqmodel are installed here")
def test_quantize_names_the_packages_it_needs(project):
    run = fake_trained_run(project, "tiny-cpu")
    (run / "merged").mkdir()
    (run / "merged" / "config.json").write_text("{}")
    result = cli("export", "--run", str(run), "--quantize", "4", cwd=project)
    assert result.returncode == 2 and "pip install" in result.stderr and "gptqmodel" in result.stderr
    assert not (run / "merged-gptq-int4").exists(), "nothing started, nothing written"


def test_modelfile_gets_the_persona_once(tmp_path):
    (tmp_path / "Modelfile").write_text('FROM .\n\nPARAMETER stop "<|im_end|>"\n')
    assert modelfile_with_persona(tmp_path, PERSONA)
    assert not modelfile_with_persona(tmp_path, PERSONA), "already there: left alone"
    assert (tmp_path / "Modelfile").read_text().count(f'SYSTEM """{PERSONA}"""') == 1


@pytest.mark.parametrize("export_dir", [".", "..", "../..", "train", "/"])
def test_an_export_dir_that_is_not_a_folder_of_its_own_is_refused(project, export_dir):
    result = cli("validate", "tiny-cpu", "--set", f"export.export_dir={export_dir}", cwd=project)
    assert result.returncode == 2 and "export.export_dir" in result.stdout + result.stderr


def test_force_replaces_only_a_folder_zhouyi_made(project):
    run = fake_trained_run(project, "tiny-cpu")
    mine = run / "merged"
    mine.mkdir()
    (mine / "my-weights.safetensors").write_text("the user's")
    for flags in ((), ("--force",)):
        result = cli("export", "--run", str(run), *flags, cwd=project)
        assert result.returncode == 2 and "zhouyi did not make it" in result.stderr, result.stderr
        assert (mine / "my-weights.safetensors").read_text() == "the user's"
    from zhouyi.runs import ensure_empty_target

    ensure_empty_target(run / "ours", force=False)
    (run / "ours" / "model.safetensors").write_text("an earlier export")
    with pytest.raises(UserError, match="pass --force"):
        ensure_empty_target(run / "ours", force=False)
    ensure_empty_target(run / "ours", force=True)
    assert [p.name for p in (run / "ours").iterdir()] == [".zhouyi-made"], "replaced: only the marker is new"


DREAMS = [("梦见蛇", "蛇入梦，主财运亨通，宜守不宜攻。"), ("梦见龙", "龙现于梦，主贵人相助，事业有成。"),
          ("梦见水", "清水入梦，主心境平和，财源渐进。"), ("梦见火", "火光入梦，主事业兴旺，然宜防口舌。"),
          ("梦见山", "登山之梦，主志向高远，宜持之以恒。"), ("梦见鱼", "鱼跃于梦，主余财有望，家宅安宁。"),
          ("梦见桥", "过桥之梦，主难关将过，贵人在侧。"), ("梦见雨", "细雨入梦，主润物之福，忌急躁。"),
          ("梦见花", "花开入梦，主姻缘将至，喜事临门。"), ("梦见马", "骏马入梦，主行动有成，宜远行。")]


def gate_report(base_answers: list[str], tuned_answers: list[str], forgot: dict | None = None) -> dict:
    """A real report (zhouyi.evaluation.evaluate.build_report) of these answers to the first held-out dreams."""
    from zhouyi.evaluation.answers import Prediction, scores
    from zhouyi.evaluation.evaluate import build_report

    spec = load("tiny-cpu").spec
    rows = DREAMS[:len(base_answers)]
    base = [Prediction(q, ref, a) for (q, ref), a in zip(rows, base_answers, strict=True)]
    tuned = [Prediction(q, ref, a) for (q, ref), a in zip(rows, tuned_answers, strict=True)]
    means = {name: {m: sum(scores(p.answer, p.reference)[m] for p in ps) / len(ps) for m in ("rouge-l", "bleu-4")}
             for name, ps in (("base", base), ("tuned", tuned))}
    return build_report(spec, REPO / "runs" / "r", base, tuned, means, None, forgot=forgot)


def test_the_export_gate_stops_only_what_the_interval_shows_worse():
    from zhouyi.evaluation.forgetting import summarise
    from zhouyi.export.gate import failures

    gate = load("tiny-cpu").spec.export.gate
    references = [ref for _, ref in DREAMS]
    lost = gate_report(references, ["作为一个AI助手，我无法解释梦境。"] * 10)
    lines = failures(lost, gate)
    assert any(line.startswith("rouge-l ") and "95% interval" in line and "below the allowed drop 0.0" in line
               for line in lines), lines
    assert any(line.startswith("in_voice 0% of answers against the base's 100%") and "McNemar p 0.002" in line
               for line in lines), lines
    assert failures(lost, gate.model_copy(update={"metric_drop": 200.0, "share_worse": 1.0})) == [], \
        "the margins are the spec's"
    noise = gate_report(references[:2], [references[0], "蛇入梦，主财。"])  # one answer a little worse: noise
    assert failures(noise, gate) == [], "an interval that includes no difference blocks nothing"
    one = gate_report(references[:1], ["作为一个AI助手，我无法解释梦境。"])
    assert failures(one, gate) == ["1 question: an interval needs at least 2, so noise cannot be told from a worse "
                                   "model: evaluate more questions"]
    prompts = [f"p{i}" for i in range(10)]
    drifted = summarise(prompts, ["a"] * 10, ["梦见此物，主吉。"] * 10, [1.0] * 10, [2.0 + i / 100 for i in range(10)],
                        ["梦见"])
    lines = failures(gate_report(references, references, drifted), gate)
    assert len(lines) == 2 and lines[0].startswith("drift +1.045 nats per token") and "domain bleed 100%" in lines[1]
    assert failures({"metrics": {}, "checks": {}}, gate)[0].startswith("the evaluation holds no per-question scores")


def test_export_refuses_a_run_without_an_eval_or_worse_than_the_base_unless_forced(project):
    (project / "gated.yaml").write_text("base: tiny-cpu\nname: gated\nexport: {gate: {enabled: true}}\n")
    run = fake_trained_run(project, "gated.yaml")
    # a folder of the user's where the merge would go: an export the gate lets through stops there, at the next
    # check, before LLaMA-Factory starts (the merge itself is tested on a trained run in test_pipeline.py)
    (run / "merged").mkdir()
    (run / "merged" / "notes.txt").write_text("the user's")
    past_the_gate = "zhouyi did not make it"
    result = cli("export", "--run", str(run), cwd=project)
    assert result.returncode == 2 and "has no evaluation" in result.stderr and "zhouyi eval --run" in result.stderr

    references = [ref for _, ref in DREAMS]
    report = gate_report(references, ["作为一个AI助手，我无法解释梦境。"] * 10)
    (run / "eval").mkdir()
    (run / "eval" / "report.json").write_text(json.dumps({"rows": 3}))
    damaged = cli("export", "--run", str(run), cwd=project)
    assert damaged.returncode == 2 and "damaged (no metrics or checks to compare)" in damaged.stderr
    (run / "eval" / "report.json").write_text(json.dumps(report))
    result = cli("export", "--run", str(run), cwd=project)
    assert result.returncode == 2, result.stderr
    assert "rouge-l " in result.stderr and "95% interval" in result.stderr
    assert "in_voice 0% of answers against the base's 100%" in result.stderr and "--skip-gate" in result.stderr
    assert "--set export.gate.metric_drop=" in result.stderr, "the advice names what works on a trained run"
    assert [p.name for p in (run / "merged").iterdir()] == ["notes.txt"], "refused before anything is written"

    (run / "eval" / "report.json").write_text(json.dumps(gate_report(references, references[:9] + ["主吉。"])))
    passed = cli("export", "--run", str(run), cwd=project)
    assert f"export gate: {run.name} is no worse than the base on 10 held-out questions" in passed.stdout
    assert past_the_gate in passed.stderr, "past the gate, the export goes on to its target"

    later = time.time() + 5
    os.utime(run / "train" / "adapter_config.json", (later, later))
    result = cli("export", "--run", str(run), cwd=project)
    assert result.returncode == 2 and "older than the run's weights" in result.stderr, "a stale eval judges nothing"
    loosened = cli("export", "--run", str(run), "--set", "export.gate.enabled=false", "--force", cwd=project)
    assert "export gate" not in loosened.stdout and past_the_gate in loosened.stderr
    assert "--set export.gate.enabled=false" in loosened.stderr, "the change is said"
    forced = cli("export", "--run", str(run), "--force", cwd=project)
    assert forced.returncode == 2 and "older than the run's weights" in forced.stderr, "--force replaces folders only"
    forced = cli("export", "--run", str(run), "--skip-gate", "--force", cwd=project)
    assert "export gate: skipped (--skip-gate)" in forced.stdout and past_the_gate in forced.stderr
    assert (run / "merged" / "notes.txt").read_text() == "the user's"
