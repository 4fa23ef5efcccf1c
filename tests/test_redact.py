"""URL secrets never leave the process: a list URL's password and query tokens are hidden everywhere."""

from __future__ import annotations

import logging

from gateway.redact import RedactingFormatter, redact_text, redact_url


def test_password_and_query_values_are_hidden_host_and_path_kept() -> None:
    url = "https://bob:s3cret@lists.example/bloctel.csv?token=abc123&v=2#part"
    shown = redact_url(url)
    assert "s3cret" not in shown and "abc123" not in shown
    assert shown == "https://bob:***@lists.example/bloctel.csv?token=***&v=***#part"
    assert redact_url("https://lists.example/x.txt") == "https://lists.example/x.txt"


def test_urls_inside_free_text_and_log_lines_are_redacted() -> None:
    text = "fetch from https://u:pw@h.example/l?sig=XYZ failed: Cannot connect to host h.example:443"
    assert redact_text(text) == ("fetch from https://u:***@h.example/l?sig=*** failed: Cannot connect to host "
                                 "h.example:443")
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "registry: %s", (text,), None)
    assert "pw" not in RedactingFormatter("%(message)s").format(record).replace("***", "")
