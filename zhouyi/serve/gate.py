"""`zhouyi api`'s front door: LLaMA-Factory's API server takes a prompt of any length and any `max_tokens`, so it
listens on a private loopback port and this small proxy faces the network. It checks the client's key, refuses a
request over the spec's limits with an OpenAI-style error that names the limit, and passes everything else through
unchanged, streams included. Run by `zhouyi api` as `python -m zhouyi.serve.gate` (a child it can signal)."""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import os
from dataclasses import dataclass

MAX_MESSAGES = 32  # turns in one request; with the per-message limit, this bounds the prompt
JSON_BYTES_PER_CHAR = 6  # a client that escapes non-ASCII sends 梦 as \u68a6
UPSTREAM_KEY_ENV = "ZHOUYI_UPSTREAM_KEY"
_NOT_FORWARDED = {"host", "authorization", "content-length", "transfer-encoding", "connection", "keep-alive"}


@dataclass(frozen=True)
class Limits:
    max_prompt_chars: int
    max_new_tokens: int

    @property
    def max_body_bytes(self) -> int:
        return MAX_MESSAGES * self.max_prompt_chars * JSON_BYTES_PER_CHAR + 64 * 1024


def over_prompt_limit(text: str, max_chars: int) -> str | None:
    """Why `text` is too long to send to the model (infer.max_prompt_chars), or None: `ask`, `chat` and the gate
    say it alike."""
    if len(text) <= max_chars:
        return None
    return f"{len(text):,} characters; infer.max_prompt_chars allows {max_chars:,} (a dream takes a few hundred)"


def refusal(request: dict, limits: Limits) -> tuple[str, str] | None:
    """(the field, why) when a chat request is over the limits; None when it may pass. A request that is wrong in
    other ways passes: LLaMA-Factory names what is wrong with it."""
    messages = request.get("messages")
    if isinstance(messages, list):
        if len(messages) > MAX_MESSAGES:
            return "messages", f"{len(messages)} messages; this server takes at most {MAX_MESSAGES} in one request"
        for i, message in enumerate(messages):
            text = _text(message.get("content") if isinstance(message, dict) else None)
            if too_long := over_prompt_limit(text, limits.max_prompt_chars):
                return f"messages[{i}].content", too_long
    max_tokens = request.get("max_tokens")
    if isinstance(max_tokens, int) and max_tokens > limits.max_new_tokens:
        return "max_tokens", f"{max_tokens:,}; infer.max_new_tokens allows {limits.max_new_tokens:,}"
    return None


def _text(content) -> str:
    """A message's text: a string, or the text parts of an OpenAI content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def app(upstream: str, upstream_key: str, key: str | None, limits: Limits):
    """The ASGI app: every path and method forwarded to `upstream` (…/v1 stays in the path)."""
    import httpx
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    client = httpx.AsyncClient(base_url=upstream, timeout=httpx.Timeout(None, connect=10.0))

    def error(status: int, message: str, param: str | None = None) -> JSONResponse:
        kind = "authentication_error" if status == 401 else "invalid_request_error"
        return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": None}}, status)

    async def forward(request):
        given = request.headers.get("authorization", "")
        if key and not hmac.compare_digest(given.encode(), f"Bearer {key}".encode()):
            return error(401, "a valid API key is required (Authorization: Bearer <API_KEY>)")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limits.max_body_bytes:
                return error(413, f"the request is over {limits.max_body_bytes:,} bytes; infer.max_prompt_chars "
                                  f"allows {limits.max_prompt_chars:,} characters a message, {MAX_MESSAGES} messages")
        if body:
            try:
                payload = json.loads(body)
            except ValueError:
                payload = None  # not JSON: LLaMA-Factory says so
            if isinstance(payload, dict) and (problem := refusal(payload, limits)):
                return error(400, f"{problem[0]}: {problem[1]}", problem[0])
        headers = {k: v for k, v in request.headers.items() if k not in _NOT_FORWARDED}
        sent = client.build_request(request.method, request.url.path, params=request.query_params,
                                    headers=headers | {"authorization": f"Bearer {upstream_key}"}, content=bytes(body))
        try:
            answer = await client.send(sent, stream=True)
        except httpx.TransportError:
            return error(503, "the model server is not answering; see zhouyi api's output")
        return StreamingResponse(answer.aiter_raw(), answer.status_code,
                                 {k: v for k, v in answer.headers.items() if k not in _NOT_FORWARDED},
                                 background=BackgroundTask(answer.aclose))

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        await client.aclose()

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
    return Starlette(routes=[Route("/{path:path}", forward, methods=methods)], lifespan=lifespan)


def main() -> None:
    import uvicorn

    p = argparse.ArgumentParser(prog="python -m zhouyi.serve.gate")
    p.add_argument("--upstream", required=True, help="the model server, e.g. http://127.0.0.1:41234")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--max-prompt-chars", type=int, required=True)
    p.add_argument("--max-new-tokens", type=int, required=True)
    args = p.parse_args()
    limits = Limits(args.max_prompt_chars, args.max_new_tokens)
    asgi = app(args.upstream, os.environ[UPSTREAM_KEY_ENV], os.environ.get("API_KEY") or None, limits)
    uvicorn.run(asgi, host=args.host, port=args.port, log_level="info", timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
