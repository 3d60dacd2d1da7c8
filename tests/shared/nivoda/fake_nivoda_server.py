"""A scripted GraphQL server on 127.0.0.1 standing in for Nivoda, and test doubles."""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from shared.nivoda.ratelimit import TokenBucket

USERNAME = "buyer@example.test"
PASSWORD = "correct horse battery staple"

SAMPLE_ITEM: dict[str, Any] = {
    "id": "DIAMOND/0f8fad5b-d9cb-469f-a165-70867728950e",
    "price": 100010,
    "discount": -12.5,
    "markup_price": 100010,
    "diamond_price": 100010,
    "createdAt": "2025-05-11T09:00:00Z",
    "updatedAt": "2025-06-09T12:47:34.250Z",
    "unknown_new_field": {"kept": True},
    "diamond": {
        "id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "availability": "AVAILABLE",
        "HoldId": None,
        "image": "https://media.example.test/images/1.jpg",
        "video": None,
        "supplier_video_link": "https://media.example.test/videos/1.mp4",
        "supplierStockId": "SUP1-00000001",
        "NivodaStockId": "NV000000001",
        "eyeClean": True,
        "brown": "NONE",
        "green": None,
        "milky": "NONE",
        "mine_of_origin": "Botswana",
        "v360": {"url": "https://media.example.test/v360/1/index.html"},
        "delivery_time": {"min_business_days": 3, "max_business_days": 6},
        "supplier": {
            "id": "6f1c2d9e-8a4b-4c1e-9f3a-1b2c3d4e5f60",
            "name": "Antwerp Rough Co",
            "legal_name": "Antwerp Rough Co BV",
        },
        "certificate": {
            "id": "1e2da7a0-11fc-5b41-aa17-8370ee4878e5",
            "lab": "GIA",
            "certNumber": "2200044320",
            "pdfUrl": "https://media.example.test/certificates/gia/2200044320.pdf",
            "shape": "round",
            "carats": 0.3,
            "color": "e",
            "clarity": "vs1",
            "cut": "EX",
            "polish": "VERY GOOD",
            "symmetry": "vg",
            "floInt": "Very_Strong",
            "floCol": "blue",
            "length": 4.31,
            "width": 4.28,
            "depth": 2.65,
            "depthPercentage": 61.7,
            "table": 57,
            "crownAngle": 34.5,
            "crownHeight": 15.0,
            "pavAngle": 40.8,
            "pavDepth": 43.1,
            "girdle": "MEDIUM",
            "culetSize": "NONE",
            "labgrown": False,
            "treated": False,
            "f_color": None,
            "f_intensity": None,
            "f_overtone": None,
        },
    },
}


def graphql_error(message: str, code: str | None = None) -> dict[str, Any]:
    """Build one GraphQL error object, with `extensions.code` if given."""
    error: dict[str, Any] = {"message": message}
    if code is not None:
        error["extensions"] = {"code": code}
    return error


@dataclass
class ScriptedResponse:
    """One canned response: HTTP status, JSON body, headers and a delay."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0


@dataclass
class ReceivedRequest:
    """What the fake server saw of one request."""

    operation: str
    variables: dict[str, Any]
    authorization: str | None


class FakeNivoda:
    """GraphQL stand-in that issues tokens and plays scripted responses.

    Scripted responses, queued per operation name (`Login`, `Count`, `Search`,
    `CreateHold`, `CancelHold`, `CreateOrder`), are served first. After them
    each operation returns its default response.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[ReceivedRequest] = []
        self.scripts: dict[str, deque[ScriptedResponse]] = {}
        self.valid_tokens: set[str] = set()
        self.logins = 0
        self.count_value = 1234
        self.items = [copy.deepcopy(SAMPLE_ITEM)]
        self.reject_all_tokens = False

    def enqueue(self, operation: str, **response: Any) -> None:
        """Queue one scripted response for the next request of `operation`."""
        with self.lock:
            self.scripts.setdefault(operation, deque()).append(
                ScriptedResponse(**response)
            )

    def expire_tokens(self) -> None:
        """Make every issued token invalid, as after its expiry."""
        with self.lock:
            self.valid_tokens.clear()

    def operations(self) -> list[str]:
        """Return the operation names received, in order."""
        with self.lock:
            return [request.operation for request in self.requests]

    def respond(self, body: dict[str, Any], authorization: str | None):
        """Return (status, body, headers, delay) for one decoded request body."""
        match = re.search(r"\b(?:query|mutation)\s+(\w+)", body.get("query", ""))
        operation = match.group(1) if match else "anonymous"
        variables = body.get("variables") or {}
        with self.lock:
            self.requests.append(ReceivedRequest(operation, variables, authorization))
            queue = self.scripts.get(operation)
            if queue:
                scripted = queue.popleft()
                return (
                    scripted.status,
                    scripted.body,
                    scripted.headers,
                    scripted.delay_seconds,
                )
            return (*self._default(operation, variables, authorization), {}, 0.0)

    def _default(
        self, operation: str, variables: dict[str, Any], authorization: str | None
    ) -> tuple[int, dict[str, Any]]:
        if operation == "Login":
            if (variables.get("username"), variables.get("password")) != (
                USERNAME,
                PASSWORD,
            ):
                error = graphql_error("wrong username or password", "UNAUTHENTICATED")
                return 200, {"data": None, "errors": [error]}
            self.logins += 1
            token = f"token-{self.logins}"
            self.valid_tokens.add(token)
            payload = {"username_and_password": {"token": token}}
            return 200, {"data": {"authenticate": payload}}

        token = (authorization or "").removeprefix("Bearer ")
        if self.reject_all_tokens or token not in self.valid_tokens:
            error = graphql_error("token expired; log in again", "UNAUTHENTICATED")
            return 200, {"data": None, "errors": [error]}
        return 200, {"data": self._data(operation, variables)}

    def _data(self, operation: str, variables: dict[str, Any]) -> dict[str, Any]:
        if operation == "Count":
            return {"diamonds_by_query_count": self.count_value}
        if operation == "Search":
            items = copy.deepcopy(self.items)
            return {"diamonds_by_query": {"items": items, "total_count": 13}}
        if operation == "CreateHold":
            hold = {"id": "hold-1", "denied": False, "until": "2026-12-05T10:00:00Z"}
            return {"create_hold": hold}
        if operation == "CancelHold":
            return {"cancel_hold": {"id": variables["holdId"], "denied": False}}
        if operation == "CreateOrder":
            return {"create_order": "order-1"}
        raise AssertionError(f"unexpected operation {operation}")


class _Handler(BaseHTTPRequestHandler):
    fake: FakeNivoda

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length))
        status, answer, headers, delay = self.server.fake.respond(
            body, self.headers.get("Authorization")
        )
        if delay:
            time.sleep(delay)
        payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeNivoda) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


class RecordingSleep:
    """A sleep function that records delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class CountingBucket(TokenBucket):
    """A token bucket that never waits and counts acquisitions."""

    def __init__(self) -> None:
        super().__init__(1000.0)
        self._count_lock = threading.Lock()
        self.acquired = 0

    def acquire(self) -> float:
        with self._count_lock:
            self.acquired += 1
        return 0.0


def start_fake_nivoda() -> tuple[FakeNivoda, _Server, threading.Thread]:
    """Start a FakeNivoda on a free loopback port; `fake.url` is its endpoint."""
    fake = FakeNivoda()
    server = _Server(fake)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    host, port = server.server_address[:2]
    fake.url = f"http://{host}:{port}/graphql"
    return fake, server, thread
