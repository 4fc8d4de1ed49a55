"""The practical-limit baseline for the emulator benchmarks: a minimal aiohttp broadcaster.

It speaks the frames the benchmarks use (``connection_init`` → ``connection_ack`` + ``ka``,
``subscribe`` → ``subscribe_success``, ``publish`` → ``publish_success`` + ``data``), on the
same stack as the emulator (aiohttp's server and WebSocket reader), and does only what
fan-out needs: no authorization, no validation beyond parsing the JSON, no queues, no
limits, no recorder.  It parses and encodes JSON with ``orjson`` when that is installed,
as the emulator does.  Each event is encoded once per publish (and the frame bytes around a
subscription's prefix once per prefix length), and each subscriber gets the publish's
frames in one transport write (frames framed here, uncompressed).  As the emulator does,
the writes made while handling frames that were already read are held, per socket and
bounded, and each socket gets one transport write before the reader waits for the next
frame.  Run as a script: ``python _baseline.py --ready-file PATH`` writes the endpoint to
PATH and serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import struct
from collections import defaultdict
from pathlib import Path

from aiohttp import WSMsgType, web

try:
    import orjson
except ImportError:  # pragma: no cover - the lean install
    orjson = None

_loads = json.loads if orjson is None else orjson.loads


def _dumps(value: object) -> bytes:
    if orjson is None:
        return json.dumps(value, separators=(",", ":")).encode()
    return orjson.dumps(value)


_LEN2 = struct.Struct("!BBH").pack
_LEN3 = struct.Struct("!BBQ").pack


def _header(n: int) -> bytes:
    if n < 126:
        return bytes((0x81, n))
    if n < 65536:
        return _LEN2(0x81, 126, n)
    return _LEN3(0x81, 127, n)


def _frame(text: str | bytes) -> bytes:
    payload = text.encode() if isinstance(text, str) else text
    return _header(len(payload)) + payload


def _segments(size: int, tails: list[bytes]) -> list[bytes]:
    """``header1 | prefix | tail1 + header2 | prefix | ... | tailN``, split at the prefixes."""
    segments = [b""]
    for tail in tails:
        segments[-1] += _header(size + len(tail))
        segments.append(tail)
    return segments


HOLD_WRITES = 64  # writes held per socket at most (the emulator's bounds)
HOLD_BYTES = 1 << 20  # bytes held in all at most


async def serve(ready_file: Path) -> None:
    # channel -> {transport: [subscription prefix, ...]}
    channels: dict[str, dict[asyncio.Transport, list[bytes]]] = defaultdict(dict)
    counter = 0
    held: dict[asyncio.Transport, list[bytes]] = {}  # writes held while frames wait
    held_bytes = 0

    def flush() -> None:
        nonlocal held, held_bytes
        writes, held, held_bytes = held, {}, 0
        for target, chunks in writes.items():
            if not target.is_closing():
                target.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))

    def write(target: asyncio.Transport, data: bytes) -> None:
        nonlocal held_bytes
        chunks = held.get(target)
        if chunks is None:
            held[target] = [data]
        elif len(chunks) < HOLD_WRITES - 1:
            chunks.append(data)
        else:
            del held[target]
            chunks.append(data)
            held_bytes -= sum(map(len, chunks)) - len(data)
            target.write(b"".join(chunks))
            return
        held_bytes += len(data)
        if held_bytes > HOLD_BYTES:
            flush()

    async def realtime(request: web.Request) -> web.WebSocketResponse:
        nonlocal counter
        ws = web.WebSocketResponse(protocols=("aws-appsync-event-ws",), compress=False)
        transport = request.transport
        assert transport is not None
        await ws.prepare(request)
        mine: set[str] = set()
        buffered = ws._reader._buffer  # type: ignore[union-attr]  # frames read, not returned
        try:
            while True:
                # Hold the writes while the next frame is already read (and is one that
                # receive returns as it is, writing nothing itself).
                if held and not (buffered and buffered[0][0].type is WSMsgType.TEXT):
                    flush()
                msg = await ws.receive()
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                    break
                if msg.type is not WSMsgType.TEXT:
                    continue
                frame = _loads(msg.data)
                kind = frame.get("type")
                if kind == "publish":
                    channel = "/" + frame["channel"].strip("/")
                    events = frame["events"]
                    ok = []
                    for i in range(len(events)):
                        counter += 1
                        h = f"{counter:032x}"
                        ident = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:]}"
                        ok.append({"identifier": ident, "index": i})
                    reply = {"type": "publish_success", "id": frame["id"], "successful": ok}
                    reply["failed"] = []
                    write(transport, _frame(_dumps(reply)))
                    tails = [_dumps(e) + b"}" for e in events]  # once per event
                    # The bytes between two prefixes depend only on the prefix's length:
                    # made once per length, each subscriber's frames are one join.
                    between: dict[int, list[bytes]] = {}
                    for target, prefixes in channels[channel].items():
                        if target.is_closing():
                            continue
                        parts = []
                        for prefix in prefixes:
                            segments = between.get(len(prefix))
                            if segments is None:
                                segments = between[len(prefix)] = _segments(len(prefix), tails)
                            parts.append(prefix.join(segments))
                        # one write per subscriber
                        write(target, parts[0] if len(parts) == 1 else b"".join(parts))
                elif kind == "connection_init":
                    write(
                        transport,
                        _frame('{"type":"connection_ack","connectionTimeoutMs":300000}')
                        + _frame('{"type":"ka"}'),
                    )
                elif kind == "subscribe":
                    channel = "/" + frame["channel"].strip("/")
                    sub_id = json.dumps(frame["id"])
                    prefix = ('{"type":"data","id":' + sub_id + ',"event":').encode()
                    channels[channel].setdefault(transport, []).append(prefix)
                    mine.add(channel)
                    write(transport, _frame('{"type":"subscribe_success","id":' + sub_id + "}"))
        finally:
            flush()
            for channel in mine:
                channels[channel].pop(transport, None)
        return ws

    app = web.Application()
    app.add_routes([web.get("/event/realtime", realtime)])
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    port = runner.addresses[0][1]
    tmp = ready_file.with_suffix(".tmp")
    endpoint = f"ws://127.0.0.1:{port}/event/realtime"
    tmp.write_text(json.dumps({"realtime_endpoint": endpoint, "api_key": "none"}))
    os.replace(tmp, ready_file)
    await asyncio.Event().wait()  # until killed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ready-file", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.ready_file))


if __name__ == "__main__":
    main()
