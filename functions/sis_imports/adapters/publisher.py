"""SNS out, and the two queues alerts fall back on: the retry queue and the failure queue.

One publish per alert, with a message per protocol (`MessageStructure=json`): email subscribers get
the plain text (alert_text.email_text), every other protocol (SQS, Lambda, HTTPS, email-json) the
JSON, as SNS's `default` value (SNS gives `default` to each protocol the message does not name: one
copy of the JSON rather than six). Clients of the queues are made on first use: the common path (SNS
answers) never pays for them at cold start.

Every alert fits: SNS refuses a publish over 262,144 bytes, counting the Message, the Subject and the
message attributes' names, types and values (UTF-8). The JSON is written as UTF-8 (`ensure_ascii=False`:
a CJK character or an emoji costs its 3 or 4 bytes, not a 6 or 12 byte escape, escaped once more
inside the per-protocol JSON), and an alert still too big is shrunk by alert_text.shrink (Canvas's
rows first, never the ids, state or outcome). The retry queue's SQS message has the same limit.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from ..core.alert_text import email_text, shrink
from ..core.alerts import Alert

TOPIC, CHAT = "topic", "chat"
# SNS's and SQS's limit on one message, in bytes (UTF-8).
MESSAGE_LIMIT = 262_144
SUBJECT_LIMIT = 100


class ChatPublishFailed(Exception):
    """The alert went out on the alert topic, but not to the chat topic."""


def _json(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (details_of drops them; any other field): "?", not a refusal
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def sns_size(params: dict[str, Any]) -> int:
    """A Publish's size as SNS counts it against its limit: Message, Subject, attributes' names, types, values."""
    attributes = params.get("MessageAttributes") or {}
    return _bytes(params["Message"]) + _bytes(params.get("Subject") or "") + sum(
        _bytes(name) + _bytes(a["DataType"]) + _bytes(a.get("StringValue", "")) for name, a in attributes.items())


def subject(text: str) -> str:
    """What SNS takes as a Subject: printable ASCII, at most 100 characters, not empty (alerts.py builds
    it so; this keeps a publish from being refused if it ever did not)."""
    printable = "".join(c for c in text if " " <= c <= "~").strip()[:SUBJECT_LIMIT].strip()
    return printable or "SIS import alert"


class AlertPublisher:
    def __init__(self, client: Any, topic_arn: str, chat_topic_arn: str | None = None,
                 chat_outcomes: str = "failure,warning,stuck,missing,unusual"):
        self._client = client
        self._topic_arn = topic_arn
        self._chat_topic_arn = chat_topic_arn
        self._chat_outcomes = chat_outcomes

    def publish_params(self, alert: Alert) -> dict[str, Any]:
        """The Publish call of an alert, within SNS's limit (its message shrunk if it had to be)."""
        def params(message: dict[str, Any]) -> dict[str, Any]:
            per_protocol = {"default": _json(message), "email": email_text(message), "sms": subject(alert.subject)}
            return {
                "TopicArn": self._topic_arn,
                "Subject": subject(alert.subject),
                "Message": _json(per_protocol),
                "MessageStructure": "json",
                "MessageAttributes": {name: {"DataType": "String", "StringValue": value}
                                      for name, value in alert.attributes.items() if value},
            }

        return params(shrink(alert.message, lambda m: sns_size(params(m)), MESSAGE_LIMIT))

    def chat_params(self, alert: Alert) -> dict[str, Any]:
        """The chat topic's Publish: the AWS Chatbot notification (bounded by core/chat/chatbot.py), within SNS's limit."""
        from ..core.chat import chatbot  # only where chat is configured

        def params(message: dict[str, Any]) -> dict[str, Any]:
            return {"TopicArn": self._chat_topic_arn, "Message": _json(chatbot(message))}

        return params(shrink(alert.message, lambda m: sns_size(params(m)), MESSAGE_LIMIT))

    def publish(self, alert: Alert, targets: tuple[str, ...] = (TOPIC, CHAT)) -> str | None:
        """Publishes to the alert topic (and the chat topic, when there is one); the first's message id."""
        message_id = None
        if TOPIC in targets:
            response = self._client.publish(**self.publish_params(alert))
            message_id = response["MessageId"]
        if CHAT in targets and self._chat_topic_arn:
            from ..core.chat import wanted

            if not wanted(alert.message, self._chat_outcomes):
                return message_id
            try:
                self._client.publish(**self.chat_params(alert))
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
    """An alert as the retry queue holds it (and the failure queue, when parked); within SQS's limit,
    which is SNS's: an alert too big for the queue is shrunk by the same rule (no attributes sent)."""
    def body(message: dict[str, Any]) -> dict[str, Any]:
        return {"targets": list(targets), "subject": alert.subject, "message": message,
                "attributes": alert.attributes}

    return body(shrink(alert.message, lambda m: _bytes(_json(body(m))), MESSAGE_LIMIT))


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
