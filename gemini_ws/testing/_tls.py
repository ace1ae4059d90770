"""A throwaway certificate authority for the fake server's ``wss://`` mode (needs ``trustme``)."""

from __future__ import annotations

import ssl

__all__ = ["TestCertificates", "make_certificates"]


class TestCertificates:
    """A fresh CA and a server certificate for 127.0.0.1, ::1 and localhost."""

    def __init__(self, ca_pem: bytes, server_context: ssl.SSLContext) -> None:
        self.ca_pem = ca_pem
        self.server_context = server_context

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only this CA."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        ctx.load_verify_locations(cadata=self.ca_pem.decode("ascii"))
        return ctx


def make_certificates() -> TestCertificates:
    """Issue a throwaway CA and server certificate (in memory; nothing touches the disk)."""
    try:
        import trustme
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "the fake server's TLS mode needs trustme: pip install 'gemini-ws[test]'"
        ) from exc
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "::1", "localhost")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    return TestCertificates(ca.cert_pem.bytes(), server_context)
