"""A Lambda function written with Powertools for AWS Lambda (Python), as deployed to AWS."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import AppSyncEventsResolver
from aws_lambda_powertools.event_handler.events_appsync.exceptions import UnauthorizedException

app = AppSyncEventsResolver()


@app.on_publish("/orders/*")
def validate_order(payload):
    if payload.get("quantity", 0) <= 0:
        raise ValueError("quantity must be positive")  # this event goes to result.failed
    return {**payload, "status": "accepted"}


@app.on_publish("/orders/bulk", aggregate=True)
def bulk(payload):  # aggregate: every event of the publish at once
    return [{"id": e["id"], "payload": {**e["payload"], "batch": len(payload)}} for e in payload]


@app.on_subscribe("/orders/*")
def orders_subscription():
    return True


@app.on_subscribe("/orders/private/*")  # the most specific route wins
def private_orders():
    raise UnauthorizedException("private orders are not for you")


def lambda_handler(event, context):
    return app.resolve(event, context)
