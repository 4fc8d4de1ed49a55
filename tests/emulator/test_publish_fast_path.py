"""The publish hot path: the core's one-go decode of a ``publish`` frame and its
``publish_success`` text, the API key's quick verification, and the shell's
coroutine-free publish.  Each must give exactly what the general path gives."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from appsync_emulator import EmulatorServer, operations, server_protocol, validation
from appsync_emulator.catalogue import event_too_large, invalid_event_json
from appsync_emulator.config import ApiKeyConfig, AuthType, EmulatorConfig, Limits, NamespaceConfig
from appsync_emulator.faults import FailEvents, RejectPublish
from appsync_emulator.server import Emulator
from appsync_emulator.server_protocol import ServerProtocol
from appsync_emulator.verify import AuthPolicy, Identity, Operation, build_policy
from appsync_emulator.verify.api_key import ApiKeyVerifier
from appsync_events.errors import LocalProtocolError
from appsync_events.protocol import codec
from appsync_events.protocol.channels import parse_channel
from appsync_events.protocol.messages import Outgoing, PublishedEvent, PublishSuccess

from .auth_helpers import ws_request
from .conftest import open_raw

orjson: Any
try:
    import orjson
except ImportError:  # the lean install: the standard library's paths alone
    orjson = None

PARSERS = [*([orjson.loads] if orjson is not None else []), None]
"""The fast parsers to test with: orjson when installed, and none (the standard library)."""

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
PUB_ID = "p-1"


@pytest.fixture(params=["orjson", "stdlib"] if orjson is not None else ["stdlib"])
def parser(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test with the fast parser, then with the standard library's."""
    saved = server_protocol._FAST_LOADS
    server_protocol._FAST_LOADS = PARSERS[0] if request.param == "orjson" else None
    try:
        yield request.param
    finally:
        server_protocol._FAST_LOADS = saved


@pytest.mark.skipif(orjson is None, reason="orjson is not installed")
def test_the_fast_parser_is_orjson_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert orjson is not None
    assert validation.orjson_loads() is orjson.loads
    assert server_protocol._FAST_LOADS is orjson.loads
    monkeypatch.setitem(sys.modules, "orjson", None)  # import orjson raises ImportError
    assert validation.orjson_loads() is None


EVENTS = [
    '{"a":1}',
    "[1, 2]",
    " 3 ",
    "nope",
    "NaN",
    "1e400",
    "18446744073709551616",
    '"\\ud800"',  # an escaped lone surrogate: orjson refuses it, json reads it
    '"é"',
    "\ufeff1",
    "[" * 150 + "]" * 150,  # short and shallow
    "[" * 250 + "]" * 250,  # long: json judges it
    "[" * 990 + "]" * 990,  # within orjson's nesting limit, beyond json's
    "{" + "x" * 500,
]


@pytest.mark.parametrize("event", EVENTS)
def test_event_checks_are_the_codecs(event: str) -> None:
    """With or without orjson, an event is refused exactly when, and as, the codec says."""
    expected = codec.event_json_error(event)
    for fast in PARSERS:
        saved = validation._FAST_LOADS
        validation._FAST_LOADS = fast
        try:
            error = validation.check_events(["1", event], max_event_bytes=None)
        finally:
            validation._FAST_LOADS = saved
        assert error == (None if expected is None else invalid_event_json(1, expected))


@pytest.mark.parametrize(
    ("events", "limit", "expected"),
    [
        (['{"a":1}', "[1]", "2"], 1600, None),
        (['{"a":1}', "nope", "2"], 1600, "index 1"),
        (["1", "[" + "1," * 150 + "1]"], 1000, None),  # 4 * 303 over 1,000: measured
        (["1", "x" * 150, "x"], 100, "too large"),  # before the bad JSON after it
        (["1", '"' + "x" * 300 + '"'], None, None),
        (["1", '"é"', "x"], None, "index 2"),
        (["1", '"' + "x" * 500 + '"', "x"], None, "index 2"),
    ],
)
def test_event_checks_of_a_whole_publish(
    events: list[str], limit: int | None, expected: str | None
) -> None:
    """The one-pass check and the per-event loop agree: the first bad event named, sizes
    checked before parsing, with or without orjson."""
    results = []
    for fast in PARSERS:
        saved = validation._FAST_LOADS
        validation._FAST_LOADS = fast
        try:
            results.append(validation.check_events(events, max_event_bytes=limit))
        finally:
            validation._FAST_LOADS = saved
    assert results[0] == results[-1]
    if expected is None:
        assert results[0] is None
    else:
        assert results[0] is not None
        if expected == "too large":
            assert results[0] == event_too_large(limit or 0)
        else:
            index = int(expected.split()[1])
            reason = codec.event_json_error(events[index])
            assert reason is not None
            assert results[0] == invalid_event_json(index, reason)


def publish(**fields: Any) -> str:
    frame: dict[str, Any] = {
        "type": "publish",
        "id": PUB_ID,
        "channel": "default/a",
        "events": ['{"a":1}', "[1, 2]"],
        "authorization": {"x-api-key": "k", "host": "h"},
    }
    frame.update(fields)
    return json.dumps({k: v for k, v in frame.items() if v is not ...})


# Frames the hot path decodes, and frames it leaves to the codec (None).
DECODED = [
    publish(),
    publish(authorization=...),  # no authorization
    publish(authorization=None),
    publish(authorization={}),
    publish(events=[]),  # the core rejects it, after decoding
    publish(id="bad id!"),
    publish(channel="/nope/*"),
    publish(events=["not json", "é ✓"]),
    publish(id="ü"),
]
ORJSON_ONLY = " " + publish() + " "  # whitespace around: the stdlib path leaves it
STDLIB_ONLY = publish(events=['"\\ud800"']).replace('"\\"\\\\ud800\\""', '"\\ud800"')
"""An escaped lone surrogate in an event: orjson refuses the frame, json reads it."""
LEFT = [
    "not json",
    "[1]",
    '{"type":"subscribe","id":"s","channel":"/default/a"}',
    '{"id":"x"}',
    publish(extra=1),  # an unknown field
    publish(id=1),
    publish(channel=["default"]),
    publish(events="{}"),
    publish(events=["1", 2]),
    publish(authorization="k"),
    publish(authorization={"x-api-key": 1}),
    '{"type":"publish","id":"p","channel":"c","events":' + "[" * 1100 + "]" * 1100 + "}",
    publish() + " x",  # trailing data
]


@pytest.mark.parametrize("text", [*DECODED, *LEFT, ORJSON_ONLY, STDLIB_ONLY])
def test_the_hot_decode_is_the_codecs_or_nothing(parser: str, text: str) -> None:
    """Whatever the hot path decodes, the codec decodes to the same message."""
    message = server_protocol._publish_frame(text)
    if message is not None:
        assert message == codec.decode_client(text)
    decoded = text in DECODED or text == (ORJSON_ONLY if parser == "orjson" else STDLIB_ONLY)
    assert (message is not None) == decoded


@settings(max_examples=150, deadline=None)
@given(
    frame=st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["publish", "subscribe", 1]),
            "id": st.one_of(st.text(max_size=4), st.integers()),
            "channel": st.sampled_from(["default/a", "/default/a/b", "nope/x", "/*", 3]),
            "events": st.one_of(
                st.lists(st.sampled_from(['{"a":1}', "1", "x", "", '"é"', "[]"]), max_size=6),
                st.lists(st.integers(), min_size=1, max_size=2),
                st.text(max_size=3),
            ),
            "authorization": st.one_of(
                st.none(), st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2)
            ),
            "other": st.integers(),
        },
    )
)
def test_the_core_answers_alike_with_and_without_the_hot_decode(frame: dict[str, Any]) -> None:
    """Events and output of the core are the same whether the hot path decoded a frame."""
    text = json.dumps(frame, ensure_ascii=False)
    results = []
    for fast in (True, False):
        proto = ServerProtocol(max_events_per_publish=5)
        saved = server_protocol._publish_frame
        if not fast:
            server_protocol._publish_frame = lambda text: None
        try:
            kind = proto.receive_text(text)
        finally:
            server_protocol._publish_frame = saved
        results.append((kind, proto.events_received(), proto.data_to_send()))
    assert results[0] == results[1]


def test_a_frame_that_may_be_over_the_limit_takes_the_general_path() -> None:
    """Text over a quarter of the request limit is measured before it is parsed."""
    text = publish()
    proto = ServerProtocol(max_request_bytes=len(text))  # within, but 4 * len is not
    assert proto.receive_text(text) == "publish"
    assert [type(e).__name__ for e in proto.events_received()] == ["PublishRequested"]
    too_small = ServerProtocol(max_request_bytes=len(text) - 1)
    too_small.receive_text(text)
    assert '"publish_error"' in too_small.data_to_send()[0].text


# --- publish_success -------------------------------------------------------------------


def general_success(operation_id: str, identifiers: list[str]) -> str:
    return codec.encode(
        PublishSuccess(
            id=operation_id,
            successful=tuple(
                PublishedEvent(identifier=x, index=i) for i, x in enumerate(identifiers)
            ),
        )
    )


@settings(max_examples=200, deadline=None)
@given(operation_id=st.text(max_size=8), identifiers=st.lists(st.text(max_size=6), max_size=7))
def test_the_success_text_is_the_codecs(operation_id: str, identifiers: list[str]) -> None:
    text = server_protocol._publish_success_text(operation_id, identifiers)
    if text is not None:
        assert text == general_success(operation_id, identifiers)
    else:
        assert not (operation_id + "".join(identifiers)).isascii()


@pytest.mark.parametrize(
    "identifiers",
    [
        ["8a1b2c3d-1111-4222-8333-444455556600", "x"],  # plain: quoted as they are
        ["", "a b", "~!#$%&'()*+,-./:;<=>?@[]^_`{|}"],  # plain too
        ['a"b', "c"],  # a quote: escaped
        ["a\\b"],  # a backslash: escaped
        ["a\nb", "\x1f", "\x7f"],  # control characters
        ["é"],  # not ASCII: the codec's path
    ],
)
def test_plain_identifiers_are_quoted_as_they_are(identifiers: list[str]) -> None:
    """Identifiers that need no escaping take the plain form; any other is escaped; the
    text is the codec's either way."""
    for operation_id in ("p-1", 'q"', "é"):
        text = server_protocol._publish_success_text(operation_id, identifiers)
        ascii_only = (operation_id + "".join(identifiers)).isascii()
        assert text == (general_success(operation_id, identifiers) if ascii_only else None)


def test_success_texts_for_huge_publishes_are_not_kept() -> None:
    for identifiers in ([f"u{i}" for i in range(200)], [f'"{i}' for i in range(200)]):
        text = server_protocol._publish_success_text("p", identifiers)
        assert text == general_success("p", identifiers)
    assert 200 not in server_protocol._SUCCESS_FORMATS
    assert 200 not in server_protocol._PLAIN_FORMATS


def accepted(
    proto: ServerProtocol, operation_id: str, identifiers: list[str], *, all_: bool | str
) -> list[Any]:
    if all_ == "text":
        text = proto.publish_success_text(operation_id, identifiers)
        frames = proto.data_to_send()
        if text is not None:
            assert not frames
            frames = [Outgoing("publish_success", operation_id, text)]
        return frames
    if all_:
        proto.accept_publish_all(operation_id, identifiers)
    else:
        successful = [PublishedEvent(identifier=x, index=i) for i, x in enumerate(identifiers)]
        proto.accept_publish(operation_id, successful, [])
    return proto.data_to_send()


@pytest.mark.parametrize("identifiers", [["u0", "u1"], ["ü0"]])
@pytest.mark.parametrize("phase", ["ready", "acked", "init", "closing", "unauthorized"])
def test_accept_publish_all_is_accept_publish(identifiers: list[str], phase: str) -> None:
    """In every phase, for ASCII and other texts, the same frames (held, sent or dropped)."""
    operation_id = PUB_ID
    outputs = []
    for all_ in (True, False, "text"):
        proto = ServerProtocol()
        if phase in ("acked", "init"):
            proto.receive_text('{"type":"connection_init"}')
            if phase == "acked":
                proto.send_connection_ack()
        proto.receive_text(publish(id=operation_id))
        proto.data_to_send()
        if phase == "unauthorized":  # refused after the publish came
            proto.refuse_connection()
        if phase == "closing":
            proto.fail_connection([])
            proto.data_to_send()
        frames = accepted(proto, operation_id, identifiers, all_=all_)
        if phase == "init":
            proto.send_connection_ack()
            frames = proto.data_to_send()
        outputs.append(frames)
    assert outputs[0] == outputs[1] == outputs[2]
    if phase in ("ready", "acked", "init"):
        assert [frame.kind for frame in outputs[0]][-1] == "publish_success"


def test_accept_publish_all_of_an_unknown_publish_is_misuse() -> None:
    with pytest.raises(LocalProtocolError, match="accept_publish"):
        ServerProtocol().accept_publish_all("nope", ["u0"])
    with pytest.raises(LocalProtocolError, match="accept_publish"):
        ServerProtocol().publish_success_text("nope", ["u0"])


def test_the_success_text_queues_behind_waiting_frames() -> None:
    """With frames already waiting, the text is queued after them, not returned."""
    proto = ServerProtocol()
    proto.receive_text('{"type":"connection_init"}')
    proto.send_connection_ack()
    proto.receive_text(publish(id=PUB_ID))
    assert proto.publish_success_text(PUB_ID, ["u0"]) is None
    kinds = [frame.kind for frame in proto.data_to_send()]
    assert kinds == ["connection_ack", "publish_success"]


# --- the API key, at once ----------------------------------------------------------------


def test_the_quick_answer_comes_after_a_verify() -> None:
    policy = build_policy(EmulatorConfig(api_keys=(ApiKeyConfig(key="da2-k"),)))
    modes = (AuthType.API_KEY,)
    auth = {"host": "h", "x-api-key": "da2-k"}

    def never() -> datetime:
        raise AssertionError("a key without expiry needs no clock")

    assert policy.quick(auth, modes, never) is None  # not seen yet

    async def verify() -> Identity:
        return await policy.authorize(ws_request(Operation.PUBLISH, auth), modes, NOW)

    identity = asyncio.run(verify())
    assert policy.quick(auth, modes, never) is identity
    assert policy.quick({"X-Api-Key": "da2-k"}, modes, never) is identity
    assert policy.quick({"x-api-key": "da2-other"}, modes, never) is None
    assert policy.quick({"host": "h"}, modes, never) is None
    assert policy.quick({"x-api-key": ""}, modes, never) is None


def _same(value: datetime) -> datetime:
    return value


@pytest.mark.asyncio
async def test_the_quick_answer_checks_expiry_every_time() -> None:
    first = ApiKeyConfig(key="da2-twice", expires=NOW + timedelta(hours=1))
    second = ApiKeyConfig(key="da2-twice", expires=NOW + timedelta(hours=2))
    policy = build_policy(EmulatorConfig(api_keys=(first, second)))
    modes = (AuthType.API_KEY,)
    auth = {"x-api-key": "da2-twice"}
    identity = await policy.authorize(ws_request(Operation.PUBLISH, auth), modes, NOW)
    for offset, ok in ((0, True), (90, True), (120, False), (0, True)):
        at = NOW + timedelta(minutes=offset)
        assert policy.quick(auth, modes, functools.partial(_same, at)) is (identity if ok else None)


def test_modes_without_a_quick_verifier_are_left_to_authorize() -> None:
    config = EmulatorConfig(
        api_keys=(ApiKeyConfig(key="da2-k"),),
        auth_providers=(AuthType.API_KEY, AuthType.AWS_IAM),
    )
    policy = build_policy(config)
    auth = {"x-api-key": "da2-k"}
    api_key = policy.verifiers[AuthType.API_KEY]
    assert isinstance(api_key, ApiKeyVerifier)
    api_key._matched["da2-k"] = tuple(config.api_keys)  # as a verify leaves it
    # IAM comes first and has no quick answer; a mode without a verifier is skipped.
    assert policy.quick(auth, (AuthType.OPENID_CONNECT, AuthType.AWS_IAM), lambda: NOW) is None
    assert policy.quick(auth, (AuthType.OPENID_CONNECT, AuthType.API_KEY), lambda: NOW) is not None
    assert policy.quick(auth, (AuthType.OPENID_CONNECT,), lambda: NOW) is None


def test_a_subclass_of_the_api_key_verifier_has_no_quick_answer() -> None:
    class Custom(ApiKeyVerifier):
        pass

    keys = (ApiKeyConfig(key="da2-k"),)
    custom = Custom(keys)
    custom._matched["da2-k"] = keys
    policy = AuthPolicy({AuthType.API_KEY: custom})
    assert policy.quick({"x-api-key": "da2-k"}, (AuthType.API_KEY,), lambda: NOW) is None


# --- the operation, at once -------------------------------------------------------------


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(EmulatorConfig(api_keys=(ApiKeyConfig(key="da2-k"),)))


async def authorized(emulator: Emulator) -> dict[str, str]:
    auth = {"x-api-key": "da2-k"}
    await emulator.operations.authorize(ws_request(Operation.PUBLISH, auth), (AuthType.API_KEY,))
    return auth


@pytest.mark.asyncio
async def test_publish_now_answers_a_known_key_at_once(emulator: Emulator) -> None:
    operations = emulator.operations
    channel = parse_channel("default/a")
    auth = await authorized(emulator)
    quick = operations.publish_now(channel, ('{"a":1}', "2"), auth)
    assert quick is not None
    identifiers, identity = quick
    assert len(identifiers) == 2
    assert identity.mode is AuthType.API_KEY
    slow = await operations.publish(
        channel, ('{"a":1}', "2"), ws_request(Operation.PUBLISH, auth), {}, transport="websocket"
    )
    assert slow.identity is identity
    assert slow.outcome.broadcast == ('{"a":1}', "2")
    assert slow.outcome.failed == ()


@pytest.mark.asyncio
async def test_publish_now_leaves_everything_else_to_publish(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    operations = emulator.operations
    channel = parse_channel("default/a")
    assert operations.publish_now(channel, ("1",), {"x-api-key": "da2-k"}) is None  # not seen
    auth = await authorized(emulator)
    assert operations.publish_now(channel, ("1",), None) is None
    assert operations.publish_now(channel, (), auth) is None
    big = "1" * (operations.config.limits.max_event_bytes // 4 + 1)
    assert operations.publish_now(channel, ("1", big), auth) is None
    with caplog.at_level(logging.DEBUG, logger="appsync_emulator.auth"):
        assert operations.publish_now(channel, ("1",), auth) is None
    key = emulator.add_fault(RejectPublish(), None)
    assert operations.publish_now(channel, ("1",), auth) is None
    emulator.remove_fault(key)
    key = emulator.add_fault(FailEvents(indexes=(0,)), None)
    assert operations.publish_now(channel, ("1",), auth) is None
    emulator.remove_fault(key)
    assert operations.publish_now(channel, ("1",), auth) is not None


def test_publish_now_leaves_a_handler_to_publish() -> None:
    config = EmulatorConfig(
        api_keys=(ApiKeyConfig(key="da2-k"),),
        namespaces=(NamespaceConfig(name="default", on_publish=lambda ctx: ctx.events),),
        limits=Limits(),
    )
    emulator = Emulator(config)
    api_key = emulator.policy.verifiers[AuthType.API_KEY]
    assert isinstance(api_key, ApiKeyVerifier)
    api_key._matched["da2-k"] = tuple(config.api_keys)
    channel = parse_channel("default/a")
    assert emulator.operations.publish_now(channel, ("1",), {"x-api-key": "da2-k"}) is None


# --- event identifiers -------------------------------------------------------------------


def test_identifiers_are_unique_version_4_uuids_across_pools_and_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(operations, "_BLOCK", 3)  # a new prefix every 3 pools
    identifiers = operations._Identifiers()
    drawn = [
        *identifiers.take(5),
        *identifiers.take(0),
        *identifiers.take(300),  # past the end of a pool
        *identifiers.take(256),
        *[x for _ in range(200) for x in identifiers.take(3)],
        *identifiers.take(1000),  # more than a pool, across blocks
    ]
    assert len(drawn) == 5 + 300 + 256 + 600 + 1000
    assert len(set(drawn)) == len(drawn)
    for text in drawn:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    assert len({text[:24] for text in drawn}) == 3  # 9 pools: three prefixes


# --- the shell: the same wire and records either way -------------------------------------


def _masked(value: Any, identifiers: list[str]) -> Any:
    """``value`` with each server identifier replaced by its position."""
    text = json.dumps(value) if not isinstance(value, str) else value
    for n, identifier in enumerate(identifiers):
        text = text.replace(identifier, f"<id{n}>")
    return text


@pytest.mark.asyncio
async def test_a_publish_is_answered_and_recorded_alike_on_both_paths(
    server: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The coroutine-free path and the general one (taken while auth debug logging is on)
    send the same frames and make the same records."""
    subscriber = await open_raw(server)
    await subscriber.init()
    await subscriber.subscribe("default/*", "w1")
    publisher = await open_raw(server)
    await publisher.init()
    await publisher.subscribe("default/same", "own")  # the publisher gets its own events
    results = []
    for general in (False, True):
        server.recorder.clear()
        events = ['{"a":1}', '"é"', "[1, 2]"]
        with caplog.at_level(
            logging.DEBUG if general else logging.WARNING, "appsync_emulator.auth"
        ):
            await publisher.publish("default/same", events, pub_id="p1")
            ack = await publisher.expect("publish_success")
            own = [await publisher.expect("data", id="own") for _ in events]
            fanned = [await subscriber.expect("data", id="w1") for _ in events]
        identifiers = [entry["identifier"] for entry in ack["successful"]]
        (record,) = server.recorder.published
        sent = [
            (f.connection_id, f.data, f.frame_type, f.id)
            for f in server.recorder.sent
            if f.frame_type != "ka"  # keep-alives come when they are due
        ]
        received = [(f.connection_id, f.data, f.frame_type) for f in server.recorder.received]
        results.append(
            (
                _masked(ack, identifiers),
                own,
                fanned,
                _masked(sent, identifiers),
                received,
                record.identity,
                record.auth_mode,
                record.deliveries,
                record.failed,
                record.broadcast,
                (record.channel, record.events, record.connection_id, record.publish_id),
                len(record.identifiers),
            )
        )
        assert list(record.identifiers) == identifiers
    assert results[0] == results[1]
    assert results[0][7] == 6  # three events to two subscriptions
    logged = [r.getMessage() for r in caplog.records if "authorized via" in r.getMessage()]
    assert len(logged) == 1  # the general path's publish
    assert logged[0].startswith("publish (websocket) default/same")


# --- the core's publish receive: receive_text with the event returned ----------------------


def _received(proto: ServerProtocol, text: str, returned: bool) -> tuple[Any, ...]:
    if returned:
        got = proto.receive_publish(text)
        events = proto.events_received()
        if isinstance(got, server_protocol.PublishRequested):
            events = [got, *events]
            got = "publish"
    else:
        got = proto.receive_text(text)
        events = proto.events_received()
    return got, events, proto.data_to_send(), proto.state


def _in_phase(phase: str) -> ServerProtocol:
    proto = ServerProtocol(max_events_per_publish=5, namespace_exists=lambda ns: ns == "default")
    if phase in ("init", "acked"):
        proto.receive_text('{"type":"connection_init"}')
        if phase == "acked":
            proto.send_connection_ack()
    elif phase == "refused":
        proto.refuse_connection()
    elif phase == "closing":
        proto.fail_connection(())
    proto.events_received()
    proto.data_to_send()
    return proto


@pytest.mark.parametrize("phase", ["ready", "init", "acked", "refused", "closing"])
@pytest.mark.parametrize(
    "text", [*DECODED, *LEFT, ORJSON_ONLY, STDLIB_ONLY, publish(channel="other/a")]
)
def test_receive_publish_is_receive_text(parser: str, phase: str, text: str) -> None:
    """What ``receive_publish`` returns plus what it queues is what ``receive_text``
    queues, in every phase, for every kind of frame (with and without orjson)."""
    assert _received(_in_phase(phase), text, True) == _received(_in_phase(phase), text, False)


def test_receive_publish_returns_the_event_of_a_valid_publish() -> None:
    proto = _in_phase("acked")
    got = proto.receive_publish(publish())
    assert isinstance(got, server_protocol.PublishRequested)
    assert got.id == PUB_ID
    assert got.channel == parse_channel("default/a")
    assert proto.events_received() == []
    assert proto.data_to_send() == []
    # ...and it is pending: its answer is the core's to give, once.
    assert proto.publish_success_text(PUB_ID, ["x", "y"]) is not None
    with pytest.raises(LocalProtocolError):
        proto.accept_publish_all(PUB_ID, ["x", "y"])


def test_receive_publish_skips_the_table_only_where_it_says_so() -> None:
    """The phases ``receive_publish`` serves without the transition table are exactly
    those where a publish is an operation that keeps the phase."""
    served = {
        phase
        for (phase, kind), (action, after) in server_protocol._TRANSITIONS.items()
        if kind == "publish" and action is server_protocol._Action.OPERATION and after is phase
    }
    phases = server_protocol._Phase
    assert served == {phases.READY, phases.INIT_RECEIVED, phases.ACKED}


def test_receive_publish_after_eof_is_misuse() -> None:
    proto = _in_phase("acked")
    proto.receive_eof()
    with pytest.raises(LocalProtocolError):
        proto.receive_publish(publish())


# --- the shell: the received publish is recorded once, on every path ---------------------


@pytest.mark.asyncio
async def test_a_received_publish_is_recorded_once_on_every_path(
    server: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The publish path records the received frame with the publish; the general path
    (a fault), and the frame log's path (``appsync_emulator.ws`` at debug), record it as
    every frame is, once, before the answer."""
    with caplog.at_level(logging.DEBUG, "appsync_emulator.ws"):
        logged = await open_raw(server)  # the frame log is chosen when a connection opens
    plain = await open_raw(server)
    for client in (logged, plain):
        await client.init()
    with server.inject(RejectPublish()):
        await plain.publish("default/a", ["1"], pub_id="general")
        await plain.expect("publish_error", id="general")
    await plain.publish("default/a", ["2"], pub_id="quick")
    await plain.expect("publish_success", id="quick")
    with caplog.at_level(logging.DEBUG, "appsync_emulator.ws"):
        await logged.publish("default/a", ["3"], pub_id="logged")
        await logged.expect("publish_success", id="logged")
    received = [
        (f.connection_id, json.loads(f.data)["id"])
        for f in server.recorder.received
        if f.frame_type == "publish"
    ]
    ids = [c.id for c in server.recorder.connections]
    assert received == [(ids[1], "general"), (ids[1], "quick"), (ids[0], "logged")]
    published = [(r.connection_id, r.publish_id) for r in server.recorder.published]
    assert published == [(ids[1], "quick"), (ids[0], "logged")]
    frames = [r.getMessage() for r in caplog.records if r.name == "appsync_emulator.ws"]
    assert any(m.startswith(f"[{ids[0]}] < ") and '"logged"' in m for m in frames)


@pytest.mark.parametrize(
    "frame_id",
    ["p1", "P", "a" * 128, "a" * 129, "", "a-b_c+d", "a b", "é", "\u0661", "ab\n", "x!", 7],
)
def test_the_id_check_is_the_pattern(frame_id: Any) -> None:
    """Letters and digits are checked without the regex; the answer is the pattern's."""
    from appsync_events.protocol.limits import is_valid_id

    proto = _in_phase("acked")
    text = json.dumps({"type": "publish", "id": frame_id, "channel": "default/a", "events": ["1"]})
    got = proto.receive_publish(text)
    if isinstance(frame_id, str):
        message = codec.decode_client(text)
        assert isinstance(message, server_protocol.Publish)
        event = proto._check_publish(message)  # the same id again, straight to the check
        assert (event is not None) == is_valid_id(frame_id)
        assert isinstance(got, server_protocol.PublishRequested) == is_valid_id(frame_id)
    else:
        assert got == "publish"  # not a string: the codec's error


@pytest.mark.asyncio
async def test_publish_now_uses_each_namespaces_publish_modes_and_the_size_bound() -> None:
    config = EmulatorConfig(
        api_keys=(ApiKeyConfig(key="da2-k"),),
        namespaces=(
            NamespaceConfig(name="default"),
            NamespaceConfig(name="iam", publish_auth_modes=(AuthType.AWS_IAM,)),
        ),
        limits=Limits(max_event_bytes=1001),
    )
    emulator = Emulator(config)
    operations = emulator.operations
    auth = await authorized(emulator)
    assert operations.publish_now(parse_channel("iam/a"), ("1",), auth) is None
    default = parse_channel("default/a")
    assert operations.publish_now(default, ("1" * 250,), auth) is not None  # 1,000 bytes
    assert operations.publish_now(default, ("1" * 251,), auth) is None  # maybe 1,004
