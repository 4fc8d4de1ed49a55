"""``appsync-emulator replay FILE``: serve a recording to a client (see :mod:`.replay`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from .replay import Replayer

__all__ = ["DEFAULT_REPLAY_PORT", "add_replay_arguments", "replay_command"]

DEFAULT_REPLAY_PORT: Final = 8080
"""The port ``replay`` listens on by default (the emulator's)."""


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``replay`` subcommand's arguments."""
    parser.add_argument("file", type=Path, metavar="FILE", help="a recording made with --record")
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="X",
        help="play X times as fast as recorded (default 1; 0.5 is half speed)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_REPLAY_PORT,
        help=f"port to bind (default {DEFAULT_REPLAY_PORT}; 0 picks a free port)",
    )
    parser.add_argument(
        "--input-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long an expected client frame may take before it is a mismatch (default 10)",
    )
    parser.add_argument(
        "--ready-file",
        type=Path,
        metavar="PATH",
        help="write http_endpoint, realtime_endpoint, api_key and port as JSON to PATH "
        "once listening",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log verbosity on stderr",
    )


def replay_command(args: argparse.Namespace) -> int:
    """Run ``replay``; the exit status (0 played as recorded, 1 mismatches, 2 bad input)."""
    from .recording_file import RecordingFormatError
    from .replay import Replayer

    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    if not 0 <= args.port <= 65535:
        print(f"appsync-emulator replay: --port must be 0..65535, got {args.port}", file=sys.stderr)
        return 2
    try:
        replayer = Replayer(
            args.file,
            speed=args.speed,
            host=args.host,
            port=args.port,
            input_timeout=args.input_timeout,
        )
    except (RecordingFormatError, ValueError) as exc:
        print(f"appsync-emulator replay: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_replay(replayer, args.ready_file))
    except KeyboardInterrupt:
        return 130


async def _replay(replayer: Replayer, ready_file: Path | None) -> int:
    from ._ready_file import write_ready_file

    try:
        await replayer.start()
    except OSError as exc:
        print(f"appsync-emulator replay: cannot listen on {replayer.host}: {exc}", file=sys.stderr)
        return 1
    try:
        if ready_file is not None:
            info = {
                "http_endpoint": replayer.http_endpoint,
                "realtime_endpoint": replayer.realtime_endpoint,
                "api_key": replayer.api_key,
                "port": replayer.port,
                "pid": os.getpid(),
            }
            try:
                write_ready_file(ready_file, info)
            except OSError as exc:
                print(
                    f"appsync-emulator replay: cannot write --ready-file {ready_file}: "
                    f"{exc.strerror or exc}",
                    file=sys.stderr,
                )
                return 2
        print(
            f"Replaying {replayer.path.name} at speed {replayer.speed:g}\n"
            f"  HTTP publish : {replayer.http_endpoint}\n"
            f"  Real-time    : {replayer.realtime_endpoint}\n"
            "Connect a client (any credentials); Ctrl+C to stop.",
            flush=True,
        )
        await _until_done_or_signal(replayer)
    finally:
        await replayer.stop()
    print(replayer.report(), flush=True)
    for line in replayer.mismatches:
        print(f"mismatch: {line}", file=sys.stderr)
    return 1 if replayer.mismatches else 0


async def _until_done_or_signal(replayer: Replayer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    done = loop.create_task(replayer.wait_done(timeout=None))
    stopped = loop.create_task(stop.wait())
    try:
        await asyncio.wait([done, stopped], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (done, stopped):
            task.cancel()
        await asyncio.wait([done, stopped])
        for sig in installed:
            loop.remove_signal_handler(sig)
