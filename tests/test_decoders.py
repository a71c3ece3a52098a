"""Tests for chatproviders.decoders: byte-level lines, text and SSE decoding."""

from __future__ import annotations

import random
import re
from typing import Iterable

import pytest

from chatproviders import ResponseFormatError
from chatproviders.decoders import (
    LineSplitter,
    ServerSentEvent,
    SSEDecoder,
    iter_lines,
    iter_ndjson,
    iter_sse,
    iter_text,
)

# ---------------------------------------------------------------- helpers


def split_at(body: bytes, *cuts: int) -> list[bytes]:
    """Cut *body* at the given positions (sorted, may include 0 / len)."""
    bounds = [0, *sorted(cuts), len(body)]
    return [body[a:b] for a, b in zip(bounds, bounds[1:])]


def one_byte_chunks(body: bytes) -> list[bytes]:
    return [body[i : i + 1] for i in range(len(body))]


def split_lines(chunks: Iterable[bytes]) -> list[bytes]:
    splitter = LineSplitter()
    out: list[bytes] = []
    for chunk in chunks:
        out.extend(splitter.feed(chunk))
    out.extend(splitter.flush())
    return out


def reference_lines(body: bytes) -> list[bytes]:
    """Independent oracle: regex split, minus the empty piece after a final EOL."""
    parts = re.split(rb"\r\n|\r|\n", body)
    if parts[-1] == b"":
        parts.pop()
    return parts


def decode_sse(chunks: Iterable[bytes]) -> list[ServerSentEvent]:
    return list(iter_sse(chunks))


# Multi-line CRLF content, a lone CR, mixed terminators, 2/3/4-byte UTF-8 characters.
LINES_BODY = (
    "héllo\r\nwörld €\r\n\r\nemoji 😀 here\rlone cr\nlf only\r\n"
    "\r\r\nlast 😀 unterminated"
).encode()

SSE_BODY_LF = (
    ": keep-alive\n"
    "event: delta\n"
    "id: 1\n"
    "data: héllo\n"
    "data: wörld €\n"
    "\n"
    "retry: 2500\n"
    "data: 😀\n"
    "\n"
    'data:{"a": 1}\n'
    "\n"
)
SSE_EVENTS = [
    ServerSentEvent(data="héllo\nwörld €", event="delta", id="1"),
    ServerSentEvent(data="😀", id="1", retry=2500),
    ServerSentEvent(data='{"a": 1}', id="1", retry=2500),
]


# ---------------------------------------------------------------- LineSplitter


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"a\nb\n", [b"a", b"b"]),
        (b"a\rb\r", [b"a", b"b"]),
        (b"a\r\nb\r\n", [b"a", b"b"]),
        (b"a\nb\rc\r\nd\n", [b"a", b"b", b"c", b"d"]),
        (b"\n\n", [b"", b""]),
        (b"\r\r", [b"", b""]),
        (b"\r\n\r\n", [b"", b""]),
        (b"\n\r", [b"", b""]),
        (b"a\r\rb\n", [b"a", b"", b"b"]),
        (b"no terminators", []),
    ],
    ids=[
        "lf",
        "cr",
        "crlf",
        "mixed",
        "empty-lf",
        "empty-cr",
        "empty-crlf",
        "lf-cr",
        "cr-cr",
        "none",
    ],
)
def test_line_endings(body: bytes, expected: list[bytes]) -> None:
    """LF, CR and CRLF (alone or mixed) each end exactly one line, fed in one piece."""
    assert LineSplitter().feed(body) == expected


def test_crlf_split_across_feeds_is_one_line_end() -> None:
    """A CR ending one feed and the LF starting the next make a single line end."""
    splitter = LineSplitter()
    assert splitter.feed(b"a\r") == [b"a"]
    assert splitter.feed(b"\nb\n") == [b"b"]
    assert splitter.flush() == []


def test_trailing_cr_then_lf_only_feed() -> None:
    """A feed holding just the LF of a split CRLF yields nothing, not an empty line."""
    splitter = LineSplitter()
    assert splitter.feed(b"a\r") == [b"a"]
    assert splitter.feed(b"") == []
    assert splitter.feed(b"\n") == []
    assert splitter.feed(b"\n") == [b""]


@pytest.mark.parametrize(
    ("second", "expected"),
    [(b"b\n", [b"b"]), (b"\rb\n", [b"", b"b"]), (b"\n", [])],
    ids=["other-byte", "another-cr", "lf"],
)
def test_trailing_cr_followed_by(second: bytes, expected: list[bytes]) -> None:
    """A CR ending a feed ends its line at once; only an LF just after it is dropped."""
    splitter = LineSplitter()
    assert splitter.feed(b"a\r") == [b"a"]
    assert splitter.feed(second) == expected


def test_partial_line_accumulates_over_feeds() -> None:
    """A line spread over several feeds comes out once, joined, at its terminator."""
    splitter = LineSplitter()
    assert splitter.feed(b"ab") == []
    assert splitter.feed(b"cd") == []
    assert splitter.feed(b"e\nf") == [b"abcde"]
    assert splitter.flush() == [b"f"]


@pytest.mark.parametrize(
    ("body", "tail"),
    [
        (b"a\nrest", [b"rest"]),
        (b"a\n", []),
        (b"a\r", []),
        (b"", []),
        (b"only", [b"only"]),
    ],
)
def test_flush_returns_unterminated_tail(body: bytes, tail: list[bytes]) -> None:
    """flush() returns the unterminated last line (0 or 1 items) and resets."""
    splitter = LineSplitter()
    splitter.feed(body)
    assert splitter.flush() == tail
    assert splitter.flush() == []
    assert splitter.feed(b"\nx\n") == [b"", b"x"]


def test_reference_matches_whole_body() -> None:
    """Fed whole, the splitter agrees with an independent regex split."""
    assert split_lines([LINES_BODY]) == reference_lines(LINES_BODY)
    assert reference_lines(LINES_BODY)[-1] == "last 😀 unterminated".encode()


@pytest.mark.parametrize("cut", range(len(LINES_BODY) + 1))
def test_every_single_split_point(cut: int) -> None:
    """Splitting the body at any one byte position gives the same lines as whole."""
    assert split_lines(split_at(LINES_BODY, cut)) == reference_lines(LINES_BODY)


def test_every_pair_of_split_points() -> None:
    """Splitting a short CR/LF-heavy body at any two positions gives the same lines."""
    body = b"a\r\n\r\rb\n\r\nc\r"
    expected = reference_lines(body)
    for i in range(len(body) + 1):
        for j in range(i, len(body) + 1):
            assert split_lines(split_at(body, i, j)) == expected, (i, j)


def test_one_byte_per_feed() -> None:
    """Feeding one byte at a time gives the same lines as feeding the body whole."""
    assert split_lines(one_byte_chunks(LINES_BODY)) == reference_lines(LINES_BODY)


def test_random_chunkings_of_large_body() -> None:
    """Seeded random chunkings of a larger mixed body always give the same lines."""
    rng = random.Random(1234)
    pieces = [
        rng.choice([b"x", b"yy", "é".encode(), "😀".encode(), b"\r", b"\n", b"\r\n"])
        for _ in range(5000)
    ]
    body = b"".join(pieces)
    expected = reference_lines(body)
    for _ in range(20):
        cuts = sorted(rng.sample(range(len(body)), 200))
        assert split_lines(split_at(body, *cuts)) == expected


# ---------------------------------------------------------------- iter_text


@pytest.mark.parametrize("char", ["é", "€", "😀"], ids=["2-byte", "3-byte", "4-byte"])
def test_multibyte_char_split_at_every_position(char: str) -> None:
    """A 2, 3 or 4-byte character split at every byte position comes out whole."""
    body = char.encode()
    for cut in range(1, len(body)):
        assert list(iter_text(split_at(body, cut))) == [char]
    assert list(iter_text(one_byte_chunks(body))) == [char]


TEXT = "aé€😀 mixed ✓ text\r\nwith 😀😀 lines\n"


@pytest.mark.parametrize("cut", range(len(TEXT.encode()) + 1))
def test_text_join_equals_original_for_every_split(cut: int) -> None:
    """At every split point the joined output equals the original; no empty strings."""
    out = list(iter_text(split_at(TEXT.encode(), cut)))
    assert "".join(out) == TEXT
    assert "" not in out


def test_text_one_byte_per_feed() -> None:
    """Feeding one byte at a time reproduces the text and yields no empty string."""
    out = list(iter_text(one_byte_chunks(TEXT.encode())))
    assert "".join(out) == TEXT
    assert "" not in out


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b"a\xffb"], "a\ufffdb"),
        ([b"a\xff", b"b"], "a\ufffdb"),
        ([b"\xe2\x82", b"x"], "\ufffdx"),
        ([b"ok\xe2\x82"], "ok\ufffd"),
        ([b"ok", b"\xf0\x9f\x98"], "ok\ufffd"),
    ],
    ids=[
        "invalid-byte",
        "invalid-byte-then-chunk",
        "broken-sequence",
        "truncated-eof",
        "truncated-eof-own-chunk",
    ],
)
def test_text_invalid_bytes_become_replacement(
    chunks: list[bytes], expected: str
) -> None:
    """Invalid bytes and a character truncated at EOF become U+FFFD, never lost."""
    out = list(iter_text(chunks))
    assert "".join(out) == expected
    assert "" not in out


def test_text_yields_no_empty_strings() -> None:
    """Empty chunks and chunks holding only a partial character yield nothing."""
    assert list(iter_text([b"", b"\xf0", b"\x9f", b"", b"\x98", b"\x80", b""])) == [
        "😀"
    ]
    assert list(iter_text([])) == []
    assert list(iter_text([b""])) == []


# ---------------------------------------------------------------- SSE


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"data:x\n\n", "x"),
        (b"data: x\n\n", "x"),
        (b"data:  x\n\n", " x"),
        (b"data: x \n\n", "x "),
        (b"data:\n\n", ""),
        (b"data\n\n", ""),
        (b"data: a:b: c\n\n", "a:b: c"),
    ],
    ids=[
        "no-space",
        "one-space",
        "two-spaces",
        "trailing-space",
        "empty-value",
        "no-colon",
        "colons-in-value",
    ],
)
def test_sse_data_value(body: bytes, expected: str) -> None:
    """One space after the colon is removed, no more; a bare name has empty value."""
    assert decode_sse([body]) == [ServerSentEvent(data=expected)]


def test_sse_comments_ignored() -> None:
    """Lines starting with a colon are comments and never produce or alter events."""
    body = b": ping\n\n:\n\ndata: a\n: inside\ndata: b\n\n"
    assert decode_sse([body]) == [ServerSentEvent(data="a\nb")]


def test_sse_multiline_data_joined_with_newline() -> None:
    """Several data lines join with a single newline, including empty data lines."""
    body = b"data: one\ndata:\ndata: three\n\n"
    assert decode_sse([body]) == [ServerSentEvent(data="one\n\nthree")]


def test_sse_event_id_retry_fields() -> None:
    """event sets the type for one event only; id and retry persist across events."""
    body = b"event: delta\nid: 7\nretry: 3000\ndata: a\n\ndata: b\n\nid: 8\ndata: c\n\n"
    assert decode_sse([body]) == [
        ServerSentEvent(data="a", event="delta", id="7", retry=3000),
        ServerSentEvent(data="b", id="7", retry=3000),
        ServerSentEvent(data="c", id="8", retry=3000),
    ]


@pytest.mark.parametrize(
    "value", [b"12a", b"-1", b"  5", b"1.5", b"", "\u0665".encode()]
)
def test_sse_retry_non_digits_ignored(value: bytes) -> None:
    """A retry value that is not all ASCII digits is ignored."""
    body = b"retry: 10\n\nretry:" + value + b"\ndata: x\n\n"
    assert decode_sse([body]) == [ServerSentEvent(data="x", retry=10)]


def test_sse_id_with_nul_ignored_and_empty_id_resets() -> None:
    """An id containing NUL is ignored; an empty id sets the last event id to ""."""
    body = b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\nid\ndata: c\n\n"
    assert [e.id for e in decode_sse([body])] == ["1", "1", ""]


def test_sse_unknown_fields_ignored() -> None:
    """Unknown field names (and a field name that differs only in case) are ignored."""
    body = b"foo: bar\nData: nope\nEVENT: x\ndata: ok\n\n"
    assert decode_sse([body]) == [ServerSentEvent(data="ok")]


def test_sse_blank_line_without_data_dispatches_nothing() -> None:
    """A block with no data line dispatches nothing and resets the event type."""
    body = b"event: lost\n\ndata: x\n\n"
    assert decode_sse([body]) == [ServerSentEvent(data="x")]


def test_sse_empty_event_type_is_message() -> None:
    """An empty event field leaves the type as "message"."""
    assert decode_sse([b"event:\ndata: x\n\n"]) == [ServerSentEvent(data="x")]


@pytest.mark.parametrize(
    "terminator", [b"\n", b"\r", b"\r\n"], ids=["lf", "cr", "crlf"]
)
def test_sse_line_endings_give_identical_events(terminator: bytes) -> None:
    """LF-only, CR-only and CRLF streams decode to identical events."""
    body = SSE_BODY_LF.encode().replace(b"\n", terminator)
    assert decode_sse([body]) == SSE_EVENTS


@pytest.mark.parametrize(
    "terminator", [b"\n", b"\r", b"\r\n"], ids=["lf", "cr", "crlf"]
)
def test_sse_every_split_point(terminator: bytes) -> None:
    """Splitting at any byte position, or one byte per feed, gives identical events."""
    body = SSE_BODY_LF.encode().replace(b"\n", terminator)
    for cut in range(len(body) + 1):
        assert decode_sse(split_at(body, cut)) == SSE_EVENTS, cut
    assert decode_sse(one_byte_chunks(body)) == SSE_EVENTS


def test_sse_incomplete_final_event_discarded() -> None:
    """At EOF an event lacking its blank line, and an unterminated line, are dropped."""
    assert decode_sse([b"data: a\n\ndata: b\n"]) == [ServerSentEvent(data="a")]
    assert decode_sse([b"data: a\n\ndata: b"]) == [ServerSentEvent(data="a")]
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: b\nid: 9") == [ServerSentEvent(data="a")]
    assert decoder.flush() == []


def test_sse_flush_resets_for_new_stream() -> None:
    """After flush the half-built event is gone, but the last event id carries over."""
    decoder = SSEDecoder()
    decoder.feed(b"id: 5\nevent: old\ndata: stale\n")
    decoder.flush()
    assert decoder.feed(b"data: fresh\n\n") == [ServerSentEvent(data="fresh", id="5")]


@pytest.mark.parametrize(
    "chunks",
    [
        [b"\xef\xbb\xbfdata: x\n\n"],
        [b"\xef", b"\xbb", b"\xbfdata: x\n\n"],
        [b"\xef\xbb\xbf", b"data: x\n\n"],
    ],
    ids=["whole", "bom-split", "bom-own-chunk"],
)
def test_sse_bom_skipped(chunks: list[bytes]) -> None:
    """A UTF-8 BOM at the very start is skipped, even when split across feeds."""
    assert decode_sse(chunks) == [ServerSentEvent(data="x")]


def test_sse_bom_skipped_only_once() -> None:
    """A BOM later in the stream is not stripped: it is part of the name or data."""
    body = "\ufeffdata: a\n\n\ufeffdata: b\n\ndata: \ufeffc\n\n".encode()
    assert decode_sse([body]) == [
        ServerSentEvent(data="a"),
        ServerSentEvent(data="\ufeffc"),
    ]


def test_sse_event_returned_by_the_feed_that_completes_it() -> None:
    """feed() returns an event as soon as its blank line arrives, not a feed later."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\ndata: b\n\ndata: c") == [
        ServerSentEvent(data="a"),
        ServerSentEvent(data="b"),
    ]
    assert decoder.feed(b"\n\r") == [ServerSentEvent(data="c")]


def test_iter_sse_yields_before_next_chunk_is_read() -> None:
    """iter_sse yields an event before pulling the next chunk from the source."""
    pulled: list[int] = []

    def source() -> Iterable[bytes]:
        pulled.append(1)
        yield b"data: a\n\n"
        pulled.append(2)
        yield b"data: b\n\n"

    events = iter_sse(source())
    assert next(events) == ServerSentEvent(data="a")
    assert pulled == [1]
    assert next(events) == ServerSentEvent(data="b")
    assert list(events) == []


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b"data: a\xffb\n\n"], "a\ufffdb"),
        ([b"data: \xe2\x82\n\n"], "\ufffd"),
        ([b"data: \xe2", b"\x82\xac\n\n"], "€"),
    ],
    ids=["invalid-byte", "truncated-char-at-line-end", "valid-char-split-across-feeds"],
)
def test_sse_utf8_handling(chunks: list[bytes], expected: str) -> None:
    """Invalid UTF-8 in data becomes U+FFFD; a char split across feeds stays whole."""
    assert decode_sse(chunks) == [ServerSentEvent(data=expected)]


def test_sse_defaults() -> None:
    """ServerSentEvent defaults to "message" with no id or retry, and is immutable."""
    event = ServerSentEvent(data="x")
    assert (event.event, event.id, event.retry) == ("message", None, None)
    with pytest.raises(AttributeError):
        event.data = "y"  # type: ignore[misc]


# -- iter_lines and iter_ndjson (public, for providers of your own) -----------


@pytest.mark.parametrize("cut", range(1, len(b"one\r\ntw\xc3\xa9\rthree\nlast")))
def test_lines_split_anywhere_are_the_same_lines(cut: int) -> None:
    """iter_lines gives the same str lines for CR, LF and CRLF wherever the
    body is cut, a multi-byte character or a CRLF included, and keeps a last
    line without a terminator."""
    body = b"one\r\ntw\xc3\xa9\rthree\nlast"
    assert list(iter_lines([body[:cut], body[cut:]])) == ["one", "twé", "three", "last"]


def test_lines_keep_empty_lines_and_drop_nothing_at_the_end() -> None:
    """Blank lines are lines; a body ending in a terminator has no extra line."""
    assert list(iter_lines([b"a\n\nb\r\n", b"\r\n"])) == ["a", "", "b", ""]
    assert list(iter_lines([])) == []


def test_ndjson_one_value_per_non_blank_line_across_reads() -> None:
    """Each non-blank line is one JSON value, however the reads cut it."""
    body = b'{"delta": "H\xc3\xa9"}\n\n  \r\n{"done": true}'
    for cut in range(1, len(body)):
        values = list(iter_ndjson([body[:cut], body[cut:]]))
        assert values == [{"delta": "Hé"}, {"done": True}]


def test_ndjson_line_that_is_not_json_is_a_format_error() -> None:
    """A line that is not JSON raises ResponseFormatError quoting it."""
    with pytest.raises(ResponseFormatError, match="not JSON: 'oops'") as caught:
        list(iter_ndjson([b'{"a": 1}\noops\n']))
    assert caught.value.body == "oops"


def test_sse_retry_takes_at_most_nine_digits() -> None:
    """retry: of nine digits is read; of ten or more it is ignored, as a value
    no client waits for."""
    nine = next(iter_sse([b"retry: 123456789\ndata: x\n\n"]))
    ten = next(iter_sse([b"retry: 1234567890\ndata: x\n\n"]))
    assert (nine.retry, ten.retry) == (123456789, None)
