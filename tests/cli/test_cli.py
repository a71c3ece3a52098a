"""The command line, run in-process against emulators (and once as a process)."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from chatproviders import Cromicle
from chatproviders._cli import emulate as tools
from chatproviders.cli import main
from chatproviders.testing import EmulatorServer, serve
from tests.loopback import WAIT, Conn, LoopbackServer
from tests.terminal import Terminal as PtyTerminal

NAMES = ["Cromicle", "Acytoo", "GPROChat", "CodeLinkAva", "OpenAICompatible"]


class Terminal(io.StringIO):
    """Typed lines on a terminal: what stdin looks like to an interactive chat."""

    def isatty(self) -> bool:
        return True


class Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


class InterruptingStdout(io.StringIO):
    """A stdout on which Ctrl-C lands, once, as the first chunk is written."""

    interrupted = False

    def write(self, text: str) -> int:
        if text.strip() and text != ">>> " and not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt
        return super().write(text)


@pytest.fixture
def cromicle() -> Iterator[EmulatorServer]:
    """A Cromicle emulator replying "Hi there" in two-character chunks."""
    with serve("cromicle", text="Hi there", chunk_size=2) as server:
        yield server


@pytest.fixture
def openai() -> Iterator[EmulatorServer]:
    """The OpenAI-compatible emulator, serving one model."""
    with serve("openai", text="Hello", models=["tiny"]) as server:
        yield server


@pytest.fixture(autouse=True)
def no_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see an empty pipe on stdin unless they set one, and no API key."""
    monkeypatch.setattr(sys, "stdin", Pipe(""))
    monkeypatch.delenv("CHATPROVIDERS_API_KEY", raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_chat_streams_the_prompt_from_argv(
    cromicle: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Words after the options are the prompt; the reply and a newline go to stdout."""
    status, out, err = run(
        capsys, "chat", "-p", "cromicle", "--base-url", cromicle.url, "Hello", "you"
    )
    assert (status, out, err) == (0, "Hi there\n", "")
    assert cromicle.requests[0].json["message"] == "Hello you"


def test_chat_reads_a_piped_prompt_and_a_system_message(
    cromicle: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a prompt argument, stdin (not a terminal) is the prompt."""
    monkeypatch.setattr(sys, "stdin", Pipe("from a pipe\n"))
    argv = ["chat", "-p", "Cromicle", "--base-url", cromicle.url, "--system", "Be"]
    assert run(capsys, *argv)[:2] == (0, "Hi there\n")
    prompt = cromicle.requests[0].json["message"]
    assert prompt == "System: Be\nUser: from a pipe\nAssistant:"


def test_chat_with_an_openai_compatible_server(
    openai: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The default provider; the server's only model; the key from the environment;
    --no-stream sends stream: false."""
    monkeypatch.setenv("CHATPROVIDERS_API_KEY", "sk-env")
    assert run(capsys, "chat", "--base-url", openai.url, "--no-stream", "Hi")[:2] == (
        0,
        "Hello\n",
    )
    chat = openai.requests[-1]
    assert chat.json == {
        "model": "tiny",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": False,
    }
    assert chat.headers["authorization"] == "Bearer sk-env"
    assert openai.requests[0].route == "/v1/models"


def test_several_models_need_a_choice(capsys: pytest.CaptureFixture[str]) -> None:
    """An OpenAI-compatible server listing several models: -m is asked for, exit 2."""
    with serve("openai") as server:
        status, out, err = run(capsys, "chat", "--base-url", server.url, "Hi")
        assert (status, out) == (2, "")
        assert "pass -m MODEL; the server has: gpt-3.5-turbo, gpt-4o-mini" in err
        assert run(capsys, "chat", "--base-url", server.url, "-m", "gpt-4o-mini", "Hi")[
            :2
        ] == (0, server.reply.text + "\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["chat", "-p", "bard", "hi"], "'bard' is not one of Acytoo"),
        (["chat", "-p", "cromicle", "hi"], "pass --base-url"),
        (["chat", "hi"], "http://localhost:11434/v1 (Ollama)"),
        (["chat", "--base-url", "ftp://x", "hi"], "base_url must be an http"),
        (["chat", "--timeout", "soon", "hi"], "not a number of seconds"),
        (["chat", "-p", "gprochat", "--base-url", "http://127.0.0.1:9", "-m", "gpt-4",
          "hi"], "model 'gpt-4' is not supported"),
        (["chat", "-p", "cromicle", "--base-url", "http://127.0.0.1:9"],
         "prompt on stdin is empty"),
        (["emulate", "cromicle", "--api-key", "k"], "openai emulator only"),
        (["emulate", "bard"], "unknown provider 'bard'"),
        (["emulate", "cromicle", "--port", "70000"], "not a port number"),
        (["--bogus"], "required: COMMAND"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """Bad options, names and models: exit status 2, the problem named, no I/O."""
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert message in err
    assert "Traceback" not in err
    assert out == ""


def test_a_provider_error_is_one_line_and_exit_1(
    cromicle: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failing server: exit 1, str() of our error on one stderr line."""
    cromicle.set_reply(status=400, body="no such thing")
    status, out, err = run(
        capsys, "chat", "-p", "cromicle", "--base-url", cromicle.url, "hi"
    )
    assert (status, out) == (1, "")
    assert err == (
        f"chatproviders: error: Cromicle at {cromicle.url[7:]}: "
        "answered 400 Bad Request: no such thing\n"
    )


def test_a_refused_key_hints_at_the_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A 401 from an OpenAI-compatible server without a key names the variable."""
    with serve("openai", api_key="sk-needed") as server:
        status, _, err = run(capsys, "chat", "--base-url", server.url, "-m", "x", "hi")
    assert status == 1
    assert err.endswith("(no API key was sent: set CHATPROVIDERS_API_KEY)\n")
    assert err.count("\n") == 1


def test_ctrl_c_while_streaming_closes_the_connection_and_exits_130(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """KeyboardInterrupt in the middle of a reply: the socket is closed, status 130."""
    closed = threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head()
        conn.send(b"first ")
        if conn.wait_closed_by_client():  # no more is ever sent
            closed.set()

    with LoopbackServer(handler) as server:
        monkeypatch.setattr(sys, "stdout", InterruptingStdout())
        status = main(["chat", "-p", "cromicle", "--base-url", server.url, "hi"])
        assert closed.wait(WAIT)
    assert status == 130
    assert capsys.readouterr().err == "\n"


def test_interactive_chat_keeps_history_and_resets(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal: turns carry the history (Acytoo keeps it) until /reset."""
    typed = "one\n/what\ntwo\n/reset\nthree\n/exit\nnever sent\n"
    monkeypatch.setattr(sys, "stdin", Terminal(typed))
    with serve("acytoo", text="ok") as server:
        status, out, err = run(capsys, "chat", "-p", "acytoo", "--base-url", server.url)
    assert status == 0
    sent = [[m["content"] for m in r.json["messages"]] for r in server.requests]
    assert sent == [["one"], ["one", "ok", "two"], ["three"]]
    assert out.count("ok\n") == 3
    assert "keeps the history" in err
    assert "unknown command /what" in err


def test_interactive_chat_without_history_sends_turns_alone(
    cromicle: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A provider without history gets each turn alone, and says so; EOF ends it."""
    monkeypatch.setattr(sys, "stdin", Terminal("one\n\ntwo\n"))
    argv = ["chat", "-p", "cromicle", "--base-url", cromicle.url]
    status, out, err = run(capsys, *argv)
    assert status == 0
    assert [r.json["message"] for r in cromicle.requests] == ["one", "two"]
    assert out.count("Hi there\n") == 2
    assert "each turn goes alone" in err


def test_interactive_ctrl_c_stops_the_reply_not_the_chat(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C during a reply closes it, drops the turn, and the prompt comes back;
    a server error is reported and the chat goes on."""
    monkeypatch.setattr(sys, "stdin", Terminal("one\ntwo\nthree\n/exit\n"))
    with serve("acytoo", text="ok") as server:
        server.queue_reply(text="cut")
        server.queue_reply(status=400)
        stdout = InterruptingStdout()
        monkeypatch.setattr(sys, "stdout", stdout)
        status = main(["chat", "-p", "acytoo", "--base-url", server.url])
    err = capsys.readouterr().err
    assert status == 0
    assert "(reply stopped; not kept in the history)" in err
    assert "answered 400" in err
    assert [len(r.json["messages"]) for r in server.requests] == [1, 1, 1]
    assert stdout.getvalue().endswith(">>> ok\n>>> ")


def test_list_prints_an_aligned_table(capsys: pytest.CaptureFixture[str]) -> None:
    """One row per provider; every column starts at the same place on every line."""
    status, out, _ = run(capsys, "list")
    lines = out.splitlines()
    assert status == 0
    assert lines[0].split() == [
        "name", "working", "streaming", "history", "default", "model", "endpoint"
    ]  # fmt: skip
    assert sorted(line.split()[0] for line in lines[1:]) == sorted(NAMES)
    starts = [m.start() for m in re.finditer(r"(?<=  )\S", lines[0])]
    for line in lines[1:]:
        assert all(line[i - 2 : i] == "  " and line[i] != " " for i in starts)
    assert "BASE_URL/chat/completions" in out
    assert "https://cromicle.top/chat" in out


def test_list_verbose_describes_each_providers_arguments(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """list --verbose adds each provider's params line after the table."""
    status, out, _ = run(capsys, "list", "--verbose")
    assert status == 0
    assert "chatproviders.Acytoo supports: (" in out
    assert "temperature: float = 0.5)" in out
    assert out.count(" supports: (") == len(NAMES)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is POSIX")
def test_emulate_stops_on_a_real_ctrl_c() -> None:
    """`chatproviders emulate` in its own process: SIGINT stops it, status 0."""
    with subprocess.Popen(
        [sys.executable, "-m", "chatproviders", "emulate", "cromicle"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell's background job ignores SIGINT, and so would the child.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline().startswith(
                "cromicle emulator on http://127.0.0.1:"
            )
            assert process.stdout.readline().startswith("try: chatproviders chat")
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=WAIT)
        finally:
            process.kill()
    assert process.returncode == 0
    assert err == "stopped\n"


def test_emulate_offers_every_registered_emulator() -> None:
    """The names serve() and `emulate` take are the registered providers that
    name an emulator."""
    from chatproviders.testing import serve
    from chatproviders.testing._protocols import emulated_names

    names = emulated_names()
    assert {"acytoo", "codelinkava", "cromicle", "gprochat", "openai"} <= set(names)
    for name in names:
        with serve(name) as server:
            assert server.url.startswith("http://127.0.0.1:")


def test_emulate_serves_until_ctrl_c(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """emulate prints its URL, answers there, and stops cleanly on Ctrl-C."""
    answers: list[str] = []

    def use_then_interrupt() -> None:
        url = re.search(r"on (http://\S+)", capsys.readouterr().out)
        assert url is not None
        with Cromicle(base_url=url.group(1)) as client:
            answers.append(client.complete([{"role": "user", "content": "x"}]).text)
        raise KeyboardInterrupt

    monkeypatch.setattr(tools, "wait_for_interrupt", use_then_interrupt)
    status, _, err = run(capsys, "emulate", "CROMICLE", "--text", "Olá", "--delay", "0")
    assert (status, answers, err) == (0, ["Olá"], "stopped\n")


def test_emulate_on_a_busy_port_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A port already taken: one line on stderr, exit 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        status, _, err = run(capsys, "emulate", "acytoo", "--port", port)
    assert status == 1
    assert err.startswith(f"chatproviders: error: cannot listen on port {port}")


def test_demo_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    """demo streams from all five emulators and exits 0."""
    status, out, err = run(capsys, "demo", "--delay", "0")
    assert (status, err) == (0, "")
    for name in NAMES:
        assert re.search(rf"^{name} +first chunk +[\d.]+ ms \| Hello!", out, re.M)


def test_broken_pipe_exits_quietly(
    cromicle: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader that went away (`| head`) gives exit 141 and no traceback."""

    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    monkeypatch.setattr(sys, "stdout", Closed())
    assert main(["chat", "-p", "cromicle", "--base-url", cromicle.url, "x"]) == 141


def test_a_reply_the_output_encoding_lacks_is_printed_with_replacements() -> None:
    """Under an ASCII stdout (LANG=C, or cp1252 on Windows for other text) the
    reply is printed with ? for what cannot be encoded, not a traceback."""
    with serve("cromicle", text="caf\u00e9 \u2014 ok") as server:
        result = subprocess.run(
            [sys.executable, "-m", "chatproviders", "chat", "-p", "cromicle",
             "--base-url", server.url, "hi"],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONIOENCODING": "ascii"},
            timeout=60,
        )  # fmt: skip
    assert (result.returncode, result.stdout, result.stderr) == (0, b"caf? ? ok\n", b"")


def test_broken_pipe_on_the_final_flush_exits_quietly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`list | true`: the pipe breaks only when buffered output is flushed at exit."""

    class ClosedOnFlush(io.StringIO):
        def flush(self) -> None:
            raise BrokenPipeError

    monkeypatch.setattr(sys, "stdout", ClosedOnFlush())
    assert main(["list"]) == 141


def test_an_error_mid_reply_starts_on_a_line_of_its_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The half-written reply line is ended before the error, which gets exit 1."""
    with serve("cromicle", text="Hello there", chunk_size=3, reset_after=6) as server:
        status, out, err = run(capsys, "chat", "-p", "cromicle", "--base-url",
                               server.url, "hi")  # fmt: skip
    assert (status, out) == (1, "Hello \n")
    assert err.startswith("chatproviders: error: Cromicle at ")
    assert err.count("\n") == 1


def test_a_prompt_that_is_not_text_is_a_usage_error(
    cromicle: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bytes that are not UTF-8 in argv (a surrogate escape) exit 2 before sending."""
    argv = ["chat", "-p", "cromicle", "--base-url", cromicle.url, "caf\udce9"]
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "")
    assert "has no UTF-8 form" in err
    assert "Traceback" not in err
    assert cromicle.requests == []


def test_interactive_chat_reports_a_line_that_is_not_text_and_goes_on(
    cromicle: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A typed line with a surrogate escape is refused; the next one is sent."""
    monkeypatch.setattr(sys, "stdin", Terminal("caf\udce9\ncafe\n"))
    argv = ["chat", "-p", "cromicle", "--base-url", cromicle.url]
    status, out, err = run(capsys, *argv)
    assert (status, out) == (0, ">>> >>> Hi there\n>>> ")
    assert "has no UTF-8 form" in err
    assert [r.json["message"] for r in cromicle.requests] == ["cafe"]


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["chat", "--help"]])
def test_help_and_version_exit_0(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """--help and --version print and return 0 instead of raising SystemExit."""
    status, out, _ = run(capsys, *argv)
    assert status == 0
    assert out


@pytest.mark.slow
def test_python_dash_m_demo_runs_as_a_new_user_would() -> None:
    """`python -m chatproviders demo` in a fresh process: exit 0, five providers."""
    env: dict[str, Any] = {**os.environ, "PYTHONIOENCODING": "ascii"}
    result = subprocess.run(
        [sys.executable, "-m", "chatproviders", "demo"],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    for name in NAMES:
        assert f"\n{name} " in result.stdout


def chatproviders(
    *argv: str, stdout: Any = subprocess.PIPE, stdin: Any = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """``python -m chatproviders ARGV`` in a process of its own; stderr piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "chatproviders", *argv],
        stdin=stdin,
        stdout=stdout,
        stderr=subprocess.PIPE,
    )


def test_a_prompt_and_piped_text_go_in_one_message(
    openai: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`git diff | chatproviders chat "Review this"`: one user message, the prompt
    first, a blank line, then the piped text with its indentation."""
    monkeypatch.setattr(sys, "stdin", Pipe("\n  def f():\n      pass\n\n"))
    status, out, _ = run(capsys, "chat", "--base-url", openai.url, "Review", "this")
    assert (status, out) == (0, "Hello\n")
    assert openai.requests[-1].json["messages"] == [
        {"role": "user", "content": "Review this\n\n  def f():\n      pass"}
    ]


def test_chat_help_says_piped_text_follows_the_prompt(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`chat --help` tells how a prompt and piped stdin combine."""
    status, out, _ = run(capsys, "chat", "--help")
    assert status == 0
    assert "piped stdin follows it in the same message" in " ".join(out.split())


@pytest.mark.parametrize(
    ("data", "where"),
    [(b"\xff", "byte 0xff at offset 0"), (b"caf\xe9 ok\n", "byte 0xe9 at offset 3"),
     (b"ok \xe2\x82", "byte 0xe2 at offset 3")],
)  # fmt: skip
def test_stdin_that_is_not_utf8_is_named_plainly(
    cromicle: EmulatorServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    data: bytes,
    where: str,
) -> None:
    """Piped bytes that are not UTF-8: exit 2, the first bad byte and its offset."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    status, out, err = run(capsys, "chat", "-p", "cromicle", "--base-url", cromicle.url)
    assert (status, out) == (2, "")
    assert err == f"chatproviders chat: error: stdin is not UTF-8 text ({where}); " \
        "convert it first, e.g. with iconv -t UTF-8\n"  # fmt: skip
    assert cromicle.requests == []


def test_stdin_that_is_not_utf8_in_a_real_process(cromicle: EmulatorServer) -> None:
    """The same from a shell's pipe, whatever the locale's error handler."""
    process = chatproviders("chat", "-p", "cromicle", "--base-url", cromicle.url,
                            "Fix", stdin=subprocess.PIPE)  # fmt: skip
    out, err = process.communicate(b"caf\xe9\n", timeout=60)
    assert (process.returncode, out) == (2, b"")
    assert b"stdin is not UTF-8 text (byte 0xe9 at offset 3)" in err
    assert err.count(b"\n") == 1


def test_an_unknown_option_shows_the_commands_usage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`chat --bogus-flag hi`: chat's usage line and the option named, exit 2."""
    status, out, err = run(capsys, "chat", "--bogus-flag", "hi")
    assert (status, out) == (2, "")
    assert err.startswith("usage: chatproviders chat [-h] [-p NAME]")
    assert err.endswith(
        "chatproviders chat: error: unrecognized arguments: --bogus-flag\n"
    )


def test_a_bare_command_prints_the_help_and_the_commands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`chatproviders` alone: the whole help with every command, on stderr, exit 2."""
    status, out, err = run(capsys)
    assert (status, out) == (2, "")
    assert err.startswith("usage: chatproviders")
    listed = re.findall(r"^    (\w+) ", err, re.M)
    assert {"demo", "chat", "list", "emulate"} <= set(listed)
    assert "Start with: chatproviders demo" in err


def test_demo_into_a_closed_pipe_exits_141_quietly() -> None:
    """`chatproviders demo | true`: the reader is gone before the first write;
    exit 128 + SIGPIPE, as coreutils show in a shell, and nothing on stderr."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        process = chatproviders("demo", "--delay", "0", stdout=writer)
    finally:
        os.close(writer)
    _, err = process.communicate(timeout=60)
    assert (process.returncode, err) == (141, b"")


def test_chat_whose_reader_leaves_mid_reply_exits_141_and_hangs_up() -> None:
    """`chatproviders chat ... | head -1`: the reader takes a line and leaves; the
    next chunk's write fails, the connection is closed, exit 141, no message."""
    reader_gone, hung_up = threading.Event(), threading.Event()

    def handler(conn: Conn) -> None:
        conn.read_request()
        conn.send_head()
        conn.send(b"first line\n")
        assert reader_gone.wait(WAIT)
        conn.send(b"second line\n")
        if conn.wait_closed_by_client():
            hung_up.set()

    with LoopbackServer(handler) as server:
        process = chatproviders("chat", "-p", "cromicle", "--base-url", server.url,
                                "hi")  # fmt: skip
        try:
            assert process.stdout is not None
            assert process.stdout.readline() == b"first line\n"
            process.stdout.close()
            reader_gone.set()
            _, err = process.communicate(timeout=60)
        finally:
            process.kill()
        assert hung_up.wait(WAIT)
    assert (process.returncode, err) == (141, b"")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("command", ["chat", "demo"])
def test_a_full_disk_is_one_line_and_exit_1(
    cromicle: EmulatorServer, command: str
) -> None:
    """`> /dev/full` (ENOSPC on every write): one line on stderr, exit 1."""
    argv = ["demo", "--delay", "0"]
    if command == "chat":
        argv = ["chat", "-p", "cromicle", "--base-url", cromicle.url, "hi"]
    with open("/dev/full", "wb") as full:
        process = chatproviders(*argv, stdout=full)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert err == (
        b"chatproviders: error: cannot write the output: No space left on device\n"
    )


needs_pty = pytest.mark.skipif(
    sys.platform == "win32", reason="pseudo-terminals and SIGINT are POSIX"
)
needs_proc = pytest.mark.skipif(
    not os.path.exists("/proc/self/stat"),
    reason="Ctrl-C is sent once the child sleeps, which Linux's /proc shows",
)


@needs_pty
def test_on_a_terminal_the_chat_offers_the_models_and_asks() -> None:
    """Several models, no -m, a terminal: a numbered list; a bad answer is asked
    again; the number chosen is the model the turns are sent with."""
    with serve("openai", text="Hello", models=["small", "large"]) as server:
        with PtyTerminal(["chat", "--base-url", server.url]) as term:
            listed = term.expect("model [1-2 or a name]: ")
            assert "  1. small\n  2. large\n" in listed
            term.type("3\n")
            term.expect("'3' is neither a number from 1 to 2 nor a model")
            term.expect("model [1-2 or a name]: ")
            term.type("2\n")
            assert "(large) keeps the history" in term.expect(">>> ")
            term.type("Hi\n")
            term.expect("Hello\n>>> ")
            term.type("/exit\n")
            assert term.wait() == 0
    chats = [r.json for r in server.requests if r.route.endswith("/completions")]
    assert [(c["model"], c["messages"]) for c in chats] == [
        ("large", [{"role": "user", "content": "Hi"}])
    ]


@needs_pty
def test_on_a_terminal_ctrl_d_at_the_model_question_leaves() -> None:
    """Ctrl-D instead of a model ends the chat with status 0, nothing sent."""
    with serve("openai", models=["small", "large"]) as server:
        with PtyTerminal(["chat", "--base-url", server.url]) as term:
            term.expect("model [1-2 or a name]: ")
            term.type("\x04")
            assert term.wait() == 0
    assert [r.route for r in server.requests] == ["/v1/models"]


@needs_pty
@needs_proc
def test_ctrl_c_at_the_prompt_clears_the_line_and_keeps_the_history() -> None:
    """As in Python's REPL: Ctrl-C drops the half-typed line, the prompt comes
    back, the history stays; Ctrl-D then leaves with status 0."""
    with serve("acytoo", text="ok") as server:
        with PtyTerminal(["chat", "-p", "acytoo", "--base-url", server.url]) as term:
            term.expect(">>> ")
            term.type("one\n")
            term.expect("ok\n>>> ")
            term.type("half a line")
            term.expect("half a line")
            term.interrupt()
            term.expect("\n>>> ")
            term.type("two\n")
            term.expect("ok\n>>> ")
            term.type("\x04")
            assert term.wait() == 0
    sent = [[m["content"] for m in r.json["messages"]] for r in server.requests]
    assert sent == [["one"], ["one", "ok", "two"]]


@needs_pty
@needs_proc
def test_ctrl_c_during_a_reply_stops_it_and_the_chat_goes_on() -> None:
    """SIGINT while a reply stalls mid-way: the reply stops, its turn is not kept,
    the prompt comes back and the next turn is answered."""
    with serve("acytoo", text="ok") as server:
        server.queue_reply(text="a long reply that stalls", stall_after=6)
        with PtyTerminal(["chat", "-p", "acytoo", "--base-url", server.url]) as term:
            term.expect(">>> ")
            term.type("one\n")
            term.expect("a long")
            term.interrupt()
            term.expect("(reply stopped; not kept in the history)\n>>> ")
            term.type("two\n")
            term.expect("ok\n>>> ")
            term.type("/exit\n")
            assert term.wait() == 0
    sent = [[m["content"] for m in r.json["messages"]] for r in server.requests]
    assert sent == [["one"], ["two"]]


def test_several_models_and_a_prompt_keep_the_error_on_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the interactive chat asks: a prompt given on a terminal still needs
    -m when the server lists several, exit 2, before any chat request."""
    monkeypatch.setattr(sys, "stdin", Terminal("2\n"))
    with serve("openai") as server:
        status, out, err = run(capsys, "chat", "--base-url", server.url, "Hi")
    assert (status, out) == (2, "")
    assert "pass -m MODEL; the server has: gpt-3.5-turbo, gpt-4o-mini" in err
    assert [r.route for r in server.requests] == ["/v1/models"]
