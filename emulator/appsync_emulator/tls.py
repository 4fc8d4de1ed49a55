"""A throw-away local certificate authority for ``wss://`` and ``https://`` on loopback.

Amplify JS always connects with ``wss://``, so the emulator can serve
TLS on its single listener.  :class:`LocalCA` makes a CA with ``trustme``, issues a server
certificate for ``127.0.0.1``, ``localhost`` and ``::1`` (plus any extra host names), and
writes the CA certificate to a PEM file that clients trust (``ca_cert_path``;
``NODE_EXTRA_CA_CERTS`` for Node, ``ssl.create_default_context(cafile=...)`` for Python).
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
from collections.abc import Iterable
from pathlib import Path

import trustme

__all__ = ["LocalCA", "DEFAULT_HOSTS"]

DEFAULT_HOSTS = ("127.0.0.1", "localhost", "::1")


class LocalCA:
    """A local CA and one server certificate, with the CA PEM written to disk.

    Args:
        hosts: extra names or addresses the server certificate must cover.
        directory: where to write ``ca.pem``; a private temporary directory (removed by
            :meth:`cleanup`) when ``None``.
    """

    def __init__(self, hosts: Iterable[str] = (), *, directory: str | Path | None = None) -> None:
        names = list(DEFAULT_HOSTS)
        for host in hosts:
            if host and host not in names and host not in ("0.0.0.0", "::"):
                names.append(host)
        self.hosts: tuple[str, ...] = tuple(names)
        self._ca = trustme.CA(organization_name="appsync-emulator local CA")
        self._cert = self._ca.issue_cert(*self.hosts)
        self._owns_dir = directory is None
        self.directory = Path(
            tempfile.mkdtemp(prefix="appsync-emulator-tls-") if directory is None else directory
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ca_cert_path = self.directory / "ca.pem"
        self.ca_cert_path.write_bytes(self._ca.cert_pem.bytes())

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate in PEM form."""
        return self._ca.cert_pem.bytes()

    def server_context(self) -> ssl.SSLContext:
        """A server-side context with the issued certificate; TLS 1.2 or newer."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self._cert.configure_cert(ctx)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """A client-side context that trusts this CA (and only it)."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self._ca.configure_trust(ctx)
        return ctx

    def cleanup(self) -> None:
        """Remove the CA file (and the temporary directory when this object made it)."""
        if self._owns_dir:
            shutil.rmtree(self.directory, ignore_errors=True)
        else:
            self.ca_cert_path.unlink(missing_ok=True)
