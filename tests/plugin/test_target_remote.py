"""The remote target on its own: choosing it, building it from the environment, its surface."""

from __future__ import annotations

from typing import NoReturn

import pytest

from appsync_emulator.remote import (
    AppSyncTarget,
    AuthMode,
    RemoteAuthorizers,
    RemoteTarget,
    authorizers_for,
    default_authorizer,
    emulator_only_members,
    marked_server_options,
    resolve_target,
)
from appsync_events import authorizer
from appsync_events.errors import ConfigurationError, CredentialsError

AWS = "https://abcdefghijklmnopqrstuvwxyz.appsync-api.eu-west-2.amazonaws.com/event"
LOCAL = "http://127.0.0.1:8080/event"
KEY = "da2-remotetargetsecret000000000"


@pytest.mark.parametrize(
    ("option", "env", "ini", "expected"),
    [
        (None, {}, "", None),
        (LOCAL, {"APPSYNC_TARGET": AWS}, AWS, (LOCAL, "--appsync-target")),
        (None, {"APPSYNC_TARGET": AWS}, LOCAL, (AWS, "APPSYNC_TARGET")),
        (None, {"APPSYNC_TARGET": ""}, LOCAL, (LOCAL, "the ini option appsync_target")),
        ("emulator", {"APPSYNC_TARGET": AWS}, LOCAL, None),
        ("", {"APPSYNC_TARGET": AWS}, "", None),
        (None, {"APPSYNC_TARGET": "Emulator"}, LOCAL, None),
        (f"  {LOCAL} ", {}, "", (LOCAL, "--appsync-target")),
    ],
)
def test_resolve_target_precedence(
    option: str | None, env: dict[str, str], ini: str, expected: tuple[str, str] | None
) -> None:
    """The command line beats APPSYNC_TARGET, which beats the ini option; 'emulator' opts out."""
    assert resolve_target(option, env, ini) == expected


def test_remote_target_derives_the_realtime_endpoint_and_region() -> None:
    """An AWS URL gives the appsync-realtime-api twin and the region its host names."""
    target = RemoteTarget.from_environment(AWS, {"APPSYNC_API_KEY": KEY, "AWS_REGION": "x"})
    assert target.realtime_endpoint == (
        "wss://abcdefghijklmnopqrstuvwxyz.appsync-realtime-api.eu-west-2.amazonaws.com"
        "/event/realtime"
    )
    assert target.http_endpoint == AWS
    assert target.region == "eu-west-2"
    assert target.tls
    assert target.api_key == KEY
    assert target.auth is AuthMode.API_KEY


def test_remote_target_accepts_the_realtime_url() -> None:
    """A ws:// URL is accepted and mapped to its HTTP endpoint."""
    target = RemoteTarget("ws://127.0.0.1:8080/event/realtime", api_key=KEY)
    assert target.http_endpoint == LOCAL
    assert target.region == "us-east-1"
    assert not target.tls


def test_remote_target_local_region_from_the_environment() -> None:
    """A local URL takes AWS_REGION, then AWS_DEFAULT_REGION."""
    env = {"APPSYNC_API_KEY": KEY, "AWS_DEFAULT_REGION": "ca-central-1"}
    assert RemoteTarget.from_environment(LOCAL, env).region == "ca-central-1"
    env["AWS_REGION"] = "ap-south-1"
    assert RemoteTarget.from_environment(LOCAL, env).region == "ap-south-1"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "no API key for the target http://127.0.0.1:8080/event: set APPSYNC_API_KEY"),
        ({"APPSYNC_AUTH": "token"}, "APPSYNC_AUTH='token': expected one of api_key, iam"),
        ({"APPSYNC_AUTH": "iam"}, "APPSYNC_AUTH=iam needs the region of"),
    ],
)
def test_remote_target_bad_environment_is_explained(env: dict[str, str], message: str) -> None:
    """A missing key, an unknown auth mode or a missing region each get their own message."""
    with pytest.raises(ConfigurationError, match=message.replace("?", r"\?")):
        RemoteTarget.from_environment(LOCAL, env)


def test_remote_target_repr_hides_the_key() -> None:
    """No part of the API key reaches the repr."""
    target = RemoteTarget(LOCAL, api_key=KEY)
    assert repr(target) == f"<RemoteTarget {LOCAL} auth=api_key>"
    assert "remotetarget" not in repr(target).lower().replace("<remotetarget", "")


def test_remote_target_emulator_only_members_raise_without_a_hook() -> None:
    """Outside pytest an emulator-only member is an AttributeError naming it and the target."""
    target = RemoteTarget(LOCAL, api_key=KEY)
    with pytest.raises(AttributeError, match=r"emulator-only: appsync_server.recorder needs"):
        target.recorder  # noqa: B018
    with pytest.raises(AttributeError, match=r"appsync_server.config needs the emulator"):
        target.config  # noqa: B018
    assert not hasattr(target, "inject")


def test_remote_target_unknown_attribute_is_a_plain_attribute_error() -> None:
    """Names an emulator does not have either are ordinary missing attributes, hook or not."""

    def hook(reason: str) -> NoReturn:
        raise AssertionError(reason)

    target = RemoteTarget(LOCAL, api_key=KEY, on_emulator_only=hook)
    with pytest.raises(AttributeError, match="'RemoteTarget' object has no attribute 'nope'"):
        target.nope  # noqa: B018
    with pytest.raises(AttributeError, match="'RemoteTarget' object has no attribute '_nope'"):
        target._nope  # noqa: B018
    with pytest.raises(AssertionError, match=r"appsync_server._call needs the emulator"):
        target._call  # noqa: B018
    with pytest.raises(AssertionError, match=r"appsync_server.wait_published needs the emulator"):
        target.wait_published  # noqa: B018


def test_emulator_only_members_cover_the_host_api() -> None:
    """Faults, recorder, waits and lifecycle are emulator-only; the shared surface is not."""
    members = emulator_only_members()
    assert {"inject", "recorder", "wait_published_sync", "connections", "issuer"} <= members
    assert {"start", "stop", "server", "port", "close_connection", "reset"} <= members
    assert not {"http_endpoint", "realtime_endpoint", "region", "api_key", "tls"} & members


def test_remote_target_and_hosts_share_the_protocol() -> None:
    """Both an emulator host and a remote target are AppSyncTargets (checked by mypy too)."""
    from appsync_emulator import EmulatorThread

    with EmulatorThread() as server:
        targets: list[AppSyncTarget] = [server, RemoteTarget(server.http_endpoint, api_key=KEY)]
        assert {t.realtime_endpoint for t in targets} == {server.realtime_endpoint}
        assert isinstance(default_authorizer(server), authorizer.ApiKey)
        assert type(authorizers_for(server)).__name__ == "Authorizers"


def test_remote_target_authorizers() -> None:
    """API key or IAM by the auth mode; appsync_auth's Cognito/OIDC are emulator-only."""
    target = RemoteTarget(AWS, api_key=KEY)
    assert isinstance(default_authorizer(target), authorizer.ApiKey)
    iam = RemoteTarget(AWS, auth="IAM")
    signer = default_authorizer(iam)
    assert isinstance(signer, authorizer.IAM)
    assert signer.region == "eu-west-2"
    auth = authorizers_for(iam)
    assert isinstance(auth, RemoteAuthorizers)
    assert isinstance(auth.iam(), authorizer.IAM)
    assert isinstance(auth.lambda_token("token-1"), authorizer.Token)
    assert isinstance(auth.api_key("da2-given"), authorizer.ApiKey)
    with pytest.raises(ConfigurationError, match="has no API key: set APPSYNC_API_KEY"):
        auth.api_key()
    with pytest.raises(AttributeError, match=r"appsync_auth.oidc\(\)"):
        auth.oidc()


def test_remote_target_iam_credentials_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """With IAM and an empty credential chain the check says what to set."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    RemoteTarget(AWS, api_key=KEY).check_credentials()  # API key: nothing to check
    with pytest.raises(CredentialsError, match="botocore found no AWS credentials"):
        RemoteTarget(AWS, auth="iam").check_credentials()
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/creds")
    with pytest.raises(CredentialsError, match="botocore could not resolve AWS credentials: "):
        RemoteTarget(AWS, auth="iam").check_credentials()


def test_marked_server_options_ignore_client() -> None:
    """Only the mark keywords that configure the server count."""
    marks = [pytest.mark.appsync(client={"x": 1}).mark, pytest.mark.appsync(tls=True).mark]
    assert marked_server_options(marks) == ["tls"]
    assert marked_server_options([pytest.mark.appsync(client={}).mark]) == []


def test_remote_target_copies_and_pickles() -> None:
    """Copy and pickle see no emulator-only member on the way (no hook call, no recursion)."""
    import copy
    import pickle

    target = RemoteTarget(LOCAL, api_key=KEY)
    for clone in (copy.copy(target), pickle.loads(pickle.dumps(target))):
        assert clone.http_endpoint == LOCAL
        assert clone.api_key == KEY
    with pytest.raises(AttributeError, match=r"appsync_server\.issuer needs the emulator"):
        target.issuer  # noqa: B018


def test_remote_target_iam_with_given_credentials() -> None:
    """``appsync_auth.iam(credentials)`` signs with exactly those credentials."""
    from appsync_emulator import IamCredentials

    auth = authorizers_for(RemoteTarget(AWS, auth="iam"))
    signer = auth.iam(IamCredentials(access_key_id="AKIAGIVEN", secret_access_key="s"))
    assert isinstance(signer, authorizer.IAM)
    assert "explicit credentials" in repr(signer)


def test_remote_target_trusts_the_ca_file(tmp_path: pytest.TempPathFactory) -> None:
    """``APPSYNC_CA_FILE`` adds its authorities to the default SSL context."""
    from appsync_emulator import EmulatorThread

    with EmulatorThread(tls=True) as server:
        assert server.ca_cert_path is not None
        env = {"APPSYNC_API_KEY": KEY, "APPSYNC_CA_FILE": server.ca_cert_path}
        target = RemoteTarget.from_environment(server.http_endpoint, env)
        assert target.tls
        context = target.client_ssl_context()
        assert len(context.get_ca_certs()) >= 1
