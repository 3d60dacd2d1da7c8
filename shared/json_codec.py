"""JSON parsing and writing that keep integers beyond Python's digit limit.

CPython converts at most `sys.get_int_max_str_digits()` digits (4,300 by
default) between text and int. So `json.loads` raises ValueError for a longer
integer literal and `json.dumps` raises for a longer int, and one such literal
in a supplier response would fail the whole page on every delivery. Here the
literal becomes an `OversizedInteger` that keeps its text. `dumps` writes it
back unchanged, so that jsonb stores it as a numeric and the payload hash is
the one that json.dumps would give without the limit. `map_offer` checks
types, so it rejects such a value in a field it reads and ignores it
elsewhere.

The limit itself stays in force, because it keeps a long literal from costing
quadratic time in int().
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

# Digits that str() and repr() show, so that a log line or an error message
# that names the value stays short.
_SHOWN_DIGITS = 20


class OversizedInteger:
    """A JSON integer literal with more digits than Python converts to an int.

    `text` is the literal as received, sign included. It is not an int and
    supports no arithmetic.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    @property
    def digits(self) -> int:
        """The number of digits, without the sign."""
        return len(self.text) - self.text.startswith("-")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, OversizedInteger):
            return self.text == other.text
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.text)

    def describe(self) -> str:
        """Describe the value for an error message, without its digits."""
        return (
            f"an integer of {self.digits} digits, beyond the"
            f" {sys.get_int_max_str_digits()} that Python converts to an int"
        )

    def __repr__(self) -> str:
        return (
            f"OversizedInteger('{self.text[:_SHOWN_DIGITS]}...', "
            f"digits={self.digits})"
        )


def loads(data: bytes | str) -> Any:
    """Parse JSON as json.loads does, reading oversized integers as OversizedInteger."""
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise
    except ValueError:
        # The scanner raises a plain ValueError for an integer beyond the
        # limit. Parsing again with a hook for every integer is slower, but
        # only such documents pay for it.
        return json.loads(data, parse_int=_parse_int)


def _parse_int(text: str) -> int | OversizedInteger:
    try:
        return int(text)
    except ValueError:
        return OversizedInteger(text)


def dumps(value: Any, **options: Any) -> str:
    """Write JSON as json.dumps does, each OversizedInteger as its literal.

    `options` are the keyword arguments of json.dumps, except `default`.
    """
    try:
        return json.dumps(value, **options)
    except TypeError:
        pass

    # json.dumps can only write an OversizedInteger as some other JSON
    # value, so it writes a placeholder string that is then replaced by the
    # literal. A placeholder that also occurs in the value is made longer.
    literals: list[str] = []
    placeholder = "OversizedInteger"

    def placeholder_for(obj: Any) -> str:
        if not isinstance(obj, OversizedInteger):
            raise TypeError(
                f"Object of type {type(obj).__name__} is not JSON serializable"
            )
        literals.append(obj.text)
        return placeholder

    while True:
        literals.clear()
        text = json.dumps(value, default=placeholder_for, **options)
        pieces = text.split(json.dumps(placeholder))
        if len(pieces) == len(literals) + 1:
            break
        placeholder += "+"

    parts = [pieces[0]]
    for literal, piece in zip(literals, pieces[1:], strict=True):
        parts += (literal, piece)
    return "".join(parts)


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Yield (path, value) for each value in `value` that is not an object or array.

    A path names keys and array indexes as in `diamond.certificate.carats` or
    `items[3].price`.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, f"{path}[{index}]")
    else:
        yield path, value
