"""The web console's endpoints: page, feed, publish, faults, access rules (real loopback)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

import appsync_emulator.console as console_module
from appsync_emulator import EmulatorServer
from appsync_emulator.cli import build_parser
from appsync_emulator.console import CLIENT_QUEUE, is_loopback
from appsync_emulator.faults import DropKeepAlives, RejectPublish, Stall
from appsync_emulator.testing import api_key_authorizer
from appsync_events import Client, connect
from tests.conftest import MS
from tests.emulator.conftest import fast_config

WAIT = 5000 * MS
JSON = {"content-type": "application/json"}


@pytest_asyncio.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(fast_config()) as server:
        yield server


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def base(server: EmulatorServer) -> str:
    url = server.console_url
    assert url is not None
    return url


async def client_for(server: EmulatorServer) -> Client:
    return await connect(
        server.realtime_endpoint,
        authorizer=api_key_authorizer(server),
        handshake_timeout=WAIT,
        operation_timeout=WAIT,
        close_timeout=WAIT,
    )


class Feed:
    """A console page's feed socket, read message by message."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []

    async def next(self) -> dict[str, Any]:
        async with asyncio.timeout(WAIT):
            msg = await self.ws.receive()
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        data: dict[str, Any] = json.loads(msg.data)
        self.seen.append(data)
        return data

    async def until(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first message (from now) that satisfies ``predicate``."""
        while True:
            message = await self.next()
            if predicate(message):
                return message


@pytest_asyncio.fixture
async def feed(server: EmulatorServer, http: aiohttp.ClientSession) -> AsyncIterator[Feed]:
    async with http.ws_connect(base(server) + "/events") as ws:
        page = Feed(ws)
        hello = await page.next()
        assert hello["type"] == "hello"
        assert (await page.next())["type"] == "state"
        assert (await page.next())["type"] == "log"
        yield page


def has_connection(conn_id: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    def check(message: dict[str, Any]) -> bool:
        if message["type"] != "state":
            return False
        for conn in message["connections"]:
            if conn["id"] == conn_id and all(conn.get(k) == v for k, v in fields.items()):
                return True
        return False

    return check


def log_entry(**fields: Any) -> Callable[[dict[str, Any]], bool]:
    def check(message: dict[str, Any]) -> bool:
        return message["type"] == "log" and any(
            all(e.get(k) == v for k, v in fields.items()) for e in message["entries"]
        )

    return check


# --- the page and its files ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_page_and_static_files_are_served_with_strict_headers(
    server: EmulatorServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(base(server)) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        assert "console.js" in await resp.text()
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    for name, kind in [("console.js", "text/javascript"), ("console.css", "text/css")]:
        async with http.get(f"{base(server)}/static/{name}") as resp:
            assert resp.status == 200
            assert resp.content_type == kind
    for path in ["/static/../server.py", "/static/index.py", "/nope"]:
        async with http.get(base(server) + path) as resp:
            assert resp.status == 404
            assert "error" in await resp.json()
    async with http.post(base(server), data="x") as resp:
        assert resp.status == 405


@pytest.mark.asyncio
async def test_console_traffic_is_never_recorded(
    server: EmulatorServer, http: aiohttp.ClientSession, feed: Feed
) -> None:
    """Page, files, feed, bad requests and fault calls leave the recorder untouched."""
    for path in ["", "/", "/static/console.js", "/static/nope", "/api/faults", "/x/y"]:
        async with http.get(base(server) + path):
            pass
    async with http.post(f"{base(server)}/api/publish", data="{", headers=JSON) as resp:
        assert resp.status == 400
    async with http.post(f"{base(server)}/api/faults", json={"action": "clear"}) as resp:
        assert resp.status == 200
    await feed.ws.send_str('{"type": "watch", "pattern": "/default/*"}')
    assert (await feed.until(lambda m: m["type"] == "watching"))["pattern"] == "/default/*"
    recorder = server.recorder
    assert recorder.connections == []
    assert recorder.errors == []
    assert recorder.received == []
    assert recorder.sent == []
    assert recorder.published == []


# --- the feed ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_feed_shows_connections_subscriptions_and_publishes(
    server: EmulatorServer, feed: Feed
) -> None:
    client = await client_for(server)
    try:
        state = await feed.until(has_connection("c1", open=True, auth_mode="API_KEY"))
        conn = next(c for c in state["connections"] if c["id"] == "c1")
        assert conn["opened_at"] > 0
        assert conn["identity"] == "API key #1"
        async with await client.subscribe("/default/room/*"):
            state = await feed.until(
                lambda m: m["type"] == "state" and m["subscription_count"] == 1
            )
            assert state["channels"][0]["pattern"] == "/default/room/*"
            assert state["connections"][0]["subscriptions"][0]["pattern"] == "/default/room/*"
            await client.publish("/default/room/a", {"n": 1})
            message = await feed.until(log_entry(kind="publish", channel="/default/room/a"))
            entry = message["entries"][-1]
            assert entry["events"] == ['{"n":1}']
            assert entry["publisher"] == "c1"
            assert entry["transport"] == "websocket"
            assert entry["accepted"] == 1
            assert entry["deliveries"] == 1
    finally:
        await client.close()
    await feed.until(has_connection("c1", open=False))
    key = server.api_key
    assert key is not None
    assert key[4:12] not in json.dumps(feed.seen)  # no part of a credential reaches the page


@pytest.mark.asyncio
async def test_error_answers_appear_in_the_log(
    server: EmulatorServer, http: aiohttp.ClientSession, feed: Feed
) -> None:
    async with http.post(server.http_endpoint, data="not json") as resp:
        assert resp.status == 400
    message = await feed.until(log_entry(kind="error", status=400))
    assert message["entries"][-1]["errors"][0]["errorType"] == "BadRequestException"


@pytest.mark.asyncio
async def test_watch_pattern_receives_what_a_subscriber_would(
    server: EmulatorServer, http: aiohttp.ClientSession, feed: Feed
) -> None:
    await feed.ws.send_str(json.dumps({"type": "watch", "pattern": "/default/news/*"}))
    assert (await feed.until(lambda m: m["type"] == "watching"))["pattern"] == "/default/news/*"
    for channel in ["/default/other", "/default/news/today"]:
        body = {"channel": channel, "events": ['{"headline": 1}'], "auth_mode": "API_KEY"}
        async with http.post(f"{base(server)}/api/publish", json=body) as resp:
            assert resp.status == 200
            answer = await resp.json()
            assert answer["status"] == 200
            assert len(answer["answer"]["successful"]) == 1
    data = await feed.until(lambda m: m["type"] == "data")
    assert data["channel"] == "/default/news/today"
    assert data["events"] == ['{"headline": 1}']
    assert not any(m["type"] == "data" and m["channel"] == "/default/other" for m in feed.seen)


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("not json", "must be JSON"),
        ('{"type": "subscribe"}', "the only message"),
        ('{"type": "watch", "pattern": 5}', "channel pattern"),
        ('{"type": "watch", "pattern": "/default/a*b"}', "pattern:"),
        ('{"type": "watch", "pattern": "/nope/*"}', "no namespace"),
    ],
)
@pytest.mark.asyncio
async def test_bad_page_messages_get_an_error_message(feed: Feed, message: str, error: str) -> None:
    await feed.ws.send_str(message)
    answer = await feed.until(lambda m: m["type"] == "error")
    assert error in answer["message"]


@pytest.mark.asyncio
async def test_a_page_that_falls_behind_is_dropped(server: EmulatorServer, feed: Feed) -> None:
    """Overflowing a page's bounded queue closes it with 1008; the emulator goes on."""
    console = server.emulator.console
    for _ in range(CLIENT_QUEUE + 1):  # no await: the writer cannot drain in between
        console._broadcast('{"type": "noise"}')
    async with asyncio.timeout(WAIT):
        while True:
            msg = await feed.ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
    assert feed.ws.close_code == 1008
    client = await client_for(server)  # the emulator is unaffected
    await client.close()


@pytest.mark.asyncio
async def test_page_limit(
    server: EmulatorServer, http: aiohttp.ClientSession, feed: Feed, monkeypatch: Any
) -> None:
    monkeypatch.setattr(console_module, "MAX_CLIENTS", 1)
    async with http.get(base(server) + "/events") as resp:
        assert resp.status == 503


@pytest.mark.asyncio
async def test_shutdown_closes_pages(http: aiohttp.ClientSession) -> None:
    server = EmulatorServer(fast_config())
    await server.start()
    async with http.ws_connect(base(server) + "/events") as ws:
        assert (await ws.receive()).type == aiohttp.WSMsgType.TEXT
        async with asyncio.timeout(WAIT), asyncio.TaskGroup() as tasks:
            tasks.create_task(server.stop())
            while (await ws.receive()).type == aiohttp.WSMsgType.TEXT:
                pass  # the client answers the close frame as it reads it
        assert ws.close_code == 1001


# --- publish -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_publish_from_the_console_is_a_real_publish(
    server: EmulatorServer, http: aiohttp.ClientSession, feed: Feed
) -> None:
    client = await client_for(server)
    try:
        async with await client.subscribe("/default/*") as sub:
            body = {"channel": "/default/chat", "events": ['{"a": 1}', '"two"']}
            async with http.post(f"{base(server)}/api/publish", json=body) as resp:
                assert (await resp.json())["status"] == 200
            assert (await sub.next()).json() == {"a": 1}
            assert (await sub.next()).json() == "two"
    finally:
        await client.close()
    message = await feed.until(log_entry(kind="publish", publisher="console"))
    assert message["entries"][-1]["transport"] == "http"
    assert server.recorder.published[-1].auth_mode == "API_KEY"


@pytest.mark.asyncio
async def test_a_refused_publish_is_an_error_answer(
    server: EmulatorServer, http: aiohttp.ClientSession, feed: Feed
) -> None:
    with server.inject(RejectPublish()):
        body = {"channel": "/default/chat", "events": ["1"]}
        async with http.post(f"{base(server)}/api/publish", json=body) as resp:
            answer = await resp.json()
    assert answer["status"] == 401
    assert answer["answer"]["errors"][0]["errorType"] == "UnauthorizedException"
    await feed.until(log_entry(kind="error", status=401))


@pytest.mark.asyncio
async def test_publish_with_iam_signs_with_the_configured_credentials(
    http: aiohttp.ClientSession,
) -> None:
    config = fast_config(
        auth_providers=("API_KEY", "AWS_IAM"), default_publish_auth_modes=("AWS_IAM",)
    )
    async with EmulatorServer(config) as server:
        body = {"channel": "/default/chat", "events": ["1"], "auth_mode": "AWS_IAM"}
        async with http.post(f"{base(server)}/api/publish", json=body) as resp:
            answer = await resp.json()
        assert answer["status"] == 200, answer
        assert server.recorder.published[-1].auth_mode == "AWS_IAM"
        body["auth_mode"] = "API_KEY"  # configured, but not allowed to publish here
        async with http.post(f"{base(server)}/api/publish", json=body) as resp:
            assert (await resp.json())["status"] == 401


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ([], "JSON object"),
        ({"channel": "/default/a", "events": ["1"], "extra": 1}, "unknown field"),
        ({"events": ["1"]}, "channel must be"),
        ({"channel": 7, "events": ["1"]}, "channel must be"),
        ({"channel": "/default/a" * 200, "events": ["1"]}, "channel must be"),
        ({"channel": "/default/a"}, "events must be a list of 1 to 5"),
        ({"channel": "/default/a", "events": []}, "events must be a list of 1 to 5"),
        ({"channel": "/default/a", "events": ["1"] * 6}, "events must be a list of 1 to 5"),
        ({"channel": "/default/a", "events": [1]}, "JSON text"),
        ({"channel": "/default/a", "events": ["{nope"]}, "BadRequestException"),
        ({"channel": "/default/*", "events": ["1"]}, "BadRequestException"),
        ({"channel": "/nope/a", "events": ["1"]}, "Exception"),
        ({"channel": "/default/a", "events": ["1"], "auth_mode": "AWS_IAM"}, "configured modes"),
        ({"channel": "/default/a", "events": ["1"], "auth_mode": "ROOT"}, "configured modes"),
        ({"channel": "/default/a", "events": ["1"], "auth_mode": 3}, "configured modes"),
        ({"channel": "/default/a", "events": ["1"], "token": "a\nb"}, "token must be"),
        ({"channel": "/default/a", "events": ["1"], "token": "x" * 9000}, "token must be"),
    ],
)
@pytest.mark.asyncio
async def test_publish_input_is_validated(
    server: EmulatorServer, http: aiohttp.ClientSession, body: Any, error: str
) -> None:
    async with http.post(f"{base(server)}/api/publish", json=body) as resp:
        assert resp.status == 400
        assert error in (await resp.json())["error"]
    assert server.recorder.published == []
    assert server.recorder.errors == []


@pytest.mark.asyncio
async def test_publish_body_limits(server: EmulatorServer, http: aiohttp.ClientSession) -> None:
    url = f"{base(server)}/api/publish"
    async with http.post(url, data=b"\xff\xfe", headers=JSON) as resp:
        assert "not valid JSON" in (await resp.json())["error"]
    async with http.post(url, data=b"[" * 70_000, headers=JSON) as resp:
        assert resp.status == 400
        assert "larger than" in (await resp.json())["error"]
    async with http.post(url, data='{"channel": "/default/a", "events": ["1"]}') as resp:
        assert resp.status == 415

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"channel": "/default/a", '
        yield b'"events": ["1"]}'

    async with http.post(url, data=chunks(), headers=JSON) as resp:  # no content-length
        assert (await resp.json())["status"] == 200

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b" " * 1024

    async with http.post(url, data=endless(), headers=JSON) as resp:
        assert resp.status == 400
        assert "larger than" in (await resp.json())["error"]
    async with http.get(url) as resp:
        assert resp.status == 405


# --- faults --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_inject_and_remove_standing_faults(
    server: EmulatorServer, http: aiohttp.ClientSession, feed: Feed
) -> None:
    url = f"{base(server)}/api/faults"
    client = await client_for(server)
    try:
        await feed.until(has_connection("c1", open=True))
        async with http.post(url, json={"action": "add", "kind": "drop_keepalives"}) as resp:
            answer = await resp.json()
        assert answer["faults"] == [{"key": 1, "fault": "DropKeepAlives()", "target": "all"}]
        await feed.until(lambda m: m["type"] == "state" and len(m["faults"]) == 1)
        body: dict[str, Any] = {"action": "add", "kind": "stall", "target": "c1"}
        async with http.post(url, json=body) as resp:
            assert (await resp.json())["faults"][1]["target"] == "c1"
        body = {"action": "add", "kind": "delay_acks", "seconds": 1.5}
        async with http.post(url, json=body) as resp:
            assert "DelayAck(seconds=1.5)" in (await resp.json())["message"]
        assert [type(f).__name__ for _, f, _ in server.emulator.plan.faults()] == [
            "DropKeepAlives",
            "Stall",
            "DelayAck",
        ]
        async with http.post(url, json={"action": "remove", "key": 2}) as resp:
            assert len((await resp.json())["faults"]) == 2
        async with http.post(url, json={"action": "clear"}) as resp:
            assert (await resp.json())["faults"] == []
        async with http.get(url) as resp:
            assert (await resp.json())["faults"] == []
    finally:
        await client.close()


@pytest.mark.asyncio
async def test_faults_injected_elsewhere_are_listed_and_removable(
    server: EmulatorServer, http: aiohttp.ClientSession
) -> None:
    handle = server.inject(DropKeepAlives(), connection="c9")
    async with http.get(f"{base(server)}/api/faults") as resp:
        (fault,) = (await resp.json())["faults"]
    assert fault["target"] == "c9"
    body = {"action": "remove", "key": fault["key"]}
    async with http.post(f"{base(server)}/api/faults", json=body) as resp:
        assert resp.status == 200
    assert server.emulator.plan.faults() == []
    handle.remove()  # already gone: a no-op


@pytest.mark.asyncio
async def test_close_a_connection_with_a_code(
    server: EmulatorServer, http: aiohttp.ClientSession, feed: Feed
) -> None:
    client = await client_for(server)
    other = await client_for(server)
    try:
        body = {"action": "add", "kind": "close", "target": "c1", "code": 4001, "reason": "bye"}
        async with http.post(f"{base(server)}/api/faults", json=body) as resp:
            answer = await resp.json()
        assert answer["faults"] == []  # one-shot: nothing stays installed
        assert "CloseConnection(code=4001" in answer["message"]
        state = await feed.until(has_connection("c1", open=False))
        assert next(c for c in state["connections"] if c["id"] == "c1")["close_code"] == 4001
        assert server.recorder.connection("c2") is not None
        assert server.recorder.connection("c2").open  # type: ignore[union-attr]
    finally:
        await other.close()
        await client.close()


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, "action must be"),
        ({"action": "explode"}, "action must be"),
        ({"action": "add"}, "kind must be one of"),
        ({"action": "add", "kind": "Stall"}, "kind must be one of"),
        ({"action": "add", "kind": "stall", "target": "c99"}, "no open connection 'c99'"),
        ({"action": "add", "kind": "stall", "target": "x' or 1"}, "target must be"),
        ({"action": "add", "kind": "stall", "target": 1}, "target must be"),
        ({"action": "add", "kind": "delay_acks"}, "seconds must be"),
        ({"action": "add", "kind": "delay_acks", "seconds": -1}, "seconds must be"),
        ({"action": "add", "kind": "delay_acks", "seconds": 1e9}, "seconds must be"),
        ({"action": "add", "kind": "delay_acks", "seconds": True}, "seconds must be"),
        ({"action": "add", "kind": "delay_acks", "seconds": "1"}, "seconds must be"),
        ({"action": "add", "kind": "close", "code": 1005}, "cannot be sent"),
        ({"action": "add", "kind": "close", "code": "1000"}, "code must be"),
        ({"action": "add", "kind": "close", "reason": "x" * 200}, "at most 123 bytes"),
        ({"action": "add", "kind": "close", "reason": 5}, "reason must be"),
        ({"action": "remove"}, "key must be"),
        ({"action": "remove", "key": "1"}, "key must be"),
        ({"action": "remove", "key": 42}, "no installed fault has key 42"),
    ],
)
@pytest.mark.asyncio
async def test_fault_input_is_validated(
    server: EmulatorServer, http: aiohttp.ClientSession, body: Any, error: str
) -> None:
    async with http.post(f"{base(server)}/api/faults", json=body) as resp:
        assert resp.status == 400
        assert error in (await resp.json())["error"]
    assert server.emulator.plan.faults() == []


@pytest.mark.asyncio
async def test_standing_fault_from_the_console_acts(
    server: EmulatorServer, http: aiohttp.ClientSession
) -> None:
    """``stall`` installs the real fault: the emulator's own Stall, not a look-alike."""
    body = {"action": "add", "kind": "stall"}
    async with http.post(f"{base(server)}/api/faults", json=body):
        pass
    ((_, fault, target),) = server.emulator.plan.faults()
    assert fault == Stall()
    assert target is None


# --- access ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("192.168.1.5", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.asyncio
async def test_cross_origin_requests_are_refused(
    server: EmulatorServer, http: aiohttp.ClientSession
) -> None:
    evil = {"Origin": "http://evil.example"}
    body = {"action": "add", "kind": "stall"}
    async with http.post(f"{base(server)}/api/faults", json=body, headers=evil) as resp:
        assert resp.status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await http.ws_connect(base(server) + "/events", headers=evil)
    assert info.value.status == 403
    same = {"Origin": base(server).removesuffix("/console")}
    async with http.post(f"{base(server)}/api/faults", json=body, headers=same) as resp:
        assert resp.status == 200


@pytest.mark.asyncio
async def test_a_non_loopback_bind_needs_the_api_key() -> None:
    async with (
        EmulatorServer(fast_config(), host="0.0.0.0") as server,
        aiohttp.ClientSession() as http,
    ):
        url = base(server)
        assert url.startswith("http://127.0.0.1:")
        async with http.get(url) as resp:
            assert resp.status == 401
            assert "?key=API_KEY" in (await resp.json())["error"]
        for path in ["/static/console.js", "/api/faults"]:
            async with http.get(url + path) as resp:
                assert resp.status == 401
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(url + "/events")
        async with http.get(url, params={"key": "da2-wrong"}) as resp:
            assert resp.status == 401
            assert "da2-wrong" not in await resp.text()
        key = server.api_key
        assert key is not None
        async with http.get(url + "/api/faults", headers={"x-api-key": key}) as resp:
            assert resp.status == 200
        async with http.get(url, params={"key": key}, allow_redirects=False) as resp:
            assert resp.status == 303
            assert resp.headers["Location"] == "/console"
            cookie = resp.cookies["appsync_console"]
            assert cookie["httponly"]
            assert cookie["samesite"] == "Strict"
            assert key not in cookie.value
        jar = {"appsync_console": cookie.value}
        async with http.get(url, cookies=jar) as resp:
            assert resp.status == 200
        async with http.ws_connect(
            url + "/events", headers={"Cookie": f"appsync_console={cookie.value}"}
        ) as ws:
            assert json.loads((await ws.receive()).data)["type"] == "hello"
        assert server.recorder.errors == []


@pytest.mark.asyncio
async def test_console_shares_the_emulators_tls() -> None:
    async with EmulatorServer(fast_config(), tls=True) as server:
        url = base(server)
        assert url.startswith("https://")
        connector = aiohttp.TCPConnector(ssl=server.client_ssl_context())
        async with aiohttp.ClientSession(connector=connector) as http:
            async with http.get(url) as resp:
                assert resp.status == 200
            async with http.ws_connect(url + "/events") as ws:
                assert json.loads((await ws.receive()).data)["type"] == "hello"


@pytest.mark.asyncio
async def test_console_off(http: aiohttp.ClientSession) -> None:
    async with EmulatorServer(fast_config(), console=False) as server:
        assert server.console_url is None
        root = server.http_endpoint.removesuffix("/event")
        async with http.get(root + "/console") as resp:
            assert resp.status == 404  # an unknown path like any other
            assert "error" not in await resp.json()  # not the console's answer


def test_console_off_in_a_thread() -> None:
    from appsync_emulator import EmulatorThread

    with EmulatorThread(fast_config(), console=False) as server:
        assert server.console_url is None
    with EmulatorThread(fast_config()) as server:
        assert server.console_url == server.http_endpoint.removesuffix("/event") + "/console"


def test_no_console_flag() -> None:
    assert build_parser().parse_args(["--no-console"]).no_console is True
    assert build_parser().parse_args([]).no_console is False
