"""Who may use the app: this machine only, unless a password is set.

The documents are private and the page can upload and delete them, so the app never
serves the network without a password. ``ui/.streamlit/config.toml`` makes Streamlit
listen on localhost however it is started (``rag ui`` or ``streamlit run ui/app.py``
from any folder); this module is the second line: when the server was told to listen
beyond this machine anyway (a flag, another config file), the page refuses to show
anything until RAG_UI_PASSWORD is set, and then asks for it.
"""

from __future__ import annotations

import hmac

import streamlit as st

from rag.settings import Settings, is_loopback


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


def password_matches(given: str, settings: Settings) -> bool:
    if settings.ui_password is None:
        return True
    # Constant time: the comparison must not tell an attacker how many characters matched.
    return hmac.compare_digest(given.encode(), settings.ui_password.get_secret_value().encode())


def require_access(settings: Settings) -> None:
    """Stop the page here unless this session may see it (call before drawing anything else)."""
    problem = exposure_problem(st.get_option("server.address"), settings)
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
