from __future__ import annotations

import io
import json
import logging
from datetime import datetime

from monitor import logs


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_event_timestamp_level() -> None:
    out = io.StringIO()
    logs.configure("auto", "info", out)  # a StringIO is not a TTY: JSON
    logs.get_logger().info("invalidation_tracked", distribution_id="E1", invalidation_id="I1")
    logs.get_logger().debug("hidden")
    [line] = lines(out)
    assert line["event"] == "invalidation_tracked"
    assert line["level"] == "info"
    assert line["distribution_id"] == "E1"
    stamp = str(line["timestamp"])
    assert stamp.endswith("Z")
    assert datetime.fromisoformat(stamp.replace("Z", "+00:00")).utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_stdlib_loggers_go_through_the_same_pipeline() -> None:
    out = io.StringIO()
    logs.configure("json", "info", out)
    logging.getLogger("botocore.retryhandler").warning("retrying %s", "GetInvalidation")
    [line] = lines(out)
    assert line["event"] == "retrying GetInvalidation"
    assert line["logger"] == "botocore.retryhandler"
    assert line["level"] == "warning"


def test_botocore_debug_is_never_emitted() -> None:
    out = io.StringIO()
    logs.configure("json", "debug", out)
    logging.getLogger("botocore.endpoint").debug("Sending http request: headers")
    assert out.getvalue() == ""


def test_credentials_are_redacted() -> None:
    out = io.StringIO()
    logs.configure("json", "info", out)
    log = logs.get_logger()
    log.info("x", aws_secret_access_key="wJalrXUtnFEMI/K7MDENG", note="key AKIAIOSFODNN7EXAMPLE")
    logging.getLogger("aiohttp.client").warning(
        "headers {'Authorization': 'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/x',"
        " 'X-Amz-Security-Token': 'FQoGZXIvYXdzEJr'}"
    )
    text = out.getvalue()
    for secret in ("wJalrXUtnFEMI", "AKIAIOSFODNN7EXAMPLE", "FQoGZXIvYXdzEJr"):
        assert secret not in text
    assert text.count(logs.REDACTED) >= 3


def test_console_format_is_not_json() -> None:
    out = io.StringIO()
    logs.configure("console", "info", out)
    logs.get_logger().info("monitor_started", version="1")
    assert "monitor_started" in out.getvalue()
    assert not out.getvalue().lstrip().startswith("{")
