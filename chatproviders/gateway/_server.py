"""Running a gateway on waitress, and stopping it gently.

waitress serves each request on one of its ``threads``, for as long as the
request lasts: an open stream holds a thread until it ends, so size
``threads`` for the streams you expect at once (requests beyond wait in
waitress's queue). waitress 3 sends each piece of a body as the application
yields it (``send_bytes=1``), so every SSE event leaves at once; and with
``channel_request_lookahead`` it keeps reading the connection, which is how
the gateway learns that a client hung up.

On SIGTERM (or SIGINT) the listening socket is closed at once (new
connections are refused), requests in progress get ``grace`` seconds to
finish, then the upstreams of those left are closed and the process ends.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import Any, Callable, Optional

from ._app import Gateway

__all__ = ["DEFAULT_GRACE", "DEFAULT_THREADS", "run"]

#: Seconds open requests get to finish after SIGTERM.
DEFAULT_GRACE = 30.0
#: waitress's threads: one per stream open at once.
DEFAULT_THREADS = 32


def run(
    app: Gateway,
    host: str = "127.0.0.1",
    port: int = 8000,
    threads: int = DEFAULT_THREADS,
    grace: float = DEFAULT_GRACE,
    on_listening: Optional[Callable[[str], None]] = None,
    stop: Optional[threading.Event] = None,
    on_stopping: Optional[Callable[[int], None]] = None,
) -> None:
    """Serve ``app`` until SIGTERM or SIGINT (or ``stop`` is set), then drain.

    ``on_listening`` gets the URL (``http://HOST:PORT``, the real port when
    ``port`` is 0) once the socket listens; ``on_stopping`` the number of
    requests still open once it no longer does.
    """
    try:
        import waitress
    except ImportError as exc:
        raise RuntimeError(
            "chatproviders serve runs on waitress: pip install 'chatproviders[serve]'"
        ) from exc
    try:
        server: Any = waitress.create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            channel_request_lookahead=1,  # read on, to see a client hang up
            connection_limit=max(100, threads * 4),
            # waitress reads a whole body before the app sees it: bounded near
            # max_body (the app answers 413 in OpenAI's shape up to this much,
            # waitress a plain 413 beyond)
            max_request_body_size=app.config.max_body + 1024 * 1024,
            ident="chatproviders",
            clear_untrusted_proxy_headers=True,
        )
    except ValueError as exc:  # waitress: a host that resolves to nothing
        raise OSError(f"{exc} ({host!r})") from None
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    loop = threading.Thread(target=server.run, name="chatproviders-serve", daemon=True)
    loop.start()
    url = f"http://{_url_host(host)}:{server.effective_port}"
    if on_listening is not None:
        on_listening(url)
    while not stop.wait(1.0):  # a timed wait: signals are handled between waits
        pass
    closed = threading.Event()

    def stop_accepting() -> None:  # in waitress's loop thread
        server.accepting = False
        server.del_channel()
        server.socket.close()
        closed.set()

    server.trigger.pull_trigger(stop_accepting)
    closed.wait(5.0)
    if on_stopping is not None:
        on_stopping(app.active)
    app.wait_idle(grace)
    _wait_flushed(server, deadline=time.monotonic() + 2.0)
    app.close()
    server.task_dispatcher.shutdown(timeout=1)


def _wait_flushed(server: Any, deadline: float) -> None:
    """Let waitress send what the last replies left in its buffers."""
    while time.monotonic() < deadline:
        channels = list(getattr(server, "active_channels", {}).values())
        if not any(getattr(c, "total_outbufs_len", 0) for c in channels):
            return
        time.sleep(0.05)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
