"""JSON parsing and writing of integers beyond Python's digit limit."""

from __future__ import annotations

import json

import pytest

from shared import json_codec
from shared.json_codec import OversizedInteger

# More digits than Python converts to an int by default (4,300).
LONG_DIGITS = "1234567890" * 500


def test_loads_reads_oversized_integer_as_literal():
    text = '{"price": ' + LONG_DIGITS + ', "low": -' + LONG_DIGITS + ', "n": [1, 2.5]}'

    parsed = json_codec.loads(text.encode())

    assert parsed["price"] == OversizedInteger(LONG_DIGITS)
    assert parsed["low"] == OversizedInteger("-" + LONG_DIGITS)
    assert parsed["low"].digits == 5000
    assert parsed["n"] == [1, 2.5]
    assert type(parsed["n"][0]) is int


def test_loads_keeps_integer_at_limit_as_int():
    digits = "9" * 4300

    assert json_codec.loads(digits) == int(digits)


@pytest.mark.parametrize(
    ("document", "error"),
    [(b'{"price": 1', json.JSONDecodeError), (b"\xff", UnicodeDecodeError)],
)
def test_loads_raises_for_invalid_json(document, error):
    with pytest.raises(error):
        json_codec.loads(document)


def test_dumps_writes_literals_back():
    # A string equal to the placeholder must survive as a string.
    text = ('{"OversizedInteger":"OversizedInteger","a":[-' + LONG_DIGITS
            + ',1.5,"\\u00e9"],"b":' + LONG_DIGITS + '}')

    written = json_codec.dumps(json_codec.loads(text), sort_keys=True,
                               separators=(",", ":"))

    assert written == text


def test_dumps_without_literals_equals_json_dumps():
    value = {"b": [1, 2.5, None], "a": "\u00e9"}

    assert json_codec.dumps(value, sort_keys=True) == json.dumps(value, sort_keys=True)


def test_dumps_rejects_other_objects():
    with pytest.raises(TypeError, match="Object of type object"):
        json_codec.dumps({"price": OversizedInteger(LONG_DIGITS), "x": object()})


def test_oversized_integer_repr_is_short():
    text = repr(OversizedInteger(LONG_DIGITS))

    assert text == "OversizedInteger('12345678901234567890...', digits=5000)"
    assert str(OversizedInteger(LONG_DIGITS)) == text


def test_leaves_name_paths():
    value = {"diamond": {"certificate": {"carats": 0.3}}, "items": [{"price": 1}],
             "empty": {}}

    assert list(json_codec.leaves(value)) == [
        ("diamond.certificate.carats", 0.3),
        ("items[0].price", 1),
    ]
