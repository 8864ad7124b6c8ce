"""The AWS CLI's global options, and the botocore session and client they configure.

The option set is exactly v1's (plus `yaml` as an output): argparse matches unambiguous
prefixes, so any extra global option would change how an abbreviated option is read.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from monitor.awscompat.errors import CompatParser
from monitor.awscompat.output import OUTPUT_CHOICES
from monitor.redact import redact

if TYPE_CHECKING:
    import botocore.session
    from botocore.client import BaseClient

_DEFAULT_TIMEOUT = 60
_LOG_FORMAT = "%(asctime)s - %(threadName)s - %(name)s - %(levelname)s - %(message)s"
# v1 reads AWS_DEFAULT_OUTPUT and AWS_CA_BUNDLE on top of botocore's own variables.
_SESSION_VARIABLES = {
    "ca_bundle": ("ca_bundle", "AWS_CA_BUNDLE", None, None),
    "output": ("output", "AWS_DEFAULT_OUTPUT", "json", None),
}


def global_parser(command: str, version: str) -> CompatParser:
    parser = CompatParser()
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("--endpoint-url")
    parser.add_argument("--no-verify-ssl", action="store_false", dest="verify_ssl")
    parser.add_argument("--no-paginate", action="store_false", dest="paginate")
    parser.add_argument("--output", choices=list(OUTPUT_CHOICES))
    parser.add_argument("--query")
    parser.add_argument("--profile")
    parser.add_argument("--region")
    parser.add_argument("--color", choices=["on", "off", "auto"], default="auto")
    parser.add_argument("--no-sign-request", action="store_false", dest="sign_request")
    parser.add_argument("--ca-bundle", dest="ca_bundle")
    parser.add_argument("--cli-read-timeout", dest="read_timeout")
    parser.add_argument("--cli-connect-timeout", dest="connect_timeout")
    parser.add_argument("--v2-debug", action="store_true", dest="v2_debug")
    parser.add_argument("--version", action="version", version=version)
    parser.add_argument("command", choices=[command])
    return parser


def resolve(options: argparse.Namespace) -> None:
    """Turn raw global option strings into values, failing as v1 does (exit 255)."""
    if options.query is not None:
        import jmespath

        try:
            options.query = jmespath.compile(options.query)
        except Exception as exc:
            raise ValueError(f"Bad value for --query {options.query}: {exc}") from None
    if options.endpoint_url is not None and not urlparse(options.endpoint_url).scheme:
        raise ValueError(
            f'Bad value for --endpoint-url "{options.endpoint_url}": scheme is missing.  '
            "Must be of the form http://<hostname>/ or https://<hostname>/"
        )
    options.verify_ssl = options.ca_bundle if options.verify_ssl else False
    for name in ("read_timeout", "connect_timeout"):
        raw = getattr(options, name)
        seconds = _DEFAULT_TIMEOUT if raw is None else int(raw)
        setattr(options, name, seconds or None)


def new_session(options: argparse.Namespace) -> botocore.session.Session:
    import botocore.session

    session = botocore.session.Session(session_vars=_SESSION_VARIABLES)
    if options.profile:
        session.set_config_variable("profile", options.profile)
    if options.region:
        session.set_config_variable("region", options.region)
    if options.debug:
        _enable_debug_log()
    _keep_wire_timestamps(session)
    return session


def _keep_wire_timestamps(session: botocore.session.Session) -> None:
    from botocore.exceptions import ProfileNotFound

    try:
        style = session.get_scoped_config().get("cli_timestamp_format") or "wire"
    except ProfileNotFound:
        style = "wire"
    if style in ("wire", "none"):
        parse_timestamp: Any = _unchanged
    elif style == "iso8601":
        parse_timestamp = _iso8601
    else:
        raise ValueError(
            f"Unknown cli_timestamp_format value: {style}, valid values "
            'are "none", "wire" or "iso8601"'
        )
    factory = session.get_component("response_parser_factory")
    factory.set_parser_defaults(timestamp_parser=parse_timestamp, blob_parser=_unchanged)


def _unchanged(value: Any) -> Any:
    return value


def _iso8601(value: str) -> str:
    from botocore.utils import parse_timestamp

    stamp: str = parse_timestamp(value).isoformat()
    return stamp


def new_client(
    session: botocore.session.Session, service: str, options: argparse.Namespace
) -> BaseClient:
    from botocore import UNSIGNED
    from botocore.config import Config

    settings: dict[str, Any] = {
        "read_timeout": options.read_timeout,
        "connect_timeout": options.connect_timeout,
    }
    if not options.sign_request:
        settings["signature_version"] = UNSIGNED
    client = session.create_client(
        service,
        region_name=options.region,
        endpoint_url=options.endpoint_url,
        verify=options.verify_ssl,
        config=Config(**settings),
    )
    if options.debug:
        _redact_credentials(session)
    return client


class _Redactor(logging.Filter):
    """Keeps access keys, secrets, tokens and signatures out of --debug output."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage(), self.secrets, "****"), None
        return True


_REDACTOR = _Redactor()


def _enable_debug_log() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    handler.addFilter(_REDACTOR)
    for name in ("botocore", "urllib3", "monitor.awscompat"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)


def _redact_credentials(session: botocore.session.Session) -> None:
    credentials = session.get_credentials()
    if credentials is None:
        return
    frozen = credentials.get_frozen_credentials()
    _REDACTOR.secrets.extend(
        value for value in (frozen.access_key, frozen.secret_key, frozen.token) if value
    )
