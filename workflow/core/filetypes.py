"""A document's type, decided from its bytes, never its name (issue 21).

Two well-kept detector libraries and the standard library's zipfile:

- `filetype` (h2non) reads the first bytes against its table of magic numbers: PDF, PNG, JPEG, a
  zip, a Windows executable (MZ), and some eighty other formats a refusal can then name.
- `olefile` (decalage) opens an OLE compound file (CFB), the container of HWP 5: an HWP document
  is one with a `FileHeader` stream whose data starts with b"HWP Document File", and whose
  streams all end inside the file (their sector chains are walked in the FAT, none is read).
- `zipfile` checks what a zip claims to be: it must open (a truncated zip has no central
  directory), every member must pass its CRC (`testzip`), and its entries decide the type:
  HWPX has a `mimetype` entry reading application/hwp+zip and a Contents/ folder, DOCX has
  `[Content_Types].xml` and word/document.xml, XLSX `[Content_Types].xml` and xl/workbook.xml.
  A zip that declares more than 2 GiB once inflated is refused before anything is inflated.

A PDF must start with %PDF- and have %%EOF in its last 1024 bytes (a PDF cut short has none).
`examine` says what a file is and why it is or is not taken; its `why` completes the upload's
refusal: "plan: 사업계획서.pdf is not an accepted type: its bytes are a Windows executable (MZ);
this kind takes pdf, hwp, hwpx".
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import NamedTuple

import filetype
import olefile

HEAD = 8192  # bytes filetype reads
TAIL = 1024  # a PDF's %%EOF must be in its last 1024 bytes
HWP_SIGNATURE = b"HWP Document File"
HWPX_MIMETYPE = b"application/hwp+zip"
# A zip's declared content past these is no plan document (and testzip would inflate it all).
ZIP_MAX_MEMBERS = 10_000
ZIP_MAX_INFLATED = 2 * 1024**3
ZIP_FAMILY = frozenset({"zip", "docx", "xlsx", "pptx", "odt", "ods", "odp", "epub"})
NAMES = {
    "pdf": "a PDF document",
    "hwp": "an HWP document (OLE compound file)",
    "hwpx": "an HWPX document (zip)",
    "docx": "a Word document (DOCX)",
    "xlsx": "an Excel workbook (XLSX)",
    "png": "a PNG image",
    "jpeg": "a JPEG image",
}


class Detected(NamedTuple):
    """What a file's bytes are: `type` from FILE_TYPES, or None when it is none of them; `why`
    says so in a clause: 'its bytes are a PDF document', 'its bytes are a truncated zip (...)'."""

    type: str | None
    why: str


def detect(path: Path) -> str | None:
    """The file's type key from FILE_TYPES, from its bytes; None for anything else."""
    return examine(path).type


def describe_refusal(path: Path) -> str:
    """Why the file is not an accepted type, as a clause: 'its bytes are a Windows executable (MZ)'."""
    return examine(path).why


def examine(path: Path) -> Detected:
    """The file's type and why (see the module's docstring)."""
    with path.open("rb") as f:
        head = f.read(HEAD)
    if not head:
        return Detected(None, "it is empty (0 bytes)")
    if head.startswith(olefile.MAGIC):
        return _ole(path)
    if head.startswith(b"PK"):
        return _zip(path)
    kind = filetype.guess(head)
    if kind is None:
        return Detected(None, "its bytes match no known file signature")
    if kind.extension in ZIP_FAMILY:  # a zip whose local header is not at the start (a self-extractor)
        return _zip(path)
    if kind.extension == "pdf":
        return _pdf(path, head)
    if kind.extension == "png":
        return _taken("png")
    if kind.extension == "jpg":
        return _taken("jpeg")
    if kind.extension == "exe":
        return _refused("a Windows executable (MZ)")
    if kind.extension == "elf":
        return _refused("a Linux executable (ELF)")
    return _refused(f"{kind.mime} ({kind.extension}), not a type a document may have")


def _taken(key: str) -> Detected:
    return Detected(key, f"its bytes are {NAMES[key]}")


def _refused(what: str) -> Detected:
    return Detected(None, f"its bytes are {what}")


def _pdf(path: Path, head: bytes) -> Detected:
    if not head.startswith(b"%PDF-"):
        return _refused("not a PDF: it does not start with %PDF-")
    size = path.stat().st_size
    with path.open("rb") as f:
        f.seek(max(0, size - TAIL))
        tail = f.read(TAIL)
    if b"%%EOF" not in tail:
        return _refused(f"a truncated PDF (no %%EOF in its last {TAIL} bytes)")
    return _taken("pdf")


def _ole(path: Path) -> Detected:
    size = path.stat().st_size
    if size < olefile.MINIMAL_OLEFILE_SIZE:
        return _refused("a truncated OLE compound file (shorter than its header)")
    # A damaged compound file makes olefile raise one of many errors (OSError, struct.error,
    # IndexError, ...): any of them means the file cannot be read as HWP.
    try:
        with olefile.OleFileIO(str(path)) as ole:
            if not ole.exists("FileHeader"):
                return _refused("an OLE compound file, but not an HWP document (no FileHeader stream)")
            missing = _missing_bytes(ole, size)
            if missing:
                return _refused(f"a truncated OLE compound file ({missing})")
            with ole.openstream("FileHeader") as stream:
                signature = stream.read(len(HWP_SIGNATURE))
    except Exception as e:
        return _refused(f"a damaged OLE compound file ({type(e).__name__}: {e})")
    if signature != HWP_SIGNATURE:
        return _refused("an OLE compound file, but not an HWP document (its FileHeader is not HWP's)")
    return _taken("hwp")


def _missing_bytes(ole: olefile.OleFileIO, size: int) -> str | None:
    """Which stream runs past the end of the file, if any: each stream in regular sectors (and
    the root's mini stream, which holds the small ones) must have all its bytes in the file.
    Only the FAT is walked; no stream is read (a 50 MB HWP is not loaded to be checked)."""
    sector_size = ole.sectorsize
    for entry in ole.direntries:
        if entry is None:
            continue
        regular = entry.entry_type == olefile.STGTY_STREAM and entry.size >= ole.minisectorcutoff
        if entry.entry_type != olefile.STGTY_ROOT and not regular:
            continue
        needed = -(-entry.size // sector_size)
        sector = entry.isectStart
        for walked in range(needed):
            last = entry.size - walked * sector_size if walked == needed - 1 else sector_size
            if sector >= len(ole.fat) or sector_size * (sector + 1) + last > size:
                return f"stream {entry.name} has {entry.size:,} bytes, the file holds {walked * sector_size:,}"
            sector = ole.fat[sector]
    return None


def _zip(path: Path) -> Detected:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > ZIP_MAX_MEMBERS or sum(m.file_size for m in members) > ZIP_MAX_INFLATED:
                return _refused(f"a zip of {len(members):,} entries too large to be a document once inflated")
            bad = archive.testzip()
            if bad is not None:
                return _refused(f"a damaged zip (entry {bad} fails its CRC check)")
            names = {m.filename for m in members}
            mimetype = b""
            if "mimetype" in names:
                with archive.open("mimetype") as entry:
                    mimetype = entry.read(64).strip()
    except zipfile.BadZipFile as e:
        if "not a zip file" in str(e).lower():
            return _refused("a truncated zip (no central directory)")
        return _refused(f"a damaged zip ({e})")
    except Exception as e:  # zlib.error, EOFError, an encrypted or unsupported entry, ...
        return _refused(f"a damaged zip ({type(e).__name__}: {e})")
    found = []
    if mimetype == HWPX_MIMETYPE and any(n.startswith("Contents/") for n in names):
        found.append("hwpx")
    if "[Content_Types].xml" in names:
        if "word/document.xml" in names:
            found.append("docx")
        if "xl/workbook.xml" in names:
            found.append("xlsx")
    if len(found) == 1:
        return _taken(found[0])
    if found:
        return _refused(f"a zip that claims to be several documents at once ({', '.join(found)})")
    return _refused("a zip archive, but not an OOXML (DOCX, XLSX) or HWPX document")
