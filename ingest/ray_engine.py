"""Ingestion on a Ray cluster: parse, split and embed as Ray Data stages.

``rag ingest DIR --engine ray [--ray-address ADDR]`` (or ``RAG_INGEST_ENGINE=ray``) runs
the three costly stages across the cluster; everything that decides *what* to do stays in
``ingest.pipeline`` (the scan, the sha256/mtime checks, removals, the summary) and so does
everything that writes (the store's transaction, checkpoints, the commit). The index thus
gets the same chunks, the same incremental behaviour and the same all-or-nothing commits
whether one laptop or forty machines did the work. Imported only when the engine is Ray:
the local path never loads Ray.

Stages: ``parse`` (tasks of ``PARSE_BATCH`` files, each file in a worker process under
the same time and memory limits as locally), ``split`` (actors holding the encoder's
tokenizer; one row per chunk) and ``embed`` (actors holding the encoder, one per GPU when
the cluster has GPUs, else one per node; batches of ``embed_batch_size``). The driver
reads the embedded chunks back as they stream out, in file order, and hands each
complete file to the store.

Every node must see the corpus at the same path (a shared file system, as for any
cluster job) and have docchat installed; the driver ships its own ``rag`` and ``ingest``
code to the workers, so all nodes run the driver's version.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest.load import ParseOutcome, failed_job, parse_job
from ingest.parse_plan import limits
from ingest.runner import Limits, make_runner
from ingest.split import split_document
from ingest.transaction import trusted_mtime
from rag.settings import Settings
from rag.store import FileRecord, now_iso
from rag.types import Chunk, Encoder

if TYPE_CHECKING:
    from ingest.scan import Candidate
    from ingest.summary import IngestSummary, ProgressFn
    from ingest.transaction import Transaction

log = logging.getLogger(__name__)

EncoderFactory = Callable[[], Encoder]

#: Files parsed by one worker process on a Ray node (see ``_parse``).
PARSE_BATCH = 8


class RayEngineError(RuntimeError):
    """Ray cannot be used as configured (one line for the user)."""


def encoder_factory(settings: Settings, given: Encoder | None) -> EncoderFactory:
    """What each worker calls to get its encoder: a copy of ``given`` (tests, custom
    encoders), else the configured model loaded on the worker itself."""
    if given is not None:
        return lambda: given

    def build() -> Encoder:
        from rag.models.embed import build_encoder

        return build_encoder(settings)

    return build


def connect(settings: Settings) -> Any:
    """Join the cluster (``ray_address``; a local Ray when None), shipping our code."""
    try:
        import ray
    except ImportError as e:
        raise RayEngineError("--engine ray needs Ray; install the 'scale' extra "
                           "(pip install -e '.[scale]')") from e
    import ingest
    import rag

    # No network at run time: Ray's usage reports and Ray Data's metrics queries stay off.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DATA_USAGE_DISABLED", "1")
    if not ray.is_initialized():
        _check_reachable(settings.ray_address)
        # Subtle: the driver's packages go to the workers (py_modules), so a node whose
        # installed docchat is older still runs this code.
        modules = [str(Path(m.__file__).parent) for m in (rag, ingest) if m.__file__]
        try:
            ray.init(address=settings.ray_address, ignore_reinit_error=True, log_to_driver=False,
                     runtime_env={"py_modules": modules,
                                  "env_vars": {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                                               "RAY_DATA_USAGE_DISABLED": "1"}})
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise RayEngineError(f"cannot join the Ray cluster at {settings.ray_address!r} ({e}); "
                               "check --ray-address / RAG_RAY_ADDRESS and `ray status`") from e
    return ray


def _check_reachable(address: str | None) -> None:
    """Fail fast on a wrong address: ray.init retries an unreachable one for minutes."""
    if not address or address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except (OSError, ValueError) as e:
        raise RayEngineError(f"cannot join the Ray cluster at {address!r} ({e}); check "
                             "--ray-address / RAG_RAY_ADDRESS and `ray status`") from e


# --- the stages (run on the workers) ----------------------------------------------------


def _parse(batch: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """Parse a batch of files in a worker process under the local engine's limits (time per
    file, memory): a 17 KB PDF that keeps PDFium busy for minutes, or a stream that inflates
    to gigabytes, fails that file with its reason, as it does locally, instead of holding or
    killing the Ray task (retried, then failing the whole run). One worker per batch: its
    start (a fraction of a second) is paid once per ``PARSE_BATCH`` files."""
    jobs = [(str(path), str(source), None, bool(ocr))
            for path, source, ocr in zip(batch["path"], batch["source"], batch["ocr"], strict=True)]
    done = {out.source: out for out in make_runner(1, len(jobs), limits).map(parse_job, jobs, failed_job)}
    outcomes = np.empty(len(jobs), dtype=object)
    for i, job in enumerate(jobs):  # one by one: numpy would unpack a sequence-like value
        outcomes[i] = done[job[1]]
    return {"order": batch["order"], "outcome": outcomes}


class _Split:
    def __init__(self, factory: EncoderFactory, size: int, overlap: int, headers: bool) -> None:
        self.encoder = factory()
        self.size, self.overlap, self.headers = size, overlap, headers

    def __call__(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        out: ParseOutcome = row["outcome"]
        base = {"order": row["order"], "source": out.source, "sha256": out.sha256,
                "warnings": json.dumps(out.warnings), "error": out.error or "",
                "pages": len(out.document.pages) if out.document is not None else 0}
        chunks: list[Chunk] = []
        if out.document is not None:
            chunks = split_document(out.document, self.encoder, self.size, self.overlap,
                                    headers=self.headers)
            if not chunks:
                base["error"] = "no indexable text (the encoder's tokenizer found no tokens)"
        if base["error"] or not chunks:
            # One marker row carries a failed file through the stages.
            return [{**base, "n": 0, "i": -1, "page": -1, "start": 0, "end": 0, "text": "",
                     "header": "", "id": ""}]
        return [{**base, "n": len(chunks), "i": i, "page": -1 if c.page is None else c.page,
                 "start": c.start, "end": c.end, "text": c.text, "header": c.header, "id": c.id}
                for i, c in enumerate(chunks)]


class _Embed:
    def __init__(self, factory: EncoderFactory) -> None:
        self.encoder = factory()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        texts = [f"{h}\n{t}" if h else str(t) for h, t in zip(batch["header"], batch["text"], strict=True)]
        real = [j for j, i in enumerate(batch["i"]) if i >= 0]
        vectors = np.zeros((len(texts), self.encoder.dimension), dtype=np.float32)
        if real:
            vectors[real] = self.encoder.embed([texts[j] for j in real])
        return {**batch, "vector": vectors}


# --- the driver -------------------------------------------------------------------------


def embed_plan(ray: Any, settings: Settings) -> tuple[int, float]:
    """(embedding actors, GPUs per actor)."""
    gpus = int(ray.cluster_resources().get("GPU", 0))
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    if settings.ray_embed_workers:
        return settings.ray_embed_workers, 1.0 if gpus >= settings.ray_embed_workers else 0.0
    return (gpus, 1.0) if gpus else (max(1, nodes), 0.0)


def _rows(ray: Any, todo: list[Candidate], settings: Settings, factory: EncoderFactory,
          size: int, overlap: int) -> Iterator[dict[str, Any]]:
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # files come back in scan order
    ctx.enable_progress_bars = False
    actors, gpus = embed_plan(ray, settings)
    log.info("ray: %d files, %d embedding actors (%s GPU each)", len(todo), actors, gpus)
    items = [{"order": i, "path": str(c.path), "source": c.source, "ocr": settings.ocr}
             for i, c in enumerate(todo)]
    ds = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), 4 * actors)))
    ds = ds.map_batches(_parse, fn_kwargs={"limits": limits(settings)}, batch_size=PARSE_BATCH,
                        batch_format="numpy")
    pool = ray.data.ActorPoolStrategy(size=actors)
    ds = ds.flat_map(_Split, fn_constructor_args=(factory, size, overlap, settings.chunk_headers),
                     compute=pool)
    ds = ds.map_batches(_Embed, fn_constructor_args=(factory,), batch_size=settings.embed_batch_size,
                        compute=pool, num_gpus=gpus, batch_format="numpy")
    for batch in ds.iter_batches(batch_size=settings.embed_batch_size, batch_format="numpy"):
        for j in range(len(batch["i"])):
            yield {k: v[j] for k, v in batch.items()}


def ingest_files_ray(
    todo: list[Candidate],
    known: dict[str, FileRecord],
    txn: Transaction,
    encoder: Encoder | None,
    settings: Settings,
    size: int,
    overlap: int,
    summary: IngestSummary,
    report: ProgressFn,
    checkpoint_s: float,
) -> None:
    """``ingest.pipeline._ingest_files`` on Ray: the same effects on ``txn`` and ``summary``."""

    if not todo:
        return
    ray = connect(settings)
    stat = {c.source: c for c in todo}
    last_commit = time.perf_counter()
    pending: dict[str, list[tuple[Chunk, np.ndarray]]] = {}
    done = 0
    t0 = time.perf_counter()
    report("parse", 0, len(todo))
    for r in _rows(ray, todo, settings, encoder_factory(settings, encoder), size, overlap):
        source = str(r["source"])
        if int(r["i"]) >= 0:
            chunk = Chunk(source, None if r["page"] < 0 else int(r["page"]), int(r["start"]),
                          int(r["end"]), str(r["text"]), id=str(r["id"]), header=str(r["header"]))
            got = pending.setdefault(source, [])
            got.append((chunk, np.asarray(r["vector"], dtype=np.float32)))
            if len(got) < int(r["n"]):
                continue
        done += 1
        report("parse", done, len(todo))
        for w in json.loads(str(r["warnings"])):
            summary.warnings.append({"path": source, "reason": w})
        error = str(r["error"])
        if error:
            summary.files_failed.append({"path": source, "reason": error})
            log.warning("failed %s: %s", source, error)
            if source in known:
                txn.writer.remove_file(source)
                summary.files_removed += 1
                txn.dirty = True
            continue
        pairs = pending.pop(source)
        chunks = [c for c, _ in pairs]
        c = stat[source]
        record = FileRecord(source=source, sha256=str(r["sha256"]), pages=int(r["pages"]),
                            chunks=len(chunks), added_at=now_iso(), size=c.size,
                            mtime_ns=trusted_mtime(c))
        t = time.perf_counter()
        txn.writer.add_file(record, chunks, np.stack([v for _, v in pairs]))
        txn.dirty = True
        summary.files_ok += 1
        summary.pages += record.pages
        summary.chunks += len(chunks)
        report("embed", summary.chunks, summary.chunks)
        if time.perf_counter() - last_commit >= checkpoint_s:
            txn.commit(reopen=True)
            last_commit = time.perf_counter()
            log.info("checkpoint: committed %d files so far", summary.files_ok)
        summary.index_seconds += time.perf_counter() - t
    # On Ray the stages overlap on many machines: their time is one figure.
    summary.embed_seconds += time.perf_counter() - t0 - summary.index_seconds
