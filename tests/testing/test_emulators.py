"""The offline protocol emulators in chatproviders.testing, driven by requests and raw
sockets."""

from __future__ import annotations

import json
import socket
import threading
import types
from typing import Any

import pytest
import requests
import urllib3.exceptions

import chatproviders.testing
from chatproviders.testing import EmulatorServer, Reply, serve

# Test vectors from PROTOCOLS.md.
CROMICLE_HASH = "2cb9c710242d0e384bb068a76a664a10f3970c7e81d58059378cfd5f5ba12b0f"
GPROCHAT_TS = 1700000000000
GPROCHAT_SIGN = "3dace95d010934cd3208133b2da70eed9a4eee26397316330c07db8d22c08c8e"
MESSAGES = [{"role": "user", "content": "hello"}]

CROMICLE = {"message": "hello", "token": "abc", "hash": CROMICLE_HASH}
ACYTOO = {
    "key": "",
    "model": "gpt-3.5-turbo",
    "messages": MESSAGES,
    "temperature": 0.5,
    "password": "",
}
GPROCHAT = {
    "messages": [{"role": "user", "parts": [{"text": "hello"}]}],
    "time": GPROCHAT_TS,
    "pass": None,
    "sign": GPROCHAT_SIGN,
}
CODELINKAVA = {"messages": MESSAGES, "temperature": 0.6, "stream": True}
OPENAI = {"model": "gpt-3.5-turbo", "messages": MESSAGES, "stream": False}

VALID: dict[str, tuple[str, dict[str, Any]]] = {  # path under server.url, body
    "cromicle": ("/chat", CROMICLE),
    "acytoo": ("/api/completions", ACYTOO),
    "gprochat": ("/api/generate", GPROCHAT),
    "codelinkava": ("/api/chat", CODELINKAVA),
    "openai": ("/chat/completions", OPENAI),
}
TIMEOUT = (2.0, 5.0)


def post(server: EmulatorServer, body: Any = None, **kwargs: Any) -> requests.Response:
    """POST the provider's valid request (or ``body``) to the server."""
    path, valid = VALID[server.provider]
    kwargs.setdefault("timeout", TIMEOUT)
    return requests.post(
        server.url + path, json=valid if body is None else body, **kwargs
    )


def sse_events(data: bytes) -> list[Any]:
    """The ``data:`` payloads of an SSE body with LF or CRLF line ends, JSON-decoded."""
    text = data.decode("utf-8").replace("\r\n", "\n")
    events = [block for block in text.split("\n\n") if block]
    assert all(block.startswith("data: ") for block in events), events
    payloads = [block[len("data: ") :] for block in events]
    return [p if p == "[DONE]" else json.loads(p) for p in payloads]


def sse_text(data: bytes) -> str:
    """The text an SSE chat-chunk stream carries."""
    events = sse_events(data)
    assert events[-1] == "[DONE]"
    return "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1])


def reply_text(server: EmulatorServer, response: requests.Response) -> str:
    """The chat text of a successful response, whatever the provider's encoding."""
    if response.headers["Content-Type"] == "text/event-stream":
        return sse_text(response.content)
    if server.provider == "openai":
        return str(response.json()["choices"][0]["message"]["content"])
    return response.content.decode("utf-8")


def raw_exchange(
    server: EmulatorServer, path: str, body: Any
) -> tuple[bytes, bytes, bool]:
    """Send one request on a raw socket; (head, body bytes, whether it was reset)."""
    payload = json.dumps(body).encode()
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {server.host}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    data, reset = b"", False
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(request.encode() + payload)
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            reset = True
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest, reset


def emulator_threads(server: EmulatorServer) -> list[threading.Thread]:
    """The server's threads still alive (stop() joins them for up to 5 s)."""
    prefix = f"chatproviders-emulator:{server.port}:"
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def dechunk(body: bytes) -> list[bytes]:
    """The chunks of a complete chunked body (without the final empty chunk)."""
    chunks: list[bytes] = []
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            assert body == b"\r\n"
            return chunks
        chunks.append(body[:size])
        assert body[size : size + 2] == b"\r\n"
        body = body[size + 2 :]


def test_all_is_sorted_and_complete() -> None:
    """__all__ is sorted and lists exactly the public names of the package."""
    public = {
        name
        for name, value in vars(chatproviders.testing).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and getattr(value, "__module__", "").startswith("chatproviders.testing")
    }
    names = chatproviders.testing.__all__

    def isort_order(name: str) -> tuple[int, str]:  # constants, classes, functions
        kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
        return kind, name

    assert names == sorted(names, key=isort_order)
    assert set(names) == public


@pytest.mark.parametrize("provider", sorted(VALID))
def test_valid_request_gets_the_greeting(provider: str) -> None:
    """Every provider accepts the PROTOCOLS.md request and answers its greeting."""
    with serve(provider.upper()) as server:
        response = post(server)
        assert response.status_code == 200, response.content
        text = reply_text(server, response)
    assert text.startswith("Hello from the ") and text.endswith(
        " emulator \u2014 ready."
    )
    assert server.requests[0].json == VALID[provider][1]


def test_cromicle_rejects_a_bad_hash(cromicle_server: EmulatorServer) -> None:
    """A Cromicle hash that is not sha256(token + message) gets 400 plain text."""
    response = post(cromicle_server, {**CROMICLE, "hash": "0" * 64})
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert b"hash" in response.content


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({**GPROCHAT, "sign": "0" * 64}, 401),
        ({**GPROCHAT, "time": GPROCHAT_TS + 1}, 401),
        ({**GPROCHAT, "time": str(GPROCHAT_TS)}, 400),
        ({**GPROCHAT, "messages": [{"role": "user", "content": "hello"}]}, 400),
        ({**GPROCHAT, "pass": ""}, 400),
    ],
)
def test_gprochat_rejects_bad_sign_and_shape(body: Any, status: int) -> None:
    """GPROChat answers a bad signature with 401 and a bad shape with 400, as JSON."""
    with serve("gprochat") as server:
        response = post(server, body)
    assert response.status_code == status
    assert isinstance(response.json()["error"]["message"], str)


@pytest.mark.parametrize("provider", ["acytoo", "codelinkava", "openai"])
@pytest.mark.parametrize(
    "messages", ["hello", [], [{"role": "user"}], [{"role": "user", "content": 1}]]
)
def test_bad_messages_get_400(provider: str, messages: Any) -> None:
    """Messages that are not a list of string role/content objects get 400."""
    with serve(provider) as server:
        response = post(server, {**VALID[provider][1], "messages": messages})
    assert response.status_code == 400
    assert b"messages" in response.content


@pytest.mark.parametrize("provider", ["cromicle", "acytoo", "codelinkava"])
def test_stray_fields_and_non_json_get_400(provider: str) -> None:
    """Unexpected fields (e.g. a leaked proxy= kwarg) and non-JSON bodies get 400."""
    with serve(provider) as server:
        response = post(server, {**VALID[provider][1], "proxy": None})
        assert response.status_code == 400
        assert b"proxy" in response.content
        url = server.url + VALID[provider][0]
        assert requests.post(url, data=b"not json", timeout=TIMEOUT).status_code == 400


@pytest.mark.parametrize(
    "head",
    [
        "Content-Length: 99999999999999999999",  # no index fits it
        "Content-Length: 99999999999",  # would allocate 100 GB
        "Transfer-Encoding: chunked\r\n\r\nffffffffff",  # one chunk of 1 TB
    ],
)
def test_oversized_request_bodies_get_400(
    cromicle_server: EmulatorServer, head: str
) -> None:
    """A body announced too big for the emulator is refused, not read."""
    request = f"POST /chat HTTP/1.1\r\nHost: x\r\n{head}\r\n"
    if "chunked" not in head:
        request += "\r\n"
    with socket.create_connection(
        (cromicle_server.host, cromicle_server.port), timeout=5
    ) as sock:
        sock.sendall(request.encode())
        status_line = sock.makefile("rb").readline()
    assert status_line.startswith(b"HTTP/1.1 400 "), status_line
    assert cromicle_server.requests == []


def test_deeply_nested_json_gets_400(cromicle_server: EmulatorServer) -> None:
    """JSON nested past the parser's recursion limit is a bad body, not a crash."""
    url = cromicle_server.url + "/chat"
    response = requests.post(url, data=b"[" * 100_000, timeout=TIMEOUT)
    assert response.status_code == 400
    assert cromicle_server.requests[0].json is None


def test_unknown_path_and_wrong_method(cromicle_server: EmulatorServer) -> None:
    """An unknown path gets 404, a GET of the chat path 405 with Allow: POST."""
    assert (
        requests.post(cromicle_server.url + "/nope", timeout=TIMEOUT).status_code == 404
    )
    response = requests.get(cromicle_server.url + "/chat", timeout=TIMEOUT)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


@pytest.mark.parametrize(
    ("framing", "header", "value"),
    [
        ("chunked", "Transfer-Encoding", "chunked"),
        ("length", "Content-Length", str(len("Hi \u2014 there".encode()))),
        ("close", "Connection", "close"),
    ],
)
def test_framings_deliver_the_exact_text(framing: str, header: str, value: str) -> None:
    """Each framing delivers the exact bytes and announces itself in the headers."""
    with serve("cromicle", text="Hi \u2014 there", chunk_size=2, framing=framing) as s:
        response = post(s)
    assert response.content == "Hi \u2014 there".encode()
    assert response.headers[header] == value
    others = {"Transfer-Encoding", "Content-Length"} - {header}
    assert not others & set(response.headers)


def test_chunk_size_gives_one_http_chunk_per_write(
    cromicle_server: EmulatorServer,
) -> None:
    """chunk_size=3 writes the text three characters per HTTP chunk."""
    cromicle_server.set_reply(text="abcdefgh", chunk_size=3)
    head, body, _ = raw_exchange(cromicle_server, "/chat", CROMICLE)
    assert b"Transfer-Encoding: chunked" in head
    assert dechunk(body) == [b"abc", b"def", b"gh"]


def test_explicit_chunks_are_written_as_given(cromicle_server: EmulatorServer) -> None:
    """chunks=[...] are written one per HTTP chunk, and the text is their join."""
    reply = cromicle_server.set_reply(chunks=["Hel", "lo", "!"])
    assert reply.text == "Hello!" and cromicle_server.reply is reply
    _, body, _ = raw_exchange(cromicle_server, "/chat", CROMICLE)
    assert dechunk(body) == [b"Hel", b"lo", b"!"]


def test_queued_replies_are_used_first_in_order(
    cromicle_server: EmulatorServer,
) -> None:
    """Queued replies answer the next requests in order, then the default returns."""
    cromicle_server.set_reply(text="default")
    cromicle_server.queue_reply(text="one")
    cromicle_server.queue_reply(status=500, body="two")
    cromicle_server.queue_reply(text="three", framing="close")
    answers = [
        (r.status_code, r.text) for r in (post(cromicle_server) for _ in range(4))
    ]
    assert answers == [(200, "one"), (500, "two"), (200, "three"), (200, "default")]


def test_429_with_retry_after_then_success(cromicle_server: EmulatorServer) -> None:
    """A queued 429 carries Retry-After and its body; the retry gets the reply."""
    cromicle_server.queue_reply(
        status=429, headers={"Retry-After": "2"}, body="slow down"
    )
    first, second = post(cromicle_server), post(cromicle_server)
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "2"
    assert first.content == b"slow down"
    assert second.status_code == 200
    assert len(cromicle_server.requests) == 2


@pytest.mark.parametrize("status", [200, 403])
def test_html_bot_wall(cromicle_server: EmulatorServer, status: int) -> None:
    """An HTML body is served as text/html with the chosen status."""
    page = "<!DOCTYPE html><html><body>Just a moment...</body></html>"
    cromicle_server.set_reply(status=status, body=page)
    response = post(cromicle_server)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.content == page.encode()


def test_error_status_without_body_uses_the_provider_shape() -> None:
    """status=500 without a body gets the provider's own JSON error (GPROChat)."""
    with serve("gprochat", status=500) as server:
        response = post(server)
    assert response.status_code == 500
    assert response.json() == {"error": {"message": "Internal Server Error"}}


def test_stall_after_times_out_the_client_and_stop_is_prompt() -> None:
    """stall_after=N sends N bytes then nothing; stop() still returns at once."""
    with serve("cromicle", text="abcdef", stall_after=3, framing="length") as server:
        response = post(server, stream=True, timeout=(2.0, 0.3))
        with response:
            pieces = response.iter_content(1)
            assert b"".join(next(pieces) for _ in range(3)) == b"abc"
            with pytest.raises(requests.exceptions.ConnectionError):
                next(pieces)
            server.stop()  # the client still holds the stalled connection open
            assert emulator_threads(server) == []  # woken and joined, not given up


def test_stop_interrupts_a_long_delay() -> None:
    """stop() does not wait for a handler sleeping between two writes."""
    server = serve("cromicle", chunks=["a", "b"], delay=60.0)
    with server, post(server, stream=True) as response:
        assert next(response.iter_content(1)) == b"a"
        server.stop()
        assert emulator_threads(server) == []  # woken and joined, not given up


def test_stall_after_zero_stalls_right_after_the_headers() -> None:
    """stall_after=0 sends the headers, then nothing."""
    with serve("cromicle", stall_after=0) as server:
        response = post(server, stream=True, timeout=(2.0, 0.2))
        assert response.status_code == 200
        with response, pytest.raises(requests.exceptions.ConnectionError):
            next(response.iter_content(1))


def test_stall_ends_when_the_client_closes() -> None:
    """A stalled handler finishes as soon as the client closes its connection."""
    with serve("cromicle", text="abcdef", stall_after=2) as server:
        with socket.create_connection((server.host, server.port), timeout=5) as sock:
            payload = json.dumps(CROMICLE).encode()
            head = f"POST /chat HTTP/1.1\r\nContent-Length: {len(payload)}\r\n\r\n"
            sock.sendall(head.encode() + payload)
            data = b""
            while not data.endswith(b"\r\n\r\n2\r\nab\r\n"):
                data += sock.recv(1)
            prefix = f"chatproviders-emulator:{server.port}:connection-"
            (handler,) = [t for t in threading.enumerate() if t.name.startswith(prefix)]
            handler.join(timeout=0.2)
            assert handler.is_alive()  # stalled
        handler.join(timeout=2.0)
        assert not handler.is_alive()


@pytest.mark.parametrize("framing", ["chunked", "length", "close"])
def test_reset_after_sends_n_bytes_then_rst(framing: str) -> None:
    """reset_after=N delivers N body bytes, then the connection is reset."""
    with serve("cromicle", text="abcdefgh", reset_after=5, framing=framing) as server:
        head, body, reset = raw_exchange(server, "/chat", CROMICLE)
        assert reset
        assert head.startswith(b"HTTP/1.1 200 OK")
        assert body in (b"abcde", b"5\r\nabcde\r\n")
        broken = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)
        with pytest.raises(broken):
            post(server)  # reads the whole body


def test_split_utf8_cuts_a_character_between_two_writes(
    cromicle_server: EmulatorServer,
) -> None:
    """split_utf8 puts the lead byte of the em dash and its tail in two chunks."""
    cromicle_server.set_reply(text="ab\u2014cd", split_utf8=True)
    _, body, _ = raw_exchange(cromicle_server, "/chat", CROMICLE)
    chunks = dechunk(body)
    assert chunks == [b"ab\xe2", b"\x80\x94cd"]
    assert b"".join(chunks).decode("utf-8") == "ab\u2014cd"


def test_split_utf8_in_sse_and_length_framing() -> None:
    """split_utf8 works inside SSE events and with Content-Length framing too."""
    with serve("codelinkava", split_utf8=True, framing="length") as server:
        response = post(server)
    assert response.headers["Content-Length"] == str(len(response.content))
    assert sse_text(response.content) == server.reply.text


def test_codelinkava_sse_shape() -> None:
    """CodeLinkAva streams OpenAI chat chunks: role, contents, stop, then [DONE]."""
    with serve("codelinkava", chunks=["Hel", "lo ", "\u00e9t\u00e9"]) as server:
        response = post(server)
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.content.endswith(b"data: [DONE]\n\n")
    *chunks, done = sse_events(response.content)
    assert done == "[DONE]"
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert {c["model"] for c in chunks} == {"gpt-3.5-turbo"}
    assert len({c["id"] for c in chunks}) == 1
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas == [
        {"role": "assistant"},
        {"content": "Hel"},
        {"content": "lo "},
        {"content": "\u00e9t\u00e9"},
        {},
    ]
    finish = [c["choices"][0]["finish_reason"] for c in chunks]
    assert finish == [None, None, None, None, "stop"]
    assert "\u00e9t\u00e9".encode() in response.content  # raw UTF-8, not \\u escapes


def test_split_crlf_splits_each_event_line_end() -> None:
    """split_crlf uses CRLF and puts the CR and the LF in separate HTTP chunks."""
    with serve("codelinkava", split_crlf=True) as server:
        _, body, _ = raw_exchange(server, "/api/chat", CODELINKAVA)
    chunks = dechunk(body)
    assert len(chunks) == 2 * 4  # role, content, stop, [DONE]; two writes each
    for cr_end, lf_start in zip(chunks[::2], chunks[1::2]):
        assert cr_end.endswith(b"\r") and not cr_end.endswith(b"\r\n")
        assert lf_start == b"\n\r\n"
    assert sse_text(b"".join(chunks)) == server.reply.text


def test_openai_stream_echoes_the_model() -> None:
    """openai with stream=true streams chunks of the requested model, then [DONE]."""
    with serve("openai", text="Hi \u2014 you", chunk_size=3) as server:
        body = {**OPENAI, "model": "gpt-4o-mini", "stream": True}
        response = post(server, body)
    assert server.url.endswith("/v1")
    assert server.requests[0].path == "/v1/chat/completions"
    assert response.headers["Content-Type"] == "text/event-stream"
    assert sse_text(response.content) == "Hi \u2014 you"
    models = {e["model"] for e in sse_events(response.content)[:-1]}
    assert models == {"gpt-4o-mini"}


def test_openai_non_stream_returns_a_chat_completion() -> None:
    """openai with stream=false returns one chat.completion JSON object."""
    with serve("openai", text="Hello there") as server:
        response = post(server, {**OPENAI, "temperature": 0.2, "max_tokens": 5})
    payload = response.json()
    assert payload["object"] == "chat.completion"
    assert payload["model"] == "gpt-3.5-turbo"
    assert payload["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Hello there",
    }
    assert payload["choices"][0]["finish_reason"] == "stop"


def test_openai_models_listing_and_unknown_model() -> None:
    """GET /models lists the models; an unknown model gets 404 model_not_found."""
    with serve("openai", models=["m-1", "m-2"]) as server:
        listing = requests.get(server.url + "/models", timeout=TIMEOUT).json()
        one = requests.get(server.url + "/models/m-2", timeout=TIMEOUT)
        missing = post(server, {**OPENAI, "model": "gpt-3.5-turbo"})
    assert listing["object"] == "list"
    assert [(m["id"], m["object"]) for m in listing["data"]] == [
        ("m-1", "model"),
        ("m-2", "model"),
    ]
    assert one.json()["id"] == "m-2"
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "model_not_found"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": "Bearer sk-test"}, 200),
    ],
)
def test_openai_api_key(headers: dict[str, str], status: int) -> None:
    """With api_key set, only 'Authorization: Bearer <key>' gets through."""
    with serve("openai", api_key="sk-test") as server:
        chat = post(server, headers=headers)
        models = requests.get(server.url + "/models", headers=headers, timeout=TIMEOUT)
    assert (chat.status_code, models.status_code) == (status, status)
    if status == 401:
        error = chat.json()["error"]
        assert error["code"] == "invalid_api_key"
        assert error["type"] == "invalid_request_error"
        assert "sk-test" not in chat.text


@pytest.mark.parametrize(
    ("framing", "connections"), [("chunked", 1), ("length", 1), ("close", 2)]
)
def test_keep_alive(framing: str, connections: int) -> None:
    """Two requests on a Session share one connection unless the framing is close."""
    with serve("cromicle", framing=framing) as server, requests.Session() as session:
        for _ in range(2):
            response = session.post(
                server.url + "/chat", json=CROMICLE, timeout=TIMEOUT
            )
            assert response.status_code == 200
        assert server.connections == connections


def test_requests_are_recorded() -> None:
    """Each request is recorded with method, path, lower-cased headers, body, JSON."""
    with serve("gprochat") as server:
        raw = json.dumps(GPROCHAT).encode()
        headers = {"Content-Type": "text/plain;charset=UTF-8", "X-Test": "1"}
        url = server.url + "/api/generate?x=1"
        requests.post(url, data=raw, headers=headers, timeout=TIMEOUT)
        requests.get(server.url + "/", timeout=TIMEOUT)
        first, second = server.wait_for_requests(2)
    assert (first.method, first.path, first.route) == (
        "POST",
        "/api/generate?x=1",
        "/api/generate",
    )
    assert first.headers["content-type"] == "text/plain;charset=UTF-8"
    assert first.headers["x-test"] == "1"
    assert first.body == raw and first.json == GPROCHAT
    assert (second.method, second.body, second.json) == ("GET", b"", None)


def test_chunked_request_bodies_are_read(cromicle_server: EmulatorServer) -> None:
    """A request body sent with Transfer-Encoding: chunked is read and checked."""
    raw = json.dumps(CROMICLE).encode()
    parts = iter([raw[:10], raw[10:]])
    response = requests.post(cromicle_server.url + "/chat", data=parts, timeout=TIMEOUT)
    assert response.status_code == 200
    assert cromicle_server.requests[0].body == raw


def test_delay_sends_the_first_piece_at_once() -> None:
    """With a delay, the first piece comes at once and the next only after it
    (length framing): a read waiting far less than the delay gets nothing."""
    with serve("cromicle", chunks=["a", "b"], delay=60.0, framing="length") as server:
        with post(server, stream=True) as response:
            assert response.raw.read(1) == b"a"
            response.raw.connection.sock.settimeout(0.1)  # 60 s is far off
            with pytest.raises(urllib3.exceptions.ReadTimeoutError):
                response.raw.read(1)


def test_stop_is_idempotent_and_closes_idle_keep_alive_connections() -> None:
    """stop() returns promptly with an idle keep-alive connection, twice over."""
    server = EmulatorServer("acytoo").start()
    with requests.Session() as session:
        assert session.post(
            server.url + "/api/completions", json=ACYTOO, timeout=TIMEOUT
        ).ok
        server.stop()
        server.stop()
        assert emulator_threads(server) == []  # woken and joined, not given up
        with pytest.raises(requests.exceptions.ConnectionError):
            session.post(server.url + "/api/completions", json=ACYTOO, timeout=TIMEOUT)
    with pytest.raises(RuntimeError):
        server.start()
    assert "stopped" in repr(server)


def test_replacing_text_drops_chunks_and_back(cromicle_server: EmulatorServer) -> None:
    """set_reply(reply, text=...) drops the reply's chunks; chunks=... its text."""
    chunked = Reply(chunks=["a", "b"], delay=0.5)
    assert cromicle_server.set_reply(chunked, text="xyz").text_chunks() == ["xyz"]
    again = cromicle_server.set_reply(cromicle_server.reply, chunks=["c", "d"])
    assert (again.text, again.delay) == ("cd", 0.5)
    assert (
        cromicle_server.set_reply().text
        == "Hello from the Cromicle emulator \u2014 ready."
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"framing": "gzip"},
        {"chunk_size": 0},
        {"chunks": ["a"], "chunk_size": 1},
        {"text": "a", "chunks": ["b"]},
        {"delay": -1.0},
        {"status": 99},
        {"stall_after": 1, "reset_after": 1},
        {"reset_after": -1},
        {"text": "ascii", "split_utf8": True},
        {"stall_after": True},
        {"headers": {"X-Number": 1}},
        {"status": 100},
        {"status": 500, "body": {"error": "not encoded"}},
        {"status": 500, "split_utf8": True},  # the error shape is ASCII
        {"headers": {"X-A": "a\r\nInjected: 1"}},
        {"headers": {"X-A": "\u2603"}},
        {"text": "\ud800"},
        {"status": 500, "body": "\ud800"},
    ],
)
def test_invalid_replies_are_refused(fields: dict[str, Any]) -> None:
    """Reply refuses contradictory or out-of-range settings."""
    with pytest.raises((ValueError, TypeError)):
        Reply(**fields)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"provider": "bing"},
        {"provider": "cromicle", "host": "0.0.0.0"},
        {"provider": "cromicle", "api_key": "sk"},
        {"provider": "cromicle", "textt": "typo"},
        {"provider": "openai", "api_key": "a b"},
        {"provider": "openai", "api_key": 5},
        {"provider": "cromicle", "port": True},
        {"provider": "cromicle", "port": 70000},
    ],
)
def test_invalid_servers_are_refused(kwargs: dict[str, Any]) -> None:
    """Unknown providers, non-loopback hosts, misplaced options, typos are refused."""
    with pytest.raises((ValueError, TypeError)):
        EmulatorServer(**kwargs)


def test_text_in_place_of_a_reply_is_refused() -> None:
    """serve(provider, "text") names the keyword to use instead."""
    with pytest.raises(TypeError, match="text="):
        serve("cromicle", "Hi there")  # type: ignore[arg-type]


def test_wait_for_requests_returns_the_first_count() -> None:
    """wait_for_requests(n) returns n requests, however many have arrived."""
    with serve("cromicle") as server:
        for _ in range(3):
            assert post(server).ok
        first, second = server.wait_for_requests(2)
    assert len(server.requests) == 3
    assert [first, second] == server.requests[:2]


@pytest.mark.parametrize("timeout", [float("nan"), -1.0, float("inf")])
def test_wait_for_requests_takes_finite_seconds(
    cromicle_server: EmulatorServer, timeout: float
) -> None:
    """A timeout that is not finite seconds >= 0 is a ValueError, not a spin."""
    with pytest.raises(ValueError, match="timeout"):
        cromicle_server.wait_for_requests(1, timeout)


def test_wait_for_requests_times_out(cromicle_server: EmulatorServer) -> None:
    """wait_for_requests raises TimeoutError when too few requests arrive."""
    with pytest.raises(TimeoutError):
        cromicle_server.wait_for_requests(1, timeout=0.05)


@pytest.mark.parametrize(
    "fixture",
    [
        "cromicle_server",
        "acytoo_server",
        "gprochat_server",
        "codelinkava_server",
        "openai_server",
    ],
)
def test_pytest_fixtures_serve_each_provider(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    """Each plugin fixture yields a started emulator of its provider."""
    server = request.getfixturevalue(fixture)
    assert server.provider == fixture[: -len("_server")]
    assert post(server).status_code == 200
