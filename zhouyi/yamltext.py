"""YAML as LLaMA-Factory reads it (OmegaConf): a loader that reads `1e-4` as a number, any value rendered as one
YAML node that reads back identical, and the `${` check OmegaConf needs."""

from __future__ import annotations

import math
import re

import yaml

_INF = float("inf")
_NUMBER_LIKE = re.compile(r"^\s*[-+.0-9]")


class _SpecLoader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-4` / `5e3` as floats, as LLaMA-Factory's OmegaConf loader does, and refuses
    what would silently lose or explode a user's values: a key given twice (YAML keeps the last and drops the
    first block unseen) and aliases (`*name`, with which a few hundred bytes expand to gigabytes)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not accepted here: write the value out",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                continue  # an unhashable key: SafeLoader's own error says so
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"the key {key!r} is given twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


_SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def load_yaml_text(text: str):
    return yaml.load(text, Loader=_SpecLoader)  # noqa: S506 - a SafeLoader subclass


def yaml_value(value) -> str:
    """A single-line YAML node for `value` (plain when that is safe, double-quoted otherwise).

    Strings with `: `, `#`, quotes, newlines, `{{`, leading indicators, `yes`/`no`/`null`-alikes or
    non-ASCII all come back unchanged through `yaml.safe_load` and OmegaConf (what LLaMA-Factory uses).
    """
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"cannot render non-finite number {value!r}")
    if isinstance(value, str):
        problem = omegaconf_problem(value)
        if problem:
            raise ValueError(problem)
        plain = _dump(value, style=None)
        # Number-like text is quoted: loaders disagree on it (OmegaConf reads `0E0` as a float).
        if "\n" not in plain and not _NUMBER_LIKE.match(value) and yaml.safe_load(plain) == value:
            return plain
        return _dump(value, style='"')
    return _dump(value, style=None)


def omegaconf_problem(text: str) -> str | None:
    """Why LLaMA-Factory could not read `text` from its YAML, or None. It reads configs with OmegaConf, which takes
    `${...}` as an interpolation and fails on a malformed one (`${`, `${a b}`); no quoting or escaping avoids
    that (an escaped `\\${` would reach LLaMA-Factory with its backslash)."""
    if "${" not in text:
        return None
    from omegaconf import OmegaConf

    try:
        OmegaConf.to_container(OmegaConf.create({"key": text}))
    except Exception as exc:  # omegaconf's grammar errors share no public base class
        return (f"LLaMA-Factory reads its YAML with OmegaConf, which cannot read this text's `${{` "
                f"({type(exc).__name__}); write it without `${{`")
    return None


def _dump(value, style) -> str:
    text = yaml.safe_dump(
        value, default_style=style, default_flow_style=True, allow_unicode=True, width=_INF, sort_keys=False
    )
    return text.removesuffix("\n...\n").removesuffix("\n")
