"""LLaMA-Factory's OpenAI-compatible server as zhouyi's inference engine, always private: on a free loopback port
with a fresh key, behind `ask` and `chat` (started, waited for, asked, stopped), and behind the gate that `api`
puts on the network (zhouyi.serve.api_gate)."""

from __future__ import annotations

import errno
import functools
import json
import secrets
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from zhouyi import launch, process
from zhouyi.errors import UserError
from zhouyi.spec import JobSpec

LOOPBACK = "127.0.0.1"
GENERATION = ("max_new_tokens", "do_sample", "temperature", "top_p", "top_k", "repetition_penalty")  # infer.yaml's


def port_is_free(host: str, port: int) -> bool:
    """Whether `host:port` can be listened on; a host that is no address of this machine is an error."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except (socket.gaierror, UnicodeError):
        raise UserError(f"--host {host}: not a host name or address this machine knows") from None
    with socket.socket(family) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise UserError(f"--host {host}: cannot listen there ({exc.strerror}); use an address of this "
                            "machine, e.g. 127.0.0.1 or 0.0.0.0") from None
    return True


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def pick_port(host: str, port: int | None, default: int) -> int:
    """`port` if given (it must be free: a clear error otherwise), else `default` or, if taken, a free one."""
    if port is not None:
        if not 0 <= port <= 65535:
            raise UserError(f"--port {port}: a TCP port is 1..65535 (0: any free port)")
        if port and not port_is_free(host, port):
            raise UserError(f"--port {port}: {host}:{port} is in use; pick another, or --port 0 for a free one")
        return port or free_port(host)
    if port_is_free(host, default):
        return default
    chosen = free_port(host)
    print(f"port {default} is in use; serving on {chosen} instead")
    return chosen


def api_command(spec: JobSpec, run_dir: Path, host: str, port: int, key: str | None = None) -> launch.Command:
    """LLaMA-Factory's API server on infer.yaml (`llamafactory-cli api`'s own code, with a stream whose client left
    stopped: zhouyi.serve.engine) on host:port, naming the model after the spec's run name; with `key`, it is
    required (the key lives in the child's environment only: masked when printed, never written)."""
    env = {"API_HOST": host, "API_PORT": str(port), "API_MODEL_NAME": spec.run_name}
    generation = [f"{k}={json.dumps(getattr(spec.infer, k))}" for k in GENERATION]  # --set infer.* reaches it
    cli = launch.build(spec, "api", run_dir, args=generation, env=env | ({"API_KEY": key} if key else {}))
    return launch.python_module("zhouyi.serve.engine", *cli.argv[1:], env=cli.env, cwd=cli.cwd)


def gate_command(spec: JobSpec, upstream: ModelServer, host: str, port: int) -> launch.Command:
    """zhouyi.serve.api_gate on host:port in front of `upstream`, with the spec's limits; the upstream key goes in its
    environment (masked when printed), the client's API_KEY with zhouyi's own."""
    from zhouyi.serve.api_gate import UPSTREAM_KEY_ENV

    return launch.python_module("zhouyi.serve.api_gate", "--upstream", upstream.url.removesuffix("/v1"), "--host", host,
                                "--port", str(port), "--max-prompt-chars", str(spec.infer.max_prompt_chars),
                                "--max-new-tokens", str(spec.infer.max_new_tokens),
                                env={UPSTREAM_KEY_ENV: upstream.key}, cwd=Path.cwd())


@dataclass(frozen=True)
class ModelServer:
    url: str  # http://host:port/v1
    key: str
    model: str
    poll: Callable[[], int | None] | None = None  # the exit of the process answering there, if zhouyi started it
    log: Path | None = None  # its output


def died(endpoint: ModelServer) -> str | None:
    """Why the model server behind `endpoint` is gone (its exit and its log's end), or None while it runs."""
    if endpoint.poll is None or (code := endpoint.poll()) is None:
        return None
    return (f"the LLaMA-Factory server exited ({code}) while serving; its log {endpoint.log} "
            f"ends:\n{process.log_tail(endpoint.log)}")


@contextmanager
def private_server(spec: JobSpec, run_dir: Path, log: Path, ready_timeout: float = 600.0) -> Iterator[ModelServer]:
    """A server only this process can use (loopback, a fresh random key), stopped on the way out."""
    port, key = free_port(), secrets.token_urlsafe(24)
    to_stderr = functools.partial(print, file=sys.stderr)  # stdout is the answer's alone
    proc = process.start(api_command(spec, run_dir, LOOPBACK, port, key), log, echo=to_stderr)
    endpoint = ModelServer(f"http://{LOOPBACK}:{port}/v1", key, spec.run_name, proc.poll, log)
    try:
        wait_ready(endpoint, proc, log, ready_timeout)
        yield endpoint
    finally:
        process.stop(proc)


def wait_ready(endpoint: ModelServer, proc, log: Path, timeout: float) -> None:
    """Poll /v1/models until the model is loaded; a server that exits or never answers is an error with its log."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UserError(f"the LLaMA-Factory server exited ({proc.returncode}) before it was ready; "
                            f"its log {log} ends:\n{process.log_tail(log)}")
        try:
            if httpx.get(f"{endpoint.url}/models", headers=auth(endpoint), timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise UserError(f"the LLaMA-Factory server did not answer within {timeout:.0f} s; its log {log} ends:\n"
                    f"{process.log_tail(log)}")


def auth(endpoint: ModelServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {endpoint.key}"}
