"""`zhouyi api`'s front door: LLaMA-Factory's API server takes a prompt of any length, any `max_tokens` and any
client's pace, so it listens on a private loopback port and this small proxy faces the network. It checks the
client's key, lets through only GET /v1/models and chat requests that pass zhouyi.serve.requests (OpenAI-style 400s
naming the field otherwise), and holds slow clients to time limits: the request line and headers within
HEADER_SECONDS, the body within BODY_SECONDS, at most MAX_CONNECTIONS at once. A client that leaves mid-answer
closes the stream to the model server, which stops generating (zhouyi.serve.engine). Run by `zhouyi api` as
`python -m zhouyi.serve.api_gate` (a child it can signal)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import logging
import os

from zhouyi.serve.requests import MAX_MESSAGES, Limits, refusal

HEADER_SECONDS = 10  # to send the request line and headers
BODY_SECONDS = 30  # to send the body
MAX_CONNECTIONS = 64  # open at once; more are answered 503 at once
MAX_HEADER_BYTES = 16 << 10  # the model server's HTTP parser refuses more: said here, not as "not answering"
JSON_BYTES_PER_CHAR = 6  # a client that escapes non-ASCII sends 梦 as \u68a6
UPSTREAM_KEY_ENV = "ZHOUYI_UPSTREAM_KEY"
ROUTES = {("GET", "/v1/models"), ("POST", "/v1/chat/completions")}
_NOT_FORWARDED = {"host", "authorization", "content-length", "transfer-encoding", "connection", "keep-alive"}
log = logging.getLogger("uvicorn.error")


def max_body_bytes(limits: Limits) -> int:
    return MAX_MESSAGES * limits.max_prompt_chars * JSON_BYTES_PER_CHAR + 64 * 1024


def app(upstream: str, upstream_key: str, key: str | None, limits: Limits, body_seconds: float = BODY_SECONDS):
    """The ASGI app: the two routes forwarded to `upstream` (…/v1 stays in the path)."""
    import httpx
    from starlette.applications import Starlette
    from starlette.requests import ClientDisconnect
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    client = httpx.AsyncClient(base_url=upstream, timeout=httpx.Timeout(None, connect=10.0))

    def error(status: int, message: str, param: str | None = None) -> JSONResponse:
        kind = "authentication_error" if status == 401 else "invalid_request_error"
        return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": None}}, status)

    class Relay(StreamingResponse):
        """The model server's answer, streamed on; closed upstream however the client's side ends."""

        def __init__(self, answer: httpx.Response):
            super().__init__(answer.aiter_raw(), answer.status_code,
                             {k: v for k, v in answer.headers.items() if k not in _NOT_FORWARDED})
            self.answer = answer

        async def __call__(self, scope, receive, send) -> None:
            try:
                await super().__call__(scope, receive, send)
            except (ClientDisconnect, OSError):
                log.info("a client left during its answer; its stream to the model is closed")
            finally:
                await self.answer.aclose()

    async def read_body(request) -> bytes | Response:
        body = bytearray()
        async with asyncio.timeout(body_seconds):
            async for chunk in request.stream():
                body += chunk
                if len(body) > max_body_bytes(limits):
                    return error(413, f"the request is over {max_body_bytes(limits):,} bytes; infer.max_prompt_chars "
                                      f"allows {limits.max_prompt_chars:,} characters a message, {MAX_MESSAGES} "
                                      "messages")
        return bytes(body)

    async def forward(request) -> Response:
        if (request.method, request.url.path) not in ROUTES:
            return error(404, f"{request.method} {request.url.path}: this server answers GET /v1/models and POST "
                              "/v1/chat/completions")
        header_bytes = sum(len(k) + len(v) for k, v in request.headers.raw)
        if header_bytes > MAX_HEADER_BYTES:
            return error(431, f"the request's headers are {header_bytes:,} bytes; this server takes "
                              f"{MAX_HEADER_BYTES:,}")
        given = request.headers.get("authorization", "")
        if key and not hmac.compare_digest(given.encode(), f"Bearer {key}".encode()):
            return error(401, "a valid API key is required (Authorization: Bearer <API_KEY>)")
        try:
            body = await read_body(request)
        except TimeoutError:
            return error(408, f"the request body took over {body_seconds:g} s to arrive")
        except ClientDisconnect:
            log.info("a client left before its request was read")
            return Response(status_code=400)  # nobody is there to read it
        if isinstance(body, Response):
            return body
        if request.method == "POST":
            try:
                payload = json.loads(body.decode("utf-8"))
                problem = refusal(payload, limits)
            except UnicodeDecodeError as exc:
                return error(400, f"the body is not UTF-8 (byte {exc.start}); send JSON in UTF-8")
            except ValueError as exc:
                return error(400, f"the body is not JSON ({exc})")
            except RecursionError:
                return error(400, "the body is nested too deep to be a chat request")
            if problem:
                param, why = problem
                return error(400, f"{param}: {why}" if param else why, param)
        headers = {k: v for k, v in request.headers.items() if k not in _NOT_FORWARDED}
        sent = client.build_request(request.method, request.url.path, params=request.query_params,
                                    headers=headers | {"authorization": f"Bearer {upstream_key}"}, content=body)
        try:
            answer = await client.send(sent, stream=True)
        except httpx.TransportError:
            return error(503, "the model server is not answering; see zhouyi api's output")
        return Relay(answer)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        await client.aclose()

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
    return Starlette(routes=[Route("/{path:path}", forward, methods=methods)], lifespan=lifespan)


def guarded_protocol(header_seconds: float = HEADER_SECONDS):
    """uvicorn's HTTP/1.1 protocol with a deadline for the request line and headers: uvicorn itself waits for
    them forever, so a client sending a byte at a time would hold its connection as long as it liked."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadersInTime(H11Protocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()  # a kept-alive connection's next request has the same time

        def _arm(self) -> None:
            self.loop.call_later(header_seconds, self._too_slow, self.cycle)

        def _too_slow(self, cycle) -> None:
            waiting = self.cycle is cycle and (cycle is None or cycle.response_complete)
            if waiting and not self.transport.is_closing():
                log.info("a client sent no whole request within %g s; closed", header_seconds)
                self.transport.close()

    return HeadersInTime


def main() -> None:
    import uvicorn

    p = argparse.ArgumentParser(prog="python -m zhouyi.serve.api_gate")
    p.add_argument("--upstream", required=True, help="the model server, e.g. http://127.0.0.1:41234")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--max-prompt-chars", type=int, required=True)
    p.add_argument("--max-new-tokens", type=int, required=True)
    p.add_argument("--header-seconds", type=float, default=HEADER_SECONDS, help="for the request line and headers")
    p.add_argument("--body-seconds", type=float, default=BODY_SECONDS, help="for the body")
    args = p.parse_args()
    limits = Limits(args.max_prompt_chars, args.max_new_tokens)
    asgi = app(args.upstream, os.environ[UPSTREAM_KEY_ENV], os.environ.get("API_KEY") or None, limits,
               args.body_seconds)
    uvicorn.run(asgi, host=args.host, port=args.port, log_level="info", timeout_graceful_shutdown=5,
                http=guarded_protocol(args.header_seconds), limit_concurrency=MAX_CONNECTIONS, timeout_keep_alive=5)


if __name__ == "__main__":
    main()
