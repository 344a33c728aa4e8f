"""OCR for scanned PDF pages: RapidOCR on ONNX Runtime, local and offline.

rapidocr-onnxruntime ships its detection, orientation and recognition models inside the
wheel, so nothing is downloaded at run time and nothing outside pip is needed (tesseract
would need a system package). Called only for pages without a usable text layer that show
an image (see :mod:`ingest.pdf`), so text PDFs never pay for it.
"""

from __future__ import annotations

import functools
from typing import Any

#: Render scale: 200 dpi is where small print (8 pt footnotes) is still read reliably;
#: higher mostly costs time.
RENDER_DPI = 200
#: Lines recognised with less confidence than this are dropped (mostly specks and stamps).
MIN_SCORE = 0.5


@functools.cache
def _engine() -> Any:
    # Built once per process (parse workers are processes); loading takes ~0.3 s.
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()


def ocr_image(image: Any) -> str:
    """Text of an RGB image (numpy array), lines top to bottom, left to right."""
    result, _ = _engine()(image)
    if not result:
        return ""
    lines: list[tuple[float, float, str]] = []
    for box, text, score in result:
        if float(score) < MIN_SCORE or not str(text).strip():
            continue
        ys = [float(p[1]) for p in box]
        xs = [float(p[0]) for p in box]
        lines.append((min(ys), min(xs), str(text)))
    return "\n".join(_reading_order(lines))


def _reading_order(lines: list[tuple[float, float, str]]) -> list[str]:
    # subtle: boxes of one printed line differ by a few pixels in y; sorting by raw y would
    # interleave the cells of a table row, so rows are grouped first (within half a line).
    lines.sort()
    rows: list[list[tuple[float, float, str]]] = []
    for line in lines:
        if rows and line[0] - rows[-1][0][0] < 12:
            rows[-1].append(line)
        else:
            rows.append([line])
    return [" ".join(t for _, _, t in sorted(row, key=lambda x: x[1])) for row in rows]


def ocr_page(page: Any) -> str:
    """Text of one ``pypdfium2.PdfPage``, rendered at :data:`RENDER_DPI`."""
    import numpy as np

    bitmap = page.render(scale=RENDER_DPI / 72)
    try:
        image = np.asarray(bitmap.to_pil().convert("RGB"))
    finally:
        bitmap.close()
    return ocr_image(image)
