"""Configuration examples users copy work as written, end to end against a live emulator.

* ``identityValidationExpression`` is searched in the token (``"^tok-"`` accepts ``tok-123``),
  in the code, in ``example-config`` (``"^token-"``) and in the README's example;
* a Cognito user in no group reaches ``on_subscribe`` with ``groups: []``.
"""

from __future__ import annotations

from typing import Any

import pytest

import appsync_events
from appsync_emulator import EmulatorServer, cli
from appsync_emulator.config import AuthType, EmulatorConfig, LambdaAuthorizerConfig
from appsync_emulator.config_schema import config_from_mapping
from appsync_emulator.handlers import HandlerContext
from appsync_emulator.testing import build_config, cognito_authorizer, lambda_authorizer
from appsync_events.errors import HandshakeError, UnauthorizedError

TIMEOUT = 5.0


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    return {"isAuthorized": True, "handlerContext": {"token": event["authorizationToken"]}}


async def connects(server: EmulatorServer, token: str) -> bool:
    """Whether a client with this Lambda token gets through connect and subscribe."""
    try:
        async with appsync_events.connect(
            server.realtime_endpoint,
            authorizer=lambda_authorizer(server, token),
            handshake_timeout=TIMEOUT,
        ) as client:
            await client.subscribe("default/x")
    except (HandshakeError, UnauthorizedError):
        return False
    return True


def lambda_config(expression: str) -> EmulatorConfig:
    return build_config(
        auth_modes=["AWS_LAMBDA"],
        lambda_authorizer=LambdaAuthorizerConfig(
            authorizer=authorize, identity_validation_expression=expression
        ),
    )


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("expression", "token", "accepted"),
    [
        ("^tok-", "tok-123", True),  # the README's example
        ("^tok-", "xtok-123", False),
        ("tok-", "my-tok-1", True),  # searched, not matched in full
        (r"^tok-\d+$", "tok-12a", False),  # anchored: the whole token
        (r"^tok-\d+$", "tok-12", True),
    ],
)
async def test_identity_validation_expression_is_searched(
    expression: str, token: str, accepted: bool
) -> None:
    async with EmulatorServer(lambda_config(expression)) as server:
        assert await connects(server, token) is accepted


@pytest.mark.asyncio
async def test_example_config_expression_accepts_its_own_token_shape(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``example-config`` writes ``"^token-"``: a ``token-...`` token is let through."""
    import tomllib

    assert cli.main(["example-config"]) == 0
    data = tomllib.loads(capsys.readouterr().out)
    (lam,) = [p for p in data["eventConfig"]["authProviders"] if p["authType"] == "AWS_LAMBDA"]
    assert lam["lambdaAuthorizerConfig"]["identityValidationExpression"] == "^token-"
    assert lam["lambdaAuthorizerConfig"]["authorizerUri"] == (
        "appsync_emulator.cli:example_authorizer"
    )
    data["eventConfig"]["connectionAuthModes"] = [{"authType": "AWS_LAMBDA"}]
    data["eventConfig"]["defaultSubscribeAuthModes"] = [{"authType": "AWS_LAMBDA"}]
    data["namespaces"] = ["default"]
    async with EmulatorServer(config_from_mapping(data)) as server:
        assert await connects(server, "token-abc")
        assert not await connects(server, "abc")


@pytest.mark.asyncio
@pytest.mark.parametrize(("groups", "expected"), [((), []), (("admins",), ["admins"])])
async def test_cognito_user_without_groups_has_an_empty_list(
    groups: tuple[str, ...], expected: list[str]
) -> None:
    """The README's ``on_subscribe`` (``"admins" in ctx.identity["groups"]``) works for all."""
    seen: list[HandlerContext] = []

    def on_subscribe(ctx: HandlerContext) -> None:
        assert ctx.identity is not None
        seen.append(ctx)
        if "admins" in ctx.identity["groups"]:  # a TypeError here was the bug
            return

    config = build_config(auth_modes=[AuthType.AMAZON_COGNITO_USER_POOLS.value])
    ns = config.namespaces[0]
    config = config.replace(namespaces=(type(ns)(name=ns.name, on_subscribe=on_subscribe),))
    async with EmulatorServer(config) as server:
        async with appsync_events.connect(
            server.realtime_endpoint,
            authorizer=cognito_authorizer(server, sub="nogroups", groups=list(groups)),
            handshake_timeout=TIMEOUT,
        ) as client:
            await client.subscribe("default/x")
        server.check()
    (ctx,) = seen
    assert ctx.identity is not None
    assert ctx.identity["groups"] == expected
