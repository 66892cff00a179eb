"""Keep the OpenAPI document honest: every error a route can answer is declared, with
the shape it has (``tests/security/test_schemathesis.py`` holds the routes to it).

``declare_problems`` reads each route of a router (its authentication dependency, its
parameters, its body) and adds the answers that follow from them, so a new route is
documented the moment it is written; a route adds what only it can answer (a 409 from an
Idempotency-Key, a 429 from a rule, a 502 from Daraja) in its own ``responses=``.
Call it on a router before it is included: FastAPI copies ``responses`` at inclusion.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIRouter

from pesaswitch.errors import PROBLEM_JSON

# RFC 9457 problem details as errors.py renders them; extra members (errors, addresses,
# retry hints) may follow.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "description": "Stable error code"},
        "detail": {"type": "string"},
    },
    "additionalProperties": True,
}
# A dialect's errors come in its vendor's own JSON shape (compat/*.py render them).
VENDOR_ERROR_SCHEMA: dict[str, Any] = {"type": "object", "title": "VendorError"}

DESCRIPTIONS = {
    400: "The body is not valid JSON",
    401: "Missing, invalid or revoked API key",
    429: "Refused for now (rate limit, abuse rule or key guessing); see Retry-After",
    403: "A public (read-only) key on a write route",
    404: "No such object on this account",
    409: "Conflict (e.g. an Idempotency-Key still in flight)",
    413: "The body is too large",
    422: "Invalid parameters or body",
    502: "M-Pesa answered with an error",
    503: "M-Pesa is not reachable",
}

Responses = dict[int | str, dict[str, Any]]


def problem_responses(
    *statuses: int, media_type: str = PROBLEM_JSON, schema: dict[str, Any] = PROBLEM_SCHEMA
) -> Responses:
    return {
        status: {
            "description": DESCRIPTIONS.get(status, "Problem details (RFC 9457)"),
            "content": {media_type: {"schema": schema}},
        }
        for status in statuses
    }


def vendor_responses(*statuses: int) -> Responses:
    """A dialect route's own error answers, in its vendor's shape."""
    return problem_responses(*statuses, media_type="application/json", schema=VENDOR_ERROR_SCHEMA)


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def route_problems(
    route: APIRoute, *, auth: Collection[Callable[..., Any]],
    write: Collection[Callable[..., Any]], always: Collection[int] = (),
) -> set[int]:  # fmt: skip
    """The error statuses that follow from what the route takes."""
    dependant = route.dependant
    calls = set(_calls(dependant))
    statuses: set[int] = set()
    if calls & set(auth):
        statuses |= {401, 429, *always}  # 429: key guessing (accounts/throttle.py)
    if calls & set(write):
        statuses.add(403)
    params = [
        *dependant.query_params, *dependant.path_params, *dependant.header_params,
        *dependant.cookie_params, *dependant.body_params,
    ]  # fmt: skip
    for dependency in dependant.dependencies:
        params += [*dependency.query_params, *dependency.header_params]
    if params:
        statuses.add(422)
    if dependant.path_params:
        statuses.add(404)
    if route.body_field is not None:
        statuses |= {400, 413}
    return statuses


def declare_problems(
    router: APIRouter, *, auth: Collection[Callable[..., Any]],
    write: Collection[Callable[..., Any]] = (), always: Collection[int] = (),
    media_type: str = PROBLEM_JSON, schema: dict[str, Any] = PROBLEM_SCHEMA,
) -> None:  # fmt: skip
    """Add the derived error answers to every route of ``router`` (kept where declared).
    ``always``: statuses every authenticated route can answer (a dialect's rate limit)."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        statuses = route_problems(route, auth=auth, write=write, always=always)
        for status, response in problem_responses(
            *sorted(statuses), media_type=media_type, schema=schema
        ).items():
            route.responses.setdefault(status, response)


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``{anyOf: [X, {type: null}], title}`` as ``{**X, title}``: left out is how a URL or
    a header says "none", and ``?q=null`` is the four-letter string."""
    options = schema.get("anyOf")
    if not isinstance(options, list):
        return schema
    kept = [option for option in options if option != {"type": "null"}]
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    if rest.get("default", ...) is None:
        del rest["default"]
    if len(kept) == 1:
        return {**kept[0], **rest}
    return {"anyOf": kept, **rest}


def parameters_without_null(app: FastAPI) -> None:
    """Document optional query, header, path and cookie parameters as what they carry.

    FastAPI writes ``q: str | None = None`` as ``anyOf: [string, null]``, but a query
    string, a header or a path has no null: a client told it may send null can only
    send the text "null", which the route reads as a string (schemathesis did exactly
    that). An optional parameter is documented as not required instead."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    if not isinstance(operation, dict):
                        continue
                    for parameter in operation.get("parameters", ()):
                        parameter["schema"] = _without_null(parameter.get("schema", {}))
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
