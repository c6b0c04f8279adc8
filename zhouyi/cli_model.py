"""The verbs that use a trained run: eval, ask, chat, api, webui and export (one small function each, as in cli.py).

Each takes SPEC (its latest finished run) or --run DIR, and reads the spec the run recorded.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from zhouyi.cli_common import context, load_ref, run_args, spec_args
from zhouyi.errors import UserError


def _run_for(args) -> tuple[object, Path]:
    """The spec recorded in --run DIR, or the latest finished run of SPEC."""
    from zhouyi.runs import check_run, latest_trained_run, read_manifest
    from zhouyi.spec import spec_from_dict

    if args.run:
        run_dir = check_run(Path(args.run))
    elif not args.spec:
        raise UserError("say which model: SPEC (its latest finished run) or --run DIR")
    else:
        spec, _, _ = load_ref(args.spec, args.set)
        run_dir = latest_trained_run(spec, Path.cwd())
    return spec_from_dict(read_manifest(run_dir)["spec"], str(run_dir)), run_dir


@contextlib.contextmanager
def _engine(spec, run_dir: Path):
    """A private LLaMA-Factory API server on the run's model; its log is kept only when something went wrong."""
    from zhouyi.server import private_server

    log = run_dir / f"server-{os.getpid()}.log"
    print(f"loading {run_dir.name} in LLaMA-Factory's API server ...", file=sys.stderr, flush=True)
    try:
        with private_server(spec, run_dir, log) as endpoint:
            yield endpoint
    except UserError as exc:
        raise exc if str(log) in str(exc) else UserError(f"{exc}\n(the server's log: {log})") from None
    log.unlink(missing_ok=True)


def cmd_ask(args) -> int:
    from zhouyi.talk import ask, check_prompt

    spec, run_dir = _run_for(args)
    question = check_prompt(sys.stdin.read() if args.question == "-" else args.question, spec.infer.max_prompt_chars)
    with _engine(spec, run_dir) as endpoint:
        ask(endpoint, question, lambda piece: print(piece, end="", flush=True))
    print()
    return 0


def cmd_chat(args) -> int:
    from zhouyi.talk import chat_loop

    spec, run_dir = _run_for(args)
    with _engine(spec, run_dir) as endpoint:
        chat_loop(endpoint, spec.infer.max_prompt_chars, input, lambda text: print(text, end="", flush=True))
    return 0


def cmd_api(args) -> int:
    from zhouyi import launch
    from zhouyi.server import LOOPBACK, api_command, pick_port

    spec, run_dir = _run_for(args)
    port = pick_port(args.host, args.port, 8000)
    if args.host != LOOPBACK and not os.environ.get("API_KEY"):
        print(f"warning: serving on {args.host} without API_KEY: anyone who reaches this port can use the model",
              file=sys.stderr)
    cmd = api_command(spec, run_dir, args.host, port)  # API_KEY, if set, reaches the server from our environment
    print(f"OpenAI-compatible API for {run_dir.name} at http://{args.host}:{port}/v1 (model '{spec.run_name}', "
          f"{'API_KEY required' if os.environ.get('API_KEY') else 'no API key'}); Ctrl-C stops it")
    if args.dry_run:
        print(f"run: {cmd.shell()}")
        return 0
    return launch.run(cmd)


def cmd_webui(args) -> int:
    from zhouyi import launch, webui
    from zhouyi.runs import check_run, latest_trained_run
    from zhouyi.server import pick_port

    spec, _, _ = load_ref(args.spec, args.set)
    run_dir = check_run(Path(args.run)) if args.run else None
    if run_dir is None:
        with contextlib.suppress(UserError):  # no finished run yet: the board starts without a checkpoint
            run_dir = latest_trained_run(spec, Path.cwd())
    folder = webui.workdir(spec, Path.cwd())
    name = webui.board_model_name(spec)
    path = webui.prepare(spec, context(folder, spec), folder, run_dir, name)
    port = pick_port(args.host, args.port, 7860)
    print(f"LlamaBoard at http://{args.host}:{port}: model {name} at {path}, datasets "
          f"{', '.join(d.name for d in spec.data.datasets)}" + (f", checkpoint {run_dir.name}" if run_dir else "") +
          f"; its working folder is {folder}.\nThe spec's training settings: pick {webui.config_name(spec)} under "
          "Config path (配置路径) and press Load arguments (载入训练参数). Ctrl-C stops it")
    cmd = webui.command(spec, folder, args.host, port)
    if args.dry_run:
        print(f"run: {cmd.shell()}")
        return 0
    return launch.run(cmd)


def cmd_eval(args) -> int:
    from zhouyi.evaluate import METRICS, predict, require_eval_split, write_report

    spec, run_dir = _run_for(args)
    require_eval_split(spec, run_dir)
    if args.max_samples is not None and args.max_samples < 1:
        raise UserError(f"--max-samples {args.max_samples}: answer at least one question")
    code = predict(spec, run_dir, args.max_samples)
    if code != 0:
        return code
    path, report = write_report(spec, run_dir, context(run_dir), args.max_samples)
    base, tuned = report["metrics"]["base"], report["metrics"]["tuned"]
    print(f"{report['rows']} held-out questions: " + ", ".join(
        f"{m.upper()} {base[m]:.1f} -> {tuned[m]:.1f}" for m in METRICS if m in base and m in tuned))
    checks = report["checks"]
    print(f"in voice: base {checks['base']['in_voice']:.0%} -> tuned {checks['tuned']['in_voice']:.0%}; "
          f"boilerplate: base {checks['base']['boilerplate']:.0%} -> tuned {checks['tuned']['boilerplate']:.0%}")
    print(f"report: {path}")
    return 0


def cmd_export(args) -> int:
    """Merge (LLaMA-Factory), check the Modelfile's persona, smoke-generate; or, with --quantize, GPTQ the merge."""
    from zhouyi import exporting, launch
    from zhouyi.runs import ensure_empty_target

    spec, run_dir = _run_for(args)
    if args.quantize:
        return _quantize(spec, run_dir, args)
    cmd = launch.build(spec, "export", run_dir)
    if args.dry_run:
        print(f"run: {cmd.shell()}")
        return 0
    target = run_dir / spec.export.export_dir
    ensure_empty_target(target, args.force)
    code = launch.run(cmd)
    if code != 0:
        print(f"export failed (exit {code}): {target}")
        return code
    if exporting.modelfile_with_persona(target, spec.model.default_system):
        print(f"{target / 'Modelfile'}: added the persona as SYSTEM")
    code = launch.run(exporting.smoke_command(spec, target))
    print(f"{'exported' if code == 0 else f'exported, but the smoke generation failed (exit {code})'}: {target}")
    return code


def _quantize(spec, run_dir: Path, args) -> int:
    from zhouyi import exporting, launch
    from zhouyi.render import quantized_dir_name, render_quantize
    from zhouyi.runs import ensure_empty_target
    from zhouyi.yamlio import atomic_write

    merged = run_dir / spec.export.export_dir
    exporting.require_merged(merged)
    missing = exporting.missing_quantize_packages()
    if missing and not args.dry_run:
        raise UserError(f"GPTQ quantization needs {' and '.join(missing)} (pip install {' '.join(missing)}) and, "
                        "in practice, a CUDA GPU")
    calibration = run_dir / exporting.CALIBRATION
    maxlen = spec.export.export_quantization_maxlen
    exporting.write_calibration(calibration, exporting.calibration_texts(
        spec, context(run_dir), 4 * maxlen, spec.export.export_quantization_nsamples))
    atomic_write(run_dir / "quantize.yaml", render_quantize(spec, run_dir, args.quantize, calibration))
    cmd = launch.build(spec, "quantize", run_dir)
    if args.dry_run:
        print(f"run: {cmd.shell()}")
        return 0
    target = run_dir / quantized_dir_name(spec, args.quantize)
    ensure_empty_target(target, args.force)
    code = launch.run(cmd)
    if code == 0:
        code = launch.run(exporting.smoke_command(spec, target))
    print(f"{'quantized' if code == 0 else f'quantization failed (exit {code})'}: {target}")
    return code


def add_verbs(verb) -> None:
    """Register these verbs on cli.py's parser (`verb(name, func, help)` makes a subparser)."""
    p = verb("webui", cmd_webui, "LLaMA-Factory's web UI with SPEC's model, datasets and latest run filled in")
    spec_args(p)
    p.add_argument("--run", help="offer this run's adapter as a checkpoint (default: the latest finished run)")
    _listen_args(p, 7860)
    p.add_argument("--dry-run", action="store_true", help="prepare the folder and print the command")

    p = verb("eval", cmd_eval, "answer the held-out split with the base and the tuned model; compare them")
    run_args(p)
    p.add_argument("--max-samples", type=int, help="questions to answer (default: the spec's eval.max_samples)")

    p = verb("ask", cmd_ask, "print the tuned model's answer to one question (for scripts)")
    run_args(p)
    p.add_argument("question", metavar="QUESTION", help="the dream, e.g. '梦见蛇是什么意思？'; '-' reads stdin")

    p = verb("chat", cmd_chat, "talk with the tuned model in the terminal, as the persona")
    run_args(p)

    p = verb("api", cmd_api, "serve the tuned model over an OpenAI-compatible API (llamafactory-cli api)")
    run_args(p)
    _listen_args(p, 8000)
    p.add_argument("--dry-run", action="store_true")

    p = verb("export", cmd_export, "merge a run's adapter into safetensors shards with an Ollama Modelfile, then "
             "smoke-generate from them; --quantize 4|8 GPTQ-quantizes that merge")
    run_args(p)
    p.add_argument("--quantize", type=int, choices=[4, 8], help="second step: quantize the merged weights (GPTQ)")
    p.add_argument("--force", action="store_true", help="replace a non-empty export folder")
    p.add_argument("--dry-run", action="store_true")


def _listen_args(p, default_port: int) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=int, help=f"default {default_port}, or a free one if taken; 0: any free port")
