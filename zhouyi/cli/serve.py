"""Verbs that serve a trained run (zhouyi.serve): ask, chat, api, webui. Each takes SPEC (its latest finished run)
or --run DIR, and uses the spec the run recorded."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from zhouyi.cli.common import dry_run_flag, load_spec, run_args, run_for, spec_args, verb
from zhouyi.errors import UserError


def add_verbs(sub) -> None:
    p = verb(sub, "ask", cmd_ask, "print the tuned model's answer to one question (for scripts)")
    run_args(p)
    p.add_argument("question", metavar="QUESTION", nargs="?",
                   help="the dream, e.g. '梦见蛇是什么意思？'; '-' reads stdin")

    p = verb(sub, "chat", cmd_chat, "talk with the tuned model in the terminal, as the persona")
    run_args(p)

    p = verb(sub, "api", cmd_api, "serve the tuned model over an OpenAI-compatible API (llamafactory-cli api, "
             "behind a gate that holds requests to the spec's limits)")
    run_args(p)
    _listen_args(p, 8000)
    dry_run_flag(p)

    p = verb(sub, "webui", cmd_webui, "LLaMA-Factory's web UI with SPEC's model, datasets and latest run filled in")
    spec_args(p)
    p.add_argument("--run", help="offer this run's adapter as a checkpoint (default: the latest finished run)")
    _listen_args(p, 7860)
    dry_run_flag(p, "prepare the folder and print the command")


def _listen_args(p, default_port: int) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=int, help=f"default {default_port}, or a free one if taken; 0: any free port")


@contextlib.contextmanager
def _engine(spec, run_dir: Path):
    """A private LLaMA-Factory API server on the run's model; its log is kept only when something went wrong."""
    from zhouyi.serve.server import private_server

    log = run_dir / f"server-{os.getpid()}.log"
    print(f"loading {run_dir.name} in LLaMA-Factory's API server ...", file=sys.stderr, flush=True)
    keep = False
    try:
        with private_server(spec, run_dir, log) as endpoint:
            yield endpoint
    except UserError as exc:
        keep = True  # the message points at it
        raise exc if str(log) in str(exc) else UserError(f"{exc}\n(the server's log: {log})") from None
    finally:
        if not keep:
            log.unlink(missing_ok=True)


def cmd_ask(args) -> int:
    from zhouyi.serve.chat import ask, check_prompt

    if args.question is None and args.run and args.spec:  # `ask --run DIR QUESTION`: the one word is the question
        args.question, args.spec = args.spec, None
    if args.question is None:
        raise UserError("say the question: zhouyi ask SPEC '梦见蛇是什么意思？' (or --run DIR; '-' reads stdin)")
    spec, run_dir = run_for(args)
    question = check_prompt(_stdin_text() if args.question == "-" else args.question, spec.infer.max_prompt_chars)
    with _engine(spec, run_dir) as endpoint:
        ask(endpoint, question, lambda piece: print(piece, end="", flush=True))
    print()
    return 0


def _stdin_text() -> str:
    """stdin as strict UTF-8 (Python's own reading would let bad bytes through as surrogates)."""
    raw = getattr(sys.stdin, "buffer", None)
    try:
        return raw.read().decode("utf-8") if raw is not None else sys.stdin.read()
    except UnicodeDecodeError as exc:
        raise UserError(f"stdin: not UTF-8 text (byte {exc.start}); convert it first, e.g. iconv -f GB18030") from None


def cmd_chat(args) -> int:
    from zhouyi.serve.chat import chat_loop

    spec, run_dir = run_for(args)
    with _engine(spec, run_dir) as endpoint:
        chat_loop(endpoint, spec.infer.max_prompt_chars, input, lambda text: print(text, end="", flush=True))
    return 0


def cmd_api(args) -> int:
    from zhouyi import process
    from zhouyi.serve.server import LOOPBACK, ModelServer, api_command, died, free_port, gate_command, pick_port

    spec, run_dir = run_for(args)
    port = pick_port(args.host, args.port, 8000)
    keyed = bool(os.environ.get("API_KEY"))
    if args.host != LOOPBACK and not keyed:
        print(f"warning: serving on {args.host} without API_KEY: anyone who reaches this port can use the model",
              file=sys.stderr)
    if args.dry_run:  # the model server on a free loopback port with a fresh key, the gate on --host/--port
        inner = free_port()
        process.run(api_command(spec, run_dir, LOOPBACK, inner, "KEY"), dry_run=True)
        upstream = ModelServer(f"http://{LOOPBACK}:{inner}/v1", "KEY", spec.run_name)
        return process.run(gate_command(spec, upstream, args.host, port), dry_run=True)
    with _engine(spec, run_dir) as upstream:
        print(f"OpenAI-compatible API for {run_dir.name} at http://{args.host}:{port}/v1 (model '{spec.run_name}', "
              f"{'API_KEY required' if keyed else 'no API key'}; a message up to {spec.infer.max_prompt_chars:,} "
              f"characters, max_tokens up to {spec.infer.max_new_tokens:,}); Ctrl-C stops it", flush=True)
        return process.run(gate_command(spec, upstream, args.host, port), watch=lambda: died(upstream))


def cmd_webui(args) -> int:
    from zhouyi import process
    from zhouyi.serve import webui
    from zhouyi.serve.server import pick_port

    spec = load_spec(args).spec
    board = webui.prepare_board(spec, Path.cwd(), Path(args.run) if args.run else None)
    port = pick_port(args.host, args.port, 7860)
    print(f"LlamaBoard at http://{args.host}:{port}: model {board.model_name} at {board.model_path}, datasets "
          f"{', '.join(d.name for d in spec.data.datasets)}"
          + (f", checkpoint {board.run_dir.name}" if board.run_dir else "") +
          f"; its working folder is {board.folder}.\nThe spec's training settings: pick {webui.config_name(spec)} "
          "under Config path (配置路径) and press Load arguments (载入训练参数). Ctrl-C stops it")
    return process.run(webui.command(spec, board.folder, args.host, port), dry_run=args.dry_run)
