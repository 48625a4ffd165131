"""Small valid sample files of every accepted type, built in code (no file on disk).

The tests, the rehearsal and demo, and the bench upload these: each is what core/filetypes.py
detects as its type, and each is a real file of its kind (a PDF with one page a reader shows, a
workbook openpyxl opens, a compound file olefile reads). The bytes are the same on every call
(zip entries carry a fixed date), so a sample's SHA-256 is stable.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable

ZIP_DATE = (2024, 3, 29, 10, 0, 0)
SECTOR = 512
ENDOFCHAIN, FATSECT, FREESECT, NOSTREAM = 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF, 0xFFFFFFFF


def pdf(text: str = "gongmo sample") -> bytes:
    """A PDF 1.4 with one A4 page showing `text` (ASCII; other characters print as '?')."""
    shown = text.encode("ascii", "replace").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    content = b"BT /F1 24 Tf 72 760 Td (" + shown + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842]"
        b" /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")  # the binary comment marks the file as binary
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % at for at in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _zip(entries: list[tuple[str, str | bytes]], stored_first: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for n, (name, data) in enumerate(entries):
            info = zipfile.ZipInfo(name, ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED if stored_first and n == 0 else zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


_RELS_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_OFFICE_DOC = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


def _content_types(overrides: dict[str, str]) -> str:
    parts = "".join(f'<Override PartName="{p}" ContentType="{t}"/>' for p, t in overrides.items())
    return (
        _XML + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>' + parts + "</Types>"
    )


def _rels(target: str, kind: str = _OFFICE_DOC) -> str:
    return (
        _XML
        + f'<Relationships xmlns="{_RELS_NS}"><Relationship Id="rId1" Type="{kind}" Target="{target}"/>'
        + ("</Relationships>")
    )


def docx(text: str = "gongmo sample") -> bytes:
    """A Word document with one paragraph."""
    body = (
        _XML + '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body><w:p><w:r><w:t>{_escape(text)}</w:t></w:r></w:p></w:body></w:document>"
    )
    main = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    return _zip(
        [
            ("[Content_Types].xml", _content_types({"/word/document.xml": main})),
            ("_rels/.rels", _rels("word/document.xml")),
            ("word/document.xml", body),
        ]
    )


def xlsx() -> bytes:
    """An Excel workbook with one sheet and one number (A1 = 1)."""
    sheet_rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"
    workbook = (
        _XML + '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
        ' xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    sheet = (
        _XML + '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<sheetData><row r="1"><c r="A1"><v>1</v></c></row></sheetData></worksheet>'
    )
    ml = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    return _zip(
        [
            (
                "[Content_Types].xml",
                _content_types(
                    {"/xl/workbook.xml": f"{ml}.sheet.main+xml", "/xl/worksheets/sheet1.xml": f"{ml}.worksheet+xml"}
                ),
            ),
            ("_rels/.rels", _rels("xl/workbook.xml")),
            ("xl/workbook.xml", workbook),
            ("xl/_rels/workbook.xml.rels", _rels("worksheets/sheet1.xml", sheet_rel)),
            ("xl/worksheets/sheet1.xml", sheet),
        ]
    )


def hwpx(text: str = "gongmo sample") -> bytes:
    """An HWPX (OWPML) package: `mimetype` first and stored, as the format requires, then the
    container, the manifest and one section."""
    hp = "http://www.hancom.co.kr/hwpml/2011/paragraph"
    return _zip(
        [
            ("mimetype", "application/hwp+zip"),
            ("version.xml", _XML + '<hv:HCFVersion xmlns:hv="http://www.hancom.co.kr/hwpml/2011/version"/>'),
            (
                "META-INF/container.xml",
                _XML + '<ocf:container xmlns:ocf="urn:oasis:names:tc:opendocument:xmlns:container">'
                '<ocf:rootfiles><ocf:rootfile full-path="Contents/content.hpf"'
                ' media-type="application/hwpml-package+xml"/></ocf:rootfiles></ocf:container>',
            ),
            (
                "Contents/content.hpf",
                _XML + '<opf:package xmlns:opf="http://www.idpf.org/2007/opf/"><opf:manifest>'
                '<opf:item id="section0" href="Contents/section0.xml" media-type="application/xml"/>'
                '</opf:manifest><opf:spine><opf:itemref idref="section0"/></opf:spine></opf:package>',
            ),
            (
                "Contents/section0.xml",
                _XML + f'<hs:sec xmlns:hs="http://www.hancom.co.kr/hwpml/2011/section" xmlns:hp="{hp}">'
                f"<hp:p><hp:run><hp:t>{_escape(text)}</hp:t></hp:run></hp:p></hs:sec>",
            ),
        ],
        stored_first=True,
    )


def hwp() -> bytes:
    """An HWP 5 file as far as its container goes: an OLE compound file (CFB version 3, 512-byte
    sectors) with a root entry and a `FileHeader` stream that starts with b"HWP Document File".

    The stream is padded to 4096 bytes (the mini-stream cutoff) so it lives in regular sectors:
    the file is a header, one FAT sector (0), one directory sector (1) and the stream's eight
    sectors (2..9)."""
    stream = HWP_FILE_HEADER.ljust(4096, b"\0")
    stream_sectors = len(stream) // SECTOR
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(16)  # signature, CLSID
    header += struct.pack("<HHHHH", 0x003E, 0x0003, 0xFFFE, 9, 6)  # versions, byte order, sector shifts
    header += bytes(6)  # reserved
    header += struct.pack("<IIII", 0, 1, 1, 0)  # directory sectors (0 in v3), FAT sectors, first dir, txn
    header += struct.pack("<IIIII", 4096, ENDOFCHAIN, 0, ENDOFCHAIN, 0)  # cutoff, mini FAT, DIFAT
    header += struct.pack("<109I", 0, *([FREESECT] * 108))  # the FAT is sector 0
    assert len(header) == SECTOR
    fat = [FATSECT, ENDOFCHAIN]
    fat += [2 + i + 1 for i in range(stream_sectors - 1)] + [ENDOFCHAIN]
    fat += [FREESECT] * (SECTOR // 4 - len(fat))
    directory = _entry("Root Entry", 5, child=1, start=ENDOFCHAIN, size=0)
    directory += _entry("FileHeader", 2, child=NOSTREAM, start=2, size=len(stream))
    directory += _unused() * 2
    return header + struct.pack(f"<{SECTOR // 4}I", *fat) + directory + stream


# The start of HWP 5's FileHeader stream: the 32-byte signature, version 5.0.3.0, no flags set.
HWP_FILE_HEADER = b"HWP Document File".ljust(32, b"\0") + struct.pack("<II", 0x05000300, 0)


def _entry(name: str, kind: int, *, child: int, start: int, size: int) -> bytes:
    encoded = (name + "\0").encode("utf-16-le")
    return (
        encoded.ljust(64, b"\0")
        + struct.pack("<HBB", len(encoded), kind, 1)  # name length, object type, colour (black)
        + struct.pack("<III", NOSTREAM, NOSTREAM, child)  # left, right, child
        + bytes(16)  # CLSID
        + struct.pack("<I", 0)  # state bits
        + bytes(16)  # creation and modification times
        + struct.pack("<IQ", start, size)
    )


def _unused() -> bytes:
    return bytes(64) + struct.pack("<HBB", 0, 0, 0) + struct.pack("<III", NOSTREAM, NOSTREAM, NOSTREAM) + bytes(48)


def png() -> bytes:
    """A 1x1 white PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\xff\xff"))
        + chunk(b"IEND", b"")
    )


def jpeg() -> bytes:
    """A 1x1 grey baseline JPEG (JFIF): one 8x8 block whose coefficients are all 0.

    Each Huffman table has one code, '0' (DC: difference category 0; AC: end of block), so the
    scan is the bits 0 0 padded with 1s: one byte, 0x3F."""

    def segment(marker: int, data: bytes) -> bytes:
        return struct.pack(">BBH", 0xFF, marker, len(data) + 2) + data

    jfif = b"JFIF\0" + struct.pack(">BBBHHBB", 1, 1, 0, 1, 1, 0, 0)
    quant = b"\x00" + bytes([1] * 64)  # table 0, 8-bit, all 1
    frame = struct.pack(">BHHB", 8, 1, 1, 1) + bytes([1, 0x11, 0])  # 8-bit, 1x1, one component
    one_code = bytes([1] + [0] * 15) + b"\x00"  # one code of length 1, for symbol 0
    scan = struct.pack(">B", 1) + bytes([1, 0x00]) + bytes([0, 63, 0])  # component 1, tables 0/0
    return (
        b"\xff\xd8"
        + segment(0xE0, jfif)
        + segment(0xDB, quant)
        + segment(0xC0, frame)
        + segment(0xC4, b"\x00" + one_code)  # DC table 0
        + segment(0xC4, b"\x10" + one_code)  # AC table 0
        + segment(0xDA, scan)
        + b"\x3f"
        + b"\xff\xd9"
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


SAMPLES: dict[str, Callable[[], bytes]] = {
    "pdf": pdf,
    "hwp": hwp,
    "hwpx": hwpx,
    "docx": docx,
    "xlsx": xlsx,
    "png": png,
    "jpeg": jpeg,
}
