"""AWS_IAM authorization: SigV4 with botocore over a virtual ``POST /event`` request.

Each operation signs a request that is never sent::

    POST https://<HTTP host>/event
    accept: application/json, text/javascript
    content-encoding: amz-1.0
    content-type: application/json; charset=UTF-8
    host: <HTTP host>

    {}                                         connect, unsubscribe
    {"channel":"<channel>"}                    subscribe
    {"channel":"<channel>","events":[…]}       publish

with service ``appsync``, and the resulting headers are the authorization map.  The same
map is valid as the real headers of an HTTP ``POST /event`` whose body is the publish body.

The signing is botocore's (:class:`botocore.auth.SigV4Auth`); only the clock is injected,
so :func:`sign_request` is a pure function of its arguments.
"""

from __future__ import annotations

import asyncio
import re
import threading
from datetime import UTC, datetime
from typing import Final, Protocol, runtime_checkable

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials
from botocore.session import get_session

from ..endpoints import region_from_host
from ..errors import AppSyncEventsError, ConfigurationError, CredentialsError
from ..protocol.signing import (
    SIGNING_HEADERS,
    SIGNING_METHOD,
    SIGNING_PATH,
    SIGNING_SERVICE,
    signing_body,
)
from .base import (
    AuthorizeRequest,
    AuthorizeResult,
    Operation,
    amz_date,
    endpoint_host,
    request_host,
)

__all__ = ["IAM", "AnyCredentials", "CredentialSource", "request_body", "sign_request"]

AnyCredentials = Credentials | ReadOnlyCredentials
"""botocore credentials: static, refreshable (a subclass of ``Credentials``) or frozen."""


@runtime_checkable
class CredentialSource(Protocol):
    """A ``botocore.session.Session`` or ``boto3.Session``: anything with ``get_credentials()``."""

    def get_credentials(self) -> Credentials | None:
        """Resolve the credential chain (may block: file reads, network)."""
        ...


_REGION: Final = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class _SigV4AtTime(SigV4Auth):
    """botocore's SigV4 signer, with the timestamp given instead of read from the clock.

    ``SigV4Auth.add_auth`` reads ``datetime.now()`` itself.  This ``add_auth`` performs the
    same steps (botocore/auth.py ``SigV4Auth.add_auth``) with an injected timestamp, through
    ``SigV4Auth``'s public methods: the canonical request, string to sign, key derivation
    and signature are all botocore's.  It expects a fresh request (no ``Authorization``,
    ``Date`` or ``X-Amz-*`` headers yet).  ``tests/authorizer/test_iam.py`` checks that its
    output equals plain ``SigV4Auth.add_auth`` under a frozen clock, and AWS's
    ``get-vanilla`` test vector.
    """

    def __init__(
        self, credentials: AnyCredentials, service: str, region: str, timestamp: str
    ) -> None:
        super().__init__(credentials, service, region)
        self._timestamp = timestamp

    def add_auth(self, request: AWSRequest) -> None:
        request.context["timestamp"] = self._timestamp
        request.headers["X-Amz-Date"] = self._timestamp
        if self.credentials.token:
            request.headers["X-Amz-Security-Token"] = self.credentials.token
        canonical_request = self.canonical_request(request)
        string_to_sign = self.string_to_sign(request, canonical_request)
        signature = self.signature(string_to_sign, request)
        signed = self.signed_headers(self.headers_to_sign(request))
        request.headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.scope(request)}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )


def _frozen(credentials: AnyCredentials) -> ReadOnlyCredentials:
    """Snapshot ``credentials`` and check that there is something to sign with."""
    if isinstance(credentials, Credentials):
        credentials = credentials.get_frozen_credentials()
    elif not isinstance(credentials, ReadOnlyCredentials):
        raise ConfigurationError(
            "credentials must be botocore Credentials or ReadOnlyCredentials, "
            f"got {type(credentials).__name__}"
        )
    if not credentials.access_key or not credentials.secret_key:
        raise CredentialsError("the AWS credentials have no access key or no secret key")
    return credentials


def sign_request(
    *, credentials: AnyCredentials, region: str, host: str, body: str, now: datetime
) -> dict[str, str]:
    """Sign the virtual ``POST https://<host>/event`` carrying ``body``.

    Pure: no I/O and no clock (``now`` is the signing time).  Pass frozen credentials
    (``ReadOnlyCredentials``) from async code: refreshable ones are frozen here, which may
    block while they refresh.

    Args:
        credentials: what to sign with.
        region: the API's region, e.g. ``us-east-1`` (part of the credential scope).
        host: the HTTP endpoint's host, with a non-default port.
        body: the exact body, e.g. :func:`~appsync_events.protocol.signing.signing_body`.
        now: the signing time (naive means UTC).

    Returns:
        ``accept``, ``content-encoding``, ``content-type``, ``host``, ``x-amz-date``,
        ``X-Amz-Security-Token`` (only with a session token) and ``Authorization``, in the
        order AWS's examples show.

    Raises:
        CredentialsError: the credentials lack an access key or secret key.
        ConfigurationError: ``credentials`` is not a botocore credentials object.
    """
    frozen = _frozen(credentials)
    timestamp = amz_date(now)
    request = AWSRequest(
        method=SIGNING_METHOD,
        url=f"https://{host}{SIGNING_PATH}",
        data=body.encode("utf-8"),
        headers={**SIGNING_HEADERS, "host": host},
    )
    _SigV4AtTime(frozen, SIGNING_SERVICE, region, timestamp).add_auth(request)
    headers = {**SIGNING_HEADERS, "host": host, "x-amz-date": timestamp}
    if frozen.token:
        headers["X-Amz-Security-Token"] = frozen.token
    headers["Authorization"] = request.headers["Authorization"]
    return headers


def request_body(request: AuthorizeRequest) -> str:
    """Return the body IAM signs for ``request``: ``{}``, the channel, or channel + events.

    Channel and events are used exactly as given: no normalisation, no escaping.
    """
    match request.operation:
        case Operation.SUBSCRIBE:
            return signing_body(request.channel)
        case Operation.PUBLISH:
            return signing_body(request.channel, request.events)
        case _:
            return signing_body()


class IAM:
    """Authorize with AWS credentials (SigV4).

    Without ``credentials`` or ``session`` it uses botocore's default credential chain:
    environment variables, shared config and credentials files (profiles, SSO, assume
    role, credential processes), container and instance roles.  Credentials are read again
    for every signature, so refreshed temporary credentials are picked up; anything that
    may do I/O (resolving the chain, refreshing) runs in a worker thread via
    :func:`asyncio.to_thread`, never on the event loop.

    Example::

        authz = IAM()                  # region from the AWS host the client connects to
        authz = IAM("eu-central-1")    # custom domain or local server

    Args:
        region: the API's region.  Optional for the standard AWS host, which names it;
            required for custom domains and local servers.
        endpoint: optional: the HTTP endpoint (``https://…/event``; the real-time endpoint
            is accepted too and mapped to its HTTP twin).  Without it the host comes from
            the client (``AuthorizeRequest.host``); with it, a client connected to another
            API fails at connect with :class:`~appsync_events.errors.ConfigurationError`.
        credentials: explicit botocore ``Credentials`` (static or refreshable) or
            ``ReadOnlyCredentials``.
        session: a ``botocore.session.Session`` or ``boto3.Session`` whose credential chain
            to use (e.g. one with a profile set).

    Raises:
        ConfigurationError: a bad endpoint, no region to be found from the endpoint, a
            malformed region, both ``credentials`` and ``session``, or objects of the wrong
            type.
    """

    __slots__ = ("_credentials", "_lock", "_session", "host", "region")

    def __init__(
        self,
        region: str | None = None,
        endpoint: str | None = None,
        *,
        credentials: AnyCredentials | None = None,
        session: CredentialSource | None = None,
    ) -> None:
        self.host: str | None = None if endpoint is None else endpoint_host(endpoint)
        """The host of ``endpoint`` (with a non-default port), or ``None`` without one."""
        if self.host is not None:
            region = _check_region(region, self.host)
        elif region is not None:
            _check_region_format(region)
        self.region: str | None = region
        """The region in the credential scope; ``None`` until known from the client's host."""
        if credentials is not None and session is not None:
            raise ConfigurationError("pass credentials= or session=, not both")
        if credentials is not None and not isinstance(
            credentials, Credentials | ReadOnlyCredentials
        ):
            raise ConfigurationError(
                "credentials must be botocore Credentials or ReadOnlyCredentials, "
                f"got {type(credentials).__name__}"
            )
        if session is not None and not isinstance(session, CredentialSource):
            raise ConfigurationError(
                "session must be a botocore.session.Session or boto3.Session (anything with "
                f"get_credentials()), got {type(session).__name__}"
            )
        self._credentials = credentials
        self._session: CredentialSource | None = session
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        source = (
            "explicit credentials"
            if self._credentials is not None
            else "session"
            if self._session is not None
            else "default chain"
        )
        return f"IAM(region={self.region!r}, host={self.host!r}, credentials=<{source}>)"

    async def frozen_credentials(self) -> ReadOnlyCredentials:
        """Return a snapshot of the current credentials.

        Static credentials are read inline; the credential chain and refreshable
        credentials are read in a worker thread.  Cancelling the caller abandons the wait
        but not the worker thread, which finishes on its own (botocore bounds its network
        calls with its own timeouts); this method has no timeout of its own.

        Raises:
            CredentialsError: no credentials were found, or resolving or refreshing them
                failed (the botocore error is chained).
        """
        creds = self._credentials
        if creds is None or isinstance(creds, RefreshableCredentials):
            return await asyncio.to_thread(self._resolve_blocking)
        return _frozen(creds)

    def _resolve_blocking(self) -> ReadOnlyCredentials:
        """Resolve and freeze the credentials; runs in a worker thread."""
        try:
            creds = self._credentials
            if creds is None:
                creds = self._get_session().get_credentials()
            if creds is None:
                raise CredentialsError(
                    "no AWS credentials found (environment, shared config and credentials "
                    "files, SSO, container and instance roles were tried); configure them "
                    "or pass IAM(credentials=...)"
                )
            return _frozen(creds)
        except AppSyncEventsError:
            raise
        except Exception as exc:
            raise CredentialsError(f"could not obtain AWS credentials: {exc}") from exc

    def _get_session(self) -> CredentialSource:
        with self._lock:
            if self._session is None:
                self._session = get_session()
            return self._session

    async def authorize(self, request: AuthorizeRequest) -> AuthorizeResult:
        """Sign ``request``'s virtual request with the current credentials.

        See :meth:`frozen_credentials` for cancellation: the signing itself is pure CPU and
        runs inline.  No timeout of its own; the client's operation timeout bounds it.

        Raises:
            CredentialsError: no usable credentials.
            ConfigurationError: see :func:`~appsync_events.authorizer.base.request_host`;
                or no region was given and the host does not name one.
        """
        host = request_host(request, self.host)
        region = self.region if self.host is not None else _check_region(self.region, host)
        assert region is not None
        credentials = await self.frozen_credentials()
        return AuthorizeResult(
            sign_request(
                credentials=credentials,
                region=region,
                host=host,
                body=request_body(request),
                now=datetime.now(UTC),
            )
        )


def _check_region(region: str | None, host: str) -> str:
    if region is None:
        found = region_from_host(host)
        if found is None:
            raise ConfigurationError(
                f"cannot tell the AWS region from the host {host!r} (a custom domain or "
                "local server): pass region=, e.g. IAM(region='us-east-1')"
            )
        return found
    _check_region_format(region)
    named = region_from_host(host)
    if named is not None and named != region:
        raise ConfigurationError(
            f"region {region!r} does not match the endpoint's region {named!r} "
            f"(host {host!r}); omit region= or fix it"
        )
    return region


def _check_region_format(region: object) -> None:
    if not isinstance(region, str) or not _REGION.match(region):
        raise ConfigurationError(
            f"region must look like 'us-east-1' (lower-case letters, digits, hyphens), "
            f"got {region!r}"
        )
