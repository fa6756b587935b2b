"""What is stored of a URL: scheme, host and the path's route words and numeric ids; no query, fragment,
user info or any other path segment, whatever the shape."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sis_imports.core.redact import MAX_URL_LENGTH, REDACTED, redact_url

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


def test_a_long_path_is_cut_between_segments():
    redacted = redact_url("https://h.example.edu" + "/accounts" * 1000)
    assert len(redacted) <= MAX_URL_LENGTH and len(redacted) > MAX_URL_LENGTH - len("/accounts")
    assert redacted.endswith("/accounts")  # no half word


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/accounts/1/sis_imports",
        "/api/v1/accounts/self/sis_imports.json",
        "/api/v1/accounts/1/sis_imports/1440004",
        "/api/v1/accounts/1/sis_imports/importing",
        "/api/v1/accounts/1/sis_imports/abort_all_pending",
        "/api/v1/accounts/1/sis_imports/1440004/restore_states",
        "/api/v1/accounts/21070000000000001/sis_imports/2107~1440004/errors",
        "/accounts/self/sis_imports",
        "/login/oauth2/token",
        "/api/v1/courses/12/files/34/download",
        "/",
        "",
    ],
)
def test_canvas_routes_are_kept_as_they_are(path):
    url = f"https://oxana.instructure.com{path}"
    assert redact_url(url) == url
    assert redact_url(f"{url}?access_token={SECRET}&per_page=100") == url


@pytest.mark.parametrize(
    ("path", "kept"),
    [
        # A token in the path, after the OAuth route, even one that looks like a word.
        (f"/login/oauth2/token/{SECRET}", f"/login/oauth2/token/{REDACTED}"),
        ("/login/oauth2/token/plainlowercase", f"/login/oauth2/token/{REDACTED}"),
        # Feeds: the feed code is the capability; its kind is kept.
        ("/feeds/calendars/user_4Ly2kVoVbbAyuLm6cm1zXiRJW0KyZLfUbOa9BbUx.ics", f"/feeds/calendars/{REDACTED}"),
        ("/feeds/announcements/course_4Ly2kVoVbbAyuLm6cm1zXiRJW0KyZLfUbOa9BbUx.atom", f"/feeds/announcements/{REDACTED}"),
        ("/feeds/forums/12/enrollment_abcdefghijklmnop.rss", f"/feeds/forums/{REDACTED}/{REDACTED}"),
        # Nonces of confirmation and password links, lowercase or not.
        ("/register/abcdefghijklmnopqrstuvwxy", f"/register/{REDACTED}"),
        ("/pseudonyms/5/change_password/kb8zq2mmn0xw4", f"/pseudonyms/5/change_password/{REDACTED}"),
        # A query smuggled into the path percent-encoded.
        (f"/api/v1/accounts/1/sis_imports%3Faccess_token%3D{SECRET}", f"/api/v1/accounts/1/{REDACTED}"),
        (f"/api/v1/accounts/1/sis_imports/%3Faccess_token%3D{SECRET}/x", f"/api/v1/accounts/1/sis_imports/{REDACTED}/x"),
        # Long opaque segments, file names, SIS ids, slugs and anything in capitals.
        ("/files/12/4Ly2kVoVbbAyuLm6cm1zXiRJW0KyZLfUbOa9BbUx/status", f"/files/12/{REDACTED}/status"),
        ("/courses/1/files/2/grades%20spring.csv", f"/courses/1/files/2/{REDACTED}"),
        ("/api/v1/users/sis_login_id:jsmith/profile", f"/api/v1/users/{REDACTED}/profile"),
        ("/courses/1/pages/my-page", f"/courses/1/pages/{REDACTED}"),
        ("/a" + "b" * 60, f"/{REDACTED}"),
        ("/API/V1/Accounts", f"/{REDACTED}/{REDACTED}/{REDACTED}"),
        ("/../accounts", f"/{REDACTED}/accounts"),
        ("/accounts/1~x", f"/accounts/{REDACTED}"),
    ],
)
def test_path_segments_that_can_be_capabilities_are_replaced(path, kept):
    assert redact_url(f"https://oxana.instructure.com{path}") == f"https://oxana.instructure.com{kept}"


def test_digits_of_other_scripts_are_no_id():
    # \d-style matching would keep these; the path is cut at its first character outside ASCII.
    assert redact_url("https://h.example.edu/accounts/١٢٣/sis_imports") == "https://h.example.edu/accounts/"


# The rule as promised: a segment is kept when it is a Canvas route word (lowercase ASCII letters and
# underscores, a digit at most at its end, up to 40, a format like .json allowed) or a number;
# anything else is replaced. Capability words are left out of the words drawn: they have a rule of their own.
CAPABILITY_WORDS = {"token", "tokens", "register", "change_password", "reset_password", "confirm", "confirmations",
                    "verifier", "verifiers", "feeds"}
route_words = st.from_regex(r"[a-z]{1,10}(_[a-z]{1,10}){0,2}[0-9]?(\.json)?", fullmatch=True).filter(
    lambda w: w.split(".")[0] not in CAPABILITY_WORDS)
numeric_ids = st.integers(0, 10**17).map(str) | st.tuples(st.integers(1, 9999), st.integers(0, 10**12)).map(
    lambda p: f"{p[0]}~{p[1]}")
# Something no route word or id holds (a capital, a %, a -, a :...), among characters a path allows.
path_text = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ0189-._~!$&'()*+,=:@%", max_size=12)
other_segments = st.builds(lambda a, mark, b: a + mark + b, path_text,
                           st.sampled_from(["A", "Z", "%3F", "%2F", "-", ":", "!", "@", "=", "~x", ".."]), path_text)


@settings(max_examples=500, deadline=None)  # 500 examples: a stalled machine must not fail one
@given(st.lists(st.one_of(st.tuples(st.just("kept"), route_words | numeric_ids),
                          st.tuples(st.just("other"), other_segments)), max_size=12))
def test_each_segment_is_kept_only_when_it_is_a_route_word_or_an_id(segments):
    path = "".join(f"/{segment}" for _, segment in segments)
    expected = "".join(f"/{segment if kind == 'kept' else REDACTED}" for kind, segment in segments)
    assert redact_url(f"https://oxana.instructure.com{path}?access_token={SECRET}") == (
        f"https://oxana.instructure.com{expected}")


canvas_tokens = st.builds(lambda shard, rest: f"{shard}~{rest}", st.integers(1, 99999),
                          st.from_regex(r"[A-Za-z0-9]{20,64}", fullmatch=True).filter(
                              lambda t: any(c.isupper() for c in t)))


@settings(max_examples=500, deadline=None)  # 500 examples: a stalled machine must not fail one
@given(
    before=st.lists(route_words | numeric_ids, max_size=5),
    shape=st.sampled_from(["/{t}", "/user_{t}.ics", "/{t}/x", "/sis_imports%3Faccess_token%3D{t}", "/x%3Ftoken%3D{t}",
                           "/feeds/calendars/{t}.ics", "/login/oauth2/token/{t}", "?access_token={t}",
                           ";access_token={t}", "#{t}", "/a{t}b"]),
    token=canvas_tokens,
)
def test_a_canvas_token_anywhere_in_a_url_never_survives(before, shape, token):
    url = "https://oxana.instructure.com/api/v1" + "".join(f"/{s}" for s in before) + shape.format(t=token)
    redacted = redact_url(url)
    assert redacted.startswith("https://oxana.instructure.com/api/v1")  # the route is still there to read
    assert token.split("~")[1] not in redacted


@settings(max_examples=500, deadline=None)  # 500 examples: a stalled machine must not fail one
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
