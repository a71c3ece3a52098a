"""``chatproviders chat``: one prompt (argv, stdin, or both), or an interactive chat."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any, Optional, overload

from .._messages import Messages
from .._provider import Provider
from .._streams.events import ReasoningDelta, TextDelta
from ..exceptions import (
    APIError,
    AuthenticationError,
    ChatProvidersError,
    InvalidMessagesError,
)
from ..providers.openai_compatible import OpenAICompatible
from . import arguments
from .clients import API_KEY_VARIABLE, make_client
from .common import EXIT_ERROR, EXIT_OK, UsageError, say
from .deltas import ReasoningPrinter, show_tool_calls

__all__ = ["HELP", "NAME", "add_arguments", "read_piped_stdin", "run"]

NAME = "chat"
HELP = "chat with a provider"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    parser.epilog = (
        f"OpenAICompatible sends ${API_KEY_VARIABLE} as its API key, when set. "
        "The four seed providers are offline: point --base-url at an emulator."
    )
    parser.add_argument(
        "-p",
        "--provider",
        type=arguments.provider,
        default=OpenAICompatible,
        metavar="NAME",
        help="a name from `chatproviders list`, or openai (the default)",
    )
    parser.add_argument("-m", "--model", help="the model (default: the provider's)")
    add_client_arguments(parser)
    parser.add_argument("--system", metavar="TEXT", help="a system message first")
    parser.add_argument(
        "--schema",
        metavar="FILE.json",
        help="a JSON Schema: ask for a reply valid against it and print the "
        "validated JSON (needs chatproviders[structured])",
    )
    parser.add_argument(
        "--responses",
        action="store_true",
        help="send through the Responses API (POST /responses) of an "
        "OpenAI-compatible server",
    )
    parser.add_argument(
        "--no-stream",
        dest="stream",
        action="store_false",
        help="print the reply once it is complete",
    )
    parser.add_argument(
        "prompt",
        nargs="*",
        metavar="PROMPT",
        help="the prompt; piped stdin follows it in the same message, after a "
        "blank line; with neither, an interactive chat on the terminal",
    )


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    """Where and how to reach the provider: the options every chatting command has."""
    parser.add_argument("--base-url", metavar="URL", help="the server's URL")
    parser.add_argument("--proxy", metavar="URL", help="an http(s) proxy")
    parser.add_argument(
        "--timeout",
        type=arguments.seconds,
        metavar="S",
        help="connect and read timeout",
    )


def client_of(args: argparse.Namespace) -> Provider:
    """The client that ``add_client_arguments``' options describe."""
    return make_client(
        args.provider, args.base_url, proxy=args.proxy, timeout=args.timeout
    )


def run(args: argparse.Namespace) -> int:
    """Answer the prompt, or chat on the terminal."""
    with client_of(args) as client:
        try:
            return _chat(client, args)
        except APIError as exc:
            _report(client, exc)
            return EXIT_ERROR


def _chat(client: Provider, args: argparse.Namespace) -> int:
    """Answer the prompt from argv and stdin, or chat on the terminal."""
    sender: Any = client
    if args.responses:  # the Responses API instead
        if args.schema is not None:  # parse() speaks chat completions only
            raise UsageError("--schema cannot be used with --responses")
        if not hasattr(client, "responses"):
            raise UsageError(f"--responses needs -p openai, not {client.name()}")
        from .._responses._chat import ResponsesChat

        sender = ResponsesChat(client)
    system: Messages = []
    if args.system:
        system = [{"role": "system", "content": args.system}]
    prompt = " ".join(args.prompt)
    piped = read_piped_stdin()
    if piped is not None:
        if not piped and not prompt:
            raise UsageError("the prompt on stdin is empty")
        # Both: the prompt first, then the piped text, as one message.
        prompt = "\n\n".join(part for part in (prompt, piped) if part)
    if args.schema is not None:
        if not prompt:
            raise UsageError("--schema needs a prompt, as an argument or on stdin")
        from .schema import print_parsed

        messages = [*system, {"role": "user", "content": prompt}]
        return print_parsed(client, messages, choose_model(client, args.model), args)
    if prompt:
        model = choose_model(client, args.model)
        messages = [*system, {"role": "user", "content": prompt}]
        reply(sender, messages, model, args.stream)
        return EXIT_OK
    if sys.stdin is None:
        raise UsageError("give a prompt, as an argument or on stdin")
    _enable_line_editing()
    chosen = choose_model(client, args.model, ask=True)
    if chosen is None:  # Ctrl-D instead of a model
        return EXIT_OK
    return interact(sender, chosen, system, args.stream)


def read_piped_stdin() -> Optional[str]:
    """The text piped to stdin, blank lines around it removed; ``None`` when
    stdin is a terminal (or closed). Bytes that are not UTF-8 are a usage error
    naming the first bad byte and its offset.
    """
    stdin = sys.stdin
    if stdin is None or stdin.isatty():
        return None
    try:
        binary = getattr(stdin, "buffer", None)
        if binary is None:  # a text stream that has no bytes under it
            return _trim(stdin.read())
        data: bytes = binary.read()
    except OSError as exc:  # e.g. `< some/directory`
        raise UsageError(f"cannot read stdin: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"stdin is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start}); convert it first, e.g. with iconv -t UTF-8"
        ) from None
    if text.startswith("\ufeff"):  # a byte order mark, as some editors write
        text = text[1:]
    return _trim(text.replace("\r\n", "\n"))


def _trim(text: str) -> str:
    """``text`` without trailing white space or leading blank lines (the first
    line's indentation stays: it may be code)."""
    text = text.rstrip()
    return text[text.rfind("\n", 0, len(text) - len(text.lstrip())) + 1 :]


@overload
def choose_model(client: Provider, model: Optional[str]) -> str: ...


@overload
def choose_model(
    client: Provider, model: Optional[str], ask: bool
) -> Optional[str]: ...


def choose_model(
    client: Provider, model: Optional[str], ask: bool = False
) -> Optional[str]:
    """``model`` checked; unnamed, the provider's default, or the only model an
    OpenAI-compatible server lists. When it lists several: with ``ask``, the
    model typed at the terminal (``None`` for Ctrl-D), else a usage error.
    """
    if model or not isinstance(client, OpenAICompatible):
        return client.choose_model(model)
    served = client.list_models()
    if len(served) == 1:
        return served[0]
    if ask and served:
        return ask_model(served)
    raise UsageError(f"pass -m MODEL; the server has: {', '.join(served) or '-'}")


def ask_model(served: list[str]) -> Optional[str]:
    """Show the numbered models on stderr and read a number or a name until one
    is valid; ``None`` at end of input (Ctrl-D)."""
    say("The server has several models; pass -m MODEL to skip this question.")
    for number, name in enumerate(served, 1):
        print(f"{number:>3}. {name}", file=sys.stderr)
    while True:
        try:
            answer = input(f"model [1-{len(served)} or a name]: ").strip()
        except EOFError:
            say()
            return None
        if answer in served:
            return answer
        if answer.isdigit() and 1 <= int(answer) <= len(served):
            return served[int(answer) - 1]
        if answer:
            say(f"{answer!r} is neither a number from 1 to {len(served)} nor a model")


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
    """Read turns from the terminal until ``/exit`` or end of input (Ctrl-D).

    Ctrl-C at the prompt drops the line being typed, as in Python's REPL; the
    chat and its history go on.
    """
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
        except KeyboardInterrupt:
            sys.stdout.write("\n")
            continue
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


def _enable_line_editing() -> None:
    """Line editing and history for ``input()``, where the platform has them."""
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401


def _report(client: Provider, error: ChatProvidersError) -> None:
    """``error`` in one line on stderr, with what to do about it when known."""
    hint = ""
    keyless = isinstance(client, OpenAICompatible) and not client.api_key
    if keyless and isinstance(error, AuthenticationError):
        hint = f" (no API key was sent: set {API_KEY_VARIABLE})"
    say(f"chatproviders: error: {error}{hint}")
