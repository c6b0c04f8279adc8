"""A preference stage chained to an SFT run, for real on the tiny model: `zhouyi data pairs` builds the pairs from
the SFT run's own answers, `zhouyi train --from` merges the SFT adapter and trains DPO on the merge, and the DPO
reference is the SFT model (its first step's rewards are exactly zero), where LLaMA-Factory's own way of
continuing an adapter makes the reference the base model."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml
from safetensors import safe_open

from tests.conftest import cli, fake_trained_run, write_json, zhouyi
from tests.test_pipeline import assert_merged
from zhouyi.launch import CLI
from zhouyi.process import resolve_executable

WEIGHT = "model.layers.0.self_attn.q_proj.weight"  # one LoRA-targeted weight, checked after each merge
DPO_SPEC = """\
base: tiny-cpu
name: tiny-dpo
data:
  datasets:
    - {name: pairs, file_name: pairs.json, ranking: true}
    - {name: zhougong_demo_eval, file_name: zhougong_demo_eval.json, split: eval}
train:
  stage: dpo
  max_steps: 2
  logging_steps: 1
  learning_rate: 1.0e-3
"""


def first_log(train_dir) -> dict:
    state = json.loads((train_dir / "trainer_state.json").read_text())
    return state["log_history"][0]


@pytest.fixture(scope="session")
def chained(trained_run):
    """The session's trained tiny-cpu run as the SFT stage (read only: its pairs go to its own pairs/ folder), pairs
    registered in its project, and a DPO run chained to it."""
    project, sft, _ = trained_run
    pairs = zhouyi("data", "pairs", "--run", str(sft), "--max-samples", "8", "-o", "data/pairs.json", cwd=project)
    assert pairs.returncode == 0, pairs.stdout[-3000:] + pairs.stderr[-3000:]
    (project / "dpo.yaml").write_text(DPO_SPEC)
    dpo = zhouyi("train", "dpo.yaml", "--from", str(sft), cwd=project)
    assert dpo.returncode == 0, dpo.stdout[-3000:] + dpo.stderr[-3000:]
    (run,) = (project / "runs").glob("tiny-dpo-*")
    return project, sft, run, pairs


@pytest.mark.slow
def test_pairs_come_from_the_sft_run_s_flagged_answers(chained):
    project, sft, _, result = chained
    rows = json.loads((project / "data" / "pairs.json").read_text())
    report = json.loads((sft / "pairs" / "report.json").read_text())
    training = json.loads((project / "data" / "zhougong_demo.json").read_text())[:8]
    assert 0 < len(rows) == report["pairs"] <= 16, "two models, eight questions"
    assert report["questions"] == 8 and report["models"] == ["base", "tuned"]
    assert sum(report["no_pair"].values()) + len(rows) == 16
    references = {(r["instruction"], r["input"]): r["output"] for r in training}
    for row in rows:
        assert row["chosen"] == references[(row["instruction"], row["input"])] != row["rejected"]
    assert f"{len(rows)} pairs from 8 questions" in result.stdout
    entry = json.loads((project / "data" / "dataset_info.json").read_text())["pairs"]
    assert entry["ranking"] is True and entry["columns"]["chosen"] == "chosen"


@pytest.mark.slow
def test_dpo_trains_a_new_adapter_on_the_merged_sft_model_which_is_its_reference(chained):
    project, sft, run, _ = chained
    train_yaml = yaml.safe_load((run / "train.yaml").read_text())
    assert train_yaml["stage"] == "dpo" and train_yaml["pref_loss"] == "sigmoid"
    assert train_yaml["model_name_or_path"] == str(run / "start-model") and "adapter_name_or_path" not in train_yaml
    assert "eval_dataset" not in train_yaml, "the eval split holds questions, not pairs"
    with safe_open(run / "start-model" / "model.safetensors", "pt") as start:  # the base plus the SFT adapter
        assert_merged(start.get_tensor(WEIGHT), WEIGHT, project / "models" / "tiny-qwen2", sft / "train")
    assert json.loads((run / "manifest.json").read_text())["from_run"] == str(sft)
    first = first_log(run / "train")
    assert first["step"] == 1
    assert first["rewards/chosen"] == first["rewards/rejected"] == first["rewards/margins"] == 0.0, \
        "policy and reference are the same SFT model before the first update"
    assert first["loss"] == pytest.approx(0.6931, abs=1e-3)
    assert (run / "train" / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_continuing_the_sft_adapter_in_place_would_make_the_base_the_reference(chained):
    """What the chain avoids, shown on LLaMA-Factory itself: the same DPO step on base + SFT adapter (continued,
    no merge) starts with non-zero rewards, because the reference is the base model with the adapter disabled."""
    project, sft, run, _ = chained
    naive = yaml.safe_load((run / "train.yaml").read_text())
    naive |= {"model_name_or_path": str(project / "models" / "tiny-qwen2"), "adapter_name_or_path": str(sft / "train"),
              "output_dir": str(project / "naive"), "max_steps": 1}
    (project / "naive.yaml").write_text(yaml.safe_dump(naive))
    result = subprocess.run([resolve_executable(CLI), "train", "naive.yaml"],
                            cwd=project, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert first_log(project / "naive")["rewards/margins"] != 0.0


@pytest.mark.slow
def test_the_chained_run_exports_and_reruns_from_the_same_sft_run(chained):
    project, sft, run, _ = chained
    result = zhouyi("export", "--run", str(run), cwd=project)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    export = yaml.safe_load((run / "export.yaml").read_text())
    assert export["model_name_or_path"] == str(run / "start-model") and export["adapter_name_or_path"] == str(
        run / "train"), "the DPO adapter is merged into the SFT merge it was trained on"
    with safe_open(run / "merged" / "model.safetensors", "pt") as merged:
        assert_merged(merged.get_tensor(WEIGHT), WEIGHT, run / "start-model", run / "train")
    rerun = cli("rerun", str(run), "--dry-run", cwd=project)
    assert rerun.returncode == 0, rerun.stderr
    assert "export_dir=" in rerun.stdout and str(sft) in rerun.stdout, "the rerun merges the same SFT run first"


def test_bad_chains_are_refused_before_anything_is_written(tiny_project):
    project = tiny_project
    sft = fake_trained_run(project, "tiny-cpu")
    unfinished = fake_trained_run(project, "tiny-cpu")
    (project / "dpo.yaml").write_text(DPO_SPEC)
    write_json(project / "data" / "pairs.json", [{"instruction": "梦见蛇", "input": "", "chosen": "主吉。",
                                                  "rejected": "我是AI。"}])
    registry = (project / "data" / "dataset_info.json")
    (unfinished / "train" / "adapter_config.json").unlink()
    cases = {
        ("--from", str(unfinished)): "its training has not finished",
        ("--from", str(project / "nowhere")): "no such directory",
        ("--from", str(sft), "--set", "model.model_name_or_path=models/other"): "another base model",
        ("--from", str(sft), "--resume", str(sft)): "not both",
    }
    for extra, message in cases.items():
        before = sorted(p.name for p in (project / "runs").iterdir())
        result = cli("train", "dpo.yaml", *extra, cwd=project)
        assert result.returncode == 2 and message in result.stderr, (extra, result.stderr)
        assert sorted(p.name for p in (project / "runs").iterdir()) == before and not registry.exists()

    (project / "withsys.yaml").write_text(
        "base: tiny-cpu\nname: withsys\ndata:\n  datasets:\n    - {name: zhougong_demo, file_name: zhougong_demo.json, "
        "columns: {prompt: instruction, query: input, response: output, system: input}}\n"
        "    - {name: zhougong_demo_eval, file_name: zhougong_demo_eval.json, split: eval}\n")
    with_system = fake_trained_run(project, "withsys.yaml")
    result = cli("data", "pairs", "--run", str(with_system), "--without-system", cwd=project)
    assert result.returncode == 2 and "carry the persona" in result.stderr, result.stderr

    write_json(project / "data" / "pairs.json", [])
    result = cli("train", "dpo.yaml", "--from", str(sft), cwd=project)
    assert result.returncode == 2 and "holds no pairs" in result.stderr and "zhouyi data pairs" in result.stderr

    (project / "sft-pairs.yaml").write_text(DPO_SPEC.replace("stage: dpo", "stage: sft"))
    result = cli("validate", "sft-pairs.yaml", cwd=project)
    assert result.returncode == 2 and "data.datasets.0.ranking" in result.stdout + result.stderr
    (project / "dpo-answers.yaml").write_text(DPO_SPEC.replace(", ranking: true", ""))
    result = cli("validate", "dpo-answers.yaml", cwd=project)
    assert result.returncode == 2 and "must be pairs" in result.stdout + result.stderr
