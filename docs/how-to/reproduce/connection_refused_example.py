"""Reproduce a refused connection: bad credentials, or an upgrade the server refuses."""

from __future__ import annotations

import pytest

from appsync_emulator.faults import RefuseUpgrade, RejectConnection
from appsync_events import HandshakeError, UnauthorizedError


@pytest.mark.appsync(faults=[RejectConnection()])
@pytest.mark.asyncio
async def test_credentials_refused(appsync_server, appsync_client_factory):
    """connection_error UnauthorizedException: UnauthorizedError with the service's errors."""
    with pytest.raises(UnauthorizedError) as caught:
        await appsync_client_factory(appsync_server)
    assert caught.value.errors[0].error_type == "UnauthorizedException"


@pytest.mark.appsync(faults=[RefuseUpgrade(status=503)])
@pytest.mark.asyncio
async def test_upgrade_refused(appsync_server, appsync_client_factory):
    """An HTTP refusal of the WebSocket upgrade: HandshakeError."""
    with pytest.raises(HandshakeError):
        await appsync_client_factory(appsync_server)
