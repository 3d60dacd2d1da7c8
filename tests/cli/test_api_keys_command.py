"""`diamond-opus api-keys`: create prints the key once, list never shows it."""

from __future__ import annotations

import re

from cli.main import main


def test_api_keys_create_list_revoke(clean_db, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", clean_db)

    assert main(["api-keys", "create", "--client", "shop", "--permissions", "read,trade"]) == 0
    created = capsys.readouterr().out
    key = re.search(r"do_\S+", created).group(0)
    assert main(["api-keys", "list"]) == 0
    listed = capsys.readouterr().out
    assert main(["api-keys", "revoke", "1"]) == 0

    assert "shop" in listed
    assert key not in listed
    assert "revoked API key 1" in capsys.readouterr().out


def test_api_keys_rejects_unknown_permission(clean_db, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", clean_db)

    code = main(["api-keys", "create", "--client", "shop", "--permissions", "root"])

    assert code == 2
    assert "unknown permissions ['root']" in capsys.readouterr().err


def test_api_keys_revoke_unknown_key(clean_db, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", clean_db)

    assert main(["api-keys", "revoke", "999"]) == 2
    assert "not found" in capsys.readouterr().err
