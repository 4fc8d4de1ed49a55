"""The official AWS Amplify JS v6 ``events`` client against the emulator
(docs: protocol.rst, "Amplify JS").

Each test runs ``amplify/driver.mjs`` once: a fresh Node process, so a fresh Amplify singleton
and a fresh WebSocket. The driver reports what Amplify's public API observed, plus the frames on
the wire when something goes wrong.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from .conftest import AmplifyRunner, EmulatorFactory
from .harness import INTEROP_DIR, EmulatorProcess
from .interop_lambda_authorizer import ALLOW_TOKEN

pytestmark = pytest.mark.interop


# --- API key (the emulator's default configuration) ---------------------------------------------


def test_amplify_ws_publish_reaches_exact_subscriber(amplify: AmplifyRunner) -> None:
    """Amplify subscribes to an exact channel and receives its own WebSocket publish."""
    events: list[Any] = [{"text": "hello", "n": 1}, {"text": 'ünïcode <&> "quotes"', "n": 2.5}]
    run = amplify(
        [
            {"op": "connect", "name": "c", "channel": "default/exact"},
            {"op": "subscribe", "name": "s", "on": "c"},
            {"op": "publish", "on": "c", "events": events},
            {"op": "receive", "sub": "s", "count": 2},
            {"op": "closeAll"},
        ]
    )
    run.assert_ok()
    assert run.named("subscribe", "s")["subscriptionId"]
    assert run.received("s") == events


def test_amplify_wildcard_subscription_receives_deeper_channel(amplify: AmplifyRunner) -> None:
    """A ``default/*`` subscription receives an event published to ``default/a/b``."""
    run = amplify(
        [
            {"op": "connect", "name": "wild", "channel": "default/*"},
            {"op": "subscribe", "name": "s", "on": "wild"},
            {"op": "connect", "name": "deep", "channel": "default/a/b"},
            {"op": "publish", "on": "deep", "events": [{"deep": True}]},
            {"op": "receive", "sub": "s", "count": 1},
            {"op": "closeAll"},
        ]
    )
    run.assert_ok()
    assert run.received("s") == [{"deep": True}]


def test_amplify_http_post_reaches_subscriber(amplify: AmplifyRunner) -> None:
    """``events.post`` (HTTP, leading slash added by Amplify) reaches a WebSocket subscriber."""
    run = amplify(
        [
            {"op": "connect", "name": "c", "channel": "default/http"},
            {"op": "subscribe", "name": "s", "on": "c"},
            {"op": "post", "channel": "default/http", "events": [{"via": "http"}, [1, 2]]},
            {"op": "receive", "sub": "s", "count": 2},
            {"op": "closeAll"},
        ]
    )
    run.assert_ok()
    assert run.step(2)["failed"] == []
    assert run.received("s") == [{"via": "http"}, [1, 2]]


def test_amplify_unsubscribe_stops_delivery(amplify: AmplifyRunner) -> None:
    """After ``unsubscribe`` the server acknowledges and delivers nothing more to that id."""
    run = amplify(
        [
            {"op": "connect", "name": "c", "channel": "default/unsub"},
            {"op": "subscribe", "name": "s", "on": "c"},
            {"op": "connect", "name": "wild", "channel": "default/*"},
            {"op": "subscribe", "name": "w", "on": "wild"},
            {"op": "unsubscribe", "sub": "s", "waitAck": True},
            {"op": "publish", "on": "c", "events": [{"after": "unsubscribe"}]},
            # The wildcard subscription proves the publish was fanned out.
            {"op": "receive", "sub": "w", "count": 1},
            {"op": "assertNoEvents", "sub": "s"},
            {"op": "closeAll"},
        ]
    )
    run.assert_ok()
    unsubscribed = run.named("unsubscribe", "s")
    assert unsubscribed["ack"] == {
        "type": "unsubscribe_success",
        "id": unsubscribed["subscriptionId"],
    }
    assert run.received("w") == [{"after": "unsubscribe"}]


def test_amplify_channel_close_unsubscribes(amplify: AmplifyRunner) -> None:
    """``channel.close()`` sends ``unsubscribe`` and the server acknowledges it."""
    run = amplify(
        [
            {"op": "connect", "name": "c", "channel": "default/closing"},
            {"op": "subscribe", "name": "s", "on": "c"},
            {"op": "close", "on": "c"},
            {"op": "waitFrame", "type": "unsubscribe_success"},
            {"op": "closeAll"},
        ]
    )
    run.assert_ok()
    assert run.step(3)["frame"]["id"] == run.named("subscribe", "s")["subscriptionId"]


def test_amplify_wrong_api_key_fails_clearly(amplify: AmplifyRunner) -> None:
    """A wrong API key fails ``connect`` and ``events.post`` with an Unauthorized error."""
    run = amplify(
        [
            {"op": "connect", "name": "c", "channel": "default/denied", "expectError": True},
            {"op": "post", "channel": "default/denied", "events": [{}], "expectError": True},
        ],
        auth={"mode": "apiKey", "apiKey": "da2-wrongwrongwrongwrongwrongwr"},
    )
    run.assert_ok()
    connect, post = run.step(0), run.step(1)
    assert "Unauthorized" in connect["error"], run.describe()
    frame = connect["errorFrames"][0]
    assert frame["type"] == "connection_error"
    assert frame["errors"][0]["errorType"] == "UnauthorizedException"
    assert frame["errors"][0].get("errorCode") == 401
    assert "Unauthorized" in post["error"], run.describe()
    assert post["httpStatus"] in (401, 403)


def test_amplify_handshake_frames(amplify: AmplifyRunner) -> None:
    """The server selects ``aws-appsync-event-ws``, acks ``connection_init`` and sends ``ka``.

    Amplify refreshes its keep-alive clock only on ``ka``/``data`` (docs: protocol.rst,
    "Keep-alive"), so a ``ka`` right after the ack is what keeps a late-connecting app from
    being dropped.
    """
    run = amplify(
        [
            {"op": "connect", "name": "c", "channel": "default/handshake"},
            {"op": "waitFrame", "type": "ka"},
            {"op": "frames"},
            {"op": "closeAll"},
        ]
    )
    run.assert_ok()
    frames = run.step(2)["frames"]
    upgrade = next(f for f in frames if f["dir"] == "upgrade")
    assert upgrade["protocols"] == ["aws-appsync-event-ws", "header-…"]
    assert upgrade["header"]["host"] == run.endpoint_host
    assert next(f for f in frames if f["dir"] == "open")["protocol"] == "aws-appsync-event-ws"
    inbound = [f["msg"] for f in frames if f["dir"] == "in"]
    assert inbound[0]["type"] == "connection_ack"
    assert inbound[0]["connectionTimeoutMs"] > 0
    assert inbound[1] == {"type": "ka"}


def test_amplify_rejected_operations_fail_cleanly(amplify: AmplifyRunner) -> None:
    """Bad subscribes and publishes reject Amplify's promises and leave the socket usable.

    Amplify's WebSocket ``publish`` has no timeout and settles only on a ``publish_success`` or
    ``publish_error`` carrying its id, so an error sent any other way would hang it.
    """
    run = amplify(
        [
            {"op": "connect", "name": "undefined-ns", "channel": "nope/x"},
            {"op": "subscribe", "name": "s", "on": "undefined-ns", "expectError": True},
            {"op": "publish", "on": "undefined-ns", "events": [1], "expectError": True},
            {"op": "post", "channel": "nope/x", "events": [1], "expectError": True},
            {"op": "connect", "name": "c", "channel": "default/rejects"},
            {"op": "publish", "on": "c", "events": [1, 2, 3, 4, 5, 6], "expectError": True},
            {"op": "subscribe", "name": "ok", "on": "c"},
            {"op": "publish", "on": "c", "events": [{"still": "connected"}]},
            {"op": "receive", "sub": "ok", "count": 1},
            {"op": "closeAll"},
        ]
    )
    run.assert_ok()
    subscribe, publish, post, too_many = run.step(1), run.step(2), run.step(3), run.step(5)
    (frame,) = subscribe["errorFrames"]
    assert frame["type"] == "subscribe_error"
    assert f"Connection failed: {frame['errors'][0]['errorType']}" in subscribe["error"]
    for result in (publish, too_many):
        (frame,) = result["errorFrames"]
        assert frame["type"] == "publish_error"
        assert f"Publish errors: {frame['errors'][0]['errorType']}" in result["error"]
    assert 400 <= post["httpStatus"] < 500
    assert run.received("ok") == [{"still": "connected"}]


# --- Other auth modes --------------------------------------------------------------------------

IAM_CREDENTIALS = {
    "accessKeyId": "AKIDINTEROPEXAMPLE01",
    "secretAccessKey": "interop/secret/access/key/EXAMPLEKEY01",
    "sessionToken": "interop-session-token-EXAMPLE",
}
LAMBDA_AUTHORIZER = "interop_lambda_authorizer:authorize"
LAMBDA_DENY_TOKEN = "interop-deny-token"
USER_POOL_ID = "us-east-1_Interop01"
USER_POOL_ISSUER = f"https://cognito-idp.us-east-1.amazonaws.com/{USER_POOL_ID}"
USER_POOL_CLIENT_ID = "interopclientid0001"
USER_POOL_KID = "interop-key-1"

_AUTH_TYPES = {"iam": "AWS_IAM", "lambda": "AWS_LAMBDA", "userPool": "AMAZON_COGNITO_USER_POOLS"}


def _config_for(mode: str, *, jwks_file: Path | None = None) -> dict[str, Any]:
    """The emulator ``--config`` that allows exactly one auth mode for every operation.

    The format belongs to ``EmulatorConfig.from_mapping`` (emulator/appsync_emulator/config.py);
    this was written against it as it stood then and assumes:

    * ``eventConfig`` is AWS's ``EventConfig`` (docs: protocol.rst,
      "Auth modes and where they apply"): ``authProviders`` entries
      carry their settings (``cognitoConfig``, ``lambdaAuthorizerConfig``) and the three
      ``*AuthModes`` lists name the allowed modes; the ``default`` namespace is implicit;
    * AWS_IAM accepts the top-level ``iamCredentials`` and allows every action
      (docs: protocol.rst, "IAM policies");
    * AWS_LAMBDA's ``authorizerUri`` is a ``module:function`` the emulator imports (the module
      is ``interop_lambda_authorizer`` beside this file, put on the emulator's ``PYTHONPATH``),
      called with AWS's authorizer request (docs: protocol.rst, "Lambda authorizers") and
      answering ``{"isAuthorized", "handlerContext"}``;
    * AMAZON_COGNITO_USER_POOLS trusts ``cognitoConfig.jwksFile`` and checks ``iss`` against
      ``cognitoConfig.issuer`` (Amplify sends the access token; docs: protocol.rst,
      "Cognito user pools and OpenID Connect").
    """
    auth_type = _AUTH_TYPES[mode]
    provider: dict[str, Any] = {"authType": auth_type}
    config: dict[str, Any] = {"region": "us-east-1"}
    if mode == "iam":
        config["iamCredentials"] = [IAM_CREDENTIALS]
    elif mode == "lambda":
        provider["lambdaAuthorizerConfig"] = {
            "authorizerUri": LAMBDA_AUTHORIZER,
            "authorizerResultTtlInSeconds": 0,
        }
    elif mode == "userPool":
        provider["cognitoConfig"] = {
            "userPoolId": USER_POOL_ID,
            "awsRegion": "us-east-1",
            "issuer": USER_POOL_ISSUER,
            "jwksFile": str(jwks_file),
        }
    modes = [{"authType": auth_type}]
    config["eventConfig"] = {
        "authProviders": [provider],
        "connectionAuthModes": modes,
        "defaultPublishAuthModes": modes,
        "defaultSubscribeAuthModes": modes,
    }
    return config


class _UserPool:
    """A stand-in Cognito user pool: an RSA key published as a JWKS file, and its tokens."""

    def __init__(self, directory: Path) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        jwk.update({"kid": USER_POOL_KID, "alg": "RS256", "use": "sig"})
        self.jwks_file = directory / "jwks.json"
        self.jwks_file.write_text(json.dumps({"keys": [jwk]}), encoding="utf-8")

    def access_token(self) -> str:
        now = int(time.time())
        claims = {
            "sub": "6f1c3b9e-0000-4000-8000-000000000001",
            "iss": USER_POOL_ISSUER,
            "client_id": USER_POOL_CLIENT_ID,
            "token_use": "access",
            "scope": "aws.cognito.signin.user.admin",
            "username": "interop-user",
            "cognito:groups": ["interop"],
            "auth_time": now,
            "iat": now,
            "exp": now + 3600,
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": USER_POOL_KID})


def _start_for(
    mode: str, factory: EmulatorFactory, tmp_path: Path
) -> tuple[EmulatorProcess, dict[str, Any]]:
    """Start an emulator allowing only ``mode``; return it and the matching driver auth."""
    if mode == "iam":
        return factory(_config_for("iam")), {"mode": "iam", **IAM_CREDENTIALS}
    if mode == "lambda":
        emulator = factory(_config_for("lambda"), pythonpath=[INTEROP_DIR])
        return emulator, {"mode": "lambda", "authToken": ALLOW_TOKEN}
    pool = _UserPool(tmp_path)
    emulator = factory(_config_for("userPool", jwks_file=pool.jwks_file))
    return emulator, {"mode": "userPool", "jwt": pool.access_token()}


def _round_trip_steps() -> list[dict[str, Any]]:
    return [
        {"op": "connect", "name": "c", "channel": "default/modes"},
        {"op": "subscribe", "name": "s", "on": "c"},
        # `<`, `>` and `&` exercise the IAM signed-body escaping
        # (docs: protocol.rst, "What the verifier checks").
        {"op": "publish", "on": "c", "events": [{"via": "ws", "html": "<b>&</b>"}]},
        {"op": "post", "channel": "default/modes", "events": [{"via": "http"}]},
        {"op": "receive", "sub": "s", "count": 2},
        {"op": "closeAll"},
    ]


@pytest.mark.parametrize("mode", ["iam", "lambda", "userPool"])
def test_amplify_auth_mode_round_trip(
    mode: str, amplify: AmplifyRunner, emulator_factory: EmulatorFactory, tmp_path: Path
) -> None:
    """Amplify connects, subscribes, publishes (WebSocket and HTTP) and receives in each mode."""
    emulator, auth = _start_for(mode, emulator_factory, tmp_path)
    run = amplify(_round_trip_steps(), auth=auth, emulator=emulator)
    run.assert_ok()
    assert sorted(run.received("s"), key=lambda e: str(e["via"])) == [
        {"via": "http"},
        {"via": "ws", "html": "<b>&</b>"},
    ]


def test_amplify_iam_wrong_secret_fails_connect(
    amplify: AmplifyRunner, emulator_factory: EmulatorFactory
) -> None:
    """A SigV4 signature made with the wrong secret fails the connection handshake."""
    emulator = emulator_factory(_config_for("iam"))
    auth = {"mode": "iam", **IAM_CREDENTIALS, "secretAccessKey": "not-the-secret"}
    run = amplify(
        [{"op": "connect", "name": "c", "channel": "default/x", "expectError": True}],
        auth=auth,
        emulator=emulator,
    )
    run.assert_ok()
    frame = run.step(0)["errorFrames"][0]
    assert frame["type"] == "connection_error"
    assert frame["errors"][0]["errorType"] in ("BadRequestException", "UnauthorizedException")


def test_amplify_lambda_denied_token_fails_connect(
    amplify: AmplifyRunner, emulator_factory: EmulatorFactory
) -> None:
    """A token the Lambda authorizer rejects fails the connection with Unauthorized."""
    emulator = emulator_factory(_config_for("lambda"), pythonpath=[INTEROP_DIR])
    run = amplify(
        [{"op": "connect", "name": "c", "channel": "default/x", "expectError": True}],
        auth={"mode": "lambda", "authToken": LAMBDA_DENY_TOKEN},
        emulator=emulator,
    )
    run.assert_ok()
    assert "Unauthorized" in run.step(0)["error"], run.describe()


# --- a namespace with an APPSYNC_JS handler (issue 14) -------------------------------------------

JS_HANDLER = """
import { util } from '@aws-appsync/utils'

export function onPublish(ctx) {
  return ctx.events
    .filter((event) => !event.payload.drop)
    .map((event) => event.payload.bad
      ? { id: event.id, error: 'bad event' }
      : { id: event.id, payload: { text: event.payload.text.toUpperCase(), by: 'js' } })
}

export function onSubscribe(ctx) {
  if (ctx.info.channel.path.includes('/private')) {
    util.unauthorized()
  }
}
"""


def test_amplify_with_an_appsync_js_handler(
    amplify: AmplifyRunner, emulator_factory: EmulatorFactory
) -> None:
    """Amplify publishes (WebSocket and HTTP) through a JS onPublish and receives its output;
    a subscription the JS onSubscribe denies fails."""
    pytest.importorskip("py_mini_racer")
    emulator = emulator_factory(
        {"namespaces": [{"name": "default"}, {"name": "js", "codeHandlers": JS_HANDLER}]}
    )
    run = amplify(
        [
            {"op": "connect", "name": "c", "channel": "js/room"},
            {"op": "subscribe", "name": "s", "on": "c", "waitReady": True},
            {
                "op": "publish",
                "on": "c",
                "events": [{"text": "hi"}, {"drop": True}, {"bad": True}],
            },
            {"op": "post", "channel": "js/room", "events": [{"text": "over http"}]},
            {"op": "receive", "sub": "s", "count": 2},
            {"op": "connect", "name": "p", "channel": "js/private"},
            {
                "op": "subscribe",
                "name": "denied",
                "on": "p",
                "waitReady": True,
                "expectError": True,
            },
            {"op": "frames"},
            {"op": "closeAll"},
        ],
        emulator=emulator,
    )
    run.assert_ok()
    assert run.received("s") == [
        {"text": "HI", "by": "js"},
        {"text": "OVER HTTP", "by": "js"},
    ]
    inbound = [f["msg"] for f in run.step(7)["frames"] if f["dir"] == "in"]
    (success,) = [m for m in inbound if m.get("type") == "publish_success"]
    assert [(f["index"], f["message"]) for f in success["failed"]] == [(2, "bad event")]
    (denied,) = [m for m in inbound if m.get("type") == "subscribe_error"]
    assert denied["errors"][0]["errorType"] == "Unauthorized"
