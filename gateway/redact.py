"""Secrets out of everything the gateway shows: a URL's password and its query tokens.

A list URL may carry credentials (``https://user:secret@host/list.csv``) or a token in its query
(``?token=…``, ``?X-Amz-Signature=…``). Every surface that can show one (``/healthz``, ``/api/summary``, the
live feed and page, the logs, ``config check``, error messages) goes through :func:`redact_text` first.
"""

from __future__ import annotations

import logging
import re

__all__ = ["HIDDEN", "RedactingFormatter", "redact_text", "redact_url"]

HIDDEN = "***"

# scheme://userinfo@ : everything between "//" and "@" (no "/", "@" or space inside) is the user info.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^/@\s:]*)(?::[^/@\s]*)?@")
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")


def _user(m: re.Match[str]) -> str:
    # The user name stays (it tells the operator which account), the password goes.
    return f"{m.group('scheme')}{m.group('user')}:{HIDDEN}@" if m.group(0).count(":") > 1 else \
        f"{m.group('scheme')}{HIDDEN}@"


def redact_url(url: str) -> str:
    """``url`` with its password and query values replaced by ``***`` (scheme, host, path kept)."""
    out = _USERINFO.sub(_user, url, count=1)
    head, sep, query = out.partition("?")
    if not sep:
        return out
    query, hsep, fragment = query.partition("#")
    parts = [(p.split("=", 1)[0] + "=" + HIDDEN) if "=" in p else p for p in re.split(r"[&;]", query)]
    return head + "?" + "&".join(parts) + (hsep + fragment if hsep else "")


def redact_text(text: str) -> str:
    """Every URL in free text (an error message, a log line) redacted as by :func:`redact_url`."""
    if "://" not in text:
        return text
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


class RedactingFormatter(logging.Formatter):
    """A log formatter that redacts URL secrets in every line, whichever module logged it (a library's error
    text may quote the URL it failed to fetch)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))
