"""The whole ``/openapi.json`` checked by schemathesis against the running app (ASGI, Monaco,
embedded store), with and without API keys configured.

Every operation but the SSE stream gets up to :data:`MAX_EXAMPLES` requests per test, and the
tests together run every schemathesis check (``--checks all``):

- :func:`test_operation_conforms`: valid and invalid requests (positive and negative modes);
  no server error, status codes, content types, headers and bodies as documented, invalid
  input refused, auth enforced as declared (``ignored_auth``), and the rest of the built-ins.
- :func:`test_valid_input_is_accepted`: valid requests only, ``positive_data_acceptance``:
  the document is as tight as the endpoints' own validation. A valid request may still be
  refused for a rule no JSON Schema can state (the map's content, the clock, two values
  compared, the service's state: :data:`UNSTATABLE`), when the refusal says so. It is apart
  so that a known failure (:data:`KNOWN`, naming its defect and the refusal that shows it)
  cannot hide a server error, which the first test still catches.
- :func:`test_documented_examples_work`: the document's own examples (the only requests that
  reach real roads of Monaco), every check.

Examples are derandomized so that a run is reproducible.
"""

from __future__ import annotations

import re
import time
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


@pytest.fixture(scope="module", autouse=True)
def _regex_strategies_built_once() -> Iterator[None]:
    """Hypothesis builds the strategy of a regular expression anew for every value drawn from
    it, listing a character class character by character: for ``PrintableText`` (every
    printable character, about 144,000) that was half of this module's run time. Built once
    per pattern and alphabet here (the alphabet is kept alive, so its id stays its own)."""
    from hypothesis.strategies._internal import regex

    build = getattr(regex, "base_regex_strategy", None)
    if build is None:  # another hypothesis: nothing to speed up here
        yield
        return
    built: dict[tuple[Any, ...], tuple[Any, Any]] = {}

    def once(pattern: Any, parsed: Any = None, alphabet: Any = None) -> Any:
        key = (pattern.pattern, pattern.flags, id(alphabet))
        if key not in built:
            built[key] = (alphabet, build(pattern, parsed=parsed, alphabet=alphabet))
        return built[key][1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(regex, "base_regex_strategy", once)
        yield


@pytest.fixture(scope="module", params=["open", "keyed"])
def schema(request: pytest.FixtureRequest, monaco: Any,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from schemathesis.python.asgi import shutdown_lifespans

    keys = KEYS if request.param == "keyed" else {}
    path: Path = tmp_path_factory.mktemp(f"schemathesis-{request.param}") / "state.jsonl"
    app = create_app(Settings(api_keys=keys), graph=monaco, store=EmbeddedStore(path))
    loaded = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
    yield loaded, (AUTH if keys else {})
    _stop_replays(app.state.runs)
    shutdown_lifespans()


def _stop_replays(runs: Any, timeout_s: float = 60.0) -> None:
    """Cancel the scenario replays the examples started and wait until they stopped: a replay
    thread still inside compiled code when the interpreter exits aborts the process."""
    for run in runs.all():
        if run["status"] == "running":
            runs.cancel(run["id"])
    deadline = time.monotonic() + timeout_s
    while runs.running() and time.monotonic() < deadline:
        time.sleep(0.1)


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


#: What a request valid by the document may still be refused for: the rules no JSON Schema
#: can state, each matched by the words of the refusal (regular expression -> the rule). A
#: 422 is excused only when every error it lists is one of these.
UNSTATABLE: dict[str, str] = {
    # the map's content
    r"is off the road network": "a valid WGS84 point not near a road of the map",
    r"touches no road of the network": "a valid geometry (or road classes) not on the map",
    r"unknown OSM (node|way) id|not consecutive on a road": "OSM ids that are not on the map",
    r"unknown edge ids": "edge ids beyond the graph's",
    r"no barrier within": "no barrier near the point",
    # the clock
    r"is already past": "an expires_at before now",
    r"ahead: is the year right": "a starts_at more than 5 years from now",
    # two values compared
    r"before it starts": "a validity window ending after it starts",
    r"after the change starts": "a validity window of at most 5 years",
    r"is not closed": "a ring's last position repeating its first",
    r"invalid (Multi)?(Point|LineString|Polygon): ": "a line or polygon that does not cross "
                                                     "itself, of distinct positions",
    r"with west <= east and south <= north": "a bounding box's west <= east, south <= north",
    # the state
    r"already exists": "an entry id not taken yet",
    r"Idempotency-Key was already used": "an Idempotency-Key not used yet for another request",
}
_UNSTATABLE = re.compile("|".join(UNSTATABLE))


def _unstatable(response: Any, case: Any) -> bool:
    """The answer refuses the request for rules of :data:`UNSTATABLE` only, or (OSRM) for a
    coordinate off the map's roads, or for a polyline decoding out of WGS84 ranges (a running
    sum of deltas: no pattern bounds it)."""
    try:
        body = response.json()
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    if response.status_code == 400 and "code" in body:  # OSRM's errors
        polyline = str(case.path_parameters.get("coordinates", "")).startswith("polyline")
        return body["code"] == "NoSegment" or (polyline and body.get("message") in (
            "Invalid coordinate value.", "Coordinates are invalid"))
    if response.status_code != 422:
        return False
    errors = [e.get("msg") if isinstance(e, dict) else e
              for e in body.get("errors") or [body.get("detail")]]
    return all(isinstance(e, str) and _UNSTATABLE.search(e) for e in errors)


def valid_input_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis' ``positive_data_acceptance``, but for the rules no schema can state
    (:func:`_unstatable`): a refusal that says so is the service's answer to a valid
    request."""
    if _unstatable(response, case):
        return None
    return positive_data_acceptance(ctx, response, case)


#: operation label -> (a refusal, the defect it shows): requests valid by the document that
#: get this refusal (a 422 whose ``detail`` matches) are that operation's known failure: its
#: acceptance test is an xfail naming the defect while the refusal shows up, a failure for
#: any other refusal, and a failure once the defect no longer shows (delete the entry).
KNOWN: dict[str, tuple[str, str]] = {
    "POST /v1/scenarios/runs": (
        r"^invalid scenario", "a scenario document (gyrophare-scenario/1) is declared as an "
        "object: its format is engine/replay/scenario.py's ScenarioModel, outside the API, "
        "and holds rules no JSON Schema states (every event inside [start, start + "
        "duration], available beds <= baseline, unique station ids); a valid one starts a "
        "real replay in the background (map loaded or downloaded). 'Exactly one of scenario "
        "or name' is declared (oneOf)"),
}


@pytest.mark.parametrize("label", OPERATIONS)
def test_valid_input_is_accepted(schema: Any, label: str) -> None:
    """Requests valid by the document are accepted (2xx, or 401/403/404/409/429), or refused
    for a rule no schema can state (:data:`UNSTATABLE`)."""
    known = KNOWN.get(label)
    seen: list[str] = []

    def accepted(ctx: Any, response: Any, case: Any) -> bool | None:
        if known and response.status_code == 422 and re.search(
                known[0], str(response.json().get("detail"))):
            seen.append(response.text)
            return None
        return valid_input_accepted(ctx, response, case)

    _run(schema, label, [GenerationMode.POSITIVE], checks=[accepted])
    if known:
        assert seen, f"{label}: its known defect no longer shows: delete it from KNOWN"
        pytest.xfail(known[1])


@pytest.mark.parametrize("label", OPERATIONS)
def test_documented_examples_work(schema: Any, label: str) -> None:
    """The document's own examples (real Monaco points, shipped scenario names), the rest of
    the request generated: every check, valid-input acceptance included."""
    _run(schema, label, [], examples=True, additional_checks=[valid_input_accepted],
         excluded_checks=[positive_data_acceptance])
