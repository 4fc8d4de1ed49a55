"""Direct Lambda integrations (``Behavior: DIRECT``), with a local Python function.

A namespace whose ``handlerConfigs.onPublish`` / ``onSubscribe`` has ``behavior: DIRECT``
calls a Lambda function instead of running code.  Here the "Lambda" is a Python callable
(``"package.module:function"`` or the callable itself, sync or async) that gets
``(event, context)`` exactly as the Lambda runtime would pass them, so an unchanged
Powertools ``AppSyncEventsResolver`` handler works.

Followed pages:

* "Direct data source integrations using Lambda" (AWS AppSync Events developer guide,
  https://docs.aws.amazon.com/appsync/latest/eventapi/direct-lambda-integrations.html):
  a publish answer is ``{events?: OutgoingEvent[], error?: string}``; a top-level
  ``error`` is logged by AppSync, not returned to the publisher; a subscribe answer is
  ``null`` (accept) or ``{error: string}``; with ``EVENT`` the function is invoked
  asynchronously and the events are broadcast as usual.
* Powertools for AWS Lambda (Python), "Event Handler: AppSync Events": the request shape
  (``payload_request.json``), the three ways to fail (per-item ``error``, top-level
  ``error``, raising ``UnauthorizedException``).

The event is the context of :func:`~appsync_emulator.handler_contract.build_context`,
passed through JSON both ways, as the Lambda service does.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import importlib
import inspect
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final

from appsync_events import JSONValue

from .handler_contract import (
    UNAUTHORIZED_MESSAGE,
    Accept,
    Broadcast,
    Crash,
    CrashKind,
    Deny,
    OutgoingEvent,
    PublishOutcome,
    Reject,
    SubscribeOutcome,
    interpret_publish_result,
)

__all__ = [
    "UNAUTHORIZED_EXCEPTION",
    "DirectLambda",
    "InvokeType",
    "LambdaContext",
    "LambdaFunction",
    "resolve_function",
]

log = logging.getLogger("appsync_emulator.handlers.lambda")

UNAUTHORIZED_EXCEPTION: Final = "UnauthorizedException"
"""The errorType (exception class name) that makes AppSync deny the request."""

LambdaFunction = Callable[[dict[str, Any], "LambdaContext"], Any]
"""A Lambda handler: ``handler(event, context)``, sync or async."""

_resolved: dict[str, LambdaFunction] = {}


class InvokeType(enum.StrEnum):
    """``lambdaConfig.invokeType`` (AWS::AppSync::ChannelNamespace LambdaConfig)."""

    REQUEST_RESPONSE = "REQUEST_RESPONSE"
    EVENT = "EVENT"


def resolve_function(ref: str | LambdaFunction) -> LambdaFunction:
    """Return the function named by ``ref`` (a callable, or ``"package.module:attr"``).

    Raises:
        ValueError: ``ref`` is malformed, cannot be imported, or is not callable.
    """
    if callable(ref):
        return ref
    if ref in _resolved:
        return _resolved[ref]
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"Lambda function {ref!r}: expected 'package.module:function'")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"Lambda function {ref!r}: {exc}") from exc
    if not callable(target):
        raise ValueError(f"Lambda function {ref!r} is not callable")
    _resolved[ref] = target
    return target  # type: ignore[no-any-return]


@dataclass(slots=True)
class LambdaContext:
    """The ``context`` argument of a Python Lambda handler (the attributes Powertools uses)."""

    function_name: str
    timeout: float
    """Seconds the invocation may run (sets :meth:`get_remaining_time_in_millis`)."""
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 128
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = "local"
    identity: None = None
    client_context: None = None
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self.invoked_function_arn = (
            self.invoked_function_arn
            or f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        )
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"
        self._deadline = time.monotonic() + self.timeout

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the invocation times out."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _Failed(Exception):
    def __init__(self, crash: Crash | Deny) -> None:
        super().__init__(getattr(crash, "detail", "denied"))
        self.outcome = crash


def _event_ids(ctx: Mapping[str, JSONValue]) -> list[str]:
    events = ctx.get("events")
    return [
        str(e.get("id"))
        for e in (events if isinstance(events, list) else [])
        if isinstance(e, dict)
    ]


def _forward_all(ctx: Mapping[str, JSONValue]) -> Broadcast:
    events = ctx.get("events")
    return Broadcast(
        events=tuple(
            OutgoingEvent(id=str(e.get("id")), index=i, payload=e.get("payload"))
            for i, e in enumerate(events if isinstance(events, list) else [])
            if isinstance(e, dict)
        )
    )


class DirectLambda:
    """A namespace handler backed by a local "Lambda" function.

    Use it as an async context manager: :meth:`aclose` waits for ``EVENT`` invocations
    still running (each bounded by ``timeout``).

    Args:
        function: the handler, or ``"package.module:function"`` (imported now, so a
            wrong name fails at start-up).
        invoke_type: ``REQUEST_RESPONSE`` (the answer decides) or ``EVENT``
            (fire-and-forget: events are broadcast unchanged, subscriptions accepted).
        timeout: seconds an invocation may run (the Lambda function timeout).
        function_name: the name in :class:`LambdaContext`.
        concurrency: sync invocations that may run at once.  The default, 1, is one warm
            Lambda execution environment: Powertools keeps the current event in class
            attributes, so in-process invocations must not overlap.  A handler that never
            returns keeps its thread (Python cannot stop it) and later calls time out.
        max_pending_events: ``EVENT`` invocations allowed in flight; more are dropped
            with a warning, never queued, so the broadcast is never delayed.

    Raises:
        ValueError: ``function`` cannot be resolved, or a limit is not positive.
    """

    def __init__(
        self,
        function: str | LambdaFunction,
        *,
        invoke_type: InvokeType | str = InvokeType.REQUEST_RESPONSE,
        timeout: float = 10.0,
        function_name: str | None = None,
        concurrency: int = 1,
        max_pending_events: int = 16,
    ) -> None:
        if timeout <= 0 or concurrency < 1 or max_pending_events < 1:
            raise ValueError("timeout, concurrency and max_pending_events must be positive")
        self.function = resolve_function(function)
        self.invoke_type = InvokeType(invoke_type)
        self.timeout = timeout
        self.function_name: str = function_name or str(
            getattr(self.function, "__name__", "handler")
        )
        self.max_pending_events = max_pending_events
        self._executor = concurrent.futures.ThreadPoolExecutor(
            concurrency, thread_name_prefix="appsync-lambda"
        )
        self._tasks: asyncio.TaskGroup | None = None
        self._pending = 0
        self._closed = False

    async def __aenter__(self) -> DirectLambda:
        self._tasks = asyncio.TaskGroup()
        await self._tasks.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Wait for in-flight ``EVENT`` invocations, then stop the workers.  Idempotent.

        Cancellation: cancelling it cancels the in-flight ``EVENT`` invocations.
        """
        if self._closed:
            return
        self._closed = True
        tasks, self._tasks = self._tasks, None
        try:
            if tasks is not None:
                await tasks.__aexit__(None, None, None)
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # --- invoking ----------------------------------------------------------------------

    async def _invoke(self, event: Mapping[str, JSONValue]) -> JSONValue:
        # Call the function once; its answer goes through JSON as Lambda's would.
        # Bounded by `timeout`.  Cancellation abandons a sync handler's thread (Python
        # cannot interrupt it) and cancels an async one.
        payload = json.loads(json.dumps(event))
        context = LambdaContext(function_name=self.function_name, timeout=self.timeout)
        try:
            async with asyncio.timeout(self.timeout):
                result = await self._call(payload, context)
        except TimeoutError:
            raise _Failed(
                Crash(kind=CrashKind.TIMEOUT, detail=f"Task timed out after {self.timeout:g} s")
            ) from None
        except Exception as exc:
            raise _Failed(self._raised(exc)) from exc
        try:
            return json.loads(json.dumps(result, allow_nan=False))  # type: ignore[no-any-return]
        except (TypeError, ValueError) as exc:
            raise _Failed(
                Crash(kind=CrashKind.MALFORMED, detail=f"Runtime.MarshalError: {exc}")
            ) from exc

    async def _call(self, payload: dict[str, Any], context: LambdaContext) -> Any:
        if inspect.iscoroutinefunction(self.function):
            return await self.function(payload, context)
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._executor, self.function, payload, context)
        if inspect.isawaitable(result):
            result = await result
        return result

    def _raised(self, exc: Exception) -> Crash | Deny:
        # Lambda reports an unhandled exception as errorType = its class name; AppSync
        # denies the request when that is UnauthorizedException (the Powertools
        # convention), and fails it otherwise.
        error_type = type(exc).__name__
        if error_type == UNAUTHORIZED_EXCEPTION:
            log.info("%s raised UnauthorizedException: %s", self.function_name, exc)
            # DIVERGENCE: whether AWS passes the exception's message to the client is
            # not documented; the emulator sends AppSync's generic unauthorized text.
            return Deny(message=UNAUTHORIZED_MESSAGE)
        log.error("%s failed: %s: %s", self.function_name, error_type, exc, exc_info=exc)
        return Crash(kind=CrashKind.EXCEPTION, detail=f"{error_type}: {exc}")

    def _fire_and_forget(self, event: Mapping[str, JSONValue]) -> None:
        if self._tasks is None:
            raise RuntimeError("EVENT invocations need `async with DirectLambda(...)`")
        if self._pending >= self.max_pending_events:
            log.warning(
                "%s: %d EVENT invocations in flight, dropping one",
                self.function_name,
                self._pending,
            )
            return
        self._pending += 1
        self._tasks.create_task(self._background(event))

    async def _background(self, event: Mapping[str, JSONValue]) -> None:
        # Never raises: a failure here must not cancel the task group's owner.
        try:
            await self._invoke(event)
        except _Failed as exc:
            log.warning("%s (EVENT) failed: %s", self.function_name, exc.outcome)
        except Exception:
            log.exception("%s (EVENT) failed", self.function_name)
        finally:
            self._pending -= 1

    # --- the handler interface ---------------------------------------------------------

    async def on_publish(self, ctx: Mapping[str, JSONValue]) -> PublishOutcome:
        """Invoke the function for a publish and map its answer as AppSync does.

        Returns:
            :class:`Broadcast` (``events``, with per-event ``error`` entries in
            ``failed``), :class:`Reject` with ``public=False`` for a top-level ``error``,
            :class:`Deny` for ``UnauthorizedException``, :class:`Crash` otherwise.  With
            ``EVENT``: every event, at once.

        Raises:
            RuntimeError: ``EVENT`` without ``async with``.

        Bounded by ``timeout``; cancelling the await abandons a sync
        handler's thread (Python cannot stop it) and cancels an async handler.
        """
        if self.invoke_type is InvokeType.EVENT:
            self._fire_and_forget(ctx)
            return _forward_all(ctx)
        try:
            answer = await self._invoke(ctx)
        except _Failed as exc:
            return exc.outcome
        if answer is None:
            return Broadcast(events=())
        if not isinstance(answer, dict):
            return Crash(
                kind=CrashKind.MALFORMED,
                detail=f"the answer must be {{events?, error?}}, not {type(answer).__name__}",
            )
        error = answer.get("error")
        if error is not None:
            log.warning("%s returned error: %s", self.function_name, error)
            return Reject(message=str(error), public=False)
        return interpret_publish_result(answer.get("events"), _event_ids(ctx), who="events")

    async def on_subscribe(self, ctx: Mapping[str, JSONValue]) -> SubscribeOutcome:
        """Invoke the function for a subscribe: ``null`` accepts, ``{error}`` rejects.

        Returns:
            :class:`Accept`, :class:`Reject` (the ``error`` text), :class:`Deny`
            (``UnauthorizedException``) or :class:`Crash`.  With ``EVENT``:
            :class:`Accept`, at once.

        Raises:
            RuntimeError: ``EVENT`` without ``async with``.

        Bounded by ``timeout``; cancelling the await abandons a sync
        handler's thread (Python cannot stop it) and cancels an async handler.
        """
        if self.invoke_type is InvokeType.EVENT:
            self._fire_and_forget(ctx)
            return Accept()
        try:
            answer = await self._invoke(ctx)
        except _Failed as exc:
            return exc.outcome
        if answer is None:
            return Accept()
        if not isinstance(answer, dict):
            return Crash(
                kind=CrashKind.MALFORMED,
                detail=f"the answer must be null or {{error}}, not {type(answer).__name__}",
            )
        error = answer.get("error")
        return Accept() if error is None else Reject(message=str(error))
