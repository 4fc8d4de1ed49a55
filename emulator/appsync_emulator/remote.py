"""A running AppSync Events endpoint the fixtures did not start: the *remote target*.

``pytest --appsync-target=URL`` (or the ``appsync_target`` ini option, or the
``APPSYNC_TARGET`` environment variable) points the plugin's fixtures at an endpoint that
is already running: another emulator process (``appsync-emulator --port 8080``) or a real
AWS Event API.  ``appsync_server`` is then a :class:`RemoteTarget` instead of an emulator.

What both kinds of server share is :class:`AppSyncTarget`: the endpoints, the region, the
API key, whether it serves TLS and an SSL context for clients.  Everything else an
emulator has (faults, the recorder and its ``assert_*``/``wait_*``, connections, the token
issuer, its configuration, starting and stopping) is *emulator-only*: reading it on a
:class:`RemoteTarget` calls the ``on_emulator_only`` hook with a reason that names the
member and the target (the plugin's hook skips the test), or raises ``AttributeError``.

How a remote target authorizes comes from the environment (:meth:`RemoteTarget.from_environment`):

``APPSYNC_AUTH``
    ``api_key`` (the default) or ``iam``.
``APPSYNC_API_KEY``
    The API key; required for ``api_key``, optional for ``iam`` (tests that ask for an
    API-key authorizer use it).
``AWS_*`` and the shared AWS config files
    ``iam`` signs with botocore's default credential chain (environment, profiles, SSO,
    container and instance roles).  The region is the one in the URL's host
    (``<prefix>.appsync-api.<region>.amazonaws.com``), else ``AWS_REGION``, else
    ``AWS_DEFAULT_REGION``; a custom domain or local URL needs one of those with ``iam``.
``APPSYNC_CA_FILE``
    A PEM file of extra certificate authorities to trust (an emulator started with
    ``--tls`` names its CA in the ``--ready-file``).

Credentials are never part of a :class:`RemoteTarget`'s ``repr`` or of a skip reason.
"""

from __future__ import annotations

import enum
import os
import socket
import ssl
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, NoReturn, Protocol
from urllib.parse import urlsplit

from appsync_events.endpoints import (
    http_endpoint_from_realtime,
    realtime_endpoint_from_http,
    region_from_host,
)
from appsync_events.errors import ConfigurationError, CredentialsError

from ._plugin_options import TARGET_ENV
from .testing import Authorizers, ServerLike, api_key_authorizer

if TYPE_CHECKING:
    import pytest

    from appsync_events.authorizer import Authorizer

    from .config import EmulatorConfig, IamCredentials
    from .issuer import LocalIssuer

__all__ = [
    "API_KEY_ENV",
    "AUTH_ENV",
    "CA_FILE_ENV",
    "EMULATOR_ONLY",
    "SHARED_MEMBERS",
    "AppSyncTarget",
    "AuthMode",
    "RemoteAuthorizers",
    "RemoteTarget",
    "authorizers_for",
    "default_authorizer",
    "emulator_only_members",
    "marked_server_options",
    "resolve_target",
]

AUTH_ENV: Final = "APPSYNC_AUTH"
"""Environment variable choosing how a remote target authorizes: ``api_key`` or ``iam``."""
API_KEY_ENV: Final = "APPSYNC_API_KEY"
"""Environment variable holding the remote target's API key."""
CA_FILE_ENV: Final = "APPSYNC_CA_FILE"
"""Environment variable naming a PEM file of extra certificate authorities to trust."""
EMULATOR_ONLY: Final = "emulator-only"
"""How every skip reason of an emulator-only test starts (CI counts skips by it)."""
PROBE_TIMEOUT: Final = 5.0
"""Seconds :meth:`RemoteTarget.probe` waits for a TCP connection."""

_EMULATOR_VALUES: Final = frozenset({"", "emulator"})
"""Target values that mean "start emulators as usual"."""

SHARED_MEMBERS: Final = frozenset(
    {"http_endpoint", "realtime_endpoint", "region", "api_key", "tls", "client_ssl_context"}
)
"""The members of :class:`AppSyncTarget`: what tests may use on either kind of server."""

_INSTANCE_MEMBERS: Final = frozenset(
    {"_state", "server", "shutdown_timeout", "start_timeout", "stop_timeout"}
)
"""Attributes emulator hosts set in ``__init__`` (``dir()`` of the class misses them)."""


class AuthMode(enum.StrEnum):
    """How a :class:`RemoteTarget` authorizes the clients the fixtures connect."""

    API_KEY = "api_key"
    IAM = "iam"


class AppSyncTarget(Protocol):
    """What an emulator host and a remote target share: the surface a target-neutral test uses.

    :class:`~appsync_emulator.hosting.EmulatorHost` (both hosts) and :class:`RemoteTarget`
    satisfy it; annotate helpers with it to accept either.
    """

    @property
    def http_endpoint(self) -> str: ...
    @property
    def realtime_endpoint(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def api_key(self) -> str | None: ...
    @property
    def tls(self) -> bool: ...
    def client_ssl_context(self) -> ssl.SSLContext: ...


def resolve_target(
    option: str | None, environ: Mapping[str, str], ini: str
) -> tuple[str, str] | None:
    """Choose the target URL: ``--appsync-target``, then ``APPSYNC_TARGET``, then the ini option.

    The first one set wins, even when it says ``emulator`` (or is empty on the command
    line), which means "start emulators as usual": ``--appsync-target=emulator`` overrides
    an ``APPSYNC_TARGET`` exported in the shell.

    Returns:
        ``(url, where it came from)``, or ``None`` for the local emulator.
    """
    candidates = (
        (option, "--appsync-target"),
        (environ.get(TARGET_ENV) or None, TARGET_ENV),
        (ini or None, "the ini option appsync_target"),
    )
    for value, source in candidates:
        if value is not None:
            url = value.strip()
            return None if url.lower() in _EMULATOR_VALUES else (url, source)
    return None


def emulator_only_members() -> frozenset[str]:
    """Members of the emulator hosts that a :class:`RemoteTarget` does not have.

    Private ones count too (not dunders): a helper that reaches into an emulator host
    (``server._call``) skips on a remote target rather than failing.
    """
    from .hosting import EmulatorHost, EmulatorServer, EmulatorThread

    names = {n for cls in (EmulatorHost, EmulatorServer, EmulatorThread) for n in dir(cls)}
    members = {n for n in names if not n.startswith("__")} | _INSTANCE_MEMBERS
    return frozenset(members - SHARED_MEMBERS)


class RemoteTarget:
    """An AppSync Events endpoint that is already running, seen through :class:`AppSyncTarget`.

    Args:
        url: the HTTP endpoint (``https://<prefix>.appsync-api.<region>.amazonaws.com/event``,
            ``http://127.0.0.1:8080/event``); the real-time URL is accepted too.
        auth: how the default client authorizer (:meth:`authorizer`) signs.
        api_key: the API key (required with ``auth="api_key"``).
        region: the API's region; by default the one the URL's AWS host names, else
            ``us-east-1`` (required with ``auth="iam"`` when the host names none).
        ca_file: a PEM file of extra certificate authorities to trust.
        on_emulator_only: called with a reason when an emulator-only member is read
            (``pytest.skip`` in the plugin); by default ``AttributeError`` is raised.

    Raises:
        ConfigurationError: a bad URL (the message says what is wrong with it), an unknown
            ``auth``, no API key for ``api_key``, no region for ``iam``.
    """

    def __init__(
        self,
        url: str,
        *,
        auth: AuthMode | str = AuthMode.API_KEY,
        api_key: str | None = None,
        region: str | None = None,
        ca_file: str | None = None,
        on_emulator_only: Callable[[str], NoReturn] | None = None,
    ) -> None:
        # realtime_endpoint_from_http validates an HTTP URL as one (a ws:// URL is accepted
        # too), so a wrong scheme is reported against the HTTP endpoint's.
        self._realtime = realtime_endpoint_from_http(url)
        self._http = http_endpoint_from_realtime(self._realtime)
        try:
            self._auth = AuthMode(str(auth).lower())
        except ValueError:
            choices = ", ".join(AuthMode)
            raise ConfigurationError(f"{AUTH_ENV}={auth!r}: expected one of {choices}") from None
        if self._auth is AuthMode.API_KEY and not api_key:
            raise ConfigurationError(
                f"no API key for the target {self._http}: set {API_KEY_ENV} "
                f"(or {AUTH_ENV}=iam to sign with AWS credentials)"
            )
        host = urlsplit(self._http).netloc
        found = region or region_from_host(host)
        if found is None and self._auth is AuthMode.IAM:
            raise ConfigurationError(
                f"{AUTH_ENV}=iam needs the region of {self._http}, which its host does not "
                "name: set AWS_REGION"
            )
        self._region = found or "us-east-1"
        self._api_key = api_key or None
        self._ca_file = ca_file or None
        self._on_emulator_only = on_emulator_only

    @classmethod
    def from_environment(
        cls,
        url: str,
        environ: Mapping[str, str] | None = None,
        *,
        on_emulator_only: Callable[[str], NoReturn] | None = None,
    ) -> RemoteTarget:
        """A target for ``url`` with its auth, key, region and CA from ``environ``.

        ``environ`` defaults to :data:`os.environ`; the variables are listed in this
        module's docstring.

        Raises:
            ConfigurationError: as :class:`RemoteTarget`.
        """
        env = os.environ if environ is None else environ
        api_key = env.get(API_KEY_ENV) or None
        explicit = env.get(AUTH_ENV, "").strip()
        host = urlsplit(url.strip()).netloc
        region = region_from_host(host) or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        return cls(
            url.strip(),
            auth=explicit or AuthMode.API_KEY,
            api_key=api_key,
            region=region or None,
            ca_file=env.get(CA_FILE_ENV) or None,
            on_emulator_only=on_emulator_only,
        )

    # --- the shared surface (AppSyncTarget) ---------------------------------------------

    @property
    def http_endpoint(self) -> str:
        """The HTTP endpoint, ``https://…/event``."""
        return self._http

    @property
    def realtime_endpoint(self) -> str:
        """The real-time endpoint derived from it, ``wss://…/event/realtime``."""
        return self._realtime

    @property
    def region(self) -> str:
        """The API's region (what IAM signatures must name)."""
        return self._region

    @property
    def api_key(self) -> str | None:
        """The API key from the environment, or ``None``."""
        return self._api_key

    @property
    def tls(self) -> bool:
        """Whether the target serves ``https``/``wss``."""
        return self._http.startswith("https:")

    @property
    def auth(self) -> AuthMode:
        """How :meth:`authorizer` signs."""
        return self._auth

    def client_ssl_context(self) -> ssl.SSLContext:
        """The system's default SSL context, plus the ``ca_file`` authorities when given."""
        return ssl.create_default_context(cafile=self._ca_file)

    def authorizer(self) -> Authorizer:
        """A client authorizer for the target: the API key, or IAM with botocore's chain."""
        from appsync_events import authorizer

        if self._auth is AuthMode.IAM:
            return authorizer.IAM(region=self._region, endpoint=self._http)
        return api_key_authorizer(self)

    # --- checks at session start ---------------------------------------------------------

    def check_credentials(self) -> None:
        """With IAM, check that botocore's credential chain finds credentials.

        Resolving the chain may read files and, on AWS compute, query the instance
        metadata service (bounded by botocore's own timeouts).

        Raises:
            CredentialsError: the chain found nothing to sign with, or failed.
        """
        if self._auth is not AuthMode.IAM:
            return
        from botocore.exceptions import BotoCoreError
        from botocore.session import get_session

        try:
            credentials = get_session().get_credentials()
        except BotoCoreError as exc:
            raise CredentialsError(
                f"{AUTH_ENV}=iam, but botocore could not resolve AWS credentials: {exc}"
            ) from None
        if credentials is None:
            raise CredentialsError(
                f"{AUTH_ENV}=iam, but botocore found no AWS credentials (set AWS_PROFILE, or "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
            )

    def probe(self, timeout: float = PROBE_TIMEOUT) -> None:
        """Open (and close) a TCP connection to the target's host and port.

        Raises:
            ConnectionError: the host does not resolve or nothing accepts the connection
                within ``timeout`` seconds.
        """
        parts = urlsplit(self._http)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise ConnectionError(
                f"cannot reach {self._http} (TCP {host}:{port}: {reason})"
            ) from None

    # --- emulator-only members -----------------------------------------------------------

    def emulator_only(self, what: str) -> NoReturn:
        """Report that ``what`` needs the emulator: the hook, else ``AttributeError``."""
        __tracebackhide__ = True  # pytest reports the skip at the caller
        reason = f"{EMULATOR_ONLY}: {what} needs the emulator; the target is {self._http}"
        if self._on_emulator_only is not None:
            self._on_emulator_only(reason)
        raise AttributeError(reason)

    def emulator_only_mark(self, test: str, mark: pytest.Mark) -> NoReturn:
        """Report ``test``, marked ``appsync_emulator_only(reason=...)``, as emulator-only."""
        __tracebackhide__ = True
        why = mark.kwargs.get("reason") or (mark.args[0] if mark.args else "")
        self.emulator_only(f"{test} (marked appsync_emulator_only{': ' if why else ''}{why})")

    def check_server_marks(self, marks: Iterable[pytest.Mark]) -> None:
        """Report a test as emulator-only when its ``appsync`` marks configure the server.

        ``marks`` are given closest first; every keyword but ``client=`` configures the
        emulator, which a remote target cannot be.
        """
        __tracebackhide__ = True
        if options := marked_server_options(marks):
            listed = ", ".join(f"{option}=..." for option in options)
            self.emulator_only(f"@pytest.mark.appsync({listed}) (it configures the server)")

    @property
    def config(self) -> EmulatorConfig:
        """Emulator-only: the remote endpoint's configuration is not known."""
        __tracebackhide__ = True  # pytest reports the skip at the caller
        self.emulator_only("appsync_server.config")

    @property
    def issuer(self) -> LocalIssuer:
        """Emulator-only: the local token issuer."""
        __tracebackhide__ = True  # pytest reports the skip at the caller
        self.emulator_only("appsync_server.issuer")

    def __getattr__(self, name: str) -> Any:
        __tracebackhide__ = True  # pytest reports the skip at the caller
        if name.startswith("_on_emulator_only") or name.startswith("__"):
            raise AttributeError(name)  # during __init__, copy and pickle: no hook yet
        if name in emulator_only_members():
            self.emulator_only(f"appsync_server.{name}")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __repr__(self) -> str:
        return f"<RemoteTarget {self._http} auth={self._auth.value}>"


class RemoteAuthorizers(Authorizers):
    """``appsync_auth`` for a remote target.

    ``api_key()`` uses the target's key, ``iam()`` botocore's credential chain (or the
    credentials given), ``lambda_token()`` works as on the emulator; ``cognito()`` and
    ``oidc()`` mint tokens with the emulator's local issuer, so they are emulator-only.
    """

    server: RemoteTarget

    def __init__(self, server: RemoteTarget) -> None:
        super().__init__(server)

    def api_key(self, key: str | None = None) -> Authorizer:
        if key is None and self.server.api_key is None:
            raise ConfigurationError(
                f"the target {self.server.http_endpoint} has no API key: set {API_KEY_ENV}"
            )
        return super().api_key(key)

    def iam(self, credentials: IamCredentials | None = None) -> Authorizer:
        if credentials is not None:
            return super().iam(credentials)
        from appsync_events import authorizer

        return authorizer.IAM(region=self.server.region, endpoint=self.server.http_endpoint)

    def cognito(self, *, sub: str = "user-1", **mint: Any) -> Authorizer:
        __tracebackhide__ = True  # pytest reports the skip at the caller
        self.server.emulator_only("appsync_auth.cognito() (the local token issuer)")

    def oidc(self, *, sub: str = "user-1", **mint: Any) -> Authorizer:
        __tracebackhide__ = True  # pytest reports the skip at the caller
        self.server.emulator_only("appsync_auth.oidc() (the local token issuer)")


def default_authorizer(server: ServerLike) -> Authorizer:
    """The authorizer client fixtures connect with: the target's own, else the API key."""
    if isinstance(server, RemoteTarget):
        return server.authorizer()
    return api_key_authorizer(server)


def authorizers_for(server: ServerLike) -> Authorizers:
    """``appsync_auth`` for ``server``: :class:`RemoteAuthorizers` for a remote target."""
    if isinstance(server, RemoteTarget):
        return RemoteAuthorizers(server)
    return Authorizers(server)


def marked_server_options(marks: Iterable[pytest.Mark]) -> list[str]:
    """The ``appsync`` mark keywords (closest first) that configure the server, sorted.

    Everything but ``client=`` configures the emulator, which a remote target cannot be.
    """
    from .testing import merge_markers

    return sorted(set(merge_markers(marks)) - {"client"})
