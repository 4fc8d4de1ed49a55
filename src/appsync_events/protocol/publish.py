"""Publish preparation: check a channel and turn publish arguments into event texts, once.

A publish is checked and encoded exactly once, by :func:`prepare_publish`, before anything
is authorized or sent.  The resulting :class:`PreparedPublish` holds the channel and the
event JSON texts exactly as they will be signed and sent, and both transports take it as
it is: :meth:`ClientProtocol.send_publish <appsync_events.protocol.client.ClientProtocol.
send_publish>` wraps it in a ``publish`` frame for the WebSocket, and
:func:`http_publish_body` turns it into the body of an HTTP ``POST /event``.

How a publish argument becomes an event text:

* :class:`~appsync_events.RawJSON` (a ``str`` you already encoded) and ``bytes`` /
  ``bytearray`` / ``memoryview`` (UTF-8 JSON) are sent as they are, after one check that
  they hold exactly one JSON value;
* every other value, ``str`` included, is JSON-encoded compactly with non-ASCII
  characters kept: ``"hi"`` is sent as the JSON string ``"\\"hi\\""``, as the Go client and
  Amplify do.  ``NaN`` and the infinities, which are not JSON, are refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from .._types import RawJSON
from ..errors import ConfigurationError
from . import codec
from ._make import maker
from .channels import parse_channel
from .limits import MAX_EVENT_BYTES, MAX_EVENTS_PER_PUBLISH, MAX_REQUEST_BYTES
from .signing import html_escape_json

__all__ = [
    "PreparedPublish",
    "encode_json",
    "http_publish_body",
    "prepare_publish",
]

_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_ENCODE: Final = _ENCODER.encode
_MAKE_ENCODER: Final[Callable[..., Callable[[object, int], Iterable[str]]] | None] = getattr(
    json.encoder, "c_make_encoder", None
)
_FAST_ENCODE: Final = (
    None
    if _MAKE_ENCODER is None
    else _MAKE_ENCODER(
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
)
"""The compiled encoder behind ``_ENCODE``, made once instead of per call, and without its
circular reference check: a circular value ends in ``RecursionError`` here and is encoded
again by ``_ENCODE``, which then names the problem as it always does."""


def encode_json(value: object) -> str:
    """Encode ``value`` compactly with non-ASCII characters kept and ``NaN`` refused.

    The same text, or the same exception, as ``json.JSONEncoder(separators=(",", ":"),
    ensure_ascii=False, allow_nan=False).encode(value)``, about twice as fast.
    """
    if _FAST_ENCODE is not None:
        try:
            return "".join(_FAST_ENCODE(value, 0))
        except RecursionError:
            pass
    return _ENCODE(value)


@dataclass(frozen=True, slots=True)
class PreparedPublish:
    """A checked publish, ready to authorize and send.  Made by :func:`prepare_publish`.

    Authorize with exactly :attr:`channel` and :attr:`events` (IAM signs them byte for
    byte), then send it with :meth:`ClientProtocol.send_publish
    <appsync_events.protocol.client.ClientProtocol.send_publish>` or as the body of
    :func:`http_publish_body`.
    """

    channel: str
    """The channel, exactly as it will be sent."""
    events: tuple[str, ...]
    """The event JSON texts, exactly as they will be sent and signed."""


def prepare_publish(
    channel: str,
    events: Sequence[object],
    *,
    html_escape: bool,
    max_events: int = MAX_EVENTS_PER_PUBLISH,
    max_event_bytes: int = MAX_EVENT_BYTES,
) -> PreparedPublish:
    """Check ``channel`` and encode and check each of ``events``, once.

    Args:
        channel: a concrete channel (no wildcard), kept exactly as given.
        events: 1 to ``max_events`` publish arguments (see the module docstring for how
            each becomes a JSON text).
        html_escape: escape ``< > & = '`` inside the event texts as ``\\uXXXX`` (what AWS
            applies before checking an IAM signature over a WebSocket publish); the
            events keep their value.
        max_events: events allowed in one publish.
        max_event_bytes: UTF-8 bytes allowed per event text (after escaping).

    Returns:
        The :class:`PreparedPublish`.

    Raises:
        InvalidChannelError: ``channel`` breaks the channel rules (naming the rule).
        ConfigurationError: naming the first problem: no events, too many, an event that
            cannot be encoded, is not UTF-8 or not one JSON value, or is too large.
    """
    if type(channel) is not str or channel not in _known_channels:
        parse_channel(channel)
        if type(channel) is str:
            if len(_known_channels) >= _KNOWN_CHANNELS:
                _known_channels.clear()
            _known_channels.add(channel)
    if type(events) is tuple:  # the common case (Client.publish(channel, *events))
        values: tuple[object, ...] = events
    elif isinstance(events, str | bytes | bytearray | memoryview | RawJSON | Mapping):
        raise ConfigurationError(
            f"events must be a sequence of events, not one {type(events).__name__}"
        )
    else:
        try:
            values = tuple(events)
        except TypeError:
            raise ConfigurationError(
                f"events must be a sequence of events, not {type(events).__name__}"
            ) from None
    if not values:
        raise ConfigurationError("a publish needs at least one event")
    if len(values) > max_events:
        raise ConfigurationError(f"{len(values)} events in one publish; at most {max_events}")
    if len(values) == 1:
        value = values[0]
        text = None
        if type(value) in _PLAIN and not html_escape and _FAST_ENCODE is not None:
            # _event_text's common case inlined: the event is encoded without its calls.
            try:
                text = "".join(_FAST_ENCODE(value, 0))
            except Exception:  # _event_text encodes it again and names the problem
                text = None
            else:
                if not text.isascii() or len(text) > max_event_bytes:
                    text = None  # _event_text checks it
        if text is None:
            text = _event_text(0, value, max_event_bytes, html_escape)
        texts: tuple[str, ...] = (text,)
    else:
        texts = tuple(
            [
                _event_text(index, value, max_event_bytes, html_escape)
                for index, value in enumerate(values)
            ]
        )
    return _prepared(channel, texts)


_prepared: Final = maker(PreparedPublish, "channel", "events")
_KNOWN_CHANNELS: Final = 1024
"""How many valid channels :func:`prepare_publish` remembers (all forgotten when full)."""
_known_channels: set[str] = set()
"""Channels :func:`parse_channel` accepted: checked once, not on every publish."""
_PLAIN: Final = frozenset({dict, list, str, int, float, bool, type(None)})
"""Types whose values are encoded as JSON (never a JSON text the caller encoded)."""


def _event_text(index: int, value: object, max_bytes: int, html_escape: bool) -> str:
    # Reasoning, case by case: a text the caller encoded (RawJSON, bytes) is checked for
    # size first (a cheap refusal of a huge event), then parsed once to prove it is one
    # JSON value (escaping keeps a text valid or invalid, so the original is parsed and
    # error positions match what the caller wrote).  A value we encode ourselves is valid
    # JSON by construction (allow_nan is off), so only its size and a lone surrogate
    # (which no UTF-8 frame can carry) remain to check: it is never parsed back.
    if type(value) in _PLAIN:
        pass  # encoded below
    elif isinstance(value, RawJSON):
        return _checked_raw(index, value.text, max_bytes, html_escape)
    elif isinstance(value, bytes | bytearray | memoryview):
        try:
            text = bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigurationError(f"event {index} is not UTF-8: {exc}") from None
        return _checked_raw(index, text, max_bytes, html_escape)
    try:
        text = encode_json(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ConfigurationError(
            f"event {index} ({type(value).__name__}) cannot be encoded as JSON: {exc}"
        ) from None
    if html_escape:
        text = html_escape_json(text)
    if text.isascii() and len(text) <= max_bytes:
        return text  # the common case: nothing more to check
    _check_size(index, text, max_bytes)
    surrogate = codec.lone_surrogate(text)
    if surrogate is not None:
        raise ConfigurationError(f"event {index} is not valid JSON: {surrogate} (not UTF-8 text)")
    return text


def _checked_raw(index: int, text: str, max_bytes: int, html_escape: bool) -> str:
    sent = html_escape_json(text) if html_escape else text
    _check_size(index, sent, max_bytes)
    reason = codec.event_json_error(text)  # the rule the service applies
    if reason is not None:
        raise ConfigurationError(f"event {index} is not valid JSON: {reason}")
    return sent


def _check_size(index: int, text: str, max_bytes: int) -> None:
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise ConfigurationError(f"event {index} is {size} bytes, over the {max_bytes}-byte limit")


def http_publish_body(
    prepared: PreparedPublish, *, max_request_bytes: int = MAX_REQUEST_BYTES
) -> str:
    """Return the body of the HTTP ``POST /event`` for ``prepared``.

    It is exactly the body an IAM authorizer signs for that channel and those events
    (compact JSON, UTF-8 kept), so a signature over it holds.

    Raises:
        ConfigurationError: the body would exceed ``max_request_bytes``.
    """
    body = codec.encode_publish_body(prepared.channel, prepared.events)
    size = len(body) if body.isascii() else len(body.encode("utf-8"))
    if size > max_request_bytes:
        raise ConfigurationError(
            f"the publish request is {size} bytes, over the {max_request_bytes}-byte "
            "request limit; publish fewer events per call"
        )
    return body
