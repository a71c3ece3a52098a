"""The scenarios of ``tools/chaos.py``, one module each, and what they share."""
