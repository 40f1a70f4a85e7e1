"""Annotated dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.settings import Settings
from api.state import LiveState


def get_state(request: Request) -> LiveState:
    return request.app.state.live


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


State = Annotated[LiveState, Depends(get_state)]
AppSettings = Annotated[Settings, Depends(get_settings)]
