"""TLS for the HTTP endpoint: the server context `http.tls` names, checked up front so
that a file that will not do is a config error (exit 78) naming its key."""

from __future__ import annotations

import ssl

from monitor.config import ConfigError, TlsConfig


def tls_context(settings: TlsConfig | None) -> ssl.SSLContext | None:
    """The server's TLS context, if any; ConfigError naming the key when a file will not do."""
    if settings is None:
        return None
    for key, path in (("cert_file", settings.cert_file), ("key_file", settings.key_file)):
        try:
            with open(path, "rb"):
                pass
        except OSError as error:
            raise ConfigError(f"http.tls.{key}: cannot read {path}: {error.strerror}") from None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.cert_file, settings.key_file)
    except ssl.SSLError as error:
        raise ConfigError(
            f"http.tls: {settings.cert_file} and {settings.key_file} are not a PEM certificate"
            f" and its private key ({error.reason or error})"
        ) from None
    return context
