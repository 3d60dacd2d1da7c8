"""Fault injection: which faults fire on which GraphQL request.

A fault configuration is a JSON object keyed by fault kind, for example
``{"http_503": {"rate": 0.1}, "slow": {"schedule": [3, 4], "delay_seconds": 2}}``.
Each kind takes `rate` (probability per request, 0 to 1) and `schedule`
(request numbers at which it always fires). It may also take `operations`
(the root field names it applies to, all when absent) and the options listed
in `FAULT_OPTIONS`. Request
numbers count GraphQL requests from 1, restarting at each configuration. The
optional top-level `seed` fixes the random draws.

The page faults (`malformed_item`, `duplicate_across_pages`, `mutate`) apply
to `diamonds_by_query` requests only.
"""

import logging
import random
import threading
from collections import Counter
from dataclasses import dataclass

logger = logging.getLogger(__name__)

MALFORMED_KINDS = (
    "missing_certificate",
    "negative_price",
    "unknown_shape",
    "price_string",
)
MUTATE_KINDS = ("price_changes", "new_stones", "sold", "withdrawn")
FAULT_OPTIONS = {
    "http_500": {},
    "http_503": {},
    "http_429": {"retry_after_seconds": 1},
    "slow": {"delay_seconds": 0.5},
    "timeout": {"delay_seconds": 35.0},
    "graphql_error": {},
    "token_expiry": {},
    "malformed_item": {"kinds": list(MALFORMED_KINDS)},
    "duplicate_across_pages": {},
    "mutate": {"kinds": list(MUTATE_KINDS)},
}
PAGE_FAULTS = ("malformed_item", "duplicate_across_pages", "mutate")
COMMON_KEYS = {"rate", "schedule", "operations"}


class FaultConfigError(ValueError):
    """A fault configuration that cannot be applied."""


@dataclass(frozen=True)
class FaultRule:
    """When one fault kind fires, and its options."""

    kind: str
    rate: float
    schedule: frozenset[int]
    operations: frozenset[str] | None
    options: dict

    def applies_to(self, operations: list[str]) -> bool:
        """Tell whether the rule covers a request with these root fields."""
        if self.kind in PAGE_FAULTS and "diamonds_by_query" not in operations:
            return False
        if self.operations is None:
            return True
        return any(operation in self.operations for operation in operations)


class FaultInjector:
    """Decides and counts faults; safe to share between server threads."""

    def __init__(self, config: dict | None = None) -> None:
        self._lock = threading.Lock()
        self._injected: Counter[str] = Counter()
        self.configure({} if config is None else config)

    def configure(self, config: dict) -> None:
        """Replace the configuration and restart the request numbering."""
        rules, seed = parse_config(config)
        with self._lock:
            self._config = config
            self._rules = rules
            self._random = random.Random(seed)
            self._request_number = 0
        logger.info("Faults configured: kinds=%s", sorted(rules))

    @property
    def config(self) -> dict:
        """The configuration in force, as given."""
        return self._config

    def next_request_number(self) -> int:
        """Count one more GraphQL request and return its number."""
        with self._lock:
            self._request_number += 1
            return self._request_number

    def fires(self, kind: str, request_number: int, operations: list[str]) -> bool:
        """Draw whether `kind` fires on this request; the caller records it."""
        rule = self._rules.get(kind)
        if rule is None or not rule.applies_to(operations):
            return False
        if request_number in rule.schedule:
            return True
        if rule.rate <= 0:
            return False
        with self._lock:
            return self._random.random() < rule.rate

    def option(self, kind: str, name: str):
        """Return an option of a fault kind, or its default."""
        rule = self._rules.get(kind)
        if rule is not None and name in rule.options:
            return rule.options[name]
        return FAULT_OPTIONS[kind][name]

    def choose(self, values: list):
        """Pick one of `values` with the fault random source."""
        with self._lock:
            return self._random.choice(values)

    def record(self, kind: str) -> None:
        """Count one injected fault."""
        with self._lock:
            self._injected[kind] += 1
        logger.info("Fault injected: kind=%s", kind)

    def reset_counts(self) -> None:
        """Zero the injected fault counts."""
        with self._lock:
            self._injected.clear()

    def injected_counts(self) -> dict[str, int]:
        """Return the number of injections per fault kind, zeros included."""
        with self._lock:
            return {kind: self._injected.get(kind, 0) for kind in FAULT_OPTIONS}


def parse_config(config: dict) -> tuple[dict[str, FaultRule], int | None]:
    """Validate a fault configuration and return its rules and seed."""
    if not isinstance(config, dict):
        raise FaultConfigError(
            f"fault configuration must be a JSON object, got {type(config).__name__}"
        )
    seed = config.get("seed")
    if seed is not None and not isinstance(seed, int):
        raise FaultConfigError(f"fault seed {seed!r} is invalid; pass an integer")

    rules = {}
    for kind, settings in config.items():
        if kind == "seed":
            continue
        if kind not in FAULT_OPTIONS:
            raise FaultConfigError(
                f"fault kind {kind!r} is unknown; use one of {sorted(FAULT_OPTIONS)}"
            )
        rules[kind] = _parse_rule(kind, settings)
    return rules, seed


def _parse_rule(kind: str, settings) -> FaultRule:
    if not isinstance(settings, dict):
        raise FaultConfigError(f"fault {kind!r} settings must be a JSON object")
    unknown = set(settings) - COMMON_KEYS - set(FAULT_OPTIONS[kind])
    if unknown:
        raise FaultConfigError(
            f"fault {kind!r} has unknown settings {sorted(unknown)}; allowed: "
            f"{sorted(COMMON_KEYS | set(FAULT_OPTIONS[kind]))}"
        )

    rate = settings.get("rate", 0)
    if not isinstance(rate, int | float) or not 0 <= rate <= 1:
        raise FaultConfigError(f"fault {kind!r} rate {rate!r} is invalid; use 0 to 1")
    schedule = settings.get("schedule") or []
    if not all(isinstance(number, int) and number > 0 for number in schedule):
        raise FaultConfigError(
            f"fault {kind!r} schedule {schedule!r} is invalid; "
            "list request numbers of 1 or more"
        )
    operations = settings.get("operations")
    _check_kinds(kind, settings.get("kinds"))

    options = {name: settings[name] for name in FAULT_OPTIONS[kind] if name in settings}
    return FaultRule(
        kind=kind,
        rate=float(rate),
        schedule=frozenset(schedule),
        operations=None if operations is None else frozenset(operations),
        options=options,
    )


def _check_kinds(kind: str, kinds) -> None:
    if kinds is None:
        return
    allowed = MALFORMED_KINDS if kind == "malformed_item" else MUTATE_KINDS
    if not kinds or any(value not in allowed for value in kinds):
        raise FaultConfigError(
            f"fault {kind!r} kinds {kinds!r} are invalid; use some of {list(allowed)}"
        )
