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


def test_slurm_needs_no_master_addr_but_every_other_launch_does(project):
    (project / "multi.yaml").write_text(MULTI.replace("master_addr: 10.0.0.1, ", ""))
    assert cli("launch-script", "multi.yaml", "--slurm", cwd=project).returncode == 0, "the allocation names it"
    for args in (("launch-script", "multi.yaml", "--shell"), ("train", "multi.yaml", "--dry-run", "--node-rank", "0")):
        result = cli(*args, cwd=project)
        assert result.returncode == 2 and "launch.master_addr" in result.stderr, result.stderr
    assert len(list((project / "runs").iterdir())) == 1, "refused before a run folder was made"


HOSTILE = "runs/$(touch PWNED) `touch PWNED2` 'q\" ;touch PWNED3"


def test_hostile_paths_stay_data_when_the_scripts_run(project, tmp_path):
    """The scripts run for real, with srun, scontrol and the final exec stubbed to record their arguments."""
    import json

    runs_dir = f"output: {{runs_dir: {json.dumps(HOSTILE)}}}\n"
    (project / "multi.yaml").write_text(MULTI.replace("launch:", runs_dir + "launch:"))
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    (stubs / "scontrol").write_text("#!/bin/sh\necho node-a\n")
    (stubs / "srun").write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$RECORD"\n')
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    for kind in ("slurm", "shell"):
        result = cli("launch-script", "multi.yaml", f"--{kind}", cwd=project)
        assert result.returncode == 0, result.stderr
        script = project / result.stdout.strip().splitlines()[-1]
        record = tmp_path / f"{kind}.argv"
        # the shell script ends in `exec CMD`: a function named exec records CMD instead of running it
        runner = 'exec() { printf "%s\\n" "$@" > "$RECORD"; }; . "$0" 0' if kind == "shell" else '. "$0"'
        done = subprocess.run(["bash", "-c", runner, str(script)], cwd=project, capture_output=True, text=True,
                              env={"PATH": f"{stubs}:/usr/bin:/bin", "RECORD": str(record),
                                   "SLURM_JOB_NODELIST": "node-a,node-b", "SLURM_NODEID": "0"})
        assert done.returncode == 0, done.stderr
        argv = record.read_text().splitlines()
        assert f"{script.parent}/train.yaml" in argv, argv
        assert not list(project.rglob("PWNED*")), "nothing in a path ran as a command"


def test_a_line_break_in_the_run_folder_is_refused_for_slurm(project):
    (project / "multi.yaml").write_text(MULTI.replace("launch:", 'output: {runs_dir: "runs\\nx"}\nlaunch:'))
    result = cli("launch-script", "multi.yaml", "--slurm", cwd=project)
    assert result.returncode == 2 and "output.runs_dir" in result.stderr, result.stderr
