"""Recording files: what is written, what never is (credentials), the size cap, the format."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, strategies as st
from websockets.asyncio.client import connect as ws_connect
from websockets.typing import Subprotocol

from appsync_emulator import EmulatorServer
from appsync_emulator.cli import main
from appsync_emulator.faults import DropKeepAlives
from appsync_emulator.recording_file import (
    FORMAT,
    MIN_MAX_BYTES,
    VERSION,
    RecordingFile,
    RecordingFormatError,
    format_line,
    load_recording,
    parse_line,
    record_test,
    start_recording,
)
from appsync_events import connect, publish_http
from appsync_events.authorizer import ApiKey
from appsync_events.protocol.subprotocol import PROTOCOL_EVENTS, encode_auth_subprotocol

from . import test_secrets_in_logs as matrix
from .conftest import WAIT, api_auth, fast_config

# --- what is recorded -------------------------------------------------------------------------


async def _session(server: EmulatorServer) -> None:
    auth = ApiKey(api_key=server.api_key or "", endpoint=server.http_endpoint)
    async with asyncio.timeout(WAIT * 5):
        async with connect(server.realtime_endpoint, authorizer=auth) as client:
            sub = await client.subscribe("default/a")
            await client.publish("default/a", {"n": 1})
            await sub.next()
            await publish_http(server.http_endpoint, "default/a", {"n": 2}, authorizer=auth)
            await sub.next()
            with server.inject(DropKeepAlives()):
                pass


@pytest.mark.asyncio
async def test_recording_holds_connections_frames_http_faults_and_times(tmp_path: Path) -> None:
    """Header first; open, frames both ways, http, fault, close with its code, end."""
    path = tmp_path / "rec.jsonl"
    async with EmulatorServer(fast_config()) as server:
        recording = start_recording(server, path)
        await _session(server)
    assert recording.closed
    header, records = load_recording(path)
    assert (header["format"], header["version"]) == (FORMAT, VERSION)
    kinds = [r["record"] for r in records]
    assert kinds[0] == "open"
    assert kinds[-1] == "end"
    assert {"frame", "http", "fault", "close"} <= set(kinds)
    frames = [(r["dir"], r["type"]) for r in records if r["record"] == "frame"]
    assert frames[:2] == [("in", "connection_init"), ("out", "connection_ack")]
    assert ("out", "data") in frames
    assert ("in", "unsubscribe") in frames
    close = next(r for r in records if r["record"] == "close")
    assert (close["code"], close["by"]) == (1000, "client")
    http = next(r for r in records if r["record"] == "http")
    assert (http["method"], http["path"], http["status"]) == ("POST", "/event", 200)
    assert json.loads(http["response"])["successful"]
    faults = [(r["action"], r.get("fault")) for r in records if r["record"] == "fault"]
    assert faults == [("inject", "DropKeepAlives()"), ("remove", None)]
    times = [r["t"] for r in records]
    assert times == sorted(times)


@pytest.mark.asyncio
async def test_recording_keeps_the_upgrade_map_redacted(tmp_path: Path) -> None:
    """The header- subprotocol is decoded: public headers kept, the key redacted."""
    path = tmp_path / "rec.jsonl"
    async with EmulatorServer(fast_config()) as server:
        start_recording(server, path)
        auth = api_auth(server)
        ws = await ws_connect(
            server.realtime_endpoint,
            subprotocols=[Subprotocol(PROTOCOL_EVENTS), Subprotocol(encode_auth_subprotocol(auth))],
            proxy=None,
        )
        await ws.send(json.dumps({"type": "connection_init"}))
        await ws.send("not json " + (server.api_key or ""))
        await ws.send(b'{"type":"ka"}')
        await ws.close()
        await server.wait_for(lambda r: not r.open_connections or None)
    _, records = load_recording(path)
    opened = next(r for r in records if r["record"] == "open")
    assert opened["auth"] == {"host": auth["host"], "x-api-key": "<redacted>"}
    assert opened["subprotocols"] == [PROTOCOL_EVENTS, "header-<redacted>"]
    inbound = [r for r in records if r["record"] == "frame" and r["dir"] == "in"]
    assert inbound[1]["text"] is None
    assert inbound[1]["size"] == len("not json ") + len(server.api_key or "")
    assert inbound[2]["binary"] is True


# --- credentials --------------------------------------------------------------------------


def _windows(values: set[str]) -> set[str]:
    out = set()
    for value in values:
        if len(value) < matrix.WINDOW:
            out.add(value)
        out |= {value[i : i + matrix.WINDOW] for i in range(len(value) - matrix.WINDOW + 1)}
    return out


@pytest.mark.asyncio
async def test_recording_holds_no_credential_whole_or_in_part(tmp_path: Path) -> None:
    """The log-redaction matrix (every auth mode, WebSocket and HTTP, valid and forged,
    hostile frames) recorded: no 8-character window of any credential is in the file."""
    path = tmp_path / "rec.jsonl"
    used = matrix.Secrets()
    async with EmulatorServer(matrix.CONFIG) as server:
        start_recording(server, path)
        await matrix._websocket_matrix(server, used)
        await matrix._http_matrix(server, used)
        await matrix._client_matrix(server, used)
    text = path.read_text(encoding="utf-8")
    kinds = {json.loads(line).get("record") for line in text.splitlines()[1:]}
    assert {"open", "frame", "http", "close"} <= kinds
    assert re.search(r"eyJ[\w-]+\.[\w-]+\.", text) is None  # no JWT
    assert re.search(r"Signature=[0-9a-f]{8}", text) is None  # no SigV4 signature
    assert "header-ey" not in text  # no header- subprotocol payload
    leaks = sorted(w for w in _windows(used.values) if w in text)
    assert not leaks, leaks[:10]


# --- the size cap -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_recording_stops_at_its_size_cap_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The file never passes the cap; one warning; the server keeps serving."""
    path = tmp_path / "rec.jsonl"
    caplog.set_level(logging.WARNING, logger="appsync_emulator")
    async with EmulatorServer(fast_config()) as server:
        start_recording(server, path, max_bytes=MIN_MAX_BYTES)
        auth = ApiKey(api_key=server.api_key or "", endpoint=server.http_endpoint)
        async with connect(server.realtime_endpoint, authorizer=auth) as client:
            for n in range(40):
                await client.publish("default/a", {"n": n, "padding": "x" * 100})
        await server.wait_published("default/a", count=40)
    assert path.stat().st_size <= MIN_MAX_BYTES
    lines = path.read_text().splitlines()
    assert json.loads(lines[-1])["record"] == "truncated"
    warnings = [r for r in caplog.records if "size cap" in r.getMessage()]
    assert len(warnings) == 1


def test_recording_refuses_a_tiny_cap(tmp_path: Path) -> None:
    """A cap below MIN_MAX_BYTES is refused before anything is written."""
    with pytest.raises(ValueError, match="at least"):
        RecordingFile(tmp_path / "x.jsonl", max_bytes=100)


def test_recording_pattern_needs_the_test_placeholder(tmp_path: Path) -> None:
    """appsync_record without {test} would overwrite one file: refused."""
    with pytest.raises(ValueError, match="must contain"):
        record_test(None, "same.jsonl", "t.py::test", tmp_path)  # type: ignore[arg-type]


# --- the format -------------------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8"), max_size=30)
_opt_text = st.none() | _text
_t = st.floats(min_value=0, max_value=1e6, allow_nan=False)

RECORDS = st.one_of(
    st.fixed_dictionaries(
        {
            "record": st.just("open"),
            "t": _t,
            "conn": _text,
            "subprotocols": st.lists(_text, max_size=3),
            "auth": st.none() | st.dictionaries(_text, _text, max_size=3),
            "authorized": st.booleans(),
            "auth_mode": _opt_text,
        }
    ),
    st.fixed_dictionaries(
        {
            "record": st.just("frame"),
            "t": _t,
            "conn": _text,
            "dir": st.sampled_from(["in", "out"]),
            "type": _opt_text,
            "id": _opt_text,
            "text": _opt_text,
        },
        optional={"binary": st.booleans(), "size": st.integers(0, 2**40)},
    ),
    st.fixed_dictionaries(
        {
            "record": st.just("close"),
            "t": _t,
            "conn": _text,
            "code": st.none() | st.integers(1000, 4999),
            "reason": _text,
            "by": st.sampled_from(["server", "client", None]),
        }
    ),
    st.fixed_dictionaries(
        {
            "record": st.just("http"),
            "t": _t,
            "method": _text,
            "path": _text,
            "headers": st.dictionaries(_text, _text, max_size=3),
            "body": _opt_text,
            "status": st.integers(100, 599),
            "response": _opt_text,
            "duration": _t,
        }
    ),
    st.fixed_dictionaries(
        {"record": st.just("fault"), "t": _t},
        optional={"action": _text, "fault": _opt_text, "message": _text},
    ),
    st.fixed_dictionaries(
        {"record": st.just("truncated"), "t": _t, "limit": st.integers(MIN_MAX_BYTES, 2**40)}
    ),
    st.fixed_dictionaries({"record": st.just("end"), "t": _t}),
)


@given(RECORDS)
def test_format_line_round_trips(record: dict[str, Any]) -> None:
    """parse_line(format_line(r)) == r for every record type."""
    line = format_line(record)
    assert "\n" not in line
    assert parse_line(line, 2) == record


@given(st.text(max_size=200) | st.builds(json.dumps, st.dictionaries(_text, _text | _t)))
def test_parse_line_raises_only_its_own_error(text: str) -> None:
    """Arbitrary text either parses or raises RecordingFormatError with a line number."""
    try:
        parse_line(text, 7, "f.jsonl")
    except RecordingFormatError as exc:
        message = str(exc)
    else:
        return
    assert message.startswith("f.jsonl line 7: ")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"record": "frame", "t": 1}', "frame: missing field 'conn'"),
        ('{"record": "nope", "t": 1}', "unknown record type 'nope'"),
        ('{"record": "end", "t": -1}', "'t' must be a number >= 0"),
        ('{"record": "end", "t": NaN}', "not JSON"),
        ('{"record": "end", "t": 1e400}', "'t' must be a number >= 0"),
        ('{"record": "truncated", "t": 1, "limit": 1.5}', "'limit' must be an integer"),
        (
            '{"record": "http", "t": 1, "method": "POST", "path": "/event", "headers": {}, '
            '"body": null, "status": 200, "response": null, "duration": 1e400}',
            "http: 'duration' must be finite",
        ),
        (
            '{"record": "frame", "t": 1, "conn": "c1", "dir": "up", "type": null, "id": null, '
            '"text": null}',
            "frame: 'dir' must be one of ['in', 'out'], got 'up'",
        ),
        (
            '{"record": "close", "t": 1, "conn": "c1", "code": true, "reason": "", "by": null}',
            "'code' must be an integer or null, got bool",
        ),
        ("[1]", "a record must be an object, got list"),
    ],
)
def test_parse_line_names_the_problem(line: str, problem: str) -> None:
    """Each malformed record gets a specific one-line message."""
    with pytest.raises(RecordingFormatError, match=re.escape(problem)):
        parse_line(line, 3)


# --- the command line -------------------------------------------------------------------------

HEADER = json.dumps({"format": FORMAT, "version": VERSION})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ("hello\n", "line 1: not a recording"),
        (
            json.dumps({"format": FORMAT, "version": 99}) + "\n",
            "line 1: recording format version 99",
        ),
        (HEADER + "\n{oops\n", "line 2: not JSON"),
        (HEADER + '\n{"record": "end"}\n', "line 2: end: 't' must be a number"),
        (b"\xff\xfe".decode("latin-1"), "not UTF-8"),
    ],
)
def test_replay_command_bad_file_is_one_line_and_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    """A bad recording: exit status 2 and one line naming the file, line and problem."""
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content.encode("latin-1"))
    assert main(["replay", str(path), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err
    assert str(path) in err


def test_replay_command_refuses_bad_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing file, a bad speed or port: status 2, one line each."""
    assert main(["replay", str(tmp_path / "missing.jsonl"), "--port", "0"]) == 2
    path = tmp_path / "ok.jsonl"
    path.write_text(HEADER + "\n")
    assert main(["replay", str(path), "--speed", "0", "--port", "0"]) == 2
    assert main(["replay", str(path), "--port", "70000"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3
    assert "cannot read" in lines[0]
    assert "speed must be a positive number" in lines[1]
    assert "--port must be 0..65535" in lines[2]


def test_record_option_refuses_an_unwritable_file_or_a_tiny_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--record to a missing folder and --record-max-bytes 10: status 2, one line each."""
    missing = tmp_path / "no" / "such" / "folder" / "rec.jsonl"
    assert main(["--port", "0", "--record", str(missing)]) == 2
    assert main(["--port", "0", "--record", "x.jsonl", "--record-max-bytes", "10"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert "cannot write --record" in lines[0]
    assert f"--record-max-bytes must be at least {MIN_MAX_BYTES}" in lines[1]


def _wait_for(predicate: Any, process: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 30
    while not predicate():
        assert process.poll() is None, f"the process ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within 30 s"
        time.sleep(0.05)


async def _cli_session(realtime: str, http: str, api_key: str) -> list[Any]:
    auth = ApiKey(api_key=api_key, endpoint=http)
    async with asyncio.timeout(WAIT * 5):
        async with connect(realtime, authorizer=auth) as client:
            sub = await client.subscribe("default/cli")
            await client.publish("default/cli", {"n": 1})
            return [(await sub.next()).data]


def test_cli_records_then_replays_a_session(tmp_path: Path) -> None:
    """``--record FILE`` then ``replay FILE``: the same events, exit status 0."""
    recording = tmp_path / "session.jsonl"
    ready = tmp_path / "ready.json"
    command = [sys.executable, "-m", "appsync_emulator", "--port", "0", "--no-console"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    server = subprocess.Popen(
        [*command, "--ready-file", str(ready), "--record", str(recording)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        _wait_for(ready.exists, server, "ready file")
        info = json.loads(ready.read_text())
        recorded = asyncio.run(
            _cli_session(info["realtime_endpoint"], info["http_endpoint"], info["api_key"])
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
    assert server.returncode == 0
    _, records = load_recording(recording)
    assert records[-1]["record"] == "end"
    replay_ready = tmp_path / "replay-ready.json"
    options = ["--port", "0", "--speed", "2", "--ready-file", str(replay_ready)]
    replay = subprocess.Popen(
        [sys.executable, "-m", "appsync_emulator", "replay", str(recording), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        _wait_for(replay_ready.exists, replay, "replay ready file")
        info = json.loads(replay_ready.read_text())
        replayed = asyncio.run(
            _cli_session(info["realtime_endpoint"], info["http_endpoint"], info["api_key"])
        )
        out, err = replay.communicate(timeout=30)
    finally:
        if replay.poll() is None:
            replay.kill()
            replay.communicate()
    assert replay.returncode == 0, err
    assert replayed == recorded
    assert "replayed 1 of 1 connection(s)" in out


# --- the pytest plugin ------------------------------------------------------------------------

RECORDED_TEST = """
import pytest

@pytest.mark.asyncio
async def test_room(appsync_server, appsync_client):
    sub = await appsync_client.subscribe("default/room")
    await appsync_client.publish("default/room", {"n": 1})
    assert (await sub.next()).json() == {"n": 1}
"""


def test_appsync_record_ini_option_records_each_test(pytester: pytest.Pytester) -> None:
    """``appsync_record = recordings/{test}.jsonl`` writes one replayable file per test."""
    pytester.makeini(
        "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
        "appsync_record = recordings/{test}.jsonl\n"
    )
    pytester.makepyfile(test_user=RECORDED_TEST)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    path = pytester.path / "recordings" / "test_user.py_test_room.jsonl"
    _, records = load_recording(path)
    frames = [r["type"] for r in records if r["record"] == "frame" and r["dir"] == "out"]
    assert "data" in frames
    assert records[-1]["record"] == "end"


def test_appsync_record_without_the_placeholder_fails_in_one_line(
    pytester: pytest.Pytester,
) -> None:
    """A pattern without {test} fails the test with one line naming the option."""
    pytester.makeini("[pytest]\nappsync_record = same.jsonl\n")
    pytester.makepyfile(test_user="def test_one(appsync_server):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*appsync_record: 'same.jsonl' must contain {test}*"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.asyncio
async def test_record_test_on_a_shared_server_starts_one_file_per_test(tmp_path: Path) -> None:
    """A server shared by two tests: the second test's recording ends the first's."""
    async with EmulatorServer(fast_config()) as server:
        first = record_test(server, "rec/{test}.jsonl", "t.py::test_one", tmp_path)
        await _session(server)
        second = record_test(server, "rec/{test}.jsonl", "t.py::test_two", tmp_path)
        assert first.closed
        assert not second.closed
    assert second.closed
    for name in ("t.py_test_one.jsonl", "t.py_test_two.jsonl"):
        _, records = load_recording(tmp_path / "rec" / name)
        assert records[-1]["record"] == "end"
