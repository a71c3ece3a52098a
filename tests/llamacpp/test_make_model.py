"""make_model.py writes a model llama.cpp loads, with the vocabulary it promises.

llama_cpp is loaded in a child process, which reports what it sees as JSON:
importing it leaves two files open for good, which this suite's warning
filters would turn into errors at exit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.llamacpp.make_model import IM_END, IM_START, N_CTX, vocabulary, write_model

TEXTS = ["plain ASCII", "h\u00e9llo w\u00f6rld", "\u2713 \U0001f600", "\x00\x7f"]
PROBE = """
import json, sys
import llama_cpp

path, marked, texts = sys.argv[1], sys.argv[2].encode(), json.loads(sys.argv[3])
llama = llama_cpp.Llama(model_path=path, n_ctx=256)
round_trips = {}
for text in texts:
    tokens = llama.tokenize(text.encode(), add_bos=False, special=False)
    round_trips[text] = llama.detokenize(tokens).decode("utf-8", "replace")
facts = {
    "chat_format": llama.chat_format,
    "n_ctx": llama.n_ctx(),
    "eos": llama.token_eos(),
    "marked": llama.tokenize(marked, add_bos=False, special=True),
    "round_trips": round_trips,
}
llama.close()
print(json.dumps(facts))
"""
MARKED = f"{IM_START}user\nhi{IM_END}"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model, written to a temporary folder."""
    return write_model(tmp_path_factory.mktemp("model") / "tiny-random.gguf")


@pytest.fixture(scope="module")
def loaded(model_path: Path) -> dict[str, Any]:
    """What llama_cpp.Llama sees when it loads the model."""
    command = [sys.executable, "-c", PROBE, str(model_path), MARKED, json.dumps(TEXTS)]
    done = subprocess.run(command, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    facts: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return facts


def test_the_file_is_a_few_hundred_kilobytes(model_path: Path) -> None:
    """The model is small: between 100 KB and 1 MB."""
    assert 100_000 < model_path.stat().st_size < 1_000_000


def test_the_same_seed_writes_the_same_file(model_path: Path, tmp_path: Path) -> None:
    """The weights come from a seeded generator: two runs write the same bytes."""
    again = write_model(tmp_path / "again.gguf")
    assert again.read_bytes() == model_path.read_bytes()


def test_llama_cpp_reads_the_chatml_template(loaded: dict[str, Any]) -> None:
    """llama-cpp-python loads the model and recognises its chatml template."""
    assert loaded["chat_format"] == "chatml"
    assert loaded["n_ctx"] == N_CTX


def test_the_chatml_markers_are_single_tokens(loaded: dict[str, Any]) -> None:
    """<|im_start|> and <|im_end|> are one token each, and eos is <|im_end|>."""
    tokens, _ = vocabulary()
    start, end = tokens.index(IM_START), tokens.index(IM_END)
    assert loaded["marked"][0] == start
    assert loaded["marked"][-1] == end
    assert loaded["marked"].count(start) == loaded["marked"].count(end) == 1
    assert loaded["eos"] == end


def test_any_text_round_trips(loaded: dict[str, Any]) -> None:
    """The byte-level vocabulary tokenizes and detokenizes any UTF-8 text unchanged."""
    assert loaded["round_trips"] == {text: text for text in TEXTS}
