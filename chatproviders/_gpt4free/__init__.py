"""gpt4free compatibility: code written for gpt4free runs unchanged.

``facade`` holds ``ChatCompletion.create`` and ``working_providers``;
``entry_points`` the classmethods gpt4free calls on a provider class
(``create_completion``, ``create_async_generator``, ``params``);
``async_bridge`` turns a background stream into an async generator.
"""
