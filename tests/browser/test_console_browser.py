"""The console in a real browser: headless Chromium driven by Playwright (see conftest)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aiohttp
import pytest
import pytest_asyncio

from appsync_emulator import EmulatorConfig, EmulatorServer
from appsync_emulator.testing import api_key_authorizer
from appsync_events import Client, HeartbeatTimeoutError, connect
from tests.conftest import MS

if TYPE_CHECKING:
    from playwright.async_api import Page

    from tests.browser.conftest import Screenshots

WAIT = 10_000 * MS
"""Longest wait for something to show in the page (milliseconds below, for Playwright)."""


@pytest_asyncio.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    """ka every 50 ms, connectionTimeoutMs 300: a dropped ka is noticed in 300 ms."""
    config = EmulatorConfig(
        keepalive_interval=50 * MS, connection_timeout_ms=round(300 * MS * 1000)
    )
    async with EmulatorServer(config) as server:
        yield server


async def client_for(server: EmulatorServer) -> Client:
    return await connect(
        server.realtime_endpoint,
        authorizer=api_key_authorizer(server),
        handshake_timeout=WAIT,
        operation_timeout=WAIT,
        close_timeout=WAIT,
    )


def ms(seconds: float) -> float:
    return seconds * 1000


@pytest.mark.asyncio
async def test_console_in_a_browser(
    server: EmulatorServer, page: Page, screenshots: Screenshots
) -> None:
    from playwright.async_api import expect

    timeout = ms(WAIT)
    url = server.console_url
    assert url is not None
    await page.goto(url)
    await expect(page.locator("#status")).to_have_text("ready", timeout=timeout)

    # A client connects: its row appears.
    client = await client_for(server)
    watcher = await client_for(server)
    try:
        row = page.locator('#connections tbody tr[data-id="c1"]')
        await expect(row).to_contain_text("API_KEY", timeout=timeout)
        sub = await client.subscribe("/default/*")
        await watcher.subscribe("/default/room/*")
        await expect(page.locator('#channels li[data-pattern="/default/*"]')).to_contain_text(
            "c1/", timeout=timeout
        )

        # The subscribe pane watches a pattern.
        await page.fill("#watch-pattern", "/default/*")
        await page.click("#watch-submit")
        await expect(page.locator("#watch-status")).to_have_text(
            "subscribed to /default/*", timeout=timeout
        )

        # Publish from the form: the event reaches the client, the log and the pane.
        await page.fill("#pub-channel", "/default/console")
        await page.fill("#pub-events", '{"message": "hello from the console"}\n{"n": 2}')
        await page.select_option("#pub-auth", "API_KEY")
        await page.click("#pub-submit")
        await expect(page.locator("#pub-result")).to_contain_text("200", timeout=timeout)
        assert (await sub.next()).json() == {"message": "hello from the console"}
        assert (await sub.next()).json() == {"n": 2}
        log_row = page.locator("#log tbody tr.publish", has_text="/default/console")
        await expect(log_row).to_contain_text("console", timeout=timeout)
        await expect(log_row).to_contain_text("2 accepted", timeout=timeout)
        await expect(
            page.locator("#watch-list li", has_text="hello from the console")
        ).to_have_count(1, timeout=timeout)

        # Traffic from elsewhere: a client's publish and an error answer (highlighted).
        await watcher.publish("/default/room/1", {"from": "a client"})
        assert (await sub.next()).json() == {"from": "a client"}  # c1 subscribed /default/*
        async with aiohttp.ClientSession() as http:
            async with http.post(server.http_endpoint, data="not json") as resp:
                assert resp.status == 400
        error_row = page.locator("#log tbody tr.error", has_text="BadRequestException")
        await expect(error_row).to_have_count(1, timeout=timeout)
        await expect(page.locator("#log tbody tr", has_text="/default/room/1")).to_have_count(
            1, timeout=timeout
        )

        # The filter hides what does not match.
        await page.fill("#log-filter", "room")
        await expect(error_row).to_be_hidden(timeout=timeout)
        await page.fill("#log-filter", "")
        await expect(error_row).to_be_visible(timeout=timeout)
        await screenshots.take(page, "console", docs=True)

        # Inject DropKeepAlives on c1 from the page: the client's heartbeat times out.
        await page.select_option("#fault-kind", "drop_keepalives")
        await page.select_option("#fault-target", "c1")
        await page.click("#fault-add")
        await expect(page.locator("#faults li")).to_contain_text("DropKeepAlives", timeout=timeout)
        with pytest.raises(HeartbeatTimeoutError):
            await sub.next()
        await screenshots.take(page, "console-fault")

        # Remove it from the page.
        await page.click("#faults li button")
        await expect(page.locator("#faults li")).to_have_count(0, timeout=timeout)
        assert server.emulator.plan.faults() == []
    finally:
        await watcher.close()
        await client.close()
    assert server.recorder.connection("c3") is None  # the page is not an AppSync connection


@pytest.mark.asyncio
async def test_close_with_a_code_and_bad_input_from_the_page(
    server: EmulatorServer, page: Page, screenshots: Screenshots
) -> None:
    from playwright.async_api import expect

    timeout = ms(WAIT)
    url = server.console_url
    assert url is not None
    await page.goto(url)
    await expect(page.locator("#status")).to_have_text("ready", timeout=timeout)
    client = await client_for(server)
    try:
        await expect(page.locator('#connections tbody tr[data-id="c1"]')).to_have_count(
            1, timeout=timeout
        )
        await page.select_option("#fault-kind", "close")
        await page.select_option("#fault-target", "c1")
        await page.fill("#fault-code", "4002")
        await page.click("#fault-add")
        await expect(page.locator('#connections tbody tr[data-id="c1"]')).to_contain_text(
            "closed 4002", timeout=timeout
        )
        # Hostile text is shown as text, never as markup.
        await page.fill("#pub-channel", "/default/x")
        await page.fill("#pub-events", '"<img src=x id=injected>"')
        await page.click("#pub-submit")
        await expect(page.locator("#log tbody tr", has_text="<img src=x")).to_have_count(
            1, timeout=timeout
        )
        assert await page.locator("#injected").count() == 0
        # A bad publish gets a specific message, not a crash.
        await page.fill("#pub-channel", "/default/*")
        await page.click("#pub-submit")
        await expect(page.locator("#pub-result")).to_contain_text(
            "BadRequestException", timeout=timeout
        )
        await screenshots.take(page, "console-close")
    finally:
        await client.close()
