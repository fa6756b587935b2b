"""The enriched alert in examples/ (and shown in the README) is what the code produces today.

A failed import in the Canvas simulator, its Live Events through the real ingest core and store on
moto, the real notifier reading Canvas for the details. The clock is a fixed moment (the example's),
never today's date. Regenerate after a deliberate change with UPDATE_EXAMPLES=1.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import boto3

from sis_imports.usecases.notify import Notifier
from sis_imports.adapters.alert_details import CanvasDetails
from sis_imports.core.alert_text import email_text
from sis_imports.adapters.publisher import AlertPublisher
from tests.handlers.test_reconciler import TOKEN, Clock, World

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "alert_failed_import.json"
EMAIL = ROOT / "examples" / "alert_failed_import.txt"


def enriched_alert(aws) -> dict:
    clock = Clock()
    clock.now = datetime(2026, 11, 27, 15, 30, tzinfo=timezone.utc)
    world = World(aws, clock)
    try:
        sis_id = world.canvas.create_import()
        clock.tick(6.381)
        world.canvas.advance(sis_id, "importing")
        clock.tick(88.626)
        world.canvas.advance(sis_id, "failed_with_messages", errors=[
            ["enrollments.csv", "Unknown course id CRS-404 referenced in enrollment"],
            ["enrollments.csv", "Unknown section id SEC-77 referenced in enrollment"],
            ["users.csv", "Invalid email address for user u-1290"],
        ], counts={"users": 212, "enrollments": 1308, "courses": 14, "sections": 14})
        details = CanvasDetails([(world.canvas.base_url, lambda: TOKEN)])
        details._instances = [(url, token, "oxana.instructure.com") for url, token, _ in details._instances]  # the example's host
        notifier = Notifier(AlertPublisher(boto3.client("sns"), aws.topic_arn), details=details)
        aws.pump_stream(lambda event, context: notifier.handle(event, context))
        (alert,) = aws.alerts()
        assert alert["subject"] == "SIS import 1001 failed_with_messages on oxana.instructure.com"  # as the README says
        return alert["message"]
    finally:
        world.canvas.stop()


def test_the_example_alert_is_what_the_code_produces(aws):
    message = enriched_alert(aws)
    text = email_text(message)
    if os.environ.get("UPDATE_EXAMPLES"):
        EXAMPLE.write_text(json.dumps(message, indent=2) + "\n")
        EMAIL.write_text(text)
    assert json.loads(EXAMPLE.read_text()) == message
    assert EMAIL.read_text() == text
    readme = (ROOT / "README.md").read_text()
    assert text in readme  # the README shows this very text
    for secret in ("verifier", "access_token", "mysisimporterlogin", "93.184.216.34", "python-requests"):
        assert secret not in json.dumps(message) + text
