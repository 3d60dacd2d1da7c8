"""Threaded HTTP server: the GraphQL endpoint and the admin endpoints.

GraphQL is served on POST /graphql and POST /api/diamonds (the path of the
production endpoint). The admin endpoints under /admin carry no
authentication, so they serve loopback clients only.
"""

import ipaddress
import json
import logging
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from simulator.catalogue import CatalogueError
from simulator.faults import FaultConfigError
from simulator.filters import QueryError
from simulator.service import Response, SimulatorService

logger = logging.getLogger(__name__)

GRAPHQL_PATHS = ("/graphql", "/api/diamonds")
MAX_BODY_BYTES = 10 * 1024 * 1024


class SimulatorHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that carries the simulator service for its handlers."""

    daemon_threads = True
    # Parallel workers open many connections at once, which overflow the
    # listen backlog of 5 that socketserver uses by default.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], service: SimulatorService) -> None:
        self.service = service
        super().__init__(address, SimulatorRequestHandler)


class SimulatorRequestHandler(BaseHTTPRequestHandler):
    """Route one HTTP request to the GraphQL or admin handlers."""

    protocol_version = "HTTP/1.1"
    # Send the status line, headers and body in one segment, without waiting
    # for the delayed ACK of the previous one.
    disable_nagle_algorithm = True
    wbufsize = 256 * 1024
    server: SimulatorHTTPServer

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        if url.path == "/health":
            self._send(
                Response(200, {"status": "ok", "stones": self._service.catalogue.size})
            )
        elif url.path.startswith("/admin/"):
            self._handle_admin("GET", url.path, parse_qs(url.query), None)
        else:
            self._send_not_found(url.path)

    def do_POST(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        body, problem = self._read_json()
        if problem is not None:
            self._send(Response(400, {"errors": [{"message": problem}]}))
        elif url.path in GRAPHQL_PATHS:
            self._send(self._execute_graphql(body))
        elif url.path.startswith("/admin/"):
            self._handle_admin("POST", url.path, parse_qs(url.query), body)
        else:
            self._send_not_found(url.path)

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        logger.debug("HTTP %s " + format, self.client_address[0], *args)

    @property
    def _service(self) -> SimulatorService:
        return self.server.service

    def _execute_graphql(self, body) -> Response:
        try:
            return self._service.handle_graphql(body, self.headers.get("Authorization"))
        except Exception as error:
            # A bug must still produce a response, or the client waits for
            # its timeout on a kept-alive connection.
            logger.exception("GraphQL request failed: error=%s", error)
            message = f"internal error in the simulator: {error}"
            return Response(500, {"errors": [{"message": message}]})

    def _handle_admin(self, method: str, path: str, params: dict, body) -> None:
        client_host = self.client_address[0]
        if not ipaddress.ip_address(client_host).is_loopback:
            message = f"admin endpoints serve loopback clients only, not {client_host}"
            self._send(Response(403, {"error": message}))
            return
        try:
            response = handle_admin(self._service, method, path, params, body)
        except (
            CatalogueError,
            FaultConfigError,
            QueryError,
            TypeError,
            ValueError,
        ) as error:
            logger.warning("Admin request rejected: path=%s error=%s", path, error)
            response = Response(400, {"error": str(error)})
        if response is None:
            self._send_not_found(path)
        else:
            self._send(response)

    def _read_json(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            return None, f"request body of {length} bytes exceeds {MAX_BODY_BYTES}"
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}, None
        try:
            return json.loads(raw), None
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            return None, f"request body is not valid JSON: {error}"

    def _send_not_found(self, path: str) -> None:
        self._send(Response(404, {"error": f"no endpoint at {path}"}))

    def _send(self, response: Response) -> None:
        payload = json.dumps(response.body, separators=(",", ":")).encode()
        self.send_response(response.status, HTTPStatus(response.status).phrase)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


def handle_admin(
    service: SimulatorService, method: str, path: str, params: dict, body
) -> Response | None:
    """Handle an admin request, or return None for an unknown path."""
    route = (method, path.rstrip("/"))
    if route == ("GET", "/admin/stats"):
        return Response(200, service.stats_snapshot())
    if route == ("POST", "/admin/stats/reset"):
        service.reset_stats()
        return Response(200, service.stats_snapshot())
    if route == ("GET", "/admin/faults"):
        return Response(200, service.faults.config)
    if route == ("POST", "/admin/faults"):
        service.faults.configure(body)
        return Response(200, service.faults.config)
    if route == ("POST", "/admin/mutate"):
        counts = {key: value for key, value in body.items() if key != "seed"}
        return Response(200, service.mutate(counts, body.get("seed")))
    if route == ("POST", "/admin/reset"):
        service.catalogue.reset()
        return Response(200, {"status": "reset", "stones": service.catalogue.size})
    if path.rstrip("/") == "/admin/truth" and method in ("GET", "POST"):
        query = truth_query(params, body if method == "POST" else None)
        return Response(200, service.catalogue.truth(query))
    return None


def truth_query(params: dict, body: dict | None) -> dict:
    """Build a DiamondQuery from `updated_from`/`updated_to` and a JSON body.

    The body contains DiamondQuery fields, either at the top level or under
    "query"; the `updated_from`/`updated_to` parameters or body keys set the
    updated window.
    """
    body = dict(body or {})
    query = dict(body.pop("query", None) or {})
    window = dict(query.get("updated") or {})
    for name, bound in (("updated_from", "from"), ("updated_to", "to")):
        value = body.pop(name, None) or (params.get(name) or [None])[0]
        if value is not None:
            window[bound] = value
    query.update(body)
    if window:
        query["updated"] = window
    return query
