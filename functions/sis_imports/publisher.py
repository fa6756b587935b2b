"""Publishes alerts to SNS."""

from __future__ import annotations

import json
from typing import Any

from .alerts import Alert


class AlertPublisher:
    def __init__(self, client: Any, topic_arn: str):
        self._client = client
        self._topic_arn = topic_arn

    def publish(self, alert: Alert) -> str:
        response = self._client.publish(
            TopicArn=self._topic_arn,
            Subject=alert.subject,
            Message=json.dumps(alert.message, separators=(",", ":")),
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value}
                for name, value in alert.attributes.items()
                if value  # SNS rejects empty attribute values
            },
        )
        return response["MessageId"]
