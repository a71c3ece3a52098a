"""4. Import: ``import chatproviders`` against ``import requests``.

Each import runs in a fresh interpreter, the two interleaved; the figure is
the median time of the ``import`` statement itself, measured inside the
child (the whole process's wall time, interpreter start-up included, is shown
too). Bytecode is cached for both, as after ``pip install``: the children
keep it under a temporary ``PYTHONPYCACHEPREFIX``, filled by a first import,
so the checkout gets no ``__pycache__`` and ``PYTHONDONTWRITEBYTECODE`` in
the environment cannot make one side compile its sources on every run.
``-X importtime`` names the modules chatproviders adds to requests'.

Last, an audit hook in a child with a nonexistent ``HOME`` and
``PYTHONDONTWRITEBYTECODE=1`` imports requests, then records any socket, any
file opened for writing and any file-system change made while ``import
chatproviders`` runs. (urllib3 itself binds a socket to ``::1`` at import to
probe for IPv6; that is requests' and is shown apart.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

import _report

TARGET = 1.3

TIMED = (
    "import time; start = time.perf_counter(); import {0}; "
    "print(time.perf_counter() - start)"
)

AUDIT = r"""
import json, os, sys
found = []
NETWORK = ("socket.", "http.client.connect", "urllib.Request")
CHANGES = ("os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.chmod",
           "os.truncate", "os.link", "os.symlink", "os.utime", "shutil.")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

def hook(event, args):
    if event.startswith(NETWORK) or event.startswith(CHANGES):
        found.append(f"{event} {args!r}"[:200])
    elif event == "open":
        path, mode, flags = args
        if any(c in (mode or "") for c in "wax+") or (flags or 0) & WRITE_FLAGS:
            found.append(f"open for writing {path!r}")

sys.addaudithook(hook)
import requests
by_requests, found = found, []
import chatproviders
loaded = sorted(name for name in sys.modules if name.startswith("chatproviders"))
print(json.dumps({"found": found, "by_requests": by_requests, "loaded": loaded,
                  "asyncio": "asyncio" in sys.modules}))
"""


def _child(code: str, cache: str, *flags: str) -> str:
    """Run ``code`` in a fresh interpreter with its bytecode kept in ``cache``."""
    env = {**os.environ, "PYTHONPYCACHEPREFIX": cache}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run(
        [sys.executable, *flags, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return done.stdout if not flags else done.stderr


def import_times(rounds: int, cache: str) -> dict[str, tuple[float, float]]:
    """Median (import seconds, process seconds) per module, interleaved."""
    found: dict[str, list[tuple[float, float]]] = {"requests": [], "chatproviders": []}
    _child("import chatproviders", cache)  # fill the bytecode cache
    for _ in range(rounds):
        for module in found:
            start = time.perf_counter()
            inside = float(_child(TIMED.format(module), cache))
            found[module].append((inside, time.perf_counter() - start))
    return {
        module: (
            _report.median([inside for inside, _ in times]),
            _report.median([wall for _, wall in times]),
        )
        for module, times in found.items()
    }


class Imported(NamedTuple):
    own: int  # microseconds
    cumulative: int
    parent: str  # the module whose import imported it ("" at the top)


def importtime(module: str, cache: str) -> dict[str, Imported]:
    """``-X importtime``: each module's times and the module that imported it."""
    lines = _child(f"import {module}", cache, "-X", "importtime").splitlines()
    found: dict[str, Imported] = {}
    stack: list[str] = []
    # Children are printed before their parent, one more level indented: read
    # backwards, each line's parent is the last one read a level up.
    for line in reversed(lines):
        if not line.startswith("import time:") or "[us]" in line:
            continue
        own, cumulative, name = line[len("import time:") :].split("|")
        depth = (len(name) - len(name.lstrip())) // 2
        del stack[depth:]
        parent = stack[-1] if stack else ""
        stack.append(name.strip())
        found[name.strip()] = Imported(int(own), int(cumulative), parent)
    return found


def added_modules(rounds: int, cache: str) -> list[tuple[str, float]]:
    """What chatproviders adds to requests' imports, in milliseconds (the median
    of ``rounds`` runs): its own modules' time, then each other module it
    imports that requests does not, with all that module imports in turn.
    """
    runs = [
        (importtime("requests", cache), importtime("chatproviders", cache))
        for _ in range(rounds)
    ]
    groups: dict[str, list[float]] = {}
    for theirs, ours in runs:
        added = {name: ours[name] for name in ours.keys() - theirs.keys()}
        own = [name for name in added if name.split(".")[0] == "chatproviders"]
        rows = {
            f"chatproviders' own {len(own)} modules": sum(added[n].own for n in own)
        }
        for name, imported in added.items():
            if name not in own and imported.parent in own:
                rows[f"{name}, for {imported.parent}"] = imported.cumulative
        rows[f"total, {len(added)} modules"] = sum(i.own for i in added.values())
        for label, microseconds in rows.items():
            groups.setdefault(label, []).append(microseconds / 1000)
    return [(label, _report.median(ms)) for label, ms in groups.items()]


def audit() -> dict[str, object]:
    env = {**os.environ, "HOME": "/nonexistent/chatproviders-bench"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", AUDIT],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd="/" if os.name == "posix" else None,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def run(quick: bool = False) -> None:
    rounds = 5 if quick else 20
    with tempfile.TemporaryDirectory(prefix="chatproviders-bench-pyc-") as cache:
        times = import_times(rounds, cache)
        added = added_modules(3 if quick else 7, cache)
    requests_s, requests_wall = times["requests"]
    ours_s, ours_wall = times["chatproviders"]
    ratio = ours_s / requests_s
    verdict = _report.check(
        "import",
        "import chatproviders at most 1.3x import requests",
        ratio <= TARGET,
        f"{ratio:.2f}x",
    )
    _report.table(
        f"4. Import, fresh interpreter each time, bytecode cached, median of "
        f"{rounds} interleaved",
        ["import", "import ms", "process ms", "ratio", "target", ""],
        [
            [
                "baseline: requests",
                f"{requests_s * 1000:.1f}",
                f"{requests_wall * 1000:.1f}",
                "1.00x",
                "",
                "",
            ],
            [
                "ours: chatproviders",
                f"{ours_s * 1000:.1f}",
                f"{ours_wall * 1000:.1f}",
                f"{ratio:.2f}x",
                f"<= {TARGET}x",
                verdict,
            ],
        ],
    )
    rows = [[label, f"{ms:.1f}"] for label, ms in added]
    _report.table(
        "4b. What chatproviders adds to requests' imports (-X importtime)",
        ["module", "ms"],
        rows,
    )
    report = audit()
    found, by_requests = report["found"], report["by_requests"]
    assert isinstance(found, list) and isinstance(by_requests, list)
    verdict = _report.check(
        "import",
        "no network and no disk writes at import",
        not found,
        "; ".join(found) or "none",
    )
    loaded = report["loaded"]
    assert isinstance(loaded, list)
    _report.table(
        "4c. Side effects of import chatproviders (audit hook, HOME nonexistent, "
        "PYTHONDONTWRITEBYTECODE=1)",
        ["check", "result", ""],
        [
            ["sockets, connections, files written, fs changes", len(found), verdict],
            ["the same, by import requests before it", len(by_requests), ""],
            ["chatproviders.testing imported", "chatproviders.testing" in loaded, ""],
            ["asyncio imported", report["asyncio"], ""],
        ],
    )


if __name__ == "__main__":
    run()
