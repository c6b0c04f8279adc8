"""`zhouyi api`'s gate holds every field and every client to its limits, a client that leaves stops the model's
work, and `zhouyi api` ends when its model server does (issue 30, parts 5-8)."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import default_signals, wait_for_http
from zhouyi.serve.requests import Limits, refusal
from zhouyi.serve.server import free_port

LIMITS = Limits(max_prompt_chars=100, max_new_tokens=32)
ASK = {"model": "m", "messages": [{"role": "user", "content": "梦见蛇"}]}


@pytest.mark.parametrize("change, param, words", [
    ({"max_tokens": "9999"}, "max_tokens", "valid integer"),
    ({"max_tokens": 9999.0}, "max_tokens", "valid integer"),
    ({"max_tokens": 1e4}, "max_tokens", "valid integer"),
    ({"max_tokens": True}, "max_tokens", "valid integer"),
    ({"max_tokens": -5}, "max_tokens", "greater than or equal to 1"),
    ({"max_tokens": 33}, "max_tokens", "33; infer.max_new_tokens allows 32"),
    ({"n": 50}, "n", "less than or equal to 1"),
    ({"stream": "yes"}, "stream", "valid boolean"),
    ({"temperature": 9}, "temperature", "less than or equal to 2"),
    ({"logit_bias": {"1": 100}}, "logit_bias", "not a field this server takes"),
    ({"messages": "梦见蛇"}, "messages", "valid list"),
    ({"messages": []}, "messages", "at least 1 item"),
    ({"messages": [{"role": "user", "content": "梦" * 101}]}, "messages[0].content", "101 characters"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "梦" * 60}, {"type": "text",
                                                                                   "text": "蛇" * 41}]}]},
     "messages[0].content", "101 characters"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}]},
     "messages[0].content[0].type", "Input should be 'text'"),
    ({"messages": [{"role": "assistant", "tool_calls": [{"id": "1", "function": {"name": "f",
                                                                                 "arguments": "x" * 200}}]}]},
     "messages[0].content", "characters"),
    ({"tools": [{"type": "function", "function": {"name": "f", "description": "d" * 100_000, "parameters": {}}}]},
     "tools", "the tools' definitions are 100,"),
    ({"messages": [{"role": "user", "content": "a"}] * 33}, "messages", "at most 32 items"),
])
def test_the_gate_refuses_what_the_schema_and_limits_do_not_allow(change, param, words):
    found = refusal({**ASK, **change}, LIMITS)
    assert found is not None and found[0] == param and words in found[1], found


def test_the_gate_lets_a_well_formed_request_through():
    assert refusal({**ASK, "max_tokens": 32, "stream": True, "temperature": 0.7, "stop": ["。"]}, LIMITS) is None
    tools = [{"type": "function", "function": {"name": "f", "description": "解梦", "parameters": {}}}]
    assert refusal({**ASK, "tools": tools, "messages": [{"role": "system", "content": "你是周文王"},
                                                         *ASK["messages"]]}, LIMITS) is None
    assert refusal([1, 2], LIMITS)[0] is None, "not an object: refused, no field to name"


@pytest.fixture
def gate():
    """The gate alone, in front of a model server that is not there, with 1-second client deadlines."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "zhouyi.serve.api_gate", "--upstream", f"http://127.0.0.1:{free_port()}",
                             "--host", "127.0.0.1", "--port", str(port), "--max-prompt-chars", "100",
                             "--max-new-tokens", "32", "--header-seconds", "1", "--body-seconds", "1"],
                            env={**os.environ, "ZHOUYI_UPSTREAM_KEY": "k"}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}", port
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=30)[0]
    assert "Traceback" not in output, output[-3000:]


def test_the_gate_answers_bad_bodies_and_paths_with_400s(gate):
    url, _ = gate
    chat = f"{url}/v1/chat/completions"
    bad = httpx.post(chat, content=b"\xff\xfe not json")
    assert bad.status_code == 400 and "not UTF-8" in bad.json()["error"]["message"]
    assert httpx.post(chat, content=b"{not json").status_code == 400
    strict = httpx.post(chat, json={**ASK, "max_tokens": "9999"})
    assert strict.status_code == 400 and strict.json()["error"]["param"] == "max_tokens"
    assert httpx.post(f"{url}/v1/score/evaluation", json={}).status_code == 404, "only the two routes"
    down = httpx.post(chat, json=ASK)
    assert down.status_code == 503, "a good request reaches for the model server (which is not there)"


def test_the_gate_closes_on_clients_too_slow_with_headers_or_body(gate):
    _, port = gate
    slow_headers = socket.create_connection(("127.0.0.1", port))
    slow_headers.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")  # and never the rest
    slow_headers.settimeout(10)
    started = time.monotonic()
    assert slow_headers.recv(1024) == b"", "closed"
    assert time.monotonic() - started < 5

    slow_body = socket.create_connection(("127.0.0.1", port))
    slow_body.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
    slow_body.settimeout(10)
    assert b" 408 " in slow_body.recv(4096).split(b"\r\n")[0] + b" "


def _stream_then_leave(url: str, headers: dict, lines: int = 3) -> None:
    with httpx.stream("POST", f"{url}/chat/completions", headers=headers, timeout=60,
                      json={**ASK, "stream": True}) as answer:
        assert answer.status_code == 200
        for n, _ in enumerate(answer.iter_lines()):
            if n >= lines:
                break


@pytest.mark.slow
def test_a_client_that_leaves_mid_answer_stops_the_generation(trained_run, tmp_path):
    """The untrained tiny model rarely ends an answer, so with no token limit only a stopped generation ends."""
    project, run, _ = trained_run
    infer = [line for line in (run / "infer.yaml").read_text().splitlines()
             if not line.startswith(("adapter_name_or_path", "finetuning_type", "max_new_tokens"))]
    (tmp_path / "infer.yaml").write_text("\n".join(infer + ["max_new_tokens: 1000000"]) + "\n")
    model_port, gate_port = free_port(), free_port()
    log = (tmp_path / "engine.log").open("w")
    engine = subprocess.Popen([sys.executable, "-m", "zhouyi.serve.engine", "api", str(tmp_path / "infer.yaml")],
                              env={**os.environ, "API_PORT": str(model_port), "API_HOST": "127.0.0.1",
                                   "CUDA_VISIBLE_DEVICES": ""}, stdout=log, stderr=subprocess.STDOUT)
    gate = subprocess.Popen([sys.executable, "-m", "zhouyi.serve.api_gate", "--upstream", f"http://127.0.0.1:{model_port}",
                             "--host", "127.0.0.1", "--port", str(gate_port), "--max-prompt-chars", "100",
                             "--max-new-tokens", "32"], env={**os.environ, "ZHOUYI_UPSTREAM_KEY": "none"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_http(f"http://127.0.0.1:{model_port}/v1/models", engine)
        _stream_then_leave(f"http://127.0.0.1:{model_port}/v1", {})  # straight to the model server
        _stream_then_leave(f"http://127.0.0.1:{gate_port}/v1", {})  # and through the gate
        deadline = time.monotonic() + 30
        while (tmp_path / "engine.log").read_text().count("generation stopped: its client left") < 2:
            assert time.monotonic() < deadline, (tmp_path / "engine.log").read_text()[-3000:]
            time.sleep(0.5)
        started = time.monotonic()
        reply = httpx.post(f"http://127.0.0.1:{gate_port}/v1/chat/completions", json={**ASK, "max_tokens": 8},
                           timeout=60)
        assert reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] == 8
        assert time.monotonic() - started < 15, "nothing left generating ahead of it"
    finally:
        for proc in (gate, engine):
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        log.close()
    assert "Traceback" not in gate.stdout.read()
    assert "Traceback" not in (tmp_path / "engine.log").read_text()


def _api(project: Path, run: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "zhouyi", "api", "--run", str(run), "--port", str(port)],
                            cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=default_signals)


def _model_server(run: Path) -> int:
    """The model server `zhouyi api` started on `run` (found by its command line: it runs in a session of its own)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "zhouyi.serve.engine api" in cmdline and f"{run}/infer.yaml" in cmdline:
                return int(entry)
    raise AssertionError("no model server found")


@pytest.mark.slow
def test_api_ends_when_its_model_server_dies_and_exits_130_on_ctrl_c(trained_run):
    project, run, _ = trained_run
    port = free_port()
    api = _api(project, run, port)
    wait_for_http(f"http://127.0.0.1:{port}/v1/models", api)
    os.kill(_model_server(run), signal.SIGKILL)
    output = api.communicate(timeout=60)[0]
    assert api.returncode == 2, output[-3000:]
    assert "the LLaMA-Factory server exited (-9) while serving; its log" in output
    assert "Traceback" not in output
    (kept,) = run.glob("server-*.log")  # kept for the user, since it names what went wrong
    assert str(kept) in output
    kept.unlink()  # the run is shared with other tests

    api = _api(project, run, port)
    wait_for_http(f"http://127.0.0.1:{port}/v1/models", api)
    api.send_signal(signal.SIGINT)
    output = api.communicate(timeout=60)[0]
    assert api.returncode == 130, output[-3000:]
    assert "Traceback" not in output
