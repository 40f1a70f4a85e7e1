"""API keys with cumulative roles (dispatcher < command_centre < planner < admin).

A key comes in the ``X-API-Key`` header, as ``Authorization: Bearer KEY``, or (for OSRM front
ends that cannot set headers) as the ``api_key`` query parameter. With no keys configured the
service only listens on localhost and every caller is admin.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from api.settings import Role


def caller_role(request: Request) -> Role:
    settings = request.app.state.settings
    if settings.open_access:
        return Role.admin
    key = request.headers.get("x-api-key")
    if key is None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            key = auth[7:].strip()
    if key is None:
        key = request.query_params.get("api_key")
    if not key:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            "missing API key: send it in the X-API-Key header",
                            headers={"WWW-Authenticate": "ApiKey"})
    role = settings.api_keys.get(key)
    if role is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown API key",
                            headers={"WWW-Authenticate": "ApiKey"})
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
