"""ClientProtocol and ServerProtocol wired to each other in memory (no loop, no socket)."""

from __future__ import annotations

import json

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from appsync_emulator.catalogue import (
    CONNECTION_UNAUTHORIZED,
    DUPLICATE_SUBSCRIPTION,
)
from appsync_emulator.server_protocol import (
    InitReceived,
    PublishRequested,
    Rejected,
    ServerProtocol,
    ServerState,
    SubscribeRequested,
    UnsubscribeRequested,
)
from appsync_events import RawJSON
from appsync_events.errors import (
    ConfigurationError,
    ErrorDetail,
    HandshakeError,
    LocalProtocolError,
    PublishError,
    SubscribeError,
    UnauthorizedError,
    UnsubscribeError,
)
from appsync_events.protocol import codec
from appsync_events.protocol.channels import Channel, parse_channel, parse_subscribe_channel
from appsync_events.protocol.client import (
    BroadcastFailed,
    ClientState,
    ConnectionAccepted,
    ConnectionFailed,
    EventReceived,
    FrameIgnored,
    KeepAliveReceived,
    PublishAccepted,
    PublishRejected,
    SubscribeAccepted,
    SubscribeRejected,
    UnsubscribeAccepted,
)
from appsync_events.protocol.messages import (
    ConnectionAck,
    ConnectionInit,
    KeepAlive,
    PublishedEvent,
    Subscribe,
    SubscribeError as SubscribeErrorMessage,
    SubscribeSuccess,
    Unsubscribe,
    UnsubscribeSuccess,
)
from tests.helpers import ProtocolPair, ServerPolicy

AUTH = {"host": "example.appsync-api.us-east-1.amazonaws.com", "x-api-key": "da2-key"}


def received(sub_id: str, event: str, channel: str) -> EventReceived:
    """The client event for ``event`` delivered to subscription ``sub_id`` on ``channel``."""
    return EventReceived(data=event, subscription_id=sub_id, channel=channel)


def connected(**server_options: object) -> ProtocolPair:
    """A pair whose handshake is done (init, ack, ka) and whose events were drained."""
    pair = ProtocolPair(server=ServerProtocol(**server_options))  # type: ignore[arg-type]
    pair.client.send_connection_init()
    pair.run()
    assert pair.client.state is ClientState.OPEN
    return pair


def subscribed(pair: ProtocolPair, channel: str, sub_id: str | None = None) -> str:
    """Subscribe to ``channel`` through ``pair`` and return the subscription id."""
    sub_id = pair.client.send_subscribe(channel, AUTH, sub_id)
    assert pair.run() == [SubscribeAccepted(id=sub_id, channel=channel)]
    return sub_id


def publish(
    pair: ProtocolPair, channel: str, events: list[str], operation_id: str | None = None
) -> str:
    """Prepare and send a publish of the JSON texts ``events``; return its id."""
    prepared = pair.client.prepare_publish(
        channel, [RawJSON(event) for event in events], html_escape=False
    )
    return pair.client.send_publish(prepared, AUTH, operation_id)


# --- connect ------------------------------------------------------------------------------


def test_pair_connects_with_ack_and_keepalive() -> None:
    """connection_init is answered by connection_ack with the timeout, then ka."""
    pair = ProtocolPair(server=ServerProtocol(connection_timeout_ms=300))
    pair.client.send_connection_init()
    assert pair.to_server() == [InitReceived()]
    assert pair.client.state is ClientState.CONNECTING
    pair.server.send_connection_ack()
    pair.server.send_keepalive()
    assert pair.to_client() == [
        ConnectionAccepted(connection_timeout_ms=300),
        KeepAliveReceived(),
    ]
    assert pair.client.state is ClientState.OPEN
    assert pair.client.keepalive_timeout == 0.3
    assert pair.client_sent == [ConnectionInit()]
    assert pair.server_sent == [ConnectionAck(connection_timeout_ms=300), KeepAlive()]
    assert pair.server.acknowledged


def test_pair_ack_timeout_chosen_by_shell() -> None:
    """The shell may override connectionTimeoutMs per ack; the client exposes seconds."""
    pair = ProtocolPair(policy=ServerPolicy(connection_timeout_ms=1500))
    pair.client.send_connection_init()
    events = pair.run()
    assert events[0] == ConnectionAccepted(connection_timeout_ms=1500)
    assert events[0].keepalive_timeout == 1.5  # type: ignore[union-attr]


def test_pair_serves_operations_without_connection_init() -> None:
    """An init-less client subscribes and publishes; no ack is ever sent
    (docs: protocol.rst, "connection_init")."""
    pair = ProtocolPair()
    sub_id = subscribed(pair, "default/chat")
    publish(pair, "default/chat", ['{"a":1}'])
    events = pair.run()
    assert received(sub_id, '{"a":1}', "default/chat") in events
    assert not any(isinstance(m, ConnectionAck) for m in pair.server_sent)
    assert pair.client.state is ClientState.CONNECTING


def test_pair_pipelined_subscribe_waits_for_the_ack() -> None:
    """A subscribe pipelined after init is answered only after the ack
    (docs: protocol.rst, "connection_ack")."""
    pair = ProtocolPair()
    pair.client.send_connection_init()
    sub_id = pair.client.send_subscribe("default/x", AUTH)
    events = pair.to_server()
    assert [type(e) for e in events] == [InitReceived, SubscribeRequested]
    pair.server.accept_subscribe(sub_id)
    assert pair.server.data_to_send() == []  # held: nothing may precede the ack
    pair.server.send_connection_ack()
    assert pair.to_client() == [
        ConnectionAccepted(connection_timeout_ms=300000),
        SubscribeAccepted(id=sub_id, channel="default/x"),
    ]


def test_pair_unauthorized_connection_fails_the_handshake() -> None:
    """A connection refused at the upgrade gets connection_error and a close
    (docs: protocol.rst, "Connection authorization")."""
    pair = ProtocolPair(server=ServerProtocol(connection_authorized=False))
    pair.client.send_connection_init()
    assert pair.to_server() == [
        Rejected(frame_type="connection_init", id=None, errors=(CONNECTION_UNAUTHORIZED,))
    ]
    assert pair.server.close_expected == (1000, "")
    assert pair.server.state is ServerState.CLOSING
    [event] = pair.to_client()
    assert isinstance(event, ConnectionFailed)
    assert isinstance(event.error, UnauthorizedError)
    assert event.error.errors == (CONNECTION_UNAUTHORIZED,)
    assert pair.client.state is ClientState.FAILED
    assert pair.client.failure is event.error
    with pytest.raises(LocalProtocolError):
        pair.client.send_subscribe("default/x", AUTH)


def test_pair_shell_fails_connection_during_handshake() -> None:
    """fail_connection during the handshake reaches the client as a HandshakeError."""
    pair = ProtocolPair(policy=ServerPolicy(ack=False))
    pair.client.send_connection_init()
    pair.run()
    pair.server.fail_connection([ErrorDetail(error_type="BadRequestException", message="sig")])
    [event] = pair.to_client()
    assert isinstance(event, ConnectionFailed)
    assert type(event.error) is HandshakeError
    assert event.error.errors[0].error_type == "BadRequestException"


# --- subscribe ----------------------------------------------------------------------------


def test_pair_subscribe_activates_on_both_sides() -> None:
    """subscribe_success makes the subscription active on client and server."""
    pair = connected()
    sub_id = pair.client.send_subscribe("/default/room/1", AUTH, operation_id="sub-1")
    assert sub_id == "sub-1"
    [request] = pair.to_server()
    assert request == SubscribeRequested(
        id="sub-1",
        channel=parse_subscribe_channel("/default/room/1"),
        message=Subscribe(id="sub-1", channel="/default/room/1", authorization=AUTH),
    )
    assert pair.server.pending_subscriptions == {"sub-1": request.channel}  # type: ignore[union-attr]
    pair.server.accept_subscribe("sub-1")
    assert pair.to_client() == [SubscribeAccepted(id="sub-1", channel="/default/room/1")]
    assert pair.client.subscriptions == {"sub-1": "/default/room/1"}
    assert dict(pair.server.subscriptions) == {"sub-1": parse_channel("default/room/1")}


def test_pair_subscribe_rejected_by_shell() -> None:
    """reject_subscribe reaches the pending subscribe as SubscribeRejected."""
    pair = connected()
    pair.policy.accept_subscribes = False
    sub_id = pair.client.send_subscribe("default/x", AUTH)
    pair.run()
    errors = [ErrorDetail(error_type="SubscriptionProcessingError", message="nope")]
    pair.server.reject_subscribe(sub_id, errors)
    [event] = pair.to_client()
    assert event == SubscribeRejected(id=sub_id, channel="default/x", errors=tuple(errors))
    assert isinstance(event.error, SubscribeError)
    assert event.error.channel == "default/x"
    assert pair.client.subscriptions == {}
    assert pair.server.subscriptions == {}


def test_pair_subscribe_unauthorized_maps_to_unauthorized_error() -> None:
    """An Unauthorized subscribe_error becomes UnauthorizedError for the caller."""
    pair = connected()
    pair.policy.accept_subscribes = False
    sub_id = pair.client.send_subscribe("default/x", AUTH)
    pair.run()
    pair.server.reject_subscribe(sub_id, [ErrorDetail(error_type="Unauthorized", message="")])
    [event] = pair.to_client()
    assert isinstance(event, SubscribeRejected)
    assert isinstance(event.error, UnauthorizedError)
    assert event.error.operation == "subscribe"


def test_pair_unknown_namespace_rejected_by_server() -> None:
    """The server refuses a channel of an undefined namespace with subscribe_error."""
    pair = connected(namespace_exists=lambda name: name == "default")
    sub_id = pair.client.send_subscribe("other/x", AUTH)
    events = pair.run()
    [event] = events
    assert isinstance(event, SubscribeRejected)
    assert event.id == sub_id
    assert event.errors[0].error_type == "BadRequestException"
    assert "other" in event.errors[0].message
    assert isinstance(pair.server_events[-1], Rejected)


def test_pair_invalid_channel_rejected_locally() -> None:
    """The client refuses an invalid channel before anything is sent."""
    pair = connected()
    with pytest.raises(ConfigurationError):
        pair.client.send_subscribe("default/a_b", AUTH)
    with pytest.raises(ConfigurationError):
        publish(pair, "default/*", ["1"])
    assert pair.client.data_to_send() == []


# --- publish ------------------------------------------------------------------------------


def test_pair_publish_one_event() -> None:
    """A one-event publish gets publish_success and the event reaches the subscriber."""
    pair = connected()
    sub_id = subscribed(pair, "default/chat")
    pub_id = publish(pair, "default/chat", ['{"text":"hi"}'])
    [request] = pair.to_server()
    assert isinstance(request, PublishRequested)
    assert request.channel == parse_channel("default/chat")
    assert request.message.events == ('{"text":"hi"}',)
    pair.serve([request])
    assert pair.to_client() == [
        PublishAccepted(
            id=pub_id,
            channel="default/chat",
            successful=(PublishedEvent(identifier=f"{pub_id}:0", index=0),),
            failed=(),
        ),
        received(sub_id, '{"text":"hi"}', "default/chat"),
    ]


def test_pair_publish_five_events_in_order() -> None:
    """Five events are accepted and delivered as five data frames in index order."""
    pair = connected()
    sub_id = subscribed(pair, "default/chat")
    events = [json.dumps({"n": n}) for n in range(5)]
    pub_id = publish(pair, "default/chat", events)
    got = pair.run()
    accepted = got[0]
    assert isinstance(accepted, PublishAccepted)
    assert accepted.id == pub_id
    assert [s.index for s in accepted.successful] == [0, 1, 2, 3, 4]
    assert got[1:] == [received(sub_id, e, "default/chat") for e in events]


def test_pair_publish_six_events_rejected_locally() -> None:
    """A sixth event raises ConfigurationError and queues nothing."""
    pair = connected()
    with pytest.raises(ConfigurationError, match="6 events"):
        publish(pair, "default/chat", ["1"] * 6)
    assert pair.client.data_to_send() == []
    assert pair.client.pending == {}


def test_pair_publish_six_events_rejected_by_server() -> None:
    """A client allowing six events gets publish_error from the server
    (docs: protocol.rst, "Limits")."""
    pair = connected()
    pair.client.max_events_per_publish = 6
    pub_id = publish(pair, "default/chat", ["1"] * 6)
    [event] = pair.run()
    assert isinstance(event, PublishRejected)
    assert event.id == pub_id
    assert event.errors[0].error_type == "LimitExceededException"
    assert isinstance(event.error, PublishError)


def test_pair_publish_rejected_by_shell() -> None:
    """reject_publish reaches the pending publish."""
    pair = connected()
    pair.policy.accept_publishes = False
    pub_id = publish(pair, "default/chat", ["1"])
    pair.run()
    pair.server.reject_publish(pub_id, [ErrorDetail(error_type="X", message="handler said no")])
    [event] = pair.to_client()
    assert event == PublishRejected(
        id=pub_id,
        channel="default/chat",
        errors=(ErrorDetail(error_type="X", message="handler said no"),),
    )


def test_pair_publish_without_subscribers_is_not_delivered() -> None:
    """A publish with no matching subscription is acknowledged and delivers nothing."""
    pair = connected()
    subscribed(pair, "default/other")
    publish(pair, "default/chat", ["1"])
    [event] = pair.run()
    assert isinstance(event, PublishAccepted)


# --- routing ------------------------------------------------------------------------------


def test_pair_data_routed_by_subscription_id() -> None:
    """Each data frame goes to the subscription whose id it carries; wildcards included."""
    pair = connected()
    exact = subscribed(pair, "default/a")
    wild = subscribed(pair, "/default/*")
    other = subscribed(pair, "other/a")
    publish(pair, "default/a", ['"x"'])
    got = [e for e in pair.run() if isinstance(e, EventReceived)]
    assert got == [received(exact, '"x"', "default/a"), received(wild, '"x"', "/default/*")]
    publish(pair, "/default/b/c", ['"y"'])
    got = [e for e in pair.run() if isinstance(e, EventReceived)]
    assert got == [received(wild, '"y"', "/default/*")]
    publish(pair, "other/a", ['"z"'])
    got = [e for e in pair.run() if isinstance(e, EventReceived)]
    assert got == [received(other, '"z"', "other/a")]


def test_pair_data_for_unknown_id_is_ignored() -> None:
    """data for an id the client does not know is reported as FrameIgnored, nothing else."""
    pair = connected()
    client = pair.client
    client.receive_text('{"type":"data","id":"ghost","event":"1"}')
    [event] = client.events_received()
    assert isinstance(event, FrameIgnored)
    assert (event.frame_type, event.id) == ("data", "ghost")
    assert client.state is ClientState.OPEN


def test_pair_broadcast_error_routed_to_subscription() -> None:
    """broadcast_error reaches the subscription with that id."""
    pair = connected()
    sub_id = subscribed(pair, "default/a")
    errors = [ErrorDetail(error_type="MessageProcessingError", message="m")]
    pair.server.send_broadcast_error(sub_id, errors)
    [event] = pair.to_client()
    assert event == BroadcastFailed(id=sub_id, channel="default/a", errors=tuple(errors))


def test_pair_error_frames_routed_to_pending_requests() -> None:
    """Error frames reach the pending request named by their id, not another one."""
    pair = connected()
    pair.policy = ServerPolicy(accept_subscribes=False, accept_publishes=False)
    sub_id = pair.client.send_subscribe("default/a", AUTH)
    pub_a = publish(pair, "default/a", ["1"])
    pub_b = publish(pair, "default/a", ["2"])
    assert pair.run() == []
    assert list(pair.client.pending) == [sub_id, pub_a, pub_b]
    boom = (ErrorDetail(error_type="BadRequestException", message="boom"),)
    # generic error with the id of the second publish
    pair.server.send_error(boom, operation_id=pub_b)
    assert pair.to_client() == [PublishRejected(id=pub_b, channel="default/a", errors=boom)]
    pair.server.reject_publish(pub_b, boom)  # the server's own record of pub_b
    pair.server.data_to_send()
    # typed error for the subscribe
    pair.server.reject_subscribe(sub_id, boom)
    assert pair.to_client() == [SubscribeRejected(id=sub_id, channel="default/a", errors=boom)]
    # generic error without id: the oldest pending operation (pub_a)
    pair.server.send_error(boom)
    assert pair.to_client() == [PublishRejected(id=pub_a, channel="default/a", errors=boom)]
    assert pair.client.pending == {}
    assert pair.client.state is ClientState.OPEN


def test_pair_error_without_id_and_nothing_pending_fails_connection() -> None:
    """An error without id when nothing is pending concerns the connection."""
    pair = connected()
    pair.server.receive_binary(b"\x00")  # the server answers a binary frame with `error`
    [rejected] = pair.server.events_received()
    assert isinstance(rejected, Rejected)
    [event] = pair.to_client()
    assert isinstance(event, ConnectionFailed)
    assert pair.client.state is ClientState.FAILED


# --- unsubscribe --------------------------------------------------------------------------


def test_pair_unsubscribe_stops_delivery() -> None:
    """After unsubscribe_success no data for that id reaches the client."""
    pair = connected()
    sub_id = subscribed(pair, "default/a")
    pair.client.send_unsubscribe(sub_id)
    assert pair.to_server() == [UnsubscribeRequested(id=sub_id, channel=parse_channel("default/a"))]
    assert pair.to_client() == [UnsubscribeAccepted(id=sub_id, channel="default/a")]
    assert pair.client.subscriptions == {}
    assert pair.server.subscriptions == {}
    assert pair.server.send_data(sub_id, "1") is False
    publish(pair, "default/a", ["1"])
    events = pair.run()
    assert [type(e) for e in events] == [PublishAccepted]
    assert Unsubscribe(id=sub_id) in pair.client_sent
    assert UnsubscribeSuccess(id=sub_id) in pair.server_sent


def test_pair_unsubscribe_unknown_id_rejected_by_server() -> None:
    """An unsubscribe the server does not know gets unsubscribe_error
    (docs: protocol.rst, "unsubscribe_success and unsubscribe_error")."""
    pair = connected()
    sub_id = subscribed(pair, "default/a")
    # The server forgets the subscription behind the client's back (a restart, say).
    pair.server.receive_text(codec.encode(Unsubscribe(id=sub_id)))
    pair.server.events_received()
    pair.server.accept_unsubscribe(sub_id)
    pair.server.data_to_send()
    pair.client.send_unsubscribe(sub_id)
    [event] = pair.run()
    assert event.id == sub_id  # type: ignore[union-attr]
    assert isinstance(event.error, UnsubscribeError)  # type: ignore[union-attr]
    assert event.errors[0].message == f"Unknown operation id {sub_id}"  # type: ignore[union-attr]
    assert pair.client.subscriptions == {}


def test_pair_unsubscribe_of_inactive_id_rejected_locally() -> None:
    """The client refuses to unsubscribe an id that is not an active subscription."""
    pair = connected()
    pair.policy.accept_subscribes = False
    sub_id = pair.client.send_subscribe("default/a", AUTH)
    pair.run()
    with pytest.raises(LocalProtocolError):
        pair.client.send_unsubscribe(sub_id)  # still pending
    with pytest.raises(LocalProtocolError):
        pair.client.send_unsubscribe("never")


def test_pair_abandoned_subscribe_is_unsubscribed_when_it_succeeds() -> None:
    """A subscribe the caller gave up on is unsubscribed as soon as it succeeds."""
    pair = connected()
    pair.policy.accept_subscribes = False
    sub_id = pair.client.send_subscribe("default/a", AUTH)
    pair.run()
    pair.client.abandon(sub_id)
    pair.server.accept_subscribe(sub_id)
    [ignored] = pair.to_client()
    assert isinstance(ignored, FrameIgnored)
    assert pair.to_server() == [UnsubscribeRequested(id=sub_id, channel=parse_channel("default/a"))]
    [answer] = pair.to_client()
    assert isinstance(answer, FrameIgnored)
    assert pair.client.subscriptions == {}
    assert pair.server.subscriptions == {}
    assert pair.client.pending == {}


# --- ids ----------------------------------------------------------------------------------


def test_pair_duplicate_id_rejected_locally() -> None:
    """Reusing an id that is pending or active raises LocalProtocolError at once."""
    pair = connected()
    subscribed(pair, "default/a", sub_id="dup")
    with pytest.raises(LocalProtocolError, match="already in use"):
        pair.client.send_subscribe("default/b", AUTH, operation_id="dup")
    with pytest.raises(LocalProtocolError, match="already in use"):
        publish(pair, "default/b", ["1"], "dup")
    with pytest.raises(LocalProtocolError, match="invalid operation id"):
        pair.client.send_subscribe("default/b", AUTH, operation_id="bad id")
    assert pair.client.data_to_send() == []


def test_pair_duplicate_subscription_id_rejected_by_server() -> None:
    """A duplicate subscription id from another implementation gets subscribe_error
    (docs: protocol.rst, "subscribe")."""
    pair = connected()
    sub_id = subscribed(pair, "default/a", sub_id="dup")
    pair.server.receive_text(codec.encode(Subscribe(id="dup", channel="default/b")))
    assert pair.server.events_received() == [
        Rejected(frame_type="subscribe", id="dup", errors=(DUPLICATE_SUBSCRIPTION,))
    ]
    [ignored] = pair.to_client()
    assert pair.server_sent[-1] == SubscribeErrorMessage(id="dup", errors=(DUPLICATE_SUBSCRIPTION,))
    # The client has no pending subscribe "dup": the answer is ignored, the active
    # subscription is untouched and keeps receiving.
    assert isinstance(ignored, FrameIgnored)
    assert pair.client.subscriptions == {sub_id: "default/a"}
    publish(pair, "default/a", ["7"])
    assert received("dup", "7", "default/a") in pair.run()


def test_pair_late_answer_after_success_is_ignored() -> None:
    """A second subscribe_success for an already active id is ignored."""
    pair = connected()
    sub_id = subscribed(pair, "default/a")
    pair.client.receive_text(codec.encode(SubscribeSuccess(id=sub_id)))
    [event] = pair.client.events_received()
    assert isinstance(event, FrameIgnored)
    assert pair.client.subscriptions == {sub_id: "default/a"}


# --- end of stream ------------------------------------------------------------------------


def test_pair_eof_closes_both_sides() -> None:
    """receive_eof moves both sides to closed; the server discards queued output."""
    pair = connected()
    sub_id = subscribed(pair, "default/a")
    assert pair.server.send_data(sub_id, "1") is True
    pair.server.receive_eof()
    pair.client.receive_eof()
    assert pair.server.state is ServerState.CLOSED
    assert pair.server.data_to_send() == []
    assert pair.client.state is ClientState.CLOSED
    with pytest.raises(LocalProtocolError):
        pair.server.receive_text(codec.encode(ConnectionInit()))


# --- model-based: random operation sequences ----------------------------------------------

CHANNELS = ["a", "a/x", "a/x/y", "a/y", "b/x", "/b/x/y/"]
PATTERNS = [*CHANNELS, "a/*", "/a/x/*", "b/*"]


class PairMachine(RuleBasedStateMachine):
    """Subscribe, publish and unsubscribe at random; both sides agree with a simple model."""

    def __init__(self) -> None:
        super().__init__()
        self.pair = ProtocolPair()
        self.model: dict[str, str] = {}  # active subscription id -> pattern, in accept order
        self.counter = 0

    subscriptions = Bundle("subscriptions")

    @initialize(init=st.booleans())
    def handshake(self, init: bool) -> None:
        if init:
            self.pair.client.send_connection_init()
            events = self.pair.run()
            assert [type(e) for e in events] == [ConnectionAccepted, KeepAliveReceived]

    @rule(target=subscriptions, pattern=st.sampled_from(PATTERNS))
    def subscribe(self, pattern: str) -> str:
        sub_id = self.pair.client.send_subscribe(pattern, AUTH)
        assert self.pair.run() == [SubscribeAccepted(id=sub_id, channel=pattern)]
        self.model[sub_id] = pattern
        return sub_id

    @rule(channel=st.sampled_from(CHANNELS), count=st.integers(1, 5))
    def publish(self, channel: str, count: int) -> None:
        self.counter += 1
        events = [json.dumps({"n": self.counter, "i": i}) for i in range(count)]
        pub_id = publish(self.pair, channel, events)
        accepted, *delivered = self.pair.run()
        assert isinstance(accepted, PublishAccepted)
        assert accepted.id == pub_id
        assert [s.index for s in accepted.successful] == list(range(count))
        target = parse_channel(channel)
        expected = [
            received(sub_id, event, pattern)
            for event in events
            for sub_id, pattern in self.model.items()
            if channel_matches_pattern(pattern, target)
        ]
        assert delivered == expected

    @rule(sub_id=consumes(subscriptions))
    def unsubscribe(self, sub_id: str) -> None:
        self.pair.client.send_unsubscribe(sub_id)
        pattern = self.model.pop(sub_id)
        assert self.pair.run() == [UnsubscribeAccepted(id=sub_id, channel=pattern)]

    @invariant()
    def sides_agree(self) -> None:
        assert list(self.pair.client.subscriptions) == list(self.model)
        assert list(self.pair.server.subscriptions) == list(self.model)
        assert self.pair.client.pending == {}
        assert self.pair.server.pending_subscriptions == {}
        assert self.pair.client.state is not ClientState.FAILED


def channel_matches_pattern(pattern: str, channel: Channel) -> bool:
    """The model's matcher, written from the rules independently of channels.matches.

    The rules are described in docs: protocol.rst, "Channels and namespaces".
    """
    wanted = pattern.strip("/").split("/")
    got = list(channel.segments)
    if wanted[-1] == "*":
        prefix = wanted[:-1]
        return len(got) > len(prefix) and got[: len(prefix)] == prefix
    return got == wanted


TestPairMachine = PairMachine.TestCase
TestPairMachine.settings = settings(max_examples=50, stateful_step_count=20, deadline=None)
