"""Stand-ins for `aws`, `make` and `curl` that the runbook's commands run against (tests/infra/test_runbook.py).

They answer from a synthesized template, so that every name a command looks up (an output, a log group,
an alarm, a queue) must be one the stack really makes; and they check each command against what the
real tool takes: `aws` against botocore's model of the service (operation, options, required options,
the `--query` expression), `make` against the Makefile's targets and the options of the script behind
it (ops.status's parser, ops.redrive's help, infra.config for `-c` settings). A log group's `logs tail`
prints the lines the real handler logged in the test (RUNBOOK_LOGS), so that a `grep` for a field that
the code does not log finds nothing. Anything not understood fails loudly (exit 2).

Environment: RUNBOOK_TEMPLATE (the template's JSON file), RUNBOOK_LOGS (JSON: function name -> lines),
RUNBOOK_STACK (the stack's name).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT, REGION = "123456789012", "us-east-1"
GLOBAL_OPTIONS = {"query", "output", "region", "no-paginate", "profile"}
# Where the AWS CLI names an API member otherwise (awscli's argrenames: --endpoint is a global option).
CLI_RENAMES = {("sns", "subscribe", "notification-endpoint"): "endpoint"}
ARN_SERVICE = {"AWS::SQS::Queue": "sqs", "AWS::SNS::Topic": "sns", "AWS::SecretsManager::Secret": "secretsmanager",
               "AWS::Lambda::Function": "lambda", "AWS::Events::EventBus": "events"}


def fail(message: str, code: int = 2) -> None:
    print(f"{sys.argv[1]} (runbook fake): {message}", file=sys.stderr)
    sys.exit(code)


def template() -> dict[str, Any]:
    return json.loads(Path(os.environ["RUNBOOK_TEMPLATE"]).read_text())


def stack() -> str:
    return os.environ["RUNBOOK_STACK"]


def physical_id(logical: str, resource: dict[str, Any]) -> str:
    """What CloudFormation would name it: its explicit name when the template gives one."""
    props = resource.get("Properties", {})
    for key in ("QueueName", "LogGroupName", "FunctionName", "TableName", "Name", "TopicName", "AlarmName"):
        if key in props:
            value = resolve(props[key])
            if isinstance(value, str):
                return value
    return f"{stack()}-{logical}-FAKE"


def resolve(value: Any) -> Any:
    """Enough of CloudFormation's intrinsics for names and ARNs."""
    if isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict) and "Ref" in value:
        name = value["Ref"]
        if name == "AWS::StackName":
            return stack()
        if name == "AWS::Region":
            return REGION
        if name == "AWS::AccountId":
            return ACCOUNT
        resource = template()["Resources"].get(name)
        if resource is None:
            return None
        if resource["Type"] in ("AWS::SNS::Topic", "AWS::SecretsManager::Secret"):
            return arn(name, resource)
        if resource["Type"] == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{physical_id(name, resource)}"
        return physical_id(name, resource)
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        name, attribute = value["Fn::GetAtt"]
        resource = template()["Resources"][name]
        return arn(name, resource) if attribute == "Arn" else physical_id(name, resource)
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        parts = [resolve(p) for p in parts]
        return None if any(p is None for p in parts) else separator.join(str(p) for p in parts)
    return None


def arn(logical: str, resource: dict[str, Any]) -> str:
    service = ARN_SERVICE.get(resource["Type"], resource["Type"].split("::")[1].lower())
    name = physical_id(logical, resource)
    if service == "secretsmanager":
        return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf"
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{name}"


def queues() -> dict[str, str]:
    """Queue name -> URL, for every queue of the stack."""
    return {physical_id(k, r): f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{physical_id(k, r)}"
            for k, r in template()["Resources"].items() if r["Type"] == "AWS::SQS::Queue"}


# aws

def parse_options(words: list[str]) -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    current = None
    for word in words:
        if word.startswith("--"):
            current = word[2:]
            if current in options:
                fail(f"--{current} given twice")
            options[current] = []
        elif current is None:
            fail(f"an argument before any option: {word!r}")
        else:
            options[current].append(word)
    return options


def check_against_model(service: str, operation: str, options: dict[str, list[str]]) -> Any:
    from botocore import xform_name
    from botocore.exceptions import UnknownServiceError
    from botocore.loaders import Loader
    from botocore.model import ServiceModel

    try:  # the loader alone: a botocore Session costs a tenth of a second more per command
        model = ServiceModel(Loader().load_service_model(service, "service-2"), service)
    except UnknownServiceError:
        fail(f"no AWS service {service!r}")
    operations = {xform_name(name, "-"): name for name in model.operation_names}
    if operation not in operations:
        fail(f"aws {service} has no operation {operation!r}")
    op = model.operation_model(operations[operation])
    members = {xform_name(name, "-"): name for name in (op.input_shape.members if op.input_shape else {})}
    options = {CLI_RENAMES.get((service, operation, option), option): values for option, values in options.items()}
    for option, values in options.items():
        if option not in members and option not in GLOBAL_OPTIONS:
            fail(f"aws {service} {operation} takes no --{option} (it takes: {', '.join(sorted(members))})")
        if not values or any(v == "" for v in values):
            fail(f"--{option} has no value (an empty lookup?)")
    required = op.input_shape.required_members if op.input_shape else []
    for name in required:
        if xform_name(name, "-") not in options:
            fail(f"aws {service} {operation} needs --{xform_name(name, '-')}")
    if "output" in options and options["output"] != ["text"] and options["output"] != ["json"]:
        fail(f"--output {options['output']}")
    if "query" in options:
        import jmespath

        try:
            jmespath.compile(options["query"][0])
        except jmespath.exceptions.JMESPathError as exc:
            fail(f"--query is not JMESPath: {exc}")
    return op


def answer(service: str, operation: str, options: dict[str, list[str]]) -> Any:
    """What AWS would answer, from the template; {} for what only needs to be well-formed."""
    one = {k: v[0] for k, v in options.items() if v}
    resources = template()["Resources"]
    if service == "cloudformation":
        if one.get("stack-name") != stack():
            fail(f"Stack with id {one.get('stack-name')} does not exist", 254)
        if operation == "describe-stacks":
            outputs = [{"OutputKey": key, "OutputValue": resolve(o["Value"])}
                       for key, o in template().get("Outputs", {}).items()]
            return {"Stacks": [{"StackName": stack(), "Outputs": outputs}]}
        if operation == "list-stack-resources":
            return {"StackResourceSummaries": [
                {"LogicalResourceId": k, "PhysicalResourceId": physical_id(k, r), "ResourceType": r["Type"]}
                for k, r in resources.items()]}
    if service == "cloudwatch" and operation == "describe-alarms":
        alarms = [resolve(r["Properties"].get("AlarmName")) for r in resources.values()
                  if r["Type"] == "AWS::CloudWatch::Alarm"]
        prefix = one.get("alarm-name-prefix", "")
        # Every alarm in ALARM: the command must find them by its prefix.
        return {"MetricAlarms": [{"AlarmName": a, "StateValue": "ALARM", "StateReason": "Threshold Crossed"}
                                 for a in alarms if isinstance(a, str) and a.startswith(prefix)]}
    if service == "sqs":
        known = queues()
        if operation == "get-queue-url":
            if one["queue-name"] not in known:
                fail(f"AWS.SimpleQueueService.NonExistentQueue: {one['queue-name']}", 254)
            return {"QueueUrl": known[one["queue-name"]]}
        if "queue-url" in one and one["queue-url"] not in known.values():
            fail(f"AWS.SimpleQueueService.NonExistentQueue: {one['queue-url']}", 254)
        if "source-arn" in one and one["source-arn"].rsplit(":", 1)[-1] not in known:
            fail(f"ResourceNotFoundException: {one['source-arn']}", 254)
        if operation == "receive-message":
            return {"Messages": [{"MessageId": "m-1", "Body": "{\"reason\": \"an example\"}"}]}
    if service == "lambda" and "function-name" in one:
        names = {physical_id(k, r) for k, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
        if one["function-name"] not in names:
            fail(f"ResourceNotFoundException: Function not found: {one['function-name']}", 254)
        return {"ReservedConcurrentExecutions": 2}
    for option in ("secret-id", "topic-arn", "table-name"):
        if option in one:
            values = [resolve(o["Value"]) for o in template().get("Outputs", {}).values()]
            if one[option] not in values:
                fail(f"ResourceNotFoundException: {one[option]} is not one of the stack's outputs", 254)
    return {}


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        if all(isinstance(v, list) for v in value):
            return "\n".join("\t".join(str(x) for x in row) for row in value)
        return "\t".join(str(v) for v in value)
    if isinstance(value, dict):
        return "\t".join(str(v) for v in value.values())
    return str(value)


def logs_tail(words: list[str]) -> None:
    if not words or words[0].startswith("--") or not words[0]:
        fail("aws logs tail needs a log group name (an empty lookup?)")
    group, options = words[0], parse_options(words[1:])
    for option, values in options.items():
        if option not in ("since", "format", "follow", "filter-pattern"):
            fail(f"aws logs tail takes no --{option}")
        if option == "since" and not re.fullmatch(r"\d+[smhdw]", values[0]):
            fail(f"--since {values[0]}: a number and s, m, h, d or w")
        if option == "format" and values[0] not in ("short", "detailed", "json"):
            fail(f"--format {values[0]}")
    groups = {physical_id(k, r): k for k, r in template()["Resources"].items() if r["Type"] == "AWS::Logs::LogGroup"}
    if group not in groups:
        fail(f"ResourceNotFoundException: the log group {group!r} does not exist", 254)
    function = re.fullmatch(r"Functions(\w+?)Logs[0-9A-F]{8}", groups[group])
    name = function[1] if function else groups[group]
    # The lines the real handler logged in the test; a function the test did not run says so.
    lines = json.loads(Path(os.environ["RUNBOOK_LOGS"]).read_text()).get(name) or [f"(the log of {name})"]
    for line in lines:
        print(f"2026-01-01T00:00:00 {line}")


def aws(words: list[str]) -> None:
    if len(words) < 2:
        fail("usage: aws <service> <operation> ...")
    service, operation = words[0], words[1]
    if (service, operation) == ("logs", "tail"):  # a CLI command of its own, not in the API model
        return logs_tail(words[2:])
    options = parse_options(words[2:])
    check_against_model(service, operation, options)
    result = answer(service, operation, options)
    if "query" in options:
        import jmespath

        result = jmespath.search(options["query"][0], result)
    print(as_text(result) if options.get("output") == ["text"] else json.dumps(result, indent=2))


# make

def make(words: list[str]) -> None:
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    variables = dict(w.split("=", 1) for w in words if "=" in w)
    goals = [w for w in words if "=" not in w]
    if len(goals) != 1 or goals[0] not in targets:
        fail(f"make {' '.join(goals)}: not one target of the Makefile ({', '.join(sorted(targets))})")
    args = shlex.split(variables.get("ARGS", ""))
    target = goals[0]
    sys.path[:0] = [str(ROOT), str(ROOT / "functions")]
    if target == "status":
        from ops.status import parser

        try:
            parser().parse_args(args)
        except SystemExit as exc:
            fail(f"make status ARGS={' '.join(args)!r} is refused by ops.status", int(exc.code or 2))
    elif target == "redrive":
        helped = subprocess.run([sys.executable, "-m", "ops.redrive", "--help"], cwd=ROOT, capture_output=True,
                                text=True, timeout=60)
        if helped.returncode != 0:
            fail(f"python -m ops.redrive --help failed: {helped.stderr[-500:]}")
        for word in args:
            if word.startswith("-") and word.split("=")[0] not in helped.stdout:
                fail(f"ops.redrive takes no {word}")
        if "--which" in args and f"{args[args.index('--which') + 1]}" not in helped.stdout:
            fail(f"ops.redrive's --which takes no {args[args.index('--which') + 1]}")
    elif target in ("deploy", "synth", "diff"):
        from infra.config import load_config

        context = {}
        for flag, setting in zip(args[::2], args[1::2]):
            if flag != "-c" or "=" not in setting:
                fail(f"make {target} ARGS: expected -c key=value pairs, got {flag} {setting}")
            key, value = setting.split("=", 1)
            context[key] = value
        try:
            load_config(context.get, context)
        except Exception as exc:
            fail(f"make {target}: {exc}")
    else:
        fail(f"make {target}: the runbook fakes do not know what to check for it")
    print(f"make {target} {shlex.join(args)}: taken")


# curl

def curl(words: list[str]) -> None:
    from infra.config import CANVAS_JWKS_URL

    urls = [w for w in words if not w.startswith("-")]
    if len(urls) != 1 or not urls[0].startswith("https://"):
        fail(f"curl: one https URL expected, got {urls}")
    if urls[0] != CANVAS_JWKS_URL:
        fail(f"curl {urls[0]}: not the stack's default jwks_url")
    print('{"keys": []}')


if __name__ == "__main__":
    sys.path[:0] = [str(ROOT), str(ROOT / "functions")]
    {"aws": aws, "make": make, "curl": curl}[sys.argv[1]](sys.argv[2:])
