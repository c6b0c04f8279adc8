"""`zhouyi runs`, `diff`, `rerun` and progress lines, on a real tiny training and a dry run beside it."""

import json

import pytest

from tests.conftest import cli, zhouyi

pytestmark = pytest.mark.slow


def test_runs_diff_and_rerun(tiny_project):
    trained = zhouyi("train", "tiny-cpu", "--set", "train.max_steps=2", "--set", "train.logging_steps=1",
                     cwd=tiny_project)
    assert trained.returncode == 0, trained.stderr[-3000:]
    progress = [line.split(" (")[0] for line in trained.stdout.splitlines() if line.startswith("progress: ")]
    assert progress[:2] == ["progress: step 1/2", "progress: step 2/2"], "plain progress lines when not a terminal"
    dry = cli("train", "tiny-cpu", "--dry-run", "--set", "train.learning_rate=0.5", cwd=tiny_project)
    assert dry.returncode == 0
    first, second = sorted((tiny_project / "runs").glob("tiny-cpu-*"))

    rows = {r["run"]: r for r in json.loads(cli("runs", "--json", cwd=tiny_project).stdout)}
    assert rows[first.name]["status"] == "finished" and rows[first.name]["steps"] == "2/2"
    assert rows[first.name]["adapter"] and rows[first.name]["loss"] > 0
    assert rows[second.name]["status"] == "not started" and not rows[second.name]["adapter"]
    table = cli("runs", cwd=tiny_project).stdout
    assert first.name in table and "finished" in table

    diff = cli("diff", str(first), str(second), cwd=tiny_project).stdout
    assert "-  learning_rate: 0.01" in diff and "+  learning_rate: 0.5" in diff
    assert "-learning_rate: 0.01" in diff and "+learning_rate: 0.5" in diff  # spec.resolved.yaml and train.yaml

    data = tiny_project / "data" / "zhougong_demo.json"
    data.write_text(data.read_text(encoding="utf-8").replace("蛇", "龙", 1), encoding="utf-8")
    rerun = cli("rerun", str(first), "--dry-run", cwd=tiny_project)
    assert rerun.returncode == 0, rerun.stderr
    assert "warning: data" in rerun.stderr and "zhougong_demo.json changed since the run" in rerun.stderr
    third = max((tiny_project / "runs").glob("tiny-cpu-*"))
    assert (third / "spec.resolved.yaml").read_text() == (first / "spec.resolved.yaml").read_text()

    nothing = cli("rerun", str(tiny_project / "data"), cwd=tiny_project)
    assert nothing.returncode == 2 and "manifest.json is missing" in nothing.stderr

