import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import default_signals
from zhouyi import launch, process
from zhouyi.errors import UserError
from zhouyi.load import load

RUN = Path("/project/runs/job-1")


def test_build_is_pure_and_names_the_verbs_config():
    spec = load("zhougong-lora").spec
    cmd = launch.build(spec, "train", RUN)
    assert cmd.argv == ["llamafactory-cli", "train", "/project/runs/job-1/train.yaml"]
    assert cmd.env == {"CUDA_VISIBLE_DEVICES": "0,1,2,3", "FORCE_TORCHRUN": "1", "NPROC_PER_NODE": "4",
                       "NNODES": "1", "NODE_RANK": "0", "USE_MODELSCOPE_HUB": "1"}
    assert cmd.cwd == str(RUN)
    chat = launch.build(spec, "chat", RUN)
    assert chat.argv[1:] == ["chat", "/project/runs/job-1/infer.yaml"]
    assert chat.env == {"CUDA_VISIBLE_DEVICES": "0", "USE_MODELSCOPE_HUB": "1"}
    assert launch.build(spec, "export", RUN).argv[1:] == ["export", "/project/runs/job-1/export.yaml"]
    assert launch.build(spec, "predict", RUN).argv[1:] == ["train", "/project/runs/job-1/predict.yaml"]


def test_cpu_spec_hides_gpus_and_runs_one_process():
    cmd = launch.build(load("tiny-cpu").spec, "train", RUN)
    assert cmd.env == {"CUDA_VISIBLE_DEVICES": ""}


def test_shell_line_masks_secrets():
    cmd = launch.Command(["llamafactory-cli", "api", "x.yaml"], {"API_KEY": "s3cret", "A": "b c"}, "/w")
    assert cmd.shell() == "cd /w && A='b c' API_KEY='***' llamafactory-cli api x.yaml"


def _script(tmp_path: Path, body: str) -> launch.Command:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(body))
    return launch.Command([sys.executable, str(script)], {"ZHOUYI_TEST": "1"}, str(tmp_path))


def test_run_prints_command_and_returns_exit_code(tmp_path: Path, capsys):
    cmd = _script(tmp_path, "import os, sys; print(os.environ['ZHOUYI_TEST']); sys.exit(3)")
    assert process.run(cmd) == 3
    assert "run: cd" in capsys.readouterr().out


def test_missing_llamafactory_cli_is_a_user_error(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with pytest.raises(UserError, match="'llamafactory-cli' not found"):
        process.run(launch.Command(["llamafactory-cli", "train", "x.yaml"]))


def _driven(tmp_path: Path, child: str, setup: str = "") -> tuple[subprocess.Popen, str]:
    """zhouyi's process.run() in a parent process, on `child` (Python source, which writes its `pids` file when it is
    ready); returns the parent and what the child wrote."""
    pids = tmp_path / "pids"
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(f"""
        import sys
        from zhouyi import launch, process
        {setup}
        child = {textwrap.dedent(child).replace("PIDS", repr(str(pids)))!r}
        sys.exit(process.run(launch.Command([sys.executable, "-c", child])))
    """))
    proc = subprocess.Popen([sys.executable, str(driver)], stdout=subprocess.DEVNULL, preexec_fn=default_signals)
    deadline = time.time() + 20
    while not (pids.exists() and pids.read_text()) and time.time() < deadline:
        time.sleep(0.1)
    return proc, pids.read_text()


def test_sigterm_reaches_the_whole_child_group(tmp_path: Path):
    """zhouyi's run() in a parent; its child spawns a grandchild; SIGTERM to the parent ends both."""
    proc, grandchild = _driven(tmp_path, """
        import subprocess, sys, time
        g = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open(PIDS, "w").write(str(g.pid))
        time.sleep(60)
    """)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 128 + signal.SIGTERM
    time.sleep(0.5)
    assert not _alive(int(grandchild))


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting for a reaper (a container's PID 1 may never reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP])
def test_a_child_that_ignores_the_signal_is_stopped_harder(tmp_path: Path, signum):
    """A child started with SIGINT ignored (as a non-interactive shell starts background jobs) and one that ignores
    SIGHUP itself: zhouyi forwards the signal, then SIGTERM, then SIGKILL, and leaves nothing running."""
    proc, _ = _driven(tmp_path, """
        import signal, time
        for ignored in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
            signal.signal(ignored, signal.SIG_IGN)
        open(PIDS, "w").write("ready")
        time.sleep(60)
    """, setup="process.ESCALATE_AFTER = 1.0")
    started = time.time()
    proc.send_signal(signum)
    assert proc.wait(timeout=15) == 128 + signum, "zhouyi ends as the signal the user sent"
    assert time.time() - started < 10, "SIGINT/SIGHUP and SIGTERM ignored: only SIGKILL ended the child so soon"
