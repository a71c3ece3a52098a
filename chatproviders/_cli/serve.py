"""``chatproviders serve``: the OpenAI-compatible gateway on waitress.

::

    chatproviders serve cromicle fast=cromicle,acytoo \\
        --base-url cromicle=http://127.0.0.1:8001 --port 0

The first line of stdout is the URL (``http://HOST:PORT``, the real port for
``--port 0``); the access log goes to stderr, one line per request.
"""

from __future__ import annotations

import argparse
from typing import Any

from . import arguments
from .common import EXIT_ERROR, EXIT_OK, UsageError, say

__all__ = ["HELP", "NAME", "add_arguments", "run"]

NAME = "serve"
HELP = "serve routes as an OpenAI-compatible API"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``serve``, on its parser."""
    parser.epilog = (
        "Each stream holds one of the --threads while open: size it for the "
        "streams you expect at once. Several processes: gunicorn -k gthread "
        "'chatproviders.gateway:make_app(\"gateway.toml\")'."
    )
    parser.add_argument(
        "routes",
        nargs="*",
        metavar="ROUTE",
        help="a provider name as `list` shows it, or ALIAS=NAME1,NAME2 (a fallback)",
    )
    parser.add_argument(
        "--base-url",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="where provider NAME is (repeatable)",
    )
    parser.add_argument("--config", metavar="FILE", help="a TOML config file")
    parser.add_argument("--keys", metavar="FILE", help="a TOML file of client keys")
    parser.add_argument(
        "--limits-storage",
        metavar="URI",
        help="where key limits are counted: memory:// (default) or redis://HOST:PORT",
    )
    parser.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    parser.add_argument(
        "--port",
        type=arguments.port,
        default=8000,
        help="default: %(default)s; 0: a free one",
    )
    parser.add_argument(
        "--threads",
        type=arguments.positive,
        default=32,
        metavar="N",
        help="streams served at once (default: %(default)s)",
    )
    parser.add_argument(
        "--grace",
        type=arguments.seconds,
        default=30.0,
        metavar="S",
        help="on SIGTERM, seconds open streams get to finish (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    """Build the app from the options and serve it until SIGTERM or Ctrl-C."""
    from ..gateway import ConfigError, make_app
    from ..gateway._config import load_config, load_keys, parse_route
    from ..gateway._server import run as serve

    config = _config_dict(args, load_config, load_keys, parse_route)
    if args.threads < 1:
        raise UsageError("--threads must be at least 1")
    try:
        app = make_app(config)
    except (ConfigError, TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None

    def listening(url: str) -> None:
        print(url, flush=True)
        say(f"chatproviders serve: routes {', '.join(app.routes.routes)} on {url}")

    def stopping(open_requests: int) -> None:
        say(
            "chatproviders serve: stopped listening; waiting up to "
            f"{args.grace:g}s for {open_requests} open request(s)"
        )

    try:
        serve(
            app,
            host=args.host,
            port=args.port,
            threads=args.threads,
            grace=args.grace,
            on_listening=listening,
            on_stopping=stopping,
        )
    except OSError as exc:
        app.close()
        say(f"chatproviders: error: cannot listen on {args.host}:{args.port}: {exc}")
        return EXIT_ERROR
    except RuntimeError as exc:  # waitress is not installed
        app.close()
        raise UsageError(str(exc)) from None
    say("chatproviders serve: stopped")
    return EXIT_OK


def _config_dict(
    args: argparse.Namespace, load_config: Any, load_keys: Any, parse_route: Any
) -> Any:
    """The config file's settings, with the command line's on top."""
    from ..gateway import ConfigError

    try:
        config = load_config(args.config) if args.config else None
        routes = dict(config.routes) if config else {}
        for text in args.routes:
            alias, names = parse_route(text)
            routes[alias] = names
        if not routes:
            raise UsageError(
                "name at least one ROUTE (e.g. cromicle) or give --config FILE"
            )
        base_urls = dict(config.base_urls) if config else {}
        for text in args.base_url:
            name, sep, url = text.partition("=")
            if not sep or not name or not url:
                raise UsageError(f"--base-url takes NAME=URL, got {text!r}")
            base_urls[name.strip().lower()] = url.strip()
        keys = load_keys(args.keys) if args.keys else (config.keys if config else [])
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    fields: dict[str, Any] = {
        "routes": [f"{alias}={','.join(names)}" for alias, names in routes.items()],
        "base_urls": base_urls,
        "keys": keys,
    }
    if config is not None:
        fields.update(
            api_keys=config.api_keys,
            models=config.models,
            max_retries=config.max_retries,
            timeout=config.timeout,
            health_interval=config.health_interval,
            limits_storage=config.limits_storage,
            max_body=config.max_body,
            max_messages=config.max_messages,
        )
    if args.limits_storage:
        fields["limits_storage"] = args.limits_storage
    return {name: value for name, value in fields.items() if value is not None}
