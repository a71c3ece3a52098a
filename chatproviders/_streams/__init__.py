"""Streams and what they carry.

``events`` holds the stream events and the reply's parts (tool calls, usage,
reasoning); ``chat_stream`` the :class:`ChatStream` a call returns and the
:class:`ChatResponse` it joins into; ``openai_chunks`` decodes OpenAI-style
chunks into events; ``background`` reads a stream on a worker thread;
``closing`` gives ``with`` to everything that has a ``close()``.
"""
