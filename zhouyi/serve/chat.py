"""`zhouyi ask` (one answer, for scripts) and `zhouyi chat` (a conversation), both against LLaMA-Factory's
OpenAI-compatible server. The persona is the server's default system prompt (infer.yaml's default_system),
so no message here carries it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

from zhouyi.errors import UserError
from zhouyi.serve.requests import over_prompt_limit
from zhouyi.serve.server import ModelServer, auth

HELP = "a blank line is skipped; /clear forgets the conversation; /exit or Ctrl-D leaves"


def check_prompt(text: str, max_chars: int) -> str:
    """The question as sent, or a clear error: empty, or longer than infer.max_prompt_chars."""
    text = text.strip()
    if not text:
        raise UserError("the question is empty; say what the dream was, e.g. '梦见蛇是什么意思？'")
    if too_long := over_prompt_limit(text, max_chars):
        raise UserError(f"the question is {too_long}. Shorten it, or raise infer.max_prompt_chars")
    return text


def stream_answer(endpoint: ModelServer, messages: list[dict[str, str]], timeout: float = 600) -> Iterator[str]:
    """The assistant's answer to `messages`, piece by piece as the server streams it."""
    import httpx

    body = {"model": endpoint.model, "messages": messages, "stream": True}
    try:
        with httpx.stream("POST", f"{endpoint.url}/chat/completions", json=body, headers=auth(endpoint),
                          timeout=timeout) as response:
            if response.status_code != 200:
                raise UserError(f"the server refused the question ({response.status_code}): "
                                f"{response.read().decode()}")
            for line in response.iter_lines():
                data = line.removeprefix("data:").strip()
                if not line.startswith("data:") or data == "[DONE]":
                    continue
                piece = json.loads(data)["choices"][0]["delta"].get("content")
                if piece:
                    yield piece
    except httpx.HTTPError as exc:
        raise UserError(f"the LLaMA-Factory server stopped answering ({type(exc).__name__}: {exc})") from None


def ask(endpoint: ModelServer, question: str, out: Callable[[str], None]) -> str:
    return "".join(_echo(stream_answer(endpoint, [{"role": "user", "content": question}]), out))


def chat_loop(endpoint: ModelServer, max_chars: int, read: Callable[[str], str], out: Callable[[str], None]) -> None:
    """Turns until /exit or end of input; a bad question is reported and the conversation goes on."""
    messages: list[dict[str, str]] = []
    out(f"{HELP}\n")
    while True:
        try:
            line = read("问: ")
        except EOFError:
            out("\n")
            return
        if line.strip() in ("/exit", "exit"):
            return
        if line.strip() in ("/clear", "clear"):
            messages.clear()
            out("(conversation cleared)\n")
            continue
        if not line.strip():
            continue
        try:
            question = check_prompt(line, max_chars)
        except UserError as exc:
            out(f"({exc})\n")
            continue
        messages.append({"role": "user", "content": question})
        out("答: ")
        answer = "".join(_echo(stream_answer(endpoint, messages), out))
        out("\n")
        messages.append({"role": "assistant", "content": answer})


def _echo(pieces: Iterator[str], out: Callable[[str], None]) -> Iterator[str]:
    for piece in pieces:
        out(piece)
        yield piece
