"""Hypothesis throws arbitrary frames at a live emulator (docs: design.rst, "Hostile input").

Each example opens a fresh connection, sends one hostile frame (text, binary, huge, deeply
nested JSON, wrong field types, invalid operations) and asserts that the server answers with
an error frame or closes the socket, never crashes, and that a bystander connection opened
at the start keeps being served after every example.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from appsync_emulator import EmulatorThread, Limits
from appsync_emulator.config import DEFAULT_API_KEY
from appsync_emulator.server import MAX_FRAME_MARGIN
from appsync_events.protocol.subprotocol import PROTOCOL_EVENTS, encode_auth_subprotocol
from tests.strategies import texts_with_lone_surrogates

from .conftest import api_auth, fast_config

REQUEST_LIMIT = 4096
"""A small request limit keeps the huge frames cheap."""
ERROR_TYPES = {
    "error",
    "subscribe_error",
    "publish_error",
    "unsubscribe_error",
    "connection_error",
}
RECV_TIMEOUT = 2.0

json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
not_a_string = st.none() | st.booleans() | st.integers() | st.lists(st.integers(), max_size=2)


@st.composite
def wrong_operation(draw: st.DrawFn) -> dict[str, Any]:
    """A known operation type with at least one field of the wrong type or value."""
    kind = draw(st.sampled_from(["subscribe", "publish", "unsubscribe"]))
    frame: dict[str, Any] = {
        "type": kind,
        "id": draw(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True)),
    }
    if kind != "unsubscribe":
        frame["channel"] = "default/fuzz"
        frame["authorization"] = {"x-api-key": "da2-wrong"}
    if kind == "publish":
        frame["events"] = ['"e"']
    broken = draw(st.sampled_from(sorted(frame)))
    frame[broken] = draw(not_a_string if broken != "authorization" else st.integers())
    return frame


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


hostile_text = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    json_values.map(json.dumps),
    st.dictionaries(st.text(max_size=10), json_values, max_size=5).map(json.dumps),
    st.builds(lambda t: json.dumps({"type": t}), st.text(max_size=20)),
    wrong_operation().map(json.dumps),
    st.integers(1000, 100_000).map(_deep),
    st.integers(REQUEST_LIMIT + 1, REQUEST_LIMIT + 2 * MAX_FRAME_MARGIN).map(
        lambda n: json.dumps(
            {"type": "publish", "id": "big", "channel": "default/x", "events": ["1" * n]}
        )
    ),
)
hostile_frames = hostile_text | st.binary(max_size=300)

# Any text, lone surrogates included: json.dumps writes them as \udXXX escapes, which the
# server decodes back into strings that no UTF-8 frame or header can carry.
any_text = texts_with_lone_surrogates
auth_maps = st.fixed_dictionaries(
    {"host": st.just("127.0.0.1") | any_text, "x-api-key": st.just(DEFAULT_API_KEY) | any_text},
    optional={"Authorization": any_text, "x-amz-date": any_text, "x-amz-security-token": any_text},
)


@st.composite
def text_operations(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed subscribe or publish with hostile text in its strings."""
    kind = draw(st.sampled_from(["subscribe", "publish"]))
    frame: dict[str, Any] = {
        "type": kind,
        "id": draw(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True)),
        "channel": draw(st.just("default/fuzz") | any_text),
        "authorization": draw(auth_maps),
    }
    if kind == "publish":
        event = any_text | any_text.map(lambda t: '"' + t + '"')
        frame["events"] = draw(st.lists(event, min_size=1, max_size=5))
    return frame


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[EmulatorThread, ClientConnection]]:
    config = fast_config(limits=Limits(max_request_bytes=REQUEST_LIMIT))
    with EmulatorThread(config) as server, _connect(server) as bystander:
        _exchange(bystander, {"type": "connection_init"}, "connection_ack")
        yield server, bystander


def _connect(server: EmulatorThread) -> ClientConnection:
    return connect(
        server.realtime_endpoint,
        subprotocols=[PROTOCOL_EVENTS, encode_auth_subprotocol(api_auth(server))],  # type: ignore[list-item]
        open_timeout=5,
        close_timeout=2,
        proxy=None,
        max_size=None,
        compression=None,
    )


def _exchange(ws: ClientConnection, frame: dict[str, Any], until: str) -> dict[str, Any]:
    ws.send(json.dumps(frame))
    while True:
        answer = json.loads(ws.recv(timeout=RECV_TIMEOUT))
        if answer.get("type") == until:
            return dict(answer)


def _assert_alive(server: EmulatorThread, bystander: ClientConnection) -> None:
    """The other client still gets its publish answered."""
    ack = _exchange(
        bystander,
        {
            "type": "publish",
            "id": "alive",
            "channel": "default/alive",
            "events": ['"ok"'],
            "authorization": api_auth(server),
        },
        "publish_success",
    )
    assert ack["id"] == "alive"


def _answer(ws: ClientConnection) -> str:
    """The first non-ka frame's type, or 'closed' when the server closes the socket."""
    try:
        while True:
            data = ws.recv(timeout=RECV_TIMEOUT)
            frame = json.loads(data)
            if frame.get("type") != "ka":
                return str(frame.get("type"))
    except ConnectionClosed:
        return "closed"


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frame=hostile_frames)
def test_hostile_frames_get_an_error_or_a_close(
    live: tuple[EmulatorThread, ClientConnection], frame: str | bytes
) -> None:
    """Every hostile frame is answered with an error frame or a close; the server lives on."""
    server, bystander = live
    with _connect(server) as ws:
        ws.send(frame)
        answer = _answer(ws)
    if isinstance(frame, str) and frame.strip() == '{"type": "connection_init"}':
        assert answer == "connection_ack"
    else:
        assert answer in ERROR_TYPES | {"closed"}, (frame[:200], answer)
    _assert_alive(server, bystander)
    server.check()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frame=text_operations())
def test_hostile_text_in_operations_gets_an_answer(
    live: tuple[EmulatorThread, ClientConnection], frame: dict[str, Any]
) -> None:
    """Lone surrogates anywhere in an operation: an answer (never a close, a hang or a
    collected emulator error), and the server lives on."""
    server, bystander = live
    with _connect(server) as ws:
        ws.send(json.dumps(frame))
        answer = _answer(ws)
    assert answer in ERROR_TYPES | {"subscribe_success", "publish_success"}, (frame, answer)
    server.check()
    _assert_alive(server, bystander)
