"""Admin token check for the API's admin routes (pure: header and token in, verdict out).

The comparison is constant-time (``hmac.compare_digest``) so that response
timing does not leak how much of a guessed token was right. With no token
configured the admin routes are closed (403), never open: an unconfigured
gateway must not accept opt-out deletions or reloads from anyone on the LAN.
"""

from __future__ import annotations

import enum
import hmac


class Access(enum.Enum):
    GRANTED = "granted"
    MISSING = "missing"  # no (or a malformed) Authorization header: 401
    WRONG = "wrong"  # a bearer token that is not the admin token: 403
    DISABLED = "disabled"  # no admin token configured: 403 whatever is sent


def authorize(header: str | None, token: str) -> Access:
    if not token:
        return Access.DISABLED
    if not header:
        return Access.MISSING
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return Access.MISSING
    # backslashreplace: a header with bytes that are not UTF-8 (surrogates once decoded) is a wrong token, not
    # a UnicodeEncodeError.
    if hmac.compare_digest(given.strip().encode("utf-8", "backslashreplace"), token.encode("utf-8")):
        return Access.GRANTED
    return Access.WRONG


def refusal_message(access: Access) -> tuple[int, str]:
    """HTTP status and the sentence for a request that is not granted."""
    if access is Access.MISSING:
        return 401, "admin route: send 'Authorization: Bearer <admin token>'"
    if access is Access.WRONG:
        return 403, "admin route: the token is not the admin token"
    return 403, "admin routes are disabled: set [web] admin_token (or admin_token_file) in the config"
