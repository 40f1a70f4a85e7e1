"""OSRM-compatible endpoints (placeholder until the OSRM module lands)."""

from fastapi import APIRouter

router = APIRouter(tags=["osrm"])
