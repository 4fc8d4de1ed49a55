"""Sans-I/O core of the AppSync Events wire protocol (docs: protocol.rst).

Nothing here does I/O, reads a clock or imports a third-party package: the client
(``appsync_events``) and the emulator (``appsync_emulator``) both drive these objects.
"""

from __future__ import annotations

from .channels import (
    Channel as Channel,
    channel_matches as channel_matches,
    matches as matches,
    parse_channel as parse_channel,
    parse_subscribe_channel as parse_subscribe_channel,
    validate_namespace as validate_namespace,
)
from .codec import (
    decode as decode,
    decode_client as decode_client,
    decode_server as decode_server,
    encode as encode,
)
from .subprotocol import (
    PROTOCOL_EVENTS as PROTOCOL_EVENTS,
    decode_auth_subprotocol as decode_auth_subprotocol,
    encode_auth_subprotocol as encode_auth_subprotocol,
)

__all__ = [
    "PROTOCOL_EVENTS",
    "Channel",
    "channel_matches",
    "decode",
    "decode_auth_subprotocol",
    "decode_client",
    "decode_server",
    "encode",
    "encode_auth_subprotocol",
    "matches",
    "parse_channel",
    "parse_subscribe_channel",
    "validate_namespace",
]
