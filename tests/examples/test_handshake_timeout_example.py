"""Reproduce a handshake timeout: the service never answers connection_init."""

from __future__ import annotations

import pytest

from appsync_emulator.faults import NeverAck
from appsync_events import HandshakeTimeoutError


@pytest.mark.appsync(faults=[NeverAck()])
@pytest.mark.asyncio
async def test_handshake_timeout(appsync_server, appsync_client_factory):
    with pytest.raises(HandshakeTimeoutError):
        await appsync_client_factory(appsync_server, handshake_timeout=0.2)
