"""Server side of each protocol: which requests it accepts, how it encodes a Reply.

Each class reads like its table in PROTOCOLS.md. Bodies are checked strictly: a
missing field, a field of the wrong type or (except for openai, which takes OpenAI's
other parameters) an unexpected field is a bad request; that catches clients that
merge stray keyword arguments into the JSON body.

Errors, by provider (the chat request is a POST; the reply body is raw UTF-8 text
unless said otherwise):

- cromicle ``/chat``: 400 for a bad shape or hash, one line of text/plain.
- acytoo ``/api/completions``: 400 for a bad shape, one line of text/plain.
- gprochat ``/api/generate``: 400 for a bad shape, 401 for a bad signature,
  ``{"error": {"message": ...}}`` as the real service.
- codelinkava ``/api/chat`` (SSE reply): 400, ``{"error": {"message": ...}}``.
- openai ``/v1/chat/completions`` (SSE or JSON reply), ``/v1/responses`` (see
  ``_responses``), ``GET /v1/models[/ID]``:
  400 bad shape (messages, a ``tool`` message that answers no call, a call
  left unanswered, ``tools``, ``stream_options`` without ``stream``), 401 API
  key, 404 unknown model, ``{"error": {"message", "type", "param", "code"}}``.
- all: 404 for an unknown path, 405 (with ``Allow``) for a wrong method.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, ClassVar, Mapping, Sequence

from chatproviders.testing import _checks, _encode, _openai_checks, _responses
from chatproviders.testing._reply import Reply
from chatproviders.testing._traffic import Answer, RecordedRequest

OPENAI_MODELS = ("gpt-3.5-turbo", "gpt-4o-mini")

#: OpenAI's messages; their details are checked by _openai_checks.
OPENAI_MESSAGES = _checks.Kind("a non-empty array of messages", lambda v: bool(v))


class Protocol:
    """A provider's server: one POST route, a JSON body check, raw UTF-8 text out."""

    name: ClassVar[str]
    title: ClassVar[str]
    route: ClassVar[str]
    prefix: ClassVar[str] = ""  # part of the base URL
    fields: ClassVar[Mapping[str, _checks.Kind]]  # required
    optional: ClassVar[Mapping[str, _checks.Kind]] = {}
    others_allowed: ClassVar[bool] = False
    #: Errors as ``{"error": {"message": ...}}`` rather than a line of text.
    json_errors: ClassVar[bool] = False

    @property
    def greeting(self) -> str:
        """The default reply text (the em dash makes it non-ASCII)."""
        return f"Hello from the {self.title} emulator \u2014 ready."

    def handle(self, request: RecordedRequest) -> Answer | None:
        """The answer decided by the request alone (an error), or None."""
        if request.route != self.route:
            return self.error(404, f"no such path: {request.route}")
        if request.method != "POST":
            answer = self.error(405, f"use POST for {self.route}")
            return answer.with_header("Allow", "POST")
        return self.check(request.json)

    def check(self, body: Any) -> Answer | None:
        """An error answer when the parsed JSON body is not a valid request."""
        args = (self.fields, self.optional, self.others_allowed)
        problem = _checks.shape_problem(body, *args)
        return None if problem is None else self.error(400, problem)

    def render(self, reply: Reply, request: RecordedRequest) -> Answer:
        """The answer to a valid chat request: the reply, or its fault."""
        if not reply.replaces_answer:
            return self.encode(reply, request)
        if reply.body is not None:
            return _encode.custom(reply.status, reply.body)
        if reply.status >= 400:
            return self.error(reply.status, _phrase(reply.status))
        return Answer(reply.status, {}, [])

    def encode(self, reply: Reply, request: RecordedRequest) -> Answer:
        return _encode.raw_text(reply)

    def error(self, status: int, message: str) -> Answer:
        if self.json_errors:
            return _encode.json_answer(status, {"error": {"message": message}})
        return _encode.plain(status, message)


class Cromicle(Protocol):
    """A prompt signed with sha256(token + message); raw text back."""

    name = "cromicle"
    title = "Cromicle"
    route = "/chat"
    fields = {
        "message": _checks.STRING,
        "token": _checks.STRING,
        "hash": _checks.STRING,
    }

    def check(self, body: Any) -> Answer | None:
        answer = super().check(body)
        if answer is None:
            expected = _checks.cromicle_hash(body["token"], body["message"])
            if body["hash"] != expected:
                return self.error(400, "hash must be sha256(token + message), hex")
        return answer


class Acytoo(Protocol):
    """The messages verbatim; raw text back."""

    name = "acytoo"
    title = "Acytoo"
    route = "/api/completions"
    fields = {
        "key": _checks.STRING,
        "model": _checks.STRING,
        "messages": _checks.MESSAGES,
        "temperature": _checks.NUMBER,
        "password": _checks.STRING,
    }


class GPROChat(Protocol):
    """One Gemini-style user turn, signed with a shared secret; raw text back."""

    name = "gprochat"
    title = "GPROChat"
    route = "/api/generate"
    json_errors = True
    fields = {
        "messages": _checks.GEMINI_TURN,
        "time": _checks.INTEGER,
        "pass": _checks.NULL,
        "sign": _checks.STRING,
    }

    def check(self, body: Any) -> Answer | None:
        answer = super().check(body)
        if answer is None:
            prompt = body["messages"][0]["parts"][0]["text"]
            if body["sign"] != _checks.gprochat_sign(body["time"], prompt):
                return self.error(401, "invalid signature")
        return answer


class CodeLinkAva(Protocol):
    """The messages verbatim, stream=true; OpenAI chat-chunk SSE back."""

    name = "codelinkava"
    title = "CodeLinkAva"
    route = "/api/chat"
    json_errors = True
    fields = {
        "messages": _checks.MESSAGES,
        "temperature": _checks.NUMBER,
        "stream": _checks.TRUE,
    }

    def encode(self, reply: Reply, request: RecordedRequest) -> Answer:
        return _encode.sse(reply, model="gpt-3.5-turbo")


class OpenAICompatible(Protocol):
    """``/chat/completions`` and ``/models`` under ``/v1``, optional bearer key."""

    name = "openai"
    title = "OpenAI-compatible"
    route = "/v1/chat/completions"
    prefix = "/v1"
    fields = {"model": _checks.STRING, "messages": OPENAI_MESSAGES}
    optional = {"stream": _checks.BOOLEAN, "temperature": _checks.NUMBER}
    others_allowed = True

    def __init__(self, api_key: str | None, models: Sequence[str] | None) -> None:
        if isinstance(models, str):
            raise TypeError("models must be a sequence of names, not a string")
        self.api_key = api_key
        self.models = tuple(OPENAI_MODELS if models is None else models)

    def handle(self, request: RecordedRequest) -> Answer | None:
        authorization = request.headers.get("authorization")
        if self.api_key is not None and authorization != f"Bearer {self.api_key}":
            message = "Incorrect API key provided."
            if authorization is None:
                message = "You didn't provide an API key (Authorization: Bearer)."
            return self.error(401, message, code="invalid_api_key")
        if request.route == "/v1/models" or request.route.startswith("/v1/models/"):
            return self._models(request)
        if request.route == _responses.ROUTE:  # the Responses API
            return self._responses(request)
        answer = super().handle(request)
        if answer is None and request.json["model"] not in self.models:
            return self._no_model(request.json["model"])
        return answer

    def check(self, body: Any) -> Answer | None:
        """OpenAI's checks: shapes, tool-call histories, tools, stream_options."""
        answer = super().check(body)
        if answer is None:
            problem = _openai_checks.request_problem(body)
            if problem is not None:
                return self.error(400, problem[0], param=problem[1])
        return answer

    def encode(self, reply: Reply, request: RecordedRequest) -> Answer:
        if request.route == _responses.ROUTE:
            return _responses.encode(reply, request.json)
        from chatproviders.testing._structured import structured_reply

        reply = structured_reply(reply, request.json, self.greeting)  # JSON asked for
        model = request.json["model"]
        if request.json.get("stream"):
            usage = _openai_checks.wants_usage(request.json)
            return _encode.sse(reply, model=model, include_usage=usage)
        return _encode.json_answer(200, _encode.completion(reply, model))

    def error(
        self,
        status: int,
        message: str,
        code: str | None = None,
        param: str | None = None,
    ) -> Answer:
        kind = "invalid_request_error"
        error = {"message": message, "type": kind, "param": param, "code": code}
        return _encode.json_answer(status, {"error": error})

    def _models(self, request: RecordedRequest) -> Answer:
        if request.method != "GET":
            answer = self.error(405, f"use GET for {request.route}")
            return answer.with_header("Allow", "GET")
        if request.route == "/v1/models":
            listing = {"object": "list", "data": [_model(m) for m in self.models]}
            return _encode.json_answer(200, listing)
        name = request.route[len("/v1/models/") :]
        if name not in self.models:
            return self._no_model(name)
        return _encode.json_answer(200, _model(name))

    def _responses(self, request: RecordedRequest) -> Answer | None:
        if request.method != "POST":
            answer = self.error(405, f"use POST for {request.route}")
            return answer.with_header("Allow", "POST")
        problem = _responses.request_problem(request.json)
        if problem is not None:
            return self.error(400, problem[0], param=problem[1])
        if request.json["model"] not in self.models:
            return self._no_model(request.json["model"])
        return None

    def _no_model(self, name: str) -> Answer:
        message = f"The model `{name}` does not exist or you do not have access to it."
        return self.error(404, message, code="model_not_found", param="model")


def make_protocol(
    provider: str | type[Protocol] | Protocol,
    api_key: str | None = None,
    models: Sequence[str] | None = None,
) -> Protocol:
    """The protocol to serve: a :class:`Protocol` (class or instance), or a
    registered provider's name (any case), whose ``emulator`` names its class.
    """
    if isinstance(provider, Protocol):
        protocol_class: type[Protocol] = type(provider)
    elif isinstance(provider, type) and issubclass(provider, Protocol):
        protocol_class = provider
    elif isinstance(provider, str):
        protocol_class = emulator_of(provider)
    else:
        raise TypeError(
            "provider must be a provider's name or a Protocol class or instance, "
            f"got {type(provider).__name__}"
        )
    if issubclass(protocol_class, OpenAICompatible):
        if isinstance(provider, Protocol):
            return provider
        return protocol_class(api_key, models)
    if api_key is not None or models is not None:
        raise ValueError("api_key and models apply to the openai emulator only")
    return provider if isinstance(provider, Protocol) else protocol_class()


def emulator_of(name: str) -> type[Protocol]:
    """The emulator class of the registered provider called ``name``."""
    import importlib

    from chatproviders import get_provider

    try:
        cls = get_provider(name)
    except LookupError:
        cls = None
    if cls is None or cls.emulator is None:
        known = ", ".join(emulated_names())
        raise ValueError(f"unknown provider {name!r}; expected one of: {known}")
    module, _, attribute = cls.emulator.partition(":")
    found = getattr(importlib.import_module(module), attribute)
    if not (isinstance(found, type) and issubclass(found, Protocol)):
        raise TypeError(f"{cls.name()}.emulator must name a Protocol class: {found!r}")
    return found


def emulated_names() -> list[str]:
    """The names ``serve()`` takes: each registered provider that has an emulator,
    by its first alias (``openai``) or its name, in lower case.
    """
    from chatproviders import list_providers

    return [emulator_name(cls) for cls in list_providers() if cls.emulator is not None]


def emulator_name(cls: type[Any]) -> str:
    """The name ``serve()`` takes for provider class ``cls``: its first alias
    (``openai``) or its name, in lower case.
    """
    return str(cls.aliases[0] if cls.aliases else cls.name()).lower()


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "emulator"}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


class LlamaCppServer(OpenAICompatible):
    """The openai emulator refusing ``response_format`` types other than
    ``text`` and ``json_object`` with HTTP 500, as llama-cpp-python's server
    (0.3) does; ``json_object`` with a ``schema`` is answered from it::

        with serve(LlamaCppServer) as server: ...
    """

    name = "llamacpp"
    title = "llama.cpp server"

    def check(self, body: Any) -> Answer | None:
        answer = super().check(body)
        format_ = body.get("response_format") if answer is None else None
        kind = format_.get("type") if isinstance(format_, dict) else None
        if format_ is None or kind in ("text", "json_object"):
            return answer
        error = {
            "type": "literal_error",
            "loc": ("body", "response_format", "type"),
            "msg": "Input should be 'text' or 'json_object'",
            "input": kind,
            "ctx": {"expected": "'text' or 'json_object'"},
        }
        message = f"1 validation error:\n  {error}"
        payload = {
            "message": message,
            "type": "internal_server_error",
            "param": None,
            "code": None,
        }
        return _encode.json_answer(500, {"error": payload})
