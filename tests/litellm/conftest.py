"""LiteLLM's proxy in front of the emulator: only under ``tox -e litellm``,
which installs ``litellm[proxy]`` and sets ``CHATPROVIDERS_LITELLM=1``.
"""

from __future__ import annotations

import os

collect_ignore_glob = [] if os.environ.get("CHATPROVIDERS_LITELLM") else ["test_*.py"]
