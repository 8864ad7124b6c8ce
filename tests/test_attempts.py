from __future__ import annotations

from monitor.attempts import outcome


def test_outcome() -> None:
    assert outcome(200, None) == "ok"
    assert outcome(400, "Throttling") == "throttled"
    assert outcome(429, None) == "throttled"
    assert outcome(404, "NoSuchInvalidation") == "client_error"
    assert outcome(503, "ServiceUnavailable") == "server_error"
    assert outcome(None, None) == "network_error"
