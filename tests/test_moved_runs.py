"""A run folder that was copied or moved is refused, before anything is written: its rendered files point into the
folder it was made in, so LLaMA-Factory would read and write there (the original's merge, its eval answers, its
checkpoints), or into a folder that is gone. And a spec's runs are its own, not those of a spec whose name starts
the same way."""

import os
import shutil

import pytest

from tests.conftest import cli, fake_trained_run

VERBS = {  # a verb that uses a run -> its arguments after --run/--resume/--from COPY
    "export": ["export", "--run"], "export --gguf": ["export", "--gguf", "f16", "--run"],
    "export --check": ["export", "--check", "--run"], "eval": ["eval", "--run"], "ask": ["ask", "梦见蛇", "--run"],
    "data pairs": ["data", "pairs", "--run"], "train --resume": ["train", "--resume"],
    "train --from": ["train", "tiny-cpu", "--from"], "webui": ["webui", "tiny-cpu", "--dry-run", "--run"],
}


def snapshot(folder):
    return sorted((str(p.relative_to(folder)), p.stat().st_mtime_ns) for p in folder.rglob("*"))


@pytest.mark.parametrize("verb", VERBS)
def test_a_copied_run_is_refused_and_neither_run_is_touched(project, verb):
    original = fake_trained_run(project, "tiny-cpu")
    copy = original.with_name(original.name + "-copy")
    shutil.copytree(original, copy)
    if verb == "train --resume":  # a stopped run, to resume
        (copy / "train" / "adapter_config.json").unlink()
    before = snapshot(project / "runs")
    result = cli(*VERBS[verb], str(copy), cwd=project)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"this run was made in {original}" in result.stderr and "which still exists" in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(project / "runs") == before, "nothing written, in the copy or the original"


@pytest.mark.parametrize("verb", ["export", "eval", "ask", "train --from"])
def test_a_moved_run_is_refused_and_the_old_place_is_not_recreated(project, verb):
    original = fake_trained_run(project, "tiny-cpu")
    moved = project / "elsewhere" / original.name
    moved.parent.mkdir()
    original.rename(moved)
    result = cli(*VERBS[verb], str(moved), cwd=project)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"this run was made in {original}" in result.stderr and "which is gone" in result.stderr
    assert not original.exists(), "no orphan folder where the run used to be"
    assert not (project / "runs").exists() or not any((project / "runs").iterdir())


def test_the_latest_run_of_a_spec_is_its_own_and_a_newer_copy_is_refused(project):
    (project / "tiny.yaml").write_text("base: tiny-cpu\nname: tiny\n", encoding="utf-8")
    fake_trained_run(project, "tiny-cpu")
    result = cli("export", "tiny.yaml", "--dry-run", cwd=project)
    assert result.returncode == 2 and "no finished run of 'tiny'" in result.stderr, "tiny-cpu's run is not tiny's"
    mine = fake_trained_run(project, "tiny.yaml")
    assert cli("export", "tiny.yaml", "--dry-run", cwd=project).returncode == 0
    copy = shutil.copytree(mine, mine.with_name(mine.name + "-9"))
    os.utime(copy)  # the newest run is a copy: refused, not silently used
    result = cli("export", "tiny.yaml", "--dry-run", cwd=project)
    assert result.returncode == 2 and f"this run was made in {mine}" in result.stderr
