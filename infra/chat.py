"""Chat (issue 10): alerts where people read, each option opt-in.

- `chat=chatbot`: a topic of its own ("ChatTopic") that the notifier publishes AWS Chatbot custom
  notifications to (`CHAT_TOPIC_ARN`, only the `chat_outcomes`); connect it to a Slack or Teams channel
  in AWS Chatbot (Amazon Q Developer in chat applications).
- `slack_webhook_secret` / `teams_webhook_secret`: a small function per chat, subscribed to the alert
  topic with a filter policy on `outcome` and `unusual` (`chat_outcomes`), that posts Block Kit / an Adaptive Card to
  the webhook URL held in the named secret (made by the operator: the URL never passes through the
  context or the template). Lambda retries a failed post twice, minutes apart, then keeps the alert in
  the chat failure queue; an alert SNS cannot hand to the function waits there too.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from .alerts import managed_key_topic
from .config import StackConfig
from .functions import Functions
from .queues import dead_letter_queue

HANDLER = "handlers.chat_webhook.handler"
# One post (5 s), a short 429 wait (at most 5 s) and a second post, the secret read: well within 30 s.
TIMEOUT = Duration.seconds(30)
MEMORY_MB = 256
# Lambda's asynchronous retries: 2 (its maximum), about 1 and 2 minutes apart; an alert older than this
# is not posted any more (a chat message hours late helps nobody) and goes to the failure queue instead.
RETRY_ATTEMPTS = 2
MAX_EVENT_AGE = Duration.hours(1)
# A webhook takes about one message a second: two at a time is plenty, and a flood of alerts cannot take
# the account's concurrency (a throttled SNS invocation is retried by Lambda within MAX_EVENT_AGE).
# None when the notifier has none (notifier_concurrency=0: an account with the default quota of 10).
CHAT_CONCURRENCY = 2
KINDS = {"slack": "Slack", "teams": "Teams"}


class Chat(Construct):
    """`topic`: the Chatbot topic (None without `chat=chatbot`); `functions`: the webhook subscribers by kind."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        functions: Functions,
        alert_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.outcomes = config.chat_outcomes
        self.topic: sns.Topic | None = None
        if config.chat == "chatbot":
            # As the alert topic: only our functions publish here (AWS Chatbot subscribes; SNS decrypts
            # before it delivers).
            self.topic = managed_key_topic(self, "Topic", display_name="Canvas SIS imports (chat)")

        self.functions: dict[str, lambda_.Function] = {}
        self.failures = None
        secrets = {"slack": config.slack_webhook_secret, "teams": config.teams_webhook_secret}
        if not any(secrets.values()):
            return
        # Alerts (no secret in them) that could not be posted after the retries, or handed to the function.
        self.failures = dead_letter_queue(self, "Failures", holds="the chat functions' on-failure destination and "
                                          "their subscriptions' dead-letter queue",
                                          retention_period=Duration.days(14))
        allowlist = list(config.chat_outcomes)
        policy = filter_policy(config.chat_outcomes)
        for kind, secret_name in secrets.items():
            if not secret_name:
                continue
            name = KINDS[kind]
            # By name: the operator makes the secret; the grant covers the name's random suffix (-??????).
            secret = secretsmanager.Secret.from_secret_name_v2(self, f"{name}WebhookSecret", secret_name)
            function = functions.add(
                f"Chat{name}",
                handler=HANDLER,
                description=f"Alert topic ({', '.join(allowlist)}) -> {name} webhook",
                environment={"CHAT_KIND": kind, "CHAT_WEBHOOK_SECRET_ARN": secret.secret_arn},
                timeout=TIMEOUT,
                memory_size=MEMORY_MB,
                reserved_concurrency=CHAT_CONCURRENCY if config.notifier_concurrency else 0,
            )
            secret.grant_read(function)
            function.configure_async_invoke(
                retry_attempts=RETRY_ATTEMPTS,
                max_event_age=MAX_EVENT_AGE,
                on_failure=destinations.SqsDestination(self.failures),
            )
            subscription = alert_topic.add_subscription(subscriptions.LambdaSubscription(
                function, dead_letter_queue=self.failures))
            # As JSON: the CDK's typed filter has no "$or", which "or any unusual end" needs.
            subscription.node.default_child.add_property_override("FilterPolicy", policy)
            self.functions[kind] = function

    def feed(self, publisher: lambda_.Function) -> None:
        """Let `publisher` (the notifier) publish Chatbot notifications: CHAT_TOPIC_ARN, CHAT_OUTCOMES
        (the same outcomes as the webhook subscriptions' filter policy), sns:Publish on the topic."""
        if self.topic is None:
            return
        publisher.add_environment("CHAT_TOPIC_ARN", self.topic.topic_arn)
        publisher.add_environment("CHAT_OUTCOMES", ",".join(self.outcomes))
        self.topic.grant_publish(publisher)


def filter_policy(chat_outcomes: tuple[str, ...]) -> dict:
    """The SNS filter policy (on message attributes) of `chat_outcomes`: an alert of those outcomes, or
    any end the notifier found unusual (its `unusual` attribute is "true") when `unusual` is among them."""
    outcomes = [o for o in chat_outcomes if o != "unusual"]
    parts = ([{"outcome": outcomes}] if outcomes else []) + ([{"unusual": ["true"]}] if "unusual" in chat_outcomes
                                                              else [])
    return parts[0] if len(parts) == 1 else {"$or": parts}
