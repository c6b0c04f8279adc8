"""`zhouyi doctor` on this (GPU-less) machine: facts reported, and a GPU spec blocked with the way out."""

import json

import pytest

from tests.conftest import cli


def test_doctor_reports_the_machine_and_blocks_a_gpu_spec_here(project):
    result = cli("doctor", "--json", cwd=project)
    assert result.returncode == 0, result.stderr
    env = json.loads(result.stdout)
    assert env["llamafactory"] == "0.9.5" and env["python"].startswith("3.")
    assert set(env["llamafactory_needs"]) == {"transformers", "datasets", "peft", "trl", "accelerate"}
    assert all(need["ok"] for need in env["llamafactory_needs"].values()), env["llamafactory_needs"]
    assert env["optional"]["deepspeed"] is True and env["free_disk_gib"] > 0
    if env["gpus"]:
        pytest.skip("the rest is written for a machine without a GPU (CI's); this one has one")
    blocked = cli("doctor", "zhougong-lora", cwd=project)
    assert blocked.returncode == 1
    assert "no CUDA GPU" in blocked.stdout and "--set launch.device=cpu" in blocked.stdout
    fine = cli("doctor", "tiny-cpu", cwd=project)
    assert fine.returncode == 0 and "this machine can run it" in fine.stdout
    fa2 = cli("doctor", "tiny-cpu", "--set", "train.flash_attn=fa2", cwd=project)
    assert fa2.returncode == 1 and "flash-attn" in fa2.stdout
