"""The write side of the Milvus store: the same transaction the FAISS store's writer offers.

``with MilvusWriter(...) as w: w.add_file(...); w.remove_file(...); w.commit()``. Rows
are written as they come, tagged with the next revision N (invisible to readers, which
see ``rev <= R < dead``); a removed or replaced document's rows get ``dead = N`` (still
visible to readers at R). The commit point is the upsert of the meta row naming N.
Leaving without ``commit()`` deletes the rows tagged N and revives the ones killed at N;
a writer killed outright leaves them for the next writer, which does the same first.

One writer at a time per index: a lease in the meta row (renewed while writing, expiring
after ``LEASE_S`` if its holder died) keeps a second ingest out with IndexLockedError.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import numpy as np

from rag.store.errors import IndexLockedError, IndexMismatchError
from rag.store.keyword import bm25_tokenize
from rag.store.manifest import FORMAT, SETTING_KEYS, VERSION, FileRecord, Manifest, now_iso
from rag.store.milvus import (
    ALIVE,
    HEADER,
    collection_names,
    connect,
    create_collections,
    file_key,
    has_header,
    iterate,
    load_files,
    manifest_from,
    quote_literal,
    read_meta,
)
from rag.types import Chunk, FloatArray

LEASE_S = 600.0
_BATCH = 1000
log = logging.getLogger(__name__)
_HEADER_CHARS = 500  # within the field's 2,048 bytes whatever the script (ingest caps ~300)
_CHUNK_ROW = ["row", "rev", "dead", "id", "source", "page", "start", "end", "text", "terms", "vector"]
_FILE_ROW = ["key", "rev", "dead", "source", "sha256", "pages", "chunks", "size", "mtime_ns", "added_at", "v"]


class MilvusWriter:
    """One write transaction on an index kept in Milvus."""

    def __init__(self, uri: str, token: str, prefix: str, name: str, *, encoder_name: str,
                 dimension: int, max_tokens: int, chunk_tokens: int, chunk_overlap: int,
                 index_kind: str = "flat", hnsw_m: int = 32, corpus_root: str = "",
                 rebuild: bool = False) -> None:
        self.path = f"{uri}#{prefix}/{name}"
        self.uri, self.token, self.name = uri, token, name
        self._chunks, self._files_c, self._meta = self.names = collection_names(prefix, name)
        self._settings: dict[str, str | int] = dict(
            encoder=encoder_name, dimension=dimension, max_tokens=max_tokens,
            chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap, index_kind=index_kind)
        self.corpus_root = corpus_root
        self.rebuild = rebuild
        self.compacted = False  # the FAISS writer's flag; Milvus compacts by itself
        self._client: Any = None
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lease_at = 0.0
        self._rev = 0  # the committed revision this transaction started from
        # Rows are numbered in insertion order, as in the FAISS store: equal scores then
        # rank in the same order on both stores (search ties break on the row).
        self._next_row = 1
        self._files: dict[str, FileRecord] = {}
        self._committed = False
        self._chunk_row = _CHUNK_ROW  # + HEADER where the collection keeps headers

    # -- transaction ------------------------------------------------------------------------
    def __enter__(self) -> MilvusWriter:
        self._client = connect(self.uri, self.token)
        try:
            create_collections(self._client, self.names, int(self._settings["dimension"]))
            headers = has_header(self._client, self._chunks)
            self._chunk_row = _CHUNK_ROW + ([HEADER] if headers else [])
            if not headers:
                log.warning("index %s was created before chunk headers were kept: financial "
                            "statement ranking and page headings are off for it until it is "
                            "deleted and ingested again", self.path)
            self._lease()
        except BaseException:
            self._client.close()
            self._client = None
            raise
        try:
            self._begin()
        except BaseException:
            self._abort()
            raise
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self._committed:
            self._abort()
        else:
            self._release()

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("MilvusWriter used outside its `with` block")
        return self._client

    def _lease(self) -> None:
        held = read_meta(self.client, self._meta, "lock")
        now = time.time()
        if held and held.get("owner") not in ("", self._owner) and held.get("expires", 0) > now:
            raise IndexLockedError(
                f"index {self.path} is being written by {held['owner']}; wait for it to finish "
                f"(or, if it died, for its lease to expire at {time.ctime(held['expires'])})")
        self._put_meta("lock", {"owner": self._owner, "expires": now + LEASE_S})
        self._lease_at = now
        # Subtle: two writers racing between our read and write would both pass the
        # check; the one whose upsert landed last wins the re-read, the other stops here.
        if (read_meta(self.client, self._meta, "lock") or {}).get("owner") != self._owner:
            raise IndexLockedError(f"index {self.path}: another writer took the lock; try again")

    def _renew(self) -> None:
        if time.time() - self._lease_at > LEASE_S / 3:
            self._lease()

    def _release(self) -> None:
        if self._client is None:
            return
        if (read_meta(self.client, self._meta, "lock") or {}).get("owner") == self._owner:
            self._put_meta("lock", {"owner": "", "expires": 0})
        self._client.close()
        self._client = None

    def _put_meta(self, key: str, value: dict[str, Any]) -> None:
        self.client.upsert(self._meta, [{"key": key, "value": json.dumps(value), "v": [0.0, 0.0]}])

    def _begin(self) -> None:
        about = read_meta(self.client, self._meta, "manifest")
        self._rev = int(about["revision"]) if about else 0
        self._next_row = int(about.get("next_row", 1)) if about else 1
        self._undo(above=self._rev)  # a killed writer's leftovers
        # Rows killed before the last commit are invisible to every reader still open.
        for c in (self._chunks, self._files_c):
            self.client.delete(c, filter=f"dead < {self._rev}")
        if about is None or self.rebuild:
            self._files = {}
            if about is not None:
                self._kill(None)
            return
        manifest = manifest_from(about, {})
        old = {k: getattr(manifest, k) for k in SETTING_KEYS}
        if old != self._settings:
            diff = ", ".join(f"{k}: index has {old[k]!r}, now {v!r}"
                             for k, v in self._settings.items() if old[k] != v)
            raise IndexMismatchError(f"index {self.path} was built with other settings ({diff}); "
                                     "rerun with --rebuild to re-embed everything")
        self._files = load_files(self.client, self._files_c, self._rev)

    @property
    def _next(self) -> int:
        return self._rev + 1

    def _rewrite(self, collection: str, expr: str, fields: list[str], dead: int) -> None:
        """Set ``dead`` on the rows matching ``expr`` (an upsert of the whole rows)."""
        # Keys first, then rows a batch at a time: upserting rows while paging through
        # the same filter could skip some (the pages shift), and a rebuild rewrites every row.
        pk = "row" if collection == self._chunks else "key"
        keys = [r[pk] for r in iterate(self.client, collection, expr, [pk])]
        for i in range(0, len(keys), _BATCH):
            listed = ", ".join(str(int(k)) for k in keys[i : i + _BATCH])
            rows = self.client.query(collection, filter=f"{pk} in [{listed}]", output_fields=fields,
                                     consistency_level="Strong")
            self.client.upsert(collection, [{**r, "dead": dead} for r in rows])

    def _undo(self, above: int) -> None:
        """Forget revisions after ``above``: their rows go, the rows they killed live again."""
        for c, fields in ((self._chunks, self._chunk_row), (self._files_c, _FILE_ROW)):
            self.client.delete(c, filter=f"rev > {above}")
            self._rewrite(c, f"dead > {above} and dead < {ALIVE}", fields, ALIVE)

    def _abort(self) -> None:
        if self._client is not None and not self._committed:
            try:
                self._undo(above=self._rev)
            finally:
                self._release()

    # -- changes ----------------------------------------------------------------------------
    def files(self) -> dict[str, FileRecord]:
        return dict(self._files)

    def _kill(self, source: str | None) -> None:
        """Mark the live rows of ``source`` (of every document: None) removed at the next revision."""
        which = "" if source is None else f" and source == {quote_literal(source)}"
        n = self._next
        # Rows this transaction added are nobody's yet: delete them outright.
        for c in (self._chunks, self._files_c):
            self.client.delete(c, filter=f"rev == {n}{which}")
        self._rewrite(self._chunks, f"dead == {ALIVE} and rev <= {self._rev}{which}", self._chunk_row, n)
        self._rewrite(self._files_c, f"dead == {ALIVE} and rev <= {self._rev}{which}", _FILE_ROW, n)

    def remove_file(self, source: str) -> None:
        self._renew()
        if source in self._files:
            self._kill(source)
        self._files.pop(source, None)

    def set_file_stat(self, source: str, size: int, mtime_ns: int) -> None:
        rec = self._files.get(source)
        if rec is None:
            return
        # The same file row, new stats: readers' results do not depend on them.
        expr = f"source == {quote_literal(source)} and dead == {ALIVE}"
        rows = [{**r, "size": size, "mtime_ns": mtime_ns}
                for r in iterate(self.client, self._files_c, expr, _FILE_ROW)]
        if rows:
            self.client.upsert(self._files_c, rows)
        self._files[source] = FileRecord(**{**rec.__dict__, "size": size, "mtime_ns": mtime_ns})

    def add_file(self, record: FileRecord, chunks: Sequence[Chunk], vectors: FloatArray) -> None:
        dim = int(self._settings["dimension"])
        if vectors.shape != (len(chunks), dim):
            raise ValueError(f"{record.source}: {len(chunks)} chunks but vectors of shape "
                             f"{vectors.shape} (expected ({len(chunks)}, {dim}))")
        if any(c.source != record.source for c in chunks):
            raise ValueError(f"{record.source}: chunks from another source in add_file")
        self.remove_file(record.source)
        n = self._next
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        terms = bm25_tokenize([c.indexed_text for c in chunks]) if chunks else []
        first, self._next_row = self._next_row, self._next_row + len(chunks)
        rows = [{"row": first + i, "rev": n, "dead": ALIVE, "id": c.id, "source": c.source,
                 "page": -1 if c.page is None else c.page, "start": c.start, "end": c.end,
                 "text": c.text, "terms": " ".join(terms[i]), "vector": vecs[i].tolist(),
                 **({HEADER: c.header[:_HEADER_CHARS]} if HEADER in self._chunk_row else {})}
                for i, c in enumerate(chunks)]
        for i in range(0, len(rows), _BATCH):
            self.client.insert(self._chunks, rows[i : i + _BATCH])
        self.client.insert(self._files_c, [{
            "key": file_key(record.source, n), "rev": n, "dead": ALIVE, "source": record.source,
            "sha256": record.sha256, "pages": record.pages, "chunks": record.chunks,
            "size": record.size, "mtime_ns": record.mtime_ns, "added_at": record.added_at,
            "v": [0.0, 0.0]}])
        self._files[record.source] = record

    # -- commit -----------------------------------------------------------------------------
    def commit(self) -> Manifest:
        if self._client is None:
            raise RuntimeError("MilvusWriter.commit() outside its `with` block")
        self._renew()
        # Sealed, indexed segments before the commit point: readers then search indexes,
        # not a growing buffer (milvus-lite scans that in Python; Milvus seals it anyway).
        self.client.flush(self._chunks)
        about = {"format": FORMAT, "version": VERSION, "settings": self._settings,
                 "corpus_root": self.corpus_root, "created_at": now_iso(), "revision": self._next,
                 "next_row": self._next_row}
        self._put_meta("manifest", about)  # the commit point
        self._rev = self._next
        self._committed = True
        return manifest_from(about, dict(self._files))

    def checkpoint(self) -> Manifest:
        """Commit and go on in a fresh transaction, keeping the lease."""
        manifest = self.commit()
        self._committed = False
        self.rebuild = False
        return manifest
