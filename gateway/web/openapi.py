"""The OpenAPI 3.1 document of the HTTP API, served at ``GET /api/openapi.json``.

Every route is described here; the test suite fuzzes the API from this document (schemathesis: no 5xx, every
answer matching its schema). Another module adds its routes with :func:`register` (a path fragment merged into
the document), so the description of a route lives beside its handler's package.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from gateway import __version__
from gateway.web import openapi_dialer

_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
_ANY_OBJECT: dict[str, Any] = {"type": "object"}


def _json(schema: Mapping[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": dict(schema)}}}


_ERRORS = {
    "400": _json(_ERROR, "bad request (the field and why)"),
}
_ADMIN_ERRORS = {
    **_ERRORS,
    "401": _json(_ERROR, "no or wrong admin token"),
    "403": _json(_ERROR, "admin routes disabled (no admin token configured)"),
}
_ADMIN: list[dict[str, list[str]]] = [{"bearer": []}]
_STR = {"type": "string"}


def _query(name: str, required: bool = False, description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": _STR, "description": description}


def _body(properties: Mapping[str, Any], required: list[str]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "properties": dict(properties), "required": required, "additionalProperties": False}}}}


PATHS: dict[str, Any] = {
    "/healthz": {"get": {"summary": "health: ok, degraded (a reload refused) or down (a list not in service)",
                         "responses": {"200": _json(_ANY_OBJECT, "serving"),
                                       "503": _json(_ANY_OBJECT, "a configured list has no version in service")}}},
    "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {
        "200": {"description": "text exposition", "content": {"text/plain": {"schema": _STR}}},
        "404": _json(_ERROR, "metrics not enabled")}}},
    "/api/openapi.json": {"get": {"summary": "this document", "responses": {"200": _json(_ANY_OBJECT, "OpenAPI")}}},
    "/api/check": {"get": {
        "summary": "decide one call without placing it (dry run: nothing counted, nothing audited)",
        "parameters": [_query("number", True, "as dialled"), _query("campaign", True),
                       _query("at", False, "ISO-8601 with offset"), _query("caller_id")],
        "responses": {"200": _json({"type": "object", "required": ["verdict", "reason"], "properties": {
            "verdict": {"enum": ["ALLOW", "BLOCK"]}, "reason": {"type": ["string", "null"]}}}, "the decision"),
            **_ERRORS, "503": _json(_ERROR, "a store the decision needs is unavailable")}}},
    "/api/summary": {"get": {"summary": "the live page's counters", "responses": {
        "200": _json(_ANY_OBJECT, "counters")}}},
    "/api/refusals": {"post": {"summary": "record a refusal", "security": _ADMIN,
                               "requestBody": _body({"number": _STR, "campaign": _STR, "at": _STR}, ["number"]),
                               "responses": {"201": _json(_ANY_OBJECT, "recorded"), **_ADMIN_ERRORS,
                                             "503": _json(_ERROR, "store unavailable")}}},
    "/api/optouts": {"post": {"summary": "record an opt-out", "security": _ADMIN,
                              "requestBody": _body({"number": _STR, "campaign": _STR, "at": _STR}, ["number"]),
                              "responses": {"201": _json(_ANY_OBJECT, "recorded"), **_ADMIN_ERRORS,
                                            "503": _json(_ERROR, "store unavailable")}}},
    "/api/consents": {"post": {"summary": "record a consent with its proof", "security": _ADMIN,
                               "requestBody": _body({"number": _STR, "source": _STR, "evidence": _STR,
                                                     "wording_version": _STR, "channel": _STR, "at": _STR},
                                                    ["number", "source"]),
                               "responses": {"201": _json(_ANY_OBJECT, "recorded"), **_ADMIN_ERRORS,
                                             "503": _json(_ERROR, "store unavailable")}}},
    "/api/registry/reload": {"post": {"summary": "reload lists from their files", "security": _ADMIN,
                                      "responses": {"200": _json(_ANY_OBJECT, "what loaded and what failed"),
                                                    **_ADMIN_ERRORS}}},
    "/api/registry/accept": {"post": {
        "summary": "put in service the version the shrink guard held back", "security": _ADMIN,
        "requestBody": _body({"list": _STR}, ["list"]),
        "responses": {"200": _json(_ANY_OBJECT, "accepted"), "409": _json(_ERROR, "nothing held back"),
                      **_ADMIN_ERRORS}}},
    "/api/reload": {"post": {
        "summary": "what SIGHUP does (config, then lists), answered once done", "security": _ADMIN,
        "responses": {"200": _json(_ANY_OBJECT, "all applied"), "409": _json(_ANY_OBJECT, "something refused"),
                      "503": _json(_ERROR, "not a running gateway"), **_ADMIN_ERRORS}}},
    "/api/audit": {"get": {"summary": "query the audit trail", "security": _ADMIN,
                           "parameters": [_query("number"), _query("campaign"), _query("since"), _query("until"),
                                          _query("limit")],
                           "responses": {"200": _json(_ANY_OBJECT, "records"), **_ADMIN_ERRORS,
                                         "503": _json(_ERROR, "no audit log configured or unreadable")}}},
    "/api/proof": {"get": {"summary": "the proof dossier of one number", "security": _ADMIN,
                           "parameters": [_query("number", True), _query("at"), _query("format")],
                           "responses": {"200": {"description": "the dossier (JSON or HTML)"}, **_ADMIN_ERRORS,
                                         "503": _json(_ERROR, "a store unavailable")}}},
}

_extra: dict[str, Any] = {}


def merge_paths(*fragments: Mapping[str, Any]) -> dict[str, Any]:
    """Path fragments merged into one ``paths`` object (methods of one path from several fragments join)."""
    out: dict[str, Any] = {}
    for fragment in fragments:
        for path, methods in fragment.items():
            out.setdefault(path, {}).update(copy.deepcopy(dict(methods)))
    return out


def register(fragment: Mapping[str, Any]) -> None:
    """Add routes described elsewhere (e.g. ``POST /v1/decide``) to the served document."""
    _extra.update(merge_paths(_extra, fragment))


def document(*fragments: Mapping[str, Any]) -> dict[str, Any]:
    """The whole document: these routes, the registered ones and ``fragments``."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "dnc-gateway", "version": __version__},
        "paths": merge_paths(PATHS, openapi_dialer.PATHS, _extra, *fragments),
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                           **copy.deepcopy(openapi_dialer.SECURITY_SCHEMES)},
                       "schemas": copy.deepcopy(openapi_dialer.SCHEMAS)},
    }
