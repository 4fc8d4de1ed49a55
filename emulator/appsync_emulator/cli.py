"""``appsync-emulator`` / ``python -m appsync_emulator``: run the emulator from a shell.

::

    appsync-emulator                          # http://127.0.0.1:8080/event, ws://…/event/realtime
    appsync-emulator --port 0 --tls --ready-file ready.json --config emulator.toml
    appsync-emulator --demo                   # start, run a short publish/subscribe demo, exit
    appsync-emulator example-config > emulator.toml
    appsync-emulator check-config emulator.toml   # validate (and import handlers), no server
    appsync-emulator --record session.jsonl       # save the traffic, secrets redacted
    appsync-emulator replay session.jsonl --speed 2   # play a recording back to a client

The server stops cleanly (exit status 0) on SIGINT or SIGTERM.  A configuration mistake, an
unwritable ``--ready-file`` or a bad ``--port`` prints one line and exits with status 2;
without the ``emulator`` extra the command prints the ``pip install`` line and exits 1.
``module:function`` references (handlers, Lambda authorizer) are imported at start-up with
the current folder on the import path, as ``python -m appsync_emulator`` does.
``--ready-file`` gets a JSON object once the server listens: ``http_endpoint``,
``realtime_endpoint``, ``region``, ``api_key``, ``api_keys`` and, with ``--tls``, ``ca_cert``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from appsync_events.protocol.subprotocol import PROTOCOL_EVENTS, encode_auth_subprotocol

from . import __version__
from ._logging import LOG_SERVER
from ._ready_file import write_ready_file
from .config import ConfigError, EmulatorConfig

if TYPE_CHECKING:
    from .hosting import EmulatorServer
    from .recording_file import RecordingFile

__all__ = [
    "DEFAULT_PORT",
    "EMULATOR_DEPENDENCIES",
    "EMULATOR_EXTRA",
    "EXAMPLE_CONFIG",
    "missing_dependency",
    "add_subcommands",
    "build_parser",
    "example_authorizer",
    "example_lambda",
    "main",
    "ready_info",
    "run_demo",
    "warn_if_exposed",
    "write_ready_file",
]

DEFAULT_PORT: Final = 8080
DEMO_CHANNEL: Final = "default/demo"
DEMO_TIMEOUT: Final = 10.0

Handler = Callable[[argparse.Namespace], int]

EMULATOR_EXTRA: Final = "pip install 'appsync-events[emulator]'"
"""What to run when the emulator's dependencies are missing (the pytest plugin names the
same command as ``appsync_emulator.pytest_plugin.EMULATOR_EXTRA``)."""

EMULATOR_DEPENDENCIES: Final = ("jwt", "cryptography", "trustme", "pydantic")
"""Top-level modules the ``emulator`` extra installs (imported by :func:`missing_dependency`)."""


def missing_dependency() -> str | None:
    """The first module of the ``emulator`` extra that cannot be imported, else ``None``."""
    for name in EMULATOR_DEPENDENCIES:
        try:
            importlib.import_module(name)
        except ImportError:
            return name
    return None


EXAMPLE_CONFIG: Final = """\
# appsync-emulator configuration (TOML; the same keys work in a .json file).
# Every key is optional: an empty file gives one API key and the namespace "default".
# Names and shapes follow the AWS EventConfig / ChannelNamespace API, so real settings paste in.

region = "us-east-1"
apiId = "emulatorapi0000000000000000"
accountId = "123456789012"

# Timings (AWS: 300000 ms in connection_ack, "ka" every 60 s, 24 h per connection).
connectionTimeoutMs = 300000
keepAliveIntervalSeconds = 60
maxConnectionLifetimeSeconds = 86400

clockOffsetSeconds = 0          # shifts the clock of SigV4 date and JWT exp/iat checks
strictAwsEscaping = false       # IAM over WebSocket: accept only the HTML-escaped body (the service refuses some signatures on < and >)
customDomains = []              # IAM: signed hosts accepted besides the emulator's HTTP host
failedEventCode = "EventProcessingError"   # `code` of failed[] entries set by a handler
recordLimit = 10000             # entries the recorder keeps per list
handlerTimeoutSeconds = 10      # seconds a Python handler or a direct Lambda may run
# tokenKeyFile = "emulator-token-key.pem"  # keep the local JWT issuer's key across runs

# API keys: plain strings, or tables with an expiry (an expired key is refused).
apiKeys = [
  "da2-emulatorlocaldevkey0000000",
  { key = "da2-secondkey00000000000000000", expires = "2035-01-01T00:00:00Z", description = "CI" },
]

# Credentials the AWS_IAM verifier accepts (sign with them as with real AWS keys).
[[iamCredentials]]
accessKeyId = "AKIAEMULATORLOCAL000"
secretAccessKey = "emulator/local/secret/access/key/0000000"
# sessionToken = "token"        # makes them temporary credentials (X-Amz-Security-Token)
accountId = "123456789012"
userArn = "arn:aws:iam::123456789012:user/developer"
username = "developer"
allowedActions = ["appsync:EventConnect", "appsync:EventSubscribe", "appsync:EventPublish"]
allowedResources = ["*"]        # IAM policy resources (channel-namespace ARNs) they may use

[eventConfig]
authProviders = [
  { authType = "API_KEY" },
  { authType = "AWS_IAM" },
  # Cognito/OIDC tokens are checked against the emulator's local issuer unless jwksFile is set.
  { authType = "AMAZON_COGNITO_USER_POOLS", cognitoConfig = { userPoolId = "us-east-1_example", awsRegion = "us-east-1", appIdClientRegex = ".*" } },
  { authType = "OPENID_CONNECT", openIDConnectConfig = { issuer = "https://issuer.example.com", clientId = "my-client", iatTTL = 0, authTTL = 0 } },
  # The Lambda authorizer is a Python callable "module:function", imported at start-up from
  # the current folder: write your own, e.g. "my_authorizers:authorize" for a function
  # authorize(event) in my_authorizers.py (the one named here allows every token).
  # identityValidationExpression is searched in the token (anchor it with ^ and $ to match
  # all of it); a token it does not match is refused without calling the authorizer.
  { authType = "AWS_LAMBDA", lambdaAuthorizerConfig = { authorizerUri = "appsync_emulator.cli:example_authorizer", authorizerResultTtlInSeconds = 0, identityValidationExpression = "^token-" } },
]
connectionAuthModes = [{ authType = "API_KEY" }, { authType = "AWS_IAM" }]
defaultPublishAuthModes = [{ authType = "API_KEY" }, { authType = "AWS_IAM" }]
defaultSubscribeAuthModes = [{ authType = "API_KEY" }, { authType = "AMAZON_COGNITO_USER_POOLS" }]

# APPSYNC_JS handlers (codeHandlers): the limits of one invocation, and how many run at once.
[jsRuntime]
invokeTimeoutSeconds = 1.0
memoryLimitMiB = 64
engines = 2

# Lambda data sources for DIRECT handlers.  lambdaFunctionArn names a local Python Lambda
# handler "module:function", called as handler(event, context) and imported at start-up.
[[dataSources]]
name = "example_lambda"
type = "AWS_LAMBDA"
description = "accepts every subscription"
lambdaConfig = { lambdaFunctionArn = "appsync_emulator.cli:example_lambda" }

[[namespaces]]
name = "default"
# Handlers may also be Python callables "module:function" taking an APPSYNC_JS-like ctx
# (a local extension), imported at start-up from the current folder.
# onPublish = "my_handlers:on_publish"
# onSubscribe = "my_handlers:on_subscribe"

[[namespaces]]
name = "chat"
publishAuthModes = [{ authType = "AMAZON_COGNITO_USER_POOLS" }, { authType = "AWS_LAMBDA" }]
subscribeAuthModes = [{ authType = "API_KEY" }, { authType = "OPENID_CONNECT" }]
# APPSYNC_JS code, as in ChannelNamespace.codeHandlers; or the code's file, relative to this
# file and reloaded when it changes:
# codeHandlersFile = "handlers/chat.js"
codeHandlers = '''
export function onPublish(ctx) {
  return ctx.events.filter((event) => event.payload.text !== "spam")
}
'''
handlerConfigs = { onPublish = { behavior = "CODE" }, onSubscribe = { behavior = "DIRECT", integration = { dataSourceName = "example_lambda", lambdaConfig = { invokeType = "REQUEST_RESPONSE" } } } }

[limits]
max_events_per_publish = 5
max_event_bytes = 245760              # 240 KB per event
max_request_bytes = 1228800           # 1.2 MB per publish request or frame
max_subscriptions_per_connection = 200
max_publish_per_second = 25           # per WebSocket connection; remove the key for no limit
max_connections = 10000
send_queue_frames = 10000             # frames queued for a slow client before it is closed (1008)
init_timeout = 300.0                  # seconds an upgraded socket may stay silent
header_timeout = 10.0                 # seconds a request's headers may take to arrive
body_timeout = 10.0                   # seconds a POST /event body may take to arrive (408)
max_sockets = 11000                   # open sockets of any kind before new ones get 429
"""  # noqa: E501 - TOML inline tables cannot span lines
"""A configuration file using every key of :class:`appsync_emulator.config_schema.ConfigFile`."""


def example_lambda(event: dict[str, Any], context: Any) -> dict[str, Any] | None:
    """The Lambda data source of :data:`EXAMPLE_CONFIG`: accepts subscriptions, forwards
    events."""
    if event["info"]["operation"] == "SUBSCRIBE":
        return None
    return {"events": event["events"]}


def example_authorizer(event: dict[str, Any]) -> dict[str, Any]:
    """The Lambda authorizer :data:`EXAMPLE_CONFIG` names: it allows every token.

    Only tokens that pass ``identityValidationExpression`` reach it; replace it with your
    own ``module:function``.
    """
    return {"isAuthorized": True, "handlerContext": {"authorizer": "example"}}


def build_parser() -> argparse.ArgumentParser:
    """The command line: serve options at the top level, plus subcommands."""
    parser = argparse.ArgumentParser(
        prog="appsync-emulator",
        description="Local emulator of the AWS AppSync Events API (HTTP publish + WebSocket).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; 0.0.0.0 exposes the emulator to your network)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"port to bind (default {DEFAULT_PORT}; 0 picks a free port; --demo defaults to 0)",
    )
    parser.add_argument(
        "--config", type=Path, metavar="PATH", help="a .toml or .json configuration file"
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve https:// and wss:// with a certificate from a throw-away local CA",
    )
    parser.add_argument(
        "--no-console",
        action="store_true",
        help="do not serve the web console at /console (served by default, same listener)",
    )
    parser.add_argument(
        "--ready-file",
        type=Path,
        metavar="PATH",
        help="write the endpoints and keys as JSON to PATH once listening",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log verbosity on stderr (debug shows every frame, secrets redacted)",
    )
    parser.add_argument(
        "--record",
        type=Path,
        metavar="FILE",
        help="save the traffic (connections, frames both ways, HTTP publishes, faults, "
        "timing) to FILE as JSON lines, secrets redacted; `replay FILE` plays it back",
    )
    parser.add_argument(
        "--record-max-bytes",
        type=int,
        default=None,
        metavar="N",
        help="stop recording (one warning) before FILE passes N bytes (default 100 MiB)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="start the emulator, run a short subscribe/publish demo against it, and exit "
        "(the server stops with the demo)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_subcommands(subparsers)
    parser.set_defaults(handler=_serve_command)
    return parser


def add_subcommands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the subcommands.  Extension point: each sets ``handler`` to ``f(args) -> int``."""
    example = subparsers.add_parser(
        "example-config", help="print an example configuration file using every key"
    )
    example.set_defaults(handler=_example_config_command)
    check = subparsers.add_parser(
        "check-config",
        help="validate a configuration file (and import its handlers) without starting",
    )
    check.add_argument("file", type=Path, metavar="FILE", help="a .toml or .json file")
    check.set_defaults(handler=_check_config_command)
    from .issuer import TOKEN_DESCRIPTION, add_token_arguments, token_command

    token = subparsers.add_parser(
        "token",
        help="print a JWT from the local issuer (Cognito/OIDC modes)",
        description=TOKEN_DESCRIPTION,
    )
    add_token_arguments(token)
    token.set_defaults(handler=token_command)
    from .replay_cli import add_replay_arguments, replay_command

    replay = subparsers.add_parser(
        "replay",
        help="play a recording (--record) back to a client, as the server of that session",
        description="Serve a recording made with --record: a client connecting gets the "
        "recorded server frames, reacting to its own frames in order, with the recorded "
        "timing divided by --speed.  Exits once every recorded connection and HTTP request "
        "has been played: 0 if the client did what the recording expects, 1 if not "
        "(each mismatch is printed), 2 for a bad file or option.",
    )
    add_replay_arguments(replay)
    replay.set_defaults(handler=replay_command)


def _example_config_command(args: argparse.Namespace) -> int:
    sys.stdout.write(EXAMPLE_CONFIG)
    return 0


def _check_config_command(args: argparse.Namespace) -> int:
    config = _load_config(args.file)
    if config is None:
        return 2
    print(
        f"{args.file.name}: OK (namespaces: {', '.join(ns.name for ns in config.namespaces)}; "
        f"auth providers: {', '.join(config.auth_providers)})"
    )
    return 0


def _load_config(path: Path | None) -> EmulatorConfig | None:
    """Load and check ``path`` (handlers imported); print the one-line error and return None."""
    from .config_schema import resolve_references

    _import_from_current_folder()
    try:
        config = EmulatorConfig.from_file(path) if path is not None else EmulatorConfig()
        resolve_references(config, source=path.name if path is not None else None)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return None
    return config


def _import_from_current_folder() -> None:
    """Put the current folder first on the import path, as ``python -m`` does.

    The ``appsync-emulator`` script starts with its own folder on ``sys.path`` instead, so
    ``my_auth:authorize`` next to the config file could not be imported.
    """
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    missing = missing_dependency()
    if missing is not None:
        print(
            f"appsync-emulator: the emulator needs {missing!r}, which is not installed: "
            f"{EMULATOR_EXTRA}",
            file=sys.stderr,
        )
        return 1
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


# --- serve -----------------------------------------------------------------------------------


def _serve_command(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    config = _load_config(args.config)
    if config is None:
        return 2
    if config.token_key_file is None:
        from .issuer import default_key_file

        # The key `appsync-emulator token` signs with (created only when first needed).
        config = config.replace(token_key_file=str(default_key_file()))
    port = args.port if args.port is not None else (0 if args.demo else DEFAULT_PORT)
    if not 0 <= port <= 65535:
        print(f"appsync-emulator: --port must be 0..65535, got {port}", file=sys.stderr)
        return 2
    from .recording_file import MIN_MAX_BYTES

    if args.record_max_bytes is not None and args.record_max_bytes < MIN_MAX_BYTES:
        print(
            f"appsync-emulator: --record-max-bytes must be at least {MIN_MAX_BYTES}, "
            f"got {args.record_max_bytes}",
            file=sys.stderr,
        )
        return 2
    if args.ready_file is not None and (problem := _unwritable(args.ready_file)) is not None:
        print(
            f"appsync-emulator: cannot write --ready-file {args.ready_file}: {problem}",
            file=sys.stderr,
        )
        return 2
    try:
        return asyncio.run(_serve(args, config, port))
    except KeyboardInterrupt:  # a second Ctrl+C during shutdown
        return 130


def _unwritable(path: Path) -> str | None:
    """Why the ready file cannot be written (checked before the server starts), or None."""
    folder = path.resolve().parent
    for parent in (folder, *folder.parents):
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is not a folder"
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".ready-", dir=folder)
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    Path(tmp).unlink(missing_ok=True)
    return None


def warn_if_exposed(host: str) -> bool:
    """Log a warning when ``host`` listens beyond loopback; return whether it does."""
    if host not in ("0.0.0.0", "::", ""):
        return False
    LOG_SERVER.warning(
        "binding %s: the emulator is reachable from other machines, and anyone who can "
        "reach it can use the API key printed below",
        host or "all interfaces",
    )
    return True


async def _serve(args: argparse.Namespace, config: EmulatorConfig, port: int) -> int:
    from .hosting import EmulatorServer
    from .recording_file import DEFAULT_MAX_BYTES, start_recording

    warn_if_exposed(args.host)
    server = EmulatorServer(
        config, host=args.host, port=port, tls=args.tls, console=not args.no_console
    )
    recording: RecordingFile | None = None
    if args.record is not None:
        try:
            recording = start_recording(
                server, args.record, max_bytes=args.record_max_bytes or DEFAULT_MAX_BYTES
            )
        except OSError as exc:
            print(
                f"appsync-emulator: cannot write --record {args.record}: {exc.strerror or exc}",
                file=sys.stderr,
            )
            return 2
    try:
        return await _serve_started(args, server, port)
    finally:
        if recording is not None:
            recording.close()  # already closed when the server stopped; idempotent


async def _serve_started(args: argparse.Namespace, server: EmulatorServer, port: int) -> int:
    try:
        await server.start()
    except OSError as exc:
        print(f"appsync-emulator: cannot listen on {args.host}:{port}: {exc}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(f"appsync-emulator: invalid configuration: {exc}", file=sys.stderr)
        return 2
    try:
        if args.ready_file is not None:
            try:
                write_ready_file(args.ready_file, ready_info(server))
            except OSError as exc:
                print(
                    f"appsync-emulator: cannot write --ready-file {args.ready_file}: "
                    f"{exc.strerror or exc}",
                    file=sys.stderr,
                )
                return 2
        _print_banner(server, demo=args.demo)
        if args.demo:
            return await run_demo(server)
        await _wait_for_signal()
        print("appsync-emulator: shutting down", flush=True)
        return 0
    finally:
        await server.stop()


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def ready_info(server: EmulatorServer) -> dict[str, Any]:
    """What the ready file and the banner announce."""
    info: dict[str, Any] = {
        "http_endpoint": server.http_endpoint,
        "realtime_endpoint": server.realtime_endpoint,
        "region": server.region,
        "api_key": server.api_key,
        "api_keys": [k.key for k in server.config.api_keys],
        "host": server.host,
        "port": server.port,
        "namespaces": [ns.name for ns in server.config.namespaces],
        "pid": os.getpid(),
    }
    if server.ca_cert_path is not None:
        info["ca_cert"] = server.ca_cert_path
    return info


def _print_banner(server: EmulatorServer, *, demo: bool = False) -> None:
    lines = [
        f"AppSync Events emulator {__version__}",
        f"  HTTP publish : {server.http_endpoint}",
        f"  Real-time    : {server.realtime_endpoint}",
        f"  Region       : {server.region}",
        f"  API key      : {server.api_key or '(none configured)'}",
        f"  Namespaces   : {', '.join(ns.name for ns in server.config.namespaces)}",
        f"  Auth modes   : {', '.join(server.config.auth_providers)}",
    ]
    if server.ca_cert_path is not None:
        lines.append(f"  CA cert      : {server.ca_cert_path}")
        lines.append(f"                 (Node: NODE_EXTRA_CA_CERTS={server.ca_cert_path})")
    lines.append("")
    if demo:
        # The demo server stops when the demo ends: invite nobody to a port about to close.
        lines.append("This server runs only for the demo below; `appsync-emulator` keeps one up.")
        print("\n".join(lines), flush=True)
        return
    lines.append("Try it:")
    lines.append(
        f"  curl -s {'--cacert ' + server.ca_cert_path + ' ' if server.ca_cert_path else ''}"
        f"-H 'x-api-key: {server.api_key}' -H 'content-type: application/json' "
        f'-d \'{{"channel":"default/hello","events":["{{\\"msg\\":\\"hi\\"}}"]}}\' '
        f"{server.http_endpoint}"
    )
    lines.append("Press Ctrl+C to stop.")
    print("\n".join(lines), flush=True)


# --- demo ------------------------------------------------------------------------------------


async def run_demo(server: EmulatorServer) -> int:
    """Subscribe, publish over WebSocket and HTTP, print what arrives; return 0 on success."""
    import appsync_events

    print(f"\n--- demo: subscribe to {DEMO_CHANNEL}, publish over WebSocket and HTTP ---")
    try:
        if hasattr(appsync_events, "connect"):
            await _demo_with_client(server)
        else:
            await _demo_with_raw_websocket(server)
    except Exception as exc:
        print(f"demo failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    server.check()
    print("--- demo finished ---", flush=True)
    return 0


async def _demo_with_client(server: EmulatorServer) -> None:
    import appsync_events
    from appsync_events import authorizer

    ssl_context = server.client_ssl_context() if server.tls else None
    auth = authorizer.ApiKey(api_key=server.api_key or "", endpoint=server.http_endpoint)
    async with asyncio.timeout(DEMO_TIMEOUT):
        async with appsync_events.connect(
            server.realtime_endpoint, authorizer=auth, ssl=ssl_context
        ) as client:
            print(f"connected to {server.realtime_endpoint} with the project's client")
            sub = await client.subscribe(DEMO_CHANNEL)
            print(f"subscribed to {DEMO_CHANNEL}")
            result = await client.publish(DEMO_CHANNEL, {"hello": "websocket"}, {"n": 2})
            print(f"published 2 events over WebSocket: {result}")
            for _ in range(2):
                message = await sub.next()
                print(f"received: {message.data}")
            http_result = await appsync_events.publish_http(
                server.http_endpoint,
                DEMO_CHANNEL,
                {"hello": "http"},
                authorizer=auth,
                ssl=ssl_context,
            )
            print(f"published 1 event over HTTP: {http_result}")
            message = await sub.next()
            print(f"received: {message.data}")
            await sub.close()
            print("unsubscribed")


async def _demo_with_raw_websocket(server: EmulatorServer) -> None:
    import aiohttp

    ssl_context = server.client_ssl_context() if server.tls else None
    host = server.http_endpoint.split("://", 1)[1].split("/", 1)[0]
    auth = {"host": host, "x-api-key": server.api_key or ""}
    subprotocols: Any = [PROTOCOL_EVENTS, encode_auth_subprotocol(auth)]

    async def show(ws: Any, until: str) -> dict[str, Any]:
        while True:
            frame = json.loads(await ws.receive_str())
            if frame.get("type") != "ka":
                print(f"  <- {json.dumps(frame)}")
            if frame.get("type") == until:
                return dict(frame)

    async def send(ws: Any, frame: dict[str, Any]) -> None:
        shown = {k: v for k, v in frame.items() if k != "authorization"}
        print(f"  -> {json.dumps(shown)}")
        await ws.send_str(json.dumps(frame))

    async with asyncio.timeout(DEMO_TIMEOUT), aiohttp.ClientSession() as ws_session:
        async with ws_session.ws_connect(
            server.realtime_endpoint,
            protocols=subprotocols,
            ssl=ssl_context if ssl_context is not None else True,
            autoping=True,
        ) as ws:
            print(f"connected to {server.realtime_endpoint} (subprotocol {ws.protocol})")
            await send(ws, {"type": "connection_init"})
            await show(ws, "connection_ack")
            await send(
                ws,
                {
                    "type": "subscribe",
                    "id": "demo-sub",
                    "channel": DEMO_CHANNEL,
                    "authorization": auth,
                },
            )
            await show(ws, "subscribe_success")
            events = [json.dumps({"hello": "websocket"}), json.dumps({"n": 2})]
            await send(
                ws,
                {
                    "type": "publish",
                    "id": "demo-pub",
                    "channel": DEMO_CHANNEL,
                    "events": events,
                    "authorization": auth,
                },
            )
            await show(ws, "publish_success")
            received = 0
            while received < 2:
                await show(ws, "data")
                received += 1
            body = {"channel": DEMO_CHANNEL, "events": [json.dumps({"hello": "http"})]}
            print(f"  POST {server.http_endpoint} {json.dumps(body)}")
            async with aiohttp.ClientSession() as session:
                async with session.post(
                    server.http_endpoint,
                    json=body,
                    headers={"x-api-key": server.api_key or ""},
                    ssl=ssl_context if ssl_context is not None else True,
                ) as response:
                    print(f"  HTTP {response.status} {await response.text()}")
                    response.raise_for_status()
            await show(ws, "data")
            await send(ws, {"type": "unsubscribe", "id": "demo-sub"})
            await show(ws, "unsubscribe_success")
