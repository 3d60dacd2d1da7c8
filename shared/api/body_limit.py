"""Reject request bodies above a size limit with 413, before they are parsed.

Without a limit, FastAPI reads and parses a body of any size. HMAC requests
have their body read before the signature is checked, so an anonymous client
could make the server keep and parse hundreds of megabytes. FastAPI's own
`max_body_size` (FastAPI 0.165) responds to a declared Content-Length above
the limit with a plain-text 413, outside the error envelope, hence this
middleware.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException

from shared.api.errors import error_response

# The largest valid bodies, pricing rules and supplier queries, take a few
# kilobytes, so 1 MiB leaves ample room.
MAX_BODY_BYTES = 1024 * 1024


class BodySizeLimit:
    """ASGI middleware that caps the request body at `max_bytes`.

    A declared Content-Length above the cap gets 413 before any byte is read.
    A body sent without one is counted as it arrives and raises 413 once it
    passes the cap.
    """

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            response = error_response(413, "payload_too_large", self._message(declared))
            await response(scope, receive, send)
            return

        received = 0

        async def receive_within_limit():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI passes HTTPException through while it reads a
                    # body, where any other exception becomes a 400.
                    raise HTTPException(413, self._message())
            return message

        await self.app(scope, receive_within_limit, send)

    def _message(self, declared: int | None = None) -> str:
        size = "" if declared is None else f" of {declared} bytes"
        return (
            f"request body{size} is larger than the limit of {self.max_bytes}"
            " bytes; send a smaller body"
        )


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
