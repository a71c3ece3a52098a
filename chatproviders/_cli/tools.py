"""``chatproviders list`` and ``chatproviders emulate``."""

from __future__ import annotations

import argparse
import time
from typing import Any

from .._provider import Provider, has_default_url
from .._registry import list_providers, plugin_errors
from .common import EXIT_ERROR, EXIT_OK, UsageError, say

__all__ = ["run_emulate", "run_list", "wait_for_interrupt"]


def run_list(args: argparse.Namespace) -> int:
    """An aligned table of every provider class; with ``--check``, exit status
    1 when none answered."""
    rows = [["name", "working", "streaming", "history", "default model", "endpoint"]]
    classes = list_providers()
    measured = _measure(classes, args.base_url) if args.check else {}
    if args.check:
        rows[0].insert(2, "measured")
    for name, reason in plugin_errors().items():
        dist = name[: -len(" (distribution)")]
        if name.endswith(" (distribution)"):  # no entry point could be read
            say(f"chatproviders list: warning: distribution {dist!r} skipped: {reason}")
        else:
            say(f"chatproviders list: warning: plugin {name!r} did not load: {reason}")
    for cls in classes:
        site = cls.url.rstrip("/") or "BASE_URL"
        rows.append(
            [
                cls.name(),
                _yes(cls.working),
                *([measured.get(cls, "-")] if args.check else []),
                _yes(cls.supports_stream),
                _yes(cls.supports_message_history),
                cls.default_model or "any (-m)",
                getattr(cls, "api_endpoint", None) or site + cls.path,
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        print("  ".join([*cells, row[-1]]))
    if args.verbose:
        print()
        for cls in classes:
            print(cls.params)
    if args.check and "ok" not in measured.values():
        return EXIT_ERROR
    return EXIT_OK


def run_emulate(args: argparse.Namespace) -> int:
    """Serve one emulator in the foreground until Ctrl-C."""
    from ..testing import serve

    fields: dict[str, Any] = {"delay": args.delay}
    if args.text is not None:
        fields["text"] = args.text
    if args.chunk_size is not None:
        fields["chunk_size"] = args.chunk_size
    try:
        server = serve(
            args.provider,
            port=args.port,
            api_key=args.api_key,
            models=args.models,
            **fields,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        say(f"chatproviders: error: cannot listen on port {args.port}: {exc}")
        return EXIT_ERROR
    first = args.models[0] if args.models else "gpt-4o-mini"  # a listed one
    model = f" -m {first}" if args.provider == "openai" else ""
    key = "CHATPROVIDERS_API_KEY=... " if args.api_key else ""
    with server:
        try:
            print(f"{server.provider} emulator on {server.url} (Ctrl-C stops it)")
            print(
                f"try: {key}chatproviders chat -p {args.provider} "
                f'--base-url {server.url}{model} "Hello"',
                flush=True,
            )
            wait_for_interrupt()
        except KeyboardInterrupt:
            say("stopped")
    return EXIT_OK


def wait_for_interrupt() -> None:
    """Block until Ctrl-C; tests replace it. (On Windows, before Python 3.14, a
    lock wait such as ``Event().wait()`` does not wake for Ctrl-C; sleep does.)
    """
    while True:
        time.sleep(3600)


def _measure(
    classes: list[type[Provider]], base_urls: list[tuple[type[Provider], str]]
) -> dict[type[Provider], str]:
    """The status of a probe of each class: at its ``--base-url`` if given
    one (the last given wins), else at its default URL if it has one."""
    from .._health import check
    from .check import base_url_clients

    given = {
        cls: client for client, (cls, _) in zip(base_url_clients(base_urls), base_urls)
    }
    targets: list[Any] = [
        given.get(cls, cls) for cls in classes if cls in given or has_default_url(cls)
    ]
    try:
        results = check(targets)
    finally:
        for client in given.values():
            client.close()
    return {
        type(target) if isinstance(target, Provider) else target: result.status
        for target, result in zip(targets, results)
    }


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
