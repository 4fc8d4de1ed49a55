"""The operation runner: authorize, apply the fault plan, run the handler, fan out, record.

WebSocket and HTTP publishes and WebSocket subscribes all run through one
:class:`Operations`: the endpoint has validated the request (the WebSocket core, or
``check_publish`` for HTTP) and answers on its own wire; everything between is here.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, NamedTuple, Protocol

from appsync_events.protocol import codec
from appsync_events.protocol.channels import Channel
from appsync_events.protocol.messages import FailedEvent, PublishedEvent

from . import handlers
from ._logging import LOG_AUTH, LOG_FAULTS
from .broker import Broker
from .catalogue import Rejection
from .config import EmulatorConfig, NamespaceConfig
from .faults import Decision, FaultPlan, Point
from .handler_runtime import HandlerRuntime
from .outbound import Cork, FramedEvents, fan_out
from .recorder import ConnectionInfo, Recorder
from .verify import AuthFailure, AuthPolicy, AuthRequest, Identity, unauthorized

__all__ = ["Delivery", "Operations", "Published", "Subscriber"]

_PUBLISH: Final = Point.PUBLISH
_OUTBOUND: Final = Point.OUTBOUND
_DataEvents: Final = codec.DataEvents

_POOL: Final = 256
"""Identifiers made at a time: one head, then each of the 256 two-digit endings."""
_HEAD_BITS: Final = 40
_HEAD_MASK: Final = (1 << _HEAD_BITS) - 1
_HEAD_MIX: Final = 0x9E3779B97F | 1
"""An odd multiplier: ``n * _HEAD_MIX`` modulo 2**40 is a bijection on 40-bit ``n``."""
_BLOCK: Final = 1 << 16
"""Pools drawn under one random prefix before a new one is drawn."""


class _Identifiers:
    """Random RFC 4122 version-4 UUID strings, unique, cheap to draw (a few per cent of
    the cost of ``str(uuid.uuid4())`` each).

    Each identifier is a random prefix (the first 74 random bits, with the version and
    variant nibbles) and a 12-digit suffix: 10 digits from the number of its pool,
    scrambled by a bijection of the 40-bit values and a random salt, then 2 digits for its
    place in the pool, the 256 places in an order shuffled with the prefix.  So no two
    identifiers under one prefix are equal, neither the pools nor the identifiers of a
    pool come in an order that shows, and a pool of 256 costs one formatted number and
    256 concatenations (identifiers drawn together share all but their last two digits).
    A new random prefix, salt and order are drawn every :data:`_BLOCK` pools.  Event
    identifiers need uniqueness, not unpredictability, so ``random`` is enough.  One per
    emulator, used from its loop only."""

    __slots__ = ("_endings", "_next", "_pool", "_prefix", "_salt", "_taken")

    def __init__(self) -> None:
        self._prefix = ""
        self._salt = 0
        self._endings: list[str] = []
        self._next = _BLOCK
        """The number of the next pool."""
        self._pool: tuple[str, ...] = ()
        self._taken = 0
        """Identifiers of ``_pool`` already handed out."""

    def _new_block(self) -> None:
        h = f"{random.getrandbits(80):020x}"
        # version nibble 4, variant bits 10 (RFC 4122 section 4.4)
        variant = "89ab"[int(h[16], 16) & 3]
        self._prefix = f"{h[0:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-"
        self._salt = random.getrandbits(_HEAD_BITS)
        endings = [f"{i:02x}" for i in range(_POOL)]
        random.shuffle(endings)
        self._endings = endings
        self._next = 0

    def _refill(self) -> None:
        if self._next >= _BLOCK:
            self._new_block()
        number = self._next
        self._next = number + 1
        head = f"{self._prefix}{((number * _HEAD_MIX) ^ self._salt) & _HEAD_MASK:010x}"
        self._pool = tuple([head + ending for ending in self._endings])
        self._taken = 0

    def take(self, count: int) -> tuple[str, ...]:
        at = self._taken
        if at + count <= len(self._pool):  # the common case: a publish of a few events
            self._taken = at + count
            return self._pool[at : at + count]  # a slice of a tuple: one copy
        out = list(self._pool[at:])
        while len(out) < count:
            self._refill()
            end = min(_POOL, count - len(out))
            out += self._pool[:end]
            self._taken = end
        return tuple(out)


def _describe(request: AuthRequest) -> str:
    return f"{request.operation.value} ({request.transport.value}) {request.channel or ''}"


class Subscriber(Protocol):
    """A connection the fan-out delivers to."""

    def deliver(
        self, subscription_id: str, events: FramedEvents, key: tuple[str, str] | None = None
    ) -> int:
        """Queue ``data`` frames for ``subscription_id``; return how many.  ``key`` is
        ``(connection id, subscription_id)``.  Sets ``events.pressure`` if its send queue
        is more than half full."""
        ...

    @property
    def under_pressure(self) -> bool:
        """Whether its send queue is more than half full."""
        ...


class Published(NamedTuple):
    """An authorized publish the handler accepted (maybe failing some events)."""

    outcome: handlers.PublishOutcome
    identifiers: tuple[str, ...]
    identity: Identity | None


class Delivery(NamedTuple):
    """The fan-out of one publish."""

    frames: int
    """``data`` frames queued."""
    pressure: bool
    """Whether a subscriber's send queue is now more than half full: the publisher should
    yield so that the writers drain before more fan-out."""


_new_tuple: Final[Any] = tuple.__new__


class Operations:
    """Authorization, faults, handlers, fan-out and records, for every endpoint.

    Args:
        config: the emulator's configuration.
        recorder: the record of everything that happened.
        plan: the fault plan.
        broker: the subscriptions, by channel.
        policy: the auth policy (one verifier per mode).
        subscribers: the open connections by id (the fan-out's targets).
        on_error: collects a server-side exception for ``Emulator.check``.
        runtime: the namespaces' APPSYNC_JS code and direct Lambdas (started by the
            server before it listens).
    """

    def __init__(
        self,
        *,
        config: EmulatorConfig,
        recorder: Recorder,
        plan: FaultPlan,
        broker: Broker,
        policy: AuthPolicy,
        subscribers: Mapping[str, Subscriber],
        on_error: Callable[[BaseException], None],
        runtime: HandlerRuntime | None = None,
    ) -> None:
        self.config = config
        self.runtime = runtime if runtime is not None else HandlerRuntime(config)
        self.recorder = recorder
        self.plan = plan
        self.broker = broker
        self.policy = policy
        self.subscribers = subscribers
        self.on_error = on_error
        self._identifiers = _Identifiers()
        self._namespaces = {ns.name: ns for ns in config.namespaces}  # names are unique
        self.namespace_exists: Callable[[str], bool] = self._namespaces.__contains__
        self._publish_gates = {ns.name: (ns, config.publish_modes(ns)) for ns in config.namespaces}
        """Each namespace and its publish auth modes (the configuration never changes)."""
        self._max_event_chars = config.limits.max_event_bytes // 4
        """Events this long or shorter are within ``max_event_bytes`` (4 bytes a character
        at most)."""
        """Whether a namespace is configured (one function for every connection's core)."""
        self.cork = Cork()
        """Holds the fan-out's writes until its publish is recorded."""

    # --- auth -------------------------------------------------------------------------------

    def now(self) -> datetime:
        """UTC wall time for auth checks, shifted by ``config.clock_offset``."""
        offset = self.config.clock_offset
        now = datetime.now(UTC)
        return now + timedelta(seconds=offset) if offset else now

    async def authorize(self, request: AuthRequest, modes: Sequence[Any]) -> Identity:
        """Authorize ``request`` against ``modes``.

        Raises:
            AuthFailure: denied (a verifier crash is collected and counts as denied).
        """
        try:
            identity = await self.policy.authorize(request, modes, self.now())
        except AuthFailure as exc:
            if LOG_AUTH.isEnabledFor(logging.INFO):
                LOG_AUTH.info("%s denied: %s", _describe(request), exc)
            raise
        except Exception as exc:
            LOG_AUTH.error("%s: verifier failed", _describe(request), exc_info=exc)
            self.on_error(exc)
            raise unauthorized() from exc
        if LOG_AUTH.isEnabledFor(logging.DEBUG):
            LOG_AUTH.debug(
                "%s authorized via %s (%s)", _describe(request), identity.mode, identity.principal
            )
        return identity

    async def _authorize(self, request: AuthRequest | None, modes: Sequence[Any]) -> Identity:
        if request is None:
            # An operation without authorization is unauthorized (the emulator's choice).
            raise Rejection(unauthorized().errors, status=401)
        return await self.authorize(request, modes)

    # --- subscribe --------------------------------------------------------------------------

    async def subscribe(
        self,
        channel: Channel,
        auth: AuthRequest | None,
        request_headers: Mapping[str, str],
        conn: ConnectionInfo,
    ) -> Identity:
        """Run a validated subscribe: fault, authorization, then ``onSubscribe``.

        Raises:
            Rejection: a fault, the authorizer or the handler refused it.
        """
        namespace = self._namespace(channel)
        decision = self.plan.decide(Point.SUBSCRIBE, conn)
        if decision.reject is not None:
            LOG_FAULTS.info("[%s] rejecting a subscribe to %s (fault)", conn.id, channel.path)
            raise Rejection(decision.reject, status=400)
        identity = await self._authorize(auth, self.config.subscribe_modes(namespace))
        await handlers.run_on_subscribe(
            self.config,
            namespace,
            channel=channel,
            identity=identity,
            request_headers=request_headers,
            on_error=self.on_error,
            runner=self.runtime.runners(namespace.name).on_subscribe,
        )
        return identity

    # --- publish (WebSocket and HTTP) -----------------------------------------------------

    async def publish(
        self,
        channel: Channel,
        events: tuple[str, ...],
        auth: AuthRequest | None,
        request_headers: Mapping[str, str],
        *,
        transport: Literal["websocket", "http"],
        conn: ConnectionInfo | None = None,
    ) -> Published:
        """Run a validated publish: fault, authorization, then ``onPublish``.

        Raises:
            Rejection: a fault, the authorizer or the handler refused it.
        """
        namespace = self._namespace(channel)
        decision = self.plan.decide(Point.PUBLISH, conn)
        if decision.reject is not None:
            where = conn.id if conn is not None else "http"
            LOG_FAULTS.info("[%s] rejecting a publish to %s (fault)", where, channel.path)
            raise Rejection(decision.reject, status=decision.status or 400)
        if auth is None:  # an operation without authorization is unauthorized
            raise Rejection(unauthorized().errors, status=401)
        identity = await self.authorize(auth, self.config.publish_modes(namespace))
        if not decision.fail_events:
            on_publish = self.runtime.runners(namespace.name).on_publish
            if on_publish is None and namespace.on_publish is None:
                # No handler: every event is broadcast (the hot path, without the
                # handler's coroutine).
                ids = self._identifiers.take(len(events))
                return Published(handlers.default_outcome(self.config, events, ids), ids, identity)
        outcome, identifiers = await self._run_on_publish(
            namespace, channel, events, identity, request_headers, transport, decision
        )
        return Published(outcome, identifiers, identity)

    def publish_now(
        self, channel: Channel, events: tuple[str, ...], auth: Mapping[str, str] | None
    ) -> tuple[tuple[str, ...], Identity] | None:
        """:meth:`publish` of a validated WebSocket publish that needs no coroutine (the
        hot path): no fault at ``PUBLISH``, no ``onPublish`` handler, every event within
        ``max_event_bytes`` (so every event is broadcast), and an auth map the policy
        decides at once (:meth:`AuthPolicy.quick`).  Returns the events' identifiers and
        the identity, as :meth:`publish` would; ``None`` when :meth:`publish` must run
        (nothing was done).
        """
        if auth is None or not events or self.plan.active(_PUBLISH):
            return None
        name = channel.namespace
        namespace, modes = self._publish_gates[name]  # the endpoint validated the channel
        if namespace.on_publish is not None or self.runtime.runners(name).on_publish is not None:
            return None
        if max(map(len, events)) > self._max_event_chars:
            return None  # one may be too large: default_outcome fails those
        if LOG_AUTH.isEnabledFor(logging.DEBUG):
            return None  # authorize() logs each success
        identity = self.policy.quick(auth, modes, self.now)
        if identity is None:
            return None
        return self._identifiers.take(len(events)), identity

    def _namespace(self, channel: Channel) -> NamespaceConfig:
        namespace = self._namespaces.get(channel.namespace)
        assert namespace is not None  # the endpoint validated the channel
        return namespace

    async def _run_on_publish(
        self,
        namespace: NamespaceConfig,
        channel: Channel,
        events: tuple[str, ...],
        identity: Identity | None,
        request_headers: Mapping[str, str],
        transport: Literal["websocket", "http"],
        decision: Decision,
    ) -> tuple[handlers.PublishOutcome, tuple[str, ...]]:
        # Runs on_publish minus the events a FailEvents fault fails; the outcome keeps the
        # original indexes.
        ids = self._identifiers.take(len(events))
        forced: dict[int, FailedEvent] = {}
        for fault in decision.fail_events:
            for index in fault.indexes:
                if index < len(events) and index not in forced:
                    forced[index] = FailedEvent(
                        identifier=ids[index], index=index, code=fault.code, message=fault.message
                    )
        keep: Sequence[int] = range(len(events))
        if forced:
            LOG_FAULTS.info("failing events %s of a publish to %s", sorted(forced), channel.path)
            keep = [i for i in keep if i not in forced]
        if not keep:
            return handlers.PublishOutcome(
                broadcast=(), successful=(), failed=tuple(sorted(forced.values(), key=_index))
            ), ids
        inner = await handlers.run_on_publish(
            self.config,
            namespace,
            channel=channel,
            events=tuple(events[i] for i in keep) if forced else events,
            identifiers=tuple(ids[i] for i in keep) if forced else ids,
            identity=identity,
            request_headers=request_headers,
            operation_transport=transport,
            on_error=self.on_error,
            runner=self.runtime.runners(namespace.name).on_publish,
        )
        if not forced:
            return inner, ids
        # The handler saw positions in the reduced list; map them back.
        successful = [replace(s, index=keep[s.index]) for s in inner.successful]
        failed = [*forced.values(), *(replace(f, index=keep[f.index]) for f in inner.failed)]
        outcome = handlers.PublishOutcome(
            broadcast=inner.broadcast,
            successful=tuple(sorted(successful, key=_index)),
            failed=tuple(sorted(failed, key=_index)),
        )
        return outcome, ids

    def deliver(
        self,
        channel: Channel,
        events: tuple[str, ...],
        published: Published,
        *,
        transport: Literal["websocket", "http"],
        connection_id: str | None = None,
        publish_id: str | None = None,
    ) -> Delivery:
        """Fan out an accepted publish and record it."""
        outcome = published.outcome
        with self.cork:  # the frames go out once the publish is recorded
            delivery = self.fan_out(channel, outcome.broadcast)
            self._record_publish(
                channel, events, published, delivery, transport, connection_id, publish_id
            )
        return delivery

    def _record_publish(
        self,
        channel: Channel,
        events: tuple[str, ...],
        published: Published,
        delivery: Delivery,
        transport: Literal["websocket", "http"],
        connection_id: str | None,
        publish_id: str | None,
    ) -> None:
        outcome = published.outcome
        self.recorder.record_publish_row(
            channel.path,
            events,
            published.identifiers,
            published.identity,
            transport,
            outcome.failed,
            outcome.broadcast,
            delivery.frames,
            connection_id,
            publish_id,
        )

    def fan_out(self, channel: Channel, texts: Sequence[str]) -> Delivery:
        """Queue one ``data`` frame per event per matching subscription."""
        found = self.broker.lookup(channel) if texts else None
        if found is None or not found.keys:
            return Delivery(0, False)
        # Each event is encoded (and its frames' shared bytes made) once for every
        # subscriber, and whether outbound faults apply is asked once.
        events = FramedEvents(_DataEvents(texts), faults=self.plan.active(_OUTBOUND))
        delivered = fan_out(found, self.subscribers, events, self.cork)
        delivery: Delivery = _new_tuple(Delivery, (delivered, events.pressure))  # in C
        return delivery


def _index(event: PublishedEvent | FailedEvent) -> int:
    return event.index
