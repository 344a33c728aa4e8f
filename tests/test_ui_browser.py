"""End to end in a real browser with the real default models.

Starts the app exactly as `rag ui` does (``python -m streamlit run ui/app.py``) on a free
localhost port with its indexes in a tmp dir, drives headless Chromium with Playwright:
upload a PDF, wait for it to be ingested, ask a question whose answer is on page 3, and
check the answer's sources name that file and page; then (issue 14) stop an answer while it
is written, reload and find the chat again, and open a citation's PDF page as an image.
Every request the page makes must go to the app itself (no fonts or icons from the
internet). Leaves screenshots and the server's memory use under test-artifacts/ (gitignored).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.real]

REPO = Path(__file__).resolve().parent.parent
PDF = REPO / "tests" / "data" / "pdfs" / "multicolumn.pdf"  # page 3: a table of EU countries
SAMPLE = REPO / "corpora" / "sample"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

#: Questions whose answers take a while to write (the decoder writes them), for Stop.
STOP_QUESTIONS = [
    "Summarise everything the documents say about each EU country, one by one.",
    "What does the two-column document say in its introduction, point by point?",
    "Which official languages does Belgium have, and what is its capital and area?",
    "What is the population of Finland in millions, and what is its capital?",
    "According to its abstract, what is the two-column sample document filled with?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a process (Linux VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float(psutil.Process(pid).memory_info().rss) / 2**20


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, psutil.Process, Path]]:
    tmp = tmp_path_factory.mktemp("ui-e2e")
    notes = tmp / "team notes.md"
    notes.write_text("# Team notes\n\nThe quarterly review moved to Thursday at 10:00 in room B12.\n")
    port = free_port()
    env = {
        **os.environ,
        "RAG_INDEXES_DIR": str(tmp / "indexes"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(REPO),
    }
    log = (tmp / "server.log").open("wb")
    # Exactly what a user types: `rag ui`, which runs `python -m streamlit run ui/app.py`.
    cmd = [
        sys.executable, "-m", "rag_cli.main", "ui",
        "--port", str(port), "--address", "127.0.0.1",
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
        time.sleep(0.5)
    app = next(
        c for c in psutil.Process(proc.pid).children(recursive=True) if "streamlit" in " ".join(c.cmdline())
    )
    try:
        yield url, app, notes
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        server_log = (tmp / "server.log").read_text(errors="replace")
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "ui-e2e-server.log").write_text(server_log)
        assert "Traceback" not in server_log, server_log[-3000:]


def test_first_start_then_upload_pdf_ask_and_see_the_source_page(
    server: tuple[str, psutil.Process, Path],
) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect, sync_playwright

    url, app, notes = server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        # Every request the page makes; all must go to the app itself (offline-safe).
        hosts: set[str] = set()
        page.on("request", lambda r: hosts.add(urllib.parse.urlsplit(r.url).netloc or r.url[:5]))
        try:
            page.goto(url)
            # First start: the default collection is seeded from corpora/sample and indexed
            # in the background, with a progress bar, then reports what went in.
            n_sample = len([p for p in SAMPLE.iterdir() if not p.name.startswith(".")])
            building = f"Building the index of {n_sample} documents"
            expect(
                page.get_by_text(re.compile(building + r": (Reading|Embedding|Building|starting)")).first
            ).to_be_visible(timeout=120_000)
            page.screenshot(path=str(ARTIFACTS / "ui-e2e-first-start.png"))
            expect(page.get_by_text(f"{building}: {n_sample} added", exact=False)).to_be_visible(
                timeout=300_000
            )

            # A new, empty collection: the page says what to do, the chat waits for documents.
            page.get_by_text("New collection").click()
            page.get_by_label("Name").fill("e2e")
            # Enter commits the name first (one rerun), as a user who types it and presses Enter;
            # a blur and a click landing in one rerun were seen to lose the click once.
            page.get_by_label("Name").press("Enter")
            page.wait_for_timeout(1000)
            page.get_by_role("button", name="Create").click()
            expect(page.get_by_text("This collection is empty")).to_be_visible(timeout=60_000)
            expect(page.locator('[data-testid="stChatInputTextArea"]')).to_be_disabled()

            # Two files at once; ingestion runs in the background with a progress bar.
            uploader = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
            # The previous collection's uploader can linger for a repaint after the switch.
            expect(uploader).to_have_count(1, timeout=60_000)
            uploader.set_input_files([str(PDF), str(notes)])
            expect(page.get_by_text(re.compile(r"Adding 2 documents: 2 added"))).to_be_visible(
                timeout=240_000
            )
            expect(page.get_by_text(re.compile(r"Documents \(2 · \d+ passages\)"))).to_be_visible()

            box = page.locator('[data-testid="stChatInputTextArea"]')
            expect(box).to_be_enabled(timeout=30_000)
            # Its answer is in the table on page 3. "Sources" (not "Nearest passages") means
            # the chain answered rather than abstained; whether the 135M reader picks the
            # right cell is measured by `rag eval --answers`, not asserted here.
            box.fill("What is the capital of the Czech Republic?")
            box.press("Enter")

            sources = page.get_by_text(re.compile(r"^Sources \(\d+\)$"))
            expect(sources).to_be_visible(timeout=300_000)
            bot = page.locator('[data-testid="stChatMessage"]').nth(1)
            answer = bot.locator('[data-testid="stMarkdownContainer"]').first
            expect(answer).to_contain_text(re.compile(r"\[\d+\]"), timeout=30_000)  # cited
            # The passage with the answer is listed with its file and page.
            expect(bot.get_by_text(re.compile(r"multicolumn\.pdf.*page 3")).first).to_be_visible(
                timeout=30_000
            )

            # A second question in the same chat: history stays, a new answer streams in.
            box.fill("What is the capital of Austria according to the table of EU countries?")
            box.press("Enter")
            # Each finished answer ends with its time ("9.7 s").
            expect(page.get_by_text(re.compile(r"^\d+\.\d s( · .*)?$"))).to_have_count(2, timeout=300_000)
            expect(page.locator('[data-testid="stChatMessage"]')).to_have_count(4)
            page.wait_for_timeout(500)  # let the last repaint land before the screenshot
            page.screenshot(path=str(ARTIFACTS / "ui-e2e.png"), full_page=True)

            # Stop: clicked as soon as it shows, the answer ends there and says so; the
            # question and what was written stay in the chat. An answer the chain finishes
            # (or refuses) before the click lands cannot be stopped: then the next is asked.
            messages = page.locator('[data-testid="stChatMessage"]')
            stopped_note = page.get_by_text("Stopped before the answer was finished")
            shown = 4
            for question in STOP_QUESTIONS:
                box.fill(question)
                box.press("Enter")
                with contextlib.suppress(PlaywrightTimeout):  # gone: the answer had ended
                    page.get_by_role("button", name="Stop").click(timeout=30_000)
                shown += 2
                expect(messages).to_have_count(shown, timeout=120_000)
                page.wait_for_timeout(1_000)  # the rerun that saves a stopped answer
                if stopped_note.count():
                    break
            else:
                pytest.fail("every answer ended before Stop could be clicked")
            expect(stopped_note).to_be_visible(timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "ui-e2e-stopped.png"), full_page=True)

            # A reload comes back to the same collection and chat.
            assert "chat=" in page.url, page.url
            page.reload()
            expect(page.locator('[data-testid="stChatMessage"]')).to_have_count(shown, timeout=120_000)
            expect(page.locator('[data-testid="stChatMessage"]').first).to_contain_text(
                "What is the capital of the Czech Republic?"
            )
            expect(page.get_by_role("heading", name="e2e")).to_be_visible()

            # A citation marker jumps to its source; the source opens its PDF page as an image.
            first = page.locator('[data-testid="stChatMessage"]').nth(1)
            marker = first.locator('a[href^="#src-"]').first
            target = marker.get_attribute("href") or ""
            marker.click()
            assert page.url.endswith(target), (page.url, target)
            # Under the answer, the cited source opens its page (the sources list is folded).
            first.get_by_role("button", name=re.compile(r"\[\d+\] multicolumn\.pdf · page \d")).first.click()
            dialog = page.get_by_role("dialog")
            image = dialog.locator("img").first
            expect(image).to_be_visible(timeout=60_000)
            assert image.evaluate("i => i.naturalWidth") > 500  # a rendered page, not an icon
            expect(dialog.get_by_text(re.compile(r"multicolumn\.pdf.*page \d"))).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "ui-e2e-citation-page.png"))

            # A system in dark mode gets the dark theme; at phone width the chat still reads.
            phone = browser.new_page(viewport={"width": 390, "height": 844}, color_scheme="dark")
            phone.on("request", lambda r: hosts.add(urllib.parse.urlsplit(r.url).netloc or r.url[:5]))
            phone.goto(page.url.split("#")[0])
            expect(phone.locator('[data-testid="stChatMessage"]')).to_have_count(shown, timeout=120_000)
            app_root = phone.locator('[data-testid="stApp"]')
            background = app_root.evaluate("e => getComputedStyle(e).backgroundColor")
            assert sum(int(v) for v in re.findall(r"\d+", background)[:3]) < 200, background
            phone.screenshot(path=str(ARTIFACTS / "ui-e2e-dark-phone.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "ui-e2e-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    local = urllib.parse.urlsplit(url).netloc
    assert hosts <= {local, "data:", "blob:"}, f"the page fetched from elsewhere: {sorted(hosts - {local})}"

    # Memory of the app process (both models loaded, one question answered).
    rss = app.memory_info().rss / 2**20
    peak = _peak_rss_mb(app.pid)
    report = {"rss_mb": round(rss, 1), "peak_rss_mb": round(peak, 1)}
    (ARTIFACTS / "ui-e2e-memory.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"UI process memory after a question: {report}")
    # Both default models are small; the app should stay well below a laptop's memory.
    assert peak < 4096, report
