"""The CLI as a user meets it: exit codes, messages, files written (no training here)."""

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import cli


def test_presets_show_and_schema(project: Path):
    out = cli("presets", cwd=project).stdout
    assert "zhougong-lora" in out and "tiny-cpu" in out
    shown = cli("show", "zhougong-lora", cwd=project)
    assert shown.returncode == 0 and "model_name_or_path: Qwen/Qwen2.5-1.5B-Instruct" in shown.stdout
    schema = json.loads(cli("schema", cwd=project).stdout)
    assert "model" in schema["properties"]


def test_render_writes_every_file(project: Path):
    result = cli("render", "zhougong-lora", "-o", "out", cwd=project)
    assert result.returncode == 0, result.stderr
    assert {p.name for p in (project / "out").iterdir()} == {"train.yaml", "infer.yaml", "export.yaml", "predict.yaml",
                                                             "predict_base.yaml", "dataset_info.json",
                                                             ".zhouyi-written.json"}
    assert cli("render", "tiny-cpu", "-o", "out", cwd=project).returncode == 0, "its own files: rewritten freely"


def test_render_keeps_files_it_did_not_write(project: Path):
    (project / "out").mkdir()
    (project / "out" / "train.yaml").write_text("# my hand-tuned config\n")
    refused = cli("render", "tiny-cpu", "-o", "out", cwd=project)
    assert refused.returncode == 2 and "train.yaml" in refused.stderr and "--force" in refused.stderr
    assert [p.name for p in (project / "out").iterdir()] == ["train.yaml"], "nothing else written either"
    assert cli("render", "tiny-cpu", "-o", "out", "--force", cwd=project).returncode == 0
    assert "my hand-tuned" not in (project / "out" / "train.yaml").read_text()


def test_user_errors_exit_2_with_a_message(project: Path):
    cases = {
        "missing.yaml": "spec file not found",
        "notyaml.yaml": "not valid YAML",
        "unknown.yaml": "did you mean 'learning_rate'",
    }
    (project / "notyaml.yaml").write_text("name: [oops")
    (project / "unknown.yaml").write_text(
        "name: u\nmodel: {model_name_or_path: m, template: qwen}\ndata: {datasets: [{name: d, file_name: d.json}]}\n"
        "train: {learning_rat: 0.1}\n")
    for ref, expected in cases.items():
        result = cli("render", ref, cwd=project)
        assert result.returncode == 2 and expected in result.stderr, (ref, result.stderr)
        assert "Traceback" not in result.stderr


def test_dry_run_train_renders_a_run_and_runs_nothing(project: Path):
    result = cli("train", "tiny-cpu", "--dry-run", cwd=project)
    assert result.returncode == 0, result.stderr
    (run,) = (project / "runs").iterdir()
    assert "llamafactory-cli train " + str(run / "train.yaml") in result.stdout
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["command"]["argv"][:2] == ["llamafactory-cli", "train"]
    assert manifest["spec"]["name"] == "tiny-cpu" and manifest["versions"]["llamafactory"].startswith("0.9.5")
    assert not (run / "train").exists(), "nothing was trained"
    assert not (project / "data" / "dataset_info.json").exists(), "dry run leaves the registry alone"
    second = cli("train", "tiny-cpu", "--dry-run", cwd=project)
    assert second.returncode == 0 and len(list((project / "runs").iterdir())) == 2, "never reuse a run dir"


def test_chat_and_export_need_a_finished_run(project: Path):
    result = cli("chat", "tiny-cpu", cwd=project)
    assert result.returncode == 2 and "no finished run of 'tiny-cpu'" in result.stderr
    (project / "notarun").mkdir()
    result = cli("export", "tiny-cpu", "--run", "notarun", cwd=project)
    assert result.returncode == 2 and "manifest.json is missing" in result.stderr


def test_register_refuses_to_repoint(project: Path):
    assert cli("register", "tiny-cpu", cwd=project).returncode == 0
    registry = project / "data" / "dataset_info.json"
    data = json.loads(registry.read_text())
    data["zhougong_demo"]["file_name"] = "mine.json"
    registry.write_text(json.dumps(data))
    result = cli("register", "tiny-cpu", cwd=project)
    assert result.returncode == 2 and "refusing to repoint" in result.stderr
    assert json.loads(registry.read_text())["zhougong_demo"]["file_name"] == "mine.json"
    assert cli("register", "tiny-cpu", "--force", cwd=project).returncode == 0


def test_render_imports_nothing_heavy(project: Path):
    probe = ("import sys; from zhouyi.cli import main; main(['render', 'zhougong-lora', '-o', 'r']); "
             "print(sorted(m for m in ('torch', 'transformers', 'llamafactory', 'modelscope') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=project, capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stderr
