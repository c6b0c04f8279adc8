"""Per-node launch scripts: valid bash, the exact environment and argv of `zhouyi train`, one rank each."""

import subprocess

import pytest

from tests.conftest import cli

MULTI = """
name: multi
model: {model_name_or_path: Qwen/Qwen2.5-1.5B-Instruct, template: qwen}
data: {datasets: [{name: zhougong_demo, file_name: zhougong_demo.json}]}
launch: {gpus: [0, 1, 2, 3], nnodes: 2, master_addr: 10.0.0.1, master_port: 29500, deepspeed: zero2}
"""


@pytest.fixture
def scripts(project):
    (project / "multi.yaml").write_text(MULTI)
    paths = {}
    for kind in ("slurm", "shell"):
        result = cli("launch-script", "multi.yaml", f"--{kind}", cwd=project)
        assert result.returncode == 0, result.stderr
        paths[kind] = project / result.stdout.strip().splitlines()[-1]
    return paths


def test_scripts_are_valid_bash(scripts):
    for path in scripts.values():
        assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0, path


def test_slurm_script_runs_one_task_per_node_with_ranks_from_slurm(scripts):
    text = scripts["slurm"].read_text()
    run_dir = scripts["slurm"].parent
    for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=1", "#SBATCH --gpus-per-node=4",
                 'export MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
                 "export MASTER_PORT=29500", "export NNODES=2", "export NPROC_PER_NODE=4", "export FORCE_TORCHRUN=1",
                 f"bash -c 'NODE_RANK=$SLURM_NODEID exec \"$@\"' node llamafactory-cli train {run_dir}/train.yaml"):
        assert line in text, line
    assert "10.0.0.1" not in text, "under Slurm the master is the allocation's first host"
    assert (run_dir / "train.yaml").is_file() and (run_dir / "ds_zero2.json").is_file()


def test_shell_script_takes_the_rank_and_refuses_a_wrong_one(scripts):
    path = scripts["shell"]
    text = path.read_text()
    for line in ("export MASTER_ADDR=10.0.0.1", "export MASTER_PORT=29500", "export NNODES=2", "export NODE_RANK",
                 f"exec llamafactory-cli train {path.parent}/train.yaml"):
        assert line in text, line
    for bad in ("2", "-1"):
        result = subprocess.run(["bash", str(path), bad], capture_output=True, text=True)
        assert result.returncode == 2 and "NODE_RANK must be 0..1" in result.stderr
    assert subprocess.run(["bash", str(path)], capture_output=True, text=True).returncode != 0


def test_node_rank_outside_the_job_is_refused(project):
    (project / "multi.yaml").write_text(MULTI)
    result = cli("train", "multi.yaml", "--dry-run", "--node-rank", "2", cwd=project)
    assert result.returncode == 2 and "ranks are 0..1" in result.stderr
    ok = cli("train", "multi.yaml", "--dry-run", "--node-rank", "1", cwd=project)
    assert ok.returncode == 0 and "NODE_RANK=1" in ok.stdout and "MASTER_PORT=29500" in ok.stdout
