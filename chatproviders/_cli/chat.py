"""``chatproviders chat``: one prompt (argv or stdin), or an interactive chat."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Any, Optional

from .._client import Provider
from .._messages import Messages
from .._results import ReasoningDelta, TextDelta
from ..exceptions import (
    APIError,
    AuthenticationError,
    ChatProvidersError,
    InvalidMessagesError,
)
from ..providers.openai_compatible import BASE_URLS, OpenAICompatible
from .common import EXIT_ERROR, EXIT_OK, UsageError, say
from .deltas import ReasoningPrinter, show_tool_calls

__all__ = ["API_KEY_VARIABLE", "run_chat"]

#: OpenAICompatible's API key comes from here, never from argv (``ps`` shows argv).
API_KEY_VARIABLE = "CHATPROVIDERS_API_KEY"


def run_chat(args: argparse.Namespace) -> int:
    with make_client(args.provider, args) as client:
        try:
            return _chat(client, args)
        except APIError as exc:
            _report(client, exc)
            return EXIT_ERROR


def _chat(client: Provider, args: argparse.Namespace) -> int:
    """Answer the prompt from argv or stdin, or chat on the terminal."""
    model = choose_model(client, args.model)
    system: Messages = []
    if args.system:
        system = [{"role": "system", "content": args.system}]
    prompt = " ".join(args.prompt)
    if not prompt and sys.stdin is not None and not sys.stdin.isatty():
        prompt = sys.stdin.read().strip()
        if not prompt:
            raise UsageError("the prompt on stdin is empty")
    if prompt:
        messages = [*system, {"role": "user", "content": prompt}]
        reply(client, messages, model, args.stream)
        return EXIT_OK
    if sys.stdin is None:
        raise UsageError("give a prompt, as an argument or on stdin")
    return interact(client, model, system, args.stream)


def make_client(cls: type[Provider], args: argparse.Namespace) -> Provider:
    """The client for the command line's options; usage errors for bad ones."""
    if args.base_url is None:
        if cls is OpenAICompatible:
            servers = ", ".join(f"{url} ({name})" for name, url in BASE_URLS.items())
            raise UsageError(f"OpenAICompatible needs --base-url, e.g. {servers}")
        if not cls.working:
            raise UsageError(
                f"{cls.name()}'s public service is offline: pass --base-url, e.g. "
                f"the URL that `chatproviders emulate {cls.name().lower()}` prints"
            )
    options: dict[str, Any] = {"base_url": args.base_url, "proxy": args.proxy}
    if args.timeout is not None:
        options["timeout"] = args.timeout
    if cls is OpenAICompatible:
        options["api_key"] = os.environ.get(API_KEY_VARIABLE) or None
    try:
        return cls(**options)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def choose_model(client: Provider, model: Optional[str]) -> str:
    """``model`` checked; unnamed, the provider's default, or the only model an
    OpenAI-compatible server lists.
    """
    if model or not isinstance(client, OpenAICompatible):
        return client.choose_model(model)
    served = client.list_models()
    if len(served) != 1:
        raise UsageError(f"pass -m MODEL; the server has: {', '.join(served) or '-'}")
    return served[0]


def reply(client: Provider, messages: Messages, model: str, stream: bool) -> str:
    """Write the reply to stdout, as it arrives when ``stream``; return its text.

    An error after part of the reply was written ends its line first, so that
    the message starts on a line of its own (Ctrl-C is left to the caller).
    """
    out = sys.stdout
    at_line_start = True
    thoughts = ReasoningPrinter(out)  # dimmed, or on stderr when piped
    try:
        if stream:
            with client.stream(messages, model) as chunks:
                for event in chunks.events():
                    if isinstance(event, ReasoningDelta):
                        thoughts.reasoning(event.text)
                        continue
                    if not isinstance(event, TextDelta):
                        continue
                    thoughts.end()
                    out.write(event.text)
                    out.flush()
                    at_line_start = event.text.endswith("\n")
                text, calls = chunks.text, chunks.tool_calls
        else:
            whole = client.complete(messages, model)
            if whole.reasoning:
                thoughts.reasoning(whole.reasoning)
                thoughts.end()
            text, calls = whole.text, whole.tool_calls
            out.write(text)
    except Exception:
        thoughts.end()
        if not at_line_start:
            out.write("\n")
            out.flush()
        raise
    thoughts.end()
    if text and not text.endswith("\n"):
        out.write("\n")
    if calls:
        show_tool_calls(calls, out)
    elif not text:
        out.write("\n")
    out.flush()
    return text


def interact(client: Provider, model: str, system: Messages, stream: bool) -> int:
    """Read turns from the terminal until ``/exit`` or end of input."""
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  (line editing and history for input())
    keeps = client.supports_message_history
    memory = "keeps the history" if keeps else "takes no history: each turn goes alone"
    say(
        f"{client.name()} ({model}) {memory}. /reset forgets, /exit or Ctrl-D "
        "quits, Ctrl-C stops a reply."
    )
    history: Messages = []
    while True:
        try:
            line = input(">>> ").strip()
        except EOFError:
            say()
            return EXIT_OK
        if line in ("/exit", "/quit"):
            return EXIT_OK
        if line == "/reset":
            history.clear()
            say("(history forgotten)")
            continue
        if line.startswith("/"):
            say(f"unknown command {line.split()[0]}: use /reset or /exit")
            continue
        if not line:
            continue
        turn = {"role": "user", "content": line}
        try:
            text = reply(client, [*system, *history, turn], model, stream)
        except KeyboardInterrupt:
            sys.stdout.write("\n")
            say("(reply stopped; not kept in the history)")
            continue
        except (APIError, InvalidMessagesError) as exc:
            _report(client, exc)
            continue
        if keeps:
            history += [turn, {"role": "assistant", "content": text}]


def _report(client: Provider, error: ChatProvidersError) -> None:
    """``error`` in one line on stderr, with what to do about it when known."""
    hint = ""
    keyless = isinstance(client, OpenAICompatible) and not client.api_key
    if keyless and isinstance(error, AuthenticationError):
        hint = f" (no API key was sent: set {API_KEY_VARIABLE})"
    say(f"chatproviders: error: {error}{hint}")
