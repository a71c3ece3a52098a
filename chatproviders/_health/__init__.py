"""Health: which providers answer now, and falling back among them.

``check`` probes a provider with one small chat (:func:`check`, ``watch``);
``fallback`` holds :class:`FallbackProvider`, which tries providers in order
and can skip those a check found down.
"""
