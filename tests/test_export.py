"""`zhouyi export` around LLaMA-Factory's: the Modelfile's persona, and --quantize as a second step on the merge.
(The merge itself and its smoke generation run for real in test_pipeline.)"""

import json
import os
import time

import pytest
import yaml

from tests.conftest import cli, fake_trained_run
from zhouyi.errors import UserError
from zhouyi.export import missing_quantize_packages, modelfile_with_persona

PERSONA = "你是周文王，精通《周易》与解梦之道。请以周文王的口吻，为来访者解释梦境的寓意。"


def test_quantize_refuses_a_run_with_no_merge(project):
    run = fake_trained_run(project, "tiny-cpu")
    result = cli("export", "--run", str(run), "--quantize", "4", cwd=project)
    assert result.returncode == 2 and "without --quantize first" in result.stderr


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


def _report(base: dict, tuned: dict, base_checks: dict, tuned_checks: dict) -> dict:
    return {"rows": 10, "metrics": {"base": base, "tuned": tuned},
            "checks": {"reference": {}, "base": base_checks, "tuned": tuned_checks}}


def test_the_export_gate_names_each_measure_the_tuned_model_lost():
    from zhouyi.quality_gate import failures

    checks = {"boilerplate": 0.0, "in_voice": 0.2, "empty": 0.0, "loops": 0.1, "at_token_limit": 1.0}
    better = _report({"rouge-l": 18.6, "bleu-4": 2.8}, {"rouge-l": 21.9, "bleu-4": 4.0}, checks,
                     {**checks, "in_voice": 0.7, "loops": 0.0, "at_token_limit": 0.0})
    assert failures(better, 0.0, 0.0) == []
    worse = _report({"rouge-l": 20.0, "bleu-4": 3.0}, {"rouge-l": 19.5, "bleu-4": 3.0}, checks,
                    {**checks, "loops": 1.0, "in_voice": 0.1})
    assert failures(worse, 0.0, 0.0) == [
        "rouge-l 19.5 against the base's 20.0 (allowed drop 0.0)",
        "in_voice 10% of answers against the base's 20% (allowed 0% worse)",
        "loops 100% of answers against the base's 10% (allowed 0% worse)"]
    assert failures(worse, 1.0, 0.1) == ["loops 100% of answers against the base's 10% (allowed 10% worse)"], \
        "the margins are the spec's"


def test_export_refuses_a_run_without_an_eval_or_worse_than_the_base_unless_forced(project):
    (project / "gated.yaml").write_text("base: tiny-cpu\nname: gated\nexport: {gate: {enabled: true}}\n")
    run = fake_trained_run(project, "gated.yaml")
    result = cli("export", "--run", str(run), cwd=project)
    assert result.returncode == 2 and "has no evaluation" in result.stderr and "zhouyi eval --run" in result.stderr

    checks = {"boilerplate": 0.0, "in_voice": 0.5, "empty": 0.0, "loops": 0.0, "at_token_limit": 0.0}
    report = _report({"rouge-l": 20.0, "bleu-4": 3.0}, {"rouge-l": 12.0, "bleu-4": 3.5}, checks,
                     {**checks, "at_token_limit": 0.9})
    (run / "eval").mkdir()
    (run / "eval" / "report.json").write_text(json.dumps({"rows": 3}))
    damaged = cli("export", "--run", str(run), cwd=project)
    assert damaged.returncode == 2 and "damaged (no metrics or checks to compare)" in damaged.stderr
    (run / "eval" / "report.json").write_text(json.dumps(report))
    result = cli("export", "--run", str(run), cwd=project)
    assert result.returncode == 2, result.stderr
    assert "rouge-l 12.0 against the base's 20.0" in result.stderr
    assert "at_token_limit 90% of answers against the base's 0%" in result.stderr and "--force" in result.stderr
    assert not (run / "merged").exists(), "refused before anything is written"

    (run / "eval" / "report.json").write_text(json.dumps(_report({"rouge-l": 20.0}, {"rouge-l": 21.0}, checks,
                                                                  checks)))
    passed = cli("export", "--run", str(run), cwd=project)
    assert f"export gate: {run.name} is no worse than the base on 10 held-out questions" in passed.stdout
    assert "llamafactory-cli export" in passed.stdout, "LLaMA-Factory's export runs (and fails on the empty adapter)"

    later = time.time() + 5
    os.utime(run / "train" / "adapter_config.json", (later, later))
    result = cli("export", "--run", str(run), cwd=project)
    assert result.returncode == 2 and "older than the run's weights" in result.stderr, "a stale eval judges nothing"
    forced = cli("export", "--run", str(run), "--force", cwd=project)
    assert "export gate: skipped (--force)" in forced.stdout and "llamafactory-cli export" in forced.stdout
