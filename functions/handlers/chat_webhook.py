"""The alert topic -> a Slack or Microsoft Teams incoming webhook (an SNS-subscribed function);
usecases/chat_delivery.py posts, waits out a short 429, and raises so that Lambda retries."""

from __future__ import annotations

from functools import cache
from typing import Any

from sis_imports import wiring
from sis_imports.usecases.chat_delivery import ChatWebhook

logger, metrics = wiring.logger, wiring.metrics


@cache
def app() -> ChatWebhook:
    return wiring.chat_webhook()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app().handle(event, context)
