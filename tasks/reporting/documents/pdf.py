"""HTML → PDF with WeasyPrint (maintained, pure Python over Pango; no browser, no office suite).

Before anything is written the renderer and the font are checked: a missing WeasyPrint or Pango, or
a font fontconfig cannot find, is a ``ConfigError`` naming what to install. The PDF is written to a
temporary file and renamed into place, so a failed render never leaves a half-written document.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from dcoflow.core.errors import ConfigError

#: The font every document is set in: Debian's fonts-dejavu-core, with Latin, Greek, Cyrillic, Hebrew
#: and Arabic glyphs (RTL names render in their own script).
FONT = "DejaVu Sans"
INSTALL_RENDERER = "pip install weasyprint, and Pango (Debian: apt-get install libpango-1.0-0 libpangoft2-1.0-0)"
INSTALL_FONT = "Debian: apt-get install fonts-dejavu-core fontconfig"


def renderer() -> Any:
    """The WeasyPrint module, or a ConfigError naming what to install."""
    try:
        import weasyprint
    except (ImportError, OSError) as exc:  # OSError: the library is there, Pango is not
        raise ConfigError(f"the PDF renderer WeasyPrint cannot be loaded ({exc})", system="pdf",
                          object="weasyprint", hint=INSTALL_RENDERER) from exc
    return weasyprint


def check_font(font: str = FONT) -> None:
    """Fail unless fontconfig (which WeasyPrint asks) has ``font``: without it every glyph would fall
    back to whatever is installed, or render as boxes."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        raise ConfigError("fontconfig's fc-list is not installed, so fonts cannot be found", system="pdf",
                          object=font, hint=INSTALL_FONT)
    found = subprocess.run([fc_list, f":family={font}", "family"], capture_output=True, text=True, timeout=30,
                           check=False)
    if not found.stdout.strip():
        raise ConfigError(f"the font {font!r} is not installed", system="pdf", object=font, hint=INSTALL_FONT)


def write_pdf(html: str, path: Path, *, font: str = FONT, extra_css: str | None = None) -> Path:
    """Render ``html`` to ``path`` (atomically); returns ``path``."""
    weasyprint = renderer()
    check_font(font)
    stylesheets = [weasyprint.CSS(string=extra_css)] if extra_css else None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    try:
        weasyprint.HTML(string=html).write_pdf(str(tmp), stylesheets=stylesheets)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
