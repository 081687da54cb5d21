"""A tiny template function: `{{ name }}` placeholders, every value HTML-escaped unless it is `Markup`.

Templates live in `templates/`, are read once, and fail loudly on a missing or unused value, so a typo never
renders a page with a hole in it. Build HTML fragments with `html()`, which escapes its arguments the same way.
"""

from __future__ import annotations

import html as html_lib
import re
from functools import cache
from pathlib import Path

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")


class Markup(str):
    """Text that is already HTML (built by `html()` or `render()`); inserted as is."""

    __slots__ = ()


Value = str | int | float | Markup


def escape(value: Value) -> Markup:
    """HTML-escape text (quotes too, so the result is safe in attribute values); Markup passes through."""
    if isinstance(value, Markup):
        return value
    return Markup(html_lib.escape(str(value), quote=True))


def html(template: str, *args: Value, **kwargs: Value) -> Markup:
    """`str.format` for HTML fragments: every argument is escaped unless it is `Markup`."""
    return Markup(template.format(*(escape(a) for a in args), **{k: escape(v) for k, v in kwargs.items()}))


def join(fragments: list[Markup], separator: str = "") -> Markup:
    return Markup(separator.join(fragments))


@cache
def _template(name: str) -> tuple[str, frozenset[str]]:
    text = (TEMPLATES_DIR / f"{name}.html").read_text(encoding="utf-8")
    return text, frozenset(_PLACEHOLDER.findall(text))


def render(template: str, /, **values: Value) -> Markup:
    """Fill `templates/<template>.html`; every placeholder must get a value and every value a placeholder."""
    text, names = _template(template)
    if names != values.keys():
        missing, unused = sorted(names - values.keys()), sorted(values.keys() - names)
        raise KeyError(f"template {template}: missing {missing}, unused {unused}")
    return Markup(_PLACEHOLDER.sub(lambda match: escape(values[match.group(1)]), text))
