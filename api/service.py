"""What the server shares between requests: one encoder, one decoder, a chain per collection.

The decoder is not thread-safe and the CPU has few cores, so concurrency is bounded in two
places: ``Admission`` caps how many model requests are in the server at once (the rest get
429 at the door instead of queueing without limit), and the model wrappers below serialise
every call into a model with a lock of their own. They do not rely on any lock inside the
model classes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ingest.collection import Collection, collection
from ingest.jobs import JobBoard
from rag.settings import Settings
from rag.types import DecodingParams, Encoder, FloatArray, Generator

if TYPE_CHECKING:
    from rag.answer.chain import RagChain


class FairLock:
    """A lock granted in arrival order. ``threading.Lock`` is not: a thread that releases
    and re-acquires at once (an ingestion job embedding batch after batch) can starve the
    others (a question waiting to be embedded)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next = 0
        self._serving = 0

    def __enter__(self) -> None:
        with self._cond:
            ticket = self._next
            self._next += 1
            while ticket != self._serving:
                self._cond.wait()

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._serving += 1
            self._cond.notify_all()


class LockedEncoder:
    """An encoder whose calls run one at a time (queries, searches and ingestion jobs).

    A long call (an ingestion job's thousands of passages) is cut into batches with the
    lock taken per batch, so a question waits for one batch, not for the whole job.
    """

    def __init__(self, inner: Encoder, batch_size: int = 64) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.max_tokens = inner.max_tokens
        self.batch_size = batch_size
        self._lock = FairLock()

    def embed(self, texts: Sequence[str]) -> FloatArray:
        if len(texts) <= self.batch_size:
            with self._lock:
                return self.inner.embed(texts)
        parts = []
        for i in range(0, len(texts), self.batch_size):
            with self._lock:
                parts.append(self.inner.embed(texts[i : i + self.batch_size]))
        return np.concatenate(parts, axis=0)

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        with self._lock:
            return self.inner.token_offsets(text)


class LockedGenerator:
    """A decoder used by one answer at a time: the lock is held from the first token until
    the stream ends or is closed (a client that goes away closes it)."""

    def __init__(self, inner: Generator) -> None:
        self.inner = inner
        self.name = inner.name
        self.context_window = inner.context_window
        # Re-entrant: a decoder may count tokens from inside its own stream.
        self._lock = threading.RLock()

    def count_tokens(self, text: str) -> int:
        with self._lock:
            return self.inner.count_tokens(text)

    def stream(self, messages: Sequence[dict[str, str]], params: DecodingParams) -> Iterator[str]:
        with self._lock:
            yield from self.inner.stream(messages, params)


class Admission:
    """At most ``limit`` requests admitted at once; ``try_enter`` refuses the next one.

    Thread-safe: a slot is taken on the event loop and given back by the worker thread that
    finishes the request.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._inside = 0

    def try_enter(self) -> bool:
        with self._lock:
            if self._inside >= self.limit:
                return False
            self._inside += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._inside = max(0, self._inside - 1)

    @property
    def inside(self) -> int:
        with self._lock:
            return self._inside


class NotIndexedError(LookupError):
    """The collection exists but has no index yet."""


@dataclass
class Service:
    """The process-wide state behind every route (one per app)."""

    settings: Settings
    encoder: LockedEncoder
    generator: LockedGenerator | None  # None with a remote decoder
    admission: Admission
    jobs: JobBoard = field(default_factory=JobBoard)
    _chains: dict[str, tuple[str, RagChain]] = field(default_factory=dict)
    _chains_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(
        cls, settings: Settings, *, encoder: Encoder | None = None, generator: Generator | None = None
    ) -> Service:
        """Load the models once (the real ones unless given): every request shares them."""
        if encoder is None:
            from rag.models.embed import build_encoder

            encoder = build_encoder(settings)
        if generator is None and settings.decoder == "local":
            from rag.models.generate import build_generator

            generator = build_generator(settings)
        # A remote decoder (RAG_DECODER=openai:URL) is a chat model each chain builds; no
        # local decoder is loaded for it.
        locked = LockedGenerator(generator) if generator is not None else None
        return cls(settings, LockedEncoder(encoder, settings.embed_batch_size), locked,
                   Admission(settings.api_max_queue))

    def collection(self, name: str) -> Collection:
        """The named collection; FileNotFoundError when there is none (CollectionNameError,
        a ValueError, for a name that cannot be one)."""
        c = collection(self.settings, name)
        if not c.index_dir.is_dir():
            raise FileNotFoundError(f"no collection named {c.name!r}")
        return c

    def chain(self, name: str) -> RagChain:
        """The chain over the collection's live index, rebuilt when a job commits a new one.

        A stale chain is only dropped, never closed: a request may still be answering from
        it, and the generation it reads stays readable until then (see rag.store).
        """
        from rag.answer.build import build_chain
        from rag.store.backends import store_exists, store_revision

        c = self.collection(name)
        # RAG_STORE: the index is the folder's, or the same-named one in Milvus.
        if not store_exists(self.settings, c.index_dir):
            raise NotIndexedError(
                f"collection {c.name!r} has no index yet: upload documents and wait for the job"
            )
        revision = store_revision(self.settings, c.index_dir)
        with self._chains_lock:
            cached = self._chains.get(c.name)
            if cached is not None and cached[0] == revision:
                return cached[1]
        # Built outside the lock: opening a large index takes a while, and two requests
        # racing here at worst both open it.
        chain = build_chain(self.settings, c.index_dir, encoder=self.encoder, generator=self.generator)
        with self._chains_lock:
            self._chains[c.name] = (revision, chain)
        return chain

    def forget(self, name: str) -> None:
        with self._chains_lock:
            self._chains.pop(name, None)
