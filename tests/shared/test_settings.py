"""Settings: every name in the example file, one clear error for bad values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.settings import Settings, SettingsError, check_host_settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "local.settings.json.example"


def test_example_lists_every_setting():
    values = json.loads(EXAMPLE.read_text())["Values"]
    missing = {name.upper() for name in Settings.model_fields} - set(values)
    assert missing == set()


def test_example_values_are_valid(monkeypatch):
    for name, value in json.loads(EXAMPLE.read_text())["Values"].items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.work_items_queue == "work-items"


def test_invalid_settings_name_each_problem(monkeypatch):
    monkeypatch.setenv("PAGE_SIZE", "500")
    monkeypatch.setenv("GATE_SUCCESS_THRESHOLD", "not-a-number")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert "PAGE_SIZE" in message
    assert "GATE_SUCCESS_THRESHOLD" in message


def test_hmac_secrets_accept_single_secret(monkeypatch):
    monkeypatch.setenv("HMAC_SECRETS", '{"shop": "s1", "app": ["s2", "s3"]}')
    assert load_settings().hmac_secrets == {"shop": ["s1"], "app": ["s2", "s3"]}


def test_feed_name_rejects_sql_identifiers(monkeypatch):
    monkeypatch.setenv("FEED", "nivoda; drop table diamonds")
    with pytest.raises(SettingsError, match="FEED"):
        load_settings()


def test_host_check_names_each_missing_setting():
    with pytest.raises(SettingsError) as raised:
        check_host_settings({"FUNCTIONS_WORKER_RUNTIME": "python",
                             "NIVODA_ENDPOINT": "https://nivoda.example/api"})
    message = str(raised.value)
    assert message.count("\n") == 0
    assert "DATABASE_URL" in message
    assert "SERVICEBUS_NAMESPACE or SERVICEBUS_CONNECTION_STRING" in message
    assert "WATERMARK_ACCOUNT_URL or WATERMARK_CONNECTION_STRING" in message
    assert "NIVODA_ENDPOINT" not in message


def test_host_check_passes_with_azure_settings():
    environ = {
        "FUNCTIONS_WORKER_RUNTIME": "python", "DATABASE_URL": "postgresql://db/x",
        "NIVODA_ENDPOINT": "https://nivoda.example/api", "NIVODA_USERNAME": "u",
        "NIVODA_PASSWORD": "p", "SERVICEBUS_NAMESPACE": "ns.servicebus.windows.net",
        "WATERMARK_ACCOUNT_URL": "https://acct.blob.core.windows.net",
    }
    assert check_host_settings(environ) is None


def test_host_check_skipped_outside_host():
    assert check_host_settings({}) is None
