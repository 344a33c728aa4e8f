"""Issue 11, items 3 and 8: every file is parsed in a worker under limits; a file over a
limit or a crashing parser fails that file and the run goes on; workers die with `rag
ingest`, even on kill -9.

The only timed assertions are the limits themselves (a job that never ends must fail with
"timed out after 1 s"); nothing asserts how fast anything is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import hostile
import pytest

import rag.models.embed

#: The checkout whose code is under test (subprocesses import it from there).
ROOT = Path(rag.models.embed.__file__).resolve().parents[2]

# `rag ingest` with the fake encoder, in a process of its own (so it can be killed).
FAKE_INGEST = (
    "import sys, rag.models.embed, rag.testing\n"
    "rag.models.embed.build_encoder = lambda settings: rag.testing.FakeEncoder()\n"
    "from rag_cli.main import main\n"
    "sys.exit(main(['ingest', *sys.argv[1:]]))\n"
)


def fake_ingest(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", FAKE_INGEST, *args], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **env})


def test_limits_fail_one_item_and_the_rest_go_on() -> None:
    from ingest.runner import Limits, ProcessPoolRunner

    items = ["a", "sleep", "b", "alloc", "crash", "c", "d"]
    runner = ProcessPoolRunner(2, Limits(timeout_s=1, memory_mb=1024))
    got = {r.split(":")[0].split()[-1]: r
           for r in runner.map(hostile.job_hostile, items, hostile.job_failed)}
    assert set(got) == set(items)
    for ok in "abcd":
        assert got[ok] == f"done {ok}"
    assert "timed out after 1 s" in got["sleep"] and "RAG_PARSE_TIMEOUT_S" in got["sleep"]
    assert "memory" in got["alloc"] and "RAG_PARSE_MEMORY_MB" in got["alloc"]
    assert "crashed" in got["crash"] and "SIGSEGV" in got["crash"]


def test_a_slow_consumer_does_not_time_out_items_already_parsed() -> None:
    # The embedding stage takes longer per document than the time limit (a large filing on a
    # loaded machine): the other worker's item, parsed in no time, must not be declared
    # timed out because its result waited while the consumer worked (it was, on real SEC
    # filings: CORNING_2020_10K.pdf "timed out after 120 s" with a 0.1 s parse).
    from ingest.runner import Limits, ProcessPoolRunner

    runner = ProcessPoolRunner(2, Limits(timeout_s=1, memory_mb=1024))
    got = []
    items = ["a", "nap1", "b", "nap2", "c", "nap3"]  # a nap's result comes in while the consumer works
    for result in runner.map(hostile.job_hostile, items, hostile.job_failed):
        got.append(result)
        time.sleep(1.5)  # the consumer: slower than the limit
    assert sorted(got) == sorted(f"done {x}" for x in items)


def test_slow_pdf_times_out_and_the_run_goes_on(tmp_path: Path) -> None:
    # The probe's 17 KB PDF: 60 pages sharing one 4 MB stream of path operators.
    corpus = tmp_path / "c"
    hostile.write(corpus / "slow.pdf", hostile.path_operator_pdf())
    (corpus / "good.txt").write_text("The turbine was inspected in March.")
    assert (corpus / "slow.pdf").stat().st_size < 20_000
    p = fake_ingest([str(corpus), "--index", str(tmp_path / "idx"), "--json", "--no-progress"],
                    {"RAG_PARSE_TIMEOUT_S": "1", "RAG_PARSE_WORKERS": "2"})
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    summary = json.loads(out)
    assert summary["total_files"] == 1
    assert [f["path"] for f in summary["files_failed"]] == ["slow.pdf"]
    assert "timed out after 1 s" in summary["files_failed"][0]["reason"]


def test_inflating_pdf_over_the_memory_limit_fails_that_file(tmp_path: Path) -> None:
    from ingest.load import failed_job, parse_job
    from ingest.runner import Limits, ProcessPoolRunner

    # 1 MB on disk, 1 GB once its content stream is inflated.
    path = hostile.write(tmp_path / "bomb.pdf", hostile.big_bomb_pdf(1024))
    runner = ProcessPoolRunner(1, Limits(timeout_s=120, memory_mb=400))
    (out,) = list(runner.map(parse_job, [(str(path), "bomb.pdf", None, True)], failed_job))
    assert out.document is None
    assert "memory" in (out.error or "") and "scanned" not in (out.error or "")


def _children(pid: int) -> set[int]:
    found = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"spawn_main" in cmd:  # not the resource tracker
            found.add(int(d.name))
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_workers_die_with_ingest(sig: signal.Signals, tmp_path: Path) -> None:
    corpus = tmp_path / "c"
    for i in range(2):
        hostile.write(corpus / f"slow{i}.pdf", hostile.path_operator_pdf(n_pages=400))
    p = fake_ingest([str(corpus), "--index", str(tmp_path / "idx"), "--no-progress"],
                    {"RAG_PARSE_TIMEOUT_S": "600", "RAG_PARSE_WORKERS": "2"})
    try:
        workers: set[int] = set()
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline and p.poll() is None:
            workers = _children(p.pid)
            time.sleep(0.2)
        assert len(workers) == 2, f"parser workers not found (exit {p.poll()})"
        time.sleep(1.0)  # the workers are parsing now
        p.send_signal(sig)
        p.communicate(timeout=30)
        deadline = time.monotonic() + 15
        while _alive(workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(workers), "parser workers outlived rag ingest"
        if sig == signal.SIGTERM:
            assert p.returncode == 130
    finally:
        if p.poll() is None:
            p.kill()
        for pid in _alive(_children(p.pid)):
            os.kill(pid, signal.SIGKILL)
