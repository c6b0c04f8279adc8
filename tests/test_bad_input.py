"""Input that used to end in a traceback: each gets a message naming the file and exit 2 (issue 14, class 9)."""

import json
import os
from pathlib import Path

import pytest

from tests.conftest import cli, fake_trained_run


def damaged_runs(project: Path) -> tuple[Path, Path]:
    bad_json, no_spec = project / "runs" / "a", project / "runs" / "b"
    for run, text in ((bad_json, "{not json"), (no_spec, "[1, 2]")):
        run.mkdir(parents=True)
        (run / "manifest.json").write_text(text)
    return bad_json, no_spec


def test_damaged_manifests_are_named_and_do_not_break_the_list(project: Path):
    bad_json, no_spec = damaged_runs(project)
    good = cli("train", "tiny-cpu", "--dry-run", cwd=project)
    assert good.returncode == 0
    listed = cli("runs", cwd=project)
    assert listed.returncode == 0 and listed.stdout.count("manifest.json: damaged") == 2, listed.stdout
    assert "tiny-cpu-" in listed.stdout, "the good run is listed beside them"
    for args in (("diff", str(bad_json), str(no_spec)), ("rerun", str(no_spec)), ("eval", "--run", str(bad_json))):
        result = cli(*args, cwd=project)
        assert result.returncode == 2 and "manifest.json: damaged" in result.stderr, (args, result.stderr)


def test_a_truncated_trainer_log_line_is_left_out(project: Path):
    cli("train", "tiny-cpu", "--dry-run", cwd=project)
    (run,) = (project / "runs").iterdir()
    (run / "train").mkdir()
    (run / "train" / "trainer_log.jsonl").write_text('{"current_steps": 1, "loss": 2.5}\n{"current_steps": 2, "lo')
    rows = json.loads(cli("runs", "--json", cwd=project).stdout)
    assert rows[0]["loss"] == 2.5


@pytest.mark.parametrize("name, content, message", [
    ("bin.yaml", b"\xff\xfe\x00binary", "not UTF-8"),
    ("gbk.yaml", "name: 周公".encode("gbk"), "not UTF-8"),
])
def test_a_spec_that_is_not_text(project: Path, name, content, message):
    (project / name).write_bytes(content)
    result = cli("validate", name, cwd=project)
    assert result.returncode == 2 and message in result.stdout + result.stderr


def test_data_inputs_that_broke_the_readers(project: Path):
    (project / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (project / "big.csv").write_text("title,text\n蛇,\"" + "梦见蛇，预示好运。" * 20_000 + "\"\n")
    deep = cli("data", "clean", "deep.json", "-o", "out.json", cwd=project)
    assert deep.returncode == 2 and "deep.json" in deep.stderr and "nested too deeply" in deep.stderr
    big = cli("data", "clean", "big.csv", "-o", "out.json", cwd=project)
    assert big.returncode == 2 and "longer than 1500 Han characters" in big.stderr, "read; then filtered, as it should"


def test_places_that_are_files_or_unwritable(project: Path):
    (project / "runsfile").write_text("")
    result = cli("train", "tiny-cpu", "--dry-run", "--set", "output.runs_dir=runsfile", cwd=project)
    assert result.returncode == 2 and "runsfile" in result.stderr, result.stderr
    (project / "data" / "dataset_info.json").unlink(missing_ok=True)
    (project / "data" / "dataset_info.json").mkdir()
    result = cli("register", "tiny-cpu", cwd=project)
    assert result.returncode == 2 and "is a folder" in result.stderr, result.stderr
    result = cli("render", "tiny-cpu", "-o", "/proc/zhouyi-cannot-write-here", cwd=project)
    assert result.returncode == 2 and "/proc/zhouyi-cannot-write-here" in result.stderr


def test_a_damaged_model_record(project: Path):
    (project / ".zhouyi").mkdir()
    (project / ".zhouyi" / "models.json").write_text("{oops")
    result = cli("train", "gemma-cpu", "--dry-run", cwd=project)
    assert result.returncode == 2 and "models.json: damaged" in result.stderr, result.stderr


def test_a_base_that_leads_back_to_itself_through_dotdot(project: Path):
    (project / "d").mkdir()
    (project / "d" / "x.yaml").write_text("base: ../d/x.yaml\nname: x\n")
    result = cli("validate", "d/x.yaml", cwd=project)
    assert result.returncode == 2 and "base cycle: d/x.yaml -> d/x.yaml" in result.stdout + result.stderr


def test_smaller_ones(tiny_project: Path):
    result = cli("validate", "tiny-cpu", "--hardware", "", cwd=tiny_project)
    assert result.returncode == 2 and "--hardware ''" in result.stderr, "an empty hardware is not 'no check'"
    run = fake_trained_run(tiny_project, "tiny-cpu")
    for host, message in (("10.9.9.9", "cannot listen there"), ("no-such-host.invalid", "not a host name")):
        result = cli("api", "--run", str(run), "--host", host, "--port", "8123", "--dry-run", cwd=tiny_project)
        assert result.returncode == 2 and message in result.stderr, result.stderr
    (run / "train" / "checkpoint-3").mkdir()
    (run / "train" / "checkpoint-3" / "trainer_state.json").write_text("{}")
    (run / "train" / "adapter_config.json").unlink()
    before = sorted(p.name for p in run.iterdir())
    dry = cli("train", "--resume", str(run), "--dry-run", cwd=tiny_project)
    assert dry.returncode == 0 and "checkpoint-3" in dry.stdout
    assert sorted(p.name for p in run.iterdir()) == before, "a dry run writes nothing"


def test_undecodable_stdin_for_ask_is_refused_before_any_model_loads(tiny_project: Path):
    import subprocess
    import sys

    run = fake_trained_run(tiny_project, "tiny-cpu")
    result = subprocess.run([sys.executable, "-m", "zhouyi", "ask", "--run", str(run), "-"], cwd=tiny_project,
                            input="梦见蛇".encode("gbk"), capture_output=True, env={**os.environ, "LC_ALL": "C.UTF-8"})
    assert result.returncode == 2 and b"not UTF-8" in result.stderr and b"loading" not in result.stderr


def test_a_damaged_llamaboard_config_is_named_and_kept(tiny_project: Path):
    folder = tiny_project / ".zhouyi" / "webui" / "tiny-cpu" / "llamaboard_cache"
    folder.mkdir(parents=True)
    (folder / "user_config.yaml").write_text("lang: [en\n")
    result = cli("webui", "tiny-cpu", "--dry-run", cwd=tiny_project)
    assert result.returncode == 2 and "user_config.yaml: damaged" in result.stderr
    assert (folder / "user_config.yaml").read_text() == "lang: [en\n"


@pytest.mark.parametrize("verb", [("train", "tiny-cpu"), ("bench", "tiny-cpu")])
def test_a_local_model_that_is_not_there_is_named_before_anything_starts(project: Path, verb):
    result = cli(*verb, cwd=project)
    assert result.returncode == 2 and "models/tiny-qwen2 does not exist" in result.stderr
    assert "zhouyi tiny-model" in result.stderr and not (project / "runs").exists()
