"""Clients that travel: pickled copies, forked processes, a Dask cluster."""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatproviders import Cromicle, FallbackProvider, batch
from chatproviders.testing import EmulatorServer, serve
from tests.constants import GREETING, HI


@pytest.fixture
def cromicle() -> Iterator[EmulatorServer]:
    with serve("cromicle") as server:
        yield server


def test_a_pickled_provider_sends_on_its_own_session(cromicle: EmulatorServer) -> None:
    """A client's pickled copy works, with a session of its own."""
    client = Cromicle(base_url=cromicle.url, max_retries=1, timeout=7.0)
    client.complete(HI)
    copy = pickle.loads(pickle.dumps(client))
    assert copy.complete(HI).text == GREETING
    assert (copy.max_retries, copy.timeout) == (1, 7.0)
    assert copy.session is not client.session
    assert len(cromicle.requests) == 2
    copy.close()
    assert client.complete(HI).text == GREETING  # closing the copy spared it


def test_a_pickled_fallback_provider_sends(cromicle: EmulatorServer) -> None:
    """A pickled FallbackProvider falls back, with a cooldown state of its own."""
    with serve("cromicle", status=500) as down:
        client = FallbackProvider(
            [
                Cromicle(base_url=down.url, max_retries=0),
                Cromicle(base_url=cromicle.url),
            ],
            cooldown=30.0,
        )
        assert client.complete(HI).text == GREETING  # the first is cooling down
        copy = pickle.loads(pickle.dumps(client))
        assert copy.cooldown == 30.0
        assert copy.complete(HI).text == GREETING
        assert copy.complete(HI).text == GREETING
        # the copy's cooldown is its own: it tried the failing one once
        assert len(down.requests) == 2
    assert len(cromicle.requests) == 3


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
@pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")
def test_a_forked_child_opens_its_own_connection(cromicle: EmulatorServer) -> None:
    """A forked child opens its own connection; the parent keeps its pooled one."""
    client = Cromicle(base_url=cromicle.url)
    assert client.complete(HI).text == GREETING
    assert cromicle.connections == 1  # one pooled keep-alive connection
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, and leave without running any cleanup
        status = 1
        try:
            os.write(write, client.complete(HI).text.encode("utf-8"))
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        said = pipe.read().decode("utf-8")
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert said == GREETING
    assert cromicle.connections == 2  # the child's own
    assert client.complete(HI).text == GREETING
    assert cromicle.connections == 2  # the parent's pooled one, still good
    assert len(cromicle.requests) == 3


@pytest.mark.slow
def test_a_batch_runs_on_a_dask_cluster_of_worker_processes(
    cromicle: EmulatorServer, tmp_path: Path
) -> None:
    """The calls of a batch run in the worker processes of a Dask LocalCluster."""
    import distributed

    inputs = [f"item {i}" for i in range(16)]
    checkpoint = tmp_path / "run.jsonl"
    client = FallbackProvider([Cromicle(base_url=cromicle.url)])  # pickled out
    with (
        distributed.LocalCluster(
            processes=True,
            n_workers=2,
            threads_per_worker=2,
            dashboard_address=None,
            host="127.0.0.1",
        ) as cluster,
        distributed.Client(cluster) as dask_client,
    ):
        pids = dask_client.run(os.getpid)  # worker address -> its process
        with distributed.get_task_stream(client=dask_client) as tasks:
            result = batch(
                client,
                inputs,
                executor=dask_client.get_executor(),
                checkpoint=checkpoint,
                progress=False,
            )
    assert result.texts == [GREETING] * 16
    assert [item.index for item in result] == list(range(16))
    assert sorted(r.json["message"] for r in cromicle.requests) == sorted(inputs)
    assert len(pids) == 2 and os.getpid() not in pids.values()
    assert len(tasks.data) == 16
    assert {task["worker"] for task in tasks.data} <= set(pids)
    records = [json.loads(line) for line in checkpoint.read_text("utf-8").splitlines()]
    assert sorted(record["index"] for record in records) == list(range(16))
