"""Operator alerts by e-mail through Resend.

Alerts are rate-limited per kind so that a storm of failures sends a handful
of messages, retried on transient errors, and skipped with a warning when no
Resend API key is configured. Sending never raises: an alert must not turn a
handled failure into an unhandled one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)

KINDS = ("run_failed", "run_partial", "consolidation_failed", "run_stuck", "too_many_errors",
         "watermark_conflict")


class Alerter:
    def __init__(
        self,
        *,
        api_key: str | None,
        sender: str,
        recipients: list[str],
        api_url: str = "https://api.resend.com",
        per_hour: int = 6,
        max_attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api_key = api_key
        self._sender = sender
        self._recipients = recipients
        self._api_url = api_url
        self._per_hour = per_hour
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._clock = clock
        self._sent: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self.suppressed = 0

    @classmethod
    def from_settings(cls, settings) -> Alerter:
        recipients = [
            address.strip()
            for address in (settings.alert_email_to or "").split(",")
            if address.strip()
        ]
        return cls(
            api_key=settings.resend_api_key,
            sender=settings.alert_email_from,
            recipients=recipients,
            api_url=settings.resend_api_url,
            per_hour=settings.alerts_per_hour,
        )

    def send(self, kind: str, subject: str, body: str, **ids: object) -> bool:
        """Send one alert; return True when Resend accepted it."""
        if kind not in KINDS:
            raise ValueError(f"unknown alert kind {kind!r}; expected one of {KINDS}")
        log.warning("alert %s: %s %s", kind, subject, _format_ids(ids))
        if not self._api_key or not self._recipients:
            log.warning("alert not e-mailed: RESEND_API_KEY or ALERT_EMAIL_TO is not set")
            return False
        if not self._take_slot(kind):
            self.suppressed += 1
            log.warning("alert %s suppressed by the rate limit of %d per hour",
                        kind, self._per_hour)
            return False
        try:
            return self._deliver(f"[Diamond Opus] {subject}",
                                 body + "\n\n" + _format_ids(ids))
        except Exception:
            # Whatever the e-mail client raises, the failure being alerted on
            # stays the one that is handled and reported.
            log.exception("alert e-mail failed, kind=%s", kind)
            return False

    def _take_slot(self, kind: str) -> bool:
        now = self._clock()
        with self._lock:
            sent = self._sent.setdefault(kind, deque())
            while sent and now - sent[0] > 3600:
                sent.popleft()
            if len(sent) >= self._per_hour:
                return False
            sent.append(now)
            return True

    def _deliver(self, subject: str, text: str) -> bool:
        import resend

        resend.api_key = self._api_key
        resend.api_url = self._api_url
        params = {"from": self._sender, "to": self._recipients, "subject": subject,
                  "text": text}
        for attempt in range(1, self._max_attempts + 1):
            try:
                resend.Emails.send(params)
                return True
            except resend.exceptions.ResendError as exc:
                if not _is_transient(exc) or attempt == self._max_attempts:
                    log.error("alert e-mail failed, attempt=%d error=%s", attempt, exc)
                    return False
            except OSError as exc:
                if attempt == self._max_attempts:
                    log.error("alert e-mail failed, attempt=%d error=%s", attempt, exc)
                    return False
            log.info("alert e-mail retried, attempt=%d", attempt)
            self._sleep(min(2 ** attempt, 30))
        return False


def _is_transient(exc) -> bool:
    code = str(getattr(exc, "code", "") or "")
    return code in {"429", "500", "502", "503", "504"} or code.startswith("5")


def _format_ids(ids: dict[str, object]) -> str:
    return " ".join(f"{key}={value}" for key, value in ids.items())
