"""API_KEY tamper cases and build_policy: one verifier per provider, ordered modes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from appsync_emulator.config import (
    ApiKeyConfig,
    AuthType,
    ConfigError,
    EmulatorConfig,
    LambdaAuthorizerConfig,
)
from appsync_emulator.issuer import LocalIssuer
from appsync_emulator.verify import AuthFailure, Operation, build_policy
from appsync_emulator.verify.base import UNAUTHORIZED_MESSAGE
from appsync_emulator.verify.iam import IamVerifier
from appsync_emulator.verify.lambda_ import LambdaVerifier
from appsync_emulator.verify.tokens import CognitoVerifier, OidcVerifier
from appsync_events.errors import ErrorDetail

from .auth_helpers import REGION, signed_ws, ws_request

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
GENERIC = (
    ErrorDetail(error_type="UnauthorizedException", message=UNAUTHORIZED_MESSAGE, error_code=401),
)
ALL = tuple(AuthType)


def full_config(**kw: Any) -> EmulatorConfig:
    return EmulatorConfig(
        region=REGION,
        auth_providers=ALL,
        connection_auth_modes=ALL,
        default_publish_auth_modes=ALL,
        default_subscribe_auth_modes=ALL,
        lambda_authorizer=LambdaAuthorizerConfig(
            authorizer=lambda event: {"isAuthorized": event["authorizationToken"] == "lambda-ok"}
        ),
        **kw,
    )


@pytest.mark.asyncio
async def test_wrong_api_key_is_unauthorized() -> None:
    policy = build_policy(EmulatorConfig(api_keys=(ApiKeyConfig(key="da2-right"),)))
    with pytest.raises(AuthFailure) as info:
        await policy.authorize(
            ws_request(Operation.CONNECT, {"x-api-key": "da2-wrong"}), [AuthType.API_KEY], NOW
        )
    assert info.value.errors == GENERIC


@pytest.mark.asyncio
async def test_expired_api_key_is_unauthorized() -> None:
    key = ApiKeyConfig(key="da2-expiring", expires=NOW + timedelta(hours=1))
    policy = build_policy(EmulatorConfig(api_keys=(key,)))
    request = ws_request(Operation.CONNECT, {"x-api-key": "da2-expiring"})
    await policy.authorize(request, [AuthType.API_KEY], NOW)
    with pytest.raises(AuthFailure) as info:
        await policy.authorize(request, [AuthType.API_KEY], NOW + timedelta(hours=1))
    assert info.value.errors == GENERIC


@pytest.mark.asyncio
async def test_a_matched_key_is_checked_for_expiry_on_every_request() -> None:
    """A key that verified once is refused the moment it expires, and a wrong key that
    is tried again is still refused."""
    key = ApiKeyConfig(key="da2-soon", expires=NOW + timedelta(seconds=1))
    policy = build_policy(EmulatorConfig(api_keys=(key,)))
    request = ws_request(Operation.PUBLISH, {"x-api-key": "da2-soon"})
    for _ in range(2):
        assert (await policy.authorize(request, [AuthType.API_KEY], NOW)).mode is AuthType.API_KEY
    expired = NOW + timedelta(seconds=1)
    for _ in range(2):
        with pytest.raises(AuthFailure) as info:
            await policy.authorize(request, [AuthType.API_KEY], expired)
        assert info.value.errors == GENERIC
    wrong = ws_request(Operation.PUBLISH, {"x-api-key": "da2-soo"})
    for _ in range(2):
        with pytest.raises(AuthFailure):
            await policy.authorize(wrong, [AuthType.API_KEY], NOW)


@pytest.mark.asyncio
async def test_a_key_listed_twice_is_valid_while_either_entry_is() -> None:
    first = ApiKeyConfig(key="da2-twice", expires=NOW + timedelta(hours=1))
    second = ApiKeyConfig(key="da2-twice", expires=NOW + timedelta(hours=2))
    policy = build_policy(EmulatorConfig(api_keys=(first, second)))
    request = ws_request(Operation.PUBLISH, {"x-api-key": "da2-twice"})
    for offset, ok in ((0, True), (90, True), (90, True), (120, False), (0, True)):
        at = NOW + timedelta(minutes=offset)
        if ok:
            await policy.authorize(request, [AuthType.API_KEY], at)
        else:
            with pytest.raises(AuthFailure):
                await policy.authorize(request, [AuthType.API_KEY], at)


def test_build_policy_has_one_verifier_per_provider() -> None:
    issuer = LocalIssuer()
    policy = build_policy(full_config(), issuer=issuer)
    assert set(policy.verifiers) == set(AuthType)
    assert isinstance(policy.verifiers[AuthType.AWS_IAM], IamVerifier)
    assert isinstance(policy.verifiers[AuthType.AMAZON_COGNITO_USER_POOLS], CognitoVerifier)
    assert isinstance(policy.verifiers[AuthType.OPENID_CONNECT], OidcVerifier)
    assert isinstance(policy.verifiers[AuthType.AWS_LAMBDA], LambdaVerifier)
    only_key = build_policy(EmulatorConfig())
    assert set(only_key.verifiers) == {AuthType.API_KEY}


def test_lambda_provider_without_settings_is_a_config_error() -> None:
    config = EmulatorConfig(auth_providers=(AuthType.API_KEY, AuthType.AWS_LAMBDA))
    with pytest.raises(ConfigError, match="AWS_LAMBDA needs lambda_authorizer"):
        build_policy(config)


@pytest.mark.asyncio
async def test_each_mode_is_accepted_through_the_policy() -> None:
    issuer = LocalIssuer.for_config(full_config())
    policy = build_policy(full_config(), issuer=issuer)
    maps = {
        AuthType.API_KEY: {"x-api-key": "da2-emulatorlocaldevkey0000000"},
        AuthType.AMAZON_COGNITO_USER_POOLS: {"Authorization": issuer.mint("a", now=NOW)},
        AuthType.OPENID_CONNECT: {
            "Authorization": issuer.mint("o", issuer=issuer.oidc_issuer, now=NOW)
        },
        AuthType.AWS_LAMBDA: {"Authorization": "lambda-ok"},
    }
    for mode, auth in maps.items():
        identity = await policy.authorize(ws_request(Operation.CONNECT, auth), ALL, NOW)
        assert identity.mode is mode
    from appsync_emulator.config import DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY

    iam = signed_ws(
        Operation.CONNECT,
        access_key=DEFAULT_ACCESS_KEY_ID,
        secret_key=DEFAULT_SECRET_ACCESS_KEY,
        at=NOW,
    )
    assert (await policy.authorize(iam, ALL, NOW)).mode is AuthType.AWS_IAM


@pytest.mark.asyncio
async def test_mode_not_in_the_allowed_list_is_unauthorized() -> None:
    issuer = LocalIssuer.for_config(full_config())
    policy = build_policy(full_config(), issuer=issuer)
    request = ws_request(Operation.PUBLISH, {"x-api-key": "da2-emulatorlocaldevkey0000000"})
    with pytest.raises(AuthFailure) as info:
        await policy.authorize(request, [AuthType.AWS_IAM, AuthType.AMAZON_COGNITO_USER_POOLS], NOW)
    assert info.value.errors == GENERIC


@pytest.mark.asyncio
async def test_specific_iam_failure_is_preferred_over_the_generic_one() -> None:
    policy = build_policy(full_config(), issuer=LocalIssuer())
    request = signed_ws(Operation.CONNECT, secret_key="wrong", at=NOW)
    with pytest.raises(AuthFailure) as info:
        await policy.authorize(request, ALL, NOW)
    assert info.value.errors[0].error_type in {"BadRequestException", "UnauthorizedException"}
    assert info.value.errors[0].message != UNAUTHORIZED_MESSAGE


@pytest.mark.asyncio
async def test_jwt_falls_through_to_lambda_when_both_are_allowed() -> None:
    """A JWT-shaped token the pool rejects may still satisfy the Lambda authorizer."""
    config = full_config().replace(
        lambda_authorizer=LambdaAuthorizerConfig(authorizer=lambda event: {"isAuthorized": True})
    )
    policy = build_policy(config, issuer=LocalIssuer())
    token = LocalIssuer().mint("a", now=NOW)  # signed by a key the pool does not trust
    identity = await policy.authorize(
        ws_request(Operation.CONNECT, {"Authorization": token}),
        [AuthType.AMAZON_COGNITO_USER_POOLS, AuthType.AWS_LAMBDA],
        NOW,
    )
    assert identity.mode is AuthType.AWS_LAMBDA


def test_aws_shaped_config_builds_every_verifier(tmp_path: Any) -> None:
    """The README's TOML example: AWS EventConfig/ChannelNamespace names map 1:1."""
    path = tmp_path / "emulator.toml"
    path.write_text(
        """
region = "eu-west-1"
tokenKeyFile = "KEYFILE"
handlerTimeoutSeconds = 2.5

[[iamCredentials]]
accessKeyId = "AKIAEXAMPLE000000001"
secretAccessKey = "secret"
allowedActions = ["appsync:EventConnect", "appsync:EventSubscribe"]

[eventConfig]
connectionAuthModes = [{ authType = "API_KEY" }, { authType = "AWS_IAM" }]
defaultPublishAuthModes = [{ authType = "AWS_LAMBDA" }]
defaultSubscribeAuthModes = [{ authType = "AMAZON_COGNITO_USER_POOLS" }]

[[eventConfig.authProviders]]
authType = "API_KEY"

[[eventConfig.authProviders]]
authType = "AWS_IAM"

[[eventConfig.authProviders]]
authType = "AMAZON_COGNITO_USER_POOLS"

[eventConfig.authProviders.cognitoConfig]
userPoolId = "eu-west-1_abc"
awsRegion = "eu-west-1"
appIdClientRegex = "web-.*"

[[eventConfig.authProviders]]
authType = "OPENID_CONNECT"
openIDConnectConfig = { issuer = "https://idp.example.com", clientId = "web", iatTTL = 3600000 }

[[eventConfig.authProviders]]
authType = "AWS_LAMBDA"
lambdaAuthorizerConfig = { authorizerUri = "my_auth:handler", authorizerResultTtlInSeconds = 60 }

[[namespaces]]
name = "default"

[[namespaces]]
name = "chat"
publishAuthModes = [{ authType = "AWS_IAM" }]
onPublish = "my_handlers:on_publish"
""".replace("KEYFILE", str(tmp_path / "k.pem"))
    )
    config = EmulatorConfig.from_file(path)
    assert config.token_key_file == str(tmp_path / "k.pem")
    assert config.handler_timeout == 2.5
    assert config.iam_credentials[0].allowed_actions == (
        "appsync:EventConnect",
        "appsync:EventSubscribe",
    )
    assert config.iam_credentials[0].allowed_resources == ("*",)
    chat = config.namespace("chat")
    assert chat is not None
    assert config.publish_modes(chat) == (AuthType.AWS_IAM,)
    assert config.subscribe_modes(chat) == (AuthType.AMAZON_COGNITO_USER_POOLS,)
    policy = build_policy(config)
    cognito = policy.verifiers[AuthType.AMAZON_COGNITO_USER_POOLS]
    assert isinstance(cognito, CognitoVerifier)
    assert cognito.expected_issuer == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc"
    oidc = policy.verifiers[AuthType.OPENID_CONNECT]
    assert isinstance(oidc, OidcVerifier)
    assert oidc.expected_issuer == "https://idp.example.com"
    lam = policy.verifiers[AuthType.AWS_LAMBDA]
    assert isinstance(lam, LambdaVerifier)
    assert lam.config.result_ttl_seconds == 60
    assert lam.timeout == 2.5
    assert not (tmp_path / "k.pem").exists()  # the key is only made when needed


def test_websocket_request_equals_the_constructed_request() -> None:
    from appsync_emulator.verify.base import AuthRequest, Transport, websocket_request

    auth = {"x-api-key": "k"}
    made = websocket_request(Operation.PUBLISH, auth, "ch", ('"e"',), {"h": "v"}, "10.0.0.1", "c7")
    expected = AuthRequest(
        operation=Operation.PUBLISH,
        transport=Transport.WEBSOCKET,
        auth=auth,
        channel="ch",
        events=('"e"',),
        request_headers={"h": "v"},
        source_ip="10.0.0.1",
        connection_id="c7",
    )
    assert made == expected
    assert repr(made) == repr(expected)
    assert made.header("X-Api-Key") == "k"


@pytest.mark.asyncio
async def test_the_api_key_header_is_found_in_any_spelling_first_one_wins() -> None:
    policy = build_policy(EmulatorConfig(api_keys=(ApiKeyConfig(key="da2-right"),)))
    for auth, ok in (
        ({"X-Api-Key": "da2-right"}, True),
        ({"x-api-key": "da2-right"}, True),
        ({"X-API-KEY": "da2-right", "x-api-key": "da2-wrong"}, True),
        ({"X-API-KEY": "da2-wrong", "x-api-key": "da2-right"}, False),
        ({"host": "h"}, False),
    ):
        request = ws_request(Operation.PUBLISH, auth)
        if ok:
            assert (
                await policy.authorize(request, [AuthType.API_KEY], NOW)
            ).mode is AuthType.API_KEY
        else:
            with pytest.raises(AuthFailure):
                await policy.authorize(request, [AuthType.API_KEY], NOW)
