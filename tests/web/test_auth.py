"""Admin token check: 401 without a token, 403 with a wrong one, closed when no token is configured."""

from __future__ import annotations

import pytest

from gateway.web.auth import Access, authorize, refusal_message


@pytest.mark.parametrize(("header", "expected"), [
    (None, Access.MISSING),
    ("", Access.MISSING),
    ("Bearer", Access.MISSING),
    ("Bearer   ", Access.MISSING),
    ("Basic dXNlcjpwYXNz", Access.MISSING),
    ("Bearer secret-token", Access.GRANTED),
    ("bearer secret-token", Access.GRANTED),
    ("Bearer  secret-token ", Access.GRANTED),
    ("Bearer secret-tokeN", Access.WRONG),
    ("Bearer secret-token-and-more", Access.WRONG),
    ("Bearer sécrèt", Access.WRONG),
])
def test_authorize(header: str | None, expected: Access) -> None:
    assert authorize(header, "secret-token") is expected


def test_no_token_configured_closes_admin_routes() -> None:
    assert authorize("Bearer ", "") is Access.DISABLED
    assert authorize("Bearer anything", "") is Access.DISABLED
    assert authorize(None, "") is Access.DISABLED
    assert refusal_message(Access.DISABLED)[0] == 403


def test_statuses() -> None:
    assert refusal_message(Access.MISSING)[0] == 401
    assert refusal_message(Access.WRONG)[0] == 403
