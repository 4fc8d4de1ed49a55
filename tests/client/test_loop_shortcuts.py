"""The connection's shortcuts around asyncio's own loop: each does what the loop's method
does, and any other loop (or asyncio's in debug mode) gets the method itself."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest

from appsync_events.connection import future_maker, soon_caller

pytestmark = pytest.mark.asyncio


class OtherLoop:
    """Stands in for a loop that is not asyncio's own (uvloop, a test loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.calls: list[str] = []

    def create_future(self) -> asyncio.Future[Any]:
        self.calls.append("create_future")
        return self.loop.create_future()

    def call_soon(self, callback: Any, *args: Any) -> asyncio.Handle:
        self.calls.append("call_soon")
        return self.loop.call_soon(callback, *args)

    def get_debug(self) -> bool:
        return False


async def test_soon_caller_runs_the_callback_on_the_next_turn() -> None:
    loop = asyncio.get_running_loop()
    ran: list[str] = []
    soon = soon_caller(loop, lambda: ran.append("callback"))
    assert isinstance(soon, functools.partial)
    assert soon.func == loop._ready.append  # type: ignore[attr-defined]
    soon()
    loop.call_soon(ran.append, "after")
    soon()  # twice: it runs twice, in order
    assert ran == []
    await asyncio.sleep(0)
    assert ran == ["callback", "after", "callback"]


async def test_soon_caller_uses_call_soon_elsewhere() -> None:
    loop = asyncio.get_running_loop()
    other = OtherLoop(loop)
    ran: list[int] = []
    soon_caller(other, lambda: ran.append(1))()  # type: ignore[arg-type]
    assert other.calls == ["call_soon"]
    await asyncio.sleep(0)
    assert ran == [1]


async def test_soon_caller_uses_call_soon_in_debug_mode() -> None:
    loop = asyncio.get_running_loop()
    debug = loop.get_debug()
    loop.set_debug(True)
    try:
        soon = soon_caller(loop, lambda: None)
    finally:
        loop.set_debug(debug)
    assert isinstance(soon, functools.partial)
    assert soon.func == loop.call_soon


async def test_future_maker() -> None:
    loop = asyncio.get_running_loop()
    future = future_maker(loop)()
    assert type(future) is type(loop.create_future())
    assert future.get_loop() is loop
    other = OtherLoop(loop)
    made = future_maker(other)()  # type: ignore[arg-type]
    assert other.calls == ["create_future"]
    assert made.get_loop() is loop
