from __future__ import annotations

from monitor.outcome import classify


def test_classify() -> None:
    assert classify(200, None) == "ok"
    assert classify(400, "Throttling") == "throttled"
    assert classify(429, None) == "throttled"
    assert classify(404, "NoSuchInvalidation") == "client_error"
    assert classify(503, "ServiceUnavailable") == "server_error"
    assert classify(None, None) == "network_error"
