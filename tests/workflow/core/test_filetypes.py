"""A document's type from its bytes (core/filetypes.py), on the samples built in code (core/samples.py)."""

from __future__ import annotations

import io
import os
import struct
import zipfile
from pathlib import Path

import olefile
import openpyxl
import pytest

from gongmo.states.documents import FILE_TYPES
from gongmo.workflow.core import filetypes, samples
from gongmo.workflow.core.filetypes import describe_refusal, detect, examine


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def zipped(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# -- the samples ------------------------------------------------------------------------------------


def test_there_is_a_sample_of_every_accepted_type_and_each_is_named() -> None:
    assert set(samples.SAMPLES) == set(FILE_TYPES)
    assert set(filetypes.NAMES) == set(FILE_TYPES)


@pytest.mark.parametrize("key", FILE_TYPES)
def test_every_sample_is_detected_as_its_type_whatever_its_name(tmp_path: Path, key: str) -> None:
    data = samples.SAMPLES[key]()
    assert data == samples.SAMPLES[key]()  # the same bytes each time: a stable SHA-256
    assert detect(write(tmp_path, f"sample.{key}", data)) == key
    assert detect(write(tmp_path, "renamed.exe", data)) == key  # the name plays no part
    assert examine(tmp_path / "renamed.exe").why == f"its bytes are {filetypes.NAMES[key]}"


def test_the_hwp_sample_is_a_compound_file_olefile_reads() -> None:
    data = samples.hwp()
    assert len(data) == 512 + 10 * 512  # header, FAT, directory, the stream's 8 sectors
    with olefile.OleFileIO(data) as ole:
        assert ole.listdir() == [["FileHeader"]]
        assert ole.get_size("FileHeader") == 4096
        assert ole.get_type("FileHeader") == olefile.STGTY_STREAM
        stream = ole.openstream("FileHeader").read()
    assert stream.startswith(b"HWP Document File\0")
    assert struct.unpack_from("<I", stream, 32)[0] == 0x05000300  # version 5.0.3.0
    assert len(stream) == 4096


def test_the_hwpx_sample_has_its_mimetype_first_and_stored() -> None:
    with zipfile.ZipFile(io.BytesIO(samples.hwpx())) as archive:
        first = archive.infolist()[0]
        assert (first.filename, first.compress_type) == ("mimetype", zipfile.ZIP_STORED)
        assert archive.read("mimetype") == b"application/hwp+zip"
        assert "Contents/section0.xml" in archive.namelist()
    # and the raw bytes show it at offset 30, where readers look
    assert samples.hwpx()[30:38] == b"mimetype" and samples.hwpx()[38:57] == b"application/hwp+zip"


def test_the_xlsx_sample_opens_in_openpyxl() -> None:
    workbook = openpyxl.load_workbook(io.BytesIO(samples.xlsx()))
    assert workbook.sheetnames == ["Sheet1"]
    assert workbook.active is not None and workbook.active["A1"].value == 1


def test_the_pdf_sample_has_one_page_and_a_cross_reference_table_that_points_at_its_objects() -> None:
    data = samples.pdf("plan (v2) \\ final")
    assert data.startswith(b"%PDF-1.4\n") and data.endswith(b"%%EOF\n")
    assert b"/Count 1" in data
    assert b"(plan \\(v2\\) \\\\ final) Tj" in data  # parentheses and backslash escaped
    startxref = int(data.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert data[startxref:].startswith(b"xref\n0 6\n")
    rows = data[startxref:].split(b"\n")[3:8]
    for number, row in enumerate(rows, start=1):
        offset = int(row[:10])
        assert data[offset:].startswith(b"%d 0 obj\n" % number)


def test_the_png_and_jpeg_samples_are_complete() -> None:
    png = samples.png()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png.endswith(b"IEND\xaeB`\x82")
    jpeg = samples.jpeg()
    assert jpeg.startswith(b"\xff\xd8\xff\xe0") and jpeg.endswith(b"\xff\xd9")
    assert b"\xff\xc0" in jpeg and b"\xff\xda" in jpeg  # a baseline frame and a scan


# -- refusals ---------------------------------------------------------------------------------------


def test_an_executable_renamed_pdf_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "사업계획서.pdf", b"MZ\x90\x00" + os.urandom(4096))
    assert detect(path) is None
    assert describe_refusal(path) == "its bytes are a Windows executable (MZ)"


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "empty.pdf", b"")
    assert detect(path) is None
    assert describe_refusal(path) == "it is empty (0 bytes)"


def test_unrecognised_bytes_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "plan.hwp", b"just some text, not a document\n" * 10)
    assert detect(path) is None
    assert describe_refusal(path) == "its bytes match no known file signature"


def test_another_known_format_is_refused_by_its_name(tmp_path: Path) -> None:
    gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00"
    path = write(tmp_path, "annex.png", gif + bytes(40))
    assert detect(path) is None
    assert describe_refusal(path) == "its bytes are image/gif (gif), not a type a document may have"


@pytest.mark.parametrize("key", ["hwpx", "docx", "xlsx"])
def test_a_truncated_zip_is_refused(tmp_path: Path, key: str) -> None:
    data = samples.SAMPLES[key]()
    path = write(tmp_path, f"plan.{key}", data[: len(data) // 2])
    assert detect(path) is None
    assert describe_refusal(path) == "its bytes are a truncated zip (no central directory)"


def test_a_zip_with_a_damaged_entry_fails_its_crc_and_is_refused(tmp_path: Path) -> None:
    data = bytearray(samples.hwpx())
    # The stored mimetype entry's data starts at 38: change one byte of it.
    data[40] ^= 0x01
    path = write(tmp_path, "plan.hwpx", bytes(data))
    assert detect(path) is None
    assert describe_refusal(path) == "its bytes are a damaged zip (entry mimetype fails its CRC check)"


def test_a_zip_of_random_files_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "plan.hwpx", zipped({"a.bin": os.urandom(2000), "notes/b.txt": b"hello"}))
    assert detect(path) is None
    assert describe_refusal(path) == "its bytes are a zip archive, but not an OOXML (DOCX, XLSX) or HWPX document"


@pytest.mark.parametrize(
    "entries",
    [
        {"mimetype": b"application/hwp+zip"},  # no Contents/
        {"mimetype": b"application/zip", "Contents/section0.xml": b"<x/>"},  # not HWPX's mimetype
        {"word/document.xml": b"<x/>"},  # no [Content_Types].xml
        {"[Content_Types].xml": b"<x/>", "ppt/presentation.xml": b"<x/>"},  # a PowerPoint
        {"[Content_Types].xml": b"<x/>"},
    ],
)
def test_a_zip_with_part_of_a_documents_structure_is_refused(tmp_path: Path, entries: dict[str, bytes]) -> None:
    assert detect(write(tmp_path, "plan.docx", zipped(entries))) is None


def test_a_zip_claiming_two_types_at_once_is_refused(tmp_path: Path) -> None:
    both = {"[Content_Types].xml": b"<x/>", "word/document.xml": b"<x/>", "xl/workbook.xml": b"<x/>"}
    path = write(tmp_path, "plan.docx", zipped(both))
    assert detect(path) is None
    assert "several documents at once (docx, xlsx)" in describe_refusal(path)


def test_a_docx_is_not_taken_for_an_xlsx_nor_the_other_way(tmp_path: Path) -> None:
    assert detect(write(tmp_path, "budget.xlsx", samples.docx())) == "docx"
    assert detect(write(tmp_path, "plan.docx", samples.xlsx())) == "xlsx"
    assert detect(write(tmp_path, "plan.docx", samples.hwpx())) == "hwpx"


def test_a_zip_too_large_once_inflated_is_refused_without_inflating_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(filetypes, "ZIP_MAX_INFLATED", 100)
    path = write(tmp_path, "plan.docx", samples.docx())
    assert detect(path) is None
    assert "too large to be a document once inflated" in describe_refusal(path)


def test_a_pdf_cut_before_its_eof_marker_is_refused(tmp_path: Path) -> None:
    data = samples.pdf()
    cut = data[: data.rindex(b"%%EOF")]
    path = write(tmp_path, "plan.pdf", cut)
    assert detect(path) is None
    assert describe_refusal(path) == "its bytes are a truncated PDF (no %%EOF in its last 1024 bytes)"


def test_a_pdf_eof_marker_further_back_than_1024_bytes_does_not_count(tmp_path: Path) -> None:
    data = samples.pdf()
    assert detect(write(tmp_path, "ok.pdf", data + b"\n" * 1000)) == "pdf"  # trailing line ends are fine
    assert detect(write(tmp_path, "cut.pdf", data + b"x" * 1024)) is None


def test_a_pdf_signature_after_the_first_byte_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "plan.pdf", b"\n" + samples.pdf())
    assert detect(path) is None


def test_an_ole_file_that_is_not_hwp_is_refused(tmp_path: Path) -> None:
    data = samples.hwp().replace("FileHeader".encode("utf-16-le"), "WordStream".encode("utf-16-le"))
    path = write(tmp_path, "plan.hwp", data)
    assert detect(path) is None
    assert describe_refusal(path) == (
        "its bytes are an OLE compound file, but not an HWP document (no FileHeader stream)"
    )


def test_an_ole_file_whose_file_header_is_not_hwps_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "plan.hwp", samples.hwp().replace(b"HWP Document File", b"XYZ Document File"))
    assert detect(path) is None
    assert "its FileHeader is not HWP's" in describe_refusal(path)


@pytest.mark.parametrize(
    ("keep", "says"),
    [
        (100, "shorter than its header"),
        (1535, "shorter than its header"),
        (1536, "stream FileHeader has 4,096 bytes, the file holds 0"),
        (2048, "stream FileHeader has 4,096 bytes, the file holds 512"),
        (5631, "stream FileHeader has 4,096 bytes, the file holds 3,584"),  # one byte short
    ],
)
def test_a_truncated_hwp_is_refused_without_reading_its_streams(tmp_path: Path, keep: int, says: str) -> None:
    path = write(tmp_path, "plan.hwp", samples.hwp()[:keep])
    assert detect(path) is None
    assert describe_refusal(path) == f"its bytes are a truncated OLE compound file ({says})"


def test_an_ole_file_with_a_broken_directory_is_refused(tmp_path: Path) -> None:
    data = bytearray(samples.hwp())
    struct.pack_into("<I", data, 48, 0x7FFFFFF0)  # the first directory sector, far past the end
    path = write(tmp_path, "plan.hwp", bytes(data))
    assert detect(path) is None
    assert describe_refusal(path).startswith("its bytes are a damaged OLE compound file (")
