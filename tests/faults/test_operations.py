"""Operation faults as the client sees them (client operation_timeout 300 ms)."""

from __future__ import annotations

import asyncio

import pytest

from appsync_emulator import EmulatorThread, Recorder
from appsync_emulator.faults import (
    DelayReply,
    FailEvents,
    RejectPublish,
    RejectSubscribe,
    RejectUnsubscribe,
    SendBroadcastError,
    SendError,
    WithholdReply,
)
from appsync_emulator.testing import api_key_authorizer
from appsync_events import (
    BroadcastError,
    Client,
    ConnectionClosedError,
    ConnectionLostError,
    ErrorDetail,
    OperationTimeoutError,
    PublishError,
    SubscribeError,
    UnauthorizedError,
    UnsubscribeError,
    publish_http,
)

BAD_REQUEST = ErrorDetail(error_type="BadRequestException", message="Invalid event")
UNAUTHORIZED = ErrorDetail(
    error_type="UnauthorizedException",
    message="You are not authorized to make this call.",
    error_code=401,
)


@pytest.mark.asyncio
async def test_delayed_subscribe_success_within_timeout(
    appsync_server: EmulatorThread, appsync_client: Client, ms: float
) -> None:
    """subscribe_success 100 ms late (timeout 300 ms): subscribe waits and succeeds."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    with appsync_server.inject(DelayReply(100 * ms, match="subscribe_success")):
        sub = await appsync_client.subscribe("default/slow")
    assert loop.time() - started >= 100 * ms
    assert sub.active


@pytest.mark.asyncio
async def test_delayed_subscribe_success_past_timeout(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """subscribe_success 600 ms late raises OperationTimeoutError for the subscribe."""
    with appsync_server.inject(DelayReply(2.0, match="subscribe_success")):
        with pytest.raises(OperationTimeoutError) as info:
            await appsync_client.subscribe("default/slow")
    assert info.value.operation == "subscribe"
    assert isinstance(info.value, TimeoutError)


@pytest.mark.asyncio
async def test_withheld_subscribe_success(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """A subscribe that is never acknowledged times out; the connection stays usable."""
    with appsync_server.inject(WithholdReply(match="subscribe_success")):
        with pytest.raises(OperationTimeoutError):
            await appsync_client.subscribe("default/never")
    sub = await appsync_client.subscribe("default/after")
    await appsync_client.publish("default/after", {"n": 1})
    assert (await sub.next()).json() == {"n": 1}


@pytest.mark.asyncio
async def test_withheld_publish_success_still_broadcasts(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """publish raises OperationTimeoutError, yet subscribers got the event."""
    sub = await appsync_client.subscribe("default/x")
    with appsync_server.inject(WithholdReply(match="publish_success")):
        with pytest.raises(OperationTimeoutError) as info:
            await appsync_client.publish("default/x", {"n": 1})
    assert info.value.operation == "publish"
    assert (await sub.next()).json() == {"n": 1}


@pytest.mark.asyncio
async def test_withheld_unsubscribe_success(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """sub.close() raises OperationTimeoutError when unsubscribe is never acknowledged."""
    sub = await appsync_client.subscribe("default/x")
    with appsync_server.inject(WithholdReply(match="unsubscribe_success")):
        with pytest.raises(OperationTimeoutError) as info:
            await sub.close()
    assert info.value.operation == "unsubscribe"


@pytest.mark.asyncio
async def test_subscribe_error(appsync_server: EmulatorThread, appsync_client: Client) -> None:
    """subscribe_error raises SubscribeError with the service's errors."""
    appsync_server.inject(RejectSubscribe())
    with pytest.raises(SubscribeError) as info:
        await appsync_client.subscribe("default/x")
    (error,) = info.value.errors
    assert error.error_type == "SubscriptionProcessingError"
    assert error.message == "There was an error processing the operation"


@pytest.mark.asyncio
async def test_subscribe_error_unauthorized(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """An UnauthorizedException subscribe_error raises UnauthorizedError."""
    appsync_server.inject(RejectSubscribe(errors=[UNAUTHORIZED]))
    with pytest.raises(UnauthorizedError) as info:
        await appsync_client.subscribe("default/x")
    assert info.value.errors == (UNAUTHORIZED,)
    assert info.value.operation == "subscribe"


@pytest.mark.asyncio
async def test_publish_error(appsync_server: EmulatorThread, appsync_client: Client) -> None:
    """publish_error raises PublishError with the service's errors."""
    appsync_server.inject(RejectPublish(errors=[BAD_REQUEST]))
    with pytest.raises(PublishError) as info:
        await appsync_client.publish("default/x", {"n": 1})
    assert info.value.errors == (BAD_REQUEST,)


@pytest.mark.asyncio
async def test_publish_error_unauthorized(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """The default RejectPublish (UnauthorizedException) raises UnauthorizedError."""
    appsync_server.inject(RejectPublish())
    with pytest.raises(UnauthorizedError) as info:
        await appsync_client.publish("default/x", {"n": 1})
    assert info.value.operation == "publish"


@pytest.mark.asyncio
async def test_http_publish_error_carries_status(appsync_server: EmulatorThread) -> None:
    """Over HTTP, RejectPublish answers its status; publish_http raises PublishError."""
    appsync_server.inject(RejectPublish(errors=[BAD_REQUEST], status=400))
    with pytest.raises(PublishError) as info:
        await publish_http(
            appsync_server.http_endpoint,
            "default/x",
            {"n": 1},
            authorizer=api_key_authorizer(appsync_server),
        )
    assert info.value.status == 400
    assert info.value.errors == (BAD_REQUEST,)


@pytest.mark.asyncio
async def test_unsubscribe_error(appsync_server: EmulatorThread, appsync_client: Client) -> None:
    """unsubscribe_error raises UnsubscribeError from sub.close()."""
    sub = await appsync_client.subscribe("default/x")
    appsync_server.inject(RejectUnsubscribe())
    with pytest.raises(UnsubscribeError) as info:
        await sub.close()
    (error,) = info.value.errors
    assert error.error_type == "UnknownOperationError"
    assert error.message == f"Unknown operation id {sub.id}"


@pytest.mark.asyncio
async def test_failed_events_reported_in_result(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """Chosen events land in result.failed and are not delivered; the others are."""
    sub = await appsync_client.subscribe("default/x")
    appsync_server.inject(FailEvents(indexes=(1,), code="Rejected", message="no odd ones"))
    result = await appsync_client.publish("default/x", {"n": 0}, {"n": 1}, {"n": 2})
    assert not result.ok
    assert [(f.index, f.code, f.message) for f in result.failed] == [(1, "Rejected", "no odd ones")]
    assert [s.index for s in result.successful] == [0, 2]
    assert [(await sub.next()).json() for _ in range(2)] == [{"n": 0}, {"n": 2}]
    appsync_server.recorder.assert_published("/default/x", events=[{"n": 0}, {"n": 2}])


@pytest.mark.asyncio
async def test_broadcast_error_is_raised_in_band(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """broadcast_error raises BroadcastError at its place in the stream; reading goes on."""
    sub = await appsync_client.subscribe("default/x")
    appsync_server.inject(SendBroadcastError(subscription_id=sub.id))
    with pytest.raises(BroadcastError) as info:
        await sub.next()
    assert info.value.errors[0].error_type == "MessageProcessingError"
    await appsync_client.publish("default/x", {"n": 1})
    assert (await sub.next()).json() == {"n": 1}


@pytest.mark.asyncio
async def test_error_frame_for_unknown_id_is_ignored(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """A generic error frame naming no known operation is ignored; nothing fails."""
    sub = await appsync_client.subscribe("default/x")
    appsync_server.inject(SendError(id="not-an-operation"))
    await appsync_client.publish("default/x", {"n": 1})
    assert (await sub.next()).json() == {"n": 1}


@pytest.mark.asyncio
async def test_error_frame_without_id_fails_the_pending_operation(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """An id-less error frame answers the oldest pending operation (the service handles
    frames in order): here a subscribe still waiting for its reply."""
    with appsync_server.inject(WithholdReply(match="subscribe_success")):
        pending = asyncio.ensure_future(appsync_client.subscribe("default/pending"))
        await wait_received(appsync_server, "subscribe")
        appsync_server.inject(SendError())
        with pytest.raises(SubscribeError) as info:
            await pending
    assert info.value.errors[0].error_type == "UnsupportedOperation"


@pytest.mark.asyncio
async def test_error_frame_without_id_and_nothing_pending_fails_connection(
    appsync_server: EmulatorThread, appsync_client: Client
) -> None:
    """With nothing pending, an id-less error concerns the connection, which fails: the
    connection is gone (a ConnectionClosedError carrying the service's errors)."""
    sub = await appsync_client.subscribe("default/x")
    appsync_server.inject(SendError())
    with pytest.raises(ConnectionClosedError) as info:
        await asyncio.wait_for(sub.next(), timeout=5)
    assert isinstance(info.value, ConnectionLostError)
    assert info.value.errors[0].error_type == "UnsupportedOperation"
    with pytest.raises(ConnectionClosedError):
        await appsync_client.publish("default/x", {"n": 1})


async def wait_received(server: EmulatorThread, frame_type: str) -> None:
    """Wait until the server received a frame of ``frame_type`` (a blocking recorder wait
    in a worker thread: frame records wake blocking waiters only)."""

    def seen(recorder: Recorder) -> bool | None:
        return any(f.frame_type == frame_type for f in recorder.received) or None

    await asyncio.to_thread(server.recorder.wait_for_sync, seen, 5.0)
