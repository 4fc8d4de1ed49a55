"""Recording the emulator's traffic to a JSON-lines file, secrets redacted.

``appsync-emulator --record FILE``, the ``appsync_record`` ini option of the pytest plugin
and :func:`start_recording` write what the emulator sees and sends, in order: WebSocket
connections (open, close with its code and who closed), every frame both ways as its text,
HTTP publishes with their answer, the faults installed, and the time of each (seconds since
the recording started, on a monotonic clock).  :mod:`appsync_emulator.replay` plays such a
file back to a client; the format is documented in ``docs/reference/recording-format.rst``.

Nothing of a credential reaches the file, whole or in part:

* client frames are parsed and every ``authorization`` object keeps only its public headers
  (``host``, ``x-amz-date``...), any other secret-named key (``x-api-key``,
  ``Authorization``, ``x-amz-security-token``, ``cookie``) loses its value; a client frame
  that is not JSON is recorded by its size only (it may hold a credential that cannot be
  found without parsing it);
* the ``header-`` subprotocol of an upgrade is decoded and recorded as the same redacted map;
  HTTP headers are recorded with the secret ones redacted;
* every text that is recorded, server frames and HTTP bodies included, is scrubbed of the
  configured API keys, IAM access key ids, secret keys and session tokens, of anything that
  looks like a JWT and of SigV4 ``Signature=`` values.

The file is written through a buffer (flushed when it fills, when a connection closes and
when the recording stops), so the event loop never waits on the disk for long.  It is
bounded: once ``max_bytes`` would be passed, one ``truncated`` record ends it and one
warning is logged; a write error likewise stops the recording with one warning, never the
server.
"""

from __future__ import annotations

import contextvars
import json
import logging
import math
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from aiohttp import web
from aiohttp.typedefs import Middleware

from appsync_events.errors import RemoteProtocolError
from appsync_events.protocol.subprotocol import decode_auth_subprotocol, find_auth_subprotocol

from ._clock import real_monotonic
from ._logging import (
    LOG_FAULTS,
    LOG_SERVER,
    REDACTED,
    redact_auth_map,
    redact_headers,
    redact_json,
)
from .records import ConnectionInfo, Direction

if TYPE_CHECKING:
    from .config import EmulatorConfig
    from .hosting import EmulatorHost
    from .recorder import Recorder

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FORMAT",
    "MIN_MAX_BYTES",
    "RECORD_FIELDS",
    "VERSION",
    "RecordingFile",
    "RecordingFormatError",
    "config_secrets",
    "format_line",
    "load_recording",
    "parse_header",
    "parse_line",
    "record_test",
    "recording_middleware",
    "redact_client_text",
    "scrub",
    "start_recording",
]

FORMAT: Final = "appsync-emulator-recording"
"""The ``format`` of a recording's header line."""
VERSION: Final = 1
"""The ``version`` of the format this module writes (and :mod:`.replay` reads)."""
DEFAULT_MAX_BYTES: Final = 100 * 1024 * 1024
"""The default size cap of a recording (100 MiB)."""
MIN_MAX_BYTES: Final = 4096
"""The smallest size cap accepted: room for the header and the ``truncated`` record."""
BUFFER_BYTES: Final = 64 * 1024
"""The write buffer: the file is written in chunks of about this size."""
_RESERVE: Final = 256
"""Bytes kept for the final ``truncated`` record."""

_JWT: Final = re.compile(r"eyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")
_SIGNATURE: Final = re.compile(r"Signature=[0-9A-Fa-f]+")
_MIN_SECRET: Final = 4
"""Configured secrets shorter than this are not searched for (they would match anywhere)."""

_UPGRADE_AUTH: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "appsync_emulator_upgrade_auth", default=None
)
"""The redacted authorization map of the upgrade being handled (set by the middleware)."""


# --- redaction ------------------------------------------------------------------------------


def config_secrets(config: EmulatorConfig) -> list[str]:
    """The credentials ``config`` holds: API keys, IAM key ids, secret keys, session tokens."""
    found = [k.key for k in config.api_keys]
    for cred in config.iam_credentials:
        found += [cred.access_key_id, cred.secret_access_key]
        if cred.session_token:
            found.append(cred.session_token)
    return found


def scrub(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` with the known ``secrets``, JWTs and SigV4 signatures replaced by a mark."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    if "eyJ" in text:
        text = _JWT.sub("<redacted-jwt>", text)
    if "Signature=" in text:
        text = _SIGNATURE.sub("Signature=" + REDACTED, text)
    return text


def redact_client_text(text: str) -> tuple[str | None, Any]:
    """A client frame or body made safe to record: ``(text, decoded JSON)``.

    The text is the original when it holds no secret-named key, else the redacted JSON
    (compact).  ``(None, None)`` when it is not JSON: it is then recorded by size only.
    """
    try:
        decoded = json.loads(text)
    except (ValueError, RecursionError):
        return None, None
    redacted = redact_json(decoded)
    if redacted == decoded:
        return text, decoded
    return json.dumps(redacted, separators=(",", ":"), ensure_ascii=False), redacted


def _upgrade_auth(request: web.BaseRequest) -> dict[str, str] | None:
    offered: list[str] = []
    for value in request.headers.getall("Sec-WebSocket-Protocol", ()):
        offered.extend(p.strip() for p in value.split(",") if p.strip())
    token = find_auth_subprotocol(offered)
    if token is None:
        return None
    try:
        return redact_auth_map(decode_auth_subprotocol(token))
    except RemoteProtocolError:
        return {"undecodable": REDACTED}


# --- the writer -----------------------------------------------------------------------------


class _FaultLog(logging.Handler):
    """Copies the ``appsync_emulator.faults`` log lines (what faults did) into the file."""

    def __init__(self, recording: RecordingFile) -> None:
        super().__init__(logging.INFO)
        self.recording = recording

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call is not the recording's business
            return
        self.recording.write({"record": "fault", "action": "act", "message": message})


class RecordingFile:
    """A recording being written: the recorder's listener (see the module docstring).

    Args:
        path: the file to write (created or truncated; its folder must exist).
        max_bytes: the size cap; the recording stops (one ``truncated`` record, one
            warning) before the file would pass it.  At least :data:`MIN_MAX_BYTES`.
        secrets: credentials to scrub from every recorded text besides the structural
            redaction (:func:`start_recording` passes the server's, from its config).

    Raises:
        ValueError: ``max_bytes`` is too small.
        OSError: the file cannot be created.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        secrets: Iterable[str] = (),
    ) -> None:
        if max_bytes < MIN_MAX_BYTES:
            raise ValueError(f"max_bytes must be at least {MIN_MAX_BYTES}, got {max_bytes}")
        self.path = Path(path)
        """The file written."""
        self.max_bytes = max_bytes
        """The size cap."""
        self._secrets = sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len)[::-1]
        self._lock = threading.Lock()
        self._file: TextIO | None = self.path.open("w", encoding="ascii", buffering=BUFFER_BYTES)
        self._start = real_monotonic()
        self._written = 0
        self._recorder: Recorder | None = None
        self._fault_log = _FaultLog(self)
        self.truncated = False
        """Whether the size cap (or a write error) stopped the recording."""
        header = {
            "format": FORMAT,
            "version": VERSION,
            "started_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "max_bytes": max_bytes,
        }
        self._append(json.dumps(header) + "\n")

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._file is None

    @property
    def bytes_written(self) -> int:
        """Bytes written so far (buffered ones included)."""
        return self._written

    # --- attaching --------------------------------------------------------------------------

    def attach(self, recorder: Recorder) -> None:
        """Become ``recorder``'s listener, and copy the fault log lines while recording.

        Raises:
            RuntimeError: the recorder already has a listener.
        """
        if recorder.listener is not None:
            raise RuntimeError("this emulator is already recording")
        recorder.listener = self
        self._recorder = recorder
        LOG_FAULTS.addHandler(self._fault_log)

    def close(self) -> None:
        """Write the ``end`` record, flush and close the file, detach.  Idempotent."""
        LOG_FAULTS.removeHandler(self._fault_log)
        if self._recorder is not None and self._recorder.listener is self:
            self._recorder.listener = None
        self._recorder = None
        if not self.truncated:
            self.write({"record": "end"})
        with self._lock:
            file, self._file = self._file, None
            if file is not None:
                try:
                    file.close()
                except OSError as exc:
                    LOG_SERVER.warning("recording %s: cannot write: %s", self.path, exc)

    # --- writing ----------------------------------------------------------------------------

    def write(self, record: dict[str, Any], *, ago: float = 0.0) -> None:
        """Append one record, its ``t`` now (less ``ago`` seconds); never raises."""
        when = max(0.0, round(self._now() - ago, 6))
        line = json.dumps({"record": record.pop("record"), "t": when, **record}) + "\n"
        self._append(line)

    def _now(self) -> float:
        return round(real_monotonic() - self._start, 6)

    def _append(self, line: str) -> None:
        with self._lock:
            file = self._file
            if file is None or self.truncated:
                return
            try:
                if self._written + len(line) > self.max_bytes - _RESERVE:
                    self._truncate(file)
                    return
                file.write(line)
                self._written += len(line)
            except OSError as exc:
                self.truncated = True
                LOG_SERVER.warning("recording %s stopped: cannot write: %s", self.path, exc)

    def _truncate(self, file: TextIO) -> None:
        # Called with the lock held.
        self.truncated = True
        end = {"record": "truncated", "t": self._now(), "limit": self.max_bytes}
        line = json.dumps(end) + "\n"
        file.write(line)
        self._written += len(line)
        file.flush()
        LOG_SERVER.warning(
            "recording %s stopped at its size cap of %d bytes", self.path, self.max_bytes
        )

    def flush(self) -> None:
        """Write the buffer to the file (a connection closed, or a test wants to read)."""
        with self._lock:
            if self._file is not None:
                try:
                    self._file.flush()
                except OSError as exc:
                    self.truncated = True
                    LOG_SERVER.warning("recording %s stopped: cannot write: %s", self.path, exc)

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    # --- the listener (RecordListener) --------------------------------------------------------

    def on_connection(self, info: ConnectionInfo) -> None:
        auth = _UPGRADE_AUTH.get()
        self.write(
            {
                "record": "open",
                "conn": info.id,
                "subprotocols": list(info.subprotocols),
                "auth": auth,
                "authorized": info.authorized,
                "auth_mode": str(info.auth_mode) if info.auth_mode is not None else None,
            }
        )

    def on_close(
        self, connection_id: str, code: int | None, reason: str | None, by_server: bool | None
    ) -> None:
        by = None if by_server is None else ("server" if by_server else "client")
        self.write(
            {
                "record": "close",
                "conn": connection_id,
                "code": code,
                "reason": self._scrub(reason or ""),
                "by": by,
            }
        )
        self.flush()

    def on_frame(
        self, connection_id: str, direction: Direction, data: str | bytes, frame_type: str | None
    ) -> None:
        if direction == "sent":
            self._sent_frame(connection_id, data, frame_type, None)
            return
        record: dict[str, Any] = {"record": "frame", "conn": connection_id, "dir": "in"}
        binary = not isinstance(data, str)
        size = len(data)
        text: str | None
        if isinstance(data, str):
            text = data
        else:
            try:
                text = bytes(data).decode("utf-8")
            except UnicodeDecodeError:
                text = None
        decoded: Any = None
        if text is not None:
            text, decoded = redact_client_text(text)
        frame_id = decoded.get("id") if isinstance(decoded, dict) else None
        record["type"] = frame_type
        record["id"] = frame_id if isinstance(frame_id, str) else None
        record["text"] = self._scrub(text) if text is not None else None
        if binary:
            record["binary"] = True
        if text is None:
            record["size"] = size
        self.write(record)

    def _sent_frame(
        self, connection_id: str, data: str | bytes, frame_type: str | None, frame_id: str | None
    ) -> None:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8", "replace")
        self.write(
            {
                "record": "frame",
                "conn": connection_id,
                "dir": "out",
                "type": frame_type,
                "id": frame_id,
                "text": self._scrub(text),
            }
        )

    def on_sent(
        self,
        connection_id: str,
        frames: Sequence[tuple[str | bytes | None, str | None, str | None, Any]],
    ) -> None:
        for text, frame_type, frame_id, _ in frames:
            if text is not None:
                self._sent_frame(connection_id, text, frame_type, frame_id)

    def on_http(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes | None,
        status: int,
        response: str | None,
        duration: float,
    ) -> None:
        body_text: str | None = None
        size: int | None = None
        if body is not None:
            try:
                body_text, _ = redact_client_text(body.decode("utf-8"))
            except UnicodeDecodeError:
                body_text = None
            if body_text is None:
                size = len(body)
        shown = {
            k: self._scrub(v) if isinstance(v, str) else v
            for k, v in redact_headers(headers).items()
        }
        record: dict[str, Any] = {
            "record": "http",
            "method": method,
            "path": path,
            "headers": shown,
            "body": self._scrub(body_text) if body_text is not None else None,
            "status": status,
            "response": self._scrub(response) if response is not None else None,
            "duration": round(duration, 6),
        }
        if size is not None:
            record["size"] = size
        self.write(record, ago=duration)  # ``t`` is when the request arrived

    def on_fault(self, action: str, fault: object, target: object) -> None:
        if target is not None and not isinstance(target, str | int):
            target = "<predicate>"
        self.write(
            {
                "record": "fault",
                "action": action,
                "fault": self._scrub(repr(fault)) if fault is not None else None,
                "target": target,
            }
        )


# --- wiring ----------------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_RECORDED_PATHS: Final = frozenset({"/event", "/event/realtime"})


def recording_middleware(recorder: Recorder) -> Middleware:
    """An aiohttp middleware reporting ``/event`` requests to ``recorder.listener``.

    It costs one check per request while nothing records.  For an upgrade it makes the
    redacted ``header-`` map available to the connection's ``open`` record, and reports a
    refused upgrade (an HTTP answer instead of a WebSocket) as an ``http`` record.
    """

    @web.middleware
    def middleware(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
        # Not a coroutine: while nothing records, the handler's own awaitable is returned,
        # so no frame of this middleware stays alive for as long as a WebSocket lasts (a
        # few hundred bytes per idle connection).
        if recorder.listener is None or request.path not in _RECORDED_PATHS:
            return handler(request)
        return recorded(request, handler)

    async def recorded(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.monotonic()
        token = None
        if request.path == "/event/realtime":
            token = _UPGRADE_AUTH.set(_upgrade_auth(request))
        try:
            response = await handler(request)
        finally:
            if token is not None:
                _UPGRADE_AUTH.reset(token)
        listener = recorder.listener  # a long WebSocket may outlive the recording
        if listener is not None and isinstance(response, web.Response):
            text = response.text if response.body is not None else None
            body: bytes | None = getattr(request, "_read_bytes", None)  # read by the handler
            listener.on_http(
                request.method,
                request.path,
                {k: v for k, v in request.headers.items()},
                body,
                response.status,
                text,
                time.monotonic() - started,
            )
        return response

    return middleware


def start_recording(
    server: EmulatorHost, path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> RecordingFile:
    """Record ``server``'s traffic to ``path`` until the server stops or ``close()``.

    Args:
        server: a running or not yet started emulator (either host).
        path: the file to write.
        max_bytes: the size cap (see :class:`RecordingFile`).

    Returns:
        The recording; the server closes it when it stops.

    Raises:
        RuntimeError: the server is already recording.
        ValueError: ``max_bytes`` is too small.
        OSError: the file cannot be created.
    """
    emulator = server.emulator
    recording = RecordingFile(path, max_bytes=max_bytes, secrets=config_secrets(server.config))
    try:
        recording.attach(emulator.recorder)
    except RuntimeError:
        recording.close()
        raise
    return recording


_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_.\-]+")


def record_test(server: EmulatorHost, pattern: str, nodeid: str, rootdir: Path) -> RecordingFile:
    """The ``appsync_record`` ini option: record one test's server to ``pattern``.

    ``{test}`` in the pattern is the test's node id made safe for a file name
    (``tests/test_chat.py::test_send[x]`` gives ``tests_test_chat.py_test_send_x_``); a
    relative path is relative to ``rootdir``; missing folders are created.  The recording
    ends when the server stops, or when the next test records the same (shared) server.

    Raises:
        ValueError: the pattern has no ``{test}`` (every test would overwrite one file).
    """
    if "{test}" not in pattern:
        raise ValueError(
            f"{pattern!r} must contain {{test}}, or every test would overwrite the same file"
        )
    name = _UNSAFE.sub("_", nodeid).strip("_") or "test"
    path = rootdir / pattern.replace("{test}", name)
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = server.emulator.recorder.listener
    if isinstance(previous, RecordingFile):
        previous.close()  # a server shared by several tests: the last test's file ends here
    return start_recording(server, path)


# --- reading --------------------------------------------------------------------------------


class RecordingFormatError(ValueError):
    """A recording file that cannot be read: ``FILE line N: problem``.

    Attributes:
        path: the file (or ``None`` for a line parsed alone).
        line: the 1-based line number (0: the file as a whole).
        problem: what is wrong.
    """

    def __init__(self, path: str | None, line: int, problem: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        where = f"{path} " if path else ""
        super().__init__(f"{where}line {line}: {problem}" if line else f"{where}{problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.line, self.problem), self.__dict__)


_STR: Final = (str,)
_OPT_STR: Final = (str, type(None))
_INT: Final = (int,)
_OPT_INT: Final = (int, type(None))
_NUM: Final = (int, float)
_BOOL: Final = (bool,)
_LIST: Final = (list,)
_OPT_DICT: Final = (dict, type(None))
_DICT: Final = (dict,)

RECORD_FIELDS: Final[Mapping[str, Mapping[str, tuple[type, ...]]]] = {
    "open": {
        "conn": _STR,
        "subprotocols": _LIST,
        "auth": _OPT_DICT,
        "authorized": _BOOL,
        "auth_mode": _OPT_STR,
    },
    "frame": {"conn": _STR, "dir": _STR, "type": _OPT_STR, "id": _OPT_STR, "text": _OPT_STR},
    "close": {"conn": _STR, "code": _OPT_INT, "reason": _STR, "by": _OPT_STR},
    "http": {
        "method": _STR,
        "path": _STR,
        "headers": _DICT,
        "body": _OPT_STR,
        "status": _INT,
        "response": _OPT_STR,
        "duration": _NUM,
    },
    "fault": {},
    "truncated": {"limit": _INT},
    "end": {},
}
"""The fields every record type must have, with their JSON types (besides ``record``, ``t``).

Other fields are allowed (optional ones such as ``binary``/``size``, or ones a later
version adds); readers ignore what they do not know.
"""

_CHOICES: Final[Mapping[tuple[str, str], frozenset[str | None]]] = {
    ("frame", "dir"): frozenset({"in", "out"}),
    ("close", "by"): frozenset({"server", "client", None}),
}


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def parse_header(text: str, path: str | None = None) -> dict[str, Any]:
    """Check a recording's first line; return it decoded.

    Raises:
        RecordingFormatError: not the header of a version this module reads.
    """
    try:
        header = json.loads(text)
    except (ValueError, RecursionError):
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise RecordingFormatError(
            path, 1, f'not a recording: the first line must be {{"format": "{FORMAT}", ...}}'
        )
    version = header.get("version")
    if version != VERSION:
        raise RecordingFormatError(
            path, 1, f"recording format version {version!r} is not supported (this reads {VERSION})"
        )
    return header


def parse_line(text: str, line: int = 0, path: str | None = None) -> dict[str, Any]:
    """Decode and check one record line (not the header).

    Raises:
        RecordingFormatError: not JSON, not an object, an unknown ``record`` type, a
            missing field or one of the wrong type.
    """
    try:
        record = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise RecordingFormatError(path, line, f"not JSON ({exc})") from None
    if not isinstance(record, dict):
        raise RecordingFormatError(
            path, line, f"a record must be an object, got {_type_name(record)}"
        )
    kind = record.get("record")
    fields = RECORD_FIELDS.get(kind) if isinstance(kind, str) else None
    if fields is None or not isinstance(kind, str):
        raise RecordingFormatError(path, line, f"unknown record type {kind!r}")
    t = record.get("t")
    if not isinstance(t, int | float) or isinstance(t, bool) or not 0 <= t < math.inf:
        raise RecordingFormatError(path, line, f"{kind}: 't' must be a number >= 0, got {t!r}")
    for name, types in fields.items():
        if name not in record:
            raise RecordingFormatError(path, line, f"{kind}: missing field {name!r}")
        value = record[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise RecordingFormatError(
                path,
                line,
                f"{kind}: {name!r} must be {' or '.join(_type_name_of(t) for t in types)}, "
                f"got {_type_name(value)}",
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise RecordingFormatError(path, line, f"{kind}: {name!r} must be finite")
        choices = _CHOICES.get((kind, name))
        if choices is not None and value not in choices:
            raise RecordingFormatError(
                path,
                line,
                f"{kind}: {name!r} must be one of {sorted(map(str, choices))}, got {value!r}",
            )
    return record


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _type_name_of(kind: type) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        list: "a list",
        dict: "an object",
        type(None): "null",
    }[kind]


def format_line(record: Mapping[str, Any]) -> str:
    """One record as its line (without the newline); :func:`parse_line` reads it back."""
    return json.dumps(record)


def load_recording(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Read a recording: ``(header, records)``, the records in time order.

    Records are stored in the order they were written; an ``http`` record is written when
    the answer leaves, with the ``t`` of the request's arrival, so the records are sorted
    (stably) by ``t`` here.

    Raises:
        RecordingFormatError: the file cannot be read, or a line is malformed (the first
            bad line is named).
    """
    name = str(path)
    try:
        with Path(path).open(encoding="utf-8") as handle:
            first = handle.readline()
            if not first:
                raise RecordingFormatError(name, 0, "the file is empty")
            header = parse_header(first, name)
            records = [
                parse_line(text, number, name)
                for number, text in enumerate(handle, 2)
                if text.strip()
            ]
    except OSError as exc:
        raise RecordingFormatError(name, 0, f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise RecordingFormatError(name, 0, f"not UTF-8 text ({exc.reason})") from None
    records.sort(key=lambda r: r["t"])
    return header, records
