"""display_stream: a reply growing in one Jupyter output area, or printed."""

from __future__ import annotations

import io
import json
import os
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional
from unittest.mock import ANY

import pytest

from chatproviders import Cromicle, IncompleteStreamError
from chatproviders.notebook import display_stream
from chatproviders.testing import EmulatorServer, serve
from tests.constants import HI


class FakeHandle:
    """What ``display(..., display_id=True)`` returns: records each update."""

    def __init__(self, shown: list[tuple[str, Any, bool]]) -> None:
        self.shown = shown

    def update(self, obj: Any, raw: bool = False) -> None:
        self.shown.append(("update", obj, raw))


class FakeMarkdown:
    def __init__(self, data: str) -> None:
        self.data = data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FakeMarkdown) and other.data == self.data


def fake_ipython(
    monkeypatch: pytest.MonkeyPatch, kernel: Optional[object]
) -> list[tuple[str, Any, bool]]:
    """Install fake IPython modules; return the list of display calls."""
    shown: list[tuple[str, Any, bool]] = []
    shell = types.SimpleNamespace(kernel=kernel)
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: shell  # type: ignore[attr-defined]
    display_module = types.ModuleType("IPython.display")

    def display(obj: Any, raw: bool = False, display_id: Any = None) -> FakeHandle:
        assert display_id is True
        shown.append(("display", obj, raw))
        return FakeHandle(shown)

    display_module.display = display  # type: ignore[attr-defined]
    display_module.Markdown = FakeMarkdown  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display_module)
    return shown


class Chunks:
    """An iterable of chunks that records whether it was closed."""

    def __init__(self, *chunks: str, error: Optional[Exception] = None) -> None:
        self.chunks, self.error, self.closed = chunks, error, False

    def __iter__(self) -> Iterator[str]:
        yield from self.chunks
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    """A Cromicle emulator answering in three-character chunks."""
    with serve("cromicle", text="Hello **world**", chunk_size=3) as started:
        yield started


def test_in_a_kernel_one_output_area_grows(monkeypatch: pytest.MonkeyPatch) -> None:
    """One display(display_id=True), then an update per chunk; the text returned."""
    shown = fake_ipython(monkeypatch, kernel=object())
    chunks = Chunks("Hel", "lo ", "**you**")
    assert display_stream(chunks, interval=0) == "Hello **you**"
    assert shown == [
        ("display", FakeMarkdown(""), False),
        ("update", FakeMarkdown("Hel"), False),
        ("update", FakeMarkdown("Hello "), False),
        ("update", FakeMarkdown("Hello **you**"), False),
    ]
    assert chunks.closed


def test_plain_text_and_throttled_updates(monkeypatch: pytest.MonkeyPatch) -> None:
    """markdown=False shows a raw text/plain bundle; a long interval shows the
    first chunk at once, then the end only."""
    shown = fake_ipython(monkeypatch, kernel=object())
    assert display_stream(Chunks("a", "b", "c"), markdown=False, interval=60) == "abc"
    assert shown == [
        ("display", {"text/plain": ""}, True),
        ("update", {"text/plain": "a"}, True),
        ("update", {"text/plain": "abc"}, True),
    ]


def test_an_error_shows_the_partial_text_then_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What arrived before an error stays on screen; the error and close follow."""
    shown = fake_ipython(monkeypatch, kernel=object())
    chunks = Chunks("par", "tial", error=IncompleteStreamError("cut"))
    with pytest.raises(IncompleteStreamError):
        display_stream(chunks, interval=60)
    assert shown[-1] == ("update", FakeMarkdown("partial"), False)
    assert chunks.closed


@pytest.mark.parametrize("how", ["no IPython", "no kernel"])
def test_outside_a_kernel_chunks_are_printed(
    monkeypatch: pytest.MonkeyPatch, server: EmulatorServer, how: str
) -> None:
    """Without IPython, or in terminal IPython, chunks print as they arrive."""
    if how == "no IPython":
        monkeypatch.setitem(sys.modules, "IPython", None)  # import raises
        shown: list[Any] = []
    else:
        shown = fake_ipython(monkeypatch, kernel=None)
    out = io.StringIO()
    with Cromicle(base_url=server.url) as client:
        stream = client.stream(HI)
        assert display_stream(stream, file=out) == "Hello **world**"
    assert out.getvalue() == "Hello **world**\n"
    assert stream.closed
    assert shown == []


def test_real_terminal_ipython_falls_back_to_printing(
    server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real IPython shell that is not a kernel gets printed chunks, not displays."""
    # Imported, not importorskip: the [test] extra has IPython, so CI runs this.
    from IPython.core import interactiveshell
    from traitlets import config as traitlets_config

    config = traitlets_config.Config()
    config.HistoryManager.enabled = False
    shell = interactiveshell.InteractiveShell.instance(config=config)
    try:
        with Cromicle(base_url=server.url) as client, client.stream(HI) as stream:
            assert display_stream(stream) == "Hello **world**"
    finally:
        interactiveshell.InteractiveShell.clear_instance()
        shell.cleanup()
    assert capsys.readouterr().out == "Hello **world**\n"


@pytest.fixture
def kernel_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec running ipykernel on this very interpreter (the venv's), so
    that a fresh `pip install -e .[test]` is all a kernel needs; its name."""
    import ipykernel  # noqa: F401  (fail here, not in the kernel, without it)

    spec = tmp_path / "kernels" / "chatproviders-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "test", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(sys.path))
    return "chatproviders-test"


CELL = """
from chatproviders import Cromicle
from chatproviders.notebook import display_stream
with Cromicle(base_url={url!r}) as client, client.stream({hi!r}) as stream:
    text = display_stream(stream, interval=0)
text
"""


@pytest.mark.slow
def test_a_real_kernel_sends_one_display_then_updates(
    server: EmulatorServer, kernel_name: str
) -> None:
    """In a real ipykernel, iopub carries display_data then update_display_data
    with the same display_id, the text growing to the whole reply."""
    from jupyter_client import manager

    kernel_manager, kernel_client = manager.start_new_kernel(
        kernel_name=kernel_name, startup_timeout=30
    )
    try:
        msg_id = kernel_client.execute(CELL.format(url=server.url, hi=HI))
        messages = []
        while True:
            message = kernel_client.get_iopub_msg(timeout=30)
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            messages.append(message)
            content = message["content"]
            if message["msg_type"] == "status" and content["execution_state"] == "idle":
                break
    finally:
        kernel_client.stop_channels()
        kernel_manager.shutdown_kernel(now=True)
    displays = [
        m for m in messages if m["msg_type"] in ("display_data", "update_display_data")
    ]
    errors = [m["content"] for m in messages if m["msg_type"] == "error"]
    assert not errors
    assert [m["msg_type"] for m in displays] == ["display_data"] + [
        "update_display_data"
    ] * (len(displays) - 1)
    assert len(displays) >= 3
    assert len({m["content"]["transient"]["display_id"] for m in displays}) == 1
    texts = [m["content"]["data"]["text/markdown"] for m in displays]
    assert texts[0] == "" and texts[-1] == "Hello **world**"
    assert all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:]))


@pytest.mark.parametrize(
    ("chunks", "options", "error"),
    [("hello", {}, TypeError), (["a"], {"interval": "x"}, ValueError),
     (["a"], {"interval": float("nan")}, ValueError)],
)  # fmt: skip
def test_bad_arguments_are_refused_before_anything_is_shown(
    chunks: Any, options: dict[str, Any], error: type[Exception]
) -> None:
    """A string (which would show letter by letter) or a bad interval raise first."""
    out = io.StringIO()
    with pytest.raises(error):
        display_stream(chunks, file=out, **options)
    assert out.getvalue() == ""


NOTEBOOK = [
    """\
from chatproviders import Cromicle
from chatproviders.notebook import display_stream
client = Cromicle(base_url={url!r})
with client.stream({hi!r}) as stream:
    text = display_stream(stream, interval=0)""",
    """\
parts = []
async with client.stream_in_background({hi!r}) as bg:
    async for chunk in bg:
        parts.append(chunk)
print("".join(parts), len(parts) > 1)""",
    """\
from chatproviders import batch
result = batch(client, ["one", "two", "three"], progress=True)
print(len(result), len(result.failed))""",
    """\
client.close()
text""",
]


@pytest.mark.slow
def test_a_notebook_runs_in_a_real_kernel(
    server: EmulatorServer, kernel_name: str
) -> None:
    """A notebook run by nbclient in ipykernel: display_stream leaves one
    Markdown output holding the whole reply; `async for` over a background
    stream in a cell gets every chunk; batch's progress bar is a live widget;
    the cells' results are the reply."""
    import nbclient
    import nbformat

    cells = [
        nbformat.v4.new_code_cell(source.format(url=server.url, hi=HI))
        for source in NOTEBOOK
    ]
    notebook = nbformat.v4.new_notebook(cells=cells)
    nbclient.NotebookClient(notebook, timeout=30, kernel_name=kernel_name).execute()
    shown, printed, batched, result = (cell.outputs for cell in notebook.cells)
    assert [(o.output_type, o.data) for o in shown] == [
        ("display_data", {"text/markdown": "Hello **world**", "text/plain": ANY})
    ]
    assert [(o.output_type, o.name, o.text) for o in printed] == [
        ("stream", "stdout", "Hello **world** True\n")
    ]
    widget, summary = batched
    assert widget.output_type == "display_data"
    assert "application/vnd.jupyter.widget-view+json" in widget.data  # tqdm's bar
    assert (summary.output_type, summary.text) == ("stream", "3 0\n")
    assert [(o.output_type, o.data) for o in result] == [
        ("execute_result", {"text/plain": "'Hello **world**'"})
    ]
    assert len(server.requests) == 5
