"""The per-event cost of the Responses stream, against the chat SSE path and
against the OpenAI SDK's ``responses.stream``, on the same machine, in CPU time.

    python benchmarks/responses.py [--events 100000] [--rounds 5]

Bodies are built in memory, one text delta per event, cut into 16 KB pieces:
a chat-completions stream (``chat.completion.chunk`` events as OpenAI sends
them) and a Responses stream of the same text (``response.output_text.delta``
events as OpenAI sends them, between ``response.created`` and
``response.completed``). Ours reads each through its stream class
(:class:`ChatStream`, :class:`ResponsesStream`); the SDK reads the Responses
bytes through ``client.responses.stream(...)`` over an in-memory httpx
transport, so no network is timed. Each figure is the best of 3 passes in
CPU time (``time.process_time``); rounds give the spread.
Targets: Responses within 1.2x of chat per event; at least 10x the SDK's
events per second.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chatproviders._responses import ResponsesStream, iter_response_events
from chatproviders._streams.chat_stream import ChatStream
from chatproviders._streams.openai_chunks import iter_chat_reply_events

WORDS = ["Hello", " wor", "ld", " \u2014", " ça", " va", "?", " 42"]


def chat_body(events: int) -> bytes:
    base = {
        "id": "chatcmpl-8x",
        "object": "chat.completion.chunk",
        "created": 1765000000,
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp_1",
    }
    out = []
    for number in range(events):
        choice = {
            "index": 0,
            "delta": {"content": WORDS[number % len(WORDS)]},
            "logprobs": None,
            "finish_reason": None,
        }
        out.append(f"data: {json.dumps({**base, 'choices': [choice]})}\n\n")
    out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def responses_body(events: int) -> bytes:
    response = {
        "id": "resp_1",
        "object": "response",
        "created_at": 1765000000,
        "status": "in_progress",
        "model": "gpt-4o-mini",
        "output": [],
        "usage": None,
        "error": None,
        "incomplete_details": None,
    }
    out = []

    def send(kind: str, **fields: Any) -> None:
        data = {"type": kind, "sequence_number": len(out), **fields}
        out.append(f"event: {kind}\ndata: {json.dumps(data)}\n\n")

    send("response.created", response=response)
    item = {
        "id": "msg_1",
        "type": "message",
        "status": "in_progress",
        "role": "assistant",
        "content": [],
    }
    send("response.output_item.added", output_index=0, item=item)
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    send(
        "response.content_part.added",
        item_id="msg_1",
        output_index=0,
        content_index=0,
        part=part,
    )
    text = []
    for number in range(events):
        delta = WORDS[number % len(WORDS)]
        text.append(delta)
        send(
            "response.output_text.delta",
            item_id="msg_1",
            output_index=0,
            content_index=0,
            delta=delta,
            logprobs=[],
        )
    whole = "".join(text)
    done = {**item, "status": "completed", "content": [{**part, "text": whole}]}
    send("response.output_item.done", output_index=0, item=done)
    usage = {
        "input_tokens": 5,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": events,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": events + 5,
    }
    final = {**response, "status": "completed", "output": [done], "usage": usage}
    send("response.completed", response=final)
    return "".join(out).encode()


def pieces_of(data: bytes) -> list[bytes]:
    return [data[i : i + 16384] for i in range(0, len(data), 16384)]


def best_of(passes: int, run: Callable[[], str]) -> float:
    best = float("inf")
    for _ in range(passes):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best


def ours(cls: type, decode: Callable[..., Any], data: bytes) -> Callable[[], str]:
    pieces = pieces_of(data)

    def run() -> str:
        stream = cls(decode(pieces), provider="p", model="m", host="h")
        text = "".join(stream)
        assert text
        return text

    return run


def sdk(data: bytes) -> Callable[[], str]:
    import httpx
    import openai

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=data, headers={"content-type": "text/event-stream"}
        )

    client = openai.OpenAI(
        api_key="x",
        base_url="http://bench/v1",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )

    def run() -> str:
        with client.responses.stream(model="m", input="hi") as stream:
            text = "".join(
                e.delta for e in stream if e.type == "response.output_text.delta"
            )
        return text

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--sdk-events", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    chat = chat_body(args.events)
    responses = responses_body(args.events)
    small = responses_body(args.sdk_events)
    assert ours(ResponsesStream, iter_response_events, small)() == sdk(small)()
    ratios, speedups, per_event = [], [], []
    for _ in range(args.rounds):
        chat_time = best_of(3, ours(ChatStream, iter_chat_reply_events, chat))
        resp_time = best_of(3, ours(ResponsesStream, iter_response_events, responses))
        ours_small = best_of(3, ours(ResponsesStream, iter_response_events, small))
        sdk_time = best_of(1, sdk(small))
        ratios.append(resp_time / chat_time)
        speedups.append(sdk_time / ours_small)
        per_event.append((chat_time / args.events * 1e6, resp_time / args.events * 1e6))
    print(
        f"machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}"
    )
    chat_us = statistics.median(p[0] for p in per_event)
    resp_us = statistics.median(p[1] for p in per_event)
    print(f"per event: chat {chat_us:.2f} us, responses {resp_us:.2f} us")
    print(
        f"responses / chat per event: median {statistics.median(ratios):.2f}x "
        f"(rounds {min(ratios):.2f}-{max(ratios):.2f}; target <= 1.2x)"
    )
    print(
        f"SDK time / ours on {args.sdk_events} events: median "
        f"{statistics.median(speedups):.1f}x "
        f"(rounds {min(speedups):.1f}-{max(speedups):.1f}; target >= 10x)"
    )


if __name__ == "__main__":
    main()
