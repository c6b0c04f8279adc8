"""What `zhouyi api`'s gate lets through to the model: one strict schema of a chat request (the fields LLaMA-Factory
0.9.5 reads, types exact: `"9999"`, `9999.0` or `1e4` is no `max_tokens`), multipliers bounded (`n` is 1), and every
text the model will read counted against infer.max_prompt_chars, whatever field carries it (a message, a tool call's
arguments, the tools' definitions). Pictures, audio and video are refused: the model reads text, and LLaMA-Factory
would fetch a URL or open a path it was given."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

MAX_MESSAGES = 32  # turns in one request; with the per-text limit, this bounds the prompt
MAX_TOOLS = 16
MAX_STOPS = 4


@dataclass(frozen=True)
class Limits:
    max_prompt_chars: int
    max_new_tokens: int


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class FunctionCall(_Strict):
    name: str
    arguments: str


class ToolCall(_Strict):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(_Strict):
    role: Literal["system", "user", "assistant", "tool", "function"]
    content: str | list[TextPart] | None = None
    tool_calls: list[ToolCall] | None = Field(None, max_length=MAX_TOOLS)

    @model_validator(mode="after")
    def _has_content(self) -> Message:
        """LLaMA-Factory reads `content` of every message but an assistant's tool calls (and a system prompt it may
        leave out); a null there fails inside the model server, so the gate refuses it."""
        if self.content is None and self.role not in ("system",) and not (self.role == "assistant" and self.tool_calls):
            raise ValueError(f"a {self.role} message needs content (text, or a list of text parts)")
        return self

    def text(self) -> str:
        """All the model reads of this message."""
        content = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content or [])
        return content + "".join(c.function.name + c.function.arguments for c in self.tool_calls or [])


class FunctionDefinition(_Strict):
    name: str
    description: str
    parameters: dict[str, Any]


class Tool(_Strict):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class ChatRequest(_Strict):
    model: str
    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    tools: list[Tool] | None = Field(None, max_length=MAX_TOOLS)
    do_sample: bool | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int = Field(1, ge=1, le=1)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    max_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = Field(None, max_length=MAX_STOPS)
    stream: bool = False


_FIELDS = {name for model in (ChatRequest, Message, TextPart, ToolCall, FunctionCall, Tool, FunctionDefinition)
           for name in model.model_fields}


def over_prompt_limit(text: str, max_chars: int) -> str | None:
    """Why `text` is too long to send to the model (infer.max_prompt_chars), or None: `ask`, `chat` and the gate
    say it alike."""
    if len(text) <= max_chars:
        return None
    return f"{len(text):,} characters; infer.max_prompt_chars allows {max_chars:,} (a dream takes a few hundred)"


def refusal(payload: Any, limits: Limits) -> tuple[str | None, str] | None:
    """(the field, why) when a chat request may not pass; None when it may."""
    try:
        request = ChatRequest.model_validate(payload)
    except ValidationError as exc:
        first = max(exc.errors(), key=lambda e: len(e["loc"]))  # the most specific: a union's deepest branch
        param = _param(first["loc"])
        if first["type"] == "extra_forbidden":
            where, name = _param(first["loc"][:-1]), first["loc"][-1]
            takes = f" (it takes: {', '.join(ChatRequest.model_fields)})" if where is None else ""
            return f"{where}.{name}" if where else name, f"not a field this server takes{takes}"
        msg = first["msg"].removeprefix("Value error, ")
        shown = "" if first["type"] in ("model_type", "value_error") else f" (got {_shown(first['input'])})"
        return param, msg + shown
    if request.max_tokens is not None and request.max_tokens > limits.max_new_tokens:
        return "max_tokens", f"{request.max_tokens:,}; infer.max_new_tokens allows {limits.max_new_tokens:,}"
    for i, message in enumerate(request.messages):
        if too_long := over_prompt_limit(message.text(), limits.max_prompt_chars):
            return f"messages[{i}].content", too_long
    if request.tools:
        tools = json.dumps([t.model_dump() for t in request.tools], ensure_ascii=False)
        if too_long := over_prompt_limit(tools, limits.max_prompt_chars):
            return "tools", f"the tools' definitions are {too_long}"
    return None


def _param(loc: tuple) -> str | None:
    """A pydantic error location as OpenAI names a parameter: messages[2].content (union branch names dropped)."""
    name = ""
    for part in loc:
        if isinstance(part, int):
            name += f"[{part}]"
        elif part in _FIELDS:
            name += f".{part}" if name else part
    return name or None


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, BaseModel) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
