"""Issue 28 in a real browser, against the page with slow fake models (tests/ui_fake_app.py):
what a new user sees in the first minute, the answer streaming in, the last chat opened
again, a DNS-rebinding page refused, and the page at phone width.

Fake models keep it fast and deterministic (the real models' answers are the subject of
tests/test_ui_browser.py); everything else is the real page, served by `streamlit run`.
Screenshots go to test-artifacts/ (gitignored).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest
from test_ui_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, PDF, REPO, free_port

pytestmark = [pytest.mark.browser]

QUESTION = "Denmark 5.8 42,951 Copenhagen Danish capital?"
NOTES = {
    f"note-{i}.md": f"# Note {i}\n\nThe meeting number {i} is about topic {i} and budget line {i * 7}.\n"
    for i in range(6)
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("ui-first-minute")
    sample = tmp / "sample"
    sample.mkdir()
    for name, text in NOTES.items():
        (sample / name).write_text(text)
    shutil.copy(PDF, sample / "multicolumn.pdf")
    port = free_port()
    env = {
        **os.environ,
        "RAG_INDEXES_DIR": str(tmp / "indexes"),
        "RAG_MODEL_CACHE_DIR": str(tmp / "cache"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(REPO),
        "RAG_READER": "false",
        "RAG_PARSE_WORKERS": "1",
        "RAG_ABSTAIN_THRESHOLD": "0.25",
        "RAG_RETRIEVER": "bm25",
        "RAG_K": "1",
        "DOCCHAT_FAKE_SAMPLE": str(sample),
        "DOCCHAT_FAKE_DECODER_LOAD_S": "8",
    }
    log = (tmp / "server.log").open("wb")
    # The settings of ui/.streamlit/config.toml (read from next to ui/app.py, not this script).
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(REPO / "tests" / "ui_fake_app.py"),
        "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.enableXsrfProtection", "true", "--server.enableCORS", "true",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"streamlit did not start: {(tmp / 'server.log').read_text()[-3000:]}")
        time.sleep(0.3)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        server_log = (tmp / "server.log").read_text(errors="replace")
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "ui-first-minute-server.log").write_text(server_log)
        assert "Traceback" not in server_log, server_log[-3000:]


def test_first_minute_streaming_last_chat_host_and_phone(server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    url = server
    port = url.rsplit(":", 1)[1]
    ARTIFACTS.mkdir(exist_ok=True)
    # attacker.example resolves to this machine, as a DNS-rebinding page makes it.
    args = [*CHROMIUM_ARGS, "--host-resolver-rules=MAP attacker.example 127.0.0.1"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=args)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            # The first minute: the models load in the background, and the page says so;
            # the documents being indexed are counted as such.
            page.goto(url)
            loading = re.compile(r"Loading the models… \(encoder ready, decoder loading")
            expect(page.get_by_text(loading)).to_be_visible(timeout=60_000)
            n = len(NOTES) + 1
            expect(page.get_by_text(f"Documents ({n} · indexing…)")).to_be_visible(timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "ui-first-minute-start.png"))
            indexed = re.compile(rf"Documents \({n} · \d+ passages\)")
            expect(page.get_by_text(indexed)).to_be_visible(timeout=120_000)
            expect(page.get_by_text("Loading the models…")).to_have_count(0, timeout=60_000)

            # Streaming: the draft grows word by word (the fake chain emits a word every
            # 0.35 s), with the cursor, before the checked answer is shown.
            box = page.locator('[data-testid="stChatInputTextArea"]')
            expect(box).to_be_enabled(timeout=30_000)
            box.fill(QUESTION)
            box.press("Enter")
            bot = page.locator('[data-testid="stChatMessage"]').nth(1)
            seen: list[str] = []
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                if bot.count():
                    text = bot.inner_text(timeout=5_000)
                    # The drafts as the decoder writes them (then the checked answer
                    # replaces them, shorter, which is not the streaming measured here).
                    drafting = "▌" in text and "Checking against the passages" in text
                    if drafting and (not seen or seen[-1] != text):
                        seen.append(text)
                    if re.search(r"^\d+\.\d s", text, re.M):  # the finished answer's time
                        break
                time.sleep(0.1)
            else:
                pytest.fail(f"the answer did not finish; seen while writing: {seen}")
            assert len(seen) >= 3, f"the answer did not stream (partial texts seen: {seen})"
            words = [len(s.split()) for s in seen]
            assert words == sorted(words) and words[0] < words[-1], seen
            expect(bot.get_by_text(re.compile(r"multicolumn\.pdf.*page 3")).first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "ui-first-minute-answer.png"))

            # The collection opened again in a new session (no chat in its URL): its last
            # chat is open, not an empty one.
            again = browser.new_page(viewport={"width": 1400, "height": 1000})
            again.goto(f"{url}/?collection=sample")
            expect(again.locator('[data-testid="stChatMessage"]')).to_have_count(2, timeout=60_000)
            expect(again.locator('[data-testid="stChatMessage"]').first).to_contain_text(QUESTION)
            assert "chat=" in again.url, again.url
            chat_url = again.url
            again.close()

            # A page whose own name points at this machine does not get the app.
            rebound = browser.new_page()
            rebound.goto(f"http://attacker.example:{port}/")
            expect(rebound.get_by_text("which is not this machine")).to_be_visible(timeout=60_000)
            expect(rebound.get_by_text(re.compile(r"^Documents \("))).to_have_count(0)
            expect(rebound.locator('[data-testid="stChatMessage"]')).to_have_count(0)
            rebound.close()

            # A phone: the answer stays in view (the sources under it scroll in their own
            # box), and the cited page is drawn at a readable width, scrolled sideways.
            phone = browser.new_page(viewport={"width": 390, "height": 844})
            phone.goto(chat_url)
            answer = phone.locator('[data-testid="stChatMessage"]').nth(1)
            expect(answer).to_be_visible(timeout=60_000)
            phone.wait_for_timeout(1500)  # the page settles its scroll position
            cite = answer.get_by_role("button", name=re.compile(r"\[1\] multicolumn\.pdf · page 3"))
            box_ = cite.bounding_box()
            assert box_ is not None and 0 <= box_["y"] <= 844 - box_["height"], box_
            phone.screenshot(path=str(ARTIFACTS / "ui-first-minute-phone.png"))
            cite.click()
            image = phone.get_by_role("dialog").locator("img").first
            expect(image).to_be_visible(timeout=60_000)
            assert image.evaluate("i => i.getBoundingClientRect().width") >= 880
            scroller = image.evaluate("i => [i.parentElement.scrollWidth, i.parentElement.clientWidth]")
            assert scroller[0] > scroller[1], scroller  # scrolls sideways inside the dialog
            phone.screenshot(path=str(ARTIFACTS / "ui-first-minute-phone-page.png"))
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "ui-first-minute-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
