"""The admin dashboard: static HTML, CSS and JavaScript served by the API itself.

The pages contain no secrets. They call the admin API with the API key that the
operator types in, so these routes need no authentication.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

from shared.api.errors import ApiError

DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "dashboard"

# Scripts and styles come only from this origin, so an injected inline script
# cannot run. Stone images and certificates open as links, never embedded.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none';"
        " base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["dashboard"], include_in_schema=False)


@router.get("/dashboard")
def dashboard_page() -> FileResponse:
    return FileResponse(
        DASHBOARD_DIR / "index.html", media_type="text/html", headers=_HEADERS
    )


@router.get("/dashboard/")
def dashboard_slash() -> RedirectResponse:
    return RedirectResponse("/dashboard", status_code=308)


@router.get("/dashboard/static/{name:path}")
def dashboard_asset(name: str) -> FileResponse:
    path = _dashboard_file(name)
    if path is None:
        raise ApiError(404, f"dashboard file {name[:200]!r} not found")
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type, headers=_HEADERS)


def _dashboard_file(name: str) -> Path | None:
    """Return the file `name` inside the dashboard folder, or None."""
    # A NUL byte raises ValueError and an over-long name raises OSError
    # (ENAMETOOLONG) in resolve() and is_file(). Neither names a file here.
    try:
        path = (DASHBOARD_DIR / name).resolve()
        if path.is_relative_to(DASHBOARD_DIR) and path.is_file():
            return path
    except (OSError, ValueError):
        pass
    return None
