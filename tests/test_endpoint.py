"""The OpenAI-compatible client the judge and the teacher share, against a local server that answers as scripted:
answers cached and resumed, the pace kept, 429/5xx/timeouts/malformed answers/dropped connections retried,
failures counted, a refused key named."""

import time

import pytest

from tests.endpoint_server import scripted_server
from zhouyi.endpoint import Cache, Request, ask_all, plan
from zhouyi.errors import UserError
from zhouyi.serve.server import free_port
from zhouyi.spec import EndpointSpec


def quiet(*_, **__):
    pass


QUESTIONS = [Request((("user", f"梦见{w}"),)) for w in "蛇龙水火山"]


@pytest.fixture
def server():
    with scripted_server() as found:
        yield found


def spec(url, **kw):
    return EndpointSpec(**{"base_url": url, "model": "judge", "requests_per_minute": 6000, "retries": 2,
                           "timeout_s": 5.0, **kw})


def test_answers_are_cached_and_a_second_run_sends_only_what_is_missing(server, tmp_path, monkeypatch):
    url, _, seen = server
    monkeypatch.setenv("JUDGE_KEY", "sk-test")
    cache = Cache(tmp_path / "answers.jsonl")
    s = spec(url, api_key_env="JUDGE_KEY")
    assert plan(s, QUESTIONS[:3], cache) == (3, 0, 6), "3 to send, none cached, 9 characters ≈ 6 tokens"
    first = ask_all(s, QUESTIONS[:3], cache, echo=quiet)
    assert first.sent == 3 and first.cached == 0 and not first.failed
    assert seen[0]["auth"] == "Bearer sk-test" and "sk-test" not in cache.path.read_text()
    with open(cache.path, "a") as fh:
        fh.write('{"key": "cut by a sto')  # a stop in the middle of a line
    again = ask_all(s, QUESTIONS, cache, echo=quiet)
    assert again.cached == 3 and again.sent == 2 and len(seen) == 5, "only the two missing were sent"
    assert sorted(a.text for a in again.answers.values()) == sorted(f"答梦见{w}" for w in "蛇龙水火山")
    assert len(cache.load()) == 5, "the answer after the cut line starts a line of its own: nothing lost"
    assert ask_all(s, QUESTIONS, cache, echo=quiet).sent == 0 and len(seen) == 5, "a third run sends none"


def test_429_waits_retry_after_and_5xx_is_retried_then_counted(server, tmp_path):
    url, script, seen = server
    script += [(429, {"Retry-After": "1"}), (503, {}), (500, {}), (500, {}), (500, {})]
    cache = Cache(tmp_path / "a.jsonl")
    started = time.monotonic()
    out = ask_all(spec(url, concurrency=1), QUESTIONS[:2], cache, echo=quiet)
    assert time.monotonic() - started >= 1.0, "Retry-After was honoured"
    assert out.sent == 1 and out.failed == {"HTTP 500: scripted": 1}, "a request that still fails is counted"
    assert len(seen) == 6


def test_the_pace_is_kept(server, tmp_path):
    url, _, seen = server
    ask_all(EndpointSpec(base_url=url, model="m", requests_per_minute=120, concurrency=4), QUESTIONS[:4],
            Cache(tmp_path / "a.jsonl"), echo=quiet)
    starts = sorted(s["t"] for s in seen)
    assert starts[-1] - starts[0] >= 1.4, "4 requests at 120 a minute take 1.5 s to start"


def test_a_refused_key_stops_at_once_naming_the_variable(server, tmp_path, monkeypatch):
    url, script, seen = server
    script += [(401, {})] * 5
    monkeypatch.setenv("JUDGE_KEY", "wrong")
    with pytest.raises(UserError, match="check the environment variable JUDGE_KEY"):
        ask_all(spec(url, api_key_env="JUDGE_KEY", concurrency=1), QUESTIONS, Cache(tmp_path / "a.jsonl"),
                echo=quiet)
    monkeypatch.delenv("JUDGE_KEY")
    with pytest.raises(UserError, match="JUDGE_KEY is not set"):
        ask_all(spec(url, api_key_env="JUDGE_KEY"), QUESTIONS, Cache(tmp_path / "a.jsonl"), echo=quiet)


def test_an_endpoint_that_is_not_there_is_a_clear_error(tmp_path):
    started = time.monotonic()
    with pytest.raises(UserError, match="did not answer"):
        ask_all(spec(f"http://127.0.0.1:{free_port()}/v1", retries=1), QUESTIONS[:1], Cache(tmp_path / "a.jsonl"),
                echo=quiet)
    assert time.monotonic() - started < 10


def test_malformed_answers_dropped_connections_and_slow_answers_are_retried_then_counted(server, tmp_path):
    url, script, seen = server
    script += ["malformed", "drop", "slow",  # each once, then answered: nothing lost
               "malformed", "malformed", "malformed", "malformed"]  # always malformed: counted, not a gap
    cache = Cache(tmp_path / "a.jsonl")
    out = ask_all(spec(url, concurrency=1, timeout_s=1.0, retries=3), QUESTIONS[:2], cache, echo=quiet)
    assert out.sent == 1 and out.failed == {"an answer that is not a chat completion": 1}, out.failed
    assert len(seen) == 8, "4 tries for the first (malformed, dropped, slow, answered), 4 for the second"
    again = ask_all(spec(url, concurrency=1, timeout_s=1.0), QUESTIONS[:2], cache, echo=quiet)
    assert again.cached == 1 and again.sent == 1 and not again.failed, "only the failed one is asked again"
    assert len(cache.load()) == 2 and len(seen) == 9, "every row once"


def test_tokens_come_from_the_endpoints_usage_else_from_characters(server, tmp_path):
    url, script, _ = server
    script += ["usage"]
    out = ask_all(spec(url, concurrency=1), QUESTIONS[:2], Cache(tmp_path / "a.jsonl"), echo=quiet)
    assert sorted(a.tokens for a in out.answers.values()) == [round(len("梦见龙" + "答梦见龙") / 1.5), 42]
    assert out.tokens_sent == 42 + 5


def test_an_endpoint_that_refuses_every_request_says_why_without_the_key(server, tmp_path, monkeypatch):
    url, script, seen = server
    monkeypatch.setenv("JUDGE_KEY", "sk-echoed-3c9a")
    script += [(400, {}, "max_tokens: 512; infer.max_new_tokens allows 128 (key sk-echoed-3c9a)")] * 2
    with pytest.raises(UserError, match="refused every request: HTTP 400: max_tokens: 512; infer.max_new_tokens "
                       "allows 128") as refused:
        ask_all(spec(url, api_key_env="JUDGE_KEY"), QUESTIONS[:2], Cache(tmp_path / "a.jsonl"), echo=quiet)
    assert "sk-echoed-3c9a" not in str(refused.value) and "(key ***)" in str(refused.value)
    assert len(seen) == 2, "a 400 is not retried: the request itself is wrong"
