"""Values many test files share: the messages they send, the addresses they
use when nothing is listening, the names of threads and files they look for.
"""

from __future__ import annotations

from pathlib import Path

#: One user message; most tests send this.
HI = [{"role": "user", "content": "Hi"}]
#: The same in the words the OpenAI and provider tests' expected bodies quote.
HELLO = [{"role": "user", "content": "hello"}]
#: Where nothing listens (the discard port): a client made for a test that
#: sends nothing, or that must fail to connect.
BASE = "http://127.0.0.1:9"
#: The same, with the ``/v1`` an OpenAI-compatible server's URLs have.
OPENAI_BASE = f"{BASE}/v1"
#: The name every background stream's worker thread starts with.
WORKER = "chatproviders-background-"
#: The Cromicle emulator's default reply.
GREETING = "Hello from the Cromicle emulator — ready."
#: The repository's root, and its README.
ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.rst"
