"""Collections and their documents: create, list, delete, upload, remove, job status.

The same code paths as the app's library (``ingest.collection``, ``ingest.uploads``,
``ingest.pipeline``): uploads are sanitised and size-checked by ``save_upload``, ingestion
and removal run as background jobs on the shared job board (one writer per collection),
and a client polls ``GET /v1/collections/{name}/job`` until the job is done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, File, Request, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from api.chat import service_of
from api.errors import ApiError, hide_paths
from api.schemas import (
    CollectionOut,
    CreateCollection,
    DocumentOut,
    JobOut,
    JobResponse,
    UploadResponse,
    UploadResult,
)
from api.service import Service
from ingest.collection import (
    Collection,
    CollectionNameError,
    create_collection,
    delete_collection,
    document_files,
    document_states,
    list_collections,
)
from ingest.jobs import Job, JobBusyError
from ingest.uploads import save_upload

if TYPE_CHECKING:
    from ingest.summary import IngestSummary, ProgressFn
    from rag.settings import Settings
    from rag.store import FileRecord

router = APIRouter(prefix="/v1/collections", tags=["collections and documents"])

#: Files one upload request may carry (each is also held to RAG_MAX_FILE_MB).
MAX_FILES_PER_UPLOAD = 20


def job_out(job: Job, c: Collection) -> JobOut:
    state = "queued" if job.queued else (
        "running" if job.running else ("failed" if job.error is not None else "succeeded"))
    # Paths in a summary (and in parser messages) are the server's; a client sees them
    # relative to the collection's documents folder.
    roots = [(c.documents_dir, ""), (c.index_dir, f"{c.name}/"), (c.index_dir.parent, "")]

    def shown(value: object) -> object:
        if isinstance(value, str):
            return hide_paths(value, roots)
        if isinstance(value, list):
            return [shown(v) for v in value]
        if isinstance(value, dict):
            return {k: shown(v) for k, v in value.items()}
        return value

    summary = None
    if job.summary is not None:
        summary = {k: shown(v) for k, v in job.summary.to_json().items()}
        summary["index"] = c.name
    return JobOut(
        id=job.id, collection=job.collection, label=job.label, state=state, stage=job.stage,
        progress=1.0 if state == "succeeded" else round(job.fraction, 3),
        elapsed_s=round(job.elapsed, 3), error=None if job.error is None else hide_paths(job.error, roots),
        summary=summary,
    )


def _collection(service: Service, name: str) -> Collection:
    try:
        return service.collection(name)
    except CollectionNameError as e:
        raise ApiError(400, str(e), param="name") from e
    except FileNotFoundError as e:
        raise ApiError(404, f"{e}; create it with POST /v1/collections", param="name") from e


def _records(c: Collection, settings: Settings) -> list[FileRecord]:
    from rag.store.backends import store_exists, store_manifest

    if not store_exists(settings, c.index_dir):
        return []
    return sorted(store_manifest(settings, c.index_dir).files.values(), key=lambda f: f.source)


def _indexed(service: Service, c: Collection) -> bool:
    from rag.store.backends import store_exists

    return store_exists(service.settings, c.index_dir)


def _collection_out(service: Service, c: Collection) -> CollectionOut:
    records = _records(c, service.settings)
    job = service.jobs.last(c.name)
    return CollectionOut(name=c.name, indexed=_indexed(service, c),
                         documents=len(records),
                         passages=sum(r.chunks for r in records),
                         job=None if job is None else job_out(job, c))


def _start(service: Service, c: Collection, label: str,
           work: Callable[[ProgressFn], IngestSummary]) -> Job:
    try:
        return service.jobs.start(c.name, label, work)
    except JobBusyError as e:
        raise ApiError(409, str(e), param="name") from e


def _busy(service: Service, c: Collection) -> None:
    job = service.jobs.last(c.name)
    if job is not None and job.running:
        raise ApiError(409, f"{job.label.lower()} is still running on {c.name!r}; wait for it "
                       f"(GET /v1/collections/{c.name}/job)", param="name")


@router.get("", response_model=list[CollectionOut], summary="All collections")
def list_all(request: Request) -> list[CollectionOut]:
    service = service_of(request)
    return [_collection_out(service, _collection(service, n)) for n in list_collections(service.settings)]


@router.post("", response_model=CollectionOut, status_code=201, summary="Create an empty collection")
def create(body: CreateCollection, request: Request) -> CollectionOut:
    service = service_of(request)
    try:
        c = create_collection(service.settings, body.name)
    except CollectionNameError as e:
        status = 409 if "already exists" in str(e) else 400
        raise ApiError(status, str(e), param="name") from e
    return _collection_out(service, c)


@router.get("/{name}", response_model=CollectionOut, summary="One collection")
def get(name: str, request: Request) -> CollectionOut:
    service = service_of(request)
    return _collection_out(service, _collection(service, name))


@router.delete("/{name}", status_code=204, summary="Delete a collection, its index and its documents")
def delete(name: str, request: Request) -> Response:
    service = service_of(request)
    c = _collection(service, name)
    _busy(service, c)
    delete_collection(service.settings, c.name)
    service.forget(c.name)
    service.jobs.forget(c.name)
    return Response(status_code=204)


@router.get("/{name}/documents", response_model=list[DocumentOut], summary="Documents and their status")
def documents(name: str, request: Request) -> list[DocumentOut]:
    service = service_of(request)
    c = _collection(service, name)
    states = document_states(_records(c, service.settings), document_files(c), service.jobs.last(c.name))
    return [DocumentOut(name=d.name, status=d.status, reason=d.reason, pages=d.pages,  # type: ignore[arg-type]
                        passages=d.chunks, added_at=d.added_at) for d in states]


@router.post(
    "/{name}/documents",
    response_model=UploadResponse,
    status_code=202,
    summary="Upload documents (multipart field 'files'); ingestion starts as a background job",
)
async def upload(
    name: str,
    request: Request,
    files: Annotated[list[UploadFile], File(description="PDF, text, Markdown or HTML files.")],
) -> UploadResponse:
    service = service_of(request)
    c = _collection(service, name)
    if len(files) > MAX_FILES_PER_UPLOAD:
        raise ApiError(400, f"files: {len(files)} files in one request, at most {MAX_FILES_PER_UPLOAD}",
                       param="files")
    max_bytes = int(service.settings.max_file_mb * 1024 * 1024)
    results: list[UploadResult] = []
    saved = 0
    for f in files:
        data = await f.read()
        r = await run_in_threadpool(save_upload, c.documents_dir, f.filename or "", data, max_bytes=max_bytes)
        saved += r.outcome == "saved"
        document = None if r.path is None else r.path.relative_to(c.documents_dir).as_posix()
        results.append(UploadResult(filename=r.original_name, outcome=r.outcome, message=r.message,
                                    document=document))
    job = None
    if saved:
        # Queued behind a running job, not refused: the files are saved already, and the
        # follow-up job reads them (with any others that arrive before it starts).
        job = service.jobs.enqueue(c.name, f"Adding {saved} document{'s' * (saved != 1)}",
                                   _ingest_work(service, c))
    return UploadResponse(results=results, job=None if job is None else job_out(job, c))


@router.post("/{name}/ingest", response_model=JobResponse, status_code=202,
             summary="Re-read the documents folder (files copied in by hand) as a background job")
def ingest(name: str, request: Request, rebuild: bool = False) -> JobResponse:
    service = service_of(request)
    c = _collection(service, name)
    label = "Rebuilding the index" if rebuild else "Updating the index"
    return JobResponse(job=job_out(_start(service, c, label, _ingest_work(service, c, rebuild)), c))


@router.delete("/{name}/documents/{document:path}", response_model=JobResponse, status_code=202,
               summary="Remove a document from the collection (folder and index) as a background job")
def remove(name: str, document: str, request: Request) -> JobResponse:
    from ingest.pipeline import remove_documents

    service = service_of(request)
    c = _collection(service, name)
    known = set(document_files(c)) | {r.source for r in _records(c, service.settings)}
    if document not in known:
        raise ApiError(404, f"no document {document!r} in collection {c.name!r}; list them with "
                       f"GET /v1/collections/{c.name}/documents", param="document")

    def work(progress: ProgressFn) -> IngestSummary:
        return remove_documents(c.documents_dir, c.index_dir, service.settings, [document],
                                encoder=service.encoder)

    return JobResponse(job=job_out(_start(service, c, "Removing 1 document", work), c))


@router.get("/{name}/job", response_model=JobResponse, summary="The collection's running or last job")
def job(name: str, request: Request) -> JobResponse:
    service = service_of(request)
    c = _collection(service, name)
    last = service.jobs.last(c.name)
    if last is None:
        raise ApiError(404, f"no job has run on {c.name!r} since the server started", param="name")
    queued = service.jobs.queued(c.name)
    return JobResponse(job=job_out(last, c), queued=None if queued is None else job_out(queued, c))


def _ingest_work(
    service: Service, c: Collection, rebuild: bool = False
) -> Callable[[ProgressFn], IngestSummary]:
    from ingest.pipeline import ingest_folder

    def work(progress: ProgressFn) -> IngestSummary:
        return ingest_folder(c.documents_dir, c.index_dir, service.settings, encoder=service.encoder,
                             rebuild=rebuild, progress=progress)

    return work
