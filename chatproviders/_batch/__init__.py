"""Batch: many chats through one client, in input order, paced, resumable.

``run`` holds :func:`batch` and its loop; ``inputs`` checks what each item
sends; ``checkpoint`` keeps finished items in a JSONL file; ``progress``
reports them to a bar or a callback.
"""
