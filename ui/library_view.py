"""The documents of a collection: list, upload, remove, and ingestion progress.

File handling lives in ingest.uploads / ingest.collection and ingestion in ingest.pipeline (the
same code as the ingest script); this module only draws widgets and starts jobs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from ingest.collection import Collection, document_files, document_states, index_revision
from ingest.jobs import Job, JobBusyError
from ingest.uploads import ALLOWED_SUFFIXES, SaveResult, save_upload
from rag.settings import Settings
from ui import resources
from ui.highlight import escape_markdown, passage_markdown

if TYPE_CHECKING:
    from ingest.summary import IngestSummary, ProgressFn
    from rag.store import FileRecord
    from rag.types import Encoder


@dataclass(frozen=True)
class DocumentRow:
    name: str
    pages: int | None
    chunks: int | None
    added: str
    status: str


@st.cache_resource(show_spinner=False, max_entries=32)
def indexed_files(index_dir: str, revision: str) -> tuple[FileRecord, ...]:
    """The index's file records; cached per live generation, which never changes once made."""
    from rag.store.backends import store_manifest

    if not revision:
        return ()
    manifest = store_manifest(resources.load_settings(), Path(index_dir))  # folder or server
    return tuple(sorted(manifest.files.values(), key=lambda f: f.source))


def _when(iso: str) -> str:
    """An ISO time in the browser's zone."""
    from ui.chats import local_time

    try:
        t = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return local_time(t.timestamp())


def document_rows(
    records: Sequence[FileRecord], on_disk: Sequence[str], job: Job | None
) -> list[DocumentRow]:
    """Indexed documents plus files waiting in the folder (being ingested, or failed)."""
    rows = []
    for d in document_states(records, on_disk, job):
        status = {"processing": "processing…", "not added": f"not added: {d.reason}"}.get(d.status, d.status)
        rows.append(DocumentRow(d.name, d.pages, d.chunks, _when(d.added_at) if d.added_at else "", status))
    return rows


def start_ingest(
    settings: Settings, c: Collection, encoder: Encoder, label: str, *, rebuild: bool = False
) -> None:
    from ingest.pipeline import ingest_folder

    def work(progress: ProgressFn) -> IngestSummary:
        return ingest_folder(
            c.documents_dir,
            c.index_dir,
            settings,
            encoder=encoder,
            rebuild=rebuild,
            progress=progress,
        )

    _start(c, label, work)


def _start(c: Collection, label: str, work: Callable[[ProgressFn], IngestSummary]) -> None:
    board = resources.job_board()
    try:
        board.start(c.name, label, work)
    except JobBusyError as e:
        st.warning(escape_markdown(str(e)))
        return
    # This session reports the job's outcome; a session opened after it ended does not
    # (a reload would otherwise bring back an old "Building the index" banner).
    if (job := board.last(c.name)) is not None:
        st.session_state.setdefault("watched_jobs", set()).add(job.id)


def start_remove(settings: Settings, c: Collection, encoder: Encoder, sources: list[str]) -> None:
    from ingest.pipeline import remove_documents

    def work(progress: ProgressFn) -> IngestSummary:
        return remove_documents(c.documents_dir, c.index_dir, settings, sources, encoder=encoder)

    n = len(sources)
    _start(c, f"Removing {n} document{'s' * (n != 1)}", work)


def handle_uploads(settings: Settings, c: Collection, encoder: Encoder) -> None:
    """The uploader (in the current container): save the files, then ingest them."""
    key = f"uploader_{c.name}_{st.session_state.setdefault('uploader_round', 0)}"
    busy = resources.job_board().running(c.name)
    # No `type=` filter: the browser's own rejection is a red chip with the reason in a
    # tooltip, in MIME jargon; save_upload refuses other types with a plain sentence.
    files = st.file_uploader(
        "Add documents",
        accept_multiple_files=True,
        key=key,
        max_upload_size=max(1, int(-(-settings.max_file_mb // 1))),
        disabled=busy,
        help=f"PDF, text, Markdown or HTML ({', '.join(ALLOWED_SUFFIXES)}); "
        f"up to {settings.max_file_mb:g} MB each.",
    )
    if files:
        max_bytes = int(settings.max_file_mb * 1024 * 1024)
        results = [save_upload(c.documents_dir, f.name, f.getvalue(), max_bytes=max_bytes) for f in files]
        st.session_state["upload_results"] = (c.name, results)
        saved = [r for r in results if r.outcome == "saved"]
        if saved:
            n = len(saved)
            start_ingest(settings, c, encoder, f"Adding {n} document{'s' * (n != 1)}")
        # A fresh widget key empties the uploader, so the files are not handled twice.
        st.session_state["uploader_round"] += 1
        st.rerun()
    shown = st.session_state.get("upload_results")
    if shown and shown[0] == c.name:
        render_upload_results(shown[1])


def render_upload_results(results: Sequence[SaveResult]) -> None:
    """What happened to each file of the last upload (an earlier upload's are not kept)."""
    for r in results:
        if r.outcome == "rejected":
            st.error(
                f"**{escape_markdown(r.original_name)}** was not added: {escape_markdown(r.message)}",
                icon=":material/block:",
            )
        elif r.outcome == "duplicate":
            st.info(escape_markdown(r.message), icon=":material/info:")


def render_job_result(job: Job) -> None:
    """What the last job did: counts, and every file that did not go in, with why."""
    if job.error is not None:
        st.error(
            f"{escape_markdown(job.label)} failed: {escape_markdown(job.error)}", icon=":material/error:"
        )
        return
    s = job.summary
    if s is None:
        return
    parts = []
    if s.files_ok:
        parts.append(f"{s.files_ok} added")
    if s.files_removed:
        parts.append(f"{s.files_removed} removed")
    if s.files_unchanged:
        parts.append(f"{s.files_unchanged} unchanged")
    text = ", ".join(parts) or "nothing changed"
    st.success(
        f"{escape_markdown(job.label)}: {text}; "
        f"{s.total_chunks} passages in the collection ({s.seconds:.1f} s)",
        icon=":material/check_circle:",
    )
    for item in [*s.files_failed, *s.files_skipped]:
        st.error(
            f"**{escape_markdown(str(item['path']))}** not added: {escape_markdown(str(item['reason']))}",
            icon=":material/block:",
        )


@st.fragment(run_every=1.0)
def job_progress(collection: str) -> None:
    """Polls the running job; when it is done, re-runs the page so everything refreshes."""
    job = resources.job_board().last(collection)
    if job is None or not job.running:
        st.rerun()
        return
    st.progress(job.fraction, text=escape_markdown(job.progress_text))
    settings = resources.load_settings()
    if index_revision(Collection(collection, settings.index_path(collection)), settings):
        note = "you can keep chatting; answers use the documents indexed so far"
    else:
        note = "the chat opens as soon as the index is ready"
    st.caption(f"{job.elapsed:.0f} s · {note}")


def render_job(collection: str) -> None:
    job = resources.job_board().last(collection)
    if job is None:
        return
    watched: set[str] = st.session_state.setdefault("watched_jobs", set())
    if job.running:
        watched.add(job.id)
        job_progress(collection)
        return
    seen: set[str] = st.session_state.setdefault("seen_jobs", set())
    if job.id in seen or job.id not in watched:
        return
    render_job_result(job)
    if st.button("Dismiss", key=f"dismiss_{job.id}"):
        seen.add(job.id)
        st.rerun()


def documents_label(indexed: int, passages: int, processing: int, busy: bool) -> str:
    """The documents heading. While a job runs, the files it is reading count as documents
    "indexing…" ("Documents (0 · 0 passages)" while 7 were being indexed read as empty)."""
    if busy and processing:
        which = f"{processing} " if indexed else ""  # all of them, when none is indexed yet
        return f"Documents ({indexed + processing} · {which}indexing…)"
    if busy:
        return f"Documents ({indexed} · updating…)"
    return f"Documents ({indexed} · {passages} passages)"


def render_documents(settings: Settings, c: Collection, encoder: Encoder) -> int:
    """The documents table and remove controls; returns how many documents are indexed."""
    board = resources.job_board()
    job = board.last(c.name)
    records = indexed_files(str(c.index_dir), index_revision(c, resources.load_settings()))
    rows = document_rows(records, document_files(c), job)
    total_chunks = sum(r.chunks for r in records)
    label = documents_label(len(records), total_chunks, sum(r.status == "processing…" for r in rows),
                            board.running(c.name))  # fmt: skip
    with st.expander(label, expanded=not records):
        if not rows:
            st.info("This collection is empty. Add PDF, text, Markdown or HTML files with **Add documents**.")
            return 0
        st.dataframe(
            {
                "Document": [r.name for r in rows],
                # Text, so files still waiting show a blank rather than "None".
                "Pages": ["" if r.pages is None else str(r.pages) for r in rows],
                "Passages": ["" if r.chunks is None else str(r.chunks) for r in rows],
                "Added": [r.added for r in rows],
                "Status": [r.status for r in rows],
            },
            hide_index=True,
            width="stretch",
        )
        busy = board.running(c.name)
        names = [r.name for r in rows]
        cols = st.columns([3, 1], vertical_alignment="bottom")
        round_ = st.session_state.setdefault("remove_round", 0)
        chosen = cols[0].multiselect(
            "Remove documents",
            names,
            key=f"remove_sel_{c.name}_{round_}",
            disabled=busy,
            placeholder="Choose documents",
        )
        if cols[1].button("Remove", key=f"remove_btn_{c.name}", disabled=busy or not chosen):
            st.session_state["confirm_remove"] = (c.name, list(chosen))
        pending = st.session_state.get("confirm_remove")
        if pending and pending[0] == c.name and not busy:
            listed = ", ".join(f"**{escape_markdown(n)}**" for n in pending[1])
            st.warning(
                f"Remove {listed} from the collection? The files and their passages are deleted; "
                "answers will no longer cite them.",
                icon=":material/delete:",
            )
            yes, no = st.columns(2)
            if yes.button("Yes, remove", key=f"remove_yes_{c.name}", type="primary"):
                st.session_state.pop("confirm_remove", None)
                start_remove(settings, c, encoder, list(pending[1]))
                # A fresh key clears the selection of names that are about to disappear.
                st.session_state["remove_round"] = round_ + 1
                st.rerun()
            if no.button("Cancel", key=f"remove_no_{c.name}"):
                st.session_state.pop("confirm_remove", None)
                st.rerun()
        render_preview(c, names)
    return len(records)


def render_preview(c: Collection, names: Sequence[str]) -> None:
    """A first look at one document: its first page (PDF) or the start of its text."""
    from ui.preview import PreviewError, document_path, document_text, pdf_page_image

    choice = st.selectbox("Preview a document", names, index=None, key=f"preview_{c.name}",
                          placeholder="Choose a document")  # fmt: skip
    if choice is None:
        return
    try:
        path = document_path(c.documents_dir, choice)
        if path.suffix.lower() == ".pdf":
            st.image(pdf_page_image(path, 1, "", set()).image, caption=f"{choice}, page 1", width=520)
        else:
            with st.container(height=320):
                st.markdown(passage_markdown(document_text(path)[:6000]))
    except PreviewError as e:
        st.error(escape_markdown(str(e)), icon=":material/error:")
