"""docs/runbook.md as code: every command in it runs, against the synthesized stack's names.

Each command (the fenced `sh` blocks, and every inline `make …`, `aws …`, `logs …`, `curl …`) runs in
bash (`set -euo pipefail`) after the runbook's set-up block, with `aws`, `make` and `curl` replaced by
tests/infra/runbook_fakes.py: they answer from the template `make synth` makes (outputs, log groups,
alarms, queues, functions) and check each command against what the real tool takes. `logs <Function>`
prints what that function's real handler logged here, so a `grep` for a field it does not log fails.
A command passes when it works against the default stack or the variant (some parts are opt-in:
the Canvas queue, chat, the reconciler), and prints something. Names in backticks (outputs, metrics,
functions) and the alarm names of each entry must be the stack's.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from local.lambda_context import LambdaContext
from tests.conftest import http_event
from tests.factories import T0, canvas_event

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "runbook.md"
COMMAND = re.compile(r"(make|aws|logs|curl) ")
FENCE = re.compile(r"```sh\n(.*?)```", re.S)
# What the runbook's commands leave to the reader's shell: a root account uuid, a new token, a queue's output.
READER = {"UUID": "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs", "TOKEN": "a-new-shared-token",
          "NEW_TOKEN": "a-new-canvas-token", "Q": "EventBridgeDlqArn"}
# Backticked CamelCase names that are not the stack's own: an AWS account setting.
NOT_THE_STACKS = {"ConcurrentExecutions"}


def fenced(text: str) -> list[str]:
    return FENCE.findall(text)


def inline_commands(text: str) -> list[str]:
    prose = FENCE.sub("", text)
    return [code for code in re.findall(r"`([^`\n]+)`", prose.replace("\n  ", " ")) if COMMAND.match(code)]


def block_commands(block: str) -> list[str]:
    """A block's commands, one each (continued lines joined), comment lines left out."""
    joined = re.sub(r"\\\n", " ", block)
    return [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def commands(text: str) -> tuple[str, list[str]]:
    """The set-up block (definitions), and every command to run."""
    setup, *blocks = fenced(text)
    assert "STACK=" in setup and "logs()" in setup, "the runbook's first sh block defines STACK and logs()"
    return setup, [c for block in blocks for c in block_commands(block)] + inline_commands(text)


@pytest.fixture
def handler_logs(tmp_path, aws, monkeypatch, handlers_fresh, captured_logs) -> Path:
    """What the real handlers log when the runbook's entries send the operator to their logs: an SQS
    message that is no event (SqsConsumer), events refused by the webhook (Ingest)."""
    monkeypatch.setenv("SIS_AUTH", "none")
    lines = {}
    consumer = handlers_fresh["sqs_consumer"].handler
    record = {"messageId": "0f9c1c52-5f8e-4bd4-9d87-1c3a0b7e3d11", "receiptHandle": "r", "body": "not an event",
              "attributes": {"ApproximateReceiveCount": "5"}, "messageAttributes": {}, "md5OfBody": "",
              "eventSource": "aws:sqs", "awsRegion": "us-east-1",
              "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:canvas-live-events-prod"}
    consumer({"Records": [record]}, LambdaContext(function_name="sqs-consumer"))
    lines["SqsConsumer"] = captured_logs.getvalue().splitlines()
    captured_logs.seek(0)
    captured_logs.truncate()
    ingest = handlers_fresh["ingest"].handler
    assert ingest(http_event("{not json"), LambdaContext(function_name="ingest"))["statusCode"] == 400
    stranger = canvas_event("initializing", T0, "1", root_account_uuid="SomeoneElsesRootAccountUuid")
    assert ingest(http_event(stranger), LambdaContext(function_name="ingest"))["statusCode"] == 403
    lines["Ingest"] = captured_logs.getvalue().splitlines()
    assert lines["SqsConsumer"] and lines["Ingest"]
    path = tmp_path / "logs.json"
    path.write_text(json.dumps(lines))
    return path


@pytest.fixture
def fakes(tmp_path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("aws", "make", "curl"):
        script = folder / tool
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{ROOT / "tests/infra/runbook_fakes.py"}" {tool} "$@"\n')
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return folder


def run_runbook(text: str, templates: list[Path], fakes: Path, logs: Path, only: str = "",
                at_most: int | None = None) -> list[str]:
    """Every command of `text` (the first `at_most` holding `only`), each against each template until one
    takes it: the failures."""
    setup, todo = commands(text)
    todo = [c for c in todo if only in c][:at_most]
    (stack,) = re.findall(r"^STACK=(\S+)$", setup, re.M)

    def run(command: str) -> str | None:
        assert "<" not in re.sub(r"'[^']*'", "", command), f"not runnable as written (a <placeholder>?): {command}"
        tried = []
        for template in templates:
            env = {**os.environ, **READER, "PATH": f"{fakes}:{os.environ['PATH']}", "RUNBOOK_TEMPLATE": str(template),
                   "RUNBOOK_LOGS": str(logs), "RUNBOOK_STACK": stack}
            env.pop("STACK", None)
            done = subprocess.run(["bash", "-c", f"set -euo pipefail\n{setup}\n{command}"], env=env, cwd=ROOT,
                                  capture_output=True, text=True, timeout=120)
            if done.returncode == 0 and done.stdout.strip():
                return None
            tried.append(f"[{template.parent.name}] exit {done.returncode}: {done.stderr.strip()[-400:]}"
                         + ("" if done.stdout.strip() else " (printed nothing)"))
        return f"{command}\n  " + "\n  ".join(tried)

    # A few at a time: each is a shell and a Python process or two, mostly starting up.
    with ThreadPoolExecutor(max_workers=4) as pool:
        return [failure for failure in pool.map(run, todo) if failure]


@pytest.fixture(scope="module")
def templates(synthesized, variant_synth) -> list[Path]:
    return [synthesized.template_file, variant_synth.template_file]


def test_every_command_of_the_runbook_runs_against_the_stacks_names(templates, fakes, handler_logs):
    text = RUNBOOK.read_text()
    setup, todo = commands(text)
    assert len(todo) >= 30, todo  # the blocks and every inline command: none silently skipped
    failures = run_runbook(text, templates, fakes, handler_logs)
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize(("change", "into", "breaks"), [
    ("'Functions${1}Logs'", "'Function${1}Logs'", "logs "),  # a log group prefix (in the set-up)
    ("grep message_id", "grep messageid", "grep messageid"),  # a log field
    ('"event rejected"|not an allowed Canvas', '"event refused"|not an allowed instance', "event refused"),  # messages
    ('--alarm-name-prefix "$STACK-"', '--alarm-name-prefix "${STACK}_"', "describe-alarms"),  # the alarms' names
    ("logs ChatSlack 6h", "logs Chat 6h", "logs Chat 6h"),  # a function's name
    # an output
    ("queue_url NotifierFailureQueueArn", "queue_url NotifierFailuresQueueArn", "NotifierFailuresQueueArn"),
    ("--visibility-timeout 0", "--visibility 0", "--visibility 0"),  # an option the API does not take
    ("-c ingest_concurrency=20", "-c ingest_concurrancy=20", "ingest_concurrancy"),  # a setting
    ('--since 24h"', '--since yesterday"', "--since yesterday"),  # a value make status refuses
])
def test_a_renamed_name_or_field_in_the_runbook_fails(templates, fakes, handler_logs, change, into, breaks):
    text = RUNBOOK.read_text()
    assert change in text, change
    changed = text.replace(change, into)
    affected = [c for c in commands(changed)[1] if breaks in c][:3]
    assert affected, breaks
    # Each command the change touches now fails (up to 3 of them are run: the others are unchanged).
    failures = run_runbook(changed, templates, fakes, handler_logs, only=breaks, at_most=3)
    assert len(failures) == len(affected), failures


def alarm_names(template_file: Path) -> set[str]:
    """The template's alarm names, its stack's name (`<stack>-…`) written `S`."""
    stack = template_file.name.removesuffix(".template.json")
    resources = json.loads(template_file.read_text())["Resources"].values()
    names = {r["Properties"]["AlarmName"] for r in resources if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert all(isinstance(n, str) and n.startswith(f"{stack}-") for n in names), names
    return {"S" + n.removeprefix(stack) for n in names}


def test_each_entry_names_alarms_the_stack_has_and_every_alarm_has_an_entry(templates):
    text = RUNBOOK.read_text()
    entries = re.findall(r"^### (.+)\n\n`(<stack>-[^`]+)`", text, re.M)
    assert len(entries) >= 15, entries
    alarms = set().union(*(alarm_names(t) for t in templates))
    patterns = {}
    for title, name in entries:
        pattern = re.escape(name).replace(re.escape("<stack>"), "S")
        patterns[title] = re.compile(re.sub(r"\\<[a-z]+\\>|<[a-z]+>", "[a-z0-9-]+", pattern))
        assert any(patterns[title].fullmatch(a) for a in alarms), (title, name, sorted(alarms))
    # Every alarm has an entry of its own (the catch-all `<stack>-<queue>` is for queues added later).
    specific = [patterns[title] for title, name in entries if not re.fullmatch(r"<stack>-<[a-z]+>", name)]
    for alarm in alarms:
        assert any(p.fullmatch(alarm) for p in specific), f"{alarm} has no runbook entry"


def test_names_in_backticks_are_the_stacks_outputs_metrics_and_functions(templates):
    text = RUNBOOK.read_text()
    stacks = "\n".join(t.read_text() for t in templates)
    names = set(re.findall(r"`([A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+)`", text))
    assert {"IngestFailures", "AlertsFailed", "NotifierFailureQueueArn", "OpsTopicArn"} <= names
    missing = sorted(n for n in names - NOT_THE_STACKS if n not in stacks)
    assert not missing, f"named in the runbook, nowhere in the stack: {missing}"
