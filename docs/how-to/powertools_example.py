"""Run a Powertools Lambda (powertools_lambda_example.py) as a DIRECT namespace handler."""

from __future__ import annotations

import pytest
from powertools_lambda_example import lambda_handler

import appsync_events
from appsync_emulator.config import (
    DataSourceConfig,
    HandlerBehavior,
    HandlerConfig,
    HandlerConfigs,
    NamespaceConfig,
)

DIRECT = HandlerConfig(behavior=HandlerBehavior.DIRECT, data_source_name="orders_fn")
ORDERS = NamespaceConfig(
    name="orders", handler_configs=HandlerConfigs(on_publish=DIRECT, on_subscribe=DIRECT)
)


@pytest.mark.appsync(
    namespaces=["default", ORDERS],
    data_sources=[DataSourceConfig(name="orders_fn", function=lambda_handler)],
)
@pytest.mark.asyncio
async def test_orders_lambda(appsync_client):
    sub = await appsync_client.subscribe("orders/*")
    result = await appsync_client.publish("orders/eu", {"quantity": 2}, {"quantity": 0})
    assert [ok.index for ok in result.successful] == [0]
    assert "quantity must be positive" in result.failed[0].message
    assert (await sub.next()).json() == {"quantity": 2, "status": "accepted"}

    await appsync_client.publish("orders/bulk", {"n": 1}, {"n": 2})
    assert (await sub.next()).json() == {"n": 1, "batch": 2}

    with pytest.raises(appsync_events.UnauthorizedError):
        await appsync_client.subscribe("orders/private/7")
