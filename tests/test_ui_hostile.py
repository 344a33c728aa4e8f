"""The app against the network and hostile names (issue 11, items 2 and 10).

- Started either way (``rag ui`` or ``streamlit run ui/app.py`` from any folder), it listens
  on localhost only; told to listen beyond it, it shows nothing without RAG_UI_PASSWORD,
  and with one, only after the password is typed.
- Nothing on the page comes from the internet (the page icon was a Material symbol, which
  the browser fetches from fonts.gstatic.com).
- Names the user types are shown as text, never rendered as Markdown (an image in a
  collection name made the browser fetch a URL).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest
import streamlit as st
import test_ui_app
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest
from test_ui_app import APP, Models, settle, start, texts

from rag.settings import Settings, is_loopback
from ui import launch
from ui.access import exposure_problem, password_matches

models = test_ui_app.models  # the fake-model fixture of the app tests, shared
REPO = Path(__file__).resolve().parent.parent
HOSTILE = "![x](http://evil.test/x.png)"


@pytest.fixture
def public_address() -> Any:
    st_config.set_option("server.address", "0.0.0.0")
    yield
    st_config.set_option("server.address", "localhost")


def test_loopback_addresses() -> None:
    assert is_loopback("localhost") and is_loopback("127.0.0.1") and is_loopback("::1")
    assert not is_loopback(None) and not is_loopback("") and not is_loopback("0.0.0.0")
    assert not is_loopback("192.168.1.5") and not is_loopback("myhost.example")
    assert exposure_problem("0.0.0.0", Settings()) is not None
    assert exposure_problem("0.0.0.0", Settings(ui_password="pw")) is None
    assert exposure_problem("localhost", Settings()) is None


def test_password_is_compared_exactly() -> None:
    s = Settings(ui_password="correct horse")
    assert password_matches("correct horse", s)
    assert not password_matches("correct hors", s) and not password_matches("", s)


def test_beyond_localhost_without_password_the_page_shows_nothing(
    models: Models, public_address: None
) -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert any("RAG_UI_PASSWORD" in e and "0.0.0.0" in e for e in texts(at.error))
    # No documents, no uploader, no chat: the page stopped before drawing them.
    assert not at.sidebar.selectbox and not at.chat_input and not at.get("file_uploader")
    assert not list((Path(os.environ["RAG_INDEXES_DIR"])).glob("*/documents"))


def test_with_a_password_the_app_opens_only_after_it(
    models: Models, public_address: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_UI_PASSWORD", "s3cret words")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.chat_input and not at.sidebar.selectbox
    at.text_input(key="sign_in_password").set_value("guess")
    at.button[0].click().run()
    assert any("Wrong password" in e for e in texts(at.error))
    assert not at.chat_input
    at.text_input(key="sign_in_password").set_value("s3cret words")
    at.button[0].click()
    settle(at)
    assert at.sidebar.selectbox(key="collection_select").value == "sample"
    assert at.chat_input


def test_rag_ui_refuses_a_public_address_without_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RAG_UI_PASSWORD", raising=False)
    monkeypatch.setattr(subprocess, "Popen", lambda cmd: pytest.fail("must not start"))
    parser = __import__("argparse").ArgumentParser()
    launch.add_arguments(parser)
    assert launch.run(parser.parse_args(["--address", "0.0.0.0"])) == 2
    assert "RAG_UI_PASSWORD" in capsys.readouterr().err


def test_streamlit_run_from_another_folder_listens_on_localhost_only(tmp_path: Path) -> None:
    """`streamlit run ui/app.py` as the README offers it, from a folder with no config."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "RAG_INDEXES_DIR": str(tmp_path / "indexes"), "PYTHONPATH": str(REPO),
           "HOME": str(tmp_path)}  # fmt: skip
    cmd = [sys.executable, "-m", "streamlit", "run", str(REPO / "ui" / "app.py"), "--server.port", str(port)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"streamlit did not serve: {out[-2000:]}")
                time.sleep(0.5)
        listening = [
            c.laddr.ip
            for c in psutil.Process(proc.pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        ]
        assert listening and all(is_loopback(ip) for ip in listening), listening
        # The page Streamlit serves names no other host (its assets are all local).
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            html = re.sub(r"<!--.*?-->", "", r.read().decode(), flags=re.S)
        assert not re.findall(r"https?://", html)
    finally:
        proc.terminate()
        proc.wait(20)


def test_page_icon_is_not_fetched_from_the_internet(models: Models, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    real = st.set_page_config

    def spy(*args: Any, **kwargs: Any) -> None:
        seen.append(kwargs.get("page_icon"))
        real(*args, **kwargs)

    monkeypatch.setattr(st, "set_page_config", spy)
    start()
    assert seen
    for icon in seen:
        # ":material/..." icons are loaded from fonts.gstatic.com; URLs are fetched as given.
        assert isinstance(icon, str) and not icon.startswith(":") and "http" not in icon, icon


def test_collection_name_is_shown_as_text(models: Models) -> None:
    at = start()
    at.text_input(key="new_collection_name").set_value(HOSTILE)
    next(b for b in at.button if b.label == "Create").click().run()
    errors = [str(e.value) for e in at.error]
    assert any("not allowed" in e for e in errors)
    for e in errors:
        # An unescaped "![x](...)" would be an image the browser fetches.
        assert "![" not in e.replace("\\!\\[", "") and "](http" not in e, e
    assert any(HOSTILE in e for e in texts(at.error))  # still readable as typed


def test_file_names_are_shown_as_text(models: Models) -> None:
    at = start()
    name = "![y](http://evil.test/y.png).exe"
    at.file_uploader[0].set_value([(name, b"MZ\x90\x00", "application/octet-stream")])
    settle(at)
    errors = [str(e.value) for e in at.error]
    assert any("unsupported file type" in e for e in errors), errors
    for e in errors:
        assert "](http" not in e, e
