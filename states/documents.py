"""Plan documents: the accepted file types, the stored file name and the download header (pure, no I/O).

A track declares the kinds of document it expects (config.toml: plan, budget, annex), each with the
types it accepts from FILE_TYPES. A file's type is decided from its bytes (workflow/core/filetypes.py),
never its name; the name is kept only to be shown and to name the download:

- `clean_name` is the original name as stored: NFC (a name typed on macOS arrives decomposed), the
  path parts a browser or a script may send dropped (`../../etc/passwd` is `passwd`, `C:\\a\\b.pdf` is
  `b.pdf`), control and format characters removed, surrounding spaces and dots trimmed, and at most
  255 bytes in UTF-8 (a file system's limit), cut at a character and keeping the extension. Korean
  is kept as it is.
- `content_disposition` is the download's header (RFC 6266): an ASCII `filename` for old clients and
  `filename*` (RFC 5987, UTF-8, percent-encoded) carrying the Korean name.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from gongmo.states.errors import InvalidInput

FILE_TYPES: tuple[str, ...] = ("pdf", "hwp", "hwpx", "docx", "xlsx", "png", "jpeg")
MEDIA_TYPES: dict[str, str] = {
    "pdf": "application/pdf",
    "hwp": "application/x-hwp",
    "hwpx": "application/hwp+zip",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "png": "image/png",
    "jpeg": "image/jpeg",
}
NAME_MAX_BYTES = 255  # in UTF-8, as most file systems count a name
EXTENSION_MAX = 16  # characters after the last dot; a longer "extension" is part of the stem
DISPOSITIONS = ("attachment", "inline")
# Removed from a name: controls (Cc, DEL among them), format characters (Cf: bidi overrides that
# make 'fdp.exe' look like 'exe.pdf', zero-width joiners), lone surrogates (Cs: not encodable),
# and the line and paragraph separators (Zl, Zp).
_REMOVED = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_EDGES = re.compile(r"^[\s.]+|[\s.]+$")


def clean_name(name: str) -> str:
    """The original file name as stored (see the module's docstring), or InvalidInput when nothing is left."""
    text = unicodedata.normalize("NFC", name)
    text = "".join(c for c in text if unicodedata.category(c) not in _REMOVED)
    text = re.split(r"[/\\]", text)[-1]  # the last path part; '..' and '.' trim to nothing below
    text = _EDGES.sub("", text)
    if not text:
        raise InvalidInput(
            f"{{field}} {_shown(name)} is empty once path parts, control characters and surrounding dots"
            " and spaces are removed; give the file's own name, e.g. 사업계획서.pdf",
            field="file_name",
            value=name,
            shown=_shown(name),
        )
    return _shorten(text)


def _shorten(name: str) -> str:
    if len(name.encode("utf-8")) <= NAME_MAX_BYTES:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > EXTENSION_MAX:
        stem, extension = name, ""
    suffix = "." + extension if extension else ""
    room = NAME_MAX_BYTES - len(suffix.encode("utf-8"))
    # Cut the encoded stem and drop a character the cut split in two.
    cut = stem.encode("utf-8")[:room].decode("utf-8", "ignore")
    cut = _EDGES.sub("", cut) or cut
    return cut + suffix


def content_disposition(name: str, disposition: str = "attachment") -> str:
    """The Content-Disposition header value for a download named `name` (RFC 6266, RFC 5987):
    'attachment; filename="____.pdf"; filename*=UTF-8''%EC%82%AC...pdf'."""
    if disposition not in DISPOSITIONS:
        raise ValueError(f"disposition {disposition!r}: one of {', '.join(DISPOSITIONS)}")
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\%' else "_" for c in name) or "download"
    # quote(safe="") leaves only ALPHA, DIGIT and "-._~" unencoded: all of them RFC 5987 attr-chars.
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def human_size(n: int) -> str:
    """A size in binary units with one decimal: '512 B', '1.5 KB', '50.0 MB' (1 KB = 1,024 bytes)."""
    if n < 1024:
        return f"{n:,} B"
    size = float(n)
    for unit in ("KB", "MB", "GB"):
        size /= 1024
        if round(size, 1) < 1024:
            return f"{size:.1f} {unit}"
    return f"{size / 1024:,.1f} TB"


def _shown(name: str) -> str:
    """A name as a message quotes it: control characters escaped, at most 80 characters."""
    text = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in name)
    return "'" + (text if len(text) <= 80 else text[:79] + "…") + "'"
