"""One client for OpenAI-compatible chat endpoints (a DeepSeek or Qwen key, vLLM, Ollama, `llamafactory-cli api`),
for the judge and the teacher (issue 29). What it guarantees:

- the key is read from the environment variable the spec names, never written to a spec, a run or a log;
- every answer is cached as it arrives, one JSON line fsynced per answer, keyed by a hash of the model, the
  messages and the parameters: a second run sends only what is missing, and a run stopped by Ctrl-C, SIGTERM or
  SIGHUP resumes without losing or repeating a row (a line cut by the stop is ignored);
- requests start no faster than `requests_per_minute`, at most `concurrency` at once;
- 429 waits what `Retry-After` says, up to timeout_s × (retries + 1) (a longer wait counts the request as failed,
  and a wait of 5 s or more is said); 5xx and timeouts are retried with exponential backoff and jitter; a request
  that still fails is counted with its reason, never a silent gap; 401/403 stop at once naming the variable; an
  endpoint that never answers is a clear error;
- an answer larger than max_tokens could fill (64 bytes a token, at least 64 KiB) is refused unread past the cap,
  counted as failed and never cached;
- `plan()` says how many requests it will send and roughly how many tokens, before anything is sent.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import math
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from zhouyi.errors import UserError
from zhouyi.spec import EndpointSpec

CHARS_PER_TOKEN = 1.5  # a rough count for Chinese text: the plan says so


@dataclass(frozen=True)
class Request:
    messages: tuple[tuple[str, str], ...]  # (role, content)

    def body(self, spec: EndpointSpec) -> dict:
        return {"model": spec.model, "messages": [{"role": r, "content": c} for r, c in self.messages],
                "temperature": spec.temperature, "max_tokens": spec.max_tokens}

    def key(self, spec: EndpointSpec) -> str:
        return hashlib.sha256(json.dumps(self.body(spec), ensure_ascii=False, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Answer:
    text: str
    tokens: int  # prompt and answer tokens as the endpoint counted them (`usage`), else estimated from characters


@dataclass
class Outcome:
    answers: dict[str, Answer]  # request key -> its answer
    sent: int = 0  # requests answered in this run
    cached: int = 0  # requests the cache answered
    failed: Counter = field(default_factory=Counter)  # reason -> requests that got no answer
    tokens_sent: int = 0  # tokens of this run's requests and answers

    def text(self, spec: EndpointSpec, request: Request) -> str | None:
        found = self.answers.get(request.key(spec))
        return found.text if found else None

    def tokens(self, spec: EndpointSpec, requests: list[Request]) -> int:
        """The tokens of these requests' answers, sent now or earlier (the cache keeps each answer's count)."""
        return sum(found.tokens for r in requests if (found := self.answers.get(r.key(spec))) is not None)


class Cache:
    """Answers as JSON Lines, appended and fsynced one by one; a last line cut by a stop is skipped."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if self.path.is_symlink():
            raise UserError(f"{self.path}: the answers' cache is a link; zhouyi keeps its cache as a file of its own "
                            "and never writes through a link: remove the link, or name another cache")

    @staticmethod
    def _row(line: str) -> tuple[str, Answer] | None:
        try:
            row = json.loads(line)
            return str(row["key"]), Answer(str(row["answer"]), int(row.get("tokens", 0)))
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError):
            return None  # the line a stop cut short, or a number no answer has

    def _ends_a_line(self) -> bool:
        with open(self.path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"

    def load(self) -> dict[str, Answer]:
        answers: dict[str, Answer] = {}
        if not self.path.is_file():
            return answers
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"{self.path}: the answers' cache cannot be read ({exc}); it is not zhouyi's: name "
                            "another cache, or move this file away") from None
        rows = [row for line in lines if (row := self._row(line)) is not None]
        if lines and not rows:
            raise UserError(f"{self.path}: not an answers' cache zhouyi wrote (no line of it is one); zhouyi appends "
                            "only to its own: name another cache, or move this file away")
        return dict(rows)

    def add(self, key: str, answer: Answer) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+", encoding="utf-8") as fh:
            if fh.tell() and not self._ends_a_line():
                fh.write("\n")  # after a line a stop cut short: the next answer starts a line of its own
            fh.write(json.dumps({"key": key, "answer": answer.text, "tokens": answer.tokens}, ensure_ascii=False)
                     + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def plan(spec: EndpointSpec, requests: list[Request], cache: Cache) -> tuple[int, int, int]:
    """(requests to send, answers cached already, the prompt tokens to send, roughly) — before anything is sent."""
    have = cache.load()
    missing = [r for r in requests if r.key(spec) not in have]
    chars = sum(len(c) for r in missing for _, c in r.messages)
    return len(missing), len(requests) - len(missing), round(chars / CHARS_PER_TOKEN)


def load_file(path: Path, model: type[EndpointSpec], flag: str) -> EndpointSpec:
    """An endpoint's fields as a YAML file of their own (`--judge-with FILE`, `--teacher-with FILE`)."""
    from pydantic import ValidationError

    from zhouyi.load import describe, mapping
    from zhouyi.user_files import read_text

    text = read_text(Path(path), flag, f"give a YAML file of the endpoint's fields ({', '.join(model.model_fields)})")
    try:
        return model.model_validate(mapping(text, str(path)))
    except ValidationError as exc:
        problems = [describe(err, model) for err in exc.errors()]
        raise UserError(f"{flag} {path}: " + "; ".join(f"{p}: {m}" for p, m in problems)) from None


def api_key(spec: EndpointSpec) -> str | None:
    if spec.api_key_env is None:
        return None
    key = os.environ.get(spec.api_key_env)
    if not key:
        raise UserError(f"the endpoint's key: environment variable {spec.api_key_env} is not set; export it "
                        f"(e.g. export {spec.api_key_env}=...) and run again")
    return key


def ask_all(spec: EndpointSpec, requests: list[Request], cache: Cache,
            echo: Callable[..., None] = print) -> Outcome:
    """Every request answered (from the cache, or sent), as `Outcome`; see the module's guarantees."""
    return asyncio.run(_ask_all(spec, requests, cache, echo))


async def _ask_all(spec: EndpointSpec, requests: list[Request], cache: Cache, echo) -> Outcome:
    import httpx

    have = cache.load()
    outcome = Outcome(dict(have))
    keyed = {r.key(spec): r for r in requests}
    todo = {k: r for k, r in keyed.items() if k not in have}
    outcome.cached = len(keyed) - len(todo)
    if not todo:
        return outcome
    key = api_key(spec)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    pace = _Pace(60.0 / spec.requests_per_minute)
    gate = asyncio.Semaphore(spec.concurrency)
    step = max(1, len(todo) // 10)
    async with httpx.AsyncClient(base_url=spec.base_url.rstrip("/"), headers=headers,
                                 timeout=httpx.Timeout(spec.timeout_s)) as client:
        async def one(k: str, request: Request) -> None:
            async with gate:
                answer, reason = await _send(client, spec, request, pace)
            if answer is not None:
                cache.add(k, answer)
                outcome.answers[k] = answer
                outcome.sent += 1
                outcome.tokens_sent += answer.tokens
            else:
                outcome.failed[reason] += 1
            done = outcome.sent + sum(outcome.failed.values())
            if done % step == 0 or done == len(todo):
                echo(f"  {spec.model}: {done}/{len(todo)} answered"
                     + (f", {sum(outcome.failed.values())} failed" if outcome.failed else ""), flush=True)

        tasks = [asyncio.create_task(one(k, r)) for k, r in todo.items()]
        try:
            for task in asyncio.as_completed(tasks):
                await task
        finally:
            for task in tasks:
                task.cancel()
    if not outcome.sent and all(r.startswith("no answer") for r in outcome.failed):
        raise UserError(f"{spec.base_url} did not answer ({', '.join(outcome.failed)}); is the server running, and "
                        "is base_url its OpenAI-compatible root (…/v1)?")
    if not outcome.sent and all(r.startswith("HTTP 4") and not r.startswith("HTTP 429") for r in outcome.failed):
        raise UserError(f"{spec.base_url} refused every request: {'; '.join(outcome.failed)}. Check the endpoint's "
                        "settings (model, max_tokens, temperature) against what it accepts; the answers it gave "
                        "before are kept")
    return outcome


class _Pace:
    """Requests start at least `interval` seconds apart."""

    def __init__(self, interval: float):
        self.interval, self.next, self.lock = interval, 0.0, asyncio.Lock()

    async def wait(self) -> None:
        async with self.lock:
            now = time.monotonic()
            delay = max(0.0, self.next - now)
            self.next = max(now, self.next) + self.interval
        await asyncio.sleep(delay)


async def _send(client, spec: EndpointSpec, request: Request, pace: _Pace) -> tuple[Answer | None, str]:
    """(the answer, "") or (None, why it failed after the retries); 401/403 raise at once."""
    import httpx

    reason = ""
    for attempt in range(spec.retries + 1):
        await pace.wait()
        try:
            response, body = await _post(client, request.body(spec), reply_cap(spec))
        except httpx.TimeoutException:
            reason = f"no answer within {spec.timeout_s:g} s"
        except httpx.TransportError as exc:
            reason = f"no answer ({type(exc).__name__})"
        else:
            if response.status_code in (401, 403):
                raise UserError(f"{spec.base_url} refused the key ({response.status_code}): check the environment "
                                f"variable {spec.api_key_env or '(none named: set api_key_env)'}")
            if body is None:
                return None, f"an answer over {reply_cap(spec) >> 10} KiB (max_tokens {spec.max_tokens})"
            if response.status_code == 200:
                answer = _chat_answer(body, request)
                if answer is not None:
                    return answer, ""
                reason = "an answer that is not a chat completion"  # a proxy's error page, a cut body: try again
            else:
                reason = f"HTTP {response.status_code}" + _said(body, spec)
                if response.status_code == 429:
                    wait = _retry_after(response.headers.get("retry-after"), attempt)
                    if wait > wait_cap(spec):
                        return None, (f"HTTP 429 asking to wait {wait:.0f} s, past the cap of {wait_cap(spec):.0f} s "
                                      "(timeout_s × (retries + 1))")
                    if wait >= 5:
                        print(f"  {spec.model}: rate-limited; waiting {wait:.0f} s as the endpoint asks", flush=True)
                    await asyncio.sleep(wait)
                    continue
                if response.status_code < 500:
                    return None, reason  # the request itself is wrong: retrying changes nothing
        if attempt < spec.retries:
            await asyncio.sleep(min(30.0, 2**attempt) * (0.5 + random.random() / 2))  # backoff with jitter
    return None, reason


def reply_cap(spec: EndpointSpec) -> int:
    """The most bytes an answer may take: far above what max_tokens can fill (64 bytes a token), so only a broken
    or hostile endpoint reaches it; such an answer is refused, never cached."""
    return max(64 << 10, spec.max_tokens * 64)


def wait_cap(spec: EndpointSpec) -> float:
    """The longest a 429 may make one request wait: what its tries could have taken anyway."""
    return spec.timeout_s * (spec.retries + 1)


async def _post(client, body: dict, cap: int) -> tuple[object, bytes | None]:
    """(the response, its body; None when the body ran past `cap` bytes: reading stops there)."""
    async with client.stream("POST", "/chat/completions", json=body) as response:
        got = bytearray()
        async for chunk in response.aiter_bytes():
            got += chunk
            if len(got) > cap:
                return response, None
        return response, bytes(got)


def _said(body: bytes, spec: EndpointSpec) -> str:
    """The error message an endpoint gave with a refusal (OpenAI's {"error": {"message"}}), short, without the
    key should it echo it."""
    try:
        error = json.loads(body).get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError, RecursionError):
        return ""
    if not isinstance(message, str) or not message.strip():
        return ""
    key = os.environ.get(spec.api_key_env) if spec.api_key_env else None
    if key:
        message = message.replace(key, "***")
    return f": {' '.join(message.split())[:200]}"


def _chat_answer(body: bytes, request: Request) -> Answer | None:
    """The answer's text and its tokens (the endpoint's `usage`, else estimated), or None when it is no chat
    completion."""
    try:
        data = json.loads(body)
        text = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError, RecursionError):
        return None
    if not isinstance(text, str):
        return None
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    tokens = usage.get("total_tokens")
    if not isinstance(tokens, int) or isinstance(tokens, bool) or not 0 <= tokens < 1 << 40:
        chars = len(text) + sum(len(c) for _, c in request.messages)
        tokens = round(chars / CHARS_PER_TOKEN)
    return Answer(text, tokens)


def _retry_after(value: str | None, attempt: int) -> float:
    """Seconds a 429 asks to wait (a number or an HTTP date); backoff when it says nothing."""
    if value:
        try:
            seconds = float(value)
            if not math.isnan(seconds):  # `nan` says nothing: the backoff below; `inf` is a wait past any cap
                return max(0.0, seconds)
        except ValueError:
            try:
                return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    return min(30.0, 2**attempt)
