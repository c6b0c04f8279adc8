"""What every verb module of the CLI shares: loading a SPEC, the render context, and the SPEC / --run / --set flags."""

from __future__ import annotations

import argparse
from pathlib import Path


def load_ref(ref: str, sets: list[str] | None = None):
    """(spec, its own text, where it came from), with `base:` resolved and --set applied."""
    from zhouyi.compose import load

    spec, _, text, where = load(ref, sets or ())
    return spec, text, where


def context(run_dir: Path, spec=None):
    from zhouyi.download import recorded
    from zhouyi.render import RenderContext
    from zhouyi.tokcache import tokenized_dir

    if spec is None:
        return RenderContext(Path.cwd(), run_dir)
    return RenderContext(Path.cwd(), run_dir, tokenized_dir(spec, Path.cwd()), recorded(spec, Path.cwd()))


def run_args(p: argparse.ArgumentParser) -> None:
    """SPEC (its latest finished run) or --run DIR: which trained model a verb uses."""
    spec_args(p, optional=True)
    p.add_argument("--run", help="run directory (default: the latest finished run of SPEC)")


def spec_args(p: argparse.ArgumentParser, optional: bool = False) -> None:
    p.add_argument("spec", nargs="?" if optional else None, help="a spec file or a preset name")
    set_flag(p)


def set_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", action="append", metavar="KEY.PATH=VALUE",
                   help="override one spec value, type-checked (repeatable), e.g. --set train.learning_rate=2e-4")
