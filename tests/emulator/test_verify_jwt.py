"""Cognito / OIDC verifiers and the local token issuer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import stat
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from freezegun import freeze_time

from appsync_emulator.config import (
    AuthType,
    CognitoConfig,
    ConfigError,
    EmulatorConfig,
    OidcConfig,
)
from appsync_emulator.issuer import (
    DEFAULT_CLIENT_ID,
    DEFAULT_OIDC_ISSUER,
    LocalIssuer,
    cognito_issuer,
    token_main,
)
from appsync_emulator.verify import AuthFailure, AuthRequest, Operation, build_policy
from appsync_emulator.verify.base import UNAUTHORIZED_MESSAGE
from appsync_emulator.verify.tokens import (
    TOKEN_EXPIRED_MESSAGE,
    CognitoVerifier,
    JwksKeys,
    OidcVerifier,
)
from appsync_events.errors import ErrorDetail

from .auth_helpers import ws_request

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
POOL_ISSUER = cognito_issuer("us-east-1", "us-east-1_TestPool")
GENERIC = ErrorDetail(
    error_type="UnauthorizedException", message=UNAUTHORIZED_MESSAGE, error_code=401
)
EXPIRED = ErrorDetail(
    error_type="UnauthorizedException", message=TOKEN_EXPIRED_MESSAGE, error_code=401
)


@pytest.fixture(scope="module")
def issuer() -> LocalIssuer:
    return LocalIssuer(issuer=POOL_ISSUER, client_id="app-client-1")


@pytest.fixture(scope="module")
def other_issuer() -> LocalIssuer:
    """Same issuer string, different key."""
    return LocalIssuer(issuer=POOL_ISSUER, client_id="app-client-1")


def cognito(issuer: LocalIssuer, **kw: object) -> CognitoVerifier:
    config = CognitoConfig(user_pool_id="us-east-1_TestPool", **kw)  # type: ignore[arg-type]
    return CognitoVerifier(config, JwksKeys(issuer=issuer), region="us-east-1")


def oidc(issuer: LocalIssuer, **kw: object) -> OidcVerifier:
    config = OidcConfig(issuer="https://idp.example.com", **kw)  # type: ignore[arg-type]
    return OidcVerifier(config, JwksKeys(issuer=issuer), default_issuer=DEFAULT_OIDC_ISSUER)


def connect(token: str) -> AuthRequest:
    return ws_request(Operation.CONNECT, {"Authorization": token, "host": "h"})


async def rejected(verifier: CognitoVerifier | OidcVerifier, token: str) -> ErrorDetail:
    request = ws_request(Operation.CONNECT, {"Authorization": token, "host": "h"})
    assert verifier.applies(request)
    with pytest.raises(AuthFailure) as info:
        await verifier.verify(request, NOW)
    assert info.value.status == 401
    assert len(info.value.errors) == 1
    return info.value.errors[0]


def b64(data: Mapping[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# --- accepted ---------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("prefix", ["", "Bearer ", "bearer  "])
async def test_cognito_id_token_is_accepted(issuer: LocalIssuer, prefix: str) -> None:
    token = issuer.mint("alice", groups=["admins", "ops"], now=NOW)
    request = ws_request(Operation.SUBSCRIBE, {"Authorization": prefix + token}, channel="/d/a")
    identity = await cognito(issuer).verify(request, NOW)
    assert identity.mode is AuthType.AMAZON_COGNITO_USER_POOLS
    assert identity.ctx is not None
    assert identity.ctx["sub"] == "alice"
    assert identity.ctx["username"] == "alice"
    assert identity.ctx["issuer"] == POOL_ISSUER
    assert identity.ctx["groups"] == ["admins", "ops"]
    assert identity.ctx["defaultAuthStrategy"] == "ALLOW"
    assert identity.ctx["sourceIp"] == ["127.0.0.1"]
    assert identity.ctx["claims"]["aud"] == "app-client-1"
    assert identity.ctx["claims"]["token_use"] == "id"


@pytest.mark.asyncio
async def test_cognito_access_token_is_accepted(issuer: LocalIssuer) -> None:
    token = issuer.mint("bob", token_use="access", username="bobby", now=NOW)
    identity = await cognito(issuer, app_id_client_regex="app-client-\\d").verify(
        ws_request(Operation.CONNECT, {"authorization": token}), NOW
    )
    assert identity.ctx is not None
    assert identity.ctx["username"] == "bobby"
    assert identity.ctx["groups"] is None
    assert identity.ctx["claims"]["client_id"] == "app-client-1"


@pytest.mark.asyncio
async def test_oidc_token_is_accepted_without_groups(issuer: LocalIssuer) -> None:
    token = issuer.mint(
        "carol", issuer="https://idp.example.com", audience="web-1", groups=["g"], now=NOW
    )
    identity = await oidc(issuer, client_id="web-\\d+").verify(
        ws_request(Operation.CONNECT, {"Authorization": token}), NOW
    )
    assert identity.mode is AuthType.OPENID_CONNECT
    assert identity.ctx is not None
    assert identity.ctx["issuer"] == "https://idp.example.com"
    assert "groups" not in identity.ctx


@pytest.mark.asyncio
async def test_oidc_audience_list_matches_any(issuer: LocalIssuer) -> None:
    token = issuer.mint(
        "x", issuer="https://idp.example.com", claims={"aud": ["other", "web-7"]}, now=NOW
    )
    await oidc(issuer, client_id="web-7").verify(connect(token), NOW)


# --- the tamper matrix ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_bad_signature_is_rejected(issuer: LocalIssuer, other_issuer: LocalIssuer) -> None:
    forged = other_issuer.mint("alice", kid=issuer.kid, now=NOW)
    assert await rejected(cognito(issuer), forged) == GENERIC


@pytest.mark.asyncio
async def test_payload_changed_after_signing_is_rejected(issuer: LocalIssuer) -> None:
    header, payload, signature = issuer.mint("alice", now=NOW).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["cognito:groups"] = ["admins"]
    assert await rejected(cognito(issuer), f"{header}.{b64(claims)}.{signature}") == GENERIC


@pytest.mark.asyncio
async def test_expired_token_says_token_expired(issuer: LocalIssuer) -> None:
    token = issuer.mint("alice", expires_in=60, now=NOW - timedelta(seconds=61))
    assert await rejected(cognito(issuer), token) == EXPIRED


@pytest.mark.asyncio
async def test_expiry_follows_the_frozen_wall_clock(issuer: LocalIssuer) -> None:
    v = cognito(issuer)
    with freeze_time("2026-06-01 10:00:00", real_asyncio=True) as frozen:
        request = connect(issuer.mint("alice", expires_in=60))
        await v.verify(request, datetime.now(UTC))
        frozen.tick(timedelta(seconds=60))
        with pytest.raises(AuthFailure) as info:
            await v.verify(request, datetime.now(UTC))
    assert info.value.errors == (EXPIRED,)


@pytest.mark.asyncio
async def test_wrong_issuer_is_rejected(issuer: LocalIssuer) -> None:
    token = issuer.mint("alice", issuer=POOL_ISSUER + "x", now=NOW)
    assert await rejected(cognito(issuer), token) == GENERIC
    # A prefix of the expected issuer is not good enough (PyJWT #1020).
    token = issuer.mint("alice", issuer=POOL_ISSUER[:-1], now=NOW)
    assert await rejected(cognito(issuer), token) == GENERIC


@pytest.mark.asyncio
async def test_wrong_audience_is_rejected_by_the_app_client_regex(issuer: LocalIssuer) -> None:
    token = issuer.mint("alice", audience="someone-else", now=NOW)
    assert await rejected(cognito(issuer, app_id_client_regex="app-client-1"), token) == GENERIC


@pytest.mark.asyncio
async def test_wrong_audience_is_rejected_by_the_oidc_client_id(issuer: LocalIssuer) -> None:
    token = issuer.mint("x", issuer="https://idp.example.com", audience="web-1x", now=NOW)
    assert await rejected(oidc(issuer, client_id="web-1"), token) == GENERIC


@pytest.mark.asyncio
async def test_alg_none_is_rejected(issuer: LocalIssuer) -> None:
    claims = jwt.decode(issuer.mint("alice", now=NOW), options={"verify_signature": False})
    unsigned = f"{b64({'alg': 'none', 'kid': issuer.kid})}.{b64(claims)}."
    assert await rejected(cognito(issuer), unsigned) == GENERIC


@pytest.mark.asyncio
async def test_hs256_with_the_public_key_as_secret_is_rejected(issuer: LocalIssuer) -> None:
    public_pem = issuer.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = jwt.decode(issuer.mint("alice", now=NOW), options={"verify_signature": False})
    header = {"alg": "HS256", "kid": issuer.kid}
    signing_input = f"{b64(header)}.{b64(claims)}".encode()
    sig = base64.urlsafe_b64encode(hmac.new(public_pem, signing_input, hashlib.sha256).digest())
    forged = signing_input.decode() + "." + sig.rstrip(b"=").decode()
    assert await rejected(cognito(issuer), forged) == GENERIC


@pytest.mark.asyncio
async def test_unknown_kid_is_rejected(issuer: LocalIssuer) -> None:
    assert await rejected(cognito(issuer), issuer.mint("alice", kid="nope", now=NOW)) == GENERIC


@pytest.mark.asyncio
@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "iss"])
async def test_required_claims(issuer: LocalIssuer, claim: str) -> None:
    token = issuer.mint("alice", claims={claim: None}, now=NOW)
    assert await rejected(cognito(issuer), token) == GENERIC


@pytest.mark.asyncio
async def test_token_use_must_be_id_or_access(issuer: LocalIssuer) -> None:
    token = issuer.mint("alice", claims={"token_use": "refresh"}, now=NOW)
    assert await rejected(cognito(issuer), token) == GENERIC


@pytest.mark.asyncio
async def test_not_before_in_the_future_is_rejected(issuer: LocalIssuer) -> None:
    token = issuer.mint("alice", claims={"nbf": int(NOW.timestamp()) + 30}, now=NOW)
    assert await rejected(cognito(issuer), token) == GENERIC


@pytest.mark.asyncio
async def test_oidc_iat_ttl_and_auth_ttl(issuer: LocalIssuer) -> None:
    iss = "https://idp.example.com"
    old = issuer.mint("x", issuer=iss, now=NOW - timedelta(seconds=11))
    assert await rejected(oidc(issuer, iat_ttl=10_000), old) == EXPIRED
    await oidc(issuer, iat_ttl=12_000).verify(connect(old), NOW)
    auth_old = issuer.mint(
        "x", issuer=iss, claims={"auth_time": int(NOW.timestamp()) - 100}, now=NOW
    )
    assert await rejected(oidc(issuer, auth_ttl=99_000), auth_old) == EXPIRED
    no_auth_time = issuer.mint("x", issuer=iss, claims={"auth_time": None}, now=NOW)
    assert await rejected(oidc(issuer, auth_ttl=99_000), no_auth_time) == GENERIC


@pytest.mark.asyncio
@pytest.mark.parametrize("key", ["iat_ttl", "auth_ttl"])
@pytest.mark.parametrize("ttl", [0, None])
async def test_oidc_ttl_of_zero_or_unset_is_not_checked(
    issuer: LocalIssuer, key: str, ttl: int | None
) -> None:
    """``iatTTL = 0`` / ``authTTL = 0`` (what example-config writes) check nothing."""
    iss = "https://idp.example.com"
    now_claims = {"auth_time": int(NOW.timestamp())}
    fresh = issuer.mint("x", issuer=iss, claims=now_claims, now=NOW)
    await oidc(issuer, **{key: ttl}).verify(connect(fresh), NOW)
    old = issuer.mint("x", issuer=iss, claims={"auth_time": int(NOW.timestamp()) - 86_400}, now=NOW)
    old_iat = issuer.mint(
        "x", issuer=iss, claims=now_claims, now=NOW - timedelta(days=1), expires_in=2 * 86_400
    )
    await oidc(issuer, **{key: ttl}).verify(connect(old), NOW)
    await oidc(issuer, **{key: ttl}).verify(connect(old_iat), NOW)
    no_auth_time = issuer.mint("x", issuer=iss, claims={"auth_time": None}, now=NOW)
    await oidc(issuer, **{key: ttl}).verify(connect(no_auth_time), NOW)


@pytest.mark.asyncio
@pytest.mark.parametrize("key", ["iat_ttl", "auth_ttl"])
async def test_oidc_positive_ttl_accepts_a_token_of_this_second(
    issuer: LocalIssuer, key: str
) -> None:
    iss = "https://idp.example.com"
    fresh = issuer.mint("x", issuer=iss, claims={"auth_time": int(NOW.timestamp())}, now=NOW)
    await oidc(issuer, **{key: 1}).verify(connect(fresh), NOW)
    stale = issuer.mint(
        "x",
        issuer=iss,
        claims={"auth_time": int(NOW.timestamp()) - 2},
        now=NOW - timedelta(seconds=2),
    )
    assert await rejected(oidc(issuer, **{key: 1_000}), stale) == EXPIRED


@pytest.mark.asyncio
async def test_garbage_tokens_are_rejected_not_crashing(issuer: LocalIssuer) -> None:
    for token in ("a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30.", f"{b64({'alg': 'RS256'})}.!!.x"):
        request = connect(token)
        v = cognito(issuer)
        if v.applies(request):
            with pytest.raises(AuthFailure):
                await v.verify(request, NOW)


def test_applies_to_jwt_shaped_authorization_only(issuer: LocalIssuer) -> None:
    v = cognito(issuer)
    assert not v.applies(ws_request(Operation.CONNECT, {"x-api-key": "k"}))
    assert not v.applies(ws_request(Operation.CONNECT, {"Authorization": "opaque-token"}))
    assert not v.applies(ws_request(Operation.CONNECT, {"Authorization": "AWS4-HMAC-SHA256 x"}))


# --- key sources ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_jwks_file_is_trusted_instead_of_the_local_issuer(
    tmp_path: Path, issuer: LocalIssuer, other_issuer: LocalIssuer
) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(other_issuer.jwks()))
    config = EmulatorConfig(
        auth_providers=(AuthType.AMAZON_COGNITO_USER_POOLS,),
        connection_auth_modes=(AuthType.AMAZON_COGNITO_USER_POOLS,),
        default_publish_auth_modes=(AuthType.AMAZON_COGNITO_USER_POOLS,),
        default_subscribe_auth_modes=(AuthType.AMAZON_COGNITO_USER_POOLS,),
        cognito=CognitoConfig(user_pool_id="us-east-1_TestPool", jwks_file=str(path)),
    )
    policy = build_policy(config, issuer=issuer)
    modes = [AuthType.AMAZON_COGNITO_USER_POOLS]
    good = connect(other_issuer.mint("alice", now=NOW))
    await policy.authorize(good, modes, NOW)
    with pytest.raises(AuthFailure):
        await policy.authorize(connect(issuer.mint("alice", now=NOW)), modes, NOW)


def test_bad_jwks_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="jwks_file"):
        JwksKeys.from_file(tmp_path / "missing.json")
    (tmp_path / "empty.json").write_text('{"keys": []}')
    with pytest.raises(ConfigError, match="no RSA key"):
        JwksKeys.from_file(tmp_path / "empty.json")


def test_key_file_is_created_once_and_shared(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "key.pem"
    first = LocalIssuer(key_file=path)
    token = first.mint("alice")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = LocalIssuer(key_file=path)
    assert second.kid == first.kid
    key = jwt.PyJWK(second.jwks()["keys"][0])
    claims = jwt.decode(token, key.key, algorithms=["RS256"], options={"verify_aud": False})
    assert claims["sub"] == "alice"


def test_unreadable_key_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text("not a key")
    with pytest.raises(ConfigError, match="cannot load an RSA private key"):
        _ = LocalIssuer(key_file=path).kid


def test_issuer_for_config_uses_the_aws_issuer_format() -> None:
    base = EmulatorConfig(region="eu-west-1")
    assert LocalIssuer.for_config(base).issuer == (
        "https://cognito-idp.eu-west-1.amazonaws.com/local_emulator"
    )
    pool = base.replace(cognito=CognitoConfig(user_pool_id="eu-west-1_abc", aws_region="eu-west-2"))
    assert LocalIssuer.for_config(pool).issuer == cognito_issuer("eu-west-2", "eu-west-1_abc")
    custom = base.replace(
        cognito=CognitoConfig(issuer="https://x/"), oidc=OidcConfig(issuer="https://o")
    )
    local = LocalIssuer.for_config(custom)
    assert (local.issuer, local.oidc_issuer, local.client_id) == (
        "https://x/",
        "https://o",
        DEFAULT_CLIENT_ID,
    )


def test_mint_shapes_and_documents(issuer: LocalIssuer) -> None:
    id_claims = jwt.decode(issuer.mint("a", groups=["g"]), options={"verify_signature": False})
    assert id_claims["token_use"] == "id"
    assert id_claims["cognito:username"] == "a"
    assert id_claims["cognito:groups"] == ["g"]
    assert id_claims["exp"] - id_claims["iat"] == 3600
    access = jwt.decode(issuer.mint("a", token_use="access"), options={"verify_signature": False})
    assert access["client_id"] == "app-client-1"
    assert "aud" not in access
    assert jwt.get_unverified_header(issuer.mint("a"))["kid"] == issuer.kid
    doc = issuer.openid_configuration("http://127.0.0.1:8080/")
    assert doc["jwks_uri"] == "http://127.0.0.1:8080/.well-known/jwks.json"
    assert doc["issuer"] == POOL_ISSUER
    assert issuer.jwks()["keys"][0]["alg"] == "RS256"
    with pytest.raises(ValueError, match="token_use"):
        issuer.mint("a", token_use="refresh")  # type: ignore[arg-type]


# --- the token command ------------------------------------------------------------------------


def test_token_command_mints_a_token_for_the_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key.pem"
    out = io.StringIO()
    code = token_main(
        [
            "--sub",
            "alice",
            "--groups",
            "admins,ops",
            "--groups",
            "dev",
            "--key-file",
            str(key_file),
            "--claim",
            "custom:tier=3",
            "--claim",
            "note=plain text",
            "--expires-in",
            "120",
        ],
        out=out,
    )
    assert code == 0
    token = out.getvalue().strip()
    keys = JwksKeys(issuer=LocalIssuer(key_file=key_file))
    key = keys.get(jwt.get_unverified_header(token)["kid"])
    assert key is not None
    claims = jwt.decode(token, key.key, algorithms=["RS256"], options={"verify_aud": False})
    assert claims["sub"] == "alice"
    assert claims["cognito:groups"] == ["admins", "ops", "dev"]
    assert claims["custom:tier"] == 3
    assert claims["note"] == "plain text"
    assert claims["exp"] - claims["iat"] == 120
    assert claims["iss"] == cognito_issuer("us-east-1", "local_emulator")


def test_token_command_follows_the_config(tmp_path: Path) -> None:
    config = tmp_path / "emulator.json"
    config.write_text(
        json.dumps(
            {
                "region": "eu-west-1",
                "tokenKeyFile": str(tmp_path / "k.pem"),
                "eventConfig": {
                    "authProviders": [
                        {
                            "authType": "OPENID_CONNECT",
                            "openIDConnectConfig": {
                                "issuer": "https://o.example",
                                "clientId": "c1",
                            },
                        }
                    ],
                    "connectionAuthModes": ["OPENID_CONNECT"],
                    "defaultPublishAuthModes": ["OPENID_CONNECT"],
                    "defaultSubscribeAuthModes": ["OPENID_CONNECT"],
                },
            }
        )
    )
    out = io.StringIO()
    assert token_main(["--config", str(config), "--oidc", "--token-use", "access"], out=out) == 0
    claims = jwt.decode(out.getvalue().strip(), options={"verify_signature": False})
    assert (claims["iss"], claims["client_id"], claims["token_use"]) == (
        "https://o.example",
        "c1",
        "access",
    )
    assert (tmp_path / "k.pem").exists()


def test_token_command_reports_a_bad_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert token_main(["--config", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read config file" in capsys.readouterr().err
