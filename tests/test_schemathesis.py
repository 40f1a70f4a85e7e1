"""The whole ``/openapi.json`` checked by schemathesis against the running app (ASGI, Monaco,
embedded store), with and without API keys configured.

Every operation but the SSE stream gets up to :data:`MAX_EXAMPLES` requests per test, and the
tests together run every schemathesis check (``--checks all``):

- :func:`test_operation_conforms`: valid and invalid requests (positive and negative modes);
  no server error, status codes, content types, headers and bodies as documented, invalid
  input refused, auth enforced as declared (``ignored_auth``), and the rest of the built-ins.
- :func:`test_valid_input_is_accepted`: valid requests only, ``positive_data_acceptance``.
  It is apart because where it fails the document is looser than the endpoint's own
  validation: those operations are known failures (:data:`KNOWN`, each naming its defect),
  and an xfail there must not hide a server error, which the first test still catches.
- :func:`test_documented_examples_work`: the document's own examples (the only requests that
  reach real roads of Monaco), every check.

Examples are derandomized so that a run is reproducible.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from api.app import create_app
from api.settings import Settings
from api.store import EmbeddedStore

MAX_EXAMPLES = 20
EXCLUDED = {"GET /v1/alerts/stream"}  # SSE: never ends by itself
KEYS = {"k-admin": "admin", "k-disp": "dispatcher"}
AUTH = {"X-API-Key": "k-admin"}


def _labels() -> list[str]:
    """Every documented operation (the document needs no graph: the app is not started)."""
    paths = create_app(Settings()).openapi()["paths"]
    return sorted(f"{method.upper()} {path}" for path, item in paths.items() for method in item
                  if f"{method.upper()} {path}" not in EXCLUDED)


OPERATIONS = _labels()
#: ``negative_data_rejection``: 413 (a body over ``max_body_bytes``) refuses a request too.
CONFIG = schemathesis.Config.from_str("""
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422",
                     "428", "429", "5xx"]
""")


@pytest.fixture(scope="module", params=["open", "keyed"])
def schema(request: pytest.FixtureRequest, monaco: Any,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from schemathesis.python.asgi import shutdown_lifespans

    keys = KEYS if request.param == "keyed" else {}
    path: Path = tmp_path_factory.mktemp(f"schemathesis-{request.param}") / "state.jsonl"
    app = create_app(Settings(api_keys=keys), graph=monaco, store=EmbeddedStore(path))
    loaded = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
    yield loaded, (AUTH if keys else {})
    shutdown_lifespans()


def _run(schema: Any, label: str, modes: list[Any], *, examples: bool = False,
         **validate: Any) -> None:
    """:data:`MAX_EXAMPLES` requests of ``label`` generated in the given modes (or drawn from
    the document's own examples), each answer validated (``validate``: ``checks`` /
    ``excluded_checks`` of ``call_and_validate``)."""
    loaded, headers = schema
    operation = loaded.find_operation_by_label(label)
    assert operation is not None, label
    strategies = (loaded.get_strategies_from_examples(operation) if examples
                  else [operation.as_strategy(mode) for mode in modes])
    if not strategies:
        return

    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=st.one_of(strategies))
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, **validate)

    run()


@pytest.mark.parametrize("label", OPERATIONS)
def test_operation_conforms(schema: Any, label: str) -> None:
    """Valid and invalid requests: every check but valid-input acceptance (next test)."""
    _run(schema, label, [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
         excluded_checks=[positive_data_acceptance])


def valid_input_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis' ``positive_data_acceptance``, but for the one rule no schema can state:
    a point that is valid WGS84 yet not near a road of the map is refused (422 saying so)."""
    if response.status_code == 422 and "off the road network" in response.text:
        return None
    return positive_data_acceptance(ctx, response, case)


_OSRM = ("api/routers/osrm.py: path parameters version, profile and coordinates are declared "
         "as any string; OSRM answers 400 InvalidUrl to e.g. {service}/%22/%22/%22 (declare "
         "version v1, the profile names, a coordinates pattern)")
_LONLAT = ("api/schemas.py: [lon, lat] items are declared as any numbers; out of range ones get "
           "422 (declare minimum/maximum per item)")
#: operation label -> the defect (outside the files tested here) that makes a schema-valid
#: request fail; each becomes an xfail of that operation's acceptance test only.
KNOWN: dict[str, str] = {
    "GET /route/{version}/{profile}/{coordinates}": _OSRM.format(service="/route"),
    "GET /table/{version}/{profile}/{coordinates}": _OSRM.format(service="/table"),
    "GET /nearest/{version}/{profile}/{coordinates}": _OSRM.format(service="/nearest"),
    "GET /v1/alerts": "api/routers/hospitals.py: since is a date-time of any year; one outside "
                      "1970..2200 gets 422 (e.g. since=0880-01-07T11:14:16-04:06)",
    "GET /v1/roads": "GET /v1/roads: bbox is declared as any string; anything but four "
                     "comma-separated numbers is refused (e.g. bbox=%22)",
    "POST /v1/closures": "api/routers/traffic.py: the body is declared as a free-form object; "
                         "{} gets 422 'expected a GeoJSON Feature' (declare the Feature schema)",
    "POST /v1/coverage": _LONLAT + " (stations)",
    "POST /v1/dispatch": _LONLAT + " (incident)",
    "POST /v1/reports": _LONLAT + " (location); expires_at outside 1970..2200 gets 422",
    "POST /v1/route": "api/schemas.py RouteRequest: 'exactly one of destination or "
                      "destination_hospital' is not in the schema ({'origin': [0, 0]} gets 422)",
    "POST /v1/scenarios/runs": "api/routers/scenarios.py RunRequest: 'exactly one of scenario or "
                               "name' is not in the schema ({} gets 422)",
    "POST /v1/traffic": "a change is declared without its required type discriminator "
                        "({'changes': [{}]} gets 422 'unknown change type None')",
    "POST /v1/traffic/speeds": "the body schema allows {}, refused with 422 'give speeds "
                               "(segments) or ways'",
}


def _params(known: dict[str, str]) -> list[Any]:
    """:data:`OPERATIONS`, those in ``known`` marked as known failures (their defect named)."""
    return [pytest.param(label, marks=pytest.mark.xfail(reason=known[label], strict=False))
            if label in known else label for label in OPERATIONS]


@pytest.mark.parametrize("label", _params(KNOWN))
def test_valid_input_is_accepted(schema: Any, label: str) -> None:
    """Requests valid by the document are accepted (2xx, or 401/403/404/409)."""
    _run(schema, label, [GenerationMode.POSITIVE], checks=[valid_input_accepted])


#: operation label -> the defect of its documented example (outside the files tested here).
KNOWN_EXAMPLES: dict[str, str] = {
    "POST /v1/reports": "api/schemas.py: the documented starts_at and expires_at are the same "
                        "instant (2026-11-27T08:00:00Z): 422 'validity window ends before it "
                        "starts'",
    "POST /v1/traffic/speeds": "the documented example has neither speeds nor ways (both "
                               "null): 422 'give speeds (segments) or ways'",
}


@pytest.mark.parametrize("label", _params(KNOWN_EXAMPLES))
def test_documented_examples_work(schema: Any, label: str) -> None:
    """The document's own examples (real Monaco points, shipped scenario names): every check,
    valid-input acceptance included."""
    _run(schema, label, [], examples=True,
         additional_checks=[positive_data_acceptance])
