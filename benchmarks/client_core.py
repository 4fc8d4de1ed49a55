"""Client core fast paths: does each one pay?  Both sides measured in the same run.

Run: ``.venv/bin/python benchmarks/client_core.py [--frames 200000] [--rounds 5]``

No sockets, no loop: the sans-I/O :class:`~appsync_events.protocol.client.ClientProtocol`
is fed ``data`` frames directly, so the figures are the core's own cost.  It prints, for
each fast path, the fast and the plain variant (medians of ``--rounds``) and their ratio
(> 1.0 means the fast path is faster):

1. **data frame parse**: ``receive_text`` on an open connection (``codec.parse_data_frame``,
   one ``raw_decode``, no message object) vs the general path every other frame takes
   (``codec.decode_server`` into a ``Data`` message, then dispatch);
2. **Message construction**: ``tuple.__new__(Message, ...)`` vs ``Message(...)`` (the
   named tuple's Python-level ``__new__``);
3. **publish preparation**: ``prepare_publish`` of 5 dict events, then of 5 ``RawJSON``
   texts (informative: the validate-once cost per publish, no alternative measured).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from appsync_events import Message, RawJSON
from appsync_events.protocol import codec
from appsync_events.protocol.client import ClientProtocol

EVENT = json.dumps({"message": "hello", "n": 12345, "tags": ["a", "b"], "text": "é" * 40})


def _open_protocol(sub_id: str) -> ClientProtocol:
    protocol = ClientProtocol()
    protocol.send_connection_init()
    protocol.receive_text('{"type":"connection_ack","connectionTimeoutMs":300000}')
    protocol.send_subscribe("default/*", None, sub_id)
    protocol.receive_text(json.dumps({"type": "subscribe_success", "id": sub_id}))
    protocol.data_to_send()
    protocol.events_received()
    return protocol


def _frames(sub_id: str, count: int) -> list[str]:
    one = json.dumps({"type": "data", "id": sub_id, "event": EVENT}, separators=(",", ":"))
    return [one] * count


def receive_fast(frames: list[str]) -> float:
    protocol = _open_protocol("sub-1")
    receive, drain = protocol.receive_text, protocol.events_received
    start = time.perf_counter()
    for frame in frames:
        receive(frame)
        drain()
    return time.perf_counter() - start


def receive_plain(frames: list[str]) -> float:
    protocol = _open_protocol("sub-1")
    dispatch, drain, decode = protocol._dispatch, protocol.events_received, codec.decode_server
    start = time.perf_counter()
    for frame in frames:
        dispatch(decode(frame))  # what receive_text does for every frame but data
        drain()
    return time.perf_counter() - start


def message_new_tuple(count: int) -> float:
    new = tuple.__new__
    start = time.perf_counter()
    for _ in range(count):
        new(Message, (EVENT, "sub-1", "default/*"))
    return time.perf_counter() - start


def message_call(count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        Message(EVENT, "sub-1", "default/*")
    return time.perf_counter() - start


def prepare(count: int, events: tuple[object, ...]) -> float:
    protocol = ClientProtocol()
    start = time.perf_counter()
    for _ in range(count):
        protocol.prepare_publish("default/a", events, html_escape=False)
    return time.perf_counter() - start


def _median(run: Callable[[], float], rounds: int) -> float:
    return statistics.median(run() for _ in range(rounds))


def _compare(label: str, count: int, fast: float, plain: float) -> None:
    print(
        f"{label:<22} fast {count / fast:>12,.0f}/s   plain {count / plain:>12,.0f}/s   "
        f"ratio {plain / fast:5.2f}x"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    count, rounds = args.frames, args.rounds
    frames = _frames("sub-1", count)
    fast = _median(lambda: receive_fast(frames), rounds)
    plain = _median(lambda: receive_plain(frames), rounds)
    _compare("data frame parse", count, fast, plain)
    fast = _median(lambda: message_new_tuple(count), rounds)
    plain = _median(lambda: message_call(count), rounds)
    _compare("Message construction", count, fast, plain)
    publishes = max(count // 20, 1)
    dicts = tuple({"n": n, "text": "é" * 40} for n in range(5))
    raws = tuple(RawJSON(json.dumps(event)) for event in dicts)
    for label, events in (("5 dict events", dicts), ("5 RawJSON events", raws)):
        seconds = _median(lambda events=events: prepare(publishes, events), rounds)  # type: ignore[misc]
        print(f"prepare_publish, {label:<17} {publishes / seconds:>12,.0f} publishes/s")


if __name__ == "__main__":
    main()
