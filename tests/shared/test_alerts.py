"""Alerts sent through the Resend SDK to a fake Resend API on loopback."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.alerts import Alerter


class FakeResend:
    """A Resend `/emails` endpoint returning scripted statuses, then 200."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(
                    {
                        "path": self.path,
                        "body": body,
                        "authorization": self.headers["Authorization"],
                    }
                )
                status = fake.statuses.pop(0) if fake.statuses else 200
                if status == 200:
                    payload = {"id": f"email-{len(fake.requests)}"}
                else:
                    payload = {
                        "statusCode": status,
                        "name": "application_error",
                        "message": f"scripted status {status}",
                    }
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()


@pytest.fixture
def resend_server():
    server = FakeResend()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def restore_resend_module():
    """The SDK keeps its key and URL in module globals: put them back afterwards."""
    import resend

    key, url = resend.api_key, resend.api_url
    yield
    resend.api_key, resend.api_url = key, url


def make_alerter(url: str, **overrides) -> tuple[Alerter, list[float]]:
    sleeps: list[float] = []
    values = {
        "api_key": "re_test_key",
        "sender": "alerts@diamond-opus.example",
        "recipients": ["ops@example.com"],
        "api_url": url,
        "per_hour": 3,
        "sleep": sleeps.append,
    }
    values.update(overrides)
    return Alerter(**values), sleeps


def test_alert_posts_email(resend_server):
    alerter, _ = make_alerter(resend_server.url)

    assert (
        alerter.send("run_failed", "Run r1 failed", "2 of 10 succeeded", run_id="r1")
        is True
    )

    assert len(resend_server.requests) == 1
    request = resend_server.requests[0]
    assert request["path"] == "/emails"
    assert request["authorization"] == "Bearer re_test_key"
    assert request["body"]["to"] == ["ops@example.com"]
    assert request["body"]["subject"] == "[Diamond Opus] Run r1 failed"
    assert "run_id=r1" in request["body"]["text"]


def test_alert_storm_rate_limited(resend_server):
    alerter, _ = make_alerter(resend_server.url)

    sent = [alerter.send("run_failed", f"Run r{i} failed", "x") for i in range(50)]

    assert sent.count(True) == 3
    assert len(resend_server.requests) == 3
    assert alerter.suppressed == 47


def test_alert_rate_limit_per_kind(resend_server):
    alerter, _ = make_alerter(resend_server.url)

    for _ in range(5):
        alerter.send("run_failed", "failed", "x")
        alerter.send("run_stuck", "stuck", "x")

    assert len(resend_server.requests) == 6


def test_alert_rate_limit_window_slides(resend_server):
    now = {"value": 0.0}
    alerter, _ = make_alerter(resend_server.url, clock=lambda: now["value"])
    for _ in range(3):
        alerter.send("run_failed", "failed", "x")

    assert alerter.send("run_failed", "failed", "x") is False
    now["value"] = 3601.0
    assert alerter.send("run_failed", "failed", "x") is True


@pytest.mark.parametrize("status", [500, 503, 429])
def test_alert_retries_transient_status(resend_server, status):
    alerter, sleeps = make_alerter(resend_server.url)
    resend_server.statuses = [status, status]

    assert alerter.send("run_failed", "failed", "x") is True

    assert len(resend_server.requests) == 3
    assert sleeps == [2, 4]


def test_alert_gives_up_after_max_attempts(resend_server, caplog):
    alerter, sleeps = make_alerter(resend_server.url)
    resend_server.statuses = [500, 500, 500, 500]

    with caplog.at_level(logging.ERROR, logger="shared.alerts"):
        assert alerter.send("run_failed", "failed", "x") is False

    assert len(resend_server.requests) == 3
    assert len(sleeps) == 2
    assert "alert e-mail failed, attempt=3" in caplog.text


def test_alert_client_error_not_retried(resend_server):
    alerter, sleeps = make_alerter(resend_server.url)
    resend_server.statuses = [422]

    assert alerter.send("run_failed", "failed", "x") is False

    assert len(resend_server.requests) == 1
    assert sleeps == []


def test_alert_connection_refused_retried(resend_server):
    url = resend_server.url
    resend_server.stop()
    alerter, sleeps = make_alerter(url)

    assert alerter.send("run_failed", "failed", "x") is False

    assert len(sleeps) == 2
    resend_server.stop = lambda: None  # already stopped


def test_alert_without_key_skipped(resend_server, caplog):
    alerter, _ = make_alerter(resend_server.url, api_key=None)

    with caplog.at_level(logging.WARNING, logger="shared.alerts"):
        assert alerter.send("run_failed", "failed", "x") is False

    assert resend_server.requests == []
    assert "RESEND_API_KEY or ALERT_EMAIL_TO is not set" in caplog.text


def test_alert_key_never_logged(resend_server, caplog):
    alerter, _ = make_alerter(resend_server.url)
    resend_server.statuses = [500, 500, 500]

    with caplog.at_level(logging.DEBUG):
        alerter.send("run_failed", "failed", "x")

    assert "re_test_key" not in caplog.text


def test_alert_unknown_kind_rejected(resend_server):
    alerter, _ = make_alerter(resend_server.url)

    with pytest.raises(ValueError, match="unknown alert kind"):
        alerter.send("disk_full", "x", "y")


def test_alerter_from_settings_reads_recipients(resend_server):
    from shared.settings import load_settings

    settings = load_settings(
        resend_api_key="re_settings",
        resend_api_url=resend_server.url,
        alert_email_to="a@example.com, b@example.com",
        alerts_per_hour=2,
    )
    alerter = Alerter.from_settings(settings)

    assert alerter.send("run_partial", "partial", "x") is True
    assert resend_server.requests[0]["body"]["to"] == ["a@example.com", "b@example.com"]


def test_unexpected_client_error_does_not_raise(monkeypatch, caplog):
    alerter = Alerter(api_key="re_test", sender="a@example.test",
                      recipients=["ops@example.test"], api_url="http://127.0.0.1:9")

    def broken(subject, text):
        raise RuntimeError("e-mail client bug")

    monkeypatch.setattr(alerter, "_deliver", broken)

    assert alerter.send("run_failed", "Run r1 failed", "reason", run_id="r1") is False
    assert "alert e-mail failed, kind=run_failed" in caplog.text
