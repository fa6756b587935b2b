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
    ],
)
def test_bad_context_is_refused_naming_the_key(context, named):
    with pytest.raises(ConfigError, match=named):
        config(**context)
