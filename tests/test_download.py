"""`zhouyi download`: a ModelScope cache populated here (offline), an incomplete snapshot, an unreachable hub."""

import json
import shutil
import time

import yaml

from tests.conftest import cli


def populate(cache, tiny_model):
    """The tiny model where ModelScope keeps Qwen/Qwen2.5-1.5B-Instruct at revision master."""
    snapshot = cache / "models" / "Qwen--Qwen2.5-1.5B-Instruct" / "snapshots" / "master"
    shutil.copytree(tiny_model, snapshot)
    return snapshot


def test_offline_cache_is_found_checked_and_used_by_later_verbs(project, tiny_model):
    snapshot = populate(project / "cache", tiny_model)
    result = cli("download", "zhougong-lora", "--cache-dir", "cache", "--offline", cwd=project)
    assert result.returncode == 0, result.stderr
    assert f"complete at {snapshot}" in result.stdout
    recorded = json.loads((project / ".zhouyi" / "models.json").read_text())
    assert recorded == {"modelscope:Qwen/Qwen2.5-1.5B-Instruct@master": str(snapshot)}
    assert cli("render", "zhougong-lora", "-o", "r", cwd=project).returncode == 0
    assert yaml.safe_load((project / "r" / "train.yaml").read_text())["model_name_or_path"] == str(snapshot)


def test_incomplete_or_absent_snapshot_is_refused_and_not_recorded(project, tiny_model):
    snapshot = populate(project / "cache", tiny_model)
    (snapshot / "model.safetensors").unlink()
    result = cli("download", "zhougong-lora", "--cache-dir", "cache", "--offline", cwd=project)
    assert result.returncode == 2 and "missing: weights" in result.stderr and "again" in result.stderr
    assert not (project / ".zhouyi").exists()
    absent = cli("download", "zhougong-lora", "--cache-dir", "nowhere", "--offline", cwd=project)
    assert absent.returncode == 2 and "in the cache" in absent.stderr


def test_unreachable_hub_fails_fast_with_a_clear_message(project):
    start = time.time()
    result = cli("download", "zhougong-lora", "--cache-dir", "cache", "--timeout", "5", cwd=project,
                    env={"MODELSCOPE_DOMAIN": "127.0.0.1:9"})
    assert time.time() - start < 30
    assert result.returncode == 2
    assert "did not answer within 5 s" in result.stderr or "could not get" in result.stderr


def test_local_model_is_checked_in_place(tiny_project):
    ok = cli("download", "tiny-cpu", cwd=tiny_project)
    assert ok.returncode == 0 and "complete at" in ok.stdout
    bad = cli("download", "tiny-cpu", "--set", "model.model_name_or_path=models/none", cwd=tiny_project)
    assert bad.returncode == 2 and "does not exist" in bad.stderr


def test_hugging_face_cache_works_the_same(project, tiny_model):
    repo = project / "hf" / "models--Qwen--Qwen2.5-1.5B-Instruct"
    shutil.copytree(tiny_model, repo / "snapshots" / "0123abcd")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    hf = ["--set", "model.source=huggingface", "--set", "model.model_revision=main"]
    result = cli("download", "zhougong-lora", *hf, "--cache-dir", "hf", "--offline", cwd=project)
    assert result.returncode == 0, result.stderr
    assert str(repo / "snapshots" / "0123abcd") in result.stdout
