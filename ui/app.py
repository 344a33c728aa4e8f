"""docchat: chat with your documents (the Streamlit page).

Run with ``rag ui`` or ``streamlit run ui/app.py [-- --collection NAME]``. The page only
arranges widgets: models come from ui.resources (built once per process), file handling
from ingest.uploads / ingest.collection, ingestion from ingest.pipeline, answers from rag.answer.chain.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run ui/app.py` puts ui/ on sys.path, not the project root; without this the
# `ui`, `rag` and `ingest` packages are importable only once the project is pip-installed.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import argparse  # noqa: E402
import logging  # noqa: E402

import streamlit as st  # noqa: E402

from ingest.collection import (  # noqa: E402
    Collection,
    CollectionNameError,
    collection,
    create_collection,
    document_files,
    index_revision,
    list_collections,
)
from rag.settings import Settings  # noqa: E402
from ui import resources  # noqa: E402
from ui.access import require_access  # noqa: E402
from ui.answer_settings import AnswerOptions, answer_options, saved_options  # noqa: E402
from ui.chat_store import ChatStore, ChatStoreError, Turn  # noqa: E402
from ui.chat_view import (  # noqa: E402
    NARROW_SCREEN_CSS,
    ask,
    error_text,
    render_history,
    render_queue,
    resume_interrupted,
)
from ui.chats import active_chat, chat_key, open_chat, render_chat_list  # noqa: E402
from ui.collection import DEFAULT_COLLECTION, seed_sample  # noqa: E402
from ui.highlight import escape_markdown  # noqa: E402
from ui.library_view import handle_uploads, render_documents, render_job, start_ingest  # noqa: E402

log = logging.getLogger("ui.app")


def start_collection() -> str:
    """The collection named on the command line (``-- --collection NAME``), else the default."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--collection", "--index", dest="collection", default=DEFAULT_COLLECTION)
    args, _ = parser.parse_known_args(sys.argv[1:])
    return str(args.collection)


def _create_collection_clicked(settings: Settings) -> None:
    name = str(st.session_state.get("new_collection_name", ""))
    try:
        c = create_collection(settings, name)
    except (CollectionNameError, OSError) as e:
        st.session_state["collection_error"] = str(e)
        return
    st.session_state.pop("collection_error", None)
    st.session_state["collection_select"] = c.name
    st.session_state["new_collection_name"] = ""


def choose_collection(settings: Settings) -> Collection:
    """Sidebar: pick a collection or create one. A reload opens the one in the URL."""
    first = start_collection()
    names = list_collections(settings)
    if "collection_select" not in st.session_state:
        wanted = st.query_params.get("collection", "")
        if wanted in names:
            st.session_state["collection_select"] = wanted
    if first not in names:
        names.insert(0, first)
    current = st.session_state.get("collection_select")
    if current is not None and current not in names:
        names.append(current)
    index = names.index(current) if current in names else names.index(first)
    name = st.selectbox("Collection", names, index=index, key="collection_select")
    with st.expander("New collection", icon=":material/add:"):
        st.text_input("Name", key="new_collection_name", placeholder="e.g. contracts-2026", max_chars=48)
        st.button("Create", on_click=_create_collection_clicked, args=(settings,), type="primary")
    if err := st.session_state.get("collection_error"):
        # The message quotes what the user typed: shown as text, never as Markdown.
        st.error(escape_markdown(err))
    chosen = str(name if name is not None else first)
    st.query_params["collection"] = chosen
    if chosen == DEFAULT_COLLECTION:
        return seed_sample(settings)
    c = collection(settings, chosen)
    c.documents_dir.mkdir(parents=True, exist_ok=True)
    return c


def ensure_index(settings: Settings, c: Collection, encoder_ready: bool) -> None:
    """First start of a collection with documents but no index yet: build it, visibly."""
    board = resources.job_board()
    if not encoder_ready or board.last(c.name) is not None or index_revision(c, settings):
        return
    n = len(document_files(c))
    if n:
        encoder = resources.shared_encoder(settings, resources.settings_key(settings))
        start_ingest(settings, c, encoder, f"Building the index of {n} document{'s' * (n != 1)}")


def answer_next(settings: Settings, c: Collection, store: ChatStore, chat_id: str, turns: list[Turn],
                options: AnswerOptions) -> None:  # fmt: skip
    """Answer the first queued question of this chat, save it, and run the page again."""
    key = chat_key(c.name, chat_id)
    queue: list[dict[str, str]] = st.session_state.setdefault("queue", [])
    mine = [q for q in queue if q["chat"] == key]
    if not mine:
        return
    item = mine[0]
    answer_area, waiting_area = st.container(), st.container()
    with waiting_area:
        render_queue(mine[1:], key)
    with answer_area:
        # Loading started with the app (resources.Warmup); a question asked before it
        # ended waits for it here. Two steps, so a failure names the part that failed.
        decoding = resources.decoder_settings(settings, options.decoder)
        failed = ""
        try:
            load_s = resources.load_generator_visibly(decoding)
        except Exception as e:
            log.exception("loading the language model failed")
            failed = f"Cannot load the language model: {error_text(e)}"
        if not failed:
            try:
                chain = resources.shared_chain(settings, c.index_dir, index_revision(c, settings),
                                               options.decoder)
            except Exception as e:
                log.exception("opening the chain for %s failed", c.name)
                failed = f"Cannot open the collection {c.name!r}: {error_text(e)}"
        if failed:
            # The question stays in the chat, with why it has no answer.
            queue.remove(item)
            if not item.get("regenerate"):
                store.add_turn(chat_id, Turn(item["question"], "", False, error=failed))
            st.error(escape_markdown(failed))
            return
        regenerate = bool(item.get("regenerate"))
        queue.remove(item)  # ask() holds it from here (no Streamlit call in between)
        resources.BudgetWatch.reset()
        hit_budget = resources.BudgetWatch.last_reply_hit_budget
        turn = ask(chain, item, turns[:-1] if regenerate else turns, options, hit_budget)
    if turn.error and regenerate:
        return  # the answer it was to replace stays; the error is on the page until the next run
    if load_s:
        turn.timings["model_load_s"] = load_s
    if regenerate:
        store.replace_last_turn(chat_id, turn)
    else:
        store.add_turn(chat_id, turn)
    store.save_options(chat_id, saved_options())
    st.rerun()


def chat_area(settings: Settings, c: Collection, store: ChatStore, chat_id: str, options: AnswerOptions,
              ready: bool) -> None:  # fmt: skip
    key = chat_key(c.name, chat_id)
    turns = store.turns(chat_id) if chat_id else []
    stopped = resume_interrupted()
    if stopped is not None:
        # Saved to the chat it was asked in (the user may have opened another since).
        where, turn = stopped
        collection_name, _, stopped_chat = where.partition("/")
        ChatStore(settings.index_path(collection_name)).add_turn(stopped_chat, turn)
        if where == key:
            turns.append(turn)
    queue: list[dict[str, str]] = st.session_state.setdefault("queue", [])
    head = next((q for q in queue if q["chat"] == key), None)
    shown = turns[:-1] if head and head.get("regenerate") else turns
    render_history(shown, key, c.documents_dir, settings.rrf_k)
    if not ready and not turns and not resources.job_board().running(c.name):
        st.info(
            "Add documents with **Add documents** in the sidebar, then ask about them here.",
            icon=":material/arrow_back:",
        )
    # One fixed identity (key and text): a widget whose placeholder changed would be a new
    # widget, and the browser would briefly show both.
    question = st.chat_input("Ask a question about these documents", key="question", disabled=not ready)
    if question and ready:
        if not chat_id:
            chat_id = store.create()
            open_chat(c.name, chat_id)
            st.query_params["chat"] = chat_id
            key = chat_key(c.name, chat_id)
        queue.append({"chat": key, "question": question})
    if ready and chat_id:
        answer_next(settings, c, store, chat_id, turns, options)


def main() -> None:
    # A local emoji, not a ":material/..." icon: Streamlit fetches those from Google's servers.
    st.set_page_config(page_title="docchat", page_icon="💬", layout="wide")
    st.html(NARROW_SCREEN_CSS)
    try:
        settings = resources.load_settings()
    except ValueError as e:
        st.error(f"The settings (RAG_* environment variables) are invalid: {escape_markdown(str(e))}")
        st.stop()
    require_access(settings)
    resources.warmup().start(settings)  # once per process: the models load while the page is used
    starting = st.empty()  # says what is loading while the main area would otherwise be blank

    with st.sidebar:
        st.title(":material/forum: docchat")
        st.caption("Answers from your documents, with sources. Everything stays on this machine.")
        try:
            c = choose_collection(settings)
        except (CollectionNameError, OSError) as e:
            st.error(f"Cannot open the collection: {escape_markdown(str(e))}")
            st.stop()
        encoder = resources.load_encoder_visibly(settings, starting)
        handle_uploads(settings, c, encoder)
        st.divider()
        store = ChatStore(c.index_dir)
        try:
            chat_id = active_chat(store, c.name)
            render_chat_list(store, c.name, chat_id)
        except ChatStoreError as e:
            st.error(escape_markdown(str(e)))
            st.stop()
        st.divider()
        st.subheader("Answers")
        options = answer_options(settings)
        resources.render_models(settings, options.decoder)

    ensure_index(settings, c, encoder_ready=True)

    st.header(escape_markdown(c.name))
    if resources.warmup().status() is not None:
        resources.warmup_status()
    render_job(c.name)
    try:
        n_docs = render_documents(settings, c, encoder)
    except Exception as e:
        log.exception("listing documents of %s failed", c.name)
        st.error(f"Cannot read the collection {escape_markdown(repr(c.name))}: {error_text(e)}")
        n_docs = 0
    ready = n_docs > 0 and bool(index_revision(c, settings))
    try:
        chat_area(settings, c, store, chat_id, options, ready)
    except ChatStoreError as e:
        st.error(escape_markdown(str(e)))


# Streamlit runs this file as "__main__" on every rerun. Ingestion's "spawn" worker
# processes import it again as "__mp_main__" (Streamlit installs the page as the main
# module); the guard keeps them from drawing the page and starting jobs of their own.
if __name__ == "__main__":
    main()
