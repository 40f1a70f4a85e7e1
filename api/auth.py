"""API keys with cumulative roles (dispatcher < command_centre < planner < admin).

A key comes in the ``X-API-Key`` header or as ``Authorization: Bearer KEY``. The ``api_key``
query parameter is accepted only by the read-only OSRM GET endpoints (routes tagged
:data:`QUERY_KEY_TAG`), for browser front ends that cannot set headers: anywhere else a key in
the URL is refused with 401 (URLs end up in access logs, proxies and browser history; a write
must never be authorised that way). ``/openapi.json`` declares the same three schemes
(:func:`api.app.document_security` adds the query one where it is accepted).

With no keys configured every caller is admin, and :class:`api.app.LoopbackOnly` answers
callers beyond loopback 403 before any of this runs.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

from api.settings import Role

#: Routes with this tag (the OSRM services) accept ``?api_key=`` on GET.
QUERY_KEY_TAG = "osrm"

HEADER_KEY = APIKeyHeader(name="X-API-Key", scheme_name="ApiKeyHeader", auto_error=False,
                          description="an API key of GYROPHARE_API_KEYS")
BEARER_KEY = HTTPBearer(scheme_name="Bearer", auto_error=False,
                        description="an API key of GYROPHARE_API_KEYS as a bearer token")
#: Only declared (by :func:`api.app.document_security`) on the operations that accept it.
QUERY_KEY = APIKeyQuery(name="api_key", scheme_name="ApiKeyQuery", auto_error=False,
                        description="an API key in the URL: read-only OSRM GET endpoints only "
                                    "(for front ends that cannot set headers)")


def query_key_accepted(request: Request) -> bool:
    """``?api_key=`` is accepted on this request: a GET of an OSRM service."""
    route = request.scope.get("route")
    return request.method in ("GET", "HEAD") and QUERY_KEY_TAG in getattr(route, "tags", ())


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message,
                         headers={"WWW-Authenticate": "ApiKey"})


def caller_role(request: Request,
                header: Annotated[str | None, Security(HEADER_KEY)] = None,
                bearer: Annotated[HTTPAuthorizationCredentials | None,
                                  Security(BEARER_KEY)] = None) -> Role:
    """The role of the caller's key (401 when it is missing, unknown or in the URL of an
    endpoint that does not accept it there)."""
    settings = request.app.state.settings
    if settings.open_access:
        return Role.admin
    query = request.query_params.get("api_key")
    if query is not None and not query_key_accepted(request):
        raise _unauthorized("API keys in the query string (?api_key=) are refused here: only "
                            "the read-only OSRM GET endpoints accept them. Send the key in "
                            "the X-API-Key header (or Authorization: Bearer KEY), and "
                            "consider this key exposed: URLs end up in logs")
    key = header or (bearer.credentials.strip() if bearer is not None else None) or query
    if not key:
        raise _unauthorized("missing API key: send it in the X-API-Key header")
    role = settings.api_keys.get(key)
    if role is None:
        raise _unauthorized("unknown API key")
    return role


# The caller's role as a dependency of an endpoint: ``_: DispatcherRole`` lets dispatchers and
# every higher role in (names end in "Role": ``engine.dispatch.Dispatcher`` is the engine's).


def require(minimum: Role):
    """Dependency factory: the caller's role must be at least ``minimum``."""

    def check(role: Annotated[Role, Depends(caller_role)]) -> Role:
        if role < minimum:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"this needs the {minimum.name} role or higher; your key has "
                                f"the {role.name} role")
        return role

    return check


DispatcherRole = Annotated[Role, Depends(require(Role.dispatcher))]
CommandCentreRole = Annotated[Role, Depends(require(Role.command_centre))]
PlannerRole = Annotated[Role, Depends(require(Role.planner))]
AdminRole = Annotated[Role, Depends(require(Role.admin))]
