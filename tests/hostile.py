"""Hostile inputs for the tests/test_hostile_*.py files, generated small at test time.

Also the job functions the worker-limit tests run in parser processes: they must live in
an importable module (not a test file), since a spawned worker imports them by name.
"""

from __future__ import annotations

import os
import signal
import time
import zlib
from pathlib import Path


def raw_pdf(objects: list[bytes]) -> bytes:
    """A PDF of ``objects`` (object 1 must be the catalog), with a correct xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def stream(data: bytes, *, compress: bool = True) -> bytes:
    if compress:
        z = zlib.compress(data, 9)
        return b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(z) + z + b"\nendstream"
    return b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def pages_sharing_stream(n_pages: int, content: bytes) -> bytes:
    """``n_pages`` pages that all draw the same (compressed) content stream."""
    kids = b" ".join(b"%d 0 R" % (4 + i) for i in range(n_pages))
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % n_pages,
        stream(content),
    ]
    objs += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R >>"
             for _ in range(n_pages)]
    return raw_pdf(objs)


def path_operator_pdf(n_pages: int = 60, mb: float = 4.0) -> bytes:
    """The probe's slow PDF: pages sharing one stream of path operators (tiny compressed)."""
    op = b"10 10 m 20 20 l 30 10 l h S\n"
    return pages_sharing_stream(n_pages, op * int(mb * 2**20 / len(op)))


def text_pdf(text: str, n_pages: int = 1) -> bytes:
    """A plain PDF whose pages show ``text`` (Helvetica)."""
    kids = b" ".join(b"%d 0 R" % (5 + i) for i in range(n_pages))
    content = b"BT /F1 12 Tf 72 700 Td (" + text.encode("latin-1") + b") Tj ET"
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % n_pages,
        stream(content, compress=False),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    objs += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R "
             b"/Resources << /Font << /F1 4 0 R >> >> >>" for _ in range(n_pages)]
    return raw_pdf(objs)


def bomb_pdf(mb: int = 64) -> bytes:
    """One page whose content stream inflates from a few KB to ``mb`` MB of spaces."""
    return pages_sharing_stream(1, b" " * (mb << 20))


def big_bomb_pdf(mb: int) -> bytes:
    """Like ``bomb_pdf`` but compressed piecewise, so ``mb`` may exceed the test's memory."""
    c = zlib.compressobj(9)
    block = b" " * (1 << 20)
    z = b"".join(c.compress(block) for _ in range(mb)) + c.flush()
    body = b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(z) + z + b"\nendstream"
    return raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        body,
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R >>",
    ])


def loop_pdf() -> bytes:
    """A page tree whose /Pages node lists itself as its own kid: a reference loop."""
    return raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>",
    ])


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --- job functions for the runner tests (module-level: workers import them by name) ------


def job_echo(x: str) -> str:
    return f"done {x}"


def job_hostile(x: str) -> str:
    """``sleep``: never returns; ``nap...``: returns after 0.3 s; ``alloc``: asks for 8 GB;
    ``crash``: dies by SIGSEGV."""
    if x.startswith("nap"):
        time.sleep(0.3)
    if x == "sleep":
        while True:
            time.sleep(1)
    if x == "alloc":
        return str(len(bytearray(8 << 30)))
    if x == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    return f"done {x}"


def job_failed(x: str, reason: str) -> str:
    return f"failed {x}: {reason}"
