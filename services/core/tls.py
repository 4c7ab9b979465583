"""TLS for connections a worker opens to a peer such as an SMSC (issue 13 item 5).

Operators reach SMSCs through VPNs or over TLS (Kannel's `use-ssl`, an SMSC behind stunnel).
A connection with `tls: true` verifies the peer's certificate against the system's trusted
CAs or `tls_ca` (a PEM file), checks that it names `host`, and sends `host` as SNI.
`tls_verify: false` turns both checks off, for a test SMSC with a self-signed certificate:
the traffic is encrypted but the peer is not authenticated.
"""

from __future__ import annotations

import ssl


class TlsConfigError(ValueError):
    """The TLS settings of a connection cannot be used (e.g. `tls_ca` is not a readable PEM file)."""


def client_context(tls_ca: str | None = None, tls_verify: bool = True) -> ssl.SSLContext:
    """An SSLContext for connecting to a server; raises TlsConfigError naming the problem."""
    try:
        context = ssl.create_default_context(cafile=tls_ca) if tls_ca else ssl.create_default_context()
    except FileNotFoundError:
        raise TlsConfigError(f"tls_ca {tls_ca}: no such file") from None
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"tls_ca {tls_ca}: not a readable PEM CA file ({exc})") from None
    if not tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def describe(exc: BaseException) -> str:
    """One line for a failed TLS handshake, e.g. 'TLS: certificate verify failed: unable to get
    local issuer certificate' (what an operator needs to fix tls_ca or the SMSC's certificate)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    return str(exc) or type(exc).__name__
