"""What the stack deploys for delivery matches what the code and `make run` assume: the stream event
source retries by age, not by count, with the numbers the notifier and the local poller use; and
every function's timeout covers the calls it makes in a row, each at its client's worst case."""

from __future__ import annotations

import sis_imports.usecases.alert_retry as alert_retry
import sis_imports.usecases.notify as notifier
from sis_imports import wiring
from sis_imports.core import delivery
from sis_imports.adapters.auth import JwksKeySource
from tests.infra.test_stack import function, ref_name


def stream_mapping(template):
    (mapping,) = template.find_resources("AWS::Lambda::EventSourceMapping",
                                         {"Properties": {"StartingPosition": "TRIM_HORIZON"}}).values()
    return mapping["Properties"]


def test_the_stream_source_retries_until_the_records_age_limit_with_the_shared_numbers(template):
    props = stream_mapping(template)
    assert props["MaximumRetryAttempts"] == delivery.STREAM_MAX_RETRY_ATTEMPTS == -1  # unlimited
    assert props["MaximumRecordAgeInSeconds"] == delivery.STREAM_MAX_RECORD_AGE_SECONDS == 86_400
    assert props["BisectBatchOnFunctionError"] is delivery.STREAM_BISECT_ON_ERROR is True
    assert props["BatchSize"] == delivery.STREAM_BATCH_SIZE
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # The notifier parks what it owes before Lambda gives the record up.
    assert 0 < delivery.PARK_WITHIN_SECONDS < delivery.STREAM_MAX_RECORD_AGE_SECONDS


def test_redrive_can_find_both_ends_of_a_parked_alerts_way_back(template):
    outputs = template.to_json()["Outputs"]
    assert ref_name(outputs["NotifierFailureQueueArn"]["Value"]).startswith("AlertsNotifierFailures")
    retry_url = outputs["AlertRetryQueueUrl"]["Value"]
    assert ref_name(retry_url) == ref_name(function(template, "handlers.notifier.handler")
                                           ["Environment"]["Variables"]["ALERT_RETRY_QUEUE_URL"])


def test_every_functions_timeout_covers_its_calls_at_their_worst(template):
    ddb, secrets = wiring.worst_seconds("dynamodb"), wiring.worst_seconds("secretsmanager")
    jwks = JwksKeySource("https://example.invalid/jwks")._client.timeout  # the whole fetch's deadline
    timeout = {handler: function(template, f"handlers.{handler}.handler")["Timeout"]
               for handler in ("ingest", "query", "eventbridge", "sqs_consumer", "notifier", "alert_retry")}
    # The webhook: the JWKS (or the shared token's secret), then at most two DynamoDB calls; and within
    # Canvas's 15 s, so that it reads our 503 rather than its own timeout.
    assert max(jwks, secrets) + 2 * ddb < timeout["ingest"] < 15
    assert 2 * ddb < timeout["eventbridge"]  # two DynamoDB calls at most
    # A list page: the list index, its items (BatchGetItem), the rhythm item.
    assert 3 * ddb < timeout["query"] < 30  # within API Gateway's integration timeout
    assert 2 * ddb < timeout["sqs_consumer"]  # per message; a batch left unfinished comes back whole
    # The notifier starts a record only with its worst case left: a record with one end (asking Canvas
    # why) must fit a fresh invocation with room for more.
    assert notifier.needed_ms(1, 0, True) < 1000 * timeout["notifier"]
    assert notifier.needed_ms(1, 1, True) < 1000 * timeout["notifier"]  # an end and a stuck mark at once
    assert notifier.needed_ms(2, 0, False) < 1000 * timeout["notifier"]
    assert alert_retry.NEEDED_MS < 1000 * timeout["alert_retry"]
