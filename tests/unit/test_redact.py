import pytest

from sis_imports.redact import redact_url


@pytest.mark.parametrize(
    "name", ["access_token", "ACCESS_TOKEN", "token", "key", "api_key", "Secret", "password", "signature", "sig",
             "verifier", "code"]
)
def test_secret_looking_parameters_are_redacted_in_any_case(name):
    url = f"https://canvas.example.edu/api/v1/x?{name}=s3cr3t-value&import_type=instructure_csv"
    redacted = redact_url(url)
    assert "s3cr3t-value" not in redacted
    assert f"{name}=REDACTED" in redacted
    assert "import_type=instructure_csv" in redacted


def test_user_info_and_fragment_are_dropped_and_the_rest_kept():
    redacted = redact_url("https://u:pw@canvas.example.edu:8443/api/v1/a?b=1#access_token=frag")
    assert redacted == "https://canvas.example.edu:8443/api/v1/a?b=1"


def test_nothing_or_unparseable_gives_none():
    assert redact_url(None) is None
    assert redact_url("") is None
    assert redact_url("http://[::1/x?access_token=abc") is None
