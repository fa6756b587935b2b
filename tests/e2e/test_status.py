"""`make status` against `make run` (a subprocess on a free port): the batches that `make send` and
`make simulate` created, newest first, with the filters; the pipeline's health from moto's dead-letter
queues; and `--stack` the way a deployed stack is read (its outputs, the list route signed with SigV4,
the dead-letter depths, the alarms in ALARM), with moto standing in for AWS. Without credentials it
says so in one line. Every wait is bounded; every process is stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
from datetime import datetime, timedelta, timezone

import pytest

from tests.e2e.test_local_run import EXAMPLES, ROOT, LocalRun, get, wait_until
from tests.factories import ROOT_ACCOUNT_UUID, at, canvas_event, failed_import, iso

pytestmark = pytest.mark.e2e


def status(run: LocalRun | None, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = dict(run.env if run else os.environ) if env is None else env
    return subprocess.run([sys.executable, "-m", "ops.status", *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)


def status_json(run: LocalRun, *args: str, expect: int = 0) -> dict:
    out = status(run, "--json", *args)
    assert out.returncode == expect, out.stdout + out.stderr
    return json.loads(out.stdout)


def ids(answer: dict) -> list[str]:
    return [b["sis_batch_id"] for b in answer["batches"]]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    local = LocalRun(tmp_path_factory.mktemp("status-run"))
    try:
        yield local.wait_ready()
    finally:
        assert local.stop() == 0


@pytest.fixture(scope="module")
def sent(run):
    """Three imports over `make send` (one of them the README's example, its times shifted to now), and
    `make simulate`'s five, under the simulator's own root account."""
    now = datetime.now(timezone.utc)
    start = iso(now - timedelta(hours=3))
    run.send(failed_import("8001", start))
    run.send([canvas_event("initializing", at(start, 1800), "8002"), canvas_event("created", at(start, 1800), "8002"),
              canvas_event("importing", at(start, 1805), "8002"), canvas_event("imported", at(start, 1860), "8002")])
    run.send([canvas_event("initializing", at(start, 3600), "8003"), canvas_event("importing", at(start, 3601), "8003")])
    run.send(json.loads((EXAMPLES / "failed_import.json").read_text()), keep_times=False)  # its batch: now
    example = json.loads((EXAMPLES / "failed_import.json").read_text())[-1]
    simulate = subprocess.run([sys.executable, "-m", "local.simulate"], cwd=ROOT, env=run.env, capture_output=True,
                              text=True, timeout=300)
    assert simulate.returncode == 0, simulate.stdout + simulate.stderr
    wait_until(lambda: get(f"{run.base}/batches/{example['metadata']['root_account_uuid']}/"
                           f"{example['body']['sis_batch_id']}")[1].get("terminal"), 15, "the example to end")
    return example


def test_lists_what_send_and_simulate_made_newest_first_and_says_healthy(run, sent):
    answer = status_json(run)
    listed = answer["batches"]
    health = answer["health"]
    assert health["healthy"] is True and health["alarms"] is None  # no CloudWatch alarms locally
    # make simulate's pass (its last) read the simulator: ok, and when
    assert health["reconciler"]["ok"] is True and health["reconciler"]["why"] is None
    assert abs(datetime.now(timezone.utc) - datetime.fromisoformat(health["reconciler"]["at"])) < timedelta(minutes=10)
    assert health["dead_letters"]["canvas-live-events-local-dlq"] == 0 and not any(health["dead_letters"].values())
    got = ids(answer)
    assert {"8001", "8002", "8003", sent["body"]["sis_batch_id"]} <= set(got)
    simulator_root = json.loads((run.state / "run.json").read_text())["root_account_uuid"]
    simulated = [b for b in listed if b["root_account_uuid"] == simulator_root]
    assert len(simulated) >= 4, listed  # make simulate's imports (the one whose events were all lost included)
    assert [b["first_event_at"] for b in listed] == sorted((b["first_event_at"] for b in listed), reverse=True)
    assert got.index(sent["body"]["sis_batch_id"]) < got.index("8003") < got.index("8002") < got.index("8001")
    assert all("history" not in b for b in listed)

    text = status(run)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["first", "event", "root", "account", "batch", "state", "outcome", "unusual", "last",
                                "activity", "host"]
    assert any(" 8001 " in line and "failed_with_messages" in line and "failure" in line for line in lines)
    assert lines[-2].startswith("pipeline: healthy (local run; dead letters: ")
    assert "canvas-live-events-local-dlq 0" in lines[-2] and "alarms: none locally" in lines[-2]
    assert lines[-1] == f"reconciler: last pass {health['reconciler']['at']}: ok"


def test_filters_go_through_to_the_list_route(run, sent):
    failures = status_json(run, "--root-account", ROOT_ACCOUNT_UUID, "--outcome", "failure")["batches"]
    assert {"8001", sent["body"]["sis_batch_id"]} <= {b["sis_batch_id"] for b in failures}
    assert {b["outcome"] for b in failures} == {"failure"} and "8002" not in {b["sis_batch_id"] for b in failures}
    assert ids(status_json(run, "--root-account", ROOT_ACCOUNT_UUID, "--state", "importing")) == ["8003"]
    recent = ids(status_json(run, "--root-account", ROOT_ACCOUNT_UUID, "--since", "170m"))
    assert "8003" in recent and "8002" in recent and "8001" not in recent  # 8001 ended 3 hours ago
    # --limit is the number of rows in all (whatever the number of root accounts), newest first, and
    # what it leaves out is said.
    newest = ids(status_json(run))
    assert len(newest) > 3
    for limit in (1, 3):
        answer = status_json(run, "--limit", str(limit))
        assert ids(answer) == newest[:limit] and answer["more"] is True
    assert status_json(run)["more"] is False
    text = status(run, "--limit", "2")
    assert len([line for line in text.stdout.splitlines() if line.startswith("20")]) == 2
    assert "more batches match than these 2: raise --limit" in text.stdout
    # Pages of one root account, cursor by cursor, give its batches once each, in order.
    everything = ids(status_json(run, "--root-account", ROOT_ACCOUNT_UUID))
    pages, cursor = [], None
    for _ in range(10):
        answer = status_json(run, "--root-account", ROOT_ACCOUNT_UUID, "--limit", "2", *(["--next", cursor] if cursor else []))
        pages += ids(answer)
        cursor = answer["next"]
        if cursor is None:
            break
    assert pages == everything
    text = status(run, "--root-account", ROOT_ACCOUNT_UUID, "--limit", "1")
    assert "more: make status ARGS=\"--root-account" in text.stdout and "--next " in text.stdout
    # A bad value is a usage error (exit 2) naming the option and what it takes, before anything is asked.
    for args, says in ((["--state", "done"], "argument --state: invalid choice: 'done'"),
                       (["--outcome", "stuk"], "argument --outcome: invalid choice: 'stuk'"),
                       (["--since", "yesterday"], "argument --since: 'yesterday': a date"),
                       (["--limit", "0"], "argument --limit: '0': a whole number from 1 to 200"),
                       (["--limit", "201"], "argument --limit: '201': a whole number from 1 to 200"),
                       (["--next", "abc"], "make status: --next goes with one root account")):
        bad = status(run, *args)
        assert bad.returncode == 2, (args, bad.stdout, bad.stderr)
        assert says in bad.stderr and "Traceback" not in bad.stderr and bad.stdout == "", (args, bad.stderr)
    # What only the route can judge (a cursor it never gave) is a usage error too, said in one line.
    bad = status(run, "--root-account", ROOT_ACCOUNT_UUID, "--next", "not-a-cursor")
    assert bad.returncode == 2 and bad.stderr.startswith("make status: the list route refused next: ")
    assert len(bad.stderr.strip().splitlines()) == 1


def test_dead_letters_waiting_make_it_unhealthy(run, sent):
    import boto3

    state = json.loads((run.state / "run.json").read_text())
    sqs = boto3.client("sqs", endpoint_url=state["moto_endpoint"], region_name="us-east-1",
                       aws_access_key_id="local", aws_secret_access_key="local")
    dlq = sqs.get_queue_url(QueueName="canvas-live-events-local-dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=dlq, MessageBody="{}")
    try:
        out = status(run)
        assert out.returncode == 3, out.stdout + out.stderr
        assert "pipeline: UNHEALTHY (local run)" in out.stdout
        assert "dead letters: canvas-live-events-local-dlq holds 1 message(s)" in out.stdout
    finally:
        sqs.purge_queue(QueueUrl=dlq)


def test_a_deployed_stack_is_read_through_its_outputs_with_a_signed_get(run, sent):
    """moto stands in for AWS (CloudFormation, SQS, CloudWatch); the stack's QueryUrl points at the local
    run's list route, which takes the SigV4-signed GET as API Gateway would after checking it."""
    import boto3

    state = json.loads((run.state / "run.json").read_text())
    aws = dict(endpoint_url=state["moto_endpoint"], region_name="us-east-1", aws_access_key_id="local",
               aws_secret_access_key="local")
    dlq_arn = boto3.client("sqs", **aws).get_queue_attributes(
        QueueUrl=boto3.client("sqs", **aws).get_queue_url(QueueName="canvas-live-events-local-dlq")["QueueUrl"],
        AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # moto's CloudFormation makes no alarms: this one is made beside the stack, named as the stack names its own.
    cloudwatch = boto3.client("cloudwatch", **aws)
    cloudwatch.put_metric_alarm(
        AlarmName="CanvasSisImports-moto-heartbeat", Namespace="CanvasSisImports", MetricName="EventsAccepted",
        Statistic="Sum", Period=3600, EvaluationPeriods=26, Threshold=1, ComparisonOperator="LessThanThreshold",
        AlarmDescription='No SIS import event was accepted. Runbook: "No SIS events" in docs/runbook.md.')
    cloudwatch.set_alarm_state(AlarmName="CanvasSisImports-moto-heartbeat", StateValue="OK", StateReason="test")
    cloudwatch.put_metric_alarm(  # another stack's: never reported
        AlarmName="CanvasSisImports-other-heartbeat", Namespace="CanvasSisImports", MetricName="EventsAccepted",
        Statistic="Sum", Period=3600, EvaluationPeriods=26, Threshold=1, ComparisonOperator="LessThanThreshold")
    cloudwatch.set_alarm_state(AlarmName="CanvasSisImports-other-heartbeat", StateValue="ALARM", StateReason="test")
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "moto-stack-queue"}}},
        "Outputs": {
            "QueryUrl": {"Value": f"{run.base}/batches/{{root_account_uuid}}/{{sis_batch_id}}"},
            "RootAccountUuids": {"Value": ROOT_ACCOUNT_UUID},
            "CanvasQueueDlqArn": {"Value": dlq_arn},
        },
    }
    boto3.client("cloudformation", **aws).create_stack(StackName="CanvasSisImports-moto",
                                                       TemplateBody=json.dumps(template))
    env = {**run.env, "AWS_ENDPOINT_URL": state["moto_endpoint"], "AWS_ACCESS_KEY_ID": "local",
           "AWS_SECRET_ACCESS_KEY": "local", "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    out = status(run, "--stack", "CanvasSisImports-moto", "--json", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    answer = json.loads(out.stdout)
    assert {"8001", "8002", "8003"} <= set(ids(answer))
    assert {b["root_account_uuid"] for b in answer["batches"]} == {ROOT_ACCOUNT_UUID}  # RootAccountUuids
    assert answer["health"] == {"healthy": True, "dead_letters": {"canvas-live-events-local-dlq": 0}, "alarms": [],
                                "reconciler": None}  # this stack has no reconciler log group
    assert answer["next"] is None
    cloudwatch.set_alarm_state(AlarmName="CanvasSisImports-moto-heartbeat", StateValue="ALARM", StateReason="test")
    out = status(run, "--stack", "CanvasSisImports-moto", "--outcome", "failure", env=env)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "alarm in ALARM: CanvasSisImports-moto-heartbeat: No SIS import event was accepted." in out.stdout
    assert " 8002 " not in out.stdout and " 8001 " in out.stdout and "CanvasSisImports-other" not in out.stdout


def test_the_list_request_is_signed_with_sigv4_for_execute_api(monkeypatch):
    from botocore.credentials import Credentials

    from ops import status as ops_status

    seen = {}

    class Opener:
        def open(self, request, timeout):
            seen.update(url=request.full_url, headers=dict(request.header_items()))
            raise OSError("stop here")

    monkeypatch.setattr(ops_status.urllib.request, "build_opener", lambda *a: Opener())
    signer = ops_status.Signer(Credentials("AKIDEXAMPLE", "secret"), "eu-west-1")
    url = "https://abc123.execute-api.eu-west-1.amazonaws.com/batches/Uuid1?" + urllib.parse.urlencode(
        {"outcome": "failure", "since": "2026-11-28T09:00:00Z"})
    with pytest.raises(ops_status.StatusError, match="cannot reach"):
        signer.get(url)
    assert seen["url"] == url
    authorization = {k.lower(): v for k, v in seen["headers"].items()}["authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization
    assert ops_status.region_of(url, None) == "eu-west-1"


def test_without_credentials_a_stack_is_refused_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true", AWS_REGION="us-east-1", LOCAL_STATE_DIR=str(tmp_path))
    out = status(None, "--stack", "CanvasSisImports-prod", env=env)
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stdout == "" and "Traceback" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("make status: no AWS credentials found") and "CanvasSisImports-prod" in line


def test_without_a_local_run_it_says_so(tmp_path):
    env = {**os.environ, "LOCAL_STATE_DIR": str(tmp_path)}
    out = status(None, env=env)
    assert out.returncode == 1 and "no local run found" in out.stderr and "Traceback" not in out.stderr


def test_a_stuck_import_is_listed_as_stuck_and_filtered_by_outcome_stuck(run, sent):
    """make simulate makes one import stuck in initializing (its creation backdated past the threshold)."""
    simulator_root = json.loads((run.state / "run.json").read_text())["root_account_uuid"]
    stuck = status_json(run, "--outcome", "stuck")["batches"]
    assert len(stuck) == 1, stuck
    (batch,) = stuck
    assert (batch["root_account_uuid"], batch["workflow_state"], batch["stuck"], batch["terminal"]) == (
        simulator_root, "initializing", True, False)
    assert batch["hostname"]  # the whole view, not only what the open-batches index holds
    everything = status_json(run)["batches"]
    assert [b["sis_batch_id"] for b in everything if b["stuck"]] == [batch["sis_batch_id"]]
    assert not any(b["stuck"] for b in everything if b["sis_batch_id"] == "8003")  # open, not (yet) stuck
    assert ids(status_json(run, "--outcome", "stuck", "--state", "importing")) == []
    assert ids(status_json(run, "--outcome", "stuck", "--state", "initializing")) == [batch["sis_batch_id"]]
    text = status(run, "--outcome", "stuck")
    (row,) = [line for line in text.stdout.splitlines() if f" {batch['sis_batch_id']} " in line]
    assert row.split()[3:5] == ["initializing", "stuck"], row


def test_json_is_alone_on_stdout_through_make_and_a_closed_pipe_is_no_traceback(run, sent):
    env = {**run.env, "MAKEFLAGS": ""}
    # The Python running this test, and no install step: a test never reinstalls the venv it runs in.
    overrides = f"PY={sys.executable} STAMP="
    for target in ("status", "reconcile"):
        alone = subprocess.run(["make", "--no-print-directory", target, "ARGS=--json", *overrides.split()], cwd=ROOT,
                               env=env, capture_output=True, text=True, timeout=300)
        assert alone.returncode == 0 and json.loads(alone.stdout), (target, alone.stdout, alone.stderr)
        pipeline = f"make --no-print-directory {target} ARGS=--json {overrides} | {sys.executable} -m json.tool"
        made = subprocess.run(pipeline, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert made.returncode == 0, (target, made.stdout, made.stderr)
        answer = json.loads(made.stdout)
        assert ("batches" in answer) if target == "status" else ("instances" in answer), answer
    for module in ("ops.status", "local.reconcile"):
        piped = subprocess.run(f"{sys.executable} -m {module} --json | head -c 1", shell=True, cwd=ROOT, env=run.env,
                               capture_output=True, text=True, timeout=300)
        assert piped.stdout == "{" and "Traceback" not in piped.stderr and "BrokenPipe" not in piped.stderr, \
            (module, piped.stderr)


def test_a_failing_reconciler_makes_it_unhealthy_with_when_and_why(tmp_path):
    """`make run CANVAS_API_URL=http://127.0.0.1:9`: nothing listens there, every pass fails."""
    local = LocalRun(tmp_path, CANVAS_API_URL="http://127.0.0.1:9", CANVAS_API_TOKEN="x")
    try:
        local.wait_ready()
        wait_until(lambda: (local.state / "reconcile-last.json").exists(), 60, "the first pass to be recorded")
        out = status(local)
        assert out.returncode == 3, out.stdout + out.stderr
        assert "pipeline: UNHEALTHY (local run)" in out.stdout
        (line,) = [line for line in out.stdout.splitlines() if "reconciler:" in line]
        assert "FAILED: http://127.0.0.1:9" in line and 'docs/runbook.md, "Reconcile passes failing"' in line, line
        answer = status_json(local, expect=3)
        assert answer["health"]["healthy"] is False and answer["health"]["reconciler"]["ok"] is False
        assert answer["health"]["reconciler"]["why"].startswith("http://127.0.0.1:9: ")
    finally:
        assert local.stop() == 0
    # A record left by a run that has stopped is not read as another run's.
    from local import reconcile as local_reconcile

    record = json.loads((tmp_path / "reconcile-last.json").read_text())
    assert record["ok"] is False
    assert local_reconcile.read_last_pass(record["pid"] + 1) is None


def test_a_deployed_reconcilers_last_pass_is_read_from_its_log_group(run, sent):
    """The handler logs one "reconcile pass" line per Canvas instance and pass (Powertools JSON): the
    newest of each instance makes the verdict. moto stands in for CloudFormation and CloudWatch Logs."""
    import time

    import boto3

    state = json.loads((run.state / "run.json").read_text())
    aws = dict(endpoint_url=state["moto_endpoint"], region_name="us-east-1", aws_access_key_id="local",
               aws_secret_access_key="local")
    template = {
        "Resources": {"FunctionsReconcilerLogsA1B2C3D4": {"Type": "AWS::Logs::LogGroup",
                                                          "Properties": {"LogGroupName": "moto-reconciler-logs"}}},
        "Outputs": {"QueryUrl": {"Value": f"{run.base}/batches/{{root_account_uuid}}/{{sis_batch_id}}"},
                    "RootAccountUuids": {"Value": ROOT_ACCOUNT_UUID}},
    }
    boto3.client("cloudformation", **aws).create_stack(StackName="CanvasSisImports-moto-reconciler",
                                                       TemplateBody=json.dumps(template))
    logs = boto3.client("logs", **aws)
    logs.create_log_stream(logGroupName="moto-reconciler-logs", logStreamName="s")
    now = int(time.time() * 1000)

    def line(url, ok, error=None):
        return json.dumps({"level": "INFO", "message": "reconcile pass", "service": "canvas-sis-imports",
                           "url": url, "ok": ok, "error": error, "seen": 3})

    a, b = "https://a.instructure.com", "https://b.instructure.com"
    logs.put_log_events(logGroupName="moto-reconciler-logs", logStreamName="s", logEvents=[
        {"timestamp": now - 4 * 3600_000, "message": line(a, False, "CanvasError: 401 Unauthorized")},  # too old
        {"timestamp": now - 600_000, "message": line(b, False, "CanvasError: 503 Service Unavailable")},
        {"timestamp": now - 590_000, "message": json.dumps({"level": "ERROR", "message": "reconcile pass failed; ...",
                                                            "url": b, "ok": False})},  # not the pass line
        {"timestamp": now - 300_000, "message": line(a, True)},
        {"timestamp": now - 290_000, "message": line(b, True)},
    ])
    env = {**run.env, "AWS_ENDPOINT_URL": state["moto_endpoint"], "AWS_ACCESS_KEY_ID": "local",
           "AWS_SECRET_ACCESS_KEY": "local", "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    answer = json.loads(status(run, "--stack", "CanvasSisImports-moto-reconciler", "--json", env=env).stdout)
    expected_at = datetime.fromtimestamp((now - 290_000) // 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert answer["health"]["reconciler"] == {"at": expected_at, "ok": True, "why": None}
    assert answer["health"]["healthy"] is True
    # The newest pass of b failed: unhealthy, exit 3, with b's reason.
    logs.put_log_events(logGroupName="moto-reconciler-logs", logStreamName="s", logEvents=[
        {"timestamp": now - 10_000, "message": line(b, False, "CanvasError: Canvas answered 401 (token refused)")}])
    out = status(run, "--stack", "CanvasSisImports-moto-reconciler", env=env)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "reconciler: last pass " in out.stdout and \
        f"FAILED: {b}: CanvasError: Canvas answered 401 (token refused)" in out.stdout, out.stdout
