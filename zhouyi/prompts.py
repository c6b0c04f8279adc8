"""The prompts zhouyi sends to a judge or a teacher: Jinja2 files, zhouyi's own in templates/prompts/ or the user's,
each checked for the placeholders it must fill before any request is sent."""

from __future__ import annotations

from pathlib import Path

import jinja2
from jinja2 import meta

from zhouyi.errors import UserError
from zhouyi.render import template_env
from zhouyi.user_files import read_text


def load_prompt(path: str | None, default: str, needs: tuple[str, ...], field: str, base_dir: Path
                ) -> jinja2.Template:
    """The user's prompt file at `path` (relative to `base_dir`), or zhouyi's `templates/prompts/<default>`; a
    missing file, a Jinja2 error or a missing placeholder is a UserError naming `field`."""
    env = template_env()
    if path is None:
        return env.get_template(f"prompts/{default}")
    file = Path(path) if Path(path).is_absolute() else base_dir / path
    text = read_text(file, field, f"give a Jinja2 file with {', '.join('{{ ' + n + ' }}' for n in needs)}, or leave "
                                  f"{field} out for zhouyi's own (templates/prompts/{default})")
    try:
        missing = [n for n in needs if n not in meta.find_undeclared_variables(env.parse(text))]
        template = env.from_string(text)
    except jinja2.TemplateSyntaxError as exc:
        raise UserError(f"{field}: {file} line {exc.lineno}: {exc.message}") from None
    if missing:
        raise UserError(f"{field}: {file} has no placeholder for {', '.join(missing)}; write "
                        f"{', '.join('{{ ' + n + ' }}' for n in missing)} where the text goes")
    return template
