"""The error bodies the service sends, and the ``responses=`` tables endpoints declare them
with (what ``/openapi.json`` says must be what the exception handlers in ``api/app.py`` send)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    """Every non-OSRM error: a sentence saying what was wrong."""

    detail: str = Field(description="what was wrong, in words", examples=["unknown hospital id "
                                                                          "'h9' (known: 'h1')"])
    stale: bool | None = Field(None, description="503 only: answers keep using the last known "
                                                 "state")


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="where in the request (path, query, body)")
    msg: str
    type: str | None = None


class ValidationErrorBody(ErrorBody):
    """422: the request did not validate; ``errors`` lists every problem."""

    errors: list[FieldError] | list[str] = Field(default_factory=list)


_WHAT = {
    401: "no or unknown API key",
    403: "the key's role is too low for this endpoint",
    404: "unknown id",
    409: "conflicts with the current state",
    413: "request body too large",
    422: "invalid input (the message says what and where)",
    429: "too much at once: the message says what to wait for",
    503: "the state store is unavailable: the write was not accepted",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for an endpoint: the given status codes with their real body shape."""
    return {code: {"model": ValidationErrorBody if code == 422 else ErrorBody,
                   "description": _WHAT.get(code, "error")} for code in codes}


def json_error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """:func:`error_responses` for an endpoint whose answer is not JSON (HTML, CAP XML): its
    errors still are (FastAPI would file them under the endpoint's media type)."""
    return {code: {"description": spec["description"], "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{spec['model'].__name__}"}}}}
        for code, spec in error_responses(*codes).items()}


#: The errors every authenticated endpoint can return.
AUTH = (401, 403, 413, 422)
