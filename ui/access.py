"""Who may use the app: this machine only, unless a password is set.

The documents are private and the page can upload and delete them, so the app never
serves the network without a password. ``ui/.streamlit/config.toml`` makes Streamlit
listen on localhost however it is started (``rag ui`` or ``streamlit run ui/app.py``
from any folder); this module is the second line: when the server was told to listen
beyond this machine anyway (a flag, another config file), the page refuses to show
anything until RAG_UI_PASSWORD is set, and then asks for it.

Without a password the page also checks the Host the browser asked for: a web page that
points its own name at 127.0.0.1 (DNS rebinding) is "same origin" to Streamlit's own
checks, and would otherwise get the app; it gets one line saying where docchat answers.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

import streamlit as st

from rag.settings import Settings, is_loopback
from ui.highlight import escape_markdown


def exposure_problem(address: str | None, settings: Settings) -> str | None:
    """Why the app must not serve on ``address`` with these settings, or None."""
    if is_loopback(address) or settings.ui_password is not None:
        return None
    where = address or "every network interface"
    return (
        f"The app is listening on {where}, so anyone on the network could read, upload and delete "
        "your documents. Set RAG_UI_PASSWORD to a password and restart, or start it on this "
        "machine only: `rag ui` (or `streamlit run ui/app.py --server.address localhost`)."
    )


def host_problem(host: str | None, address: str | None, port: int, settings: Settings) -> str | None:
    """Why a page asked for as ``host`` (the Host header) must not get the app, or None.

    With a password the sign-in guards the app whatever name reached it. Without one, only
    this machine's names may: a loopback name or address, or the address the server was
    told to listen on. No Host at all is no browser (browsers always send one), so no
    rebinding page either."""
    if settings.ui_password is not None or not host:
        return None
    try:
        name = urlsplit(f"//{host}").hostname or ""
    except ValueError:  # an unbalanced "[" in an IPv6 literal
        name = ""
    if name and (is_loopback(name) or name.endswith(".localhost") or name == (address or "").lower()):
        return None
    # The header is the attacker's text, shown in Markdown: escaped, and short.
    shown = escape_markdown(ascii(host)[1:-1][:80])
    return (
        f"This page was opened as “{shown}”, which is not this machine: docchat answers only at "
        f"http://localhost:{port} (set RAG_UI_PASSWORD to serve it under other names)."
    )


def password_matches(given: str, settings: Settings) -> bool:
    if settings.ui_password is None:
        return True
    # Constant time: the comparison must not tell an attacker how many characters matched.
    return hmac.compare_digest(given.encode(), settings.ui_password.get_secret_value().encode())


def require_access(settings: Settings) -> None:
    """Stop the page here unless this session may see it (call before drawing anything else)."""
    address = st.get_option("server.address")
    port = int(st.get_option("server.port"))
    problem = host_problem(st.context.headers.get("Host"), address, port, settings)
    if problem is not None:
        st.error(problem, icon=":material/lock:")
        st.stop()
    problem = exposure_problem(address, settings)
    if problem is not None:
        st.error(problem, icon=":material/lock:")
        st.stop()
    if settings.ui_password is None or st.session_state.get("signed_in"):
        return
    st.title("docchat")
    with st.form("sign_in"):
        given = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        if password_matches(given, settings):
            st.session_state["signed_in"] = True
            st.rerun()
        st.error("Wrong password. It is the value of RAG_UI_PASSWORD on the machine running the app.")
    st.stop()
