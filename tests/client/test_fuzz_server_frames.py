"""Hypothesis feeds malformed and hostile server frames to the client.

Two layers, one discipline: bad peer input never hangs the client and never raises
anything but the documented :class:`~appsync_events.errors.AppSyncEventsError` subclasses.

* The sans-I/O core (:class:`~appsync_events.protocol.client.ClientProtocol`): every state
  (connecting with operations pipelined, open with subscriptions and operations pending,
  failed, closed) gets sequences of hostile text and binary frames.  ``receive_*()`` never
  raises, every event is a documented event whose attributes (errors included) can be read,
  and a failure is always a :class:`~appsync_events.errors.RemoteProtocolError` or a
  service error.
* The asyncio client over real loopback sockets, against the scripted server of
  :mod:`tests.client.helpers`: hostile frames before and after the ack, around a pending
  subscribe and publish whose ids the frames reuse.  Every await is bounded; each call
  returns or raises what its docstring documents.

Frames: random JSON, every known type with random (often wrongly typed) fields, unknown
types, deep nesting, huge numbers, lone surrogates (escaped in JSON, and raw in the core),
ids that do or do not match, frames in the wrong state, truncated frames, binary frames,
invalid UTF-8 in a text frame, ``ka`` floods and keep-alive frames carrying junk.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pickle
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st
from websockets.exceptions import ConnectionClosed

import appsync_events
from appsync_events import Client, Message as MessageEvent, PublishResult
from appsync_events.errors import (
    AppSyncEventsError,
    ConnectionLostError,
    HandshakeError,
    LocalProtocolError,
    OperationTimeoutError,
    PublishError,
    RemoteProtocolError,
    SubscribeError,
    SubscriptionClosedError,
    UnauthorizedError,
)
from appsync_events.protocol import codec
from appsync_events.protocol.client import (
    BroadcastFailed,
    ClientProtocol,
    ClientState,
    ConnectionAccepted,
    ConnectionFailed,
    FrameIgnored,
    KeepAliveReceived,
    PublishAccepted,
    PublishRejected,
    SubscribeAccepted,
    SubscribeRejected,
    UnsubscribeAccepted,
    UnsubscribeRejected,
)
from tests.strategies import (
    FIELD_NAMES,
    SERVER_TYPES,
    frame_like_objects,
    json_values,
    server_messages,
    texts_with_lone_surrogates,
)

from .conftest import api_key
from .helpers import MS, WAIT, scripted

# --- frames ------------------------------------------------------------------------------------

OPERATION_IDS = ("sub-1", "pub-1", "uns-1", "op-9")
"""Ids the core tests use for their pending and active operations (and one stray)."""

huge_numbers = st.sampled_from(
    ["1" + "0" * 400, "-1" + "0" * 400, "1e400", "-1e400", "1e308", "4.5", "-0", "1E2"]
)
"""Number literals beyond what a float or a 64-bit integer holds (JSON allows them)."""


@st.composite
def hostile_objects(draw: st.DrawFn, ids: Sequence[str]) -> str:
    """A frame-like JSON object: a known type, fields of any type, ids that may match."""
    obj = draw(frame_like_objects())
    if ids and draw(st.booleans()):
        obj["id"] = draw(st.sampled_from(list(ids)))
    if draw(st.integers(0, 3)) == 0:
        obj["type"] = draw(st.sampled_from(SERVER_TYPES))
    text = json.dumps(obj)
    field = draw(st.sampled_from(FIELD_NAMES))
    if draw(st.integers(0, 5)) == 0 and text.endswith("}"):
        # A number no float or int64 holds, in any field.
        text = f'{text[:-1]}{", " if len(obj) else ""}"{field}": {draw(huge_numbers)}}}'
    return text


@st.composite
def deep_nesting(draw: st.DrawFn) -> str:
    depth = draw(st.sampled_from([50, 1_000, 100_000]))
    inner = "[" * depth + "]" * depth
    kind = draw(st.sampled_from(["bare", "field", "errors"]))
    if kind == "bare":
        return inner
    if kind == "field":
        return f'{{"type": "data", "id": "sub-1", "event": {inner}}}'
    return f'{{"type": "error", "errors": [{{"errorType": {inner}}}]}}'


@st.composite
def truncated(draw: st.DrawFn) -> str:
    text = json.dumps(draw(frame_like_objects()))
    return text[: draw(st.integers(0, max(0, len(text) - 1)))]


@st.composite
def well_formed(draw: st.DrawFn, ids: Sequence[str]) -> str:
    """A valid server frame, often for an id in use (frames in the wrong state, duplicates)."""
    message = draw(server_messages)
    text = codec.encode(message)
    if ids and hasattr(message, "id") and draw(st.booleans()):
        obj = json.loads(text)
        obj["id"] = draw(st.sampled_from(list(ids)))
        text = json.dumps(obj)
    return text


def keepalive_abuse() -> st.SearchStrategy[str]:
    return st.sampled_from(
        [
            '{"type":"ka"}',
            '{"type":"ka","id":"sub-1"}',
            '{"type":"ka","errors":"x","event":7}',
            ' {"type":"ka"} ',
            '{"type":"ka","type":"data"}',
            '{"type":"KA"}',
            '{"type":"ka"}{"type":"ka"}',
        ]
    )


def text_frames(ids: Sequence[str] = OPERATION_IDS) -> st.SearchStrategy[str]:
    """Every kind of hostile text frame (valid UTF-8, as a WebSocket text frame is)."""
    return st.one_of(
        hostile_objects(ids),
        well_formed(ids),
        st.text(max_size=40),
        json_values.map(json.dumps),
        deep_nesting(),
        truncated(),
        keepalive_abuse(),
        huge_numbers,
        texts_with_lone_surrogates.map(
            lambda t: json.dumps({"type": "data", "id": "sub-1", "event": t})
        ),
        texts_with_lone_surrogates.map(
            lambda t: json.dumps({"type": "error", "errors": [{"errorType": t, "message": t}]})
        ),
    )


# A frame sent to the core: text (which may hold raw lone surrogates) or binary.
core_frames = st.one_of(
    text_frames(),
    huge_numbers.map(lambda ms: f'{{"type":"connection_ack","connectionTimeoutMs":{ms}}}'),
    texts_with_lone_surrogates,
    st.binary(max_size=64).map(bytes),
)


# --- the sans-I/O core -------------------------------------------------------------------------

EVENT_TYPES = (
    MessageEvent,
    KeepAliveReceived,
    FrameIgnored,
    ConnectionAccepted,
    ConnectionFailed,
    BroadcastFailed,
    SubscribeAccepted,
    SubscribeRejected,
    PublishAccepted,
    PublishRejected,
    UnsubscribeAccepted,
    UnsubscribeRejected,
)


def core_in(state: str) -> ClientProtocol:
    """A core in ``state``, with operations pending under :data:`OPERATION_IDS`."""
    p = ClientProtocol()
    p.send_connection_init()
    if state == "connecting":
        p.send_subscribe("default/a", None, "sub-1")
        p.send_publish(p.prepare_publish("default/a", [1], html_escape=False), None, "pub-1")
        return p
    p.receive_text('{"type":"connection_ack","connectionTimeoutMs":300000}')
    p.send_subscribe("default/a", None, "sub-1")
    p.send_subscribe("default/b", None, "uns-1")
    p.receive_text('{"type":"subscribe_success","id":"sub-1"}')
    p.receive_text('{"type":"subscribe_success","id":"uns-1"}')
    p.send_unsubscribe("uns-1")
    p.send_publish(p.prepare_publish("default/a", [1], html_escape=False), None, "pub-1")
    p.events_received()
    p.data_to_send()
    if state == "failed":
        p.receive_binary(b"\x00")
    elif state == "closed":
        p.receive_eof()
    return p


def check_event(event: object) -> None:
    """Every attribute a shell reads from an event can be read, and errors are documented."""
    assert isinstance(event, EVENT_TYPES), event
    match event:
        case ConnectionAccepted():
            timeout = event.keepalive_timeout
            assert timeout is None or timeout > 0
        case ConnectionFailed(error=error):
            check_error(error)
        case SubscribeRejected() | PublishRejected() | UnsubscribeRejected() | BroadcastFailed():
            check_error(event.error)
        case PublishAccepted():
            PublishResult(successful=event.successful, failed=event.failed)
        case _:
            repr(event)


def check_error(error: object) -> None:
    """A documented error that formats and survives pickling."""
    assert isinstance(error, AppSyncEventsError), error
    str(error)
    repr(error)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)


@given(
    state=st.sampled_from(["connecting", "open", "failed", "closed"]),
    frames=st.lists(core_frames, max_size=8),
)
def test_fuzz_core_receive_never_raises(state: str, frames: list[str | bytes]) -> None:
    """Any frames in any state: receive_*() never raises, and what comes out is documented."""
    p = core_in(state)
    for frame in frames:
        if isinstance(frame, bytes):
            p.receive_binary(frame)
        else:
            p.receive_text(frame)
        for item in p.events_received():
            check_event(item)
        p.data_to_send()  # an internal unsubscribe may be queued; never a crash
        if p.state is ClientState.FAILED:
            check_error(p.failure)
        timeout = p.keepalive_timeout
        assert timeout is None or timeout > 0
    p.receive_eof()
    assert p.state in (ClientState.FAILED, ClientState.CLOSED)


@given(
    ms=huge_numbers
    | st.integers(min_value=-(10**600), max_value=10**600).map(str)
    | st.floats().map(lambda f: json.dumps(f))
)
def test_fuzz_core_any_connection_timeout(ms: str) -> None:
    """Any number as connectionTimeoutMs: the ack opens or fails the core, never raises."""
    p = ClientProtocol()
    p.send_connection_init()
    p.receive_text(f'{{"type":"connection_ack","connectionTimeoutMs":{ms}}}')
    for item in p.events_received():
        check_event(item)
    timeout = p.keepalive_timeout
    assert timeout is None or 0 < timeout <= 24 * 3600.0
    assert p.state in (ClientState.OPEN, ClientState.FAILED)


@given(frames=st.lists(core_frames, max_size=6))
def test_fuzz_core_send_after_hostile_frames(frames: list[str | bytes]) -> None:
    """After any frames, sending works or raises LocalProtocolError (never anything else)."""
    p = core_in("open")
    for frame in frames:
        if isinstance(frame, bytes):
            p.receive_binary(frame)
        else:
            p.receive_text(frame)
    p.events_received()
    for send in (
        lambda: p.send_subscribe("default/c", None),
        lambda: p.send_publish(p.prepare_publish("default/c", [2], html_escape=False), None),
        lambda: p.send_unsubscribe("sub-1"),
    ):
        with contextlib.suppress(LocalProtocolError):
            send()


# --- regressions found by the fuzzers ------------------------------------------------------------

HUGE_ACK = '{"type":"connection_ack","connectionTimeoutMs":1' + "0" * 400 + "}"


def test_fuzz_core_huge_connection_timeout_is_clamped() -> None:
    """A connectionTimeoutMs no float holds is clamped, not an OverflowError."""
    p = ClientProtocol()
    p.send_connection_init()
    p.receive_text(HUGE_ACK)
    (accepted,) = p.events_received()
    assert isinstance(accepted, ConnectionAccepted)
    assert accepted.keepalive_timeout == p.keepalive_timeout == 24 * 3600.0
    assert p.state is ClientState.OPEN


@pytest.mark.asyncio
async def test_fuzz_client_huge_connection_timeout_connects() -> None:
    """connect() accepts an ack with an absurd connectionTimeoutMs (was an OverflowError)."""
    async with scripted(auto_ack=False) as server:
        connecting = asyncio.ensure_future(
            appsync_events.connect(server.url, authorizer=api_key(server))
        )
        peer = await server.connection()
        await peer.recv("connection_init")
        await peer.send(HUGE_ACK)
        async with asyncio.timeout(WAIT):
            client = await connecting
        async with client:
            assert client.keepalive_timeout == 24 * 3600.0
            assert client.connection_timeout_ms == 24 * 3600 * 1000


# --- the asyncio client over loopback ------------------------------------------------------------

BOUND = WAIT
"""Longest any single await may take: every client timeout below is far shorter."""
CLIENT_OPTIONS: dict[str, Any] = {
    "handshake_timeout": 500 * MS,
    "operation_timeout": 500 * MS,
    "close_timeout": 300 * MS,
}


@st.composite
def wire_frames(draw: st.DrawFn, ids: Sequence[str]) -> tuple[str, str | bytes]:
    """One frame for the scripted server to send: ``("text", str)``, ``("binary", bytes)``
    or ``("bad-utf8", bytes)`` (invalid UTF-8 in a text frame)."""
    kind = draw(st.sampled_from(["text"] * 8 + ["binary", "bad-utf8"]))
    if kind == "text":
        return kind, draw(text_frames(ids))
    if kind == "binary":
        return kind, draw(st.binary(max_size=64))
    return kind, b'{"type":"ka","x":"\xff\xfe"}'


async def send_frame(peer: Any, frame: tuple[str, str | bytes] | dict[str, Any]) -> None:
    """Send one frame unless the client has closed the socket already."""
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(BOUND):
            if isinstance(frame, dict):
                await peer.send(frame)
                return
            kind, payload = frame
            if kind == "bad-utf8":
                assert isinstance(payload, bytes)
                await peer.ws.send(payload, text=True)  # websockets sends it as it is
            else:
                await peer.ws.send(payload)


async def client_frame(peer: Any, kind: str, call: asyncio.Future[Any]) -> dict[str, Any] | None:
    """The client's next ``kind`` frame, or ``None`` if ``call`` ended first (it failed)."""
    reading = asyncio.ensure_future(peer.recv(kind, BOUND))
    try:
        await asyncio.wait({reading, call}, timeout=BOUND, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not reading.done():
            reading.cancel()
            await asyncio.wait({reading})
    if reading.cancelled() or reading.exception() is not None:
        assert call.done(), f"no {kind} frame and no answer within the bound"
        return None
    frame: dict[str, Any] = reading.result()
    return frame


async def bounded(awaitable: Any, allowed: tuple[type[BaseException], ...]) -> Any:
    """Await within :data:`BOUND`; return the result or the (allowed) exception."""
    try:
        async with asyncio.timeout(BOUND):
            return await awaitable
    except allowed as exc:
        check_error(exc)
        return exc


CONNECT_ERRORS = (HandshakeError, UnauthorizedError, ConnectionLostError, RemoteProtocolError)
OPERATION_ERRORS = (OperationTimeoutError, ConnectionLostError, RemoteProtocolError)


async def live_session(
    before_ack: list[tuple[str, str | bytes]],
    ack: str,
    after: list[tuple[str, str | bytes]],
) -> None:
    async with scripted(auto_ack=False, ka_interval=None) as server:
        connecting = asyncio.ensure_future(
            appsync_events.connect(server.url, authorizer=api_key(server), **CLIENT_OPTIONS)
        )
        accepting = asyncio.ensure_future(server.connection(BOUND))
        await asyncio.wait({accepting, connecting}, return_when=asyncio.FIRST_COMPLETED)
        if not accepting.done():  # the client gave up during the upgrade (a loaded machine)
            accepting.cancel()
            assert isinstance(await bounded(connecting, CONNECT_ERRORS), AppSyncEventsError)
            return
        peer = accepting.result()
        if await client_frame(peer, "connection_init", connecting) is None:
            assert isinstance(await bounded(connecting, CONNECT_ERRORS), AppSyncEventsError)
            return
        for frame in before_ack:
            await send_frame(peer, frame)
        await send_frame(peer, ("text", ack))
        client = await bounded(connecting, CONNECT_ERRORS)
        event(f"connect: {type(client).__name__}")
        if isinstance(client, BaseException):
            return
        assert isinstance(client, Client)
        try:
            await operate(client, peer, after)
        finally:
            await bounded(client.close(), ())
            assert client.closed


async def operate(client: Client, peer: Any, frames: list[tuple[str, str | bytes]]) -> None:
    subscribing = asyncio.ensure_future(client.subscribe("default/a"))
    sub_frame = await client_frame(peer, "subscribe", subscribing)
    if sub_frame is not None:
        await send_frame(peer, {"type": "subscribe_success", "id": sub_frame["id"]})
    sub = await bounded(subscribing, (SubscribeError, UnauthorizedError, *OPERATION_ERRORS))
    publishing = asyncio.ensure_future(client.publish("default/a", {"n": 1}))
    pub_frame = await client_frame(peer, "publish", publishing)
    ids = [f["id"] for f in (sub_frame, pub_frame) if f is not None]
    for frame in frames:
        kind, payload = frame
        if kind == "text" and ids and isinstance(payload, str):
            for n, stand_in in enumerate(OPERATION_IDS):  # aim ids at the real operations
                payload = payload.replace(f'"{stand_in}"', f'"{ids[n % len(ids)]}"')
        await send_frame(peer, (kind, payload))
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(BOUND):
            await peer.ws.close(1000)
    result = await bounded(
        publishing, (PublishError, UnauthorizedError, SubscriptionClosedError, *OPERATION_ERRORS)
    )
    assert isinstance(result, PublishResult | AppSyncEventsError)
    event(f"publish: {type(result).__name__}")
    if isinstance(sub, appsync_events.Subscription):
        await drain(sub)


async def drain(sub: appsync_events.Subscription) -> None:
    """Read the subscription to its end: events, then a quiet end or a documented error."""
    async with asyncio.timeout(BOUND):
        while True:
            try:
                message = await sub.next()
            except (
                SubscriptionClosedError,
                ConnectionLostError,
                RemoteProtocolError,
                AppSyncEventsError,
            ) as exc:
                check_error(exc)
                return
            assert isinstance(message.data, str)


def ack_with(ms: str) -> str:
    return f'{{"type":"connection_ack","connectionTimeoutMs":{ms}}}'


valid_acks = st.one_of(
    st.just(ack_with("300000")),
    st.just('{"type":"connection_ack"}'),
    st.sampled_from(["0", "-5", "null", "300000.0", "1" + "0" * 400, "1e308"]).map(ack_with),
)
"""Acks the client accepts, odd timeouts included (non-positive: the default applies)."""

hostile_acks = st.one_of(
    valid_acks,
    st.sampled_from(["1.5", '"300"', "true", "[]", "{}", "1e400", "NaN", "-1e400"]).map(ack_with),
    text_frames(()),
)
"""Anything where the ack should be: connect() succeeds or raises a documented error."""

LIVE = settings(
    max_examples=min(settings().max_examples, 60),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def run_session(
    before_ack: list[tuple[str, str | bytes]], ack: str, after: list[tuple[str, str | bytes]]
) -> None:
    with asyncio.Runner(debug=True) as runner:
        runner.run(asyncio.wait_for(live_session(before_ack, ack, after), 4 * BOUND))


@LIVE
@given(before_ack=st.lists(wire_frames(()), max_size=2), ack=hostile_acks)
def test_fuzz_client_handshake_with_hostile_server(
    before_ack: list[tuple[str, str | bytes]], ack: str
) -> None:
    """Hostile frames before and instead of the ack: connect() is bounded and documented."""
    run_session(before_ack, ack, [])


@LIVE
@given(
    before_ack=st.lists(keepalive_abuse().map(lambda t: ("text", t)), max_size=3),
    ack=valid_acks,
    after=st.lists(wire_frames(OPERATION_IDS), min_size=1, max_size=6),
)
def test_fuzz_client_operations_with_hostile_server(
    before_ack: list[tuple[str, str | bytes]], ack: str, after: list[tuple[str, str | bytes]]
) -> None:
    """Hostile frames around a live subscribe and publish: every call bounded and documented."""
    run_session(before_ack, ack, after)
