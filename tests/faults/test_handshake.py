"""Handshake faults as the client sees them (client handshake_timeout 300 ms)."""

from __future__ import annotations

import asyncio

import pytest

from appsync_emulator import EmulatorThread
from appsync_emulator.faults import (
    DelayAck,
    NeverAck,
    NoSubprotocol,
    RefuseUpgrade,
    RejectConnection,
)
from appsync_emulator.pytest_plugin import ClientFactory
from appsync_events import (
    ErrorDetail,
    HandshakeError,
    HandshakeTimeoutError,
    UnauthorizedError,
)

LIMIT = ErrorDetail(error_type="LimitExceededException", message="Too many connections")


@pytest.mark.asyncio
async def test_never_ack_raises_handshake_timeout(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory, ms: float
) -> None:
    """No connection_ack within handshake_timeout gives HandshakeTimeoutError, promptly."""
    appsync_server.inject(NeverAck())
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(HandshakeTimeoutError) as info:
        await appsync_client_factory(appsync_server)
    assert info.value.timeout == pytest.approx(300 * ms)
    assert isinstance(info.value, TimeoutError)
    assert loop.time() - started < 5000 * ms  # a hang guard


@pytest.mark.asyncio
async def test_late_ack_within_timeout_connects(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory, ms: float
) -> None:
    """An ack 100 ms late (timeout 300 ms) still connects."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    with appsync_server.inject(DelayAck(100 * ms)):
        client = await appsync_client_factory(appsync_server)
    assert loop.time() - started >= 100 * ms
    await client.publish("default/x", {"n": 1})


@pytest.mark.asyncio
async def test_ack_later_than_timeout_raises_handshake_timeout(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory, ms: float
) -> None:
    """An ack 600 ms late is a handshake timeout."""
    with appsync_server.inject(DelayAck(600 * ms)), pytest.raises(HandshakeTimeoutError):
        await appsync_client_factory(appsync_server)


@pytest.mark.asyncio
async def test_connection_error_unauthorized(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory
) -> None:
    """connection_error UnauthorizedException 401 raises UnauthorizedError with .errors."""
    appsync_server.inject(RejectConnection())
    with pytest.raises(UnauthorizedError) as info:
        await appsync_client_factory(appsync_server)
    (error,) = info.value.errors
    assert (error.error_type, error.error_code) == ("UnauthorizedException", 401)
    assert error.message == "You are not authorized to make this call."


@pytest.mark.asyncio
async def test_connection_error_other_raises_handshake_error(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory
) -> None:
    """Any other connection_error raises HandshakeError carrying the service's errors."""
    appsync_server.inject(RejectConnection(errors=[LIMIT]))
    with pytest.raises(HandshakeError) as info:
        await appsync_client_factory(appsync_server)
    assert info.value.errors == (LIMIT,)
    assert not isinstance(info.value, HandshakeTimeoutError)


@pytest.mark.asyncio
async def test_refused_upgrade_raises_handshake_error(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory
) -> None:
    """An HTTP 503 instead of the WebSocket upgrade raises HandshakeError naming the status."""
    appsync_server.inject(RefuseUpgrade(status=503, body="Service Unavailable"))
    with pytest.raises(HandshakeError, match="503"):
        await appsync_client_factory(appsync_server)


@pytest.mark.asyncio
async def test_refused_upgrade_401_raises_unauthorized(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory
) -> None:
    """An HTTP 401 on the upgrade raises UnauthorizedError with status 401."""
    appsync_server.inject(RefuseUpgrade(status=401))
    with pytest.raises(UnauthorizedError) as info:
        await appsync_client_factory(appsync_server)
    assert info.value.status == 401


@pytest.mark.asyncio
async def test_no_subprotocol_raises_handshake_error(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory
) -> None:
    """A server that selects no subprotocol is refused by the client."""
    appsync_server.inject(NoSubprotocol())
    with pytest.raises(HandshakeError, match="subprotocol"):
        await appsync_client_factory(appsync_server)


@pytest.mark.asyncio
async def test_handshake_fault_scoped_by_with_block(
    appsync_server: EmulatorThread, appsync_client_factory: ClientFactory
) -> None:
    """Leaving the ``with`` block removes the fault: the next connect succeeds."""
    with appsync_server.inject(RejectConnection()), pytest.raises(UnauthorizedError):
        await appsync_client_factory(appsync_server)
    client = await appsync_client_factory(appsync_server)
    await client.publish("default/x", {"n": 1})
