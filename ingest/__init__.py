"""Ingestion: parse -> split -> embed -> store, and the ingest script.

The Python API (used by the UI's upload too) is :func:`ingest.pipeline.ingest_folder`
and :func:`ingest.pipeline.remove_documents`.
"""
