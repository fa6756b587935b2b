"""SNS out, and the two queues alerts fall back on: the retry queue and the failure queue.

One publish per alert, with a message per protocol (`MessageStructure=json`): email subscribers get
the plain text (alert_text.email_text), SQS, Lambda and HTTPS subscribers the JSON. Clients of the
queues are made on first use: the common path (SNS answers) never pays for them at cold start.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from .alert_text import email_text
from .alerts import Alert

TOPIC, CHAT = "topic", "chat"


class ChatPublishFailed(Exception):
    """The alert went out on the alert topic, but not to the chat topic."""


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class AlertPublisher:
    def __init__(self, client: Any, topic_arn: str, chat_topic_arn: str | None = None,
                 chat_outcomes: str = "failure,warning,stuck"):
        self._client = client
        self._topic_arn = topic_arn
        self._chat_topic_arn = chat_topic_arn
        self._chat_outcomes = chat_outcomes

    def publish(self, alert: Alert, targets: tuple[str, ...] = (TOPIC, CHAT)) -> str | None:
        """Publishes to the alert topic (and the chat topic, when there is one); the first's message id."""
        message_id = None
        if TOPIC in targets:
            body = _json(alert.message)
            per_protocol = {"default": body, "email": email_text(alert.message), "email-json": body, "sqs": body,
                            "lambda": body, "http": body, "https": body, "sms": alert.subject}
            response = self._client.publish(
                TopicArn=self._topic_arn,
                Subject=alert.subject,
                Message=_json(per_protocol),
                MessageStructure="json",
                MessageAttributes={name: {"DataType": "String", "StringValue": value}
                                   for name, value in alert.attributes.items() if value},
            )
            message_id = response["MessageId"]
        if CHAT in targets and self._chat_topic_arn:
            from .chat import chatbot, wanted  # only where chat is configured

            if not wanted(alert.message, self._chat_outcomes):
                return message_id
            try:
                self._client.publish(TopicArn=self._chat_topic_arn, Message=_json(chatbot(alert.message)))
            except Exception as exc:
                raise ChatPublishFailed(str(exc)) from exc
        return message_id


class LazyQueue:
    """An SQS queue whose client is made on first use."""

    def __init__(self, make_client: Callable[[], Any], url: str):
        self._make_client, self._client, self.url = make_client, None, url

    def _send(self, body: dict[str, Any], delay: int = 0) -> None:
        if self._client is None:
            self._client = self._make_client()
        self._client.send_message(QueueUrl=self.url, MessageBody=_json(body), DelaySeconds=delay)


class AlertRetryQueue(LazyQueue):
    """Alerts SNS refused, for the alert_retry function to publish again (with backoff)."""

    def __init__(self, make_client: Callable[[], Any], url: str, first_delay: int = 60):
        super().__init__(make_client, url)
        self.first_delay = first_delay  # a first retry a minute later; the queue's visibility timeout after

    def defer(self, alert: Alert, targets: tuple[str, ...] = (TOPIC, CHAT)) -> None:
        self._send(retry_body(alert, targets), delay=self.first_delay)


def retry_body(alert: Alert, targets: tuple[str, ...] = (TOPIC, CHAT)) -> dict[str, Any]:
    """An alert as the retry queue holds it (and the failure queue, when parked)."""
    return {"targets": list(targets), "subject": alert.subject, "message": alert.message,
            "attributes": alert.attributes}


def deferred_alert(body: str) -> tuple[Alert, tuple[str, ...]]:
    """An alert as the retry queue holds it."""
    data = json.loads(body)
    return Alert(data["subject"], data["message"], data["attributes"]), tuple(data.get("targets") or (TOPIC,))


class FailureQueue(LazyQueue):
    """Stream records the notifier could not read, each with its reason: for an operator. And alerts
    parked near their record's age limit, whole under `alert`: `make redrive` puts them back."""

    def send(self, record: dict[str, Any], reason: str) -> None:
        self._send({"reason": reason, "record": record})

    def park(self, alert: Alert, targets: tuple[str, ...], reason: str, *, sequence_number: str | None = None) -> None:
        self._send({"reason": reason, "alert": retry_body(alert, targets), "sequence_number": sequence_number})
