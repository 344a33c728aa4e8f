"""The sidebar's list of chats (new, open, rename, delete) and where the user is.

Where the user is (collection and chat) is kept in the page's URL (``?collection=..&chat=..``):
a reload, or a bookmark, opens the same place; the chat's turns and its answer settings
come from the collection's chat store (ui.chat_store).
"""

from __future__ import annotations

import datetime as dt

import streamlit as st

from ui.answer_settings import restore_options
from ui.chat_store import ChatInfo, ChatStore
from ui.highlight import escape_markdown


def chat_key(collection: str, chat_id: str) -> str:
    return f"{collection}/{chat_id}"


def active_chat(store: ChatStore, collection: str) -> str:
    """The open chat's id ("" for a new chat not saved yet), restoring its settings when it
    is opened (a reload, a click in the list, another collection).

    A collection opened for the first time in this session opens the chat in the URL, else
    its most recent chat (switching back to a collection used to show an empty chat, its
    last one only listed in the sidebar); "New chat" is then one click away."""
    state_key = f"chat_of_{collection}"
    # "" counts as chosen only after "New chat" (or a delete): a collection first seen
    # empty in this session still opens its latest chat when the user comes back to it.
    if not st.session_state.get(state_key) and not st.session_state.get(f"new_chat_of_{collection}"):
        wanted = st.query_params.get("chat", "")
        if not (wanted and store.exists(wanted)):
            recent = store.chats()
            wanted = recent[0].id if recent else ""
        st.session_state[state_key] = wanted
    chat_id = str(st.session_state[state_key])
    if chat_id and not store.exists(chat_id):  # deleted in another session
        chat_id = st.session_state[state_key] = ""
    if st.session_state.get("options_loaded_for") != chat_key(collection, chat_id):
        if chat_id:
            restore_options(store.options(chat_id))
        st.session_state["options_loaded_for"] = chat_key(collection, chat_id)
    if chat_id:
        st.query_params["chat"] = chat_id
    elif "chat" in st.query_params:
        del st.query_params["chat"]
    return chat_id


def open_chat(collection: str, chat_id: str) -> None:
    st.session_state[f"chat_of_{collection}"] = chat_id
    st.session_state[f"new_chat_of_{collection}"] = not chat_id
    st.session_state.pop("confirm_delete_chat", None)


def local_time(ts: float) -> str:
    """A time in the browser's zone (UTC when the browser did not say which)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = st.context.timezone
    try:
        zone = ZoneInfo(name) if name else dt.UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = dt.UTC
    t = dt.datetime.fromtimestamp(ts, zone)
    return t.strftime("%Y-%m-%d %H:%M") + ("" if name else " UTC")


def _rename(store: ChatStore, chat_id: str, key: str) -> None:
    store.rename(chat_id, str(st.session_state.get(key, "")))


def _delete(store: ChatStore, collection: str, chat_id: str) -> None:
    store.delete(chat_id)
    open_chat(collection, "")


def render_chat_list(store: ChatStore, collection: str, current: str) -> None:
    """Sidebar: a new chat, the saved chats (most recent first), and the open one's controls."""
    st.button(
        "New chat", icon=":material/add_comment:", width="stretch", key="new_chat",
        on_click=open_chat, args=(collection, ""), disabled=not current,
    )  # fmt: skip
    chats: list[ChatInfo] = store.chats()
    for c in chats[:30]:
        st.button(
            c.title, key=f"chat_{c.id}", width="stretch", type="primary" if c.id == current else "tertiary",
            on_click=open_chat, args=(collection, c.id),
            help=f"{c.turns} questions · last {local_time(c.updated)}",
        )  # fmt: skip
    if not current:
        return
    info = next((c for c in chats if c.id == current), None)
    with st.expander("This chat", icon=":material/edit:"):
        key = f"rename_{current}"
        st.text_input("Name", value=info.title if info else "", key=key, max_chars=60)
        st.button("Rename", key="rename_chat", on_click=_rename, args=(store, current, key))
        if st.session_state.get("confirm_delete_chat") == current:
            st.warning(f"Delete **{escape_markdown(info.title if info else '')}** and its answers?")
            cols = st.columns(2)
            cols[0].button("Delete", type="primary", key="delete_chat_yes", on_click=_delete,
                           args=(store, collection, current))  # fmt: skip
            cols[1].button("Cancel", key="delete_chat_no", on_click=st.session_state.pop,
                           args=("confirm_delete_chat", None))  # fmt: skip
        else:
            st.button("Delete chat", icon=":material/delete:", key="delete_chat",
                      on_click=st.session_state.update, kwargs={"confirm_delete_chat": current})  # fmt: skip
