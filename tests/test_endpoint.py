"""The OpenAI-compatible client the judge and the teacher share, against a local server that answers as scripted:
answers cached and resumed, the pace kept, 429/5xx/timeouts retried, failures counted, a refused key named."""

import http.server
import json
import threading
import time

import pytest

from zhouyi.endpoint import Cache, EndpointSpec, Request, ask_all, plan
from zhouyi.errors import UserError
from zhouyi.serve.server import free_port

QUESTIONS = [Request((("user", f"梦见{w}"),)) for w in "蛇龙水火山"]


@pytest.fixture
def server():
    """A chat-completions server: each request takes the next scripted (status, headers) or answers 200."""
    script: list[tuple[int, dict]] = []
    seen: list[dict] = []
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                seen.append({"body": body, "auth": self.headers.get("Authorization"), "t": time.monotonic()})
                status, headers = script.pop(0) if script else (200, {})
            text = "答" + body["messages"][-1]["content"]
            answer = {"choices": [{"message": {"role": "assistant", "content": text}}]}
            data = json.dumps(answer if status == 200 else {"error": "scripted"}).encode()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", script, seen
    httpd.shutdown()


def spec(url, **kw):
    return EndpointSpec(**{"base_url": url, "model": "judge", "requests_per_minute": 6000, "retries": 2,
                           "timeout_s": 5.0, **kw})


def test_answers_are_cached_and_a_second_run_sends_only_what_is_missing(server, tmp_path, monkeypatch):
    url, _, seen = server
    monkeypatch.setenv("JUDGE_KEY", "sk-test")
    cache = Cache(tmp_path / "answers.jsonl")
    s = spec(url, api_key_env="JUDGE_KEY")
    assert plan(s, QUESTIONS[:3], cache) == (3, 0, 6), "3 to send, none cached, 9 characters ≈ 6 tokens"
    first = ask_all(s, QUESTIONS[:3], cache, echo=lambda _: None)
    assert first.sent == 3 and first.cached == 0 and not first.failed
    assert seen[0]["auth"] == "Bearer sk-test" and "sk-test" not in cache.path.read_text()
    with open(cache.path, "a") as fh:
        fh.write('{"key": "cut by a sto')  # a stop in the middle of a line
    again = ask_all(s, QUESTIONS, cache, echo=lambda _: None)
    assert again.cached == 3 and again.sent == 2 and len(seen) == 5, "only the two missing were sent"
    assert sorted(again.answers.values()) == sorted(f"答梦见{w}" for w in "蛇龙水火山")


def test_429_waits_retry_after_and_5xx_is_retried_then_counted(server, tmp_path):
    url, script, seen = server
    script += [(429, {"Retry-After": "1"}), (503, {}), (500, {}), (500, {}), (500, {})]
    cache = Cache(tmp_path / "a.jsonl")
    started = time.monotonic()
    out = ask_all(spec(url, concurrency=1), QUESTIONS[:2], cache, echo=lambda _: None)
    assert time.monotonic() - started >= 1.0, "Retry-After was honoured"
    assert out.sent == 1 and out.failed == {"HTTP 500": 1}, "a request that still fails is counted, not dropped"
    assert len(seen) == 6


def test_the_pace_is_kept(server, tmp_path):
    url, _, seen = server
    ask_all(EndpointSpec(base_url=url, model="m", requests_per_minute=120, concurrency=4), QUESTIONS[:4],
            Cache(tmp_path / "a.jsonl"), echo=lambda _: None)
    starts = sorted(s["t"] for s in seen)
    assert starts[-1] - starts[0] >= 1.4, "4 requests at 120 a minute take 1.5 s to start"


def test_a_refused_key_stops_at_once_naming_the_variable(server, tmp_path, monkeypatch):
    url, script, seen = server
    script += [(401, {})] * 5
    monkeypatch.setenv("JUDGE_KEY", "wrong")
    with pytest.raises(UserError, match="check the environment variable JUDGE_KEY"):
        ask_all(spec(url, api_key_env="JUDGE_KEY", concurrency=1), QUESTIONS, Cache(tmp_path / "a.jsonl"),
                echo=lambda _: None)
    monkeypatch.delenv("JUDGE_KEY")
    with pytest.raises(UserError, match="JUDGE_KEY is not set"):
        ask_all(spec(url, api_key_env="JUDGE_KEY"), QUESTIONS, Cache(tmp_path / "a.jsonl"), echo=lambda _: None)


def test_an_endpoint_that_is_not_there_is_a_clear_error(tmp_path):
    started = time.monotonic()
    with pytest.raises(UserError, match="did not answer"):
        ask_all(spec(f"http://127.0.0.1:{free_port()}/v1", retries=1), QUESTIONS[:1], Cache(tmp_path / "a.jsonl"),
                echo=lambda _: None)
    assert time.monotonic() - started < 10
