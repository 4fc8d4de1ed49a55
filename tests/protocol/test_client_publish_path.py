"""The client protocol's publish fast paths give exactly what the general paths give.

``send_publish`` builds its frame with one encode call, and an open connection parses a
well-formed ``publish_success`` once, on its own fast path.  Every frame here is fed to
an open protocol (fast path when it applies) and to one still connecting (always the
general decoder), and both must report the same events; the frames sent must be exactly
what ``codec.encode`` makes of the ``Publish`` message.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from appsync_events import RawJSON
from appsync_events.errors import ConfigurationError, InvalidChannelError
from appsync_events.protocol import codec, publish as publish_module
from appsync_events.protocol.client import (
    ClientProtocol,
    ClientState,
    ConnectionFailed,
    FrameIgnored,
    PublishAccepted,
    SharedHeaders,
)
from appsync_events.protocol.messages import Publish
from appsync_events.protocol.publish import PreparedPublish, encode_json

OK = [{"identifier": "a-1", "index": 0}]


def _protocols() -> tuple[ClientProtocol, ClientProtocol]:
    """An open protocol and a connecting one, each with the publish ``p1`` pending."""
    pair = []
    for opened in (True, False):
        p = ClientProtocol()
        p.send_connection_init()
        if opened:
            p.receive_text('{"type":"connection_ack","connectionTimeoutMs":300000}')
            p.events_received()
        prepared = p.prepare_publish("default/x", [RawJSON("1")], html_escape=False)
        p.send_publish(prepared, {"x-api-key": "k"}, "p1")
        p.data_to_send()
        pair.append(p)
    assert pair[0].state is ClientState.OPEN
    assert pair[1].state is ClientState.CONNECTING
    return pair[0], pair[1]


def _frame(**fields: Any) -> str:
    return json.dumps({"type": "publish_success", "id": "p1", **fields})


FRAMES = {
    "one event": _frame(successful=OK, failed=[]),
    "five events": _frame(
        successful=[{"identifier": f"e{i}", "index": i} for i in range(5)], failed=[]
    ),
    "failed null": _frame(successful=OK, failed=None),
    "failed absent": _frame(successful=OK),
    "extra fields": _frame(successful=OK, failed=[], other={"x": 1}),
    "extra item fields": _frame(successful=[{"identifier": "a", "index": 0, "x": 1}]),
    "extra float field": _frame(successful=OK, failed=[], other=[1.5, {"y": 2.5}]),
    "extra huge float": _frame(successful=OK, other={"n": 1e300}),
    "extra huge integer": _frame(successful=OK, other=2**70),
    "extra deep field": '{"type":"publish_success","id":"p1","successful":[],"deep":'
    + "[" * 300
    + "]" * 300
    + "}",
    "whitespace": " " + _frame(successful=OK, failed=[]) + "\n",
    "unknown id": json.dumps(
        {"type": "publish_success", "id": "nobody", "successful": OK, "failed": []}
    ),
    # Left to the general path:
    "successful absent": _frame(failed=[]),
    "successful not a list": _frame(successful={"a": 1}, failed=[]),
    "failed events": _frame(
        successful=[], failed=[{"identifier": "f", "index": 0, "code": "x", "message": "m"}]
    ),
    "failed not a list": _frame(successful=OK, failed={}),
    "item not an object": _frame(successful=["a"], failed=[]),
    "identifier not a string": _frame(successful=[{"identifier": 1, "index": 0}], failed=[]),
    "index a float": _frame(successful=[{"identifier": "a", "index": 1.0}], failed=[]),
    "index a boolean": _frame(successful=[{"identifier": "a", "index": True}], failed=[]),
    "index absent": _frame(successful=[{"identifier": "a"}], failed=[]),
    "id not a string": json.dumps({"type": "publish_success", "id": 7, "successful": OK}),
    "not JSON": '{"type":"publish_success",',
    "not an object": '["publish_success"]',
    "another type naming it": json.dumps({"type": "ka", "note": "publish_success"}),
    "too long to sniff": _frame(successful=OK, failed=[], pad="x" * 5000),
}


def _events(p: ClientProtocol, text: str) -> list[Any]:
    p.receive_text(text)
    return p.events_received()


@pytest.mark.parametrize("parser", ["fast", "json"])
@pytest.mark.parametrize("name", list(FRAMES))
def test_publish_success_fast_path_matches_the_general_path(
    name: str, parser: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if parser == "json":
        monkeypatch.setattr(codec, "_FAST", None)
    fast, general = _protocols()
    text = FRAMES[name]
    got, expected = _events(fast, text), _events(general, text)
    if any(isinstance(e, ConnectionFailed) for e in expected):
        assert [type(e) for e in got] == [ConnectionFailed]
        assert str(got[0].error) == str(expected[0].error)
        assert fast.state is ClientState.FAILED
    else:
        assert got == expected
        assert fast.pending == general.pending
        assert fast.state is ClientState.OPEN


def test_publish_success_fast_path_results() -> None:
    fast, _ = _protocols()
    (accepted,) = _events(fast, FRAMES["one event"])
    assert isinstance(accepted, PublishAccepted)
    assert (accepted.id, accepted.channel, accepted.failed) == ("p1", "default/x", ())
    assert [(s.identifier, s.index) for s in accepted.successful] == [("a-1", 0)]
    assert fast.pending == {}
    (ignored,) = _events(fast, FRAMES["one event"])  # answered already: nobody waits
    assert isinstance(ignored, FrameIgnored)
    assert ignored.id == "p1"


@pytest.mark.parametrize("name", list(FRAMES))
def test_publish_success_from_a_parsed_value_matches_the_general_path(name: str) -> None:
    """The shell parses a frame with the fast parser and hands an answer's value to
    ``receive_publish_success``; what it does not take (``False``) goes as text to the
    general path.  Together they report what the general path alone reports."""
    orjson = pytest.importorskip("orjson")
    fast, general = _protocols()
    text = FRAMES[name]
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None  # the shell hands the core no value: the text goes as it is
    answered = False if value is None else fast.receive_publish_success(value)
    if answered is False:
        fast.receive_text(text)
    got = [] if answered is None or answered is False else [answered]
    got += fast.events_received()
    expected = _events(general, text)
    if any(isinstance(e, ConnectionFailed) for e in expected):
        assert answered is False
        assert [type(e) for e in got] == [ConnectionFailed]
        assert str(got[0].error) == str(expected[0].error)
    else:
        assert got == expected
        assert fast.pending == general.pending


def test_publish_success_value_is_not_taken_before_the_connection_is_open() -> None:
    _, connecting = _protocols()
    assert connecting.receive_publish_success(json.loads(FRAMES["one event"])) is False
    assert connecting.events_received() == []
    assert "p1" in connecting.pending


def test_receive_event_returns_the_publish_answer() -> None:
    """``receive_event`` returns what ``receive_text`` queues for a publish's answer."""
    fast, _ = _protocols()
    accepted = fast.receive_event(FRAMES["one event"])
    assert isinstance(accepted, PublishAccepted)
    assert fast.events_received() == []
    assert (accepted.id, accepted.channel) == ("p1", "default/x")
    assert fast.pending == {}
    assert fast.receive_event(FRAMES["one event"]) is None  # answered already
    (ignored,) = fast.events_received()
    assert isinstance(ignored, FrameIgnored)
    assert fast.receive_event(FRAMES["failed events"]) is None  # the general path
    assert [type(e) for e in fast.events_received()] == [FrameIgnored]


def test_data_frame_with_the_name_in_its_id_still_delivers() -> None:
    p, _ = _protocols()
    p.send_subscribe("default/x", None, "publish_success")
    p.data_to_send()
    _events(p, '{"type":"subscribe_success","id":"publish_success"}')
    (message,) = _events(p, '{"type":"data","id":"publish_success","event":"1"}')
    assert (message.data, message.subscription_id) == ("1", "publish_success")


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        {"host": "h.example", "x-api-key": "da2-k"},
        {"host": "h", "x-amz-date": "20240101T000000Z", "Authorization": "AWS4 é ✓"},
        {"host": "h", "x-note": "lone \udc80 surrogate"},
    ],
)
@pytest.mark.parametrize("events", [["1"], ['{"a":"é"}', '"\\ud800"', "[1,2]"]])
def test_publish_frame_is_what_the_message_encodes_to(
    authorization: dict[str, str] | None, events: list[str]
) -> None:
    p = ClientProtocol()
    prepared = p.prepare_publish("default/x", [RawJSON(e) for e in events], html_escape=False)
    p.send_publish(prepared, authorization, "op-1")
    (out,) = p.data_to_send()
    message = Publish(
        id="op-1", channel="default/x", events=prepared.events, authorization=authorization
    )
    assert (out.kind, out.id, out.text) == ("publish", "op-1", codec.encode(message))


def _reference(value: object) -> str:
    return json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        value
    )


def _outcome(encode: Any, value: object) -> tuple[str, str]:
    try:
        return "ok", encode(value)
    except (TypeError, ValueError, RecursionError) as exc:
        return type(exc).__name__, str(exc)


def _circular() -> list[object]:
    value: list[object] = [1]
    value.append(value)
    return value


def _deep() -> list[object]:
    value: list[object] = []
    for _ in range(100_000):
        value = [value]
    return value


VALUES: dict[str, Any] = {
    "object": {"i": 1, "text": "héllo ✓", "n": None, "ok": True, "f": 1.5},
    "string": "hi",
    "keys of every kind": {3: "a", 2.5: "b", True: "c", None: "d"},
    "nan": float("nan"),
    "infinity": [float("inf")],
    "unserialisable": {"x": object()},
    "bad key": {(1, 2): "x"},
    "circular": _circular(),
    "deep": _deep(),
    "lone surrogate": "\ud800",
}


@pytest.mark.parametrize("name", list(VALUES))
def test_encode_json_is_the_stdlib_encoder(name: str) -> None:
    """encode_json gives the text, or raises the error, the stdlib encoder gives."""
    value = VALUES[name]
    assert _outcome(encode_json, value) == _outcome(_reference, value)


def test_encode_json_without_the_compiled_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publish_module, "_FAST_ENCODE", None)
    for value in (VALUES["object"], VALUES["circular"]):
        assert _outcome(encode_json, value) == _outcome(_reference, value)


def _one_event(value: object, html_escape: bool, max_bytes: int) -> tuple[str, ...]:
    prepared = publish_module.prepare_publish(
        "default/x", (value,), html_escape=html_escape, max_event_bytes=max_bytes
    )
    return prepared.events


def _one_event_general(value: object, html_escape: bool, max_bytes: int) -> tuple[str, ...]:
    return (publish_module._event_text(0, value, max_bytes, html_escape),)


@pytest.mark.parametrize("name", [*VALUES, "long", "raw"])
@pytest.mark.parametrize("html_escape", [False, True])
@pytest.mark.parametrize("compiled", [True, False])
def test_one_event_is_encoded_as_the_general_path_encodes_it(
    name: str, html_escape: bool, compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publish of one event (encoded without ``_event_text`` when it can be) gives the
    text, or the error, that ``_event_text`` gives; with and without the compiled encoder."""
    if not compiled:
        monkeypatch.setattr(publish_module, "_FAST_ENCODE", None)
    value = {"long": "x" * 40, "raw": RawJSON('{"a": 1}')}.get(name, VALUES.get(name))
    for max_bytes in (32, 240_000):
        outcomes = []
        for make in (_one_event, _one_event_general):
            try:
                outcomes.append(("ok", make(value, html_escape, max_bytes)))
            except ConfigurationError as exc:
                outcomes.append(("error", str(exc)))
        assert outcomes[0] == outcomes[1]


def test_circular_event_names_the_problem() -> None:
    with pytest.raises(ConfigurationError, match="Circular reference detected"):
        ClientProtocol().prepare_publish("default/x", [_circular()], html_escape=False)


@pytest.mark.parametrize("events", [["1"], ['{"a":"é"}', '"\\ud800"', "[1,2]"]])
def test_a_shared_header_map_is_encoded_once_and_sent_as_a_dict_would_be(
    events: list[str],
) -> None:
    p = ClientProtocol()
    prepared = p.prepare_publish("default/x", [RawJSON(e) for e in events], html_escape=False)
    headers = {"host": "h.example", "x-amz-date": "20240101T000000Z", "x-api-key": "da2-é"}
    shared, other = SharedHeaders(headers), SharedHeaders(headers)
    for operation_id, authorization in (("a", shared), ("b", shared), ("c", other)):
        p.send_publish(prepared, authorization, operation_id)
        (out,) = p.data_to_send()
        message = Publish(
            id=operation_id, channel="default/x", events=prepared.events, authorization=headers
        )
        assert out.text == codec.encode(message)
        assert p._last_authorization is not None
        assert p._last_authorization[0] is authorization


def test_a_prepared_publish_made_by_hand_is_encoded_the_general_way() -> None:
    """Events that are not strings: the frame encode_json makes, as before."""
    p = ClientProtocol()
    p.send_publish(PreparedPublish("default/x", (1,)), {"k": "v"}, "op")  # type: ignore[arg-type]
    (out,) = p.data_to_send()
    assert out.text == (
        '{"type":"publish","id":"op","channel":"default/x","events":[1],"authorization":{"k":"v"}}'
    )
    p.send_publish(PreparedPublish("default/x", (None,)), None, "op2")  # type: ignore[arg-type]
    (out,) = p.data_to_send()
    assert out.text == '{"type":"publish","id":"op2","channel":"default/x","events":[null]}'


def test_known_channels_are_remembered_up_to_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    known: set[str] = set()
    monkeypatch.setattr(publish_module, "_known_channels", known)
    monkeypatch.setattr(publish_module, "_KNOWN_CHANNELS", 2)

    class Channel(str):
        pass

    prepare = publish_module.prepare_publish
    prepare(Channel("default/sub"), ["1"], html_escape=False)
    assert known == set()  # only exact strs are remembered
    prepare("default/a", ["1"], html_escape=False)
    prepare("default/b", ("1",), html_escape=False)
    assert known == {"default/a", "default/b"}
    prepare("default/a", ["1"], html_escape=False)
    prepare("default/c", ["1"], html_escape=False)  # full: forgotten, then remembered
    assert known == {"default/c"}
    with pytest.raises(InvalidChannelError):
        prepare("default/*", ["1"], html_escape=False)
    assert "default/*" not in known


def test_publish_frame_parts_are_kept_per_channel_up_to_a_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The frame's channel part is encoded once per channel (a bounded memory), and every
    frame is still exactly what the message encodes to."""
    from appsync_events.protocol import client as client_module

    monkeypatch.setattr(client_module, "_KNOWN_PUBLISH_CHANNELS", 2)
    p = ClientProtocol()
    headers = SharedHeaders({"host": "h.example", "x-api-key": "da2-k"})
    for n, channel in enumerate(["default/a", "default/b", "default/a", "default/c"]):
        prepared = p.prepare_publish(channel, [n], html_escape=False)
        p.send_publish(prepared, headers, f"op{n}")
        (out,) = p.data_to_send()
        message = Publish(id=f"op{n}", channel=channel, events=(str(n),), authorization=headers)
        assert out.text == codec.encode(message)
    assert set(p._publish_channels) == {"default/c"}  # full at the third: forgotten
    assert p.pending == {f"op{n}": client_module.Operation.PUBLISH for n in range(4)}


def test_publish_frame_with_an_id_of_a_str_subclass() -> None:
    """An id of a ``str`` subclass is sent as its characters (what the checks saw)."""

    class Id(str):
        def __str__(self) -> str:
            return "something-else"

    p = ClientProtocol()
    prepared = p.prepare_publish("default/x", [1], html_escape=False)
    p.send_publish(prepared, None, Id("op-1"))
    (out,) = p.data_to_send()
    assert out.text == '{"type":"publish","id":"op-1","channel":"default/x","events":["1"]}'


def test_a_prepared_publish_with_an_unhashable_channel_is_encoded_the_general_way() -> None:
    p = ClientProtocol()
    prepared = PreparedPublish(["default", "x"], ("1",))  # type: ignore[arg-type]
    p.send_publish(prepared, None, "op")
    (out,) = p.data_to_send()
    assert out.text == '{"type":"publish","id":"op","channel":["default","x"],"events":["1"]}'
