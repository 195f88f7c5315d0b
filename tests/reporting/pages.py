"""Look at documents as a reader does: PDF pages rendered to pictures (pdfium, the PDF engine of
Chromium) and their text; DOCX/PPTX opened with their own libraries."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(slots=True)
class Page:
    number: int
    text: str
    image: Any  # PIL image


def pdf_pages(path: Path, scale: float = 0.8, render: bool = True) -> list[Page]:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(path))
    try:
        pages = []
        for i in range(len(doc)):
            page = doc[i]
            text = page.get_textpage().get_text_range()
            image = page.render(scale=scale).to_pil().convert("RGB") if render else None
            pages.append(Page(i + 1, text, image))
        return pages
    finally:
        doc.close()


def band_has_colour(image: Any, rgb: tuple[int, int, int], top: float, bottom: float, tolerance: int = 40) -> bool:
    """Whether a horizontal band of the page (fractions of its height) shows the colour (the banner)."""
    width, height = image.size
    for y in range(int(height * top), int(height * bottom)):
        for x in range(0, width, 3):
            px = image.getpixel((x, y))
            if all(abs(px[k] - rgb[k]) <= tolerance for k in range(3)):
                return True
    return False


def coloured_fraction(image: Any, box: tuple[float, float, float, float]) -> float:
    """Share of non-white, non-grey pixels in a box (fractions): a chart shows colour, text does not."""
    width, height = image.size
    x0, y0, x1, y1 = int(box[0] * width), int(box[1] * height), int(box[2] * width), int(box[3] * height)
    n = hit = 0
    for y in range(y0, y1, 2):
        for x in range(x0, x1, 2):
            r, g, b = image.getpixel((x, y))[:3]
            n += 1
            hit += max(r, g, b) - min(r, g, b) > 40
    return hit / max(n, 1)


AMBER = (0xFF, 0xC0, 0x00)
