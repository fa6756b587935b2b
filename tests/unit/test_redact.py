"""What is stored of a URL: scheme, host and path; no query, fragment or user info, whatever the shape."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sis_imports.redact import MAX_URL_LENGTH, redact_url

SECRET = "1398~agJdJdaSLJfJULBa2803dfLJAFdsk"
BASE = "https://canvas.example.edu/api/v1/accounts/self/sis_imports.json"


@pytest.mark.parametrize(
    "query",
    [
        f"access_token={SECRET}",
        f"import_type=x;access_token={SECRET}",  # ';' as a separator: parse_qsl no longer splits on it
        f"return_to=https://h/b?access_token={SECRET}",  # nested URL
        f"return_to=https%3A%2F%2Fh%2Fb%3Faccess_token%3D{SECRET}",
        f"access_token[]={SECRET}",
        f"access_token%20={SECRET}",
        f"access_token ={SECRET}",
        f"refresh_token={SECRET}",
        f"client_secret={SECRET}",
        f"bearer={SECRET}",
        f"verifier={SECRET}",
        f"ACCESS_TOKEN={SECRET}&import_type=instructure_csv",
        f"x={SECRET}",  # a name nobody listed
    ],
)
def test_no_token_shape_survives_in_the_query(query):
    assert redact_url(f"{BASE}?{query}") == BASE
    assert redact_url(f"{BASE}?{query}#frag") == BASE


@pytest.mark.parametrize(
    "url",
    [
        f"https://canvas.example.edu/api/v1/x;access_token={SECRET}",  # path parameters
        f"https://canvas.example.edu/api/v1/x#access_token={SECRET}",  # fragment
        f"https://user:{SECRET}@canvas.example.edu/api/v1/x",  # user info
        f"https://canvas.example.edu/api/v1/x {SECRET}",  # whitespace in the path
    ],
)
def test_secrets_outside_the_query_are_dropped_too(url):
    assert redact_url(url) == "https://canvas.example.edu/api/v1/x"


def test_scheme_host_port_and_path_are_kept():
    assert redact_url("HTTPS://Canvas.Example.edu:8443/api/v1/a?b=1#c") == "https://canvas.example.edu:8443/api/v1/a"
    assert redact_url("https://canvas.example.edu") == "https://canvas.example.edu"


def test_nothing_unparseable_or_hostless_gives_none():
    assert redact_url(None) is None
    assert redact_url("") is None
    assert redact_url("http://[::1/x?access_token=abc") is None
    assert redact_url(f"/api/v1/x?access_token={SECRET}") is None
    assert redact_url(f"canvas.example.edu/x?access_token={SECRET}") is None


def test_a_long_path_is_cut():
    assert len(redact_url("https://h.example.edu/" + "a" * 5000)) == MAX_URL_LENGTH


@settings(max_examples=500)
@given(
    # The secret's alphabet (capitals, digits, ~) never occurs in the path: it can only come from after it.
    path=st.text(alphabet=st.characters(exclude_characters="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789~"), max_size=40),
    separator=st.sampled_from(["?", "#", ";", " ", "?x=1&", "?a=b;", "/?", "\t", "\n"]),
    name=st.text(max_size=15),
    secret=st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789~", min_size=12, max_size=40),
)
def test_a_secret_after_any_separator_never_survives(path, separator, name, secret):
    """The promise: what follows the path (query, fragment, parameters) is never stored."""
    url = f"https://canvas.example.edu/{path}{separator}{name}={secret}"
    redacted = redact_url(url)
    assert redacted is None or secret not in redacted
    if redacted is not None:
        assert redacted.startswith("https://canvas.example.edu")
