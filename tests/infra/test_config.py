"""Context validation: every bad value is refused with an error naming the key (no synth needed)."""

import pytest

from infra.config import DEFAULTS, ConfigError, load_config


def config(**context):
    return load_config(context.get)


def test_defaults():
    c = config()
    assert (c.stage, c.auth_mode, c.architecture, c.retention_days, c.canvas_sqs) == ("prod", "jwt", "x86_64", 90, True)
    assert c.canvas_account_id == "636161780776"
    assert c.jwks_url == "https://8axpcl50e4.execute-api.us-east-1.amazonaws.com/main/jwks"
    assert set(DEFAULTS) >= {"stage", "auth_mode", "jwks_url", "jwt_issuers", "retention_days", "notify_emails",
                             "throttle_rate", "throttle_burst", "architecture", "domain_name", "certificate_arn"}


def test_lists_and_booleans_from_the_command_line():
    c = config(notify_emails="a@x.edu, b@x.edu", jwt_issuers="https://i1,https://i2", canvas_sqs="false",
               eventbridge_source_accounts="111122223333")
    assert c.notify_emails == ("a@x.edu", "b@x.edu") and c.jwt_issuers == ("https://i1", "https://i2")
    assert c.canvas_sqs is False and c.eventbridge_source_accounts == ("111122223333",)


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"auth_mode": "basic"}, "auth_mode"),
        ({"architecture": "sparc"}, "architecture"),
        ({"retention_days": "0"}, "retention_days"),
        ({"retention_days": "ninety"}, "retention_days"),
        ({"notify_emails": "ops@example.edu,not-an-email"}, "notify_emails"),
        ({"throttle_rate": "-1"}, "throttle_rate"),
        ({"throttle_burst": "1e9"}, "throttle_burst"),
        ({"domain_name": "events.example.edu"}, "certificate_arn"),
        ({"certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/x"}, "domain_name"),
        ({"domain_name": "bad domain", "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/x"},
         "domain_name"),
        ({"domain_name": "e.example.edu", "certificate_arn": "arn:aws:s3:::bucket"}, "certificate_arn"),
        ({"canvas_sqs": "maybe"}, "canvas_sqs"),
        ({"canvas_account_id": "1234"}, "canvas_account_id"),
        ({"eventbridge_source_accounts": "12345678901x"}, "eventbridge_source_accounts"),
        ({"jwks_url": "http://insecure.example/jwks"}, "jwks_url"),
        ({"stage": "Prod!"}, "stage"),
        ({"log_retention_days": "10"}, "log_retention_days"),
        ({"removal_policy": "snapshot"}, "removal_policy"),
        ({"eventbridge_archive_days": "0"}, "eventbridge_archive_days"),
        ({"auth_mode": "none"}, "allow_unauthenticated"),
        ({"auth_mode": "none", "allow_unauthenticated": "perhaps"}, "allow_unauthenticated"),
    ],
)
def test_bad_context_is_refused_naming_the_key(context, named):
    with pytest.raises(ConfigError, match=named):
        config(**context)


def test_errors_list_the_allowed_values():
    with pytest.raises(ConfigError, match="jwt, token, none"):
        config(auth_mode="basic")
    with pytest.raises(ConfigError, match="x86_64, arm64"):
        config(architecture="sparc")


def test_an_open_webhook_needs_an_explicit_yes():
    assert config(auth_mode="none", allow_unauthenticated="true").auth_mode == "none"
    assert config(auth_mode="token").allow_unauthenticated is False


def test_context_from_cdk_json_is_typed_and_from_the_command_line_is_text():
    typed = config(retention_days=30, canvas_sqs=False, throttle_rate=10, jwt_issuers=["https://a", "https://b"])
    text = config(retention_days="30", canvas_sqs="false", throttle_rate="10", jwt_issuers="https://a,https://b")
    assert typed == text


def test_cdk_json_context_is_valid_and_matches_the_defaults():
    import json
    from pathlib import Path

    context = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]
    assert load_config(context.get) == config()
    unknown = {k for k in context if not k.startswith("@aws-cdk") and k not in DEFAULTS}
    assert unknown == set()  # a misspelt key would otherwise be ignored silently


@pytest.mark.parametrize(("given", "meant"), [("notify_email", "notify_emails"), ("retention_day", "retention_days"),
                                              ("canvas_account", "canvas_account_id"), ("archtecture", "architecture")])
def test_a_misspelt_key_is_refused_naming_the_right_one(given, meant):
    with pytest.raises(ConfigError, match=f"{given} is not a setting: did you mean {meant}"):
        load_config({given: "x"}.get, keys=[given])


def test_keys_of_cdk_and_other_tools_pass():
    keys = ["@aws-cdk/aws-iam:minimizePolicies", "aws:cdk:enable-path-metadata", "cli-telemetry", "acknowledged-issue-numbers"]
    assert load_config({}.get, keys=keys) == config()
