"""AWS_IAM mode: SigV4 verification of WebSocket maps and HTTP publish.

See docs: protocol.rst, "IAM (SigV4)".

For WebSocket operations the signed request is *virtual* (``POST /event`` with the body
``{}``, ``{"channel":…}`` or ``{"channel":…,"events":[…]}`` rebuilt from the message as
sent, via :func:`appsync_events.protocol.signing.signing_body`).  For HTTP publish it is the
real request: method, path, query, the headers named in ``SignedHeaders`` and the raw body.

The signing arithmetic is botocore's (:class:`botocore.auth.SigV4Auth`'s
``canonical_request``/``string_to_sign``/``signature``), fed with exactly the headers the
client signed; this module only parses, checks the envelope (scope, date, credentials) and
compares in constant time.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from appsync_events.endpoints import http_host_from_realtime, region_from_host
from appsync_events.protocol import codec
from appsync_events.protocol.signing import SIGNING_SERVICE, signing_body

from .. import catalogue
from .._logging import REDACTED, SECRET_HEADERS
from ..catalogue import (
    INVALID_TOKEN_MESSAGE,
    SIGNATURE_MISMATCH_MESSAGE,
    UNAUTHORIZED_MESSAGE,
    bad_request,
    unauthorized_detail,
)
from ..config import AuthType, IamCredentials
from .base import AuthFailure, AuthRequest, Identity, Operation, Transport

__all__ = [
    "ALGORITHM",
    "INVALID_TOKEN_MESSAGE",
    "MAX_SKEW",
    "SIGNATURE_MISMATCH_MESSAGE",
    "IamVerifier",
    "ParsedAuthorization",
    "parse_authorization",
    "redact_canonical_request",
]

log = logging.getLogger("appsync_emulator.verify")

ALGORITHM: Final = "AWS4-HMAC-SHA256"
MAX_SKEW: Final = timedelta(minutes=5)
"""SigV4 requests must be within five minutes of the server's clock, both ways."""
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_AMZ_DATE_RE = re.compile(r"\d{8}T\d{6}Z")
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class ParsedAuthorization:
    """The parts of an ``Authorization: AWS4-HMAC-SHA256 …`` value."""

    access_key_id: str
    date: str
    region: str
    service: str
    terminator: str
    signed_headers: tuple[str, ...]
    signature: str


class _Context:
    """How to phrase failures for one request (connect / WS message / HTTP)."""

    def __init__(self, request: AuthRequest) -> None:
        self.http = request.transport is Transport.HTTP
        self.connect = request.operation is Operation.CONNECT and not self.http

    def bad_request(self, message: str) -> AuthFailure:
        # errorCode 400 on connect (the observed connection_error shows no code, see
        # docs: protocol.rst, "Connection authorization"; 400 is our EMULATOR-CHOICE);
        # HTTP answers 403 as AWS does for signature problems.
        code = 400 if self.connect else None
        detail = bad_request(message, code)
        return AuthFailure([detail], status=403 if self.http else 400)

    def unauthorized(self, message: str) -> AuthFailure:
        detail = unauthorized_detail(message)
        return AuthFailure([detail], status=401)

    def skewed(self, message: str) -> AuthFailure:
        # EMULATOR-CHOICE (docs: emulator-fidelity.rst, "IAM clock skew and signature errors"):
        # UnauthorizedException for WebSocket messages,
        # BadRequestException "Signature expired…" for connect (and, by extension, HTTP).
        if self.connect or self.http:
            return self.bad_request(message)
        return self.unauthorized(message)


def parse_authorization(value: str) -> ParsedAuthorization:
    """Parse a SigV4 ``Authorization`` value.

    Raises:
        ValueError: naming the missing or malformed part (AWS's wording where known).
    """
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise ValueError(
            catalogue.sigv4_unsupported_algorithm(_shown_algorithm(algorithm), ALGORITHM)
        )
    parts: dict[str, str] = {}
    for item in rest.split(","):
        name, eq, val = item.strip().partition("=")
        if not eq:
            raise ValueError(catalogue.sigv4_malformed_component(_shown_component(item.strip())))
        parts[name.strip()] = val.strip()
    for required in ("Credential", "SignedHeaders", "Signature"):
        if not parts.get(required):
            raise ValueError(catalogue.sigv4_missing_parameter(required))
    scope = parts["Credential"].split("/")
    if len(scope) != 5 or not all(scope):
        raise ValueError(catalogue.sigv4_malformed_credential(parts["Credential"]))
    signature = parts["Signature"]
    if not _HEX64.fullmatch(signature):
        raise ValueError(catalogue.SIGV4_MALFORMED_SIGNATURE)
    signed = tuple(parts["SignedHeaders"].split(";"))
    if any(not h or h != h.lower().strip() for h in signed):
        raise ValueError(catalogue.sigv4_malformed_signed_headers(parts["SignedHeaders"]))
    return ParsedAuthorization(
        access_key_id=scope[0],
        date=scope[1],
        region=scope[2],
        service=scope[3],
        terminator=scope[4],
        signed_headers=signed,
        signature=signature,
    )


class _ExactHeadersSigV4(SigV4Auth):
    """botocore's SigV4 over exactly the headers the client signed.

    ``SigV4Auth.headers_to_sign`` drops a few names (``user-agent``, ...) and invents
    ``host`` from the URL; a verifier must instead use the client's ``SignedHeaders``.
    """

    def __init__(self, credentials: Credentials, region: str, headers: HTTPHeaders) -> None:
        super().__init__(credentials, SIGNING_SERVICE, region)
        self._exact_headers = headers

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        return self._exact_headers


@dataclass(frozen=True, slots=True)
class _Expected:
    canonical_request: str
    string_to_sign: str
    signature: str


def _expected(
    creds: IamCredentials,
    region: str,
    auth: ParsedAuthorization,
    headers: HTTPHeaders,
    timestamp: str,
    method: str,
    path: str,
    query: str,
    body: bytes,
) -> _Expected:
    url = "https://appsync-emulator.invalid" + path + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, headers=dict(headers.items()), data=body)
    request.context["timestamp"] = timestamp
    signer = _ExactHeadersSigV4(
        Credentials(creds.access_key_id, creds.secret_access_key, creds.session_token),
        region,
        headers,
    )
    canonical = signer.canonical_request(request)
    sts = signer.string_to_sign(request, canonical)
    return _Expected(canonical, sts, signer.signature(sts, request))


def _normal_host(host: str) -> str:
    """``hostname[:port]`` for comparison: lower case, no default port, no trailing dot."""
    host = host.strip().lower()
    for default in (":443", ":80"):
        if host.endswith(default):
            host = host[: -len(default)]
    return host.rstrip(".")


def _without_port(host: str) -> str:
    """``hostname`` of a normalised ``hostname[:port]`` (IPv6 literals keep their brackets)."""
    if host.startswith("["):
        return host[: host.index("]") + 1] if "]" in host else host
    name, _, port = host.rpartition(":")
    return name if name and port.isdigit() else host


def _is_aws_host(host: str) -> bool:
    return region_from_host(host) is not None


def _mismatch_message(expected: _Expected) -> str:
    return catalogue.sigv4_mismatch(
        redact_canonical_request(expected.canonical_request), expected.string_to_sign
    )


def redact_canonical_request(canonical: str) -> str:
    """The canonical request with the values of secret signed headers hidden.

    AWS's mismatch answer shows the canonical string; ours does too (it is how signers
    are debugged) but never with the session token or any other credential a client chose
    to sign (``x-api-key``, ``authorization``): the answer is logged.  Header lines are
    ``name:value`` with the value's whitespace collapsed, so a value cannot forge a line.
    """
    lines = canonical.split("\n")
    for i, line in enumerate(lines):
        name, colon, _ = line.partition(":")
        if colon and name in SECRET_HEADERS:
            lines[i] = f"{name}:{REDACTED}"
    return "\n".join(lines)


_COMPONENT_NAME = re.compile(r"[A-Za-z]{1,20}")
_ALGORITHM_NAME = re.compile(r"[A-Za-z0-9-]{1,40}")


def _shown_component(item: str) -> str:
    # A malformed component may be a signature (``Signature <hex>``, a bare hex run):
    # name it by its leading word only when that is a known parameter name.
    match = _COMPONENT_NAME.match(item)
    name = match.group() if match else ""
    return f"{name}…" if name in ("Credential", "SignedHeaders", "Signature") else "<redacted>"


def _shown_algorithm(algorithm: str) -> str:
    return algorithm if _ALGORITHM_NAME.fullmatch(algorithm) else "<redacted>"


class IamVerifier:
    """Verifies SigV4 against configured credentials (docs: protocol.rst, "IAM (SigV4)").

    The identity is the one described in docs: protocol.rst, "The identity handlers see".

    Args:
        credentials: the accepted access keys.
        region: the region the credential scope must name.
        strict_aws_escaping: rebuild WebSocket bodies only in the HTML-escaped form that
            AWS is believed to use (reproduces the service's signature failure on ``<``
            and ``>``, docs: protocol.rst, "What the verifier checks"); by default the plain
            ``JSON.stringify`` form is accepted as well.
        custom_domains: ``host`` values a signature may name besides the host the
            request arrived at (AppSync custom domain names, or the AWS host name reached
            through a DNS override), ``hostname[:port]``.

    The signed ``host`` must be this API's HTTP host (see :meth:`_check_host`): a map
    signed consistently for another API, or for the real-time host, is refused with
    ``BadRequestException`` naming the expected host.
    """

    mode = AuthType.AWS_IAM

    def __init__(
        self,
        credentials: Sequence[IamCredentials],
        *,
        region: str,
        strict_aws_escaping: bool = False,
        api_id: str = "emulatorapi0000000000000000",
        account_id: str = "123456789012",
        custom_domains: Sequence[str] = (),
    ) -> None:
        self.credentials = {c.access_key_id: c for c in credentials}
        self.region = region
        self.strict_aws_escaping = strict_aws_escaping
        self.api_arn = f"arn:aws:appsync:{region}:{account_id}:apis/{api_id}"
        self.custom_domains = tuple(_normal_host(h) for h in custom_domains)

    def applies(self, request: AuthRequest) -> bool:
        value = request.header("authorization")
        return isinstance(value, str) and value.lstrip().startswith(ALGORITHM + " ")

    async def verify(self, request: AuthRequest, now: datetime) -> Identity:
        ctx = _Context(request)
        raw = request.header("authorization") or ""
        try:
            auth = parse_authorization(raw)
        except ValueError as exc:
            raise ctx.bad_request(str(exc)) from None
        headers, timestamp = self._check_envelope(ctx, request, auth, now)
        self._check_host(ctx, request, headers["host"])
        creds = self._credentials(ctx, request, auth)
        bodies = self._bodies(request)
        method, path, query = self._target(request)
        expected: list[_Expected] = []
        for body in bodies:
            exp = _expected(creds, self.region, auth, headers, timestamp, method, path, query, body)
            expected.append(exp)
            if not self._payload_hash_ok(headers, body):
                continue
            if hmac.compare_digest(exp.signature.encode(), auth.signature.encode()):
                self._check_policy(ctx, creds, request)
                return self._identity(creds, request)
        self._check_payload_hash(ctx, headers, bodies)
        raise ctx.bad_request(_mismatch_message(expected[0]))

    # --- envelope checks ----------------------------------------------------------------

    def _check_envelope(
        self, ctx: _Context, request: AuthRequest, auth: ParsedAuthorization, now: datetime
    ) -> tuple[HTTPHeaders, str]:
        """Check scope, signed-header set and date; return the signed headers and date."""
        if auth.terminator != "aws4_request":
            raise ctx.bad_request(catalogue.sigv4_wrong_terminator(auth.terminator))
        if auth.service != SIGNING_SERVICE:
            raise ctx.bad_request(catalogue.sigv4_wrong_service(SIGNING_SERVICE))
        if auth.region != self.region:
            raise ctx.bad_request(catalogue.sigv4_wrong_region(auth.region))
        for required in ("host", "x-amz-date"):
            if required not in auth.signed_headers:
                raise ctx.bad_request(catalogue.sigv4_unsigned_required_header(required))
        headers = HTTPHeaders()
        for name in auth.signed_headers:
            value = request.header(name)
            if not isinstance(value, str):
                raise ctx.bad_request(catalogue.sigv4_missing_signed_header(name))
            if not codec.is_frame_text(value):  # EMULATOR-CHOICE: a lone surrogate
                raise ctx.bad_request(catalogue.sigv4_signed_header_not_utf8(name))
            headers[name] = value
        timestamp = headers["x-amz-date"].strip()
        if not _AMZ_DATE_RE.fullmatch(timestamp):
            raise ctx.bad_request(catalogue.sigv4_bad_date_format(timestamp))
        if auth.date != timestamp[:8]:
            raise ctx.bad_request(catalogue.sigv4_scope_date_mismatch(auth.date, timestamp))
        self._check_skew(ctx, timestamp, now)
        return headers, timestamp

    def _check_skew(self, ctx: _Context, timestamp: str, now: datetime) -> None:
        try:
            signed_at = datetime.strptime(timestamp, _AMZ_DATE).replace(tzinfo=UTC)
        except ValueError:
            raise ctx.bad_request(catalogue.sigv4_bad_date(timestamp)) from None
        now = now.astimezone(UTC)
        fmt = _AMZ_DATE
        if signed_at < now - MAX_SKEW:
            raise ctx.skewed(
                catalogue.sigv4_expired(
                    timestamp, (now - MAX_SKEW).strftime(fmt), now.strftime(fmt)
                )
            )
        if signed_at > now + MAX_SKEW:
            raise ctx.skewed(
                catalogue.sigv4_not_yet_current(
                    timestamp, (now + MAX_SKEW).strftime(fmt), now.strftime(fmt)
                )
            )

    def _credentials(
        self, ctx: _Context, request: AuthRequest, auth: ParsedAuthorization
    ) -> IamCredentials:
        creds = self.credentials.get(auth.access_key_id)
        if creds is None:
            raise ctx.unauthorized(INVALID_TOKEN_MESSAGE)
        given = request.header("x-amz-security-token")
        if creds.session_token is None:
            if given is not None:
                raise ctx.unauthorized(INVALID_TOKEN_MESSAGE)
        elif not isinstance(given, str) or not hmac.compare_digest(
            given.encode(), creds.session_token.encode()
        ):
            raise ctx.unauthorized(INVALID_TOKEN_MESSAGE)
        return creds

    def _check_host(self, ctx: _Context, request: AuthRequest, signed: str) -> None:
        """The signed ``host`` must be this API's HTTP host as the client reached it.

        Accepted: the ``Host`` the request (the upgrade, for WebSocket operations) arrived
        with, unless it is an AWS AppSync host name; and every name in ``custom_domains``
        (one listed without a port matches on any port).
        AWS host names (``<id>.appsync-api.<region>.amazonaws.com``, used with a DNS
        override) must be listed in ``custom_domains``: otherwise a request signed
        consistently for another API's host would pass.  Without ``Host``
        (HTTP/1.0) and ``custom_domains`` nothing is checked.  A map signed for the
        real-time host, a common mistake, gets its own message.
        """
        arrived = request.request_headers.get("host")
        expected = list(self.custom_domains)
        if isinstance(arrived, str) and arrived.strip():
            reached = _normal_host(arrived)
            if not _is_aws_host(reached) and reached not in expected:
                expected.insert(0, reached)
        elif not expected:
            return
        host = _normal_host(signed)
        if host in expected:
            return
        # A listed name without a port stands for that name on any port (an emulator on a
        # random local port reached through a DNS override of a custom or AWS name).
        listed_names = {d for d in self.custom_domains if _without_port(d) == d}
        if _without_port(host) in listed_names:
            return
        # DIVERGENCE: AWS answers a signature for another host with its plain signature
        # mismatch (it recomputes with its own host); the emulator names the host it expected.
        twin = http_host_from_realtime(host)
        if twin != host:
            raise ctx.bad_request(catalogue.sigv4_realtime_host(signed.strip(), twin))
        raise ctx.bad_request(catalogue.sigv4_wrong_host(signed.strip(), expected))

    # --- what was signed --------------------------------------------------------------------

    def _bodies(self, request: AuthRequest) -> list[bytes]:
        """The candidate bodies: the raw HTTP body, or the rebuilt WebSocket forms."""
        if request.transport is Transport.HTTP:
            return [request.http_body or b""]
        channel = None if request.operation is Operation.CONNECT else request.channel
        if channel is None and request.operation is not Operation.CONNECT:
            channel = ""
        events = request.events if request.operation is Operation.PUBLISH else None
        escaped = signing_body(channel, events, html_escape=True).encode()
        if self.strict_aws_escaping:
            return [escaped]
        plain = signing_body(channel, events).encode()
        return [plain] if plain == escaped else [plain, escaped]

    @staticmethod
    def _target(request: AuthRequest) -> tuple[str, str, str]:
        if request.transport is Transport.HTTP:
            return request.http_method, request.http_path, request.http_query
        # The virtual request is POST /event, not /event/connect
        # (docs: protocol.rst, "IAM (SigV4)").
        return "POST", "/event", ""

    @staticmethod
    def _payload_hash_ok(headers: HTTPHeaders, body: bytes) -> bool:
        # A signed x-amz-content-sha256 replaces the body hash in the canonical request
        # (botocore does the same), so it must also match the body actually received.
        declared = headers.get("x-amz-content-sha256")
        return declared is None or declared.strip() == hashlib.sha256(body).hexdigest()

    def _check_payload_hash(self, ctx: _Context, headers: HTTPHeaders, bodies: list[bytes]) -> None:
        if not any(self._payload_hash_ok(headers, b) for b in bodies):
            raise ctx.bad_request(catalogue.SIGV4_PAYLOAD_HASH_MISMATCH)

    # --- the IAM policy stand-in (docs: protocol.rst, "IAM policies") -------------------------

    def _check_policy(self, ctx: _Context, creds: IamCredentials, request: AuthRequest) -> None:
        action, resource = self.action_and_resource(request)
        if not any(fnmatch.fnmatchcase(action, p) for p in creds.allowed_actions) or not any(
            fnmatch.fnmatchcase(resource, p) for p in creds.allowed_resources
        ):
            log.info("IAM policy of %s denies %s on %s", creds.access_key_id, action, resource)
            raise ctx.unauthorized(UNAUTHORIZED_MESSAGE)

    def action_and_resource(self, request: AuthRequest) -> tuple[str, str]:
        """The IAM action and resource ARN an operation needs
        (docs: protocol.rst, "IAM policies")."""
        if request.operation is Operation.CONNECT:
            return "appsync:EventConnect", self.api_arn
        action = (
            "appsync:EventSubscribe"
            if request.operation is Operation.SUBSCRIBE
            else "appsync:EventPublish"
        )
        namespace = (request.channel or "").strip("/").split("/")[0]
        return action, f"{self.api_arn}/channelNamespace/{namespace}"

    # --- identity ---------------------------------------------------------------------------

    @staticmethod
    def _identity(creds: IamCredentials, request: AuthRequest) -> Identity:
        username = creds.username or creds.access_key_id
        if creds.user_arn is not None:
            arn = creds.user_arn
        elif creds.session_token is not None:
            arn = f"arn:aws:sts::{creds.account_id}:assumed-role/emulator/{username}"
        else:
            arn = f"arn:aws:iam::{creds.account_id}:user/{username}"
        ctx: Mapping[str, Any] = {
            "accountId": creds.account_id,
            "cognitoIdentityPoolId": None,
            "cognitoIdentityId": None,
            "sourceIp": [request.source_ip] if request.source_ip else [],
            "username": username,
            "userArn": arn,
            "cognitoIdentityAuthType": None,
            "cognitoIdentityAuthProvider": None,
        }
        return Identity(mode=AuthType.AWS_IAM, ctx=ctx, principal=arn)
