"""Shared helpers for the emulator's auth tests: botocore signing and request builders."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from freezegun import freeze_time

from appsync_emulator.verify import AuthRequest, Operation, Transport
from appsync_events.protocol.signing import SIGNING_HEADERS, signing_body

HOST = "emulatorapi.appsync-api.us-east-1.amazonaws.com"
REGION = "us-east-1"
ACCESS_KEY = "AKIATESTEMULATOR0001"
SECRET_KEY = "test/secret/key/for/the/emulator/000001"
TEMP_ACCESS_KEY = "ASIATESTEMULATOR0002"
TEMP_SECRET_KEY = "test/secret/key/for/the/emulator/000002"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLEsessiontoken+/="


def botocore_sign(
    body: str | bytes,
    *,
    access_key: str = ACCESS_KEY,
    secret_key: str = SECRET_KEY,
    token: str | None = None,
    region: str = REGION,
    service: str = "appsync",
    at: datetime | None = None,
    host: str = HOST,
    path: str = "/event",
    headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Sign ``POST https://host/path`` with plain ``SigV4Auth.add_auth`` at time ``at``.

    The clock is frozen only around ``add_auth`` (botocore reads ``datetime.now``).
    """
    data = body.encode() if isinstance(body, str) else body
    base = dict(SIGNING_HEADERS) if headers is None else dict(headers)
    request = AWSRequest(
        method="POST", url=f"https://{host}{path}", data=data, headers={**base, "host": host}
    )
    signer = SigV4Auth(Credentials(access_key, secret_key, token), service, region)
    with freeze_time(at or datetime.now(UTC), real_asyncio=True):
        signer.add_auth(request)
    return dict(request.headers.items())


def ws_request(
    operation: Operation,
    auth: Mapping[str, str],
    *,
    channel: str | None = None,
    events: tuple[str, ...] | None = None,
) -> AuthRequest:
    return AuthRequest(
        operation=operation,
        transport=Transport.WEBSOCKET,
        auth=auth,
        channel=channel,
        events=events,
        source_ip="127.0.0.1",
    )


def signed_ws(
    operation: Operation,
    *,
    channel: str | None = None,
    events: tuple[str, ...] | None = None,
    escape: bool = False,
    **sign_kw: object,
) -> AuthRequest:
    """A WebSocket request whose map is signed over its own virtual request body.

    The body is described in docs: protocol.rst, "IAM (SigV4)".
    """
    body = signing_body(channel, events, html_escape=escape)
    auth = botocore_sign(body, **sign_kw)  # type: ignore[arg-type]
    return ws_request(operation, auth, channel=channel, events=events)
