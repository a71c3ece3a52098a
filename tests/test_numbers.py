"""Every numeric option of every public function goes through ``_numbers``.

The table below gives each option a way to be called with a value; the walk
over the public API finds every parameter that takes a number and fails when
one is not in the table, so a new option cannot skip its check.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator
from typing import Any, Callable

import pytest

import chatproviders
import chatproviders.notebook
import chatproviders.testing
from chatproviders import Cromicle, FallbackProvider, OpenAICompatible
from chatproviders._numbers import check_count, check_rate, check_seconds
from chatproviders.testing import EmulatorServer, Reply, serve
from tests.constants import HI

Call = Callable[[EmulatorServer, Any], object]


def _client(server: EmulatorServer, **options: Any) -> Cromicle:
    return Cromicle(base_url=server.url, **options)


#: (where the parameter is defined, its name) -> a call giving it ``value``;
#: and the kind of number it takes.
OPTIONS: dict[tuple[str, str], tuple[str, Call]] = {
    ("Provider.__init__", "timeout"): ("seconds", lambda s, v: _client(s, timeout=v)),
    ("Provider.__init__", "total_timeout"): (
        "seconds",
        lambda s, v: _client(s, total_timeout=v),
    ),
    ("Provider.__init__", "max_retries"): (
        "count",
        lambda s, v: _client(s, max_retries=v),
    ),
    ("Gpt4freeEntryPoints.create_completion", "timeout"): (
        "seconds",
        lambda s, v: Cromicle.create_completion(None, HI, base_url=s.url, timeout=v),
    ),
    ("Provider.probe_model", "timeout"): (
        "seconds",
        lambda s, v: _client(s).probe_model(v),
    ),
    ("OpenAICompatible.probe_model", "timeout"): (
        "seconds",
        lambda s, v: OpenAICompatible(s.url, model="m").probe_model(v),
    ),
    ("Client.stream_in_background", "maxsize"): (
        "count",
        lambda s, v: _client(s).stream_in_background(HI, maxsize=v),
    ),
    ("Responses.stream_in_background", "maxsize"): (
        "count",
        lambda s, v: chatproviders.OpenAICompatible(
            s.url, model="m"
        ).responses.stream_in_background("Hi", maxsize=v),
    ),
    ("BackgroundStream.__init__", "maxsize"): (
        "count",
        lambda s, v: chatproviders.BackgroundStream(iter(["a"]), maxsize=v),
    ),
    ("BackgroundStream.result", "timeout"): (
        "wait",
        lambda s, v: chatproviders.BackgroundStream(iter(["a"])).result(timeout=v),
    ),
    ("ResponsesBackgroundStream.response", "timeout"): (
        "wait",
        lambda s, v: chatproviders.ResponsesBackgroundStream(iter(["a"])).response(
            timeout=v
        ),
    ),
    ("FallbackProvider.__init__", "cooldown"): (
        "seconds_or_zero",
        lambda s, v: FallbackProvider([_client(s)], cooldown=v),
    ),
    ("FallbackProvider.__init__", "total_timeout"): (
        "seconds",
        lambda s, v: FallbackProvider([_client(s)], total_timeout=v),
    ),
    ("FallbackProvider.__init__", "health_interval"): (
        "seconds",
        lambda s, v: FallbackProvider([_client(s)], health_interval=v),
    ),
    ("FallbackProvider.check", "timeout"): (
        "seconds",
        lambda s, v: FallbackProvider([_client(s)]).check(timeout=v),
    ),
    ("batch", "concurrency"): (
        "count_from_1",
        lambda s, v: chatproviders.batch(_client(s), ["a"], concurrency=v),
    ),
    ("batch", "rate"): (
        "rate",
        lambda s, v: chatproviders.batch(_client(s), ["a"], rate=v),
    ),
    ("check", "timeout"): (
        "seconds",
        lambda s, v: chatproviders.check(_client(s), timeout=v),
    ),
    ("working_providers", "timeout"): (
        "seconds",
        lambda s, v: chatproviders.working_providers(timeout=v),
    ),
    ("display_stream", "interval"): (
        "seconds_or_zero",
        lambda s, v: chatproviders.notebook.display_stream(iter(["a"]), interval=v),
    ),
    ("EmulatorServer.__init__", "port"): (
        "port",
        lambda s, v: EmulatorServer("cromicle", port=v),
    ),
    ("EmulatorServer.__init__", "idle_timeout"): (
        "seconds",
        lambda s, v: EmulatorServer("cromicle", idle_timeout=v),
    ),
    ("EmulatorServer.stop", "timeout"): (
        "seconds_or_zero",
        lambda s, v: EmulatorServer("cromicle").stop(timeout=v),
    ),
    ("EmulatorServer.wait_for_requests", "count"): (
        "count",
        lambda s, v: s.wait_for_requests(v, timeout=0),
    ),
    ("EmulatorServer.wait_for_requests", "timeout"): (
        "seconds_or_zero",
        lambda s, v: s.wait_for_requests(1, timeout=v),
    ),
    ("Client.parse", "max_parse_retries"): (
        "count",
        lambda s, v: _client(s).parse(
            [{"role": "user", "content": "Hi"}],
            {"type": "object"},
            max_parse_retries=v,
        ),
    ),
    ("Reply.__init__", "chunk_size"): (
        "count_from_1",
        lambda s, v: Reply(chunk_size=v),
    ),
    ("Reply.__init__", "delay"): ("seconds_or_zero", lambda s, v: Reply(delay=v)),
    ("Reply.__init__", "status"): ("status", lambda s, v: Reply(status=v)),
    ("Reply.__init__", "stall_after"): ("count", lambda s, v: Reply(stall_after=v)),
    ("Reply.__init__", "reset_after"): ("count", lambda s, v: Reply(reset_after=v)),
    ("Reply.__init__", "tool_call_fragments"): (
        "count_from_1",
        lambda s, v: Reply(tool_call_fragments=v),
    ),
}

#: Numeric parameters that are no option: values the library itself makes
#: (results, events, errors), hooks it calls, and requests' own adapter.
NOT_OPTIONS = {
    "Attempt.__init__",
    "BatchItem.__init__",
    "ChatResponse.__init__",
    "ParsedResponse.__init__",
    "ResponsesReply.__init__",
    "ResponseUsage.__init__",
    "OutputItemDone.__init__",
    "ChatStream.__init__",
    "CheckResult.__init__",
    "ToolCallDelta.__init__",
    "Usage.__init__",
    "Answer.__init__",
    "Protocol.error",
    "OpenAICompatible.error",
    "Provider.status_error_class",
    "GPROChat.status_error_class",
    "GPROChat.generate_signature",
    "HTTPAdapter.__init__",
    "HTTPAdapter.send",
    "GuardedAdapter.send",
}
#: The same for one parameter: token counts a reply reports, and what a
#: client hands on to another (a prepared call, clock readings).
NOT_OPTION_PARAMETERS = {("Reply.__init__", "usage")} | {
    (f"{cls}.send_prepared", name)
    for cls in ("Client", "Provider", "FallbackProvider")
    for name in ("prepared", "deadline", "started")
}

#: Values each kind refuses.
BAD: dict[str, list[Any]] = {
    "seconds": [0, -1, math.nan, math.inf, 2e6, True, "5"],
    "seconds_or_zero": [-1, math.nan, 2e6, True, "5"],
    "wait": [-1, math.nan, True, "5"],  # infinity: as long as it takes
    "count": [-1, 1.5, True, "3"],
    "count_from_1": [0, -1, 1.5, True, "3"],
    "rate": [0, -1, math.nan, math.inf, True, "3"],
    "port": [-1, 65536, True, "80"],
    "status": [199, 600, 404.0, True],
}


def _numeric(parameter: inspect.Parameter) -> bool:
    default = parameter.default
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        return True
    return any(
        word in str(parameter.annotation) for word in ("float", "int", "Timeout")
    )


def _public_callables() -> Iterator[Callable[..., Any]]:
    modules = (chatproviders, chatproviders.testing, chatproviders.notebook)
    for module in modules:
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.isclass(value):
                if issubclass(value, BaseException):
                    continue
                yield value.__init__
                for member_name, member in inspect.getmembers(value):
                    if not member_name.startswith("_") and callable(member):
                        yield member
            elif callable(value):
                yield value


def _ours(function: Callable[..., Any]) -> bool:
    return getattr(function, "__module__", "").startswith("chatproviders")


def test_every_numeric_option_of_the_public_api_is_in_the_table() -> None:
    """The walk finds each numeric parameter; each is checked below or is no option."""
    found = set()
    for function in _public_callables():
        try:
            parameters = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):
            continue
        where = getattr(function, "__qualname__", "")
        if where in NOT_OPTIONS or not _ours(function):
            continue
        found |= {(where, p.name) for p in parameters if _numeric(p)}
    assert found - NOT_OPTION_PARAMETERS == set(OPTIONS)


@pytest.mark.parametrize(
    ("option", "value"),
    [(option, value) for option, (kind, _) in OPTIONS.items() for value in BAD[kind]],
    ids=str,
)
def test_a_bad_number_is_a_value_error_naming_the_option_before_any_request(
    cromicle_server: EmulatorServer, option: tuple[str, str], value: Any
) -> None:
    """Each option refuses a bad number with ValueError, and nothing is sent."""
    _, call = OPTIONS[option]
    with pytest.raises(ValueError, match=rf"^{option[1]} must be"):
        call(cromicle_server, value)
    assert cromicle_server.requests == []


def test_check_refuses_a_timeout_over_the_cap_before_any_request() -> None:
    """check(client, timeout=2e6) raises; it used to probe and report ``error``."""
    with serve("cromicle") as server, Cromicle(base_url=server.url) as client:
        with pytest.raises(ValueError, match="timeout must be a positive number"):
            chatproviders.check(client, timeout=2e6)
        assert server.requests == []


@pytest.mark.parametrize(
    ("check", "value", "kwargs"),
    [
        (check_seconds, 1e6, {}),
        (check_seconds, 0, {"zero": True}),
        (check_seconds, math.inf, {"zero": True, "maximum": math.inf}),
        (check_count, 0, {}),
        (check_count, 65535, {"maximum": 65535}),
        (check_rate, 0.1, {}),
    ],
)
def test_the_limits_themselves_are_accepted(
    check: Callable[..., Any], value: Any, kwargs: dict[str, Any]
) -> None:
    """Each helper returns the value at its bounds, unchanged."""
    assert check(value, "x", **kwargs) == value
