"""The HTTP API (``rag serve``): the same chain and ingestion as the CLI and the app.

An entry point like ``ui``: imports flow ``api -> rag`` and ``api -> ingest``, never back.
"""
