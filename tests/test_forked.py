"""zhouyi.child.forked: a run in a forked copy reports its exit code as a shell would, its output in its log, and
the copy may use the GPU only where torch checked for one without initialising CUDA."""

import os
import signal
import sys

from zhouyi.child import forked


def test_a_forked_run_says_how_it_ended_and_writes_only_its_log(tmp_path):
    log = str(tmp_path / "run.log")
    def both_streams():
        os.write(1, b"out ")  # descriptors: pytest's own capture replaces sys.stdout in this process
        os.write(2, b"err\n")

    assert forked.run(both_streams, log, str(tmp_path)) == 0
    assert open(log).read() == "out err\n"
    assert forked.run(lambda: sys.exit(3), log, str(tmp_path)) == 3
    assert forked.run(lambda: 1 / 0, log, str(tmp_path)) == 1, "an exception is exit 1"
    assert forked.run(lambda: os.kill(os.getpid(), signal.SIGTERM), log, str(tmp_path)) == 128 + signal.SIGTERM
    assert forked.run(lambda: None, log, str(tmp_path), [str(tmp_path / "no-such-script.py")]) == 2, \
        "with fresh_argv the copy execs Python (here on a missing script: Python's exit 2)"
    assert os.getcwd() != str(tmp_path), "the copy's chdir stays in the copy"


def test_a_copy_may_use_the_gpu_only_when_torch_asked_nvml(monkeypatch):
    monkeypatch.delenv(forked.NVML_CHECK, raising=False)
    forked.before_imports()
    assert os.environ[forked.NVML_CHECK] == "1" and forked.copy_is_safe()
    monkeypatch.setenv(forked.NVML_CHECK, "0")  # the user's own choice is kept: every run then execs
    forked.before_imports()
    assert os.environ[forked.NVML_CHECK] == "0" and not forked.copy_is_safe()
