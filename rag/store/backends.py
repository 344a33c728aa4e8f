"""Which store holds an index: a folder (FAISS + SQLite + BM25) or a Milvus deployment.

Chosen by settings alone (``RAG_STORE=faiss|milvus``, ``RAG_STORE_URI``,
``RAG_STORE_TOKEN``); ingestion and the chain call these four functions and never name a
store. For Milvus the index is named by the last part of ``index_dir`` (the same
``--index NAME`` users pass either way).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag.settings import Settings
from rag.store.layout import index_exists, read_manifest
from rag.store.manifest import Manifest
from rag.store.protocols import IndexReader
from rag.types import Encoder


def _milvus(settings: Settings) -> tuple[str, str, str]:
    token = settings.store_token.get_secret_value() if settings.store_token is not None else ""
    return settings.store_uri, token, settings.store_prefix


def open_reader(settings: Settings, index_dir: Path, encoder: Encoder | Any = None) -> IndexReader:
    """The live revision of the index (checked against ``encoder`` when given)."""
    if settings.store == "milvus":
        from rag.store.milvus import open_milvus_index

        return open_milvus_index(*_milvus(settings), Path(index_dir).name, encoder)
    from rag.store.reader import open_index

    return open_index(Path(index_dir), encoder)


def open_writer(settings: Settings, index_dir: Path, **writer_args: Any) -> Any:
    """A write transaction (not entered): ``rag.store.IndexWriter`` or ``MilvusWriter``."""
    if settings.store == "milvus":
        from rag.store.milvus_writer import MilvusWriter

        return MilvusWriter(*_milvus(settings), Path(index_dir).name, **writer_args)
    from rag.store.writer import IndexWriter

    return IndexWriter(Path(index_dir), **writer_args)


def store_exists(settings: Settings, index_dir: Path) -> bool:
    if settings.store == "milvus":
        from rag.store.milvus import collection_names, connect, read_meta

        client = connect(settings.store_uri, _milvus(settings)[1])
        try:
            meta = collection_names(settings.store_prefix, Path(index_dir).name)[2]
            return bool(client.has_collection(meta)) and read_meta(client, meta, "manifest") is not None
        finally:
            client.close()
    return index_exists(Path(index_dir))


def store_manifest(settings: Settings, index_dir: Path) -> Manifest:
    if settings.store == "milvus":
        from rag.store.milvus import open_milvus_index

        index = open_milvus_index(*_milvus(settings), Path(index_dir).name)
        try:
            return index.manifest
        finally:
            index.close()
    return read_manifest(Path(index_dir))


def store_revision(settings: Settings, index_dir: Path) -> str:
    """Changes whenever a writer commits (a cache key for chains over the live index)."""
    if settings.store == "milvus":
        from rag.store.milvus import collection_names, connect, read_meta

        client = connect(settings.store_uri, _milvus(settings)[1])
        try:
            meta = collection_names(settings.store_prefix, Path(index_dir).name)[2]
            about = read_meta(client, meta, "manifest") if client.has_collection(meta) else None
            return "" if about is None else f"milvus-{about['revision']}"
        finally:
            client.close()
    try:
        return (Path(index_dir) / "CURRENT").read_text(encoding="utf-8").strip()
    except OSError:
        return ""
