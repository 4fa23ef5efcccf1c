"""The OpenAPI 3.1 description of the dialer routes (``POST /v1/decide``, ``POST /v1/decide/batch``): path
items and component schemas, for the gateway's OpenAPI document to merge (``PATHS`` into ``paths``,
``SCHEMAS`` into ``components.schemas``, ``SECURITY_SCHEMES`` into ``components.securitySchemes``)."""

from __future__ import annotations

from typing import Any, Final

from gateway.policy.decision import Basis, Reason, Verdict
from gateway.web.dialer import MAX_BATCH

_REF = "#/components/schemas/"

SECURITY_SCHEMES: Final[dict[str, Any]] = {
    "dialerToken": {"type": "http", "scheme": "bearer",
                    "description": "A dialer's token, one of [web] dialer_tokens_file (not the admin token)."},
}

_CALL: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["number", "campaign"],
    "properties": {
        "number": {"type": "string", "maxLength": 32, "pattern": r"^\+?[0-9 .()/\-]+$",
                   "description": "The number as dialled (national or international form).",
                   "examples": ["0612345678"]},
        "campaign": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$",
                     "description": "A campaign of the config."},
        "caller_id": {"type": "string", "maxLength": 32, "pattern": r"^\+?[0-9 .()/\-]+$",
                      "description": "The number presented to the callee (default: the campaign's caller_id)."},
    },
}

_DECISION: dict[str, Any] = {
    "type": "object",
    "description": "The `dnc-gateway check --json` object.",
    "required": ["verdict", "reason", "would_block", "number", "rule", "lists"],
    "properties": {
        "verdict": {"type": "string", "enum": [str(v) for v in Verdict]},
        "reason": {"type": ["string", "null"], "enum": [*(str(r) for r in Reason), None]},
        "would_block": {"type": "boolean", "description": "Blocked by the rules (in monitor mode: allowed all "
                                                          "the same)."},
        "number": {"type": "string", "description": "E.164, or the short number dialled, or \"\" when invalid."},
        "rule": {"type": "string"},
        "lists": {"type": "object", "additionalProperties": {"type": "string"},
                  "description": "Lists consulted: name -> version."},
        "campaign": {"type": "string"},
        "mode": {"type": "string", "enum": ["enforce", "monitor"]},
        "regime": {"type": "string"},
        "detail": {"type": "string"},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "basis": {"type": ["string", "null"], "enum": [*(str(b) for b in Basis), None]},
        "jurisdiction": {"type": ["string", "null"]},
    },
}

SCHEMAS: Final[dict[str, Any]] = {
    "DialerCall": _CALL,
    "Decision": _DECISION,
    "DialerDecision": {"allOf": [{"$ref": _REF + "Decision"}, {
        "type": "object", "required": ["decision_id"],
        "properties": {"decision_id": {"type": "string", "description": "The audit record's key."}}}]},
    "DialerBatch": {"type": "object", "additionalProperties": False, "required": ["calls"], "properties": {
        "calls": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH, "items": {"$ref": _REF + "DialerCall"}}}},
    "DialerBatchResult": {"type": "object", "required": ["count", "results"], "properties": {
        "count": {"type": "integer"}, "results": {"type": "array", "items": {"$ref": _REF + "Decision"}}}},
    "DialerError": {"type": "object", "required": ["error"], "properties": {
        "error": {"type": "string"}, "field": {"type": "string"}}},
}

_ERRORS: dict[str, Any] = {
    "400": {"description": "A bad body (the message names the field).",
            "content": {"application/json": {"schema": {"$ref": _REF + "DialerError"}}}},
    "401": {"description": "No bearer token.",
            "content": {"application/json": {"schema": {"$ref": _REF + "DialerError"}}}},
    "403": {"description": "Not a dialer token, or no dialer token configured.",
            "content": {"application/json": {"schema": {"$ref": _REF + "DialerError"}}}},
}

PATHS: Final[dict[str, Any]] = {
    "/v1/decide": {"post": {
        "operationId": "decide",
        "summary": "Decide one call a dialer is about to place: counted as an attempt and audited",
        "description": "Decided exactly as FastAGI's check route: the attempt counted, the decision audited "
                       "(an ALLOW is answered once its record is durable). BLOCK with state_unavailable or "
                       "audit_unavailable: the gateway could not decide, do not place the call.",
        "tags": ["dialer"],
        "security": [{"dialerToken": []}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": _REF + "DialerCall"}}}},
        "responses": {"200": {"description": "The decision (whatever the verdict).", "content": {
            "application/json": {"schema": {"$ref": _REF + "DialerDecision"}}}}, **_ERRORS},
    }},
    "/v1/decide/batch": {"post": {
        "operationId": "decideBatch",
        "summary": "Decide a dialer's hopper without counting or auditing",
        "description": f"At most {MAX_BATCH} calls; the results in the same order. Nothing is counted or "
                       "audited: ask /v1/decide again when the call is placed.",
        "tags": ["dialer"],
        "security": [{"dialerToken": []}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "$ref": _REF + "DialerBatch"}}}},
        "responses": {"200": {"description": "One decision per call, in order.", "content": {
            "application/json": {"schema": {"$ref": _REF + "DialerBatchResult"}}}}, **_ERRORS},
    }},
}
