"""Shared fixtures and an independent SigV4 checker for the authorizer tests."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HOST = "example1234567890000.appsync-api.us-east-1.amazonaws.com"
"""The HTTP host of the docs' examples
(docs: protocol.rst, "The header- subprotocol", "IAM (SigV4)")."""
HTTP_ENDPOINT = f"https://{HOST}/event"
REALTIME_ENDPOINT = (
    "wss://example1234567890000.appsync-realtime-api.us-east-1.amazonaws.com/event/realtime"
)
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "AgEXAMPLEsessiontoken+/="

_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})"
)


@dataclass(frozen=True)
class ParsedAuthorization:
    access_key: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str) -> ParsedAuthorization:
    match = _AUTH.fullmatch(value)
    assert match is not None, value
    return ParsedAuthorization(
        match["key"],
        match["date"],
        match["region"],
        match["service"],
        tuple(match["signed"].split(";")),
        match["signature"],
    )


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def independent_signature(headers: Mapping[str, str], body: str, secret_key: str) -> str:
    """Recompute the SigV4 signature of ``POST /event`` with hashlib/hmac only.

    Independent of botocore: header values come from the map, as the AppSync verifier
    takes them (docs: protocol.rst, "What the verifier checks").
    """
    auth = parse_authorization(headers["Authorization"])
    lower = {key.lower(): value for key, value in headers.items()}
    canonical_headers = "".join(
        f"{name}:{' '.join(lower[name].split())}\n" for name in auth.signed_headers
    )
    canonical_request = "\n".join(
        [
            "POST",
            "/event",
            "",
            canonical_headers,
            ";".join(auth.signed_headers),
            hashlib.sha256(body.encode("utf-8")).hexdigest(),
        ]
    )
    scope = f"{auth.date}/{auth.region}/{auth.service}/aws4_request"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            lower["x-amz-date"],
            scope,
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        ]
    )
    key = _hmac(f"AWS4{secret_key}".encode(), auth.date)
    for part in (auth.region, auth.service, "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Refuse, and fail the test on, any socket connect beyond loopback (e.g. IMDS).

    Attempts are recorded as well as refused, because botocore swallows some errors
    from its metadata fetchers.
    """
    real_connect = socket.socket.connect
    attempts: list[object] = []

    def guarded(self: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else address
        local = host in ("127.0.0.1", "::1", "localhost") or not isinstance(host, str)
        if not local and not host.startswith("/"):  # AF_UNIX paths are local too
            attempts.append(address)
            raise ConnectionRefusedError(f"test tried to connect to {address!r}")
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield
    assert not attempts, f"non-loopback connections attempted: {attempts}"


@pytest.fixture
def isolated_aws_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_network: None
) -> pytest.MonkeyPatch:
    """An environment in which botocore's credential chain finds nothing and stays offline."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "BOTO_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("BOTO_CONFIG", str(tmp_path / "boto.cfg"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch
