"""The store on a Milvus server (or cluster): the read side, and the collections' layout.

``RAG_STORE=milvus`` keeps an index in three collections of a Milvus deployment (named
``{prefix}_{index}_chunks|files|meta``) instead of a folder. The same client API talks to
milvus-lite (one process, for a laptop or the tests), Milvus Standalone and Milvus
Distributed (query and data nodes scale out); BM25 is Milvus's own full-text search, fed
with the terms our tokenizer made (English stopwords, Snowball stems), so keyword ranks are
the ones the FAISS store gives.

Milvus has no multi-row transactions, so revisions are kept in the rows: each chunk and
file row carries ``rev`` (the commit that added it) and ``dead`` (the commit that removed
it; ``ALIVE`` until then). A reader pins the revision R the meta row named when it opened
and sees exactly the rows with ``rev <= R < dead``; the meta row's upsert is the commit
point. A writer that dies leaves rows with ``rev > R`` (invisible), which the next writer
deletes. Rows killed at revision R are purged by the writer that starts after R + 1, so a
reader keeps its whole view until the commit after the one it saw (see docs/scaling.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from rag.store.errors import IndexCorruptError, IndexMissingError, StoreError
from rag.store.keyword import K1, B, bm25_tokenize
from rag.store.manifest import FORMAT, VERSION, FileRecord, Manifest, check_encoder
from rag.store.terms import query_keywords
from rag.types import Chunk, Encoder, FloatArray

#: ``dead`` of a live row: larger than any revision.
ALIVE = 1 << 62
#: Milvus caps the rows of one query; lookups go in slices of this many.
_SLICE = 1000
_CHUNK_FIELDS = ["row", "id", "source", "page", "start", "end", "text"]
#: The chunk's contextual header (``Chunk.header``); collections made before it was kept
#: lack the field and read '' (``has_header``).
HEADER = "header"
_MAX_HEADER = 2048  # VARCHAR bytes; headers are capped at ~300 characters
_FILE_FIELDS = ["source", "sha256", "pages", "chunks", "added_at", "size", "mtime_ns"]
_MAX_TEXT = 65535  # VARCHAR bytes; chunks are ~200 tokens, far below


def collection_names(prefix: str, index_name: str) -> tuple[str, str, str]:
    """(chunks, files, meta) collection names for an index (Milvus allows [A-Za-z0-9_])."""
    safe = re.sub(r"[^A-Za-z0-9_]", "_", index_name)
    if safe != index_name:  # two names that differ only in punctuation stay apart
        safe += "_" + hashlib.sha256(index_name.encode()).hexdigest()[:8]
    base = f"{prefix}_{safe}"
    return f"{base}_chunks", f"{base}_files", f"{base}_meta"


class _NoMvccNotice(logging.Filter):
    # milvus-lite has no MVCC timestamps; pymilvus warns once per iterator that it uses its
    # own clock instead, which is what we want (the revision filter makes reads consistent).
    def filter(self, record: logging.LogRecord) -> bool:
        return "mvccTs" not in record.getMessage()


logging.getLogger("pymilvus.client.iterator.query_iterator").addFilter(_NoMvccNotice())


def connect(uri: str, token: str = "") -> Any:
    try:
        from pymilvus import MilvusClient
    except ImportError as e:
        raise StoreError("RAG_STORE=milvus needs pymilvus; install the 'scale' extra "
                         "(scripts/setup.sh --dev, or pip install -e '.[scale]')") from e
    try:
        return MilvusClient(uri=uri, token=token, timeout=30)
    except Exception as e:  # pymilvus raises its own MilvusException and grpc errors
        raise StoreError(f"cannot reach Milvus at {uri} ({e}); check RAG_STORE_URI and that "
                         "the server is running") from e


def file_key(source: str, rev: int) -> int:
    """Primary key of a file's row for one revision (63 bits of a SHA-256)."""
    return int.from_bytes(hashlib.sha256(f"{rev}:{source}".encode()).digest()[:8], "little") >> 1


def live_filter(rev: int) -> str:
    return f"rev <= {rev} and dead > {rev}"


def quote_literal(s: str) -> str:
    """A Milvus string literal. Subtle: not json.dumps, whose \\uXXXX escapes (for any
    non-ASCII file name) Milvus's expression parser rejects."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def source_filter(sources: Sequence[str]) -> str:
    return f"source in [{', '.join(quote_literal(s) for s in sources)}]"


def read_meta(client: Any, meta: str, key: str) -> dict[str, Any] | None:
    got = client.query(meta, filter=f"key == {quote_literal(key)}", output_fields=["value"],
                       consistency_level="Strong")
    return json.loads(got[0]["value"]) if got else None


def has_header(client: Any, chunks: str) -> bool:
    """Whether the chunks collection keeps headers (made after they were stored)."""
    fields = client.describe_collection(chunks).get("fields", [])
    return any(f.get("name") == HEADER for f in fields)


def iterate(client: Any, collection: str, expr: str, fields: list[str]) -> Iterator[dict[str, Any]]:
    """Every row matching ``expr`` (a plain query stops at 16,384 rows)."""
    it = client.query_iterator(collection, batch_size=_SLICE, filter=expr, output_fields=fields,
                               consistency_level="Strong")
    try:
        while batch := it.next():
            yield from batch
    finally:
        it.close()


def manifest_from(about: dict[str, Any], files: dict[str, FileRecord]) -> Manifest:
    if about.get("format") != FORMAT or about.get("version") != VERSION:
        raise IndexCorruptError(f"Milvus meta row is not a version {VERSION} docchat index")
    s = about["settings"]
    return Manifest(encoder=s["encoder"], dimension=int(s["dimension"]), max_tokens=int(s["max_tokens"]),
                    chunk_tokens=int(s["chunk_tokens"]), chunk_overlap=int(s["chunk_overlap"]),
                    index_kind=s["index_kind"], corpus_root=about.get("corpus_root", ""),
                    files=files, created_at=about.get("created_at", ""),
                    revision=int(about["revision"]))


def load_files(client: Any, files: str, rev: int) -> dict[str, FileRecord]:
    out: dict[str, FileRecord] = {}
    for r in iterate(client, files, live_filter(rev), _FILE_FIELDS):
        out[r["source"]] = FileRecord(**{k: r[k] for k in _FILE_FIELDS})
    return out


class MilvusIndex:
    """One revision of an index in Milvus (rag.store.protocols.IndexReader)."""

    def __init__(self, uri: str, token: str, prefix: str, name: str) -> None:
        self.path = f"{uri}#{prefix}/{name}"  # for messages, like the FAISS store's folder
        self.client = connect(uri, token)
        self._chunks, self._files, self._meta = collection_names(prefix, name)
        about = (read_meta(self.client, self._meta, "manifest")
                 if self.client.has_collection(self._meta) else None)
        if about is None:
            raise IndexMissingError(f"no index {name!r} in Milvus at {uri} (prefix {prefix!r}); "
                                    f"build it with `rag ingest CORPUS_DIR --index {name}`")
        rev = int(about["revision"])
        self.manifest = manifest_from(about, load_files(self.client, self._files, rev))
        self._live = live_filter(rev)
        self._count = self.manifest.chunk_count
        self._chunk_fields = _CHUNK_FIELDS + ([HEADER] if has_header(self.client, self._chunks)
                                              else [])

    @property
    def revision(self) -> int:
        return self.manifest.revision

    def __len__(self) -> int:
        return self._count

    def files(self) -> list[FileRecord]:
        return sorted(self.manifest.files.values(), key=lambda f: f.source)

    def _expr(self, sources: Sequence[str] | None) -> str:
        return self._live if sources is None else f"{self._live} and {source_filter(sources)}"

    def dense_search(self, vectors: FloatArray, k: int, *, sources: Sequence[str] | None = None
                     ) -> list[list[tuple[int, float]]]:
        """Per unit query vector, up to ``k`` (row, cosine) pairs; ``sources`` filters by document."""
        if self._count == 0:
            return [[] for _ in range(len(vectors))]
        found = self.client.search(
            self._chunks, data=np.asarray(vectors, dtype=np.float32).tolist(), anns_field="vector",
            limit=k, filter=self._expr(sources), output_fields=["row"],
            search_params={"metric_type": "COSINE"}, consistency_level="Strong")
        # Equal scores in row order, as FAISS gives them (ties are common: repeated boilerplate).
        return [sorted(((int(h["row"]), float(h["distance"])) for h in hits), key=lambda h: (-h[1], h[0]))
                for hits in found]

    def bm25_search(self, query: str, k: int, *, sources: Sequence[str] | None = None
                    ) -> list[tuple[int, float]]:
        tokens = bm25_tokenize([query_keywords(query)])[0]
        if not tokens or self._count == 0:
            return []
        found = self.client.search(
            self._chunks, data=[" ".join(tokens)], anns_field="sparse", limit=k,
            filter=self._expr(sources), output_fields=["row"],
            search_params={"metric_type": "BM25"}, consistency_level="Strong")
        # Subtle: milvus-lite reports BM25 as a negative distance (smaller is nearer),
        # Milvus as a positive score; the magnitude is the BM25 score either way (times
        # k1 + 1, which ranks the same).
        hits = [(int(h["row"]), abs(float(h["distance"])) / (K1 + 1)) for h in found[0]]
        hits = [h for h in hits if h[1] > 0]
        hits.sort(key=lambda h: (-h[1], h[0]))
        return hits

    def _lookup(self, rows: Sequence[int], fields: list[str]) -> dict[int, dict[str, Any]]:
        got: dict[int, dict[str, Any]] = {}
        for i in range(0, len(rows), _SLICE):
            part = ", ".join(str(int(r)) for r in rows[i : i + _SLICE])
            for r in self.client.query(self._chunks, filter=f"row in [{part}]", output_fields=fields,
                                       consistency_level="Strong"):
                got[int(r["row"])] = r
        missing = [r for r in rows if r not in got]
        if missing:
            raise IndexCorruptError(f"index {self.path}: rows {missing[:5]} missing from chunks "
                                    "(removed by a later commit?); reopen the index")
        return got

    def chunks(self, rows: Sequence[int]) -> list[Chunk]:
        if not rows:
            return []
        got = self._lookup(rows, self._chunk_fields)
        return [Chunk(source=g["source"], page=None if g["page"] < 0 else int(g["page"]),
                      start=int(g["start"]), end=int(g["end"]), text=g["text"], id=g["id"],
                      header=g.get(HEADER, ""))
                for g in (got[int(r)] for r in rows)]

    def document_chunks(self, source: str) -> list[Chunk]:
        found = self.client.query(self._chunks, filter=f"{self._live} and source == {quote_literal(source)}",
                                  output_fields=["row"], consistency_level="Strong")
        chunks = self.chunks(sorted(int(r["row"]) for r in found))
        return sorted(chunks, key=lambda c: (c.page or 0, c.start, c.end))

    def vectors(self, rows: Sequence[int]) -> FloatArray:
        if not rows:
            return np.zeros((0, self.manifest.dimension), dtype=np.float32)
        got = self._lookup(rows, ["row", "vector"])
        return np.array([got[int(r)]["vector"] for r in rows], dtype=np.float32)

    def close(self) -> None:
        self.client.close()


def open_milvus_index(uri: str, token: str, prefix: str, name: str,
                      encoder: Encoder | Any = None) -> MilvusIndex:
    index = MilvusIndex(uri, token, prefix, name)
    if encoder is not None:
        try:
            check_encoder(index.manifest, index.path, encoder.name, encoder.dimension)  # type: ignore[arg-type]
        except StoreError:
            index.close()
            raise
    return index


def create_collections(client: Any, names: tuple[str, str, str], dim: int) -> None:
    """The three collections of an index, if missing (Strong consistency: a reader opened
    after a commit sees it, on a cluster too)."""
    from pymilvus import DataType, Function, FunctionType

    chunks, files, meta = names
    if not client.has_collection(chunks):
        s = client.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("row", DataType.INT64, is_primary=True)
        s.add_field("rev", DataType.INT64)
        s.add_field("dead", DataType.INT64)
        s.add_field("id", DataType.VARCHAR, max_length=64)
        s.add_field("source", DataType.VARCHAR, max_length=4096)
        s.add_field("page", DataType.INT64)  # -1: no pages (text, HTML)
        s.add_field("start", DataType.INT64)
        s.add_field("end", DataType.INT64)
        s.add_field("text", DataType.VARCHAR, max_length=_MAX_TEXT)
        s.add_field(HEADER, DataType.VARCHAR, max_length=_MAX_HEADER)
        # Our tokens, space-separated: the standard analyzer (\w+, lower case) keeps them.
        s.add_field("terms", DataType.VARCHAR, max_length=_MAX_TEXT, enable_analyzer=True,
                    analyzer_params={"tokenizer": "standard"})
        s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        s.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        s.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                input_field_names=["terms"], output_field_names=["sparse"]))
        ip = client.prepare_index_params()
        # FLAT = exact, as the FAISS store's default; on a cluster choose HNSW/IVF here.
        ip.add_index("vector", index_type="FLAT", metric_type="COSINE")
        ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                     params={"bm25_k1": K1, "bm25_b": B})
        client.create_collection(chunks, schema=s, index_params=ip, consistency_level="Strong")
    for name in (files, meta):
        if client.has_collection(name):
            continue
        s = client.create_schema(auto_id=False, enable_dynamic_field=False)
        if name == files:
            # Subtle: an integer key (file_key), not the file name: pymilvus's query
            # iterator pages on the key with an unescaped string literal, which a name
            # holding a double quote breaks.
            s.add_field("key", DataType.INT64, is_primary=True)
            s.add_field("rev", DataType.INT64)
            s.add_field("dead", DataType.INT64)
            s.add_field("source", DataType.VARCHAR, max_length=4096)
            s.add_field("sha256", DataType.VARCHAR, max_length=64)
            for f in ("pages", "chunks", "size", "mtime_ns"):
                s.add_field(f, DataType.INT64)
            s.add_field("added_at", DataType.VARCHAR, max_length=64)
        else:
            s.add_field("key", DataType.VARCHAR, is_primary=True, max_length=64)
            s.add_field("value", DataType.VARCHAR, max_length=_MAX_TEXT)
        # Milvus wants a vector field in every collection; these are looked up by key only.
        s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
        ip = client.prepare_index_params()
        ip.add_index("v", index_type="FLAT", metric_type="L2")
        client.create_collection(name, schema=s, index_params=ip, consistency_level="Strong")
