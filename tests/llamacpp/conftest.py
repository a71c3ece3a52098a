"""llama-cpp-python's server on loopback with a tiny random model.

The tests in this folder run only under ``tox -e llamacpp``, which builds the
server and sets ``CHATPROVIDERS_LLAMACPP=1``; a plain ``pytest`` does not
collect them. The model is written afresh by ``make_model.py`` into a
temporary folder; the server is started once per session and stopped after.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.llamacpp.server import LlamaServer, ServerNotStarted, running_server

ENABLE = "CHATPROVIDERS_LLAMACPP"

collect_ignore_glob = [] if os.environ.get(ENABLE) else ["test_*.py"]


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """``python -m llama_cpp.server`` on a free loopback port with the tiny model."""
    from tests.llamacpp.make_model import write_model

    folder = tmp_path_factory.mktemp("llamacpp")
    model = write_model(folder / "tiny-random.gguf")
    try:
        with running_server(model, folder) as server:
            yield server
    except ServerNotStarted as exc:
        pytest.fail(str(exc))
