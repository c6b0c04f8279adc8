"""LLaMA-Factory's API server (`llamafactory-cli api`), with one thing added: a streamed answer whose client has
gone stops generating. LLaMA-Factory 0.9.5's Hugging Face engine runs `model.generate` in a thread that only a
finished answer ends, so twenty dropped streams keep the CPU busy for minutes and a good request waits behind them.
Here the engine's streamer is one that, once its stream is closed before the end, raises out of `generate` at the
next token (and wakes whoever still waits on it). Run as `python -m zhouyi.serve.engine api INFER_YAML [KEY=VALUE]`.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import threading

_STREAM_CLOSED: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("stream_closed", default=None)
log = logging.getLogger("zhouyi.engine")


class ClientLeft(Exception):
    """Raised inside `generate` when its stream was closed: the thread ends there."""


def patch_hf_engine() -> None:
    from llamafactory.chat import hf_engine

    class StoppableStreamer(hf_engine.TextIteratorStreamer):
        """The engine's streamer, tied to the stream being answered (its event is set when that stream closes)."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.closed = _STREAM_CLOSED.get() or threading.Event()

        def put(self, value) -> None:
            if self.closed.is_set():
                self.on_finalized_text("", stream_end=True)  # a reader still waiting gets the end, not a hang
                log.warning("generation stopped: its client left")
                raise ClientLeft
            super().put(value)

    original = hf_engine.HuggingfaceEngine.stream_chat

    async def stream_chat(self, *args, **kwargs):
        closed = threading.Event()
        _STREAM_CLOSED.set(closed)  # read by the streamer the engine makes for this stream, in this same task
        finished = False
        try:
            async for piece in original(self, *args, **kwargs):
                yield piece
            finished = True
        finally:
            if not finished:
                closed.set()  # the streamer stops `generate` at its next token

    hf_engine.TextIteratorStreamer = StoppableStreamer
    hf_engine.HuggingfaceEngine.stream_chat = stream_chat
    previous_hook = threading.excepthook
    threading.excepthook = lambda hook: None if hook.exc_type is ClientLeft else previous_hook(hook)


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[1] != "api":
        sys.exit("usage: python -m zhouyi.serve.engine api INFER_YAML [KEY=VALUE ...]")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    patch_hf_engine()
    from llamafactory.api.app import run_api

    sys.argv = [sys.argv[0], *sys.argv[2:]]  # LLaMA-Factory reads its config from argv[1], overrides after it
    run_api()


if __name__ == "__main__":
    main()
