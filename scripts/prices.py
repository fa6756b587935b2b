"""The AWS prices `make cost` multiplies by: list prices, us-east-1, as read on the date below.

One place for every price, each with the AWS pricing page it was read from. No free tier is
applied (a consortium's account has other workloads using it up). Update a price here, with the
date, when AWS changes it; nothing else in the repository holds a price.
"""

from __future__ import annotations

from dataclasses import dataclass

AS_OF = "list prices, us-east-1, as of 2026-12-02 (no free tier)"


@dataclass(frozen=True)
class Price:
    usd: float  # for one `unit`
    unit: str
    source: str  # the AWS pricing page's name


PRICES: dict[str, Price] = {
    "lambda_request": Price(0.20 / 1e6, "request", "AWS Lambda pricing"),
    "lambda_gb_second_x86_64": Price(0.0000166667, "GB-second", "AWS Lambda pricing"),
    "lambda_gb_second_arm64": Price(0.0000133334, "GB-second", "AWS Lambda pricing"),
    "http_api_request": Price(1.00 / 1e6, "request (first 300 million)", "Amazon API Gateway pricing"),
    "dynamodb_write_request_unit": Price(0.625 / 1e6, "write request unit (on-demand)", "Amazon DynamoDB pricing"),
    "dynamodb_read_request_unit": Price(0.125 / 1e6, "read request unit (on-demand)", "Amazon DynamoDB pricing"),
    "dynamodb_storage_gb_month": Price(0.25, "GB-month (Standard table class)", "Amazon DynamoDB pricing"),
    "dynamodb_pitr_gb_month": Price(0.20, "GB-month (continuous backups)", "Amazon DynamoDB pricing"),
    # GetRecords made by a Lambda event source mapping on a DynamoDB stream are not charged.
    "dynamodb_stream_read_by_lambda": Price(0.0, "stream read request by Lambda", "Amazon DynamoDB pricing"),
    "sns_publish": Price(0.50 / 1e6, "publish (64 KB chunk)", "Amazon SNS pricing"),
    "sns_email": Price(2.00 / 1e5, "email notification", "Amazon SNS pricing"),
    "sqs_request": Price(0.40 / 1e6, "request (standard queue)", "Amazon SQS pricing"),
    "cloudwatch_dashboard": Price(3.00, "dashboard-month", "Amazon CloudWatch pricing"),
    "cloudwatch_alarm_metric_standard": Price(0.10, "alarm metric-month (standard resolution)",
                                              "Amazon CloudWatch pricing"),
    "cloudwatch_alarm_metric_high_resolution": Price(0.30, "alarm metric-month (high resolution)",
                                                     "Amazon CloudWatch pricing"),
    "cloudwatch_alarm_composite": Price(0.50, "composite alarm-month", "Amazon CloudWatch pricing"),
    "cloudwatch_custom_metric": Price(0.30, "metric-month (first 10,000), prorated by the hour",
                                      "Amazon CloudWatch pricing"),
    "cloudwatch_logs_ingestion_gb": Price(0.50, "GB ingested (Standard log class)", "Amazon CloudWatch pricing"),
    "cloudwatch_logs_storage_gb_month": Price(0.03, "GB-month stored", "Amazon CloudWatch pricing"),
    "xray_trace_recorded": Price(5.00 / 1e6, "trace recorded", "AWS X-Ray pricing"),
    "kms_key_month": Price(1.00, "customer managed key-month", "AWS Key Management Service pricing"),
    "kms_request": Price(0.03 / 1e4, "request (symmetric key)", "AWS Key Management Service pricing"),
    "secret_month": Price(0.40, "secret-month", "AWS Secrets Manager pricing"),
    "secrets_api_call": Price(0.05 / 1e4, "API call", "AWS Secrets Manager pricing"),
    "eventbridge_custom_event": Price(1.00 / 1e6, "custom event put on a bus", "Amazon EventBridge pricing"),
}


def unit_prices(prices: dict[str, Price] | None = None) -> dict[str, float]:
    """Name -> dollars per unit, what the arithmetic takes (a test passes its own)."""
    return {name: price.usd for name, price in (prices or PRICES).items()}


def sources(prices: dict[str, Price] | None = None) -> list[str]:
    return sorted({price.source for price in (prices or PRICES).values()})
