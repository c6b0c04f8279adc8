"""The command line as a newcomer types it (issue 28, parts 5 and 6): --set on a trained run changes what may change
after training and refuses the rest, flags go anywhere, a missing question or data file is named before anything is
written, and a mistyped flag gets a suggestion."""

import pytest

from tests.conftest import cli, fake_trained_run, write_json


def test_set_on_a_run_reaches_the_server_and_the_gate(project):
    run = fake_trained_run(project, "tiny-cpu")
    shown = cli("api", "--run", str(run), "--dry-run", "--port", "0", "--set", "infer.max_new_tokens=64",
                "--set", "infer.max_prompt_chars=8000", cwd=project)
    assert shown.returncode == 0, shown.stderr
    model_server, gate = [line for line in shown.stdout.splitlines() if line.startswith("run: ")]
    assert "max_new_tokens=64" in model_server, "LLaMA-Factory's server generates up to the new limit"
    assert "--max-new-tokens 64" in gate and "--max-prompt-chars 8000" in gate
    assert "recorded spec with --set infer.max_new_tokens=64" in shown.stderr, "the change is said"


@pytest.mark.parametrize("verb", [["ask", "梦见蛇"], ["api", "--dry-run"], ["export"]])
def test_set_on_a_run_refuses_what_training_fixed(project, verb):
    run = fake_trained_run(project, "tiny-cpu")
    result = cli(*verb, "--run", str(run), "--set", "train.learning_rate=1e-3", cwd=project)
    assert result.returncode == 2
    assert "--set train.learning_rate: " in result.stderr and "only infer.* and export.gate.*" in result.stderr
    assert f"zhouyi train {run / 'spec.yaml'} --set train.learning_rate=1e-3" in result.stderr


def test_eval_refuses_set(project):
    result = cli("eval", "tiny-cpu", "--set", "eval.max_samples=3", cwd=project)
    assert result.returncode == 2 and "--max-samples" in result.stderr


def test_ask_takes_flags_anywhere_and_names_a_missing_question(project):
    run = fake_trained_run(project, "tiny-cpu")
    over = cli("ask", "tiny-cpu", "--set", "infer.max_prompt_chars=2", "梦见蛇了", cwd=project)
    assert over.returncode == 2 and "infer.max_prompt_chars allows 2" in over.stderr, over.stderr
    over = cli("ask", "--run", str(run), "--set", "infer.max_prompt_chars=2", "梦见蛇了", cwd=project)
    assert over.returncode == 2 and "infer.max_prompt_chars allows 2" in over.stderr, over.stderr
    missing = cli("ask", "tiny-cpu", cwd=project)
    assert missing.returncode == 2 and "say the question" in missing.stderr


def test_a_mistyped_flag_is_suggested_with_the_verbs_usage(project):
    result = cli("data", "clean", "data/zhougong_demo.json", "--tital-field", "x", cwd=project)
    assert result.returncode == 2
    assert "zhouyi data clean: error" in result.stderr
    assert "--tital-field (did you mean --title-field?)" in result.stderr


def test_data_clean_names_the_fields_it_saw(project):
    write_json(project / "qa.json", [{"question": "梦见蛇", "answer": "主吉" * 20}])
    result = cli("data", "clean", "qa.json", "-o", "data/qa_clean.json", cwd=project)
    assert result.returncode == 2
    assert "its fields are question, answer" in result.stderr
    assert "--title-field question --text-field answer" in result.stderr
    assert not (project / "data" / "qa_clean.json").exists()


@pytest.mark.parametrize("flags", [[], ["--dry-run"]])
def test_train_refuses_a_missing_data_file_before_writing(project, flags):
    (project / "data" / "zhougong_demo_eval.json").unlink()
    registry = project / "data" / "dataset_info.json"
    before = registry.read_text() if registry.exists() else None
    result = cli("train", "tiny-cpu", *flags, cwd=project)
    assert result.returncode == 2 and "data.datasets[1].file_name" in result.stderr, result.stderr
    assert not (project / "runs").exists()
    assert (registry.read_text() if registry.exists() else None) == before
