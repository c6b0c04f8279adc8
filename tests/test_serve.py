"""ask, chat and api on a trained tiny model, through LLaMA-Factory's real OpenAI-compatible server."""

import os
import signal
import socket
import subprocess
import sys

import httpx
import pytest

from tests.conftest import api_serving, cli, default_signals, fake_trained_run, zhouyi
from zhouyi.errors import UserError
from zhouyi.serve.server import pick_port

QUESTION = "梦见蛇是什么意思？"
KEY = "test-key-7f3a"


@pytest.mark.slow
def test_ask_prints_only_the_answer(trained_run):
    project, run, _ = trained_run
    result = zhouyi("ask", "--run", str(run), QUESTION, cwd=project, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip(), "the model answered"
    assert "run:" not in result.stdout and "llamafactory" not in result.stdout.lower(), "logs stay on stderr"
    assert "zhouyi.serve.engine api" in result.stderr and "API_KEY='***'" in result.stderr, "the key is masked"
    assert not list(run.glob("server-*.log")), "a clean run leaves no server log behind"


@pytest.mark.slow
def test_chat_keeps_a_conversation_and_takes_commands(trained_run):
    project, run, _ = trained_run
    result = zhouyi("chat", "--run", str(run), cwd=project, timeout=300,
                    stdin=f"{QUESTION}\n\n/clear\n{'梦' * 5000}\n梦见龙好不好？\n/exit\n")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("答: ") == 2, result.stdout
    assert "(conversation cleared)" in result.stdout
    assert "5,000 characters" in result.stdout, "a too-long question is refused and the chat goes on"


@pytest.mark.parametrize("question, message", [("   ", "the question is empty"),
                                                ("梦" * 100_000, "100,000 characters")])
def test_ask_refuses_an_empty_or_huge_question_before_loading(tiny_project, question, message):
    run = fake_trained_run(tiny_project, "tiny-cpu")
    result = cli("ask", "--run", str(run), "-", stdin=question, cwd=tiny_project)  # "-": a page pasted on stdin
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "loading" not in result.stderr, "refused before any model loads"


@pytest.mark.slow
def test_a_server_that_cannot_load_the_model_is_reported_with_its_log(tiny_project):
    run = fake_trained_run(tiny_project, "tiny-cpu")  # its adapter_config.json is empty: PEFT cannot load it
    result = zhouyi("ask", "--run", str(run), QUESTION, cwd=tiny_project, timeout=300)
    assert result.returncode == 2 and "exited (1) before it was ready" in result.stderr
    assert "peft_type" in result.stderr, "the log's tail says why"
    (log,) = run.glob("server-*.log")
    assert str(log) in result.stderr, "and the log is kept where it says"


def test_port_is_the_default_a_free_one_or_a_clear_error(capsys):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        taken = held.getsockname()[1]
        chosen = pick_port("127.0.0.1", None, taken)
        assert chosen != taken and f"port {taken} is in use; serving on {chosen}" in capsys.readouterr().out
        with pytest.raises(UserError, match=f"127.0.0.1:{taken} is in use"):
            pick_port("127.0.0.1", taken, 8000)
    assert pick_port("127.0.0.1", None, taken) == taken, "free again: the default is used"
    assert pick_port("127.0.0.1", 0, 8000) > 0
    with pytest.raises(UserError, match="1..65535"):
        pick_port("127.0.0.1", 70000, 8000)


def test_run_that_is_no_run_is_named(project):
    (project / "runs" / "nothing").mkdir(parents=True)
    result = cli("ask", "--run", "runs/nothing", QUESTION, cwd=project)
    assert result.returncode == 2 and "manifest.json is missing" in result.stderr


@pytest.mark.slow
def test_api_serves_openai_clients_and_requires_the_key(trained_run):
    from openai import APIStatusError, AuthenticationError, BadRequestError, OpenAI

    project, run, _ = trained_run
    with api_serving(project, run, KEY) as (base, port, server):
        client = OpenAI(base_url=base, api_key=KEY)
        assert [m.id for m in client.models.list()] == ["tiny-cpu"], "the model is named after the run"

        reply = client.chat.completions.create(model="tiny-cpu", messages=[{"role": "user", "content": QUESTION}])
        assert reply.choices[0].message.content and reply.usage.completion_tokens > 0

        stream = client.chat.completions.create(model="tiny-cpu", stream=True,
                                                messages=[{"role": "user", "content": QUESTION}])
        pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
        assert len(pieces) > 1, "answers stream token by token"

        with pytest.raises(AuthenticationError):
            OpenAI(base_url=base, api_key="wrong").models.list()
        assert httpx.get(f"{base}/models").status_code == 401, "no key, no model"

        with pytest.raises(APIStatusError) as bad_turns:  # two user turns in a row
            client.chat.completions.create(model="tiny-cpu", messages=[{"role": "user", "content": "a"},
                                                                       {"role": "user", "content": "b"}])
        assert bad_turns.value.status_code == 400 and "u/a/u" in bad_turns.value.response.json()["detail"]
        missing = httpx.post(f"{base}/chat/completions", json={"model": "tiny-cpu"},
                             headers={"Authorization": f"Bearer {KEY}"})
        assert missing.status_code == 400 and missing.json()["error"]["param"] == "messages", "the field is named"

        auth = {"Authorization": f"Bearer {KEY}"}
        long = httpx.post(f"{base}/chat/completions", headers=auth, json={
            "model": "tiny-cpu", "messages": [{"role": "user", "content": QUESTION}, {"role": "assistant",
                                              "content": "吉"}, {"role": "user", "content": "梦" * 4001}]})
        assert long.status_code == 400, long.text
        assert long.json()["error"]["message"] == ("messages[2].content: 4,001 characters; infer.max_prompt_chars "
                                                   "allows 4,000 (a dream takes a few hundred)")
        with pytest.raises(BadRequestError, match="infer.max_new_tokens allows 32"):
            client.chat.completions.create(model="tiny-cpu", max_tokens=100_000,
                                           messages=[{"role": "user", "content": QUESTION}])
        page = httpx.post(f"{base}/chat/completions", headers=auth, content=b"x" * 2_000_000)
        assert page.status_code == 413, "a body past every limit is refused before it is read whole"

        (model_server,) = _servers_for(run)  # LLaMA-Factory's own server: loopback only, and not on the user's key
        env = dict(e.split("=", 1) for e in open(f"/proc/{model_server}/environ").read().split("\0") if "=" in e)
        assert env["API_HOST"] == "127.0.0.1" and int(env["API_PORT"]) != port
        assert httpx.get(f"http://127.0.0.1:{env['API_PORT']}/v1/models", headers=auth).status_code == 401

        taken = cli("api", "--run", str(run), "--port", str(port), cwd=project)
        assert taken.returncode == 2 and f"127.0.0.1:{port} is in use" in taken.stderr
    output = server.output
    assert not _servers_for(run), "SIGTERM stops the gate and the model server behind it"
    assert KEY not in output, "the key is never printed"
    assert not any(KEY in p.read_text(errors="ignore") for p in run.rglob("*") if p.is_file()), "nor written"


def test_api_dry_run_shows_the_model_server_and_the_gate_in_front(tiny_project):
    run = fake_trained_run(tiny_project, "tiny-cpu")
    result = cli("api", "--run", str(run), "--host", "0.0.0.0", "--port", "0", "--dry-run", cwd=tiny_project)
    assert result.returncode == 0, result.stderr
    model_server, gate = [line for line in result.stdout.splitlines() if line.startswith("run: ")]
    assert "API_HOST=127.0.0.1" in model_server and "API_KEY='***'" in model_server, "private, on a fresh key"
    assert "--host 0.0.0.0" in gate and "--max-prompt-chars 4000" in gate and "--max-new-tokens 32" in gate
    assert "ZHOUYI_UPSTREAM_KEY='***'" in gate
    assert "without API_KEY" in result.stderr, "the open network without a key is warned about"


def _servers_for(run) -> list[int]:
    """PIDs of LLaMA-Factory API servers serving `run` (found by their infer.yaml on the command line)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = open(f"/proc/{entry}/cmdline", "rb").read().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "zhouyi.serve.engine api " in cmdline and f"{run}/infer.yaml" in cmdline:
                pids.append(int(entry))
    return pids


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_ask_stopped_while_the_model_loads_leaves_no_server(trained_run, signum):
    """The server ask starts lives in a session of its own: SIGTERM or SIGHUP to ask must stop it too."""
    import time

    project, run, _ = trained_run
    proc = subprocess.Popen([sys.executable, "-m", "zhouyi", "ask", "--run", str(run), QUESTION], cwd=project,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_signals)
    deadline = time.monotonic() + 60
    while not _servers_for(run) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _servers_for(run), "the server started"
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signum, out + err[-2000:]
    time.sleep(0.5)
    assert not _servers_for(run), "nothing left listening"
