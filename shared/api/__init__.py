"""The REST API (FastAPI), served by the HTTP trigger and by `diamond-opus serve`."""

from shared.api.app import create_app

__all__ = ["create_app"]
