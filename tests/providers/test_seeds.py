"""What each provider puts on the wire, checked with ``responses``."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from typing import Any

import pytest
import requests
import responses

import chatproviders
from chatproviders import (
    Acytoo,
    CodeLinkAva,
    Cromicle,
    GPROChat,
    InvalidMessagesError,
    ModelNotSupportedError,
    UnsupportedParameterError,
    format_prompt,
)
from chatproviders.providers import gprochat
from tests.constants import BASE, HELLO
from tests.loopback import Conn, LoopbackServer

CHAT = [
    {"role": "system", "content": "Be brief"},
    {"role": "user", "content": "Hi"},
]
SSE_BODY = (
    b'data: {"choices": [{"delta": {"role": "assistant"}}]}\n\n'
    b'data: {"choices": [{"delta": {"content": "Hel"}}]}\n\n'
    b'data: {"choices": [{"delta": {"content": null}}]}\n\n'
    b'data: {"choices": [{"delta": {"content": "lo"}}]}\n\n'
    b"data: [DONE]\n\n"
)


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(gprochat, "now_ms", lambda: 1700000000000)
    return 1700000000000


def sent(call: Any) -> tuple[dict[str, str], Any]:
    """The headers (names as sent) and decoded JSON body of a recorded call."""
    return dict(call.request.headers), json.loads(call.request.body)


@responses.activate
def test_cromicle_request_is_byte_exact() -> None:
    """Cromicle posts message, token and sha256('abc' + prompt) as JSON."""
    responses.post(f"{BASE}/chat", body="Hi there")
    assert Cromicle(base_url=BASE).complete(HELLO).text == "Hi there"
    call = responses.calls[0]
    headers, _ = sent(call)
    assert call.request.method == "POST"
    assert call.request.url == f"{BASE}/chat"
    assert headers["accept"] == "*/*"
    assert headers["content-type"] == "application/json"
    assert call.request.body == (
        b'{"message": "hello", "token": "abc", "hash": '
        b'"2cb9c710242d0e384bb068a76a664a10f3970c7e81d58059378cfd5f5ba12b0f"}'
    )


@responses.activate
def test_cromicle_hash_covers_the_formatted_prompt() -> None:
    """The second test vector: a conversation flattened before hashing."""
    responses.post(f"{BASE}/chat", body="ok")
    Cromicle(base_url=BASE).complete(CHAT)
    _, body = sent(responses.calls[0])
    assert body["message"] == "System: Be brief\nUser: Hi\nAssistant:"
    assert body["hash"] == (
        "c20155740d9dde77878d04aaca40f3159989110bcf690dd919aef4396ea2ab09"
    )


@responses.activate
@pytest.mark.parametrize(
    ("params", "temperature"), [({}, 0.5), ({"temperature": 0.9}, 0.9)]
)
def test_acytoo_sends_the_history_verbatim(
    params: dict[str, Any], temperature: float
) -> None:
    """Acytoo's body: key, fixed model, messages as given, temperature, password."""
    responses.post(f"{BASE}/api/completions", body="ok")
    Acytoo(base_url=BASE).complete(CHAT, **params)
    call = responses.calls[0]
    headers, body = sent(call)
    assert call.request.url == f"{BASE}/api/completions"
    assert headers["accept"] == "*/*"
    assert headers["content-type"] == "application/json"
    assert body == {
        "key": "",
        "model": "gpt-3.5-turbo",
        "messages": CHAT,
        "temperature": temperature,
        "password": "",
    }
    assert list(body) == ["key", "model", "messages", "temperature", "password"]


@responses.activate
def test_gprochat_request_is_signed(fixed_clock: int) -> None:
    """GPROChat signs time:prompt:secret and sends its browser headers."""
    responses.post(f"{BASE}/api/generate", body="ok")
    GPROChat(base_url=BASE).complete(HELLO)
    call = responses.calls[0]
    headers, body = sent(call)
    assert call.request.url == f"{BASE}/api/generate"
    assert body == {
        "messages": [{"role": "user", "parts": [{"text": "hello"}]}],
        "time": 1700000000000,
        "pass": None,
        "sign": "3dace95d010934cd3208133b2da70eed9a4eee26397316330c07db8d22c08c8e",
    }
    assert headers["content-type"] == "text/plain;charset=UTF-8"
    assert headers["origin"] == "https://gprochat.com"
    assert headers["referer"] == "https://gprochat.com/"
    assert headers["accept"] == "*/*"
    assert headers["user-agent"] == GPROChat.headers["user-agent"]
    assert "Chrome/129.0.0.0" in headers["user-agent"]


def test_gprochat_signature_test_vector() -> None:
    """generate_signature matches the published test vector."""
    assert GPROChat.generate_signature(1700000000000, "hello") == (
        "3dace95d010934cd3208133b2da70eed9a4eee26397316330c07db8d22c08c8e"
    )


@responses.activate
def test_codelinkava_request_and_sse_reply() -> None:
    """CodeLinkAva sends its headers and body, and reads delta content to [DONE]."""
    responses.post(f"{BASE}/api/chat", body=SSE_BODY, content_type="text/event-stream")
    reply = CodeLinkAva(base_url=BASE).complete(HELLO, temperature=0.2)
    assert reply.text == "Hello"
    call = responses.calls[0]
    headers, body = sent(call)
    assert body == {"messages": HELLO, "temperature": 0.2, "stream": True}
    expected = {
        "Accept": "*/*",
        "Accept-Language": (
            "en,fr-FR;q=0.9,fr;q=0.8,es-ES;q=0.7,es;q=0.6,en-US;q=0.5,am;q=0.4,de;q=0.3"
        ),
        "Origin": "https://ava-ai-ef611.web.app",
        "Referer": "https://ava-ai-ef611.web.app/",
        "Sec-Fetch-Dest": "empty",
        "Sec-Fetch-Mode": "cors",
        "Sec-Fetch-Site": "same-origin",
        "Content-Type": "application/json",
    }
    for name, value in expected.items():
        assert headers[name] == value
    assert headers["User-Agent"].endswith("Chrome/116.0.0.0 Safari/537.36")
    # the names go out spelled as the protocol spells them
    assert set(expected) <= set(call.request.headers.keys())


@responses.activate
def test_transport_options_never_reach_the_body() -> None:
    """proxy and timeout given to create_completion stay out of the JSON."""
    responses.post(f"{BASE}/api/chat", body=SSE_BODY)
    chunks = CodeLinkAva.create_completion(
        "gpt-3.5-turbo", HELLO, proxy="http://127.0.0.1:3128", timeout=5, base_url=BASE
    )
    # responses does not go through the proxy, so the call still succeeds
    assert "".join(chunks) == "Hello"
    _, body = sent(responses.calls[0])
    assert body == {"messages": HELLO, "temperature": 0.6, "stream": True}


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        (HELLO, "hello"),
        ([{"role": "user", "content": "a\nb"}], "a\nb"),
        (CHAT, "System: Be brief\nUser: Hi\nAssistant:"),
        (
            [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "How are you?"},
            ],
            "User: Hi\nAssistant: Hello\nUser: How are you?\nAssistant:",
        ),
    ],
)
def test_format_prompt(messages: list[dict[str, str]], expected: str) -> None:
    """format_prompt follows PROTOCOLS.md and leaves the list untouched."""
    before = json.dumps(messages)
    assert format_prompt(messages) == expected
    assert json.dumps(messages) == before


@pytest.mark.parametrize("messages", [[], "hi", [{"role": "user"}], [{"content": 1}]])
def test_format_prompt_checks_its_messages(messages: Any) -> None:
    """format_prompt is public: bad messages raise InvalidMessagesError, not a
    KeyError or a prompt made of 'None'."""
    with pytest.raises(InvalidMessagesError):
        format_prompt(messages)


@pytest.mark.parametrize(
    ("messages", "problem"),
    [
        ("hello", "must be a list"),
        ({"role": "user", "content": "hi"}, "must be a list"),
        (None, "must be a list"),
        ([], "empty"),
        (["hello"], r"messages\[0\] must be a dict"),
        ([{"content": "hi"}], "needs a string 'role'"),
        ([{"role": "user"}], "needs a string 'content'"),
        ([{"role": "user", "content": 3}], "needs a string 'content'"),
        ([{"role": "wizard", "content": "hi"}], "unknown role 'wizard'"),
        ([*HELLO, {"role": 1, "content": "x"}], r"messages\[1\]"),
        ([{"role": "user", "content": "caf\udce9"}], r"'\\udce9' at position 3"),
    ],
)
@responses.activate
def test_bad_messages_are_refused_before_any_io(messages: Any, problem: str) -> None:
    """Each kind of bad messages raises InvalidMessagesError before any request."""
    for cls in chatproviders.list_providers():
        with pytest.raises(InvalidMessagesError, match=problem) as caught:
            cls(base_url=BASE).stream(messages)
        assert isinstance(caught.value, ValueError)
        assert caught.value.provider == cls.__name__
        assert caught.value.host == "127.0.0.1:9"
    assert len(responses.calls) == 0


@responses.activate
@pytest.mark.parametrize("value", [float("nan"), float("inf"), b"0.5", {0.5}])
def test_a_parameter_json_cannot_carry_is_refused(value: Any) -> None:
    """NaN would go out as invalid JSON, bytes would fail inside json: both are
    refused before any request, naming the parameter."""
    with pytest.raises(UnsupportedParameterError, match="temperature="):
        Acytoo(base_url=BASE).stream(HELLO, temperature=value)
    assert len(responses.calls) == 0


@responses.activate
def test_a_message_value_json_cannot_carry_is_refused() -> None:
    """An extra message key whose value has no JSON is an InvalidMessagesError."""
    with pytest.raises(InvalidMessagesError, match="cannot be sent"):
        Acytoo(base_url=BASE).stream([{**HELLO[0], "meta": b"bob"}])
    assert len(responses.calls) == 0


@responses.activate
def test_unknown_parameter_is_refused() -> None:
    """A keyword the protocol does not know is an error, not silently dropped."""
    with pytest.raises(UnsupportedParameterError, match=r"top_p.*accepts: none"):
        Cromicle(base_url=BASE).stream(HELLO, top_p=0.1)
    with pytest.raises(UnsupportedParameterError, match="accepts: temperature"):
        Acytoo(base_url=BASE).complete(HELLO, max_tokens=3)
    assert len(responses.calls) == 0


@responses.activate
def test_unsupported_model_lists_the_supported_ones() -> None:
    """A model outside a provider's list raises ModelNotSupportedError naming them."""
    with pytest.raises(ModelNotSupportedError) as caught:
        GPROChat(base_url=BASE).stream(HELLO, model="gpt-4")
    assert caught.value.supported == ("gemini-1.5-pro", "gemini-pro")
    assert "gemini-1.5-pro, gemini-pro" in str(caught.value)
    assert len(responses.calls) == 0


@responses.activate
@pytest.mark.parametrize("model", [None, "", "gemini-pro"])
def test_model_defaults_and_choices(model: Any) -> None:
    """None or "" means the default model; a listed one is accepted."""
    responses.post(f"{BASE}/api/generate", body="ok")
    reply = GPROChat(base_url=BASE).complete(HELLO, model=model)
    assert reply.model == (model or "gemini-1.5-pro")
    assert reply.provider == "GPROChat"


@pytest.mark.parametrize("cls", [Acytoo, CodeLinkAva, Cromicle, GPROChat])
def test_class_attributes_follow_the_protocol_table(cls: type[Any]) -> None:
    """Every provider carries the gpt4free attributes from PROTOCOLS.md."""
    table = {
        "Cromicle": ("https://cromicle.top", None, False, True, "gpt-3.5-turbo"),
        "Acytoo": ("https://chat.acytoo.com", None, True, True, "gpt-3.5-turbo"),
        "GPROChat": (
            "https://gprochat.com",
            "https://gprochat.com/api/generate",
            True,
            False,
            "gemini-1.5-pro",
        ),
        "CodeLinkAva": (
            "https://ava-ai-ef611.web.app",
            "https://ava-alpha-api.codelink.io/api/chat",
            False,
            True,
            "gpt-3.5-turbo",
        ),
    }
    url, api_endpoint, history, gpt35, default = table[cls.__name__]
    assert cls.url == url
    assert getattr(cls, "api_endpoint", None) == api_endpoint
    assert cls.supports_message_history is history
    assert cls.supports_gpt_35_turbo is gpt35
    assert cls.default_model == default
    assert default in cls.models
    assert cls.working is False
    assert cls.supports_stream is True


@pytest.mark.parametrize(
    ("cls", "endpoint"),
    [
        (Cromicle, "https://cromicle.top/chat"),
        (Acytoo, "https://chat.acytoo.com/api/completions"),
        (GPROChat, "https://gprochat.com/api/generate"),
        (CodeLinkAva, "https://ava-alpha-api.codelink.io/api/chat"),
    ],
)
def test_endpoints_and_base_url(cls: type[Any], endpoint: str) -> None:
    """base_url replaces scheme, host, port and prefix; the path stays."""
    path = endpoint.split("/", 3)[3]
    assert cls().endpoint() == endpoint
    assert cls(base_url="http://127.0.0.1:8080").endpoint() == (
        f"http://127.0.0.1:8080/{path}"
    )
    assert cls(base_url="https://h.example/prefix/").endpoint() == (
        f"https://h.example/prefix/{path}"
    )


@pytest.mark.parametrize(
    "base_url",
    [
        "127.0.0.1:8080",
        "ftp://h",
        "http://",
        "http://h/?q=1",
        "http://h:99999",
        "http://local host:8000",
        "http://[::1",
        "http://exa\x00mple.com",
    ],
)
def test_bad_base_url_is_refused(base_url: str) -> None:
    """A base_url that is not an http(s) URL with a host is a ValueError."""
    with pytest.raises(ValueError, match="base_url"):
        Cromicle(base_url=base_url)


@pytest.mark.parametrize(
    "timeout",
    [0, -1, "5", (1,), (1, 2, 3), (1, None), True, float("inf"), (1e300, 5)],
)
def test_bad_timeout_is_refused(timeout: Any) -> None:
    """A timeout that is not a positive finite number or pair is a ValueError."""
    with pytest.raises(ValueError, match="timeout"):
        Cromicle(timeout=timeout)


@pytest.mark.parametrize("total_timeout", [(5, 30), float("nan"), 0])
def test_bad_total_timeout_is_refused(total_timeout: Any) -> None:
    """total_timeout is one number of seconds: a pair is a ValueError too."""
    with pytest.raises(ValueError, match="total_timeout"):
        Cromicle(total_timeout=total_timeout)


@pytest.mark.parametrize(
    "headers",
    [{"X-Trace": 12345}, {"X-Note": "a\r\nb"}, {"X-Note": "\u0442\u0435\u0441\u0442"},
     {"X:Bad": "v-9"}, {"X-Note": " padded"}],
)  # fmt: skip
def test_headers_that_cannot_be_sent_are_refused(headers: dict[str, Any]) -> None:
    """A header requests or http.client would refuse at send time is a ValueError
    now, naming the header but never quoting its value."""
    ((name, value),) = headers.items()
    with pytest.raises(ValueError, match=f"header {name!r}") as caught:
        Cromicle(headers=headers)
    assert str(value) not in str(caught.value)


@pytest.mark.parametrize(
    "options", [{"session": "s"}, {"session": {}}, {"headers": "X-A: 1"}]
)
def test_a_session_or_headers_of_the_wrong_type_are_refused(
    options: dict[str, Any],
) -> None:
    """A TypeError naming the option, not an AttributeError at the first call."""
    (name,) = options
    with pytest.raises(TypeError, match=name):
        Cromicle(**options)


def test_user_and_password_in_base_url_stay_out_of_errors_and_repr() -> None:
    """base_url's user:password@ is used for the request, and shown nowhere."""

    def handler(conn: Conn) -> None:
        request = conn.read_request()
        assert request is not None
        assert request.headers["authorization"].startswith("Basic ")
        conn.respond(401, b"no")

    with LoopbackServer(handler) as server:
        url = server.url.replace("http://", "http://alice:s3cret@")
        client = Cromicle(base_url=url, max_retries=0)
        with client, pytest.raises(chatproviders.AuthenticationError) as caught:
            client.complete(HELLO)
    shown = [repr(client), client.host, str(caught.value), repr(caught.value)]
    assert caught.value.host == server.url.split("//")[1]
    assert not [text for text in shown if "s3cret" in text or "alice" in text]


@responses.activate
@pytest.mark.parametrize(
    ("timeout", "sent_timeout"),
    [(None, chatproviders.DEFAULT_TIMEOUT), (7, 7), ((2, 30), (2, 30))],
)
def test_a_timeout_is_always_sent(timeout: Any, sent_timeout: Any) -> None:
    """Every request carries a timeout: the caller's, or the documented default."""
    responses.post(f"{BASE}/chat", body="ok")
    Cromicle(base_url=BASE, timeout=timeout).complete(HELLO)
    assert responses.calls[0].request.req_kwargs["timeout"] == sent_timeout


@responses.activate
def test_proxy_applies_to_http_and_https() -> None:
    """A proxy URL is used for both schemes."""
    responses.post(f"{BASE}/chat", body="ok")
    Cromicle(base_url=BASE, proxy="http://127.0.0.1:3128").complete(HELLO)
    assert responses.calls[0].request.req_kwargs["proxies"] == {
        "http": "http://127.0.0.1:3128",
        "https": "http://127.0.0.1:3128",
    }


@pytest.mark.skipif(
    importlib.util.find_spec("socks") is not None, reason="PySocks is installed"
)
@pytest.mark.parametrize("proxy", ["socks5://127.0.0.1:1080", {"https": "socks5h://h"}])
def test_a_socks_proxy_without_pysocks_is_refused(proxy: Any) -> None:
    """Without PySocks, a SOCKS proxy is a ValueError saying what to install."""
    with pytest.raises(ValueError, match=r"requests\[socks\]"):
        Cromicle(proxy=proxy)


@pytest.mark.parametrize(
    "proxy", ["localhost", 3128, "ftp://p:1", "http://", {"http": 123}]
)
def test_bad_proxy_is_refused(proxy: Any) -> None:
    """A proxy that is not a URL or a dict is a ValueError naming it."""
    with pytest.raises(ValueError, match="proxy"):
        Cromicle(proxy=proxy)


@responses.activate
def test_callers_session_and_headers_are_used_and_not_closed() -> None:
    """A session passed in is used for the request and left open by close()."""
    responses.post(f"{BASE}/chat", body="ok")
    session = requests.Session()
    session.headers["X-Session"] = "mine"  # only the caller's session sends it
    closed: list[bool] = []
    session.close = lambda: closed.append(True)  # type: ignore[method-assign]
    with Cromicle(base_url=BASE, session=session, headers={"X-Trace": "1"}) as c:
        assert c.session is session
        c.complete(HELLO)
    assert closed == []
    assert responses.calls[0].request.headers["X-Trace"] == "1"
    assert responses.calls[0].request.headers["X-Session"] == "mine"


def test_own_session_is_closed_and_names_itself() -> None:
    """A client closes the session it made, and sends its own User-Agent."""
    client = Cromicle()
    assert client.session.headers["User-Agent"].startswith("chatproviders/")
    closed: list[bool] = []
    client.session.close = lambda: closed.append(True)  # type: ignore[method-assign]
    client.close()
    assert closed == [True]


def test_hash_is_of_the_utf8_bytes() -> None:
    """Cromicle's hash is over UTF-8 bytes, so non-ASCII prompts sign correctly."""
    body = Cromicle().payload([{"role": "user", "content": "héllo"}], "gpt-3.5-turbo")
    assert body["hash"] == hashlib.sha256("abchéllo".encode()).hexdigest()
