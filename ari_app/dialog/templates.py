"""A tiny, safe prompt template language: ``{slot}``, ``{result.field}``, ``{result.items[0]}``
and spoken formats ``{date:date}``, ``{time:time}``, ``{digits:digits}``, ``{card:last4}``,
``{amount:money}``.

It is ``str.format`` with a formatter that only walks dicts and lists (never attributes), so a
flow author cannot reach Python internals (``{x.__class__}`` is refused).
"""

from __future__ import annotations

import _string  # type: ignore[import-not-found]  # the parser str.format itself uses
import string
from collections.abc import Iterator, Mapping
from datetime import date, time
from typing import Any


class TemplateError(ValueError):
    """A template references something that does not exist or is not allowed."""


def _ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def spoken_date(value: Any) -> str:
    try:
        d = date.fromisoformat(str(value)[:10])
    except ValueError:
        return str(value)
    return f"{d:%A}, {d:%B} {_ordinal(d.day)}"


def spoken_time(value: Any) -> str:
    try:
        t = time.fromisoformat(str(value)[-5:] if "T" in str(value) else str(value))
    except ValueError:
        return str(value)
    hour = t.hour % 12 or 12
    minutes = "" if t.minute == 0 else f":{t.minute:02d}"
    return f"{hour}{minutes} {'AM' if t.hour < 12 else 'PM'}"


def _money(value: Any) -> str:
    try:
        return f"${float(value):,.2f}"
    except (TypeError, ValueError):
        return str(value)


def _spoken_list(items: Any, each: Any = str) -> str:
    words = [each(i) for i in items] if isinstance(items, list) else [str(items)]
    return ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else "".join(words)


SPOKEN_FORMATS = {
    "list": _spoken_list,
    "times": lambda v: _spoken_list(v, spoken_time),
    "date": spoken_date,
    "time": spoken_time,
    "datetime": lambda v: f"{spoken_date(v)} at {spoken_time(v)}",
    "digits": lambda v: " ".join(str(v)),
    "last4": lambda v: " ".join(str(v)[-4:]),
    "money": _money,
}


class _SafeFormatter(string.Formatter):
    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        first, rest = _string.formatter_field_name_split(field_name)
        if isinstance(first, int) or first not in kwargs:
            raise TemplateError(f"unknown name {first!r} in template")
        obj = kwargs[first]
        for _is_attr, key in rest:
            if isinstance(key, str) and key.startswith("_"):
                raise TemplateError(f"{field_name!r}: names starting with '_' are not allowed")
            try:
                obj = obj[key]
            except (KeyError, IndexError, TypeError):
                raise TemplateError(f"{field_name!r}: no {key!r} in the value") from None
        return obj, first

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec in SPOKEN_FORMATS:
            return SPOKEN_FORMATS[format_spec](value)
        if value is None:
            return ""
        return super().format_field(value, format_spec)


_formatter = _SafeFormatter()


def render(template: str, values: Mapping[str, Any]) -> str:
    """Fill a template; raise TemplateError naming the missing or refused field."""
    try:
        return _formatter.vformat(template, (), dict(values))
    except TemplateError:
        raise
    except (ValueError, IndexError) as e:
        raise TemplateError(f"bad template {template!r}: {e}") from None


def render_value(value: Any, values: Mapping[str, Any]) -> Any:
    """Tool args: a string that is exactly one ``{field}`` keeps the value's type (int, bool)."""
    if isinstance(value, str):
        names = list(field_names(value))
        if len(names) == 1 and value.strip() == "{" + names[0] + "}":
            obj, _ = _formatter.get_field(names[0], (), dict(values))
            return obj
        return render(value, values)
    if isinstance(value, dict):
        return {k: render_value(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, values) for v in value]
    return value


def field_names(template: str) -> Iterator[str]:
    """The full field expressions a template uses (``result.items[0]``), for the loader's checks."""
    try:
        for _lit, name, _spec, _conv in _formatter.parse(template):
            if name is not None:
                yield name
    except ValueError as e:
        raise TemplateError(f"bad template {template!r}: {e}") from None


def root_names(template: str) -> set[str]:
    roots = set()
    for name in field_names(template):
        first, _rest = _string.formatter_field_name_split(name)
        roots.add(str(first))
    return roots
