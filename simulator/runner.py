"""In-process simulator running its HTTP server in a background thread."""

import logging
import threading

from simulator.catalogue import Catalogue
from simulator.generation import REAL_STONE_COUNT
from simulator.server import SimulatorHTTPServer
from simulator.service import (
    DEFAULT_TOKEN_TTL_SECONDS,
    ServiceOptions,
    SimulatorService,
)

logger = logging.getLogger(__name__)


class Simulator:
    """A Nivoda-compatible supplier API serving a generated catalogue.

    Use `start()` and `stop()`, or the instance as a context manager, which
    starts it on a free loopback port.
    """

    def __init__(
        self,
        stones: int = REAL_STONE_COUNT,
        seed: int = 0,
        faults: dict | None = None,
        username: str = "demo",
        password: str = "demo",
        token_ttl_seconds: float = DEFAULT_TOKEN_TTL_SECONDS,
        total_count_mode: str = "remaining",
        overrun: bool = True,
    ) -> None:
        options = ServiceOptions(
            username=username,
            password=password,
            token_ttl_seconds=token_ttl_seconds,
            total_count_mode=total_count_mode,
            overrun=overrun,
        )
        self.catalogue = Catalogue(stones, seed)
        self.service = SimulatorService(self.catalogue, options, faults)
        self._server: SimulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self, host: str = "127.0.0.1", port: int = 0) -> "Simulator":
        """Start serving in a background thread; port 0 picks a free port."""
        if self._server is not None:
            raise RuntimeError(f"simulator already serving at {self.base_url}")
        self._server = SimulatorHTTPServer((host, port), self.service)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="simulator-http",
            daemon=True,
        )
        self._thread.start()
        logger.info("Simulator serving: url=%s", self.url)
        return self

    def serve_forever(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve in the calling thread until interrupted."""
        self._server = SimulatorHTTPServer((host, port), self.service)
        logger.info("Simulator serving: url=%s", self.url)
        try:
            self._server.serve_forever(poll_interval=0.5)
        finally:
            self._server.server_close()

    def stop(self) -> None:
        """Stop the server and wait for its thread."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        logger.info("Simulator stopped: url=%s", self.url)
        self._server = None
        self._thread = None

    @property
    def base_url(self) -> str:
        """Scheme, host and port of the running server."""
        if self._server is None:
            raise RuntimeError("simulator is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """GraphQL endpoint URL."""
        return f"{self.base_url}/graphql"

    @property
    def admin_url(self) -> str:
        """Base URL of the admin endpoints."""
        return f"{self.base_url}/admin"

    def __enter__(self) -> "Simulator":
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
