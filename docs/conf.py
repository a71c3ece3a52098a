"""Sphinx configuration of the chatproviders site (``tox -e docs``).

Built with ``-W -n``: every warning and every unresolved cross-reference is an
error. Nothing is fetched at build time (no intersphinx), so references to
other projects' names (the standard library, requests, urllib3) are left as
plain text by ``nitpick_ignore_regex`` below, and only ours must resolve.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import chatproviders  # noqa: E402

# Some names are imported on first use (batch, check...): autodoc lists a
# module's members with dir(), so load them all before it looks.
for _name in chatproviders.__all__:
    getattr(chatproviders, _name)

project = "chatproviders"
copyright = "2026, the chatproviders contributors"
release = chatproviders.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinxarg.ext",
    "public_names",
]

exclude_patterns = ["_build"]
# Pages that other branches add; listed here so that a build before they are
# merged does not fail on their missing toctree entries.
suppress_warnings: list[str] = []

root_doc = "index"
html_theme = "alabaster"
html_static_path: list[str] = []
html_title = f"chatproviders {release}"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_typehints_description_target = "documented"
autodoc_default_options = {"members": True, "show-inheritance": True}
autoclass_content = "both"

nitpicky = True
# Other projects' names: without network there is no inventory to link them
# to, so they stay unlinked text. Our own names must all resolve.
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(requests|urllib3|http|socket|ssl|asyncio|concurrent|collections"
        r"|typing|typing_extensions|types|os|io|threading|queue|pathlib|datetime"
        r"|json|enum|argparse|contextlib|logging|abc|dataclasses|weakref|IPython"
        r"|dask|tqdm|pytest|_pytest|builtins)(\..*)?",
    ),
    (
        r"py:.*",
        r"(Any|Optional|Union|Callable|Iterator|Iterable|AsyncIterator"
        r"|Sequence|Mapping|MutableMapping|Generator|AsyncGenerator|Literal"
        r"|NoReturn|Self|TypeVar|ClassVar|Awaitable|Coroutine|Collection|T|P)",
    ),
    (
        r"py:.*",
        r"(int|str|bytes|bytearray|float|bool|None|NoneType|dict|list"
        r"|tuple|set|frozenset|type|object|memoryview|Exception|BaseException"
        r"|ValueError|TypeError|LookupError|KeyError|RuntimeError|OSError"
        r"|TimeoutError|KeyboardInterrupt|StopIteration|ConnectionError"
        r"|NotImplemented|Ellipsis|callable|iterable)",
    ),
    # Private names in signatures (type aliases, internal state classes):
    # documented in the prose of what uses them, not as entries of their own.
    (r"py:.*", r"chatproviders(\.\w+)*\._\w+(\.\w+)*"),
    (
        r"py:.*",
        r"(Proxy|Timeout|Retry|Source|Locate|Messages|Framing|Headers|Input"
        r"|PathLike|Executor)",
    ),
]
