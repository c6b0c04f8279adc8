"""No verb writes over a file zhouyi keeps for itself, two writers never share a run, a damaged adapter or an
unreadable project folder is named, a full disk leaves nothing half-written, and a signal ends zhouyi as that
signal (issue 30, parts 2, 3 and 9)."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import cli, default_signals, fake_trained_run, lay_out_project
from zhouyi import files


def snapshot(folder: Path) -> list:
    return sorted((str(p.relative_to(folder)), p.stat().st_mtime_ns) for p in folder.rglob("*"))


def contents(folder: Path) -> dict[str, bytes | None]:
    """Every path below `folder` with its bytes (None for a folder): what a user would find changed."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("target", ["data/dataset_info.json", "data/.zhouyi-written.json", "link-to-registry.json",
                                    "RUN/manifest.json", "RUN/eval/answers.json"])
def test_no_output_may_be_or_lead_to_a_file_zhouyi_keeps(project, target):
    run = fake_trained_run(project, "tiny-cpu")
    cli("register", "tiny-cpu", cwd=project)
    (project / "data" / ".zhouyi-written.json").write_text("{}\n")
    (project / "link-to-registry.json").symlink_to(project / "data" / "dataset_info.json")
    output = str(project / target.replace("RUN", str(run.relative_to(project))))
    before = snapshot(project)
    for command in (["data", "pairs", "--run", str(run), "-o", output, "--force"],
                    ["data", "clean", "data/zhougong_demo.json", "-o", output, "--force"]):
        result = cli(*command, cwd=project)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "which zhouyi keeps for itself" in result.stderr, result.stderr
        assert snapshot(project) == before, f"{command[:2]}: nothing written"


def test_render_into_the_data_folder_keeps_the_registry(project):
    cli("register", "tiny-cpu", cwd=project)
    registry = (project / "data" / "dataset_info.json").read_text()
    result = cli("render", "tiny-cpu", "-o", "data", "--force", cwd=project)
    assert result.returncode == 2 and "dataset registry" in result.stderr
    assert (project / "data" / "dataset_info.json").read_text() == registry
    again = [cli("render", "tiny-cpu", "-o", "out", cwd=project) for _ in range(2)]
    assert [r.returncode for r in again] == [0, 0], "a render replaces its own registry fragment"


def test_a_second_writer_of_a_run_is_refused_naming_the_first(project):
    run = fake_trained_run(project, "tiny-cpu")
    hold = (f"import time\nfrom zhouyi.files import sole_writer\nwith sole_writer({str(run)!r}, 'export'):\n"
            " print('held', flush=True)\n time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = snapshot(run)
        for verb in (["export", "--force"], ["export", "--gguf", "q8_0", "--force"], ["eval"],
                     ["data", "pairs"]):
            result = cli(*verb, "--run", str(run), cwd=project)
            assert result.returncode == 2, result.stdout + result.stderr
            assert f"{run} is being written by pid {holder.pid} (" in result.stderr and "sole_writer" in result.stderr
        assert snapshot(run) == before
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_is_held_for_the_verb_alone_and_released(tmp_path):
    with files.sole_writer(tmp_path, "export"):
        with files.sole_writer(tmp_path, "export"), files.locked(tmp_path):
            pass  # the same process may take it again (a ledger written inside the run)
    with files.sole_writer(tmp_path, "export"):
        pass  # released


def _truncate(path: Path) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [64], "data_offsets": [0, 256]}}).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 100)  # 156 of its 256 bytes


@pytest.mark.parametrize("verb", [["train", "tiny-cpu", "--from"], ["export", "--run"], ["eval", "--run"]])
def test_a_truncated_adapter_is_named_not_loaded(project, verb):
    run = fake_trained_run(project, "tiny-cpu")
    _truncate(run / "train" / "adapter_model.safetensors")
    before = snapshot(project)
    result = cli(*verb, str(run), cwd=project)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "adapter_model.safetensors is damaged (" in result.stderr and "cut short" in result.stderr
    assert snapshot(project) == before


def test_a_whole_safetensors_file_passes(tmp_path):
    header = json.dumps({"__metadata__": {"format": "pt"}, "w": {"dtype": "F32", "shape": [2],
                                                                 "data_offsets": [0, 8]}}).encode()
    path = tmp_path / "w.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 8)
    assert files.safetensors_problem(path) is None
    path.write_bytes(b"\1\2")
    assert "too short" in files.safetensors_problem(path)


def test_a_project_folder_llamafactory_cannot_read_is_named_before_anything_is_written(tmp_path):
    (tmp_path / "p${a").mkdir()
    project = lay_out_project(tmp_path / "p${a")
    for verb in (["validate", "tiny-cpu"], ["render", "tiny-cpu"], ["train", "tiny-cpu"],
                 ["train", "tiny-cpu", "--dry-run"]):
        result = cli(*verb, cwd=project)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "rename or move the folder" in result.stderr and str(project) in result.stderr
        assert not (project / "runs").exists() and not (project / "rendered").exists()


@pytest.mark.parametrize("verb", [["data", "clean", "data/zhougong_demo.json", "-o", "data/clean.json"],
                                  ["train", "tiny-cpu", "--dry-run"]])
def test_a_full_disk_is_a_message_and_leaves_nothing_half_written(project, monkeypatch, verb):
    real_stage = files._stage

    def full_after_one(path, data, written=[]):  # noqa: B006 - counts the writes of this one call
        if written:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(path)
        return real_stage(path, data)

    cli("register", "tiny-cpu", cwd=project)
    before = contents(project)
    monkeypatch.setattr(files, "_stage", full_after_one)
    result = cli(*verb, cwd=project)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no space left on the device" in result.stderr and "Traceback" not in result.stderr
    after = contents(project)
    assert not [p for p in after if p.endswith(".tmp")], "no temp file left"
    assert not (project / "runs").exists() or not any((project / "runs").iterdir()), "no run without its manifest"
    users = {p: data for p, data in after.items() if not p.startswith((".zhouyi", "runs"))}
    assert users == {p: data for p, data in before.items() if not p.startswith(".zhouyi")}, \
        "no file of the user's changed, in name or content"


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_a_child_works_ends_zhouyi_as_that_signal(tiny_project, signum):
    """validate asks LLaMA-Factory's own parser in a child (zhouyi.child.lf_check): stopped there, zhouyi exits
    128+N, with no traceback of its own or the child's."""
    proc = subprocess.Popen([sys.executable, "-m", "zhouyi", "validate", "tiny-cpu"], cwd=tiny_project,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_signals)
    deadline = time.monotonic() + 60
    while not _children(proc.pid, "zhouyi.child.lf_check"):
        assert time.monotonic() < deadline and proc.poll() is None, "the child never started"
        time.sleep(0.1)
    child = _children(proc.pid, "zhouyi.child.lf_check")[0]
    time.sleep(1)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, out + err
    assert "Traceback" not in out + err and "KeyboardInterrupt" not in err
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]


def _children(parent: int, module: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                if ppid == parent and module.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


def test_export_check_without_the_gguf_extra_says_how_to_install_before_answering(project, monkeypatch):
    from zhouyi.export import gguf

    run = fake_trained_run(project, "tiny-cpu")
    (run / "merged").mkdir()
    (run / "merged" / "config.json").write_text("{}")
    (run / "merged-gguf-q8_0").mkdir()
    (run / "merged-gguf-q8_0" / "gguf.json").write_text('{"file": "m.gguf", "type": "q8_0"}')
    monkeypatch.setattr(gguf, "dist_version", lambda name: None if name == "llama-cpp-python" else "1")
    before = snapshot(run)
    result = cli("export", "--check", "--run", str(run), cwd=project)
    assert result.returncode == 2 and "llama-cpp-python" in result.stderr and "pip install" in result.stderr
    assert snapshot(run) == before, "refused before the adapter was asked anything"
