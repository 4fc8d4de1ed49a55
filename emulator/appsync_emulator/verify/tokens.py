"""AMAZON_COGNITO_USER_POOLS and OPENID_CONNECT modes
(docs: protocol.rst, "Cognito user pools and OpenID Connect"): JWT verification.

Tokens are verified with PyJWT against a JWKS: the emulator's :class:`LocalIssuer` or a
``jwks_file``.  The algorithm is pinned to RS256 (``alg: none``, HS256 and friends are
refused before any key is touched), the ``kid`` must name a known key, and ``exp``,
``iat``, ``iss`` and ``sub`` are required.  Time claims are checked against the ``now``
the policy passes in (wall clock plus ``clock_offset``), not PyJWT's own clock.

Failures are ``UnauthorizedException`` 401 ``You are not authorized to make this call.``;
an expired token (``exp``, or ``iatTTL``/``authTTL`` exceeded) says ``Token expired``
instead, the text Amplify JS looks for to refresh its token — EMULATOR-CHOICE, the exact AWS text
is unknown (docs: protocol.rst, "Error types").
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import jwt

from ..catalogue import TOKEN_EXPIRED_MESSAGE
from ..config import AuthType, CognitoConfig, ConfigError, OidcConfig
from ..issuer import LocalIssuer, cognito_issuer
from .base import AuthFailure, AuthRequest, Identity, unauthorized

__all__ = [
    "ALGORITHMS",
    "TOKEN_EXPIRED_MESSAGE",
    "CognitoVerifier",
    "JwksKeys",
    "OidcVerifier",
    "bearer_token",
    "looks_like_jwt",
]

log = logging.getLogger("appsync_emulator.verify")

ALGORITHMS: Final = ("RS256",)
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_REQUIRED: Final = ["exp", "iat", "iss", "sub"]


def bearer_token(value: str | None) -> str | None:
    """The token of an ``Authorization`` value, without an optional ``Bearer `` prefix."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    return value or None


def looks_like_jwt(value: str | None) -> bool:
    """Whether ``value`` has the three-part compact JWS shape (signature may be empty)."""
    return value is not None and _JWT_SHAPE.fullmatch(value) is not None


class JwksKeys:
    """Public keys by ``kid``: from a :class:`LocalIssuer` (lazily) or a JWKS file."""

    def __init__(
        self, *, issuer: LocalIssuer | None = None, jwks: Mapping[str, Any] | None = None
    ) -> None:
        self._issuer = issuer
        self._keys: dict[str, jwt.PyJWK] | None = None
        if jwks is not None:
            self._keys = self._parse(jwks)

    @classmethod
    def from_file(cls, path: str | Path) -> JwksKeys:
        """Load a JWKS document (``{"keys": [...]}``).

        Raises:
            ConfigError: unreadable file or not a JWKS of RSA keys.
        """
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"jwks_file {path}: {exc}") from None
        try:
            return cls(jwks=data)
        except (ValueError, TypeError, KeyError, jwt.PyJWKError) as exc:
            raise ConfigError(f"jwks_file {path}: {exc}") from None

    @staticmethod
    def _parse(jwks: Mapping[str, Any]) -> dict[str, jwt.PyJWK]:
        keys: dict[str, jwt.PyJWK] = {}
        for entry in jwks.get("keys", []):
            if entry.get("kty") != "RSA" or not entry.get("kid"):
                continue  # only RSA keys with a kid can verify RS256 tokens
            if entry.get("alg", "RS256") not in ALGORITHMS:
                continue
            keys[str(entry["kid"])] = jwt.PyJWK(dict(entry), algorithm="RS256")
        if not keys:
            raise ValueError("no RSA key with a 'kid' in the JWKS")
        return keys

    def get(self, kid: str) -> jwt.PyJWK | None:
        if self._keys is None:
            assert self._issuer is not None
            self._keys = self._parse(self._issuer.jwks())
        return self._keys.get(kid)


class _Rejected(Exception):
    """Internal: why a token was refused (logged), and what the client is told."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired

    def failure(self) -> AuthFailure:
        return unauthorized(TOKEN_EXPIRED_MESSAGE) if self.expired else unauthorized()


class _JwtVerifier:
    """The checks shared by Cognito and OIDC; subclasses add their claim rules."""

    mode: AuthType
    expected_issuer: str

    def __init__(self, keys: JwksKeys) -> None:
        self.keys = keys

    def applies(self, request: AuthRequest) -> bool:
        return looks_like_jwt(bearer_token(request.header("authorization")))

    async def verify(self, request: AuthRequest, now: datetime) -> Identity:
        token = bearer_token(request.header("authorization")) or ""
        try:
            claims = self._decode(token, now)
            self._check_claims(claims, now)
        except _Rejected as exc:
            log.info("%s token rejected: %s", self.mode, exc)
            raise exc.failure() from None
        return Identity(
            mode=self.mode, ctx=self._identity(claims, request), principal=claims["sub"]
        )

    def _decode(self, token: str, now: datetime) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise _Rejected(f"malformed token: {exc}") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise _Rejected(f"algorithm {alg!r} is not allowed (only {', '.join(ALGORITHMS)})")
        kid = header.get("kid")
        key = self.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise _Rejected(f"unknown key id {kid!r}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=list(ALGORITHMS),
                issuer=[self.expected_issuer],
                options={
                    "require": _REQUIRED,
                    # Time claims are checked below against `now` (clock_offset aware).
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_aud": False,
                },
            )
        except jwt.InvalidTokenError as exc:
            raise _Rejected(f"{type(exc).__name__}: {exc}") from None
        self._check_times(claims, now)
        return claims

    @staticmethod
    def _number(claims: Mapping[str, Any], name: str) -> float:
        value = claims.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Rejected(f"claim {name!r} must be a number, got {value!r}")
        return float(value)

    def _check_times(self, claims: Mapping[str, Any], now: datetime) -> None:
        t = now.timestamp()
        exp = self._number(claims, "exp")
        self._number(claims, "iat")
        if t >= exp:
            raise _Rejected(f"expired {t - exp:.0f}s ago", expired=True)
        if "nbf" in claims and t < self._number(claims, "nbf"):
            raise _Rejected("not valid yet (nbf)")

    def _check_claims(self, claims: Mapping[str, Any], now: datetime) -> None:
        raise NotImplementedError

    def _identity(self, claims: Mapping[str, Any], request: AuthRequest) -> dict[str, Any]:
        username = claims.get("cognito:username") or claims.get("username") or claims["sub"]
        return {
            "sub": claims["sub"],
            "issuer": claims["iss"],
            "username": username,
            "claims": dict(claims),
            "sourceIp": [request.source_ip] if request.source_ip else [],
            "defaultAuthStrategy": "ALLOW",
        }


def _matches(pattern: str, value: object) -> bool:
    values = value if isinstance(value, list) else [value]
    return any(isinstance(v, str) and re.fullmatch(pattern, v) for v in values)


class CognitoVerifier(_JwtVerifier):
    """``AMAZON_COGNITO_USER_POOLS``: ID or access tokens of one user pool
    (docs: protocol.rst, "Cognito user pools and OpenID Connect").

    Args:
        config: the ``cognitoConfig``; its ``issuer`` defaults to AWS's format
            ``https://cognito-idp.<awsRegion>.amazonaws.com/<userPoolId>``.
        keys: the trusted keys.
        region: the API's region (when ``aws_region`` is unset).
    """

    mode = AuthType.AMAZON_COGNITO_USER_POOLS

    def __init__(self, config: CognitoConfig, keys: JwksKeys, *, region: str) -> None:
        super().__init__(keys)
        self.config = config
        self.expected_issuer = config.issuer or cognito_issuer(
            config.aws_region or region, config.user_pool_id
        )

    def _check_claims(self, claims: Mapping[str, Any], now: datetime) -> None:
        use = claims.get("token_use")
        if use not in ("id", "access"):
            raise _Rejected(f"token_use {use!r} is neither 'id' nor 'access'")
        regex = self.config.app_id_client_regex
        if regex is not None:
            client = claims.get("aud") if use == "id" else claims.get("client_id")
            if not _matches(regex, client):
                raise _Rejected(f"client {client!r} does not match appIdClientRegex {regex!r}")

    def _identity(self, claims: Mapping[str, Any], request: AuthRequest) -> dict[str, Any]:
        identity = super()._identity(claims, request)
        groups = claims.get("cognito:groups")
        identity["groups"] = list(groups) if isinstance(groups, list) else None
        return identity


class OidcVerifier(_JwtVerifier):
    """``OPENID_CONNECT``: tokens of one issuer, with ``clientId``/``iatTTL``/``authTTL``.

    ``client_id`` is a regular expression matched against ``aud`` (as in AWS, where it may
    be a regex "to validate against multiple client identifiers"); the TTLs are in ms.

    ``iatTTL`` and ``authTTL`` of ``0`` (what ``appsync-emulator example-config`` writes)
    mean "not checked", exactly like an unset TTL, as in AWS's ``openIDConnectConfig``;
    a positive TTL refuses a token issued (``iat``) or authenticated (``auth_time``)
    longer ago than that many milliseconds, with ``Token expired``.
    """

    mode = AuthType.OPENID_CONNECT

    def __init__(self, config: OidcConfig, keys: JwksKeys, *, default_issuer: str) -> None:
        super().__init__(keys)
        self.config = config
        self.expected_issuer = config.issuer or default_issuer

    def _check_claims(self, claims: Mapping[str, Any], now: datetime) -> None:
        t = now.timestamp()
        client_id = self.config.client_id
        if client_id is not None and not _matches(client_id, claims.get("aud")):
            raise _Rejected(f"aud {claims.get('aud')!r} does not match clientId {client_id!r}")
        # A TTL of 0 is "not checked", as an unset one (AWS's openIDConnectConfig).
        if self.config.iat_ttl:
            age = t - self._number(claims, "iat")
            if age * 1000 > self.config.iat_ttl:
                raise _Rejected(f"issued {age:.0f}s ago, over iatTTL", expired=True)
        if self.config.auth_ttl:
            if "auth_time" not in claims:
                raise _Rejected("authTTL is configured but the token has no auth_time")
            age = t - self._number(claims, "auth_time")
            if age * 1000 > self.config.auth_ttl:
                raise _Rejected(f"authenticated {age:.0f}s ago, over authTTL", expired=True)
