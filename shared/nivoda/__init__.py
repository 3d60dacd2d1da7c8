"""Client of the Nivoda GraphQL API, its query inputs and its item models."""

from shared.nivoda.client import (
    HoldResult,
    NivodaClient,
    RequestContext,
    SearchPage,
)
from shared.nivoda.errors import (
    FatalNivodaError,
    InvalidQueryError,
    InvalidResponseError,
    NivodaAuthenticationError,
    NivodaConnectionError,
    NivodaError,
    NivodaForbiddenError,
    NivodaRateLimitError,
    NivodaServerError,
    NivodaTimeoutError,
    PartialResponseError,
    RetriableNivodaError,
    TokenRevokedError,
    TransientGraphQLError,
)
from shared.nivoda.models import Certificate, Diamond, Offer
from shared.nivoda.query import DiamondOrder, DiamondQuery

__all__ = [
    "Certificate",
    "Diamond",
    "DiamondOrder",
    "DiamondQuery",
    "FatalNivodaError",
    "HoldResult",
    "InvalidQueryError",
    "InvalidResponseError",
    "NivodaAuthenticationError",
    "NivodaClient",
    "NivodaConnectionError",
    "NivodaError",
    "NivodaForbiddenError",
    "NivodaRateLimitError",
    "NivodaServerError",
    "NivodaTimeoutError",
    "Offer",
    "PartialResponseError",
    "RequestContext",
    "RetriableNivodaError",
    "TokenRevokedError",
    "SearchPage",
    "TransientGraphQLError",
]
