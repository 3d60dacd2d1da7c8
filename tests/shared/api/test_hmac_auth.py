"""HMAC signature checks that need no database."""

from __future__ import annotations

import pytest

from shared.api.hmac_auth import SignatureError, parse_timestamp, sign, verify_signature

NOW = 1_800_000_000.0


def test_timestamp_within_tolerance_is_parsed():
    assert parse_timestamp("1800000100", NOW, 300) == 1_800_000_100


@pytest.mark.parametrize("text", ["9" * 5000, "0" * 21 + "1800000000", "1800000000.0"])
def test_timestamp_too_long_or_not_integer_is_rejected(text):
    with pytest.raises(SignatureError, match="is invalid"):
        parse_timestamp(text, NOW, 300)


def test_non_ascii_signature_does_not_match():
    assert not verify_signature(["secret"], "\u00e9" * 64, "GET", "/api/v2/x", "1", b"")


def test_uppercase_signature_matches():
    signature = sign("secret", "GET", "/api/v2/x", "1", b"").upper()
    assert verify_signature(["secret"], signature, "GET", "/api/v2/x", "1", b"")
