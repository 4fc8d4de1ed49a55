"""``appsync-events`` / ``python -m appsync_events``: watch and poke AppSync Events channels.

::

    appsync-events sub default/orders 'default/alerts/*'      # one JSON line per event
    appsync-events pub default/orders '{"id": 1}' '"text"'     # events are JSON values
    jq -c '.[]' events.json | appsync-events pub default/orders --http
    appsync-events sub --emulator ready.json --count 1 --timeout 10 default/orders

Where and how to connect, from the first source that has it:

* the endpoint: ``--endpoint URL`` (the HTTP ``https://…/event`` URL; a real-time URL is
  converted) and ``--realtime-endpoint URL``; then ``--emulator READY_FILE`` (the file
  ``appsync-emulator --ready-file`` writes: endpoints, API key, region, CA certificate);
  then the environment (``APPSYNC_EVENTS_ENDPOINT``, ``APPSYNC_EVENTS_REALTIME_ENDPOINT``).
  Either endpoint alone is enough: the other is derived.
* the credentials: ``--api-key KEY``, ``--iam`` (the AWS credential chain; ``--profile`` or
  ``AWS_PROFILE`` picks a profile, ``--region`` or ``AWS_REGION`` the region when the host
  does not name it) or ``--token TOKEN`` (Cognito, OIDC or Lambda); then the emulator's
  API key; then ``APPSYNC_EVENTS_API_KEY`` or ``APPSYNC_EVENTS_TOKEN``.

``sub`` prints one JSON object per line (``channel``: the channel or pattern subscribed,
``id``: the subscription id, ``event``: the decoded event, ``received_at``: ISO 8601 UTC
time); when stdout is a terminal it prints readable coloured lines instead (``--json``
forces JSON lines; ``NO_COLOR`` turns colours off).  Ctrl+C ends it with status 0.

``pub`` publishes the EVENT arguments, or JSON lines read from stdin, in batches of at most
5 (each batch takes the lines already available, so a slow stream is published as it
comes).  It prints each batch's result (``successful`` and ``failed``, with ``index`` the
event's position in the whole input) and exits with status 1 if any event failed.

Exit statuses: 0 success; 1 the service refused or failed (one line on stderr naming the
error type, e.g. ``UnauthorizedException``), or ``--count`` was not reached within
``--timeout``; 2 a usage error (bad flag, endpoint, event or ready file); 130 Ctrl+C
during ``pub``.  ``--debug`` logs every frame on stderr, credentials redacted.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import datetime
import json
import logging
import os
import ssl as ssl_module
import sys
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TextIO

from .errors import AppSyncEventsError, ConfigurationError

__all__ = ["ENV_API_KEY", "ENV_ENDPOINT", "ENV_REALTIME_ENDPOINT", "ENV_TOKEN", "main"]

PROG: Final = "appsync-events"
ENV_ENDPOINT: Final = "APPSYNC_EVENTS_ENDPOINT"
ENV_REALTIME_ENDPOINT: Final = "APPSYNC_EVENTS_REALTIME_ENDPOINT"
ENV_API_KEY: Final = "APPSYNC_EVENTS_API_KEY"
ENV_TOKEN: Final = "APPSYNC_EVENTS_TOKEN"
MAX_BATCH: Final = 5
_STDIN_QUEUE: Final = 100  # lines read ahead of the publisher

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130

logger = logging.getLogger("appsync_events.cli")


class UsageError(Exception):
    """A bad flag, endpoint, event or ready file: exit status 2."""


class _Enough(Exception):
    """``--count`` events were printed."""


# --- command line ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``appsync-events`` argument parser."""
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("endpoint")
    where.add_argument(
        "--endpoint", metavar="URL", help=f"the HTTP endpoint https://…/event (env {ENV_ENDPOINT})"
    )
    where.add_argument(
        "--realtime-endpoint",
        metavar="URL",
        help=f"the real-time endpoint wss://…/event/realtime (env {ENV_REALTIME_ENDPOINT})",
    )
    where.add_argument(
        "--emulator",
        metavar="READY_FILE",
        type=Path,
        help="take endpoints, API key, region and CA from a running appsync-emulator's ready file",
    )
    where.add_argument(
        "--ca-cert", metavar="PATH", type=Path, help="trust this CA certificate (PEM) for TLS"
    )
    auth = common.add_argument_group("credentials")
    modes = auth.add_mutually_exclusive_group()
    modes.add_argument("--api-key", metavar="KEY", help=f"an API key (env {ENV_API_KEY})")
    modes.add_argument(
        "--iam", action="store_true", help="sign with SigV4 using the AWS credential chain"
    )
    modes.add_argument(
        "--token", metavar="TOKEN", help=f"a Cognito, OIDC or Lambda token (env {ENV_TOKEN})"
    )
    auth.add_argument(
        "--profile", metavar="NAME", help="AWS profile for --iam (default: AWS_PROFILE)"
    )
    auth.add_argument(
        "--region", metavar="REGION", help="AWS region for --iam when the host does not name it"
    )
    output = common.add_argument_group("output")
    output.add_argument(
        "--json", action="store_true", help="print JSON lines even when stdout is a terminal"
    )
    output.add_argument(
        "--debug", action="store_true", help="log every frame on stderr (credentials redacted)"
    )

    parser = argparse.ArgumentParser(
        prog=PROG, description="Subscribe to and publish on AWS AppSync Events channels."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub = commands.add_parser(
        "sub", parents=[common], help="print the events published on channels"
    )
    sub.add_argument("channels", nargs="+", metavar="CHANNEL", help="a channel or a /* pattern")
    sub.add_argument(
        "--count", type=_positive_int, metavar="N", help="exit after N events (status 1 if fewer)"
    )
    sub.add_argument(
        "--timeout", type=_positive_float, metavar="S", help="stop listening after S seconds"
    )
    sub.set_defaults(run=_run_sub)
    pub = commands.add_parser("pub", parents=[common], help="publish events to a channel")
    pub.add_argument("channel", metavar="CHANNEL", help="a channel (no wildcard)")
    pub.add_argument(
        "events",
        nargs="*",
        metavar="EVENT",
        help="a JSON value per event (quote text as a JSON string: '\"hi\"'); "
        "none: read JSON lines from stdin",
    )
    pub.add_argument(
        "--http", action="store_true", help="publish with HTTP POST /event (default: WebSocket)"
    )
    pub.add_argument(
        "--timeout",
        type=_positive_float,
        default=10.0,
        metavar="S",
        help="seconds for the connection and for each publish (default 10)",
    )
    pub.set_defaults(run=_run_pub)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    env = os.environ if environ is None else environ
    if args.debug:
        _log_debug()
    runner: Callable[[argparse.Namespace, Target], Any] = args.run
    try:
        target = resolve_target(args, env)
        return int(asyncio.run(runner(args, target)))
    except KeyboardInterrupt:
        print(file=sys.stderr)  # end the line after ^C
        return EXIT_OK if args.command == "sub" else EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`| head -1`): not an error
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (UsageError, ConfigurationError) as exc:
        return _fail(exc, EXIT_USAGE, args.debug)
    except (AppSyncEventsError, TimeoutError, OSError) as exc:
        return _fail(exc, EXIT_FAILED, args.debug)


def _fail(exc: BaseException, status: int, debug: bool) -> int:
    """Report ``exc`` on one line of stderr (the traceback too with ``--debug``)."""
    if debug:
        logger.debug("traceback", exc_info=exc)
    kind = "" if isinstance(exc, UsageError) else f"{type(exc).__name__}: "
    text = " ".join(f"{kind}{exc}".split())
    print(f"{PROG}: error: {text}", file=sys.stderr)
    return status


def _log_debug() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    package = logging.getLogger("appsync_events")
    package.addHandler(handler)
    package.setLevel(logging.DEBUG)


# --- endpoints and credentials --------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """Where to connect and with what."""

    http_endpoint: str
    realtime_endpoint: str
    authorizer: Any
    ssl: ssl_module.SSLContext | None


def read_ready_file(path: Path) -> dict[str, Any]:
    """Return the JSON object a running ``appsync-emulator --ready-file PATH`` wrote.

    Raises:
        UsageError: the file is missing, not a JSON object, or its emulator is gone.
    """
    hint = f"(is appsync-emulator running with --ready-file {path}?)"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(
            f"cannot read the emulator's ready file: {exc.strerror}: {path} {hint}"
        ) from None
    except ValueError as exc:
        raise UsageError(f"the emulator's ready file {path} is not JSON: {exc}") from None
    if not isinstance(info, dict) or not isinstance(info.get("http_endpoint"), str):
        raise UsageError(f"{path} is not an appsync-emulator ready file (no http_endpoint)")
    pid = info.get("pid")
    if os.name == "posix" and isinstance(pid, int) and pid > 0:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            raise UsageError(
                f"the emulator that wrote {path} (pid {pid}) is not running {hint}"
            ) from None
        except PermissionError:  # alive, owned by someone else
            pass
    return info


def resolve_target(args: argparse.Namespace, env: Mapping[str, str]) -> Target:
    """Work out the endpoints, the authorizer and the TLS context from flags, file, env.

    Raises:
        UsageError, ConfigurationError: nothing to connect to, no credentials, bad values.
    """
    from .endpoints import http_endpoint_from_realtime, realtime_endpoint_from_http

    ready = read_ready_file(args.emulator) if args.emulator is not None else {}
    http = args.endpoint or ready.get("http_endpoint") or env.get(ENV_ENDPOINT) or None
    realtime = (
        args.realtime_endpoint
        or ready.get("realtime_endpoint")
        or env.get(ENV_REALTIME_ENDPOINT)
        or None
    )
    if args.endpoint and not args.realtime_endpoint:
        realtime = None  # derived from the endpoint the user named
    if http is None and realtime is None:
        raise UsageError(
            f"no endpoint: pass --endpoint URL or --emulator READY_FILE, or set {ENV_ENDPOINT}"
        )
    http = http_endpoint_from_realtime(str(http if http is not None else realtime))
    realtime = realtime_endpoint_from_http(str(realtime if realtime is not None else http))
    ca = args.ca_cert if args.ca_cert is not None else ready.get("ca_cert")
    ssl = None
    if ca is not None and http.startswith("https:"):
        try:
            ssl = ssl_module.create_default_context(cafile=str(ca))
        except (OSError, ssl_module.SSLError) as exc:
            raise UsageError(f"cannot load the CA certificate {ca}: {exc}") from None
    region = args.region or ready.get("region")
    return Target(http, realtime, _authorizer(args, env, ready, region), ssl)


def _authorizer(
    args: argparse.Namespace, env: Mapping[str, str], ready: Mapping[str, Any], region: Any
) -> Any:
    from . import authorizer

    if args.iam or (args.profile and not (args.api_key or args.token)):
        return _iam(args, env, region)
    if args.token:
        return authorizer.Token(args.token)
    if args.api_key:
        return authorizer.ApiKey(args.api_key)
    if isinstance(ready.get("api_key"), str):
        return authorizer.ApiKey(ready["api_key"])
    if env.get(ENV_API_KEY):
        return authorizer.ApiKey(env[ENV_API_KEY])
    if env.get(ENV_TOKEN):
        return authorizer.Token(env[ENV_TOKEN])
    raise UsageError(
        f"no credentials: pass --api-key KEY, --iam or --token TOKEN, or set {ENV_API_KEY}"
    )


def _iam(args: argparse.Namespace, env: Mapping[str, str], region: Any) -> Any:
    import botocore.session

    from . import authorizer

    session = botocore.session.Session(profile=args.profile)
    if args.profile and args.profile not in session.available_profiles:
        raise UsageError(f"no AWS profile named {args.profile!r}")
    if not isinstance(region, str):
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None
    return authorizer.IAM(region, session=session)


# --- sub -------------------------------------------------------------------------------------


async def _run_sub(args: argparse.Namespace, target: Target) -> int:
    from .client import connect
    from .protocol.channels import parse_subscribe_channel

    for channel in args.channels:  # checked before connecting
        parse_subscribe_channel(channel)
    out = _Printer(sys.stdout, readable=_readable(args))
    seen = 0

    async def pump(sub: Any) -> None:
        nonlocal seen
        async for message in sub:
            out.event(message)
            seen += 1
            if args.count is not None and seen >= args.count:
                raise _Enough

    async with connect(target.realtime_endpoint, authorizer=target.authorizer, ssl=target.ssl) as (
        client
    ):
        subs = []
        for channel in args.channels:
            subs.append(await client.subscribe(channel))
            print(f"{PROG}: subscribed to {channel}", file=sys.stderr, flush=True)
        try:
            async with asyncio.timeout(args.timeout), _unwrapped():
                async with asyncio.TaskGroup() as tasks:
                    for sub in subs:
                        tasks.create_task(pump(sub))
        except _Enough:
            return EXIT_OK
        except TimeoutError:
            if args.count is None:
                return EXIT_OK
            raise TimeoutError(
                f"received {seen} of {args.count} events within {args.timeout:g}s"
            ) from None
    return EXIT_OK


@contextlib.asynccontextmanager
async def _unwrapped() -> AsyncIterator[None]:
    """Re-raise the first error of a task group instead of the ``ExceptionGroup``."""
    try:
        yield
    except BaseExceptionGroup as group:
        errors = group.exceptions
        first = next((e for e in errors if not isinstance(e, _Enough)), errors[0])
        raise first from None


def _readable(args: argparse.Namespace) -> bool:
    return not args.json and sys.stdout.isatty()


class _Printer:
    """Writes events and results as JSON lines, or as readable (coloured) lines."""

    def __init__(self, stream: TextIO, *, readable: bool) -> None:
        self.stream = stream
        self.readable = readable
        self.colour = readable and not os.environ.get("NO_COLOR")

    def _paint(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour else text

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def event(self, message: Any) -> None:
        now = datetime.datetime.now(datetime.UTC)
        try:
            event = json.loads(message.data)
        except ValueError:  # the service always sends JSON; show anything else as text
            event = message.data
        if not self.readable:
            record = {
                "channel": message.channel,
                "id": message.subscription_id,
                "event": event,
                "received_at": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            }
            self._write(json.dumps(record, ensure_ascii=False))
            return
        clock = now.astimezone().strftime("%H:%M:%S.%f")[:-3]
        body = json.dumps(event, ensure_ascii=False, indent=None)
        self._write(f"{self._paint('2', clock)}  {self._paint('36', message.channel)}  {body}")

    def result(self, channel: str, offset: int, result: Any) -> None:
        successful = [
            {"identifier": e.identifier, "index": offset + e.index} for e in result.successful
        ]
        failed = [
            {
                "identifier": e.identifier,
                "index": offset + e.index,
                "code": e.code,
                "message": e.message,
            }
            for e in result.failed
        ]
        if not self.readable:
            record = {"channel": channel, "successful": successful, "failed": failed}
            self._write(json.dumps(record, ensure_ascii=False))
            return
        for item in successful:
            self._write(f"{self._paint('32', 'ok')}  #{item['index']}  {item['identifier']}")
        for item in failed:
            why = f"{item['code']}: {item['message']}"
            self._write(f"{self._paint('31', 'failed')}  #{item['index']}  {why}")


# --- pub -------------------------------------------------------------------------------------


def _parse_event(text: str, where: str) -> Any:
    from ._types import RawJSON

    try:
        json.loads(text)
    except ValueError as exc:
        raise UsageError(
            f"{where} is not JSON ({exc}); quote text as a JSON string, e.g. '\"hello\"'"
        ) from None
    return RawJSON(text)


async def _batches(events: list[Any]) -> AsyncIterator[list[Any]]:
    """The events to publish (``events``, or else stdin), in batches of :data:`MAX_BATCH`."""
    if events:
        for start in range(0, len(events), MAX_BATCH):
            yield events[start : start + MAX_BATCH]
        return
    lines = _StdinLines(asyncio.get_running_loop(), sys.stdin.fileno())
    number = 0
    while True:
        batch: list[Any] = []
        line = await lines.get()
        while line is not None:
            number += 1
            if line.strip():
                batch.append(_parse_event(line.strip(), f"stdin line {number}"))
            if len(batch) == MAX_BATCH:
                break
            line = lines.get_nowait()  # what is already there joins this batch
        if batch:
            yield batch
        elif lines.eof:
            return


class _StdinLines:
    """Lines of stdin read by a daemon thread (a blocked read cannot be cancelled).

    The thread reads the file descriptor with ``os.read``, not ``sys.stdin.buffer``: a
    daemon thread blocked inside the buffered reader holds its lock, and an interpreter
    shutting down (Ctrl+C) then dies with "could not acquire lock for <stdin>".

    The thread reads what the pipe holds (up to 64 KiB at a time) and hands over all the
    complete lines of each read at once, so input that is already there is published in
    full batches and a slow stream line by line.  ``get()`` waits for the next line;
    ``get_nowait()`` returns one only if it is already there.  Both give ``None`` at the
    end of the input.  The thread waits while :data:`_STDIN_QUEUE` reads are unconsumed.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        self._loop = loop
        self._fd = fd
        self._lines: collections.deque[str | None] = collections.deque()
        self._ready = asyncio.Event()
        self._room = threading.Semaphore(_STDIN_QUEUE)
        self._held = 0  # reads handed over and not yet consumed
        self.eof = False
        threading.Thread(target=self._read, name="appsync-events stdin", daemon=True).start()

    def _read(self) -> None:
        pending = b""
        try:
            while chunk := os.read(self._fd, 65536):
                *lines, pending = (pending + chunk).split(b"\n")
                if lines:
                    self._room.acquire()  # released once the lines are consumed
                    self._hand_over([line.decode("utf-8", "replace") for line in lines])
        finally:
            tail: list[str | None] = [pending.decode("utf-8", "replace")] if pending else []
            self._hand_over([*tail, None])

    def _hand_over(self, lines: list[str | None]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
            self._loop.call_soon_threadsafe(self._arrived, lines)

    def _arrived(self, lines: list[str | None]) -> None:
        self._lines.extend(lines)
        self._held += lines[-1] is not None
        self._ready.set()

    async def get(self) -> str | None:
        while not self._lines and not self.eof:
            self._ready.clear()
            await self._ready.wait()
        return self.get_nowait()

    def get_nowait(self) -> str | None:
        if self.eof or not self._lines:
            return None
        line = self._lines.popleft()
        self.eof = line is None
        if not self._lines:
            for _ in range(self._held):
                self._room.release()
            self._held = 0
        return line


async def _run_pub(args: argparse.Namespace, target: Target) -> int:
    from .client import connect
    from .http import HttpPublisher
    from .protocol.channels import parse_channel

    # Checked before connecting: a typo costs no connection.
    parse_channel(args.channel)
    events = [_parse_event(t, f"EVENT {i + 1}") for i, t in enumerate(args.events)]
    out = _Printer(sys.stdout, readable=_readable(args))
    if args.http:
        publisher: Any = HttpPublisher(
            target.http_endpoint,
            authorizer=target.authorizer,
            ssl=target.ssl,
            operation_timeout=args.timeout,
        )
    else:
        publisher = connect(
            target.realtime_endpoint,
            authorizer=target.authorizer,
            ssl=target.ssl,
            handshake_timeout=args.timeout,
            operation_timeout=args.timeout,
        )
    sent = failed = 0
    async with publisher as client:
        async for batch in _batches(events):
            result = await client.publish(args.channel, *batch)
            out.result(args.channel, sent, result)
            sent += len(batch)
            failed += len(result.failed)
    if failed:
        print(f"{PROG}: {failed} of {sent} events failed", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
