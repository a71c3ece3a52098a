"""A client's options as a user sees them: which proxies and URLs it takes,
and that what it keeps never shows a password or a header's value."""

from __future__ import annotations

import pytest
import responses

from chatproviders import APIStatusError, Cromicle, OpenAICompatible
from tests.constants import BASE, HI
from tests.loopback import Conn, LoopbackServer


@responses.activate
def test_an_https_proxy_is_taken_and_used() -> None:
    """A proxy reached over TLS (https://) is a proxy like any other."""
    responses.post(f"{BASE}/chat", body="ok")
    Cromicle(base_url=BASE, proxy="https://127.0.0.1:3128").complete(HI)
    assert responses.calls[0].request.req_kwargs["proxies"] == {
        "http": "https://127.0.0.1:3128",
        "https": "https://127.0.0.1:3128",
    }


def test_no_proxy_in_a_proxy_dict_reaches_its_hosts_directly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """proxy={"no_proxy": ...} is requests' list of hosts the environment's
    proxy is not used for: taken, not refused as a bad URL, and honoured."""

    def direct(conn: Conn) -> None:
        request = conn.read_request()
        assert request is not None
        conn.respond(200, b"direct to " + request.path.encode())

    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", BASE)  # nothing listens: would fail
    with LoopbackServer(direct) as server:
        client = Cromicle(base_url=server.url, proxy={"no_proxy": "127.0.0.1"})
        with client:
            assert client.complete(HI).text == "direct to /chat"


def test_a_bad_proxy_after_no_proxy_is_still_refused() -> None:
    """Every entry of a proxy dict is checked, whatever comes before it."""
    with pytest.raises(ValueError, match="proxy for 'https'"):
        Cromicle(proxy={"no_proxy": "127.0.0.1", "https": "ftp://p:1"})


def test_the_options_repr_shows_no_header_value_password_or_proxy() -> None:
    """client.options keeps the headers, base_url and proxies, but its repr,
    which ends up in logs and tracebacks, shows none of them."""
    client = Cromicle(
        base_url="http://alice:s3cret@127.0.0.1:9",
        proxy="http://bob:pr0xypass@127.0.0.1:3128",
        headers={"X-Api-Key": "sk-header-secret"},
        timeout=7,
    )
    assert client.options.headers == {"X-Api-Key": "sk-header-secret"}
    shown = repr(client.options)
    assert "timeout=7" in shown
    for secret in ("s3cret", "alice", "pr0xypass", "sk-header-secret"):
        assert secret not in shown


@pytest.mark.parametrize(
    "url",
    ["http://user:pa ss@127.0.0.1:9", "http://us er:s3cret@127.0.0.1:9"],
)
def test_a_space_in_the_user_information_is_refused_without_quoting_it(
    url: str,
) -> None:
    """A base_url with a space before its @ cannot be sent: a ValueError at
    construction that shows neither the user nor the password."""
    with pytest.raises(ValueError, match="space or control character") as caught:
        Cromicle(base_url=url)
    assert "ss@" not in str(caught.value) and "s3cret" not in str(caught.value)
    assert "***@127.0.0.1:9" in str(caught.value)


@pytest.mark.parametrize("password", ["s3'cret", 's3"cret', "s3@cret"])
def test_a_password_with_a_quote_or_an_at_sign_is_shown_nowhere(
    password: str,
) -> None:
    """Whatever characters a password holds, the client's repr and host do
    not show it."""
    client = OpenAICompatible(f"http://user:{password}@127.0.0.1:9", model="m")
    for shown in (repr(client), client.host):
        assert "cret" not in shown and "user" not in shown, shown
    assert client.host == "127.0.0.1:9"


@pytest.mark.parametrize(
    "url",
    [
        "http://h\x01st:9",
        "http://user:p\tw@127.0.0.1:9",
        "http://user:p\nw@127.0.0.1:9",
    ],
)
def test_a_control_character_in_base_url_is_refused(url: str) -> None:
    """A tab or other control character, even one urllib would strip out, is
    a mistake named at construction, not a different URL sent."""
    with pytest.raises(ValueError, match="base_url"):
        Cromicle(base_url=url)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        # requests' own URL parsing refuses these: a deep ValueError, at send
        ("http://user:secretpass\u2100@127.0.0.1:3128", "is not a valid URL"),
        ("http://user:secretpass\uff03@127.0.0.1:3128", "is not a valid URL"),
        # Basic auth is Latin-1: a UnicodeEncodeError deep inside, at send
        ("http://user:secretpass\u0100@127.0.0.1:3128", "Latin-1"),
        ("http://us\u0100er:secretpass@127.0.0.1:3128", "Latin-1"),
    ],
)
def test_a_proxy_whose_credentials_cannot_be_sent_is_refused(
    url: str, words: str
) -> None:
    """Refused when the client is made, naming the proxy, never its password."""
    with pytest.raises(ValueError, match="proxy for 'http'") as refused:
        Cromicle(proxy=url)
    assert words in str(refused.value)
    assert "secretpass" not in str(refused.value)


def test_a_latin1_proxy_password_is_taken() -> None:
    """A password of Latin-1 text is one Basic auth can carry: taken."""
    client = Cromicle(proxy="http://user:p\u00e4ss-w\u00f6rd@127.0.0.1:3128")
    assert client.options.proxies is not None


def test_a_no_proxy_list_that_is_no_url_does_not_break_an_error() -> None:
    """no_proxy is a list of hosts, not a URL: an error of the client is
    reported as itself, whatever the list holds."""

    def refuse(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.respond(401, b"no")

    with LoopbackServer(refuse) as server:
        client = Cromicle(base_url=server.url, proxy={"no_proxy": "//[::1"})
        with pytest.raises(APIStatusError) as caught:
            client.complete(HI)
    assert caught.value.status_code == 401


def test_a_base_url_requests_would_refuse_is_refused_when_the_client_is_made() -> None:
    """A host with an empty label: requests' InvalidURL, as our ValueError."""
    with pytest.raises(
        ValueError, match=r"base_url is not a valid URL: 'http://\.a/v1'"
    ):
        Cromicle("http://.a/v1")


def test_a_proxy_without_a_scheme_is_told_what_a_proxy_looks_like() -> None:
    with pytest.raises(ValueError, match="proxy must be a URL such as"):
        Cromicle(proxy="127.0.0.1:3128")
