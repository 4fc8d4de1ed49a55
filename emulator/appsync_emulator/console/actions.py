"""What the console's forms ask for: a publish or a fault, read and validated field by field.

Every field of a request is checked, and a bad one raises :class:`_BadInput` with a message
the page shows (answered 400).  A publish gets the credentials a client of the chosen mode
would send, from what the emulator holds.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web
from botocore.credentials import Credentials

from appsync_events.authorizer.iam import sign_request
from appsync_events.protocol.channels import Channel

from ..config import AuthType
from ..faults import CloseConnection, DelayAck, DropKeepAlives, Fault, Stall, Target
from ..validation import check_publish
from .access import _BadInput

if TYPE_CHECKING:
    from ..server import Emulator

__all__ = [
    "ConsoleActions",
    "FAULT_KINDS",
    "MAX_DELAY",
    "MAX_TOKEN",
]

MAX_TOKEN: Final = 8192
"""Longest authorization token accepted from the publish form."""
MAX_DELAY: Final = 300.0
"""Longest ``DelayAck`` the page may ask for, in seconds."""
_CONN_ID: Final = re.compile(r"c[0-9]{1,12}")
FAULT_KINDS: Final = {
    "drop_keepalives": "DropKeepAlives: no ka frames",
    "delay_acks": "DelayAck: connection_ack sent late",
    "stall": "Stall: the connection neither reads nor sends",
    "close": "CloseConnection: close with a code (one-shot)",
}


def _describe_target(target: Target) -> str:
    if target is None:
        return "all"
    return target if isinstance(target, str) else "a predicate"


def _fault_json(key: int, fault: Fault, target: Target) -> dict[str, Any]:
    return {"key": key, "fault": repr(fault), "target": _describe_target(target)}


class ConsoleActions:
    """The publish and fault inputs of :class:`~appsync_emulator.console.Console` (a mixin)."""

    emulator: Emulator

    def _publish_request(
        self, request: web.Request, data: Mapping[str, Any]
    ) -> tuple[Channel, tuple[str, ...], bytes, dict[str, str]]:
        config = self.emulator.config
        unknown = set(data) - {"channel", "events", "auth_mode", "token"}
        if unknown:
            raise _BadInput(f"unknown field(s): {', '.join(sorted(map(str, unknown)))[:200]}")
        channel_text = data.get("channel")
        if not isinstance(channel_text, str) or not channel_text or len(channel_text) > 1024:
            raise _BadInput("channel must be a channel path such as /default/chat")
        events = data.get("events")
        limit = config.limits.max_events_per_publish
        if not isinstance(events, list) or not 1 <= len(events) <= limit:
            raise _BadInput(f"events must be a list of 1 to {limit} JSON texts")
        if not all(isinstance(e, str) for e in events):
            raise _BadInput("each event must be a JSON text (a string)")
        checked = check_publish(
            channel_text,
            events,
            namespace_exists=lambda ns: config.namespace(ns) is not None,
            max_events=limit,
            max_event_bytes=None,
        )
        if not isinstance(checked, Channel):
            raise _BadInput(f"{checked.error_type}: {checked.message}")
        mode_text = data.get("auth_mode", str(config.auth_providers[0]))
        try:
            mode = AuthType(mode_text) if isinstance(mode_text, str) else None
        except ValueError:
            mode = None
        if mode is None or mode not in config.auth_providers:
            modes = ", ".join(str(m) for m in config.auth_providers)
            raise _BadInput(f"auth_mode must be one of the configured modes: {modes}")
        token = data.get("token")
        if token is not None and (
            not isinstance(token, str) or len(token) > MAX_TOKEN or not token.isprintable()
        ):
            raise _BadInput(f"token must be printable text of at most {MAX_TOKEN} characters")
        body_text = json.dumps({"channel": channel_text, "events": events})
        auth = self._credentials(mode, token or None, request.host, body_text)
        return checked, tuple(events), body_text.encode(), auth

    def _credentials(
        self, mode: AuthType, token: str | None, host: str, body: str
    ) -> dict[str, str]:
        """The headers a client of ``mode`` would send, from what the emulator holds."""
        config = self.emulator.config
        if mode is AuthType.API_KEY:
            if config.api_key is None:
                raise _BadInput("API_KEY: the emulator has no API key configured")
            return {"host": host, "x-api-key": config.api_key}
        if mode is AuthType.AWS_IAM:
            if not config.iam_credentials:
                raise _BadInput("AWS_IAM: the emulator has no IAM credentials configured")
            creds = config.iam_credentials[0]
            return sign_request(
                credentials=Credentials(
                    creds.access_key_id, creds.secret_access_key, creds.session_token
                ),
                region=config.region,
                host=host,
                body=body,
                now=self.emulator.now(),
            )
        if token is None and mode in (AuthType.AMAZON_COGNITO_USER_POOLS, AuthType.OPENID_CONNECT):
            token = self.emulator.issuer.mint("console")  # the local issuer's token
        if token is None:
            raise _BadInput(f"{mode}: give a token")
        return {"host": host, "authorization": token}

    def _fault_action(self, data: Mapping[str, Any]) -> str:
        action = data.get("action")
        if action == "remove":
            key = data.get("key")
            if isinstance(key, bool) or not isinstance(key, int):
                raise _BadInput("key must be the integer key of an installed fault")
            if not any(k == key for k, _, _ in self.emulator.plan.faults()):
                raise _BadInput(f"no installed fault has key {key}")
            self.emulator.remove_fault(key)
            return f"removed fault #{key}"
        if action == "clear":
            self.emulator.clear_faults()
            return "removed every fault"
        if action != "add":
            raise _BadInput('action must be "add", "remove" or "clear"')
        target = self._fault_target(data.get("target"))
        fault = self._fault(data)
        key = self.emulator.add_fault(fault, target)
        if fault.one_shot:
            self.emulator.remove_fault(key)  # it acted at once; nothing stays installed
            return f"{fault!r} sent to {_describe_target(target)}"
        return f"installed fault #{key} {fault!r} for {_describe_target(target)}"

    def _fault_target(self, target: object) -> str | None:
        if target is None or target == "all":
            return None
        if not isinstance(target, str) or not _CONN_ID.fullmatch(target):
            raise _BadInput('target must be "all" or a connection id such as "c1"')
        if target not in self.emulator.connections:
            raise _BadInput(f"no open connection {target!r}")
        return target

    @staticmethod
    def _fault(data: Mapping[str, Any]) -> Fault:
        kind = data.get("kind")
        if kind == "drop_keepalives":
            return DropKeepAlives()
        if kind == "stall":
            return Stall()
        if kind == "delay_acks":
            seconds = data.get("seconds")
            if (
                isinstance(seconds, bool)
                or not isinstance(seconds, int | float)
                or not math.isfinite(seconds)
                or not 0 <= seconds <= MAX_DELAY
            ):
                raise _BadInput(f"seconds must be a number from 0 to {MAX_DELAY:g}")
            return DelayAck(float(seconds))
        if kind == "close":
            code = data.get("code", 1000)
            reason = data.get("reason", "")
            if isinstance(code, bool) or not isinstance(code, int):
                raise _BadInput("code must be an integer WebSocket close code")
            if not isinstance(reason, str):
                raise _BadInput("reason must be text")
            try:
                return CloseConnection(code, reason)
            except ValueError as exc:
                raise _BadInput(str(exc)) from None
        kinds = ", ".join(FAULT_KINDS)
        raise _BadInput(f"kind must be one of {kinds}")
