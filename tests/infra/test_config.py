"""Context validation: every bad value is refused with an error naming the key (no synth needed)."""

import pytest

from infra.config import DEFAULTS, ConfigError, load_config


UUID = "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs"


def config(**context):
    """The context given, plus the one key without a default (unless given)."""
    context.setdefault("root_account_uuids", UUID)
    return load_config(context.get)


def test_defaults():
    c = config()
    assert (c.stage, c.auth_mode, c.architecture, c.retention_days, c.canvas_sqs) == \
        ("prod", "jwt", "arm64", 30, False)
    # What costs money without being needed by default is asked for (issue 18).
    assert (c.tracing, c.dashboard, c.ops_topic_key, c.system_log_level, c.event_log_sample_rate) == \
        (False, False, False, "WARN", 0.0)
    assert (c.api_access_logs, c.detailed_metrics) == (False, False)
    assert c.email_outcomes == ("failure", "stuck", "missing", "resumed", "unusual")
    assert c.canvas_account_id == "636161780776"
    assert c.jwks_url == "https://8axpcl50e4.execute-api.us-east-1.amazonaws.com/main/jwks"
    assert c.root_account_uuids == (UUID,) and not c.any_root_account and c.canvas_hostnames == ()
    assert c.eventbridge_archive_days == 0 and c.eventbridge_source_org_id is None  # no archive unless asked
    assert (c.ingest_concurrency, c.sqs_max_concurrency, c.sqs_concurrency, c.eventbridge_concurrency,
            c.query_concurrency, c.notifier_concurrency) == (10, 5, 5, 5, 2, 2)
    # No reconciler unless canvas_instances names one; its settings still have their defaults.
    assert c.canvas_instances == () and (c.reconcile_minutes, c.reconcile_lookback_hours) == (5, 48)
    assert dict(c.stuck_minutes) == {"initializing": 60, "created": 60, "importing": 360, "cleanup_batch": 60,
                                     "restoring": 120}
    assert c.reconciler_concurrency == 1
    assert set(DEFAULTS) >= {"stage", "auth_mode", "jwks_url", "jwt_issuers", "retention_days", "notify_emails",
                             "throttle_rate", "throttle_burst", "architecture", "domain_name", "certificate_arn"}


def test_lists_and_booleans_from_the_command_line():
    c = config(notify_emails="a@x.edu, b@x.edu", jwt_issuers="https://i1,https://i2", canvas_sqs="false",
               eventbridge_source_accounts="111122223333")
    assert c.notify_emails == ("a@x.edu", "b@x.edu") and c.jwt_issuers == ("https://i1", "https://i2")
    assert c.canvas_sqs is False and c.eventbridge_source_accounts == ("111122223333",)


def test_cost_settings_from_the_command_line():
    c = config(email_outcomes="All", tracing="true", dashboard="yes", ops_topic_key="1", system_log_level="info",
               event_log_sample_rate="0.01", api_access_logs="on", detailed_metrics="TRUE")
    assert c.email_outcomes is None  # every alert
    assert (c.tracing, c.dashboard, c.ops_topic_key, c.system_log_level, c.event_log_sample_rate) == \
        (True, True, True, "INFO", 0.01)
    assert (c.api_access_logs, c.detailed_metrics) == (True, True)
    # in the documented order, whatever the order given
    assert config(email_outcomes="unusual, Warning,failure").email_outcomes == ("failure", "warning", "unusual")


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
        ({"tracing": "sometimes"}, "tracing"),
        ({"dashboard": "2"}, "dashboard"),
        ({"ops_topic_key": "kms"}, "ops_topic_key"),
        ({"email_outcomes": "failure,aborted"}, "email_outcomes"),
        ({"email_outcomes": ","}, "email_outcomes"),
        ({"email_outcomes": "all,failure"}, "email_outcomes"),
        ({"system_log_level": "ERROR"}, "system_log_level"),
        ({"event_log_sample_rate": "1.5"}, "event_log_sample_rate"),
        ({"event_log_sample_rate": "-0.1"}, "event_log_sample_rate"),
        ({"event_log_sample_rate": "some"}, "event_log_sample_rate"),
        ({"canvas_account_id": "1234"}, "canvas_account_id"),
        ({"eventbridge_source_accounts": "12345678901x"}, "eventbridge_source_accounts"),
        ({"jwks_url": "http://insecure.example/jwks"}, "jwks_url"),
        ({"stage": "Prod!"}, "stage"),
        ({"log_retention_days": "10"}, "log_retention_days"),
        ({"removal_policy": "snapshot"}, "removal_policy"),
        ({"eventbridge_archive_days": "-1"}, "eventbridge_archive_days"),
        ({"eventbridge_archive_days": "91"}, "eventbridge_archive_days"),
        ({"eventbridge_archive_days": "31", "retention_days": "30"}, "retention_days"),
        ({"eventbridge_source_org_id": "o-short"}, "eventbridge_source_org_id"),
        ({"eventbridge_source_org_id": "123456789012"}, "eventbridge_source_org_id"),
        ({"root_account_uuids": "good,has space"}, "root_account_uuids"),
        ({"root_account_uuids": "a/b"}, "root_account_uuids"),
        ({"root_account_uuids": "x" * 129}, "root_account_uuids"),
        ({"root_account_uuids": "*,VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs"}, "root_account_uuids"),
        ({"canvas_hostnames": "https://canvas.example.edu"}, "canvas_hostnames"),
        ({"canvas_hostnames": "canvas.example.edu,not a host"}, "canvas_hostnames"),
        ({"ingest_concurrency": "-1"}, "ingest_concurrency"),
        ({"query_concurrency": "1001"}, "query_concurrency"),
        ({"notifier_concurrency": "two"}, "notifier_concurrency"),
        ({"eventbridge_concurrency": "1.5"}, "eventbridge_concurrency"),
        ({"sqs_max_concurrency": "1"}, "sqs_max_concurrency"),
        ({"sqs_max_concurrency": "1001"}, "sqs_max_concurrency"),
        ({"sqs_max_concurrency": "10", "sqs_concurrency": "5"}, "sqs_concurrency"),
        ({"auth_mode": "none"}, "allow_unauthenticated"),
        ({"canvas_instances": "http://canvas.example.edu"}, "canvas_instances"),
        ({"canvas_instances": "canvas.example.edu"}, "canvas_instances"),
        ({"canvas_instances": "https://canvas.example.edu/accounts/1"}, "canvas_instances"),
        ({"canvas_instances": "https://canvas.example.edu:0"}, "canvas_instances"),
        ({"canvas_instances": "https://canvas.example.edu:70000"}, "canvas_instances"),
        ({"canvas_instances": "https://canvas.example.edu#x"}, "canvas_instances"),
        ({"canvas_instances": "https://localhost"}, "canvas_instances"),
        ({"canvas_instances": "https://a.example.edu,https://A.example.edu/"}, "listed twice"),
        ({"canvas_instances": "https://other.example.edu", "canvas_hostnames": "canvas.example.edu"}, "canvas_hostnames"),
        ({"reconcile_minutes": "0"}, "reconcile_minutes"),
        ({"reconcile_minutes": "61"}, "reconcile_minutes"),
        ({"reconcile_lookback_hours": "0"}, "reconcile_lookback_hours"),
        ({"reconcile_lookback_hours": "721"}, "reconcile_lookback_hours"),
        ({"stuck_initializing_minutes": "0"}, "stuck_initializing_minutes"),
        ({"stuck_created_minutes": "an hour"}, "stuck_created_minutes"),
        ({"stuck_importing_minutes": "43201"}, "stuck_importing_minutes"),
        ({"stuck_cleanup_batch_minutes": "-5"}, "stuck_cleanup_batch_minutes"),
        ({"stuck_restoring_minutes": "1441", "retention_days": "1"}, "stuck_restoring_minutes"),
        ({"reconciler_concurrency": "2"}, "reconciler_concurrency"),
        ({"reconciler_concurrency": "-1"}, "reconciler_concurrency"),
        ({"auth_mode": "none", "allow_unauthenticated": "perhaps"}, "allow_unauthenticated"),
        ({"api_access_logs": "maybe"}, "api_access_logs"),
        ({"detailed_metrics": "2"}, "detailed_metrics"),
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


@pytest.mark.parametrize("given", [None, "", " , "])
def test_root_account_uuids_is_required_and_the_error_says_where_to_find_it(given):
    with pytest.raises(ConfigError) as refused:
        load_config({"root_account_uuids": given}.get)
    message = str(refused.value)
    assert message.startswith("context root_account_uuids is required")
    assert "GET /api/v1/accounts/self" in message and "`uuid`" in message
    assert "metadata.root_account_uuid" in message
    assert "-c root_account_uuids=*" in message  # the explicit opt-out


def test_root_accounts_and_hostnames_from_the_command_line_and_cdk_json():
    c = config(root_account_uuids=f" {UUID} , beta:Uuid~1.x-y_z ",
               canvas_hostnames="Oxana.Instructure.com, canvas.example.edu")
    assert c.root_account_uuids == (UUID, "beta:Uuid~1.x-y_z")
    assert c.canvas_hostnames == ("oxana.instructure.com", "canvas.example.edu")  # host names compare lowercase
    assert config(root_account_uuids=[UUID, "b"]).root_account_uuids == (UUID, "b")
    anyone = config(root_account_uuids="*")
    assert anyone.any_root_account and anyone.root_account_uuids == ("*",)


def test_the_root_account_alphabet_is_the_id_alphabet_of_the_store():
    from infra.config import ROOT_ACCOUNT_UUID
    from sis_imports.core.table import ID_PATTERN

    assert f"^{ROOT_ACCOUNT_UUID.pattern}$" == ID_PATTERN


def test_the_archive_is_opt_in_and_never_outlives_the_batches():
    assert config(eventbridge_archive_days="30").eventbridge_archive_days == 30  # = retention_days: allowed
    assert config(eventbridge_archive_days="7", retention_days="7").eventbridge_archive_days == 7
    assert config(eventbridge_archive_days="90", retention_days="90").eventbridge_archive_days == 90
    with pytest.raises(ConfigError) as refused:
        config(eventbridge_archive_days="31")
    message = str(refused.value)
    assert "eventbridge_archive_days (31)" in message and "retention_days (30)" in message
    assert "ignored" in message and "resurrect" in message


def test_the_reconciler_never_lists_further_back_than_the_batches_are_kept():
    """An import listed beyond retention_days may have expired from the table: it would be recorded as new."""
    canvas = "https://canvas.example.edu"
    assert config(canvas_instances=canvas, reconcile_lookback_hours="720").reconcile_lookback_hours == 720  # 30 days
    assert config(canvas_instances=canvas, retention_days="2").reconcile_lookback_hours == 48  # the default, = 2 days
    with pytest.raises(ConfigError) as refused:
        config(canvas_instances=canvas, retention_days="1")
    message = str(refused.value)
    assert "reconcile_lookback_hours (48)" in message and "retention_days in hours (24)" in message
    assert config(retention_days="1").retention_days == 1  # no reconciler: nothing lists


def test_concurrency_zero_means_no_reservation_and_the_sqs_reservation_covers_its_maximum():
    c = config(ingest_concurrency="0", sqs_concurrency="0", eventbridge_concurrency=0, query_concurrency="0",
               notifier_concurrency="0")
    assert (c.ingest_concurrency, c.sqs_concurrency, c.eventbridge_concurrency, c.query_concurrency,
            c.notifier_concurrency) == (0, 0, 0, 0, 0)
    assert c.sqs_max_concurrency == 5  # the event source's cap holds without a reservation
    assert config(sqs_max_concurrency="20", sqs_concurrency="25").sqs_concurrency == 25
    assert config(sqs_max_concurrency="2", sqs_concurrency="2").sqs_max_concurrency == 2


def test_an_organization_limits_cross_account_puts():
    c = config(eventbridge_source_org_id="o-a1b2c3d4e5", eventbridge_source_accounts="111122223333")
    assert c.eventbridge_source_org_id == "o-a1b2c3d4e5"


def test_an_open_webhook_needs_an_explicit_yes():
    assert config(auth_mode="none", allow_unauthenticated="true").auth_mode == "none"
    assert config(auth_mode="token").allow_unauthenticated is False


def test_architecture_is_arm64_unless_x86_64_is_chosen():
    """Graviton by default (its GB-second is 20% cheaper); `-c architecture=x86_64` still chooses."""
    assert config().architecture == "arm64"
    assert config(architecture="x86_64").architecture == "x86_64"
    assert config(architecture="arm64").architecture == "arm64"


def test_context_from_cdk_json_is_typed_and_from_the_command_line_is_text():
    typed = config(retention_days=30, canvas_sqs=False, throttle_rate=10, jwt_issuers=["https://a", "https://b"])
    text = config(retention_days="30", canvas_sqs="false", throttle_rate="10", jwt_issuers="https://a,https://b")
    assert typed == text


def test_cdk_json_context_is_valid_and_matches_the_defaults():
    import json
    from pathlib import Path

    context = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]
    assert "root_account_uuids" not in context  # each deploy names its own Canvas; no shared placeholder
    with pytest.raises(ConfigError, match="root_account_uuids is required"):
        load_config(context.get)
    assert load_config({**context, "root_account_uuids": UUID}.get) == config()
    unknown = {k for k in context if not k.startswith("@aws-cdk") and k not in DEFAULTS}
    assert unknown == set()  # a misspelt key would otherwise be ignored silently


@pytest.mark.parametrize(("given", "meant"), [("notify_email", "notify_emails"), ("retention_day", "retention_days"),
                                              ("canvas_account", "canvas_account_id"), ("archtecture", "architecture"),
                                              ("root_account_uuid", "root_account_uuids"),
                                              ("canvas_hostname", "canvas_hostnames"),
                                              ("eventbridge_source_org", "eventbridge_source_org_id"),
                                              ("sqs_max_concurency", "sqs_max_concurrency")])
def test_a_misspelt_key_is_refused_naming_the_right_one(given, meant):
    with pytest.raises(ConfigError, match=f"{given} is not a setting: did you mean {meant}"):
        load_config({given: "x"}.get, keys=[given])


def test_keys_of_cdk_and_other_tools_pass():
    keys = ["@aws-cdk/aws-iam:minimizePolicies", "aws:cdk:enable-path-metadata", "cli-telemetry", "acknowledged-issue-numbers"]
    assert load_config({"root_account_uuids": UUID}.get, keys=keys) == config()


def test_canvas_instances_are_base_urls_written_one_way():
    c = config(canvas_instances=" HTTPS://Canvas.Example.edu/ , https://beta.example.edu:443,https://test.example.edu:8443",
               reconcile_minutes="1", reconcile_lookback_hours="720", stuck_importing_minutes="90",
               reconciler_concurrency="0")
    assert c.canvas_instances == ("https://canvas.example.edu", "https://beta.example.edu",
                                  "https://test.example.edu:8443")
    assert (c.reconcile_minutes, c.reconcile_lookback_hours, c.reconciler_concurrency) == (1, 720, 0)
    assert dict(c.stuck_minutes)["importing"] == 90 and dict(c.stuck_minutes)["restoring"] == 120
    assert config(canvas_instances=["https://canvas.example.edu"]).canvas_instances == ("https://canvas.example.edu",)
    # With canvas_hostnames, an instance's host must be one of them (its states would be refused otherwise).
    assert config(canvas_instances="https://canvas.example.edu:8443",
                  canvas_hostnames="Canvas.Example.edu").canvas_instances == ("https://canvas.example.edu:8443",)


@pytest.mark.parametrize("given", ["https://me:tok3n@canvas.example.edu", "https://canvas.example.edu/?access_token=tok3n"])
def test_a_token_pasted_into_canvas_instances_is_not_repeated_in_the_error(given):
    with pytest.raises(ConfigError, match="canvas_instances") as refused:
        config(canvas_instances=given)
    assert "tok3n" not in str(refused.value) and "secret" in str(refused.value)


@pytest.mark.parametrize(("given", "meant"), [("canvas_instance", "canvas_instances"),
                                              ("stuck_import_minutes", "stuck_importing_minutes"),
                                              ("reconcile_minute", "reconcile_minutes"),
                                              ("reconcile_lookback_hour", "reconcile_lookback_hours")])
def test_a_misspelt_reconciler_key_is_refused_naming_the_right_one(given, meant):
    with pytest.raises(ConfigError, match=f"{given} is not a setting: did you mean {meant}"):
        load_config({given: "x"}.get, keys=[given])


def test_operations_settings_default_and_from_the_command_line():
    """Issue 11: the ops topic's subscribers, the heartbeat, the 401/403 threshold, the table's protection."""
    c = config()
    assert (c.ops_emails, c.heartbeat_hours, c.auth_failures_per_hour, c.deletion_protection) == ((), 26, 50, True)
    c = config(ops_emails="oncall@example.edu, dba@example.edu", heartbeat_hours="0", auth_failures_per_hour="10",
               deletion_protection="false")
    assert c.ops_emails == ("oncall@example.edu", "dba@example.edu")
    assert (c.heartbeat_hours, c.auth_failures_per_hour, c.deletion_protection) == (0, 10, False)  # 0: no heartbeat
    assert config(heartbeat_hours=168, deletion_protection=False).heartbeat_hours == 168


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"ops_emails": "oncall@example.edu,pager"}, "ops_emails"),
        ({"heartbeat_hours": "-1"}, "heartbeat_hours"),
        ({"heartbeat_hours": "169"}, "heartbeat_hours"),  # an alarm looks back at most 7 days
        ({"heartbeat_hours": "a day"}, "heartbeat_hours"),
        ({"auth_failures_per_hour": "0"}, "auth_failures_per_hour"),
        ({"deletion_protection": "sometimes"}, "deletion_protection"),
    ],
)
def test_bad_operations_settings_are_refused_naming_the_key(context, named):
    with pytest.raises(ConfigError, match=named):
        config(**context)


@pytest.mark.parametrize(("given", "meant"), [("ops_email", "ops_emails"), ("heartbeat_hour", "heartbeat_hours"),
                                              ("deletion_protect", "deletion_protection")])
def test_a_misspelt_operations_key_is_refused_naming_the_right_one(given, meant):
    with pytest.raises(ConfigError, match=f"{given} is not a setting: did you mean {meant}"):
        load_config({given: "x"}.get, keys=[given])
